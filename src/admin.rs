//! The `shardforge init`, `status`, `decommission` and `demo` commands: a few RPCs to
//! nodes, printed for people.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shardforge::cluster::{connect, proto};
use shardforge::error::{Error, Result};

/// Appends a formatted line to a report.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// How long demo nodes may take to start listening.
const DEMO_START_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn init(host: &str) -> Result<String> {
    let response = connect(host)
        .await?
        .init(proto::InitRequest {})
        .await
        .map_err(|s| Error::from_rpc(&format!("node at {host}"), s))?
        .into_inner();
    let mut out = String::new();
    outln!(out, "cluster {} initialised", response.cluster_id);
    print_nodes(&mut out, &response.nodes);
    Ok(out)
}

pub async fn status(host: &str) -> Result<String> {
    let response = connect(host)
        .await?
        .status(proto::StatusRequest {})
        .await
        .map_err(|s| Error::from_rpc(&format!("node at {host}"), s))?
        .into_inner();
    let mut out = String::new();
    outln!(
        out,
        "cluster {} (oracle and catalog on node {})",
        response.cluster_id,
        response.meta_node_id
    );
    print_nodes(&mut out, &response.nodes);
    out.push('\n');
    outln!(
        out,
        "{:>5}  {:>10}  {:>4}  replicas",
        "shard",
        "hash range",
        "node"
    );
    for shard in &response.shards {
        let replicas: Vec<String> = shard.replicas.iter().map(u32::to_string).collect();
        outln!(
            out,
            "{:>5}  {:>10}  {:>4}  {}",
            shard.id,
            format!(
                "{:04x}-{:04x}",
                shard.hash_start,
                shard.hash_end.saturating_sub(1)
            ),
            shard.node,
            replicas.join(",")
        );
    }
    if !response.replicas.is_empty() {
        out.push('\n');
        outln!(
            out,
            "{:>5}  {:>4}  {:>6}  {:>6}  {:>8}  {:>6}  {:>8}",
            "shard",
            "node",
            "leader",
            "term",
            "applied",
            "lag",
            "purged"
        );
        for r in &response.replicas {
            let leader = match r.leader_id {
                0 => "-".to_string(),
                id if id == r.node_id => format!("*{id}"),
                id => id.to_string(),
            };
            let group = match r.shard_id {
                shardforge::raft::META_GROUP => "meta".to_string(),
                id => id.to_string(),
            };
            outln!(
                out,
                "{:>5}  {:>4}  {:>6}  {:>6}  {:>8}  {:>6}  {:>8}",
                group,
                r.node_id,
                leader,
                r.term,
                r.applied_index,
                r.lag,
                r.purged_index
            );
        }
    }
    Ok(out)
}

/// `shardforge decommission --node N`: removes a node that is down for
/// good; its replicas are re-created on the other nodes.
pub async fn decommission(host: &str, node: u32) -> Result<String> {
    let response = connect(host)
        .await?
        .decommission(proto::DecommissionRequest { node_id: node })
        .await
        .map_err(|s| Error::from_rpc(&format!("node at {host}"), s))?
        .into_inner();
    let mut out = String::new();
    outln!(
        out,
        "node {node} decommissioned; its replicas are being re-created (see `shardforge status`)"
    );
    let meta: Vec<String> = response.meta_replicas.iter().map(u32::to_string).collect();
    outln!(out, "meta group replicas: {}", meta.join(","));
    for shard in &response.shards {
        let replicas: Vec<String> = shard.replicas.iter().map(u32::to_string).collect();
        outln!(out, "shard {} replicas: {}", shard.id, replicas.join(","));
    }
    Ok(out)
}

fn print_nodes(out: &mut String, nodes: &[proto::Node]) {
    outln!(
        out,
        "{:>4}  {:<21}  {:<21}  {:<21}  live",
        "node",
        "rpc",
        "pg",
        "http"
    );
    for n in nodes {
        outln!(
            out,
            "{:>4}  {:<21}  {:<21}  {:<21}  {}",
            n.node_id,
            n.rpc_addr,
            n.pg_addr,
            n.http_addr,
            match (n.removed, n.live) {
                (true, _) => "removed",
                (false, true) => "yes",
                (false, false) => "no",
            }
        );
    }
}

/// `shardforge demo --nodes N`: N nodes on free loopback ports with data in
/// a temp dir, initialised as one cluster; runs until Ctrl-C or SIGTERM,
/// then stops the nodes and removes the data.
pub async fn demo(nodes: usize) -> Result<()> {
    if !(1..=9).contains(&nodes) {
        return Err(Error::input(
            shardforge::error::InputError::InvalidParameterValue,
            "--nodes must be between 1 and 9",
        ));
    }
    let dir = std::env::temp_dir().join(format!("shardforge-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut demo = Demo {
        dir,
        children: Vec::new(),
    };
    let ports: Vec<[u16; 3]> = (0..nodes).map(|_| free_ports()).collect::<Result<_>>()?;
    let rpc = |p: &[u16; 3]| format!("127.0.0.1:{}", p[1]);
    let join = ports.iter().map(rpc).collect::<Vec<_>>().join(",");
    for (i, p) in ports.iter().enumerate() {
        demo.start_node(i + 1, p, &join)?;
    }
    let first = rpc(&ports[0]);
    let deadline = Instant::now() + DEMO_START_TIMEOUT;
    let response = loop {
        demo.check_running()?;
        match connect(&first).await {
            Ok(mut client) => match client.init(proto::InitRequest {}).await {
                Ok(response) => break response.into_inner(),
                // Another node is not listening yet (a loaded machine
                // starts them slowly): `init` pings them all first.
                Err(status)
                    if status.code() == tonic::Code::Unavailable && Instant::now() <= deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(status) => return Err(Error::from_rpc(&format!("node at {first}"), status)),
            },
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    // Print the connection strings once every node serves SQL.
    for p in &ports {
        while !healthy(p[2]).await {
            demo.check_running()?;
            if Instant::now() > deadline {
                return Err(Error::Unavailable("demo nodes did not become ready".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut out = String::new();
    outln!(
        out,
        "cluster {} of {nodes} nodes, data in {}",
        response.cluster_id,
        demo.dir.display()
    );
    print_nodes(&mut out, &response.nodes);
    out.push('\n');
    for n in &response.nodes {
        if let Some(port) = n.pg_addr.rsplit(':').next() {
            outln!(
                out,
                "node {}: psql -h 127.0.0.1 -p {port} -U postgres postgres",
                n.node_id
            );
        }
    }
    outln!(out, "Ctrl-C stops the cluster and removes its data.");
    print!("{out}");
    wait_for_stop().await;
    Ok(())
}

struct Demo {
    dir: PathBuf,
    children: Vec<(usize, Child)>,
}

impl Demo {
    fn start_node(&mut self, id: usize, ports: &[u16; 3], join: &str) -> Result<()> {
        let log = std::fs::File::create(self.log(id))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("start")
            .arg("--data-dir")
            .arg(self.dir.join(format!("node{id}")))
            .args(["--pg-addr", &format!("127.0.0.1:{}", ports[0])])
            .args(["--rpc-addr", &format!("127.0.0.1:{}", ports[1])])
            .args(["--http-addr", &format!("127.0.0.1:{}", ports[2])])
            .args(["--join", join])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.children.push((id, child));
        Ok(())
    }

    fn log(&self, id: usize) -> PathBuf {
        self.dir.join(format!("node{id}.log"))
    }

    /// An error naming the first node that exited, with its log.
    fn check_running(&mut self) -> Result<()> {
        for (id, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join(format!("node{id}.log")))
                    .unwrap_or_default();
                return Err(Error::Unavailable(format!(
                    "demo node {id} exited ({status}):\n{log}"
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Demo {
    /// Stops the nodes (SIGTERM, then SIGKILL after a while) and removes
    /// their data.
    fn drop(&mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}

/// Three free loopback ports (free when asked; the nodes bind them next).
fn free_ports() -> Result<[u16; 3]> {
    let listeners = [
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
    ];
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Whether the HTTP admin endpoint on `port` answers `/health` with 200.
async fn healthy(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(
            response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"),
        )
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(true))
    )
}
