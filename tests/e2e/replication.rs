//! Replicated shard groups under faults, with real processes: a 3-node
//! cluster keeps every shard group, and the meta group (oracle and
//! catalog), on all three nodes (Raft, replication factor 3), so killing
//! any one node loses nothing acknowledged and writes and schema changes go
//! on; killing two stops them with a clear error; a node that comes back
//! catches up, from the log or from a snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::cluster::{
    random_transfers, settled_total, start_cluster, start_cluster_with, SETTLE_TIMEOUT,
};
use crate::harness::{query_i64, query_retrying, retrying, TestServer};

const ACCOUNTS: i64 = 20;
const START: i64 = 1_000;

async fn create_bank(client: &Client) {
    client
        .batch_execute("CREATE TABLE bank (id int PRIMARY KEY, bal bigint NOT NULL)")
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO bank SELECT g, {START} FROM generate_series(1, {ACCOUNTS}) g"
        ))
        .await
        .unwrap();
}

type Transfer = (i64, i64, i64);

/// Transfers through `client` until `stop` (or until its node dies): the
/// acknowledged ones, and the one in flight when the node died, whose
/// outcome the client cannot know. A transfer that fails is not counted: a
/// conflict or a leader change (40001), or a group without a leader for a
/// moment (58000/08006), aborts it whole. An outcome the coordinator cannot
/// know would be a failure of the test: a new oracle is elected in time.
async fn transfers(
    client: Client,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> (Vec<Transfer>, Option<Transfer>) {
    let mut done = Vec::new();
    let mut next = random_transfers(seed, ACCOUNTS);
    while !stop.load(Ordering::Relaxed) {
        let ((from, to, amount), sql) = next();
        match client.batch_execute(&sql).await {
            Ok(()) => done.push((from, to, amount)),
            Err(e) if e.is_closed() || e.code().is_none() => {
                return (done, Some((from, to, amount)))
            }
            Err(e) => {
                let code = e.code().cloned();
                assert!(
                    [
                        SqlState::T_R_SERIALIZATION_FAILURE,
                        SqlState::SYSTEM_ERROR,
                        SqlState::CONNECTION_FAILURE
                    ]
                    .contains(code.as_ref().unwrap_or(&SqlState::INTERNAL_ERROR)),
                    "transfer: {e:?}"
                );
                let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
                assert!(!message.contains("unknown"), "transfer: {e:?}");
                if client.batch_execute("ROLLBACK").await.is_err() {
                    return (done, None);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (done, None)
}

/// Sums the balances through `client` until `stop`: every read that gets
/// through sees the whole total and no negative balance. The number of
/// reads.
async fn check_reads(client: Client, stop: Arc<AtomicBool>) -> usize {
    let mut reads = 0;
    while !stop.load(Ordering::Relaxed) {
        match client
            .query_one("SELECT count(*), sum(bal)::bigint, min(bal) FROM bank", &[])
            .await
        {
            Ok(row) => {
                let (count, total, min): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
                assert_eq!((count, total), (ACCOUNTS, ACCOUNTS * START), "read {reads}");
                assert!(min >= 0, "a negative balance: {min}");
                reads += 1;
            }
            Err(e) => assert_eq!(
                e.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE),
                "read: {e:?}"
            ),
        }
    }
    reads
}

/// Every node's balances, which must be exactly what `acknowledged` left,
/// with or without each transfer of `unknown` (in flight on a node that
/// died).
async fn assert_balances(cluster: &[TestServer], acknowledged: &[Transfer], unknown: &[Transfer]) {
    let apply = |transfers: &mut dyn Iterator<Item = &Transfer>| {
        let mut balances = vec![START; ACCOUNTS as usize + 1];
        for &(from, to, amount) in transfers {
            balances[from as usize] -= amount;
            balances[to as usize] += amount;
        }
        balances[1..].to_vec()
    };
    let without = apply(&mut acknowledged.iter());
    let possible: Vec<Vec<i64>> = (0..1usize << unknown.len())
        .map(|subset| {
            let landed = unknown
                .iter()
                .enumerate()
                .filter(|(i, _)| subset & (1 << i) != 0)
                .map(|(_, t)| t);
            apply(&mut acknowledged.iter().chain(landed))
        })
        .collect();
    for node in cluster {
        let client = node.connect().await;
        assert_eq!(settled_total(&client).await, (ACCOUNTS, ACCOUNTS * START));
        let balances: Vec<i64> = query_retrying(&client, "SELECT bal FROM bank ORDER BY id")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            possible.contains(&balances),
            "balances read on port {}: {balances:?}, acknowledged: {without:?}",
            node.pg_port
        );
    }
}

/// Waits until every shard group has a replica on each of `nodes` that has
/// applied all its leader's log (`shardforge_replicas`).
pub(crate) async fn wait_caught_up(client: &Client, nodes: i64) {
    wait_caught_up_groups(client, nodes, 8).await
}

/// [`wait_caught_up`] for a cluster of `groups` shard groups.
async fn wait_caught_up_groups(client: &Client, nodes: i64, groups: i64) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT node_id), max(lag), \
                 count(*) FILTER (WHERE is_leader) FROM shardforge_replicas \
                 WHERE shard_id IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        let (replicas, on, lag, leaders): (i64, i64, Option<i64>, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if replicas == groups * nodes && on == nodes && lag == Some(0) && leaders == groups {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up: {replicas} replicas on {on} nodes, lag {lag:?}, {leaders} leaders"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGKILL of node 3, which leads shard groups, while transfers run on
/// every node: see [`kill_under_load`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_under_load_loses_no_acknowledged_transfer_and_catches_up() {
    kill_under_load(3).await;
}

/// SIGKILL of node 1, which leads shard groups and the meta group (the
/// oracle every commit asks, and the catalog): see [`kill_under_load`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meta_leader_killed_under_load_loses_nothing_and_schema_changes_go_on() {
    kill_under_load(1).await;
}

/// SIGKILL of node `victim` while transfers run on every node: no
/// acknowledged transfer is lost or applied twice, every read sees the
/// same total, writes and schema changes go on through the other nodes,
/// which elect a new leader for every group the victim led, and the node
/// catches up (rows and catalog) when it comes back.
async fn kill_under_load(victim: u32) {
    let mut cluster = start_cluster(3).await;
    let at = |node: u32| (node - 1) as usize;
    let others: Vec<usize> = (1..=3).filter(|&n| n != victim).map(at).collect();
    let admin = cluster[others[0]].connect().await;
    create_bank(&admin).await;
    // Rows in every shard group, written by nobody else.
    admin
        .batch_execute(
            "CREATE TABLE probe (id int PRIMARY KEY, v int NOT NULL); \
             INSERT INTO probe SELECT g, 0 FROM generate_series(1, 64) g",
        )
        .await
        .unwrap();
    // Each node is the first replica, and so the first leader, of some
    // shard groups.
    let led: i64 = query_i64(
        &admin,
        &format!(
            "SELECT count(*) FROM shardforge_replicas \
             WHERE node_id = {victim} AND is_leader AND shard_id IS NOT NULL"
        ),
    )
    .await;
    assert!(led > 0, "node {victim} leads no shard group");

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..5u64 {
        let client = cluster[[0, 1, 2, 0, 1][w as usize]].connect().await;
        writers.push(tokio::spawn(transfers(client, w, stop.clone())));
    }
    let mut readers = Vec::new();
    for &node in &others {
        readers.push(tokio::spawn(check_reads(
            cluster[node].connect().await,
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster[at(victim)].kill9();
    // Writes to every group go on without it...
    let after_kill = Instant::now();
    let probe = cluster[others[0]].connect().await;
    let deadline = after_kill + SETTLE_TIMEOUT;
    while let Err(e) = probe.batch_execute("UPDATE probe SET v = v + 1").await {
        assert!(Instant::now() < deadline, "writes did not resume: {e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "a write to every shard group succeeded {:?} after node {victim} was killed",
        after_kill.elapsed()
    );
    // ... so do schema changes, seen by the other survivor at once ...
    for sql in [
        "CREATE TABLE made_meanwhile (id int PRIMARY KEY)",
        "INSERT INTO made_meanwhile VALUES (1), (2)",
    ] {
        retrying(sql, || probe.batch_execute(sql)).await;
    }
    let other = cluster[others[1]].connect().await;
    let count = "SELECT count(*) FROM made_meanwhile";
    assert_eq!(query_retrying(&other, count).await[0].get::<_, i64>(0), 2);
    // ... and the oracle is on a node that is up.
    let oracle = "SELECT node_id::bigint FROM shardforge_nodes WHERE is_meta";
    let oracle_node: i64 = query_retrying(&other, oracle).await[0].get(0);
    assert_ne!(oracle_node, i64::from(victim));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The node catches up when it is back.
    cluster[at(victim)].start_again().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unknown = Vec::new();
    for writer in writers {
        let (done, in_flight) = writer.await.unwrap();
        acknowledged.extend(done);
        unknown.extend(in_flight);
    }
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    assert!(acknowledged.len() > 10, "{} transfers", acknowledged.len());
    wait_caught_up(&admin, 3).await;
    assert_balances(&cluster, &acknowledged, &unknown).await;
    let back = cluster[at(victim)].connect().await;
    assert_eq!(query_retrying(&back, count).await[0].get::<_, i64>(0), 2);
}

/// With two of three nodes down, no shard group has a majority: a write
/// fails with a clear error, and nothing is written. One node back, and
/// writes resume with every row there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_down_stop_writes_with_a_clear_error_until_one_is_back() {
    let mut cluster = start_cluster(3).await;
    let client = cluster[0].connect().await;
    create_bank(&client).await;
    cluster[1].kill9();
    cluster[2].kill9();
    // A write racing the kills may have been appended to its group's log
    // before the group knew it had lost its majority: its outcome is
    // unknown (40003) until the majority is back. Every later write is
    // refused at once.
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in 1000.. {
        let error = client
            .batch_execute(&format!("INSERT INTO bank VALUES ({id}, 1)"))
            .await
            .expect_err("a write without a majority");
        let _ = client.batch_execute("ROLLBACK").await;
        if error.code() == Some(&SqlState::from_code("40003")) {
            unknown.push(id);
        }
        errors.push(format!("{error:?}"));
        if errors
            .last()
            .is_some_and(|e| e.contains("a majority must be up"))
            || Instant::now() > deadline
        {
            break;
        }
    }
    assert!(
        errors
            .last()
            .is_some_and(|e| e.contains("a majority must be up")),
        "{errors:#?}"
    );
    assert!(
        unknown.len() <= 1,
        "only a write racing the kills: {errors:#?}"
    );
    cluster[1].start_again().await;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while let Err(e) = client
        .batch_execute("INSERT INTO bank VALUES (999, 1)")
        .await
    {
        assert!(Instant::now() < deadline, "writes did not resume: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The refused writes are not there; one whose outcome was unknown may be.
    let landed = query_retrying(&client, "SELECT count(*) FROM bank WHERE id >= 1000").await[0]
        .get::<_, i64>(0);
    assert!(
        landed as usize <= unknown.len(),
        "{landed} refused writes landed"
    );
    assert_eq!(
        settled_total(&client).await,
        (ACCOUNTS + 1 + landed, ACCOUNTS * START + 1 + landed)
    );
}

/// All three nodes killed at once and started again: every committed row
/// is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_nodes_killed_at_once_keep_every_commit() {
    let mut cluster = start_cluster(3).await;
    create_bank(&cluster[1].connect().await).await;
    cluster[2]
        .connect()
        .await
        .batch_execute("UPDATE bank SET bal = bal + 1 WHERE id <= 10")
        .await
        .unwrap();
    for node in cluster.iter_mut() {
        node.kill9();
    }
    for node in cluster.iter_mut() {
        node.start_again_in_background();
    }
    for node in cluster.iter_mut() {
        node.wait_healthy().await;
    }
    for node in &cluster {
        assert_eq!(
            settled_total(&node.connect().await).await,
            (ACCOUNTS, ACCOUNTS * START + 10)
        );
    }
}

/// A node down while its groups commit many entries, snapshot and drop the
/// log behind the snapshot (every 20 entries here): back up, it cannot
/// replay the log it missed and catches up from a snapshot, with every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_a_truncated_log_catches_up_from_a_snapshot() {
    let mut cluster =
        start_cluster_with(3, &[("SHARDFORGE_CLUSTER_RAFT_SNAPSHOT_ENTRIES", "20")]).await;
    let client = cluster[0].connect().await;
    create_bank(&client).await;
    cluster[2].kill9();
    // Each statement is a prepare and a commit entry in every group.
    for i in 0..40 {
        let sql = format!("UPDATE bank SET bal = bal + {} WHERE true", i % 2);
        retrying(&sql, || client.batch_execute(&sql)).await;
    }
    cluster[2].start_again().await;
    wait_caught_up(&client, 3).await;
    let log = cluster[2].log();
    assert!(log.contains("snapshot"), "no snapshot installed:\n{log}");
    // Node 3 now leads a group again (or takes over one): kill the others'
    // leadership by killing node 2, and read through node 3.
    cluster[1].kill9();
    let node3 = cluster[2].connect().await;
    assert_eq!(
        settled_total(&node3).await,
        (ACCOUNTS, ACCOUNTS * START + 20 * ACCOUNTS)
    );
}

/// The Raft log positions of the groups' leaders: `(sum of the shard
/// groups' applied indexes, the meta group's, every group's term)`.
async fn leader_positions(client: &Client) -> (BTreeMap<i32, i64>, i64, Vec<i64>) {
    let rows = query_retrying(
        client,
        "SELECT shard_id, applied_index, term FROM shardforge_replicas \
         WHERE is_leader ORDER BY shard_id NULLS FIRST",
    )
    .await;
    let mut shards = BTreeMap::new();
    let mut meta = 0;
    for row in &rows {
        match row.get::<_, Option<i32>>(0) {
            Some(shard) => drop(shards.insert(shard, row.get::<_, i64>(1))),
            None => meta = row.get::<_, i64>(1),
        }
    }
    (shards, meta, rows.iter().map(|r| r.get(2)).collect())
}

/// How many entries each group (in `after`) applied since `before`.
fn applied_since(before: &BTreeMap<i32, i64>, after: &BTreeMap<i32, i64>) -> Vec<i64> {
    after
        .iter()
        .map(|(g, a)| a - before.get(g).unwrap_or(&0))
        .collect()
}

/// A transaction that writes one shard group commits with one Raft entry
/// in that group and none in the meta group (one-phase commit); one that
/// writes several commits with one entry in each (async commit) and is
/// resolved with one more, with none in the meta group; reads and
/// read-only transactions append nothing anywhere; and a row acknowledged
/// through one node is seen at once through another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_one_raft_entry_per_group_and_reads_none() {
    let cluster = start_cluster(3).await;
    let writer = cluster[1].connect().await;
    let reader = cluster[2].connect().await;
    writer
        .batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL)")
        .await
        .unwrap();
    wait_caught_up(&writer, 3).await;
    const WRITES: i64 = 40;
    // A leader change in the middle adds entries of its own: measure again.
    for attempt in 0.. {
        let (shards_before, meta_before, terms_before) = leader_positions(&writer).await;
        let started = Instant::now();
        for i in 0..WRITES {
            let k = attempt * WRITES + i;
            writer
                .batch_execute(&format!("INSERT INTO kv VALUES ({k}, {i})"))
                .await
                .unwrap();
            let seen = reader
                .query_one(&format!("SELECT v FROM kv WHERE k = {k}"), &[])
                .await
                .unwrap();
            assert_eq!(seen.get::<_, i32>(0), i as i32, "row {k} through node 3");
            reader
                .batch_execute("BEGIN; SELECT count(*) FROM kv; COMMIT")
                .await
                .unwrap();
        }
        let (shards_after, meta_after, terms_after) = leader_positions(&writer).await;
        if terms_after != terms_before {
            assert!(attempt < 3, "leaders keep changing");
            continue;
        }
        let entries: i64 = applied_since(&shards_before, &shards_after).iter().sum();
        assert_eq!(entries, WRITES, "one entry per write");
        assert_few_meta_entries(meta_after - meta_before, started, WRITES);
        break;
    }

    // A transaction writing several groups: one entry in each (its
    // prepare, which commits it) before it is acknowledged, one more
    // (resolving it) after, and none in the meta group.
    const MULTI: i64 = 10;
    for attempt in 0.. {
        let (shards_before, meta_before, terms_before) = leader_positions(&writer).await;
        let started = Instant::now();
        for i in 0..MULTI {
            let first = 10_000 + (attempt * MULTI + i) * 64;
            let values: Vec<String> = (first..first + 64).map(|k| format!("({k}, 1)")).collect();
            writer
                .batch_execute(&format!("INSERT INTO kv VALUES {}", values.join(", ")))
                .await
                .unwrap();
            let seen = reader
                .query_one("SELECT count(*) FROM kv WHERE k >= 10000", &[])
                .await
                .unwrap();
            assert_eq!(seen.get::<_, i64>(0), first + 64 - 10_000, "through node 3");
        }
        // The resolutions apply in the background: wait until the counts
        // stop moving.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = None;
        let (entries, meta_after, terms_after) = loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (shards_after, meta_after, terms_after) = leader_positions(&writer).await;
            let entries = applied_since(&shards_before, &shards_after);
            if last.as_ref() == Some(&entries) || Instant::now() > deadline {
                break (entries, meta_after, terms_after);
            }
            last = Some(entries);
        };
        if terms_after != terms_before {
            assert!(attempt < 3, "leaders keep changing");
            continue;
        }
        // Which groups a transaction's rows fall in is the hash's choice;
        // each group it wrote has two entries.
        assert!(
            entries.iter().all(|&e| e % 2 == 0 && e <= 2 * MULTI),
            "entries per group: {entries:?}"
        );
        assert!(
            entries.iter().sum::<i64>() >= 2 * 2 * MULTI,
            "{entries:?}: a transaction of 64 rows wrote one group"
        );
        assert_few_meta_entries(meta_after - meta_before, started, MULTI);
        break;
    }
}

/// The oracle records a new timestamp limit once per 3 s window of
/// timestamps (`txn::tso::WINDOW_US`), not once per transaction: `entries`
/// in the meta group since `started`, over `transactions` transactions, is
/// at most one per window that time spanned and two more (a slow machine
/// spans more windows), and fewer than the transactions.
fn assert_few_meta_entries(entries: i64, started: Instant, transactions: i64) {
    let windows = started.elapsed().as_secs() as i64 / 3 + 2;
    assert!(
        entries <= windows && entries < transactions,
        "{entries} meta entries in {:?} for {transactions} transactions",
        started.elapsed()
    );
}

/// A coordinator killed in the middle of a commit of several groups
/// leaves it whole or not at all, and no key locked: killed once every
/// group prepared it (before its client heard), the transaction is
/// committed; killed when only its primary group had, it is aborted, and
/// its keys are free. Recovery on the groups' leaders settles both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_commit_leaves_it_whole_or_undone() {
    let mut cluster = start_cluster(3).await;
    let observer = cluster[0].connect().await;
    observer
        .batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v int NOT NULL)")
        .await
        .unwrap();
    wait_caught_up(&observer, 3).await;
    let insert = |first: i32| {
        let values: Vec<String> = (first..first + 64).map(|k| format!("({k}, 1)")).collect();
        format!("INSERT INTO kv VALUES {}", values.join(", "))
    };
    let count = |first: i32| {
        format!(
            "SELECT count(*) FROM kv WHERE k >= {first} AND k < {}",
            first + 64
        )
    };

    for (point, first, committed) in [
        ("exit-after-prepare", 1000, true),
        ("exit-mid-prepare", 2000, false),
    ] {
        let coordinator = &mut cluster[1];
        coordinator.kill9();
        coordinator.set_env("SHARDFORGE_FAILPOINT", point);
        coordinator.start_again_in_background();
        coordinator.wait_healthy().await;
        let client = coordinator.connect().await;
        let died = client.batch_execute(&insert(first)).await;
        assert!(died.is_err(), "{point}: the coordinator answered");

        // Readers wait for the intents until recovery (after 5 s, on the
        // groups' leaders, some of them elected meanwhile) settles them; a
        // reader that waited 10 s is told to retry. They never see part.
        let sql = count(first);
        let seen = retrying(point, || observer.query_one(&sql, &[])).await;
        assert_eq!(
            seen.get::<_, i64>(0),
            if committed { 64 } else { 0 },
            "{point}"
        );
        if !committed {
            // Its keys are free: the same rows commit now.
            let sql = insert(first);
            retrying("insert", || observer.batch_execute(&sql)).await;
            assert_eq!(query_i64(&observer, &count(first)).await, 64);
        }
    }
}

/// A replica that missed more than its group's log keeps is rebuilt from a
/// snapshot streamed in chunks and installed in batches, however large the
/// group: all rows in one shard group here, `SHARDFORGE_SNAPSHOT_TEST_MIB`
/// of them (default 16; the run is 320, see `tests/README.md`).
/// The rebuilt node's peak memory is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_a_large_group_is_rebuilt_from_a_streamed_snapshot() {
    let mib: i64 = std::env::var("SHARDFORGE_SNAPSHOT_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut cluster = start_cluster_with(
        3,
        &[
            ("SHARDFORGE_CLUSTER_SHARD_GROUPS", "1"),
            ("SHARDFORGE_CLUSTER_RAFT_SNAPSHOT_ENTRIES", "20"),
        ],
    )
    .await;
    let client = cluster[0].connect().await;
    client
        .batch_execute("CREATE TABLE blob (k int PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    wait_caught_up_groups(&client, 3, 1).await;
    let node3_applied = query_i64(
        &client,
        "SELECT applied_index FROM shardforge_replicas WHERE node_id = 3 AND shard_id IS NOT NULL",
    )
    .await;
    cluster[2].kill9();
    // Rows of 4 KiB, 2 MiB per statement (one Raft entry each).
    const ROW: i64 = 4096;
    const PER_STATEMENT: i64 = 512;
    const UPDATES: i64 = 80;
    let rows = mib * (1 << 20) / ROW;
    for first in (0..rows).step_by(PER_STATEMENT as usize) {
        let last = (first + PER_STATEMENT).min(rows) - 1;
        let sql = format!(
            "INSERT INTO blob SELECT i, repeat('x', {ROW}) FROM generate_series({first}, {last}) AS s(i)"
        );
        retrying(&sql, || client.batch_execute(&sql)).await;
    }
    // Entries after them until the leader's log is cut behind a snapshot
    // past what node 3 holds (snapshots are taken in the background, and
    // the cut waits for replication in flight to node 3 to give up).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut updates = 0;
    while updates < UPDATES || leader_purged_index(&client).await <= node3_applied {
        assert!(
            Instant::now() < deadline,
            "the leader's log was not cut past node 3's {node3_applied} after {updates} updates"
        );
        let sql = format!(
            "UPDATE blob SET v = repeat('y', {ROW}) WHERE k = {}",
            updates % rows
        );
        retrying(&sql, || client.batch_execute(&sql)).await;
        updates += 1;
    }
    cluster[2].start_again().await;
    wait_caught_up_groups(&client, 3, 1).await;
    let log = cluster[2].log();
    assert!(
        log.contains("installed a snapshot"),
        "no snapshot installed:\n{log}"
    );
    eprintln!(
        "rebuilt a replica of a {mib} MiB group (after {updates} updates); its peak memory: {} MiB",
        cluster[2].peak_memory_kib() / 1024
    );
    // Node 3 now holds the only other copy: read through it with node 2
    // gone.
    cluster[1].kill9();
    let node3 = cluster[2].connect().await;
    let sql = "SELECT count(*), sum(length(v)), count(*) FILTER (WHERE v LIKE 'y%') FROM blob";
    let row = retrying(sql, || node3.query_one(sql, &[])).await;
    assert_eq!(row.get::<_, i64>(0), rows);
    assert_eq!(row.get::<_, i64>(1), rows * ROW);
    assert_eq!(row.get::<_, i64>(2), updates.min(rows));
}

/// The last log index the (single) shard group's leader no longer keeps.
async fn leader_purged_index(client: &Client) -> i64 {
    let sql =
        "SELECT purged_index FROM shardforge_replicas WHERE is_leader AND shard_id IS NOT NULL";
    retrying(sql, || client.query_one(sql, &[])).await.get(0)
}
