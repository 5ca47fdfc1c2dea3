//! The coordinator side of a commit with a schema change (and, outside a
//! cluster of Raft groups, of every commit of several nodes' groups):
//! two-phase commit over the `Participant` services, decided by the
//! `Oracle`, which holds the catalog (see `oracle`, `meta` and
//! `docs/architecture.md`). What this and `async_commit` share is here
//! too: preparing and resolving in every group's leader, following leaders
//! that move, and recovery.
//!
//! 1. Prepare every participant node (this one in-process, the others over
//!    gRPC, in parallel). A refusal (a conflict: 40001) aborts those that
//!    prepared, and the transaction fails with it.
//! 2. Ask the oracle to decide: the commit point. If the answer is lost,
//!    `Resolve` tells whether it was recorded (and aborts it if not), so the
//!    outcome is never guessed.
//! 3. Tell every participant to commit at the decided timestamp, then report
//!    `Done` so read timestamps may pass it. A participant that cannot be
//!    told now keeps its intents until recovery resolves them with the
//!    oracle; the commit stands either way.
//!
//! While it commits, the coordinator answers `Committing` for the
//! transaction: recovery does not abort a transaction whose coordinator is
//! still at work on it, however long its prepare takes.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use tonic::transport::Channel;

use super::async_commit::Voted;
use super::oracle::proto::DecideRequest;
use super::{OracleCall, TxnCoordinator};
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::raft::groups::{ShardGroups, QUORUM_WAIT};
use crate::rpc::{as_member, call_twice};
use crate::shard::access::{block_on, Reroute};
use crate::shard::proto::participant_client::ParticipantClient;
use crate::shard::proto::{
    AbortRequest, CommitPreparedRequest, CommittingRequest, Intent, PrepareRequest, WriteBatch,
};
use crate::shard::ShardRange;

/// How long a prepared transaction or a decision in flight waits before
/// recovery takes it over from its coordinator.
pub const RECOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a decision stays in flight before the oracle finishes it (its
/// participants commit, then it is done). Sooner than [`RECOVER_AFTER`]: a
/// decision in flight holds every new transaction's `Begin` back (see
/// `meta`), and finishing it twice is harmless.
pub const DECISION_RECOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How long recovery waits for a coordinator to say whether it is still
/// committing a transaction prepared for long.
const COORDINATOR_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Marks a transaction as being committed by this node, its coordinator,
/// until dropped: recovery elsewhere leaves its intents alone meanwhile,
/// however long its prepare takes.
pub(super) struct AtWork<'a> {
    coordinator: &'a TxnCoordinator,
    txn_id: Vec<u8>,
}

impl<'a> AtWork<'a> {
    pub(super) fn on(coordinator: &'a TxnCoordinator, txn_id: &[u8]) -> Self {
        coordinator.at_work().insert(txn_id.to_vec());
        Self {
            coordinator,
            txn_id: txn_id.to_vec(),
        }
    }
}

impl Drop for AtWork<'_> {
    fn drop(&mut self) {
        self.coordinator.at_work().remove(&self.txn_id);
    }
}

/// What a cross-node commit needs to know of the cluster.
pub trait Peers: Send + Sync {
    /// This node's id.
    fn node_id(&self) -> u32;
    /// The meta node's id: the oracle when the cluster does not replicate.
    fn meta_node(&self) -> u32;
    /// The meta group's replicas (none when the cluster does not
    /// replicate).
    fn meta_replicas(&self) -> Vec<u32>;
    fn cluster_id(&self) -> String;
    /// The pooled channel to node `node`.
    fn channel(&self, node: u32) -> Result<Channel>;
    /// On the oracle: gives every other live member the catalog `tables`,
    /// which the meta group applied at `meta_index` (0: it does not
    /// replicate).
    fn publish_catalog(&self, tables: Vec<TableDef>, meta_index: u64) -> BoxFuture<'_, Result<()>>;

    /// Whether this node is the meta node of a cluster that does not
    /// replicate: the oracle, with the only copy of its state.
    fn is_unreplicated_oracle(&self) -> bool {
        self.meta_replicas().is_empty() && self.meta_node() == self.node_id()
    }
}

/// Finds a replicated group's leader again for a scan (see
/// `shard::access`), as [`TxnCoordinator::on_homes`] does for writes.
pub(super) struct Leaders {
    pub groups: Arc<ShardGroups>,
    pub peers: Arc<dyn Peers>,
}

impl Reroute for Leaders {
    fn next_leader(
        &self,
        range: &ShardRange,
        failed: u32,
    ) -> BoxFuture<'_, Result<(u32, Channel)>> {
        let (group, first) = (range.id.0, range.node);
        self.groups.missed(group, failed, &range.replicas);
        Box::pin(async move {
            let node = self.groups.leader(group, first).await?;
            Ok((node, self.peers.channel(node)?))
        })
    }
}

impl TxnCoordinator {
    /// Commits `batches` (one per shard group) with two-phase commit,
    /// decided by `decide` at the oracle (whose participants are the
    /// batches' groups). Blocks: call it off the async runtime (it drives
    /// the RPCs itself).
    pub(super) fn commit_across(
        &self,
        peers: &Arc<dyn Peers>,
        batches: Vec<WriteBatch>,
        decide: DecideRequest,
    ) -> Result<u64> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Internal("a cross-node commit needs the async runtime".into()))?;
        let txn_id = decide.txn_id.clone();
        let groups = decide.participants.clone();
        let start_ts = batches.first().map_or(0, |b| b.start_ts);
        let _at_work = AtWork::on(self, &txn_id);

        // 1. Prepare, on the node that takes each group's writes now.
        let prepared = self.prepare_everywhere(peers, &txn_id, batches, None);
        if let Err(e) = runtime.block_on(prepared) {
            runtime.block_on(self.abort_everywhere(peers, &txn_id, start_ts, &groups));
            return Err(e);
        }

        // 2. Decide.
        let commit_ts = match runtime.block_on(self.decide_at_oracle(decide)) {
            Ok(commit_ts) => commit_ts,
            Err(e) => {
                runtime.block_on(self.abort_everywhere(peers, &txn_id, start_ts, &groups));
                return Err(e);
            }
        };

        // 3. Apply everywhere, then let reads pass it.
        let resolved = self.resolve_everywhere(peers, &txn_id, Some(commit_ts), start_ts, &groups);
        match runtime.block_on(resolved) {
            Ok(()) => {
                if let Err(e) = runtime.block_on(self.ask_oracle(OracleCall::Done(txn_id))) {
                    tracing::warn!(error = %e, "could not report a finished commit to the oracle");
                }
            }
            Err(e) => tracing::warn!(error = %e, "a committed transaction waits for recovery"),
        }
        Ok(commit_ts)
    }

    /// Phase one: each batch to the node that takes its group's writes
    /// (this one in-process, the others over gRPC), in parallel. The first
    /// refusal (a conflict: 40001) is the answer. With `vote` (the primary
    /// group and every group written: see `async_commit`), the highest
    /// minimum commit timestamp of the groups is (0 without).
    pub(super) async fn prepare_everywhere(
        &self,
        peers: &Arc<dyn Peers>,
        txn_id: &[u8],
        batches: Vec<WriteBatch>,
        vote: Option<(u32, Vec<u32>)>,
    ) -> Result<u64> {
        let min_commit_ts = AtomicU64::new(0);
        let prepare = |node: u32, batches: Vec<WriteBatch>| {
            let request = PrepareRequest {
                txn_id: txn_id.to_vec(),
                batches,
                primary: vote.as_ref().map(|(primary, _)| *primary),
                participants: vote.as_ref().map_or(Vec::new(), |(_, all)| all.clone()),
            };
            let min_commit_ts = &min_commit_ts;
            async move {
                let ts = if node == peers.node_id() {
                    self.prepare(request).await?
                } else {
                    let client = self.participant(peers, node)?;
                    let cluster_id = peers.cluster_id();
                    call_twice(&client, &request, &cluster_id, |mut c, r| async move {
                        c.prepare(r).await
                    })
                    .await
                    .map(|r| r.into_inner().min_commit_ts)
                    .map_err(|s| Error::from_rpc(&format!("node {node}"), s))?
                };
                min_commit_ts.fetch_max(ts, Ordering::AcqRel);
                Ok(())
            }
        };
        self.on_homes(batches, |b| b.shard_id, prepare).await?;
        Ok(min_commit_ts.into_inner())
    }

    /// Phase two: commits `txn_id` at `Some(commit_ts)` (or aborts it:
    /// `None`, recording the abort aged by `start_ts`) in every shard group
    /// of `groups`, on the nodes that take their writes now, in parallel.
    /// Resolving twice is harmless.
    pub(super) async fn resolve_everywhere(
        &self,
        peers: &Arc<dyn Peers>,
        txn_id: &[u8],
        outcome: Option<u64>,
        start_ts: u64,
        groups: &[u32],
    ) -> Result<()> {
        let resolve = |node: u32, groups: Vec<u32>| async move {
            self.resolve_on(peers, node, txn_id, (outcome, start_ts), &groups)
                .await
        };
        self.on_homes(groups.to_vec(), |&g| g, resolve).await
    }

    /// Calls `call` with the items (each of the shard group `group_of`
    /// names) that each node takes the writes of now, for all nodes in
    /// parallel. Items whose node turned out not to lead their group (or,
    /// for a replicated group, could not be reached) go to the group's new
    /// leader, for up to [`QUORUM_WAIT`]. The first other error is the
    /// answer.
    pub(super) async fn on_homes<T, F, Fut>(
        &self,
        mut items: Vec<T>,
        group_of: fn(&T) -> u32,
        call: F,
    ) -> Result<()>
    where
        T: Clone,
        F: Fn(u32, Vec<T>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let deadline = std::time::Instant::now() + QUORUM_WAIT;
        let replicas = self.shards().replicas();
        loop {
            let mut by_node: BTreeMap<u32, Vec<T>> = BTreeMap::new();
            for item in items {
                let group = group_of(&item);
                let range = replicas
                    .get(group as usize)
                    .ok_or_else(|| Error::Internal(format!("no shard group {group}")))?
                    .range();
                by_node
                    .entry(self.home(range).await?)
                    .or_default()
                    .push(item);
            }
            let calls = by_node.into_iter().map(|(node, items)| {
                let call = call(node, items.clone());
                async move { (node, items, call.await) }
            });
            items = Vec::new();
            let mut moved = None;
            for (node, failed, result) in futures::future::join_all(calls).await {
                let Err(e) = result else {
                    continue;
                };
                let groups: Vec<u32> = failed.iter().map(group_of).collect();
                self.missed(node, &groups);
                let replicated = groups.iter().all(|&g| self.is_replicated(g));
                let elsewhere = matches!(e, Error::NotLeader(_))
                    || (replicated && matches!(e, Error::NodeUnreachable(_)));
                if !elsewhere {
                    return Err(e);
                }
                items.extend(failed);
                moved = Some(e);
            }
            match moved {
                None => return Ok(()),
                Some(e) if std::time::Instant::now() >= deadline => return Err(e),
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }

    async fn resolve_on(
        &self,
        peers: &Arc<dyn Peers>,
        node: u32,
        txn_id: &[u8],
        (outcome, start_ts): (Option<u64>, u64),
        groups: &[u32],
    ) -> Result<()> {
        if node == peers.node_id() {
            return self
                .resolve_prepared(txn_id, outcome, start_ts, groups)
                .await
                .map(|_| ());
        }
        let mut client = self.participant(peers, node)?;
        let cluster_id = peers.cluster_id();
        let (txn_id, shard_ids) = (txn_id.to_vec(), groups.to_vec());
        let answer = match outcome {
            Some(commit_ts) => {
                let request = CommitPreparedRequest {
                    txn_id,
                    commit_ts,
                    shard_ids,
                };
                client
                    .commit_prepared(as_member(request, &cluster_id)?)
                    .await
            }
            None => {
                let request = AbortRequest {
                    txn_id,
                    shard_ids,
                    start_ts,
                };
                client.abort(as_member(request, &cluster_id)?).await
            }
        };
        answer
            .map(|_| ())
            .map_err(|s| Error::from_rpc(&format!("node {node}"), s))
    }

    /// After `node` failed to take the writes of `groups`: the next try of
    /// a group this node holds no replica of goes to another replica.
    pub(super) fn missed(&self, node: u32, groups: &[u32]) {
        let Ok(shard_groups) = self.groups() else {
            return;
        };
        for &group in groups {
            if let Some(replica) = self.shards().replicas().get(group as usize) {
                shard_groups.missed(group, node, &replica.range().replicas);
            }
        }
    }

    /// Aborts `txn_id` in every group of `groups` (those that did not
    /// prepare have nothing to drop); what cannot be reached now is left
    /// to recovery.
    async fn abort_everywhere(
        &self,
        peers: &Arc<dyn Peers>,
        txn_id: &[u8],
        start_ts: u64,
        groups: &[u32],
    ) {
        if let Err(e) = (self.resolve_everywhere(peers, txn_id, None, start_ts, groups)).await {
            tracing::warn!(error = %e, "an aborted transaction waits for recovery");
        }
    }

    /// The oracle's decision; if the answer is lost, the decision it
    /// recorded, or an abort.
    async fn decide_at_oracle(&self, request: DecideRequest) -> Result<u64> {
        let txn_id = request.txn_id.clone();
        match self.ask_oracle(OracleCall::Decide(request)).await {
            Ok(commit_ts) => commit_ts
                .ok_or_else(|| Error::Internal("the oracle gave no commit timestamp".into())),
            // A refusal (a conflict, a name taken first) is an answer: no
            // decision was recorded.
            Err(e @ (Error::Retry(_) | Error::Input(..))) => Err(e),
            Err(e) => match self.ask_oracle(OracleCall::Resolve(txn_id)).await {
                Ok(decision) => decision.ok_or_else(|| {
                    Error::Unavailable(format!(
                        "the transaction was aborted: the oracle did not answer ({e})"
                    ))
                }),
                Err(_) => Err(Error::Unavailable(format!(
                    "the outcome of the commit is unknown: the oracle did not answer ({e}); \
                     recovery will finish or undo it"
                ))),
            },
        }
    }

    /// Recovery, run every few seconds on every node. Transactions
    /// prepared here (in the groups this node leads, and in those whose
    /// only copy is here) and waiting for `at_least` get the oracle's
    /// decision (`Resolve` aborts an undecided one) and are committed or
    /// aborted; on the oracle, decisions in flight for `at_least` are
    /// applied in their groups and reported done. A coordinator that died
    /// at any point, or a leader that changed, thus leaves nothing half
    /// done. Blocks.
    pub fn recover(&self, peers: &Arc<dyn Peers>, at_least: std::time::Duration) {
        self.recover_prepared(peers, at_least);
        self.recover_decided(peers, at_least.min(DECISION_RECOVER_AFTER));
    }

    /// The prepared transactions of [`Self::recover`], but those whose
    /// coordinator is still at work on them. Blocks.
    fn recover_prepared(&self, peers: &Arc<dyn Peers>, at_least: std::time::Duration) {
        // Unreplicated groups' intents (no snapshot, no primary) and the
        // replicated groups' intents this node leads.
        let mut waiting: Vec<(Vec<u8>, Vec<u32>, Intent)> = self
            .lock()
            .prepared
            .waiting(at_least)
            .into_iter()
            .map(|txn_id| (txn_id, Vec::new(), Intent::default()))
            .collect();
        if let Ok(groups) = self.groups() {
            let now_ms = super::since_epoch().as_millis() as u64;
            for group in groups.led_here() {
                match crate::shard::machine::intents(&self.storage, group) {
                    Ok(intents) => waiting.extend(
                        intents
                            .into_iter()
                            .filter(|(_, intent)| {
                                now_ms.saturating_sub(intent.prepared_at_ms)
                                    >= at_least.as_millis() as u64
                            })
                            .map(|(txn_id, intent)| (txn_id, vec![group], intent)),
                    ),
                    Err(e) => {
                        tracing::warn!(group, error = %e, "could not read the prepared transactions")
                    }
                }
            }
        }
        for (txn_id, groups, intent) in waiting {
            let start_ts = intent.batch.as_ref().map_or(0, |b| b.start_ts);
            let resolved = block_on(async {
                if self.coordinator_at_work(peers, &txn_id).await {
                    return Ok(());
                }
                if let Some(primary) = intent.primary {
                    let voted = Voted {
                        txn_id: txn_id.clone(),
                        start_ts,
                        primary,
                        participants: intent.participants,
                    };
                    return self.settle(peers, &voted).await.map(|_| ());
                }
                let outcome = self.ask_oracle(OracleCall::Resolve(txn_id.clone())).await?;
                (self
                    .resolve_prepared(&txn_id, outcome, start_ts, &groups)
                    .await)
                    .map(|_| ())
            });
            if let Err(e) = resolved {
                tracing::warn!(error = %e, "could not resolve a prepared transaction yet");
            }
        }
    }

    /// The decisions in flight of [`Self::recover`], on the oracle.
    /// Blocks.
    fn recover_decided(&self, peers: &Arc<dyn Peers>, at_least: std::time::Duration) {
        if !self.serves_oracle() {
            return;
        }
        let decided = match self.lock().decisions.waiting(&self.storage, at_least) {
            Ok(decided) => decided,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the commit decisions in flight");
                return;
            }
        };
        for (txn_id, decision) in decided {
            let applied = block_on(self.resolve_everywhere(
                peers,
                &txn_id,
                Some(decision.commit_ts),
                0,
                &decision.participants,
            ))
            .and_then(|()| block_on(self.serve_oracle(OracleCall::Done(txn_id))));
            if let Err(e) = applied {
                tracing::warn!(error = %e, "could not finish a recovered commit yet");
            }
        }
    }

    pub(super) fn participant(
        &self,
        peers: &Arc<dyn Peers>,
        node: u32,
    ) -> Result<ParticipantClient<Channel>> {
        Ok(ParticipantClient::new(peers.channel(node)?))
    }

    /// Whether this node is committing `txn_id` now, as its coordinator.
    pub fn committing(&self, txn_id: &[u8]) -> bool {
        self.at_work().contains(txn_id)
    }

    fn at_work(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        // A set of ids: a panic elsewhere leaves it consistent.
        self.at_work.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the coordinator of `txn_id` (the node its id names) says it
    /// is still committing it. One that does not answer is not: it died,
    /// or is cut off and will find its transaction aborted.
    async fn coordinator_at_work(&self, peers: &Arc<dyn Peers>, txn_id: &[u8]) -> bool {
        let Some(node) = txn_id.first_chunk().map(|b| u32::from_be_bytes(*b)) else {
            return false;
        };
        if node == peers.node_id() {
            return self.committing(txn_id);
        }
        let Ok(client) = self.participant(peers, node) else {
            return false;
        };
        let request = CommittingRequest {
            txn_id: txn_id.to_vec(),
        };
        let cluster_id = peers.cluster_id();
        let asked = call_twice(&client, &request, &cluster_id, |mut c, r| async move {
            c.committing(r).await
        });
        matches!(
            tokio::time::timeout(COORDINATOR_ANSWER_WAIT, asked).await,
            Ok(Ok(answer)) if answer.get_ref().committing
        )
    }

    /// A transaction id unique in the cluster: the node id, the time this
    /// node started, and a counter.
    pub(super) fn new_txn_id(&self, node: u32) -> Vec<u8> {
        let mut id = node.to_be_bytes().to_vec();
        id.extend_from_slice(&self.txn_epoch.to_be_bytes());
        id.extend_from_slice(
            &self
                .txn_counter
                .fetch_add(1, Ordering::Relaxed)
                .to_be_bytes(),
        );
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{create_for_test, int_table, Catalog};
    use crate::encoding::keys::row_key;
    use crate::shard::proto::PrepareRequest;
    use crate::shard::{split_hash_space, stage_ranges, ShardMap};
    use crate::storage::Storage;
    use crate::txn::service::TxnService;
    use crate::txn::tests::decision;
    use std::collections::HashMap;
    use tonic::transport::Server;

    /// Node `me` of a two-node cluster whose shard group 0 is on node 1 (the
    /// meta node) and group 1 on node 2.
    struct TestPeers {
        me: u32,
        channels: HashMap<u32, Channel>,
    }

    impl Peers for TestPeers {
        fn node_id(&self) -> u32 {
            self.me
        }
        fn meta_node(&self) -> u32 {
            1
        }
        fn meta_replicas(&self) -> Vec<u32> {
            Vec::new()
        }
        fn cluster_id(&self) -> String {
            "c1".into()
        }
        fn channel(&self, node: u32) -> Result<Channel> {
            self.channels
                .get(&node)
                .cloned()
                .ok_or_else(|| Error::Unavailable(format!("node {node} is down")))
        }
        fn publish_catalog(&self, _: Vec<TableDef>, _: u64) -> BoxFuture<'_, Result<()>> {
            Box::pin(async { Err(Error::Internal("no schema changes in this test".into())) })
        }
    }

    struct Node {
        _dir: tempfile::TempDir,
        coordinator: Arc<TxnCoordinator>,
    }

    fn node(table: &crate::catalog::TableDef) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let mut ranges = split_hash_space(2).unwrap();
        ranges[1].node = 2;
        let mut batch = storage.batch();
        stage_ranges(&ranges, &mut batch).unwrap();
        storage.write(batch).unwrap();
        let shards = Arc::new(ShardMap::load(&storage).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        assert_eq!(create_for_test(&catalog, table.clone()).id, table.id);
        let coordinator = Arc::new(TxnCoordinator::new(storage, shards, catalog).unwrap());
        Node {
            _dir: dir,
            coordinator,
        }
    }

    async fn serve(node: &Node) -> Channel {
        let service = Arc::new(TxnService::default());
        service.ready("c1".into(), node.coordinator.clone());
        let router = Server::builder()
            .add_service(service.participant_server())
            .add_service(service.oracle_server());
        crate::rpc::loopback(router).await
    }

    /// A key of `table` in shard group `group` (of two).
    fn key_in(c: &TxnCoordinator, table: u32, group: u32, tag: u8) -> Vec<u8> {
        (0u16..)
            .map(|i| row_key(table, &[tag, (i >> 8) as u8, i as u8]))
            .find(|k| c.shards().for_key(k).range().id.0 == group)
            .unwrap()
    }

    fn commit_on(
        c: &Arc<TxnCoordinator>,
        writes: Vec<(Vec<u8>, &'static [u8])>,
        start_ts: u64,
    ) -> tokio::task::JoinHandle<Result<u64>> {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            let mut txn = c.begin_at(start_ts);
            for (key, value) in writes {
                txn.put(key, value.to_vec());
            }
            c.commit(txn)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_across_two_nodes_lands_on_both_or_neither() {
        let mut table = int_table("t");
        table.id = crate::catalog::TableId(100);
        let (n1, n2) = (node(&table), node(&table));
        let (c1, c2) = (serve(&n1).await, serve(&n2).await);
        let channels: HashMap<u32, Channel> = [(1, c1), (2, c2)].into();
        for (n, me) in [(&n1, 1), (&n2, 2)] {
            n.coordinator.set_peers(Arc::new(TestPeers {
                me,
                channels: channels.clone(),
            }));
        }
        let on1 = key_in(&n1.coordinator, 100, 0, 1);
        let on2 = key_in(&n1.coordinator, 100, 1, 2);
        let read = |n: &Node, key: &[u8], ts: u64| {
            n.coordinator.shards().for_key(key).get(key, ts).unwrap()
        };

        // Coordinated by node 2: both halves commit at one timestamp, and the
        // meta node's read timestamp passes it only once both are applied.
        let start = n1.coordinator.begin().start_ts();
        let ts = commit_on(
            &n2.coordinator,
            vec![(on1.clone(), b"a"), (on2.clone(), b"b")],
            start,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(read(&n1, &on1, ts).unwrap(), b"a");
        assert_eq!(read(&n2, &on2, ts).unwrap(), b"b");
        assert!(read(&n1, &on1, ts - 1).is_none());
        assert!(n1.coordinator.begin().start_ts() >= ts);
        assert!(
            n1.coordinator.prepared_txns().is_empty() && n2.coordinator.prepared_txns().is_empty()
        );

        // A transaction whose snapshot predates that commit conflicts on
        // node 2; its node-1 half, prepared fine, is aborted with it.
        let other = key_in(&n1.coordinator, 100, 0, 3);
        let late = commit_on(
            &n2.coordinator,
            vec![(other.clone(), b"x"), (on2.clone(), b"y")],
            start,
        )
        .await
        .unwrap();
        assert!(matches!(late, Err(Error::Retry(_))), "{late:?}");
        let now = n1.coordinator.begin().start_ts();
        assert!(read(&n1, &other, now).is_none());
        assert!(
            n1.coordinator.prepared_txns().is_empty() && n2.coordinator.prepared_txns().is_empty()
        );

        // Coordinated by the meta node itself, with a participant down: the
        // transaction fails as unavailable and leaves nothing behind.
        let down = Arc::new(TestPeers {
            me: 1,
            channels: HashMap::new(),
        });
        let lonely = node(&table);
        lonely.coordinator.set_peers(down);
        let start = lonely.coordinator.begin().start_ts();
        let key2 = key_in(&lonely.coordinator, 100, 1, 4);
        let failed = commit_on(&lonely.coordinator, vec![(key2, b"z")], start)
            .await
            .unwrap();
        assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
        assert!(lonely.coordinator.prepared_txns().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_finishes_what_a_dead_coordinator_left() {
        let mut table = int_table("t");
        table.id = crate::catalog::TableId(100);
        let (n1, n2) = (node(&table), node(&table));
        let (c1, c2) = (serve(&n1).await, serve(&n2).await);
        let channels: HashMap<u32, Channel> = [(1, c1), (2, c2)].into();
        let peers: Vec<Arc<dyn Peers>> = [1, 2]
            .map(|me| {
                Arc::new(TestPeers {
                    me,
                    channels: channels.clone(),
                }) as Arc<dyn Peers>
            })
            .into();
        n1.coordinator.set_peers(peers[0].clone());
        n2.coordinator.set_peers(peers[1].clone());
        let (a, b) = (
            key_in(&n1.coordinator, 100, 0, 1),
            key_in(&n1.coordinator, 100, 1, 2),
        );
        let start = n1.coordinator.begin().start_ts();
        let prepare = |txn: &[u8]| {
            let batch = |key: &Vec<u8>, shard_id| WriteBatch {
                shard_id,
                start_ts: start,
                mutations: vec![crate::shard::proto::Mutation {
                    key: key.clone(),
                    value: Some(b"v".to_vec()),
                }],
            };
            n1.coordinator
                .prepare_here(PrepareRequest {
                    txn_id: txn.to_vec(),
                    batches: vec![batch(&a, 0)],
                    ..Default::default()
                })
                .unwrap();
            n2.coordinator
                .prepare_here(PrepareRequest {
                    txn_id: txn.to_vec(),
                    batches: vec![batch(&b, 1)],
                    ..Default::default()
                })
                .unwrap();
        };
        let recover = |coordinator: &Arc<TxnCoordinator>, peers: &Arc<dyn Peers>| {
            let (coordinator, peers) = (coordinator.clone(), peers.clone());
            tokio::task::spawn_blocking(move || {
                coordinator.recover(&peers, std::time::Duration::ZERO)
            })
        };

        // Its coordinator (node 1, which its id names) still at work on
        // it: recovery leaves it prepared, here and on node 2, however old.
        let busy = n1.coordinator.new_txn_id(1);
        let at_work = AtWork::on(&n1.coordinator, &busy);
        prepare(&busy);
        recover(&n2.coordinator, &peers[1]).await.unwrap();
        recover(&n1.coordinator, &peers[0]).await.unwrap();
        assert_eq!(n1.coordinator.prepared_txns().len(), 1);
        assert_eq!(n2.coordinator.prepared_txns().len(), 1);
        drop(at_work);
        recover(&n2.coordinator, &peers[1]).await.unwrap();
        recover(&n1.coordinator, &peers[0]).await.unwrap();
        assert!(n1.coordinator.prepared_txns().is_empty());
        assert!(n2.coordinator.prepared_txns().is_empty());

        // Died before the decision: recovery aborts it on both nodes, and
        // the coordinator could no longer commit it.
        prepare(b"early");
        recover(&n2.coordinator, &peers[1]).await.unwrap();
        recover(&n1.coordinator, &peers[0]).await.unwrap();
        assert!(n1.coordinator.prepared_txns().is_empty());
        assert!(n2.coordinator.prepared_txns().is_empty());
        assert!(matches!(
            n1.coordinator.decide(decision(b"early", vec![0, 1])),
            Err(Error::Retry(_))
        ));

        // Died after the decision (its participants: shard groups 0 and 1):
        // the meta node applies it everywhere and lets reads pass it.
        prepare(b"late");
        let commit_ts = n1
            .coordinator
            .decide(decision(b"late", vec![0, 1]))
            .unwrap();
        assert!(n1.coordinator.begin().start_ts() < commit_ts);
        recover(&n1.coordinator, &peers[0]).await.unwrap();
        assert!(n2.coordinator.prepared_txns().is_empty());
        let read_ts = n1.coordinator.begin().start_ts();
        assert!(read_ts >= commit_ts);
        for (n, key) in [(&n1, &a), (&n2, &b)] {
            let row = n
                .coordinator
                .shards()
                .for_key(key)
                .get(key, read_ts)
                .unwrap();
            assert_eq!(row.unwrap(), b"v");
        }
    }
}
