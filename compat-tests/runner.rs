//! PostgreSQL-compatibility runner: executes sqllogictest (`.slt`) files against any
//! server that speaks the PostgreSQL wire protocol (ShardForge, or PostgreSQL itself to
//! re-check the expectations).
//!
//! Every file runs on its own fresh connection (user `postgres`, database `postgres`,
//! no password). Statements go through the SIMPLE query protocol, so every value comes
//! back in the server's own text form, exactly as `psql` would print it; NULL is
//! rendered as `NULL` and the empty string as `(empty)`. Errors display as
//! `SQLSTATE <code>: <message>`, so a file can assert on the code alone
//! (`statement error 23505`, `query error 42P01`, or `statement error (23505)`).
//!
//! Usage:
//!   cargo run --example compat -- [--host H] [--port P] [--user U] [--dbname D]
//!                                 [--override] FILE.slt...
//!
//! `--override` rewrites each file's expected results from the server's answers
//! (only ever do that against real PostgreSQL 15). The program ends with one line
//! `N passed, M failed` (file counts) and exits non-zero if any file failed.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use async_trait::async_trait;
use sqllogictest::{
    default_column_validator, default_normalizer, default_validator, AsyncDB, DBOutput,
    DefaultColumnType, Runner,
};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long one record may take before it counts as failed, so that a hung server
/// fails the run instead of stalling CI.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to connect and what to do, parsed from the command line.
struct Args {
    host: String,
    port: u16,
    user: String,
    dbname: String,
    override_results: bool,
    files: Vec<String>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut args = Args {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            dbname: "postgres".into(),
            override_results: false,
            files: Vec::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--host" => args.host = value("--host")?,
                "--port" => {
                    let port = value("--port")?;
                    args.port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
                }
                "--user" => args.user = value("--user")?,
                "--dbname" => args.dbname = value("--dbname")?,
                "--override" => args.override_results = true,
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                file => args.files.push(file.to_string()),
            }
        }
        if args.files.is_empty() {
            return Err("no .slt files given".into());
        }
        Ok(args)
    }

    fn conn_string(&self) -> String {
        format!(
            "host={} port={} user={} dbname={} connect_timeout=10 application_name=shardforge-compat",
            self.host, self.port, self.user, self.dbname
        )
    }
}

/// An error as the runner shows it: `SQLSTATE <code>: <message>` for server errors,
/// the driver's own text for anything else (I/O, protocol).
#[derive(Debug)]
struct PgError {
    sqlstate: Option<String>,
    text: String,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => PgError {
                sqlstate: Some(db.code().code().to_string()),
                text: format!("SQLSTATE {}: {}", db.code().code(), db.message()),
            },
            None => {
                // Keep the cause ("error connecting to server: Connection refused").
                let mut text = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    text = format!("{text}: {cause}");
                    source = cause.source();
                }
                PgError {
                    sqlstate: None,
                    text,
                }
            }
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for PgError {}

/// One connection, driven through the simple query protocol.
struct PgConn {
    client: Client,
    connection_task: tokio::task::JoinHandle<()>,
}

impl PgConn {
    async fn connect(conn_string: String) -> Result<PgConn, PgError> {
        let (client, connection) = tokio_postgres::connect(&conn_string, NoTls).await?;
        let connection_task = tokio::spawn(async move {
            if let Err(err) = connection.await {
                eprintln!("connection error: {err}");
            }
        });
        Ok(PgConn {
            client,
            connection_task,
        })
    }
}

#[async_trait]
impl AsyncDB for PgConn {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let messages = tokio::time::timeout(STATEMENT_TIMEOUT, self.client.simple_query(sql))
            .await
            .map_err(|_| PgError {
                sqlstate: None,
                text: format!("no answer within {STATEMENT_TIMEOUT:?}"),
            })??;
        // A record may hold several statements; the last one decides the output.
        let (mut columns, mut rows, mut count, mut in_query) = (None, Vec::new(), 0, false);
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => {
                    (columns, in_query) = (Some(desc.len()), true);
                    rows.clear();
                }
                SimpleQueryMessage::Row(row) => {
                    let values = (0..row.len()).map(|i| match row.get(i) {
                        None => "NULL".to_string(),
                        Some("") => "(empty)".to_string(),
                        Some(v) => v.to_string(),
                    });
                    rows.push(values.collect());
                }
                SimpleQueryMessage::CommandComplete(n) => {
                    if !in_query {
                        columns = None;
                        rows.clear();
                    }
                    (count, in_query) = (n, false);
                }
                _ => {}
            }
        }
        Ok(match columns {
            // The simple protocol does not report column types; the types written in
            // the .slt files are documentation and are not validated.
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {
        self.connection_task.abort();
    }

    fn engine_name(&self) -> &str {
        "postgres"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &PgError) -> Option<String> {
        err.sqlstate.clone()
    }
}

/// Runs (or, with `--override`, rewrites) one file on a fresh connection.
async fn run_file(args: &Args, file: &str) -> Result<(), String> {
    let conn_string = args.conn_string();
    let mut runner = Runner::new(move || PgConn::connect(conn_string.clone()));
    let result = if args.override_results {
        runner
            .update_test_file(
                file,
                " ",
                default_validator,
                default_normalizer,
                default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(file)
            .await
            .map_err(|e| e.display(false).to_string())
    };
    runner.shutdown_async().await;
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}\nusage: compat [--host H] [--port P] [--user U] [--dbname D] [--override] FILE.slt...");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for file in &args.files {
        match run_file(&args, file).await {
            Ok(()) => {
                passed += 1;
                println!("ok      {file}");
            }
            Err(err) => {
                failed += 1;
                println!("FAILED  {file}\n{err}\n");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
