//! Transactions larger than their write buffer: their writes are sent
//! ahead to the shard groups while they run (`txn::sent_ahead`), so a
//! transaction of any size runs in bounded memory. The buffer is set to
//! 64 KiB here, so a few thousand rows send writes ahead many times.
//!
//! `SHARDFORGE_BIG_TXN_ROWS` sets the rows of the big `INSERT ... SELECT`
//! (20,000 by default); the test prints the server's peak memory with it
//! (see `tests/README.md` for a 10M-row run).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::cluster::start_cluster_with;
use crate::harness::{assert_error, query_i64, sqlstate, TestServer};
use crate::replication::wait_caught_up;

const SMALL_BUFFER: (&str, &str) = ("SHARDFORGE_CLUSTER_TXN_WRITE_BUFFER_KIB", "64");

fn big_rows() -> i64 {
    std::env::var("SHARDFORGE_BIG_TXN_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

async fn count(client: &Client, sql_where: &str) -> i64 {
    query_i64(client, &format!("SELECT count(*) FROM t {sql_where}")).await
}

/// Waits until `sql` succeeds on `client`: keys a rolled-back transaction
/// sent ahead are freed in the background, at once but not synchronously.
async fn eventually(client: &Client, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.batch_execute(sql).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{sql}: still failing: {e}"),
        }
    }
}

#[tokio::test]
async fn a_transaction_larger_than_its_buffer_reads_its_writes_and_commits_them_whole() {
    let n = big_rows();
    let server = TestServer::start_with(&[SMALL_BUFFER]).await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO t VALUES (0, 'before')")
        .await
        .unwrap();

    a.batch_execute("BEGIN").await.unwrap();
    let inserted = a
        .execute(
            &format!("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, {n}) g"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(inserted, n as u64);
    // It reads its own rows, sent ahead or held, by scan and by key.
    assert_eq!(count(&a, "").await, n + 1);
    let v: String = a
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "x".repeat(100));
    // A statement reads the rows of the statements before it, not its own:
    // this doubles the rows once, not forever.
    let copied = a
        .execute(
            &format!("INSERT INTO t SELECT id + {n}, v FROM t WHERE id > 0"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(copied, n as u64);
    assert_eq!(
        a.execute("UPDATE t SET v = 'y' WHERE id <= 10", &[])
            .await
            .unwrap(),
        11
    );
    assert_eq!(count(&a, "WHERE v = 'y'").await, 11);
    // An UPDATE of every row writes as it reads, its writes sent ahead,
    // and reads none of them (each row once).
    let all = a
        .execute("UPDATE t SET v = v || '+' WHERE id > 10", &[])
        .await
        .unwrap();
    assert_eq!(all, 2 * n as u64 - 10);
    assert_eq!(count(&a, "WHERE v LIKE '%+'").await, 2 * n - 10);
    assert_eq!(count(&a, "WHERE v LIKE '%++'").await, 0);
    assert_eq!(
        a.execute(
            &format!("DELETE FROM t WHERE id > {n} AND id <= {n} + 5"),
            &[]
        )
        .await
        .unwrap(),
        5
    );
    assert_eq!(count(&a, "").await, 2 * n + 1 - 5);

    // Others do not see the rows nor wait for them; a key whose write was
    // sent ahead (the first rows were) is locked: theirs to lose.
    assert_eq!(count(&b, "").await, 1);
    assert_eq!(count(&b, "WHERE v = 'y'").await, 0);
    assert_error(
        &b,
        "INSERT INTO t VALUES (1, 'other')",
        SqlState::T_R_SERIALIZATION_FAILURE,
    )
    .await;

    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&b, "").await, 2 * n + 1 - 5);
    assert_eq!(count(&b, "WHERE v = 'y'").await, 11);
    assert_eq!(count(&b, "WHERE v LIKE '%+'").await, 2 * n - 10 - 5);
    assert_eq!(
        count(&b, &format!("WHERE id > {n} AND id <= {n} + 5")).await,
        0
    );
    eprintln!(
        "{n} rows inserted and copied in one transaction: server peak memory {} MiB",
        server.peak_memory_kib() / 1024
    );
}

#[tokio::test]
async fn a_big_transaction_rolled_back_or_abandoned_leaves_nothing_and_frees_its_keys() {
    let server = TestServer::start_with(&[SMALL_BUFFER]).await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    let load = "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g";

    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute(load).await.unwrap();
    assert_eq!(count(&a, "").await, 5000);
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&a, "").await, 0);
    eventually(&b, "INSERT INTO t VALUES (1, 'b')").await;

    // A duplicate key against a row it sent ahead fails the statement.
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("INSERT INTO t SELECT g, 'a' FROM generate_series(2, 5000) g")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(a.batch_execute("INSERT INTO t VALUES (2, 'again')").await),
        SqlState::UNIQUE_VIOLATION
    );
    a.batch_execute("ROLLBACK").await.unwrap();

    // A client that goes away mid-transaction: its keys are freed.
    let (gone, connection) = server.connect_with_handle().await;
    gone.batch_execute("BEGIN").await.unwrap();
    gone.batch_execute(load.replace("1, 5000", "2, 5000").as_str())
        .await
        .unwrap();
    drop(gone);
    connection.abort();
    eventually(&b, "INSERT INTO t VALUES (2, 'b')").await;
    eventually(&b, "INSERT INTO t VALUES (5000, 'b')").await;
    assert_eq!(count(&b, "").await, 3);
}

#[tokio::test]
async fn a_big_transaction_whose_node_dies_leaves_nothing_on_any_node() {
    let mut cluster = start_cluster_with(3, &[SMALL_BUFFER]).await;
    let observer = cluster[0].connect().await;
    observer
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    wait_caught_up(&observer, 3).await;

    // Node 2 runs a transaction that sent writes ahead to shard groups led
    // all over the cluster, and dies before it commits.
    let doomed = cluster[1].connect().await;
    doomed.batch_execute("BEGIN").await.unwrap();
    doomed
        .batch_execute("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
        .await
        .unwrap();
    assert_eq!(count(&doomed, "").await, 5000);
    assert_eq!(count(&observer, "").await, 0);
    cluster[1].kill9();

    // Recovery on the groups' leaders finds no one at work on it and
    // aborts what it sent: its keys are free, and none of its rows is seen.
    eventually(&observer, "INSERT INTO t VALUES (1, 'survivor')").await;
    eventually(&observer, "INSERT INTO t VALUES (4999, 'survivor')").await;
    assert_eq!(count(&observer, "").await, 2);
    cluster[1].start_again().await;
    let back = cluster[1].connect().await;
    eventually(&back, "INSERT INTO t VALUES (2500, 'back')").await;
    assert_eq!(count(&back, "").await, 3);
}
