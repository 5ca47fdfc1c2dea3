//! The `shardforge` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shardforge::config::Config;

mod admin;

#[derive(Parser)]
#[command(
    name = "shardforge",
    version,
    about = "A distributed SQL database that speaks PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node (a one-node cluster unless --join names others).
    Start(StartArgs),
    /// Initialise a cluster of nodes started with --join: the node at
    /// --host becomes node 1, the others of its join list 2, 3, ...
    Init(HostArgs),
    /// Show a cluster's nodes, their liveness, and the shard map.
    Status(HostArgs),
    /// Remove a node that is down for good: its replicas are re-created
    /// on the other nodes (the cluster must replicate).
    Decommission(DecommissionArgs),
    /// Run a local cluster for trying it out, until Ctrl-C.
    Demo(DemoArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
}

#[derive(Args)]
struct DecommissionArgs {
    /// The node's id (as `shardforge status` lists it).
    #[arg(long)]
    node: u32,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Args)]
struct HostArgs {
    /// rpc address of a node of the cluster.
    #[arg(long, default_value = "127.0.0.1:7432")]
    host: String,
}

#[derive(Args)]
struct StartArgs {
    /// TOML config file (see config/shardforge.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory [config: node.data_dir, default ./shardforge-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL listener [config: node.pg_addr, default 127.0.0.1:5432].
    #[arg(long)]
    pg_addr: Option<SocketAddr>,
    /// Node-to-node RPC address [config: node.rpc_addr, default 127.0.0.1:7432].
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    /// HTTP admin address [config: node.http_addr, default 127.0.0.1:8432].
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// rpc addresses of the cluster's nodes, comma-separated [config: cluster.join].
    #[arg(long)]
    join: Option<String>,
}

fn load_config(args: StartArgs) -> shardforge::error::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    if let Some(v) = args.data_dir {
        config.node.data_dir = v;
    }
    if let Some(v) = args.pg_addr {
        config.node.pg_addr = v;
    }
    if let Some(v) = args.rpc_addr {
        config.node.rpc_addr = v;
    }
    if let Some(v) = args.http_addr {
        config.node.http_addr = v;
    }
    if let Some(v) = args.join {
        config.cluster.join = shardforge::config::split_addrs(&v);
    }
    Ok(config)
}

/// Prints a command's report. A reader that closed the pipe early
/// (`shardforge status | head`) wanted no more: not an error.
fn print_report(report: String) -> shardforge::error::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(report.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = || tokio::runtime::Runtime::new().map_err(shardforge::error::Error::from);
    let result = match cli.command {
        Command::Start(args) => load_config(args)
            .and_then(|config| runtime()?.block_on(shardforge::server::run(config))),
        Command::Init(args) => runtime()
            .and_then(|rt| rt.block_on(admin::init(&args.host)))
            .and_then(print_report),
        Command::Status(args) => runtime()
            .and_then(|rt| rt.block_on(admin::status(&args.host)))
            .and_then(print_report),
        Command::Decommission(args) => runtime()
            .and_then(|rt| rt.block_on(admin::decommission(&args.host.host, args.node)))
            .and_then(print_report),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(admin::demo(args.nodes))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
