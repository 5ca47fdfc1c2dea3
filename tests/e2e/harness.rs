//! A `shardforge` process for one test.
//!
//! [`TestServer::start`] picks three free loopback ports, makes a temp dir
//! holding the data dir and `server.log` (the process's stdout and stderr),
//! spawns the binary and waits until `GET /health` answers 200. The process
//! keeps its data dir and ports across [`TestServer::restart`] (SIGTERM) and
//! [`TestServer::kill9_and_restart`] (SIGKILL), so a test can check what
//! survives. Dropping the server kills the process; if the test is panicking,
//! the end of the log is printed first.
//!
//! Starting and stopping are async and wait with `tokio::time::sleep`, so the
//! test's other tasks (driver connections, writers) keep running meanwhile: a
//! dropped client really closes its socket before a restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, NoTls};

/// How long a fresh or restarted server may take to answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the log to print when a test fails.
const LOG_TAIL_BYTES: usize = 8_000;

pub struct TestServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub pg_port: u16,
    pub rpc_port: u16,
    pub http_port: u16,
    /// Flags after the addresses (`--join ...` for a cluster node).
    extra_args: Vec<String>,
    /// Environment settings (`SHARDFORGE_...`) of the process.
    env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts a fresh single-node server and waits until it is ready.
    pub async fn start() -> TestServer {
        let mut server = Self::unstarted();
        server.spawn().await;
        server
    }

    /// A fresh single-node server with settings `env`
    /// (`SHARDFORGE_<SECTION>_<KEY>`).
    pub async fn start_with(env: &[(&str, &str)]) -> TestServer {
        let mut server = Self::unstarted();
        server.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server.spawn().await;
        server
    }

    /// The value of metric `name` on the node's `/metrics`.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let body = http_get(([127, 0, 0, 1], self.http_port).into(), "/metrics")?;
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// A server with its temp dir and ports, not running yet.
    fn unstarted() -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("shardforge-e2e-")
            .tempdir()
            .expect("create temp dir");
        let [pg_port, rpc_port, http_port] = free_ports();
        TestServer {
            dir,
            child: None,
            pg_port,
            rpc_port,
            http_port,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// `n` nodes started with `--join` naming all of them, not initialised:
    /// they wait for `shardforge init` (see [`TestServer::wait_healthy`]).
    pub fn start_uninitialised_cluster(n: usize) -> Vec<TestServer> {
        Self::start_uninitialised_cluster_with(n, &[])
    }

    /// [`Self::start_uninitialised_cluster`] with settings `env` for every
    /// node (`SHARDFORGE_<SECTION>_<KEY>`).
    pub fn start_uninitialised_cluster_with(n: usize, env: &[(&str, &str)]) -> Vec<TestServer> {
        let mut nodes: Vec<TestServer> = (0..n).map(|_| Self::unstarted()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let join = nodes
            .iter()
            .map(|node| node.rpc_addr())
            .collect::<Vec<_>>()
            .join(",");
        for node in &mut nodes {
            node.extra_args = vec!["--join".into(), join.clone()];
            node.env = env.clone();
            node.spawn_process();
        }
        nodes
    }

    /// A node started with `--join join` (an existing cluster's address).
    pub async fn start_joining(join: &str) -> TestServer {
        let mut server = Self::unstarted();
        server.extra_args = vec!["--join".into(), join.to_string()];
        server.spawn().await;
        server
    }

    pub fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// Sets `key` to `value` in the environment of the server's next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// SIGKILL, leaving the server stopped.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server is running");
        child.kill().expect("kill -9 server");
        child.wait().expect("reap server");
    }

    /// Starts a stopped server again on the same data dir and ports.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "server is running");
        self.spawn().await;
    }

    /// Starts a stopped server again without waiting for it (a replicated
    /// cluster's nodes wait for each other): then [`Self::wait_healthy`].
    pub fn start_again_in_background(&mut self) {
        assert!(self.child.is_none(), "server is running");
        self.spawn_process();
    }

    /// The running process's peak resident memory (VmHWM), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far (both incarnations after a restart).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// libpq-style connection string for `dbname`.
    pub fn conn_str(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.pg_port
        )
    }

    /// URL form, for sqlx.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_port)
    }

    /// A tokio-postgres client to database `postgres`; the connection task is
    /// spawned on the current runtime.
    pub async fn connect(&self) -> Client {
        self.connect_with_handle().await.0
    }

    /// Like [`connect`](Self::connect), also returning the connection task, so
    /// a test can abort it to drop the socket without a Terminate message.
    pub async fn connect_with_handle(&self) -> (Client, tokio::task::JoinHandle<()>) {
        let (client, connection) = tokio_postgres::connect(&self.conn_str("postgres"), NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{}: {e:?}", self.pg_port));
        let handle = tokio::spawn(async move {
            let _ = connection.await;
        });
        (client, handle)
    }

    pub async fn sqlx_pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("sqlx connect to {}: {e:?}", self.url()))
    }

    /// SIGTERM, wait for a clean exit, then start again on the same data dir
    /// and ports.
    pub async fn restart(&mut self) {
        let mut child = self.child.take().expect("server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for server") {
                assert!(
                    status.success(),
                    "server did not exit cleanly after SIGTERM: {status}\n{}",
                    self.log_tail()
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server still running {SHUTDOWN_TIMEOUT:?} after SIGTERM\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.spawn().await;
    }

    /// SIGKILL (no chance to flush anything), then start again on the same
    /// data dir and ports.
    pub async fn kill9_and_restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        self.spawn_process();
        self.wait_healthy().await;
    }

    fn spawn_process(&mut self) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open server log");
        writeln!(log, "===== e2e harness: starting shardforge =====").expect("write log");
        let child = Command::new(env!("CARGO_BIN_EXE_shardforge"))
            .arg("start")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{}", self.pg_port))
            .arg("--rpc-addr")
            .arg(format!("127.0.0.1:{}", self.rpc_port))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn shardforge");
        self.child = Some(child);
    }

    /// Waits until the server answers `/health`, which it does once it is
    /// part of an initialised cluster.
    pub async fn wait_healthy(&mut self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.http_port).into();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("server is running");
            if let Some(status) = child.try_wait().expect("poll server") {
                self.child = None;
                panic!(
                    "shardforge exited during startup: {status}\n{}",
                    self.log_tail()
                );
            }
            if health_is_ok(addr) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "shardforge not healthy after {STARTUP_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        format!(
            "----- {} (last {} bytes) -----\n{}",
            self.log_path().display(),
            log.len() - start,
            &log[start..]
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Three free loopback ports no other server of this test run was given. A
/// port is free only while nobody listens on it, so a port handed out before
/// (whose server may not have bound it yet, or is restarting) is skipped.
fn free_ports() -> [u16; 3] {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Every listener is held until the end, so the OS offers a new port
    // each time.
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < 3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            ports.push(port);
        }
        held.push(listener);
    }
    [ports[0], ports[1], ports[2]]
}

/// One plain HTTP/1.0 `GET /health`; true on a 200 answer.
fn health_is_ok(addr: SocketAddr) -> bool {
    http_get(addr, "/health").is_some()
}

/// The body of a 200 answer to `GET path` from the HTTP server at `addr`.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or("");
    let ok =
        status_line.starts_with("HTTP/1.") && status_line.split_whitespace().nth(1) == Some("200");
    let (_, body) = response.split_once("\r\n\r\n")?;
    ok.then(|| body.to_string())
}

// ---- assertions shared by the test modules ----

/// The SQLSTATE of a failed tokio-postgres call, panicking with the full error
/// if it carries none (for example, the connection died).
#[track_caller]
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> SqlState {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(err) => match err.code() {
            Some(code) => code.clone(),
            None => panic!("expected a SQLSTATE, got an error without one: {err:?}"),
        },
    }
}

/// Runs `sql` with the simple query protocol and asserts it fails with `code`.
pub async fn assert_error(client: &Client, sql: &str, code: SqlState) {
    let result = client.batch_execute(sql).await;
    match &result {
        Err(err) if err.code() == Some(&code) => {}
        Err(err) => panic!(
            "{sql}\n  expected SQLSTATE {}, got {:?}: {err}",
            code.code(),
            err.code().map(|c| c.code())
        ),
        Ok(()) => panic!(
            "{sql}\n  expected SQLSTATE {}, but it succeeded",
            code.code()
        ),
    }
}

/// The SQLSTATE of a failed sqlx call.
#[track_caller]
pub fn sqlx_sqlstate<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(err) => match err.as_database_error().and_then(|e| e.code()) {
            Some(code) => code.into_owned(),
            None => panic!("expected a database error with a SQLSTATE, got {err:?}"),
        },
    }
}

/// The single `bigint` value of a one-row, one-column query (`count(*)`,
/// `sum` of an integer column, or an explicit `::bigint`).
pub async fn query_i64(client: &impl GenericClient, sql: &str) -> i64 {
    let row = client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    row.get::<_, i64>(0)
}

/// The answer of `call`, retried as a client retries a transaction it is
/// told to (40001: on a replicated cluster, a shard group changing
/// leaders); `what` names it in a failure.
pub async fn retrying<T, Fut>(what: &str, call: impl Fn() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match call().await {
            Ok(answer) => return answer,
            Err(e) => {
                assert_eq!(
                    e.code(),
                    Some(&SqlState::T_R_SERIALIZATION_FAILURE),
                    "{what}: {e:?}"
                );
                assert!(Instant::now() < deadline, "{what}: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The rows of `sql`, [`retrying`] on 40001.
pub async fn query_retrying(client: &Client, sql: &str) -> Vec<tokio_postgres::Row> {
    retrying(sql, || client.query(sql, &[])).await
}

/// Every row of a query, rendered in text by the simple query protocol:
/// what psql would show (NULL as `None`).
pub async fn text_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Shorthand for building expected [`text_rows`] results.
pub fn rows(expected: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
    expected
        .iter()
        .map(|row| row.iter().map(|v| v.map(str::to_owned)).collect())
        .collect()
}

/// A `numeric` value decoded from PostgreSQL's binary format into its text
/// form (`12345.67`, `-0.50`, `NaN`), so tests can check what the server put
/// on the wire without another dependency.
#[derive(Debug, PartialEq)]
pub struct PgNumeric(pub String);

impl<'a> tokio_postgres::types::FromSql<'a> for PgNumeric {
    fn from_sql(
        _ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
            let bytes = raw.get(2 * i..2 * i + 2).ok_or("numeric value too short")?;
            Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
        };
        let (ndigits, weight, sign, dscale) = (
            word(0)? as usize,
            word(1)? as i64,
            word(2)? as u16,
            word(3)? as usize,
        );
        if sign == 0xC000 {
            return Ok(PgNumeric("NaN".into()));
        }
        let digits: Vec<i64> = (0..ndigits)
            .map(|i| word(4 + i).map(i64::from))
            .collect::<Result<_, _>>()?;
        let digit = |i: i64| {
            if i >= 0 && (i as usize) < digits.len() {
                digits[i as usize]
            } else {
                0
            }
        };
        let mut text = if sign == 0x4000 {
            String::from("-")
        } else {
            String::new()
        };
        if weight < 0 {
            text.push('0');
        } else {
            text.push_str(&digit(0).to_string());
            for i in 1..=weight {
                text.push_str(&format!("{:04}", digit(i)));
            }
        }
        if dscale > 0 {
            let mut frac = String::new();
            let mut i = weight + 1;
            while frac.len() < dscale {
                frac.push_str(&format!("{:04}", digit(i)));
                i += 1;
            }
            frac.truncate(dscale);
            text.push('.');
            text.push_str(&frac);
        }
        Ok(PgNumeric(text))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::NUMERIC
    }
}

/// `CREATE TABLE <name>` with a key and one column of every supported type.
pub fn all_types_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            id integer PRIMARY KEY,
            c_int2 smallint,
            c_int4 integer,
            c_int8 bigint,
            c_float4 real,
            c_float8 double precision,
            c_numeric numeric(12, 2),
            c_bool boolean,
            c_text text,
            c_varchar varchar(10),
            c_char char(4),
            c_date date,
            c_ts timestamp,
            c_tstz timestamptz,
            c_bytea bytea
        )"
    )
}
