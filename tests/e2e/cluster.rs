//! A cluster of several real processes: `--join`, `shardforge init`,
//! `shardforge status`, a node joining later, liveness, and restarts that
//! keep a node's identity.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::harness::{sqlstate, TestServer};

/// How long membership may take to settle (heartbeats every second).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

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

/// The node id of each shard group in a status.
fn shard_owners(status: &str) -> Vec<u32> {
    status
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("shard"))
        .skip(1)
        .map(|l| {
            l.split_whitespace()
                .last()
                .expect("node")
                .parse()
                .expect("node id")
        })
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
    let mut refused = None;
    for _ in 0..100 {
        match tokio_postgres::connect(&cluster[1].conn_str("postgres"), NoTls).await {
            Err(e) if e.code().is_some() => {
                refused = e.code().cloned();
                break;
            }
            // Not listening yet.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(refused, Some(SqlState::CANNOT_CONNECT_NOW));

    let init = shardforge(&["init", "--host", &first]);
    assert!(
        init.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
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

    // SQL works on every node; statements on tables are refused clearly
    // until rows travel between nodes.
    let client = cluster[1].connect().await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert_eq!(
        sqlstate(
            client
                .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
                .await
        ),
        SqlState::FEATURE_NOT_SUPPORTED
    );

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
    cluster[2].start_again().await;
    let seen = wait_for_status(&first, "node 3 back", |s| {
        nodes(s).iter().filter(|n| n.2).count() == 4
    })
    .await;
    assert_eq!(nodes(&seen).len(), 4, "{seen}");
    assert_eq!(nodes(&seen)[2], (3, third, true));
}
