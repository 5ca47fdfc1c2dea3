//! A cluster of several real processes: `--join`, `shardforge init`,
//! `shardforge status`, a node joining later, liveness, and restarts that
//! keep a node's identity.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use shardforge::encoding::schema::encode_schema;
use shardforge::rpc::as_member;
use shardforge::shard::flight::scan_remote;
use shardforge::shard::proto::participant_client::ParticipantClient;
use shardforge::shard::proto::{PrepareRequest, ScanRequest};
use shardforge::txn::oracle::proto::oracle_client::OracleClient;
use shardforge::txn::oracle::proto::BeginRequest;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::harness::{query_i64, query_retrying, retrying, sqlstate, TestServer};

/// The id of the first table node 1 creates: ids start at 100, and node
/// `n` takes those `≡ n (mod 1024)`.
const FIRST_TABLE_OF_NODE_1: u32 = 1025;

/// How long membership may take to settle (heartbeats every second).
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

fn shardforge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardforge"))
        .args(args)
        .output()
        .expect("run shardforge")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `shardforge status --host addr`, which must succeed.
fn status(addr: &str) -> String {
    let output = shardforge(&["status", "--host", addr]);
    assert!(
        output.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// The `node ... live` rows of a status: `(node id, rpc address, live)`.
fn nodes(status: &str) -> Vec<(u32, String, bool)> {
    status
        .lines()
        .skip_while(|l| !l.starts_with("node"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].parse().expect("node id"),
                cols[1].to_string(),
                *cols.last().expect("live") == "yes",
            )
        })
        .collect()
}

/// The node id of each shard group in a status (its first replica, with
/// replication).
fn shard_owners(status: &str) -> Vec<u32> {
    status
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("shard"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .nth(2)
                .expect("node")
                .parse()
                .expect("node id")
        })
        .collect()
}

/// The columns of `table` as `information_schema` on `node` lists them.
async fn columns(node: &TestServer, table: &str) -> Vec<String> {
    node.connect()
        .await
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Polls `status` at `addr` until `check` holds.
async fn wait_for_status(addr: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let text = status(addr);
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}; last status:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn three_nodes_form_a_cluster_that_a_fourth_joins() {
    let mut cluster = TestServer::start_uninitialised_cluster(3);
    let [first, second, third] = [0, 1, 2].map(|i| cluster[i].rpc_addr());

    // Before init, a node refuses SQL clients with PostgreSQL's "starting up".
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let refused = loop {
        match tokio_postgres::connect(&cluster[1].conn_str("postgres"), NoTls).await {
            Err(e) if e.code().is_some() => break e.code().cloned(),
            // Not listening yet.
            other => {
                assert!(
                    Instant::now() < deadline,
                    "not refused: {:?}",
                    other.map(|_| ())
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(refused, Some(SqlState::CANNOT_CONNECT_NOW));

    let init = init(&first).await;
    assert!(stdout(&init).contains("initialised"), "{}", stdout(&init));
    for node in &mut cluster {
        node.wait_healthy().await;
    }
    let again = shardforge(&["init", "--host", &second]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));

    // Every node answers with the same cluster: nodes 1-3 in join-list order,
    // all live, the 8 shard groups spread over all three.
    let seen = wait_for_status(&third, "three live nodes", |s| {
        nodes(s).iter().filter(|n| n.2).count() == 3
    })
    .await;
    assert_eq!(
        nodes(&seen),
        vec![
            (1, first.clone(), true),
            (2, second.clone(), true),
            (3, third.clone(), true)
        ]
    );
    let owners = shard_owners(&seen);
    assert_eq!(owners.len(), 8);
    for node in 1..=3 {
        assert!(
            owners.contains(&node),
            "no shard group on node {node}: {owners:?}"
        );
    }
    assert_eq!(
        status(&first),
        status(&second),
        "the same answer from every node"
    );

    // A table created on any node exists on every node (the meta node
    // commits it and hands every node the catalog).
    let client = cluster[1].connect().await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    for node in [&cluster[0], &cluster[2]] {
        assert_eq!(columns(node, "t").await, vec!["id", "v"]);
    }
    let on_third = cluster[2].connect().await;
    assert_eq!(
        sqlstate(on_third.batch_execute("CREATE TABLE t (x int)").await),
        SqlState::DUPLICATE_TABLE
    );
    drop(on_third);

    // A fourth node joins through any member and gets the next id, no shards.
    let fourth = TestServer::start_joining(&second).await;
    let seen = wait_for_status(&first, "node 4 live", |s| {
        nodes(s).iter().any(|n| n.0 == 4 && n.2)
    })
    .await;
    assert_eq!(nodes(&seen)[3].1, fourth.rpc_addr());
    assert!(!shard_owners(&seen).contains(&4));

    // A killed node is reported down; restarted on its data dir it is the
    // same member again.
    cluster[2].kill9();
    wait_for_status(&fourth.rpc_addr(), "node 3 down", |s| {
        nodes(s).iter().any(|n| n.0 == 3 && !n.2)
    })
    .await;
    // A schema change while it is down reaches it when it comes back.
    cluster[0]
        .connect()
        .await
        .batch_execute("DROP TABLE t; CREATE TABLE u (k bigint PRIMARY KEY)")
        .await
        .unwrap();
    assert!(columns(&fourth, "t").await.is_empty());
    assert_eq!(columns(&fourth, "u").await, vec!["k"]);
    cluster[2].start_again().await;
    assert!(columns(&cluster[2], "t").await.is_empty());
    assert_eq!(columns(&cluster[2], "u").await, vec!["k"]);
    let seen = wait_for_status(&first, "node 3 back", |s| {
        nodes(s).iter().filter(|n| n.2).count() == 4
    })
    .await;
    assert_eq!(nodes(&seen).len(), 4, "{seen}");
    assert_eq!(nodes(&seen)[2], (3, third, true));
}

#[tokio::test]
async fn demo_runs_a_cluster_whose_system_tables_show_it() {
    use std::io::{BufRead, BufReader};

    /// Stops the demo (and so its nodes) if the test fails half-way.
    struct Stop(Option<std::process::Child>);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Some(mut demo) = self.0.take() {
                let _ = Command::new("kill")
                    .args(["-TERM", &demo.id().to_string()])
                    .status();
                let _ = demo.wait();
            }
        }
    }

    let mut demo = Command::new(env!("CARGO_BIN_EXE_shardforge"))
        .args(["demo", "--nodes", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run shardforge demo");
    let out = BufReader::new(demo.stdout.take().expect("demo stdout"));
    let mut guard = Stop(Some(demo));
    // Reading blocks, so it runs on a thread; the lines up to the last one
    // the demo prints before it waits.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in out.lines() {
            let line = line.expect("demo output");
            let done = line.starts_with("Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let data_dir = lines[0]
        .split("data in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no data dir in {lines:?}"))
        .to_string();
    let port = lines
        .iter()
        .find_map(|l| l.strip_prefix("node 2: psql -h 127.0.0.1 -p "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no connection string for node 2 in {lines:?}"));

    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        NoTls,
    )
    .await
    .expect("connect to demo node 2");
    tokio::spawn(connection);
    let nodes: Vec<(i32, bool, bool)> = client
        .query(
            "SELECT node_id, is_live, is_meta FROM shardforge_nodes ORDER BY node_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        nodes,
        vec![(1, true, true), (2, true, false), (3, true, false)]
    );
    let per_node: Vec<(i32, i64)> = client
        .query(
            "SELECT node_id, count(*) FROM shardforge_shards GROUP BY node_id ORDER BY node_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(per_node, vec![(1, 3), (2, 3), (3, 2)]);
    drop(client);

    // SIGTERM stops the nodes and removes the data.
    let mut demo = guard.0.take().expect("demo running");
    let status = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .unwrap()
        .expect("wait for demo");
    assert!(exit.success(), "demo exited with {exit}");
    assert!(
        !std::path::Path::new(&data_dir).exists(),
        "{data_dir} is left"
    );
}

#[tokio::test]
async fn a_lone_node_is_a_one_node_cluster_with_every_shard_group() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let row = client
        .query_one(
            "SELECT node_id, is_live, is_meta, rpc_addr FROM shardforge_nodes",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i32>(0), row.get(1), row.get(2)),
        (1, true, true)
    );
    assert_eq!(row.get::<_, String>(3), server.rpc_addr());
    let row = client
        .query_one(
            "SELECT count(*), min(node_id), max(node_id) FROM shardforge_shards",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i32>(1),
            row.get::<_, i32>(2)
        ),
        (8, 1, 1)
    );
    // The system tables' names are taken; user tables work as ever.
    assert_eq!(
        sqlstate(
            client
                .batch_execute("CREATE TABLE shardforge_nodes (x int)")
                .await
        ),
        SqlState::DUPLICATE_TABLE
    );
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();

    // Its rpc address serves scans of its shard groups over Arrow Flight to
    // members of its cluster, as other nodes will read them.
    let cluster_id = status(&server.rpc_addr())
        .split_whitespace()
        .nth(1)
        .expect("cluster id")
        .to_string();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.rpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let schema = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
    let mut ids = Vec::new();
    for shard_id in 0..8 {
        let request = ScanRequest {
            table_id: FIRST_TABLE_OF_NODE_1,
            shard_id,
            snapshot_ts: u64::MAX >> 1,
            row_schema: encode_schema(&schema),
            projection: vec![0],
            ..Default::default()
        };
        let batches: Vec<RecordBatch> =
            scan_remote(channel.clone(), &cluster_id, "node 1", &request)
                .try_collect()
                .await
                .unwrap();
        for batch in batches {
            ids.extend(
                batch
                    .column(0)
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3]);
    let request = ScanRequest {
        table_id: FIRST_TABLE_OF_NODE_1,
        row_schema: encode_schema(&schema),
        ..Default::default()
    };
    let stranger: Result<Vec<RecordBatch>, _> =
        scan_remote(channel.clone(), "another-cluster", "node 1", &request)
            .try_collect()
            .await;
    assert!(stranger
        .unwrap_err()
        .to_string()
        .contains("outside cluster"));
    // So do its transaction services: a node of another cluster can
    // neither prepare writes here nor take timestamps.
    let prepare = PrepareRequest {
        txn_id: b"stranger".to_vec(),
        ..Default::default()
    };
    let refused = ParticipantClient::new(channel.clone())
        .prepare(as_member(prepare, "another-cluster").unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused = OracleClient::new(channel)
        .begin(as_member(BeginRequest { count: 1 }, "another-cluster").unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
}

/// With node 1 (where `init` ran) dead, a new node joins through a
/// survivor: the meta group admits it, and it reads and writes every shard
/// group, finding the new leaders of the groups node 1 led. A node joining
/// through that one is forwarded to the meta group. Node 1, back, counts
/// both as members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_while_node_1_is_down() {
    let mut cluster = start_cluster(3).await;
    cluster[1]
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO kv SELECT g, g * 1 FROM generate_series(1, 64) g",
        )
        .await
        .unwrap();
    cluster[0].kill9();
    let fourth = TestServer::start_joining(&cluster[1].rpc_addr()).await;
    let client = fourth.connect().await;
    // The new node knows no leader yet and guesses each group's first
    // replica, node 1 for some: the scan moves on to the one elected.
    let sum = "SELECT sum(v)::bigint FROM kv";
    assert_eq!(query_i64(&client, sum).await, 64 * 65 / 2);
    client
        .batch_execute("UPDATE kv SET v = v + 1")
        .await
        .unwrap();

    let fifth = TestServer::start_joining(&fourth.rpc_addr()).await;
    assert_eq!(
        query_i64(&fifth.connect().await, sum).await,
        64 * 65 / 2 + 64
    );
    let seen = wait_for_status(&fifth.rpc_addr(), "nodes 4 and 5 live", |s| {
        let nodes = nodes(s);
        nodes.len() == 5 && nodes[3].2 && nodes[4].2
    })
    .await;
    assert_eq!(nodes(&seen)[3].1, fourth.rpc_addr());
    assert_eq!(nodes(&seen)[4].1, fifth.rpc_addr());
    assert!(!shard_owners(&seen).contains(&4));

    cluster[0].start_again().await;
    wait_for_status(&cluster[0].rpc_addr(), "all five live", |s| {
        nodes(s).iter().filter(|n| n.2).count() == 5
    })
    .await;
    assert_eq!(
        query_i64(&cluster[0].connect().await, sum).await,
        64 * 65 / 2 + 64
    );
}

/// A node gone for good is decommissioned: refused while it is live; once
/// it is down, its replicas (of every shard group and of the meta group)
/// are re-created on a node that joined later, which then holds the
/// majority with node 1 when node 2 dies too. Status shows it removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_nodes_replicas_are_re_created_on_the_others() {
    let mut cluster = start_cluster(3).await;
    let client = cluster[0].connect().await;
    client
        .batch_execute(
            "CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO kv SELECT g, g FROM generate_series(1, 200) g",
        )
        .await
        .unwrap();
    let fourth = TestServer::start_joining(&cluster[0].rpc_addr()).await;
    let decommission = |host: &str| shardforge(&["decommission", "--node", "3", "--host", host]);

    let refused = decommission(&cluster[1].rpc_addr());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("node 3 is live"),
        "{refused:?}"
    );

    cluster[2].kill9();
    // Through node 4, which forwards it to the meta group's leader, once
    // that no longer hears node 3.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let done = decommission(&fourth.rpc_addr());
        if done.status.success() {
            assert!(stdout(&done).contains("node 3 decommissioned"), "{done:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{done:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = wait_for_status(&cluster[0].rpc_addr(), "node 3 removed", |s| {
        s.lines()
            .any(|l| l.trim_start().starts_with('3') && l.ends_with("removed"))
    })
    .await;
    assert!(!shard_owners(&seen).contains(&3));
    client
        .batch_execute("UPDATE kv SET v = v + 1 WHERE k <= 100")
        .await
        .unwrap();

    // Node 4 catches up on every group (a snapshot, then the log) and
    // becomes one of its voters.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let row = client
            .query_one(
                "SELECT count(*), max(lag) FROM shardforge_replicas \
                 WHERE node_id = 4 AND shard_id IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        let (replicas, lag): (i64, Option<i64>) = (row.get(0), row.get(1));
        if replicas == 8 && lag == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 4 holds {replicas} replicas, lag {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sum = "SELECT sum(v)::bigint FROM kv";
    assert_eq!(
        query_i64(&fourth.connect().await, sum).await,
        200 * 201 / 2 + 100
    );

    // Every group (and the meta group) is now on nodes 1, 2 and 4: with
    // node 2 dead too, nodes 1 and 4 are a majority of each.
    cluster[1].kill9();
    let on_fourth = fourth.connect().await;
    retrying("an update with node 2 dead", || {
        on_fourth.batch_execute("UPDATE kv SET v = v + 1")
    })
    .await;
    assert_eq!(
        query_retrying(&client, sum).await[0].get::<_, i64>(0),
        200 * 201 / 2 + 100 + 200
    );
}

/// In a cluster that does not replicate, node 1 admits a node that joins
/// later, whichever member it asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replication_node_1_admits_a_node_joining_through_another() {
    let cluster = start_cluster_with(2, &[("SHARDFORGE_CLUSTER_REPLICATION_FACTOR", "1")]).await;
    let third = TestServer::start_joining(&cluster[1].rpc_addr()).await;
    let seen = wait_for_status(&third.rpc_addr(), "node 3 live", |s| {
        nodes(s).iter().any(|n| n.0 == 3 && n.2)
    })
    .await;
    assert_eq!(nodes(&seen).len(), 3);
    assert!(!shard_owners(&seen).contains(&3));
    third
        .connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 100) g")
        .await
        .unwrap();
    let on_first = cluster[0].connect().await;
    assert_eq!(query_i64(&on_first, "SELECT count(*) FROM t").await, 100);
}

/// `n` nodes started with `--join`, initialised, serving SQL.
pub(crate) async fn start_cluster(n: usize) -> Vec<TestServer> {
    start_cluster_with(n, &[]).await
}

/// [`start_cluster`] with settings `env` for every node.
pub(crate) async fn start_cluster_with(n: usize, env: &[(&str, &str)]) -> Vec<TestServer> {
    let mut nodes = TestServer::start_uninitialised_cluster_with(n, env);
    init(&nodes[0].rpc_addr()).await;
    for node in &mut nodes {
        node.wait_healthy().await;
    }
    nodes
}

/// `shardforge init --host addr`, once every node of its join list listens
/// (until then init cannot reach them).
async fn init(addr: &str) -> Output {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let init = shardforge(&["init", "--host", addr]);
        if init.status.success() {
            return init;
        }
        let stderr = String::from_utf8_lossy(&init.stderr).into_owned();
        assert!(Instant::now() < deadline, "init: {stderr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A client of every node of `cluster`, in order.
async fn connect_all(cluster: &[TestServer]) -> Vec<tokio_postgres::Client> {
    let mut clients = Vec::new();
    for node in cluster {
        clients.push(node.connect().await);
    }
    clients
}

#[tokio::test]
async fn rows_spread_over_three_nodes_and_every_node_answers_the_same() {
    let mut cluster = start_cluster(3).await;
    let clients = connect_all(&cluster).await;
    clients[1]
        .batch_execute(
            "CREATE TABLE acc (id int PRIMARY KEY, owner text NOT NULL, bal bigint NOT NULL)",
        )
        .await
        .unwrap();
    // One INSERT on node 3 writes shard groups on all three nodes: one
    // two-phase commit.
    clients[2]
        .batch_execute("INSERT INTO acc SELECT g, 'o' || g, 100 FROM generate_series(1, 60) g")
        .await
        .unwrap();
    for client in &clients {
        let row = client
            .query_one("SELECT count(*), sum(bal)::bigint FROM acc", &[])
            .await
            .unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (60, 6000));
        let owner: String = client
            .query_one("SELECT owner FROM acc WHERE id = 42", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(owner, "o42");
    }
    // EXPLAIN names the node serving each shard group's scan.
    let plan: Vec<String> = clients[0]
        .query("EXPLAIN SELECT count(*) FROM acc", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(1))
        .collect();
    let plan = plan.join("\n");
    for node in 1..=3 {
        assert!(plan.contains(&format!("@node{node}")), "{plan}");
    }

    // Transfers between rows on different nodes, from every node: the total
    // never changes, and a failed statement leaves nothing.
    for (i, client) in clients.iter().enumerate() {
        let (from, to) = (i as i32 + 1, i as i32 + 31);
        client
            .batch_execute(&format!(
                "BEGIN; UPDATE acc SET bal = bal - 7 WHERE id = {from}; \
                 UPDATE acc SET bal = bal + 7 WHERE id = {to}; COMMIT"
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        sqlstate(
            clients[0]
                .batch_execute("INSERT INTO acc VALUES (61, 'x', 1), (5, 'dup', 1)")
                .await
        ),
        SqlState::UNIQUE_VIOLATION
    );
    for client in &clients {
        let row = client
            .query_one("SELECT count(*), sum(bal)::bigint, min(bal) FROM acc", &[])
            .await
            .unwrap();
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2)
            ),
            (60, 6000, 93)
        );
    }

    // A node that is down: a read of the shard groups it led waits for
    // their new leaders (an election takes a second or two); if that takes
    // longer than the read may wait, it fails with "retry" (40001) naming
    // the dead node, never with a partial answer. It comes back with its
    // rows.
    cluster[2].kill9();
    match clients[0].query_one("SELECT count(*) FROM acc", &[]).await {
        Ok(row) => assert_eq!(row.get::<_, i64>(0), 60),
        Err(error) => {
            let message = error
                .as_db_error()
                .map(|e| e.message().to_string())
                .unwrap_or_default();
            assert!(message.contains("node 3"), "{error:?}");
            assert_eq!(error.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
        }
    }
    cluster[2].start_again().await;
    assert_eq!(
        query_retrying(&cluster[2].connect().await, "SELECT count(*) FROM acc").await[0]
            .get::<_, i64>(0),
        60
    );
}

#[tokio::test]
async fn killing_a_coordinator_mid_commit_leaves_no_half_transaction() {
    let mut cluster = start_cluster(3).await;
    let admin = cluster[0].connect().await;
    admin
        .batch_execute("CREATE TABLE bank (id int PRIMARY KEY, bal bigint NOT NULL)")
        .await
        .unwrap();
    admin
        .batch_execute("INSERT INTO bank SELECT g, 100 FROM generate_series(1, 30) g")
        .await
        .unwrap();

    // Transfers coordinated by node 2, between rows on every node, until
    // node 2 dies.
    let mut workers = Vec::new();
    for w in 0..3 {
        let client = cluster[1].connect().await;
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let (from, to) = ((i * 7 + w) % 30 + 1, (i * 11 + w + 5) % 30 + 1);
                if from == to {
                    continue;
                }
                let sql = format!(
                    "BEGIN; UPDATE bank SET bal = bal - 1 WHERE id = {from}; \
                     UPDATE bank SET bal = bal + 1 WHERE id = {to}; COMMIT"
                );
                if let Err(e) = client.batch_execute(&sql).await {
                    if e.is_closed() || e.code().is_none() {
                        return;
                    }
                    let _ = client.batch_execute("ROLLBACK").await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster[1].kill9();
    for worker in workers {
        worker.await.unwrap();
    }
    // The groups it led elect new leaders on the other two nodes: reads go
    // on without it (a read that still found the dead leader is told to
    // retry, 40001), and they see all of a transfer or none.
    assert_eq!(settled_total(&admin).await, (30, 3000));

    // Back up: every read, on every node, sees all of a transfer or none,
    // before recovery too; recovery resolves what node 2 left prepared, so
    // every row can be written again, and the total still holds.
    cluster[1].start_again().await;
    for node in &cluster {
        assert_eq!(settled_total(&node.connect().await).await, (30, 3000));
    }
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match admin.batch_execute("UPDATE bank SET bal = bal + 0").await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "rows stay locked: {e:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    for node in &cluster {
        assert_eq!(settled_total(&node.connect().await).await, (30, 3000));
    }
}

/// Rows and total balance of `bank`, once a read gets through: until the
/// groups of a node that died have new leaders, a read is told to retry.
pub(crate) async fn settled_total(client: &tokio_postgres::Client) -> (i64, i64) {
    let rows = query_retrying(client, "SELECT count(*), sum(bal)::bigint FROM bank").await;
    (rows[0].get(0), rows[0].get(1))
}

/// A repeatable stream of transfers of 1 to 5 between two different
/// accounts of `1..=accounts`, from `seed`: `((from, to, amount), sql)`.
pub(crate) fn random_transfers(
    seed: u64,
    accounts: i64,
) -> impl FnMut() -> ((i64, i64, i64), String) {
    let mut seed = seed * 7919 + 1;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    move || loop {
        let from = next(accounts as u64) as i64 + 1;
        let to = next(accounts as u64) as i64 + 1;
        let amount = next(5) as i64 + 1;
        if from != to {
            let sql = format!(
                "BEGIN; UPDATE bank SET bal = bal - {amount} WHERE id = {from}; \
                 UPDATE bank SET bal = bal + {amount} WHERE id = {to}; COMMIT"
            );
            return ((from, to, amount), sql);
        }
    }
}

/// Transfers run concurrently from clients on all three nodes while a reader
/// on each node sums the balances: every read sees the same total, no
/// balance goes negative, and at the end each account holds exactly what
/// the acknowledged transfers left it.
#[tokio::test]
async fn concurrent_transfers_on_every_node_keep_every_read_consistent() {
    const ACCOUNTS: i64 = 20;
    const START: i64 = 1_000;
    const TRANSFERS: usize = 30;
    let cluster = start_cluster(3).await;
    let admin = cluster[0].connect().await;
    admin
        .batch_execute("CREATE TABLE bank (id int PRIMARY KEY, bal bigint NOT NULL)")
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "INSERT INTO bank SELECT g, {START} FROM generate_series(1, {ACCOUNTS}) g"
        ))
        .await
        .unwrap();

    // Two writers per node. Each retries a transfer that lost a conflict
    // (40001) and returns the transfers that were acknowledged.
    let mut writers = Vec::new();
    for w in 0..6u64 {
        let client = cluster[w as usize % 3].connect().await;
        writers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut next = random_transfers(w, ACCOUNTS);
            while done.len() < TRANSFERS {
                let ((from, to, amount), sql) = next();
                loop {
                    match client.batch_execute(&sql).await {
                        Ok(()) => break,
                        Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                            client.batch_execute("ROLLBACK").await.unwrap();
                        }
                        Err(e) => panic!("transfer from writer {w}: {e:?}"),
                    }
                }
                done.push((from, to, amount));
            }
            done
        }));
    }
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut readers = Vec::new();
    for node in &cluster {
        let client = node.connect().await;
        let writing = writing.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                let row = client
                    .query_one("SELECT count(*), sum(bal)::bigint, min(bal) FROM bank", &[])
                    .await
                    .unwrap();
                let (count, total, min) = (
                    row.get::<_, i64>(0),
                    row.get::<_, i64>(1),
                    row.get::<_, i64>(2),
                );
                assert_eq!((count, total), (ACCOUNTS, ACCOUNTS * START), "read {reads}");
                assert!(min >= 0, "a negative balance: {min}");
                reads += 1;
            }
            reads
        }));
    }

    let mut expected = vec![START; ACCOUNTS as usize + 1];
    for writer in writers {
        for (from, to, amount) in writer.await.unwrap() {
            expected[from as usize] -= amount;
            expected[to as usize] += amount;
        }
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    for node in &cluster {
        let balances: Vec<i64> = node
            .connect()
            .await
            .query("SELECT bal FROM bank ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(balances, expected[1..]);
    }
}

/// CREATE TABLE and its rows in one transaction, off the meta node, with
/// rows on every node: all of it or none. Racing creates on two nodes: the
/// first commit wins (42P07 for the other); rows written into a table
/// another node dropped meanwhile: 40001.
#[tokio::test]
async fn ddl_and_rows_commit_together_across_nodes() {
    let cluster = start_cluster(3).await;
    let clients = connect_all(&cluster).await;
    clients[1]
        .batch_execute(
            "BEGIN; CREATE TABLE m (id int PRIMARY KEY, v text); \
             INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 60) g",
        )
        .await
        .unwrap();
    // Nobody else sees the table before COMMIT.
    assert_eq!(
        sqlstate(clients[0].query("SELECT * FROM m", &[]).await),
        SqlState::UNDEFINED_TABLE
    );
    clients[1].batch_execute("COMMIT").await.unwrap();
    for client in &clients {
        assert_eq!(query_i64(client, "SELECT count(*) FROM m").await, 60);
    }
    // Rolled back: neither the table nor its rows.
    clients[2]
        .batch_execute(
            "BEGIN; CREATE TABLE gone (id int PRIMARY KEY); \
             INSERT INTO gone SELECT g FROM generate_series(1, 10) g; ROLLBACK",
        )
        .await
        .unwrap();
    assert_eq!(
        sqlstate(clients[0].query("SELECT * FROM gone", &[]).await),
        SqlState::UNDEFINED_TABLE
    );

    // Two nodes create the same name: the first commit wins.
    for client in &clients[1..] {
        client
            .batch_execute(
                "BEGIN; CREATE TABLE race (id int PRIMARY KEY); \
                 INSERT INTO race SELECT g FROM generate_series(1, 20) g",
            )
            .await
            .unwrap();
    }
    clients[2].batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        sqlstate(clients[1].batch_execute("COMMIT").await),
        SqlState::DUPLICATE_TABLE
    );

    // Rows into a table that another node drops before they commit.
    clients[2]
        .batch_execute("BEGIN; INSERT INTO m SELECT g FROM generate_series(100, 130) g")
        .await
        .unwrap();
    clients[1].batch_execute("DROP TABLE m").await.unwrap();
    assert_eq!(
        sqlstate(clients[2].batch_execute("COMMIT").await),
        SqlState::T_R_SERIALIZATION_FAILURE
    );
    for client in &clients {
        assert_eq!(
            sqlstate(client.query("SELECT * FROM m", &[]).await),
            SqlState::UNDEFINED_TABLE
        );
        assert_eq!(query_i64(client, "SELECT count(*) FROM race").await, 20);
    }
}

/// A node that dies while a query on another node reads the shard groups it
/// leads: the query fails with "retry the transaction" (40001: the groups
/// elect new leaders), or (if it had read them all) is whole; it never ends
/// early as if it were done. The node comes back with every row.
#[tokio::test]
async fn a_node_dying_mid_scan_never_gives_a_partial_answer() {
    const ROWS: i64 = 100_000;
    let mut cluster = start_cluster(3).await;
    let client = cluster[0].connect().await;
    client
        .batch_execute("CREATE TABLE wide (id int PRIMARY KEY, pad text NOT NULL)")
        .await
        .unwrap();
    // On a loaded machine the load can meet a leader change (40001,
    // nothing written), a group without a quorum for a while (58000), or
    // a commit whose outcome its node could not learn (40003): retried,
    // as a client does, once the rows are seen not to be there.
    let load =
        format!("INSERT INTO wide SELECT g, repeat('x', 100) FROM generate_series(1, {ROWS}) g");
    let retried = [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::from_code("58000"),
        SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN,
    ];
    for attempt in 1.. {
        match client.batch_execute(&load).await {
            Ok(()) => break,
            Err(e) if e.code().is_some_and(|c| retried.contains(c)) && attempt < 5 => {
                if query_i64(&client, "SELECT count(*) FROM wide").await == ROWS {
                    break;
                }
            }
            Err(e) => panic!("loading the rows: {e:?}"),
        }
    }
    // Node 3 dies while the query runs (its scan of 100,000 rows takes a
    // while in a debug build; if it was quicker, the answer must be whole).
    let query = {
        let client = cluster[1].connect().await;
        tokio::spawn(async move { client.query("SELECT id, pad FROM wide", &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    cluster[2].kill9();
    match query.await.unwrap() {
        Err(e) => assert_eq!(
            e.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE),
            "{e:?}"
        ),
        Ok(rows) => assert_eq!(rows.len() as i64, ROWS, "an answer cut short"),
    }
    // The connection still works, and the node comes back with its rows.
    cluster[2].start_again().await;
    for node in &cluster {
        assert_eq!(
            query_retrying(&node.connect().await, "SELECT count(*) FROM wide").await[0]
                .get::<_, i64>(0),
            ROWS
        );
    }
    assert_eq!(
        query_retrying(&client, "SELECT count(*) FROM wide").await[0].get::<_, i64>(0),
        ROWS
    );
}
