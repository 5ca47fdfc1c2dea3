//! The coordinator side of a commit with a schema change: two-phase commit
//! over the `Participant` services, decided by the `Oracle`, which holds
//! the catalog (see `oracle`, `meta` and
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
//!    `Done`. A participant that cannot be told now keeps its intents until
//!    recovery resolves them with the oracle; the commit stands either way.
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
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::raft::groups::{ShardGroups, QUORUM_WAIT};
use crate::rpc::call_twice;
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
/// participants commit, then it is done). Sooner than [`RECOVER_AFTER`]:
/// readers of its keys wait for it, and finishing it twice is harmless.
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

/// A client of a node's `Participant` service.
pub(super) type ParticipantRpc = ParticipantClient<Channel>;

/// What a prepare is for.
pub(super) enum PrepareKind {
    /// A commit the meta group decides (a schema change: `commit_across`).
    ForDecision,
    /// A commit by its prepares alone: the primary group and every group
    /// written (`async_commit`).
    Vote(u32, Vec<u32>),
    /// Writes sent ahead by a running transaction (`sent_ahead`).
    SentAhead,
}

/// Finds a replicated group's leader again for a scan (see
/// `shard::access`), as [`TxnCoordinator::on_homes`] does for writes.
pub(super) struct Leaders {
    pub groups: Arc<ShardGroups>,
    pub cluster: Arc<Cluster>,
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
            Ok((node, self.cluster.channel(node)?))
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
        let prepared = self.prepare_everywhere(&txn_id, batches, PrepareKind::ForDecision);
        if let Err(e) = runtime.block_on(prepared) {
            runtime.block_on(self.abort_everywhere(&txn_id, start_ts, &groups));
            return Err(e);
        }

        // 2. Decide.
        let commit_ts = match runtime.block_on(self.decide_at_oracle(decide)) {
            Ok(commit_ts) => commit_ts,
            Err(e) => {
                runtime.block_on(self.abort_everywhere(&txn_id, start_ts, &groups));
                return Err(e);
            }
        };

        // 3. Apply everywhere, then let reads pass it.
        let resolved = self.resolve_everywhere(&txn_id, Some(commit_ts), start_ts, &groups);
        match runtime.block_on(resolved) {
            Ok(()) => {
                if let Err(e) = runtime.block_on(self.oracle.ask(OracleCall::Done(txn_id))) {
                    tracing::warn!(error = %e, "could not report a finished commit to the oracle");
                }
            }
            Err(e) => tracing::warn!(error = %e, "a committed transaction waits for recovery"),
        }
        Ok(commit_ts)
    }

    /// Phase one: each batch to the node that takes its group's writes
    /// (this one in-process, the others over gRPC), in parallel. The first
    /// refusal (a conflict: 40001) is the answer. For a vote, the highest
    /// minimum commit timestamp of the groups is (0 otherwise).
    pub(super) async fn prepare_everywhere(
        &self,
        txn_id: &[u8],
        batches: Vec<WriteBatch>,
        kind: PrepareKind,
    ) -> Result<u64> {
        let min_commit_ts = AtomicU64::new(0);
        let prepare = |node: u32, batches: Vec<WriteBatch>| {
            let (primary, participants) = match &kind {
                PrepareKind::Vote(primary, all) => (Some(*primary), all.clone()),
                PrepareKind::ForDecision | PrepareKind::SentAhead => (None, Vec::new()),
            };
            let request = PrepareRequest {
                txn_id: txn_id.to_vec(),
                batches,
                primary,
                participants,
                staged: matches!(kind, PrepareKind::SentAhead),
            };
            let min_commit_ts = &min_commit_ts;
            async move {
                let ts = if node == self.node {
                    self.participant.prepare(request).await?
                } else {
                    let prepare = |mut c: ParticipantRpc, r| async move { c.prepare(r).await };
                    let answer = self.ask_participant(node, &request, prepare);
                    answer.await?.min_commit_ts
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
        txn_id: &[u8],
        outcome: Option<u64>,
        start_ts: u64,
        groups: &[u32],
    ) -> Result<()> {
        let resolve = |node: u32, groups: Vec<u32>| async move {
            self.resolve_on(node, txn_id, (outcome, start_ts), &groups)
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
                // Every group is a Raft group: another replica may lead it.
                if !matches!(e, Error::NotLeader(_) | Error::NodeUnreachable(_)) {
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
        node: u32,
        txn_id: &[u8],
        (outcome, start_ts): (Option<u64>, u64),
        groups: &[u32],
    ) -> Result<()> {
        if node == self.node {
            return self
                .participant
                .resolve_prepared(txn_id, outcome, start_ts, groups)
                .await;
        }
        let (txn_id, shard_ids) = (txn_id.to_vec(), groups.to_vec());
        match outcome {
            Some(commit_ts) => {
                let request = CommitPreparedRequest {
                    txn_id,
                    commit_ts,
                    shard_ids,
                };
                let commit = |mut c: ParticipantRpc, r| async move { c.commit_prepared(r).await };
                self.ask_participant(node, &request, commit).await?;
            }
            None => {
                let request = AbortRequest {
                    txn_id,
                    shard_ids,
                    start_ts,
                };
                let abort = |mut c: ParticipantRpc, r| async move { c.abort(r).await };
                self.ask_participant(node, &request, abort).await?;
            }
        }
        Ok(())
    }

    /// After `node` failed to take the writes of `groups`: the next try of
    /// a group this node holds no replica of goes to another replica.
    pub(super) fn missed(&self, node: u32, groups: &[u32]) {
        for &group in groups {
            if let Some(replica) = self.shards().replicas().get(group as usize) {
                self.groups.missed(group, node, &replica.range().replicas);
            }
        }
    }

    /// Aborts `txn_id` in every group of `groups` (those that did not
    /// prepare have nothing to drop); what cannot be reached now is left
    /// to recovery.
    async fn abort_everywhere(&self, txn_id: &[u8], start_ts: u64, groups: &[u32]) {
        if let Err(e) = (self.resolve_everywhere(txn_id, None, start_ts, groups)).await {
            tracing::warn!(error = %e, "an aborted transaction waits for recovery");
        }
    }

    /// The oracle's decision; if the answer is lost, the decision it
    /// recorded, or an abort.
    async fn decide_at_oracle(&self, request: DecideRequest) -> Result<u64> {
        let txn_id = request.txn_id.clone();
        match self.oracle.ask(OracleCall::Decide(request)).await {
            Ok(commit_ts) => commit_ts
                .ok_or_else(|| Error::Internal("the oracle gave no commit timestamp".into())),
            // A refusal (a conflict, a name taken first) is an answer: no
            // decision was recorded.
            Err(e @ (Error::Retry(_) | Error::Input(..))) => Err(e),
            Err(e) => match self.oracle.ask(OracleCall::Resolve(txn_id)).await {
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
    pub fn recover(&self, at_least: std::time::Duration) {
        self.recover_prepared(at_least);
        self.recover_decided(at_least.min(DECISION_RECOVER_AFTER));
    }

    /// The prepared transactions of [`Self::recover`], but those whose
    /// coordinator is still at work on them. Blocks.
    fn recover_prepared(&self, at_least: std::time::Duration) {
        let mut waiting: Vec<(Vec<u8>, Vec<u32>, Intent)> = Vec::new();
        let groups = &self.groups;
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
        for (txn_id, groups, intent) in waiting {
            let start_ts = intent.start_ts;
            let resolved = block_on(async {
                if self.coordinator_at_work(&txn_id).await {
                    return Ok(());
                }
                // Writes sent ahead by a transaction no one runs any more:
                // it never prepared (its abort is recorded: a late prepare
                // is refused).
                if intent.staged {
                    return self
                        .participant
                        .resolve_prepared(&txn_id, None, start_ts, &groups)
                        .await;
                }
                if let Some(primary) = intent.primary {
                    let voted = Voted {
                        txn_id: txn_id.clone(),
                        start_ts,
                        primary,
                        participants: intent.participants,
                    };
                    return self.settle(&voted).await.map(|_| ());
                }
                let outcome = self.oracle.ask(OracleCall::Resolve(txn_id.clone())).await?;
                self.participant
                    .resolve_prepared(&txn_id, outcome, start_ts, &groups)
                    .await
            });
            if let Err(e) = resolved {
                tracing::warn!(error = %e, "could not resolve a prepared transaction yet");
            }
        }
    }

    /// The decisions in flight of [`Self::recover`], on the oracle.
    /// Blocks.
    fn recover_decided(&self, at_least: std::time::Duration) {
        if !self.oracle.serves() {
            return;
        }
        let decided = match self
            .oracle
            .state()
            .decisions()
            .waiting(&self.storage, at_least)
        {
            Ok(decided) => decided,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the commit decisions in flight");
                return;
            }
        };
        for (txn_id, decision) in decided {
            let applied = block_on(self.resolve_everywhere(
                &txn_id,
                Some(decision.commit_ts),
                0,
                &decision.participants,
            ))
            .and_then(|()| block_on(self.oracle.serve(OracleCall::Done(txn_id))));
            if let Err(e) = applied {
                tracing::warn!(error = %e, "could not finish a recovered commit yet");
            }
        }
    }

    fn participant_at(&self, node: u32) -> Result<ParticipantRpc> {
        Ok(ParticipantClient::new(self.cluster.channel(node)?))
    }

    /// Calls `method` of the `Participant` service of `node` with `request`
    /// (once more if the node was unavailable): its answer, or an error
    /// naming the node.
    pub(super) async fn ask_participant<Req, T, Fut>(
        &self,
        node: u32,
        request: &Req,
        method: impl Fn(ParticipantRpc, tonic::Request<Req>) -> Fut,
    ) -> Result<T>
    where
        Req: Clone,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.participant_at(node)?;
        call_twice(&client, request, &self.cluster_id, method)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| Error::from_rpc(&format!("node {node}"), s))
    }

    /// Whether this node is committing `txn_id` now, as its coordinator.
    pub fn committing(&self, txn_id: &[u8]) -> bool {
        self.at_work().contains(txn_id)
    }

    pub(super) fn at_work(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        // A set of ids: a panic elsewhere leaves it consistent.
        self.at_work.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the coordinator of `txn_id` (the node its id names) says it
    /// is still committing it. One that does not answer is not: it died,
    /// or is cut off and will find its transaction aborted.
    async fn coordinator_at_work(&self, txn_id: &[u8]) -> bool {
        let Some(node) = txn_id.first_chunk().map(|b| u32::from_be_bytes(*b)) else {
            return false;
        };
        if node == self.node {
            return self.committing(txn_id);
        }
        let request = CommittingRequest {
            txn_id: txn_id.to_vec(),
        };
        let committing = |mut c: ParticipantRpc, r| async move { c.committing(r).await };
        let asked = self.ask_participant(node, &request, committing);
        matches!(
            tokio::time::timeout(COORDINATOR_ANSWER_WAIT, asked).await,
            Ok(Ok(answer)) if answer.committing
        )
    }

    /// A transaction id unique in the cluster: the node id, the time this
    /// node started, and a counter.
    pub(super) fn new_txn_id(&self) -> Vec<u8> {
        let mut id = self.node.to_be_bytes().to_vec();
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
