//! Garbage collection of row versions (`storage::gc`, `cluster::gc`): a
//! row updated many times keeps about one version once the retention has
//! passed, on one node and on every replica of a cluster, and nothing a
//! snapshot in use can read goes.

use std::time::{Duration, Instant};

use crate::cluster::start_cluster_with;
use crate::harness::{query_i64, TestServer};

/// Updates of the hot row; `SHARDFORGE_GC_UPDATES` runs more (the issue's
/// figure is 100,000: `tests/README.md`).
fn updates() -> i64 {
    std::env::var("SHARDFORGE_GC_UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

const ROWS: i64 = 500;
const RETENTION: (&str, &str) = ("SHARDFORGE_CLUSTER_GC_RETENTION_SECS", "1");

/// Waits until every node's last garbage collection pass counted at most
/// `at_most` row versions: the versions each counted then. Point reads go
/// on meanwhile (one through each node), which take no snapshot: the
/// floors must move on without them. (Reads, not writes: the loop's own
/// versions would stay for as long as the safe point lags, which under
/// load could be longer than the margin `at_most` leaves.)
async fn wait_versions(nodes: &[TestServer], at_most: u64) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let clients = futures::future::join_all(nodes.iter().map(|n| n.connect())).await;
    loop {
        for client in &clients {
            client
                .batch_execute("SELECT v FROM hot WHERE id = 2")
                .await
                .unwrap();
        }
        let counted: Vec<Option<u64>> = nodes
            .iter()
            .map(|n| n.metric("shardforge_mvcc_versions"))
            .collect();
        if counted.iter().all(|c| c.is_some_and(|c| c <= at_most)) {
            return counted.into_iter().flatten().collect();
        }
        assert!(
            Instant::now() < deadline,
            "row versions stay: {counted:?} (at most {at_most} wanted)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn load(client: &tokio_postgres::Client) {
    client
        .batch_execute(&format!(
            "CREATE TABLE hot (id int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO hot SELECT g, 0 FROM generate_series(1, {ROWS}) g"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_updated_many_times_keeps_one_version_once_the_retention_passed() {
    let server = TestServer::start_with(&[RETENTION]).await;
    let client = server.connect().await;
    load(&client).await;
    // A snapshot in use holds its versions: this transaction began before
    // the updates and reads the old value to the end.
    let (old_reader, old_connection) = server.connect_with_handle().await;
    old_reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    let before = query_i64(&old_reader, "SELECT v FROM hot WHERE id = 1").await;
    let n = updates();
    for _ in 0..n {
        client
            .batch_execute("UPDATE hot SET v = v + 1 WHERE id = 1")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        query_i64(&old_reader, "SELECT v FROM hot WHERE id = 1").await,
        before,
        "the old snapshot still reads its version"
    );
    old_reader.batch_execute("COMMIT").await.unwrap();
    drop(old_reader);
    old_connection.abort();

    // Once nothing reads below them, the hidden versions go.
    let counted = wait_versions(std::slice::from_ref(&server), ROWS as u64 + 20).await;
    let collected = server
        .metric("shardforge_mvcc_versions_collected_total")
        .unwrap_or_default();
    assert!(
        collected >= n as u64 - 5,
        "{collected} of {n} versions collected"
    );
    assert_eq!(
        query_i64(&client, "SELECT v FROM hot WHERE id = 1").await,
        n
    );
    assert_eq!(query_i64(&client, "SELECT count(*) FROM hot").await, ROWS);
    println!("versions after {n} updates: {counted:?}, {collected} collected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_collects_once_every_node_reported_its_snapshots() {
    let cluster = start_cluster_with(3, &[RETENTION]).await;
    let client = cluster[1].connect().await;
    load(&client).await;
    let n = updates() / 4;
    for _ in 0..n {
        client
            .batch_execute("UPDATE hot SET v = v + 1 WHERE id = 1")
            .await
            .unwrap();
    }
    // Every node holds a replica of every group: each keeps about one
    // version per row.
    wait_versions(&cluster, ROWS as u64 + 20).await;
    for node in &cluster {
        let client = node.connect().await;
        assert_eq!(
            query_i64(&client, "SELECT v FROM hot WHERE id = 1").await,
            n
        );
    }
}
