//! The timestamp oracle as the cluster reaches it: the meta group's
//! leader (the meta group has one voter on a lone node).
//!
//! The oracle's state (commit decisions, the
//! clock's newest timestamp, the timestamp limit, the catalog:
//! [`OracleMachine`]) is part of the state machine of the meta group, a
//! Raft group on the first three members. Its leader serves the `Oracle`
//! calls:
//! - `Begin(n)` hands out `n` fresh timestamps from the leader's clock,
//!   under the leader's lease and below the recorded limit (see `tso`):
//!   no Raft write, no quorum round. A transaction reads at one; a
//!   one-phase commit commits at one. Readers do not wait here for commits
//!   in flight: they wait at the shard group for the locks in their way
//!   (`shard::locks`).
//! - `Decide`, for a transaction with a schema change, takes a timestamp
//!   the same way and replicates the decision (`OracleCommand::Decide`),
//!   which every replica checks against its catalog and applies alike (the
//!   transaction's schema change with it).
//!   Schema changes are decided one at a time, so the name check before
//!   proposing holds when applying.
//! - `Done` and `Resolve` are replicated too, so a new leader knows which
//!   decisions are in flight and which transactions recovery aborted.
//! - Before it serves anything in a new term the leader applies every
//!   entry of earlier terms (ReadIndex) and moves its clock past the
//!   recorded limit.
//!
//! Every node finds the leader as it finds a shard group's
//! ([`TxnCoordinator::at_meta`]): from its own replica, or by trying the
//! meta replicas in turn, for up to `QUORUM_WAIT`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use prost::Message;

use super::oracle::proto::oracle_applied::Outcome;
use super::oracle::proto::oracle_client::OracleClient;
use super::oracle::proto::{
    oracle_command, BeginRequest, Decide, DecideRequest, DoneRequest, DoneResponse, OracleApplied,
    OracleCommand, ResolveRequest, ResolveResponse, TimestampLimit,
};
use super::oracle::DECISION_PREFIX;
use super::{clock, tso, TxnCoordinator};
use crate::catalog::{NEXT_TABLE_ID, TABLE_PREFIX};
use crate::cluster::meta::{oracle_answer, oracle_command};
use crate::error::{Error, Result};
use crate::raft::groups::QUORUM_WAIT;
use crate::raft::{StateMachine, META_GROUP};
use crate::rpc::call_twice;
use crate::storage::{EachRecord, Family, Storage, StorageBatch, View};

/// A call to the oracle.
#[derive(Debug, Clone)]
pub enum OracleCall {
    /// The first of this many fresh timestamps (see `tso`).
    Begin(u32),
    /// The commit point of a prepared transaction with a schema change.
    Decide(DecideRequest),
    /// Every participant applied the transaction.
    Done(Vec<u8>),
    /// The transaction's decision, aborting it if it has none.
    Resolve(Vec<u8>),
}

/// The oracle's part of the meta group's state machine (the cluster's
/// `MetaMachine` passes it the oracle's commands): `OracleCommand` and
/// `OracleApplied` of `proto/txn.proto`. Weak: the coordinator holds the
/// Raft groups, which hold this.
pub(super) struct OracleMachine(Weak<TxnCoordinator>);

/// The `meta` records of the oracle's state.
const ORACLE_PREFIXES: [&[u8]; 5] = [
    TABLE_PREFIX,
    NEXT_TABLE_ID,
    DECISION_PREFIX,
    clock::LAST_TS_KEY,
    tso::LIMIT_KEY,
];

impl OracleMachine {
    fn coordinator(&self) -> Result<Arc<TxnCoordinator>> {
        self.0
            .upgrade()
            .ok_or_else(|| Error::Unavailable("the node is stopping".into()))
    }
}

impl StateMachine for OracleMachine {
    fn apply(&self, command: &[u8], batch: StorageBatch) -> Result<Vec<u8>> {
        let command = OracleCommand::decode(command)
            .map_err(|e| Error::Corrupt(format!("meta log entry: {e}")))?;
        let outcome = self.coordinator()?.apply_meta(command, batch)?;
        Ok(OracleApplied {
            outcome: Some(outcome),
        }
        .encode_to_vec())
    }

    fn dump(&self, view: &View<'_>, each: &mut EachRecord<'_>) -> Result<()> {
        view.each_meta(&ORACLE_PREFIXES, each)
    }

    fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()> {
        storage.delete_meta_prefixes(&ORACLE_PREFIXES, batch)
    }

    fn owns(&self, family: Family, key: &[u8]) -> bool {
        family == Family::Meta && ORACLE_PREFIXES.iter().any(|p| key.starts_with(p))
    }

    fn reload(&self) -> Result<()> {
        self.coordinator()?.reload_meta()
    }
}

impl TxnCoordinator {
    /// The oracle's part of the meta group's state, for its Raft group
    /// on this node.
    pub fn oracle_machine(self: &Arc<Self>) -> Arc<dyn StateMachine> {
        Arc::new(OracleMachine(Arc::downgrade(self)))
    }

    /// Applies an oracle command of the meta group's log. Blocks on disk.
    fn apply_meta(&self, command: OracleCommand, batch: StorageBatch) -> Result<Outcome> {
        let decision = |commit_ts: Option<u64>| Outcome::Decision(ResolveResponse { commit_ts });
        match command.command {
            Some(oracle_command::Command::Decide(Decide { request, commit_ts })) => {
                let request = request.unwrap_or_default();
                match self.decide_here(request, commit_ts, batch) {
                    Ok(commit_ts) => Ok(decision(Some(commit_ts))),
                    Err(Error::Retry(message)) => Ok(Outcome::Conflict(message)),
                    Err(Error::Input(_, message) | Error::Internal(message)) => {
                        Ok(Outcome::Rejected(message))
                    }
                    Err(e) => Err(e),
                }
            }
            Some(oracle_command::Command::Done(DoneRequest { txn_id })) => self
                .done_here(&txn_id, batch)
                .map(|()| Outcome::Done(DoneResponse {})),
            Some(oracle_command::Command::Resolve(ResolveRequest { txn_id })) => {
                self.resolve_here(&txn_id, batch).map(decision)
            }
            Some(oracle_command::Command::TimestampLimit(TimestampLimit { limit })) => {
                let mut batch = batch;
                batch.put_meta(tso::LIMIT_KEY, &limit.to_be_bytes());
                self.storage.write(batch)?;
                self.limit.applied(limit);
                Ok(Outcome::Done(DoneResponse {}))
            }
            None => {
                self.storage.write(batch)?;
                Ok(Outcome::Rejected("an oracle command of no kind".into()))
            }
        }
    }

    /// Replicates the oracle's `command` in the meta group, which this
    /// node leads: the oracle's answer.
    async fn propose_meta(&self, command: oracle_command::Command) -> Result<Outcome> {
        let command = OracleCommand {
            command: Some(command),
        };
        let answer = self
            .groups()?
            .propose(META_GROUP, oracle_command(command.encode_to_vec()))
            .await?;
        OracleApplied::decode(oracle_answer(&answer)?.as_slice())
            .ok()
            .and_then(|applied| applied.outcome)
            .ok_or_else(|| Error::Internal("the oracle's answer cannot be read".into()))
    }

    /// Reads the oracle's state again after a snapshot replaced it. Blocks
    /// on disk.
    fn reload_meta(&self) -> Result<()> {
        let mut decisions = self.decisions();
        self.clock.reload(&self.storage)?;
        self.limit.applied(super::stored_limit(&self.storage)?);
        self.catalog.reload(&self.storage)?;
        *decisions = super::oracle::Decisions::load(&self.storage)?;
        Ok(())
    }

    /// Answers `call` as the oracle: as the meta group's leader (else
    /// `NotLeader`).
    pub async fn serve_oracle(&self, call: OracleCall) -> Result<Option<u64>> {
        match call {
            OracleCall::Begin(count) => self.issue(u64::from(count)).await.map(Some),
            OracleCall::Decide(request) => self.decide_replicated(request).await.map(Some),
            OracleCall::Done(txn_id) => {
                let done = oracle_command::Command::Done(DoneRequest { txn_id });
                self.propose_meta(done).await?;
                Ok(None)
            }
            OracleCall::Resolve(txn_id) => {
                let resolve = oracle_command::Command::Resolve(ResolveRequest { txn_id });
                match self.propose_meta(resolve).await? {
                    Outcome::Decision(decision) => Ok(decision.commit_ts),
                    other => Err(Error::Internal(format!("resolve answered {other:?}"))),
                }
            }
        }
    }

    /// Before it serves the oracle in a new term, this node (the meta
    /// group's leader) applies everything of earlier terms (ReadIndex), so
    /// its clock has seen every commit timestamp recorded and is moved past
    /// the timestamp limit a former leader recorded (see `tso`).
    async fn lead_meta(&self) -> Result<()> {
        let groups = self.groups()?;
        let term = groups
            .leading_term(META_GROUP)
            .ok_or_else(|| Error::NotLeader("this node does not lead the meta group".into()))?;
        if self.meta_term.load(Ordering::Acquire) != term {
            groups.linearize(META_GROUP).await?;
            self.clock.skip_to(self.limit.get());
            self.meta_term.store(term, Ordering::Release);
        }
        Ok(())
    }

    /// `count` fresh timestamps, as the meta group's leader: the first.
    /// Above every timestamp handed out before by this or a former leader,
    /// so above every commit acknowledged before; no meta group write
    /// unless the limit must rise (see `tso`).
    async fn issue(&self, count: u64) -> Result<u64> {
        let groups = self.groups()?;
        groups.linearize(META_GROUP).await?;
        self.lead_meta().await?;
        let first = self.clock.reserve(count);
        let last = first + count.max(1) - 1;
        if last >= self.limit.get() {
            let _raising = self.limit.raising.lock().await;
            if last >= self.limit.get() {
                let limit = last + tso::WINDOW_US;
                let raise = oracle_command::Command::TimestampLimit(TimestampLimit { limit });
                self.propose_meta(raise).await?;
            }
        }
        Ok(first)
    }

    /// `Decide` on the meta group's leader (see the module docs).
    async fn decide_replicated(&self, request: DecideRequest) -> Result<u64> {
        let groups = self.groups()?;
        let schema = super::schema_change_of(&request)?;
        let _one_schema_change = match schema.is_empty() {
            true => None,
            false => Some(self.schema_lock.lock().await),
        };
        let commit_ts = self.issue(1).await?;
        {
            // Readers take fresh timestamps and wait at the groups for the
            // prepared intents (see the module docs): nothing here holds
            // them back while the decision is replicated.
            let _decisions = self.decisions();
            if let Some(commit_ts) = self.earlier_or_check(&request, &schema)? {
                return Ok(commit_ts);
            }
        }
        let command = oracle_command::Command::Decide(Decide {
            request: Some(request),
            commit_ts,
        });
        match self.propose_meta(command).await? {
            Outcome::Decision(ResolveResponse {
                commit_ts: Some(commit_ts),
            }) => {
                if !schema.is_empty() {
                    self.publish_catalog(groups.applied_index(META_GROUP)).await;
                }
                Ok(commit_ts)
            }
            Outcome::Decision(ResolveResponse { commit_ts: None }) => Err(Error::Retry(
                "the transaction was aborted while its commit was pending".into(),
            )),
            Outcome::Conflict(message) => Err(Error::Retry(message)),
            other => Err(Error::Internal(format!(
                "the meta group refused: {other:?}"
            ))),
        }
    }

    /// Asks the oracle `call` (here or on another node; see
    /// [`Self::serve_oracle`]).
    pub async fn ask_oracle(&self, call: OracleCall) -> Result<Option<u64>> {
        let peers = self
            .peers
            .get()
            .ok_or_else(|| Error::Internal("the oracle of a one-node cluster is local".into()))?;
        let cluster_id = peers.cluster_id();
        self.at_meta(|node| {
            let call = call.clone();
            let cluster_id = cluster_id.clone();
            async move {
                if node == peers.node_id() {
                    return self.serve_oracle(call).await;
                }
                let client = OracleClient::new(peers.channel(node)?);
                let peer = format!("node {node}");
                let answer = match call {
                    OracleCall::Begin(count) => call_twice(
                        &client,
                        &BeginRequest { count },
                        &cluster_id,
                        |mut c, r| async move { c.begin(r).await },
                    )
                    .await
                    .map(|r| Some(r.into_inner().read_ts)),
                    OracleCall::Decide(request) => {
                        call_twice(&client, &request, &cluster_id, |mut c, r| async move {
                            c.decide(r).await
                        })
                        .await
                        .map(|r| Some(r.into_inner().commit_ts))
                    }
                    OracleCall::Done(txn_id) => call_twice(
                        &client,
                        &DoneRequest { txn_id },
                        &cluster_id,
                        |mut c, r| async move { c.done(r).await },
                    )
                    .await
                    .map(|_| None),
                    OracleCall::Resolve(txn_id) => call_twice(
                        &client,
                        &ResolveRequest { txn_id },
                        &cluster_id,
                        |mut c, r| async move { c.resolve(r).await },
                    )
                    .await
                    .map(|r| r.into_inner().commit_ts),
                };
                answer.map_err(|s| Error::from_rpc(&peer, s))
            }
        })
        .await
    }

    /// Calls `call` with the node that serves the meta group now: the meta
    /// group's leader. A node that turns out not to
    /// lead it, or cannot be reached, is followed by the next guess for up
    /// to [`QUORUM_WAIT`].
    pub async fn at_meta<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let peers = self
            .peers
            .get()
            .ok_or_else(|| Error::Internal("a one-node cluster has no meta group".into()))?;
        let replicas = peers.meta_replicas();
        let Some(&first) = replicas.first() else {
            return Err(Error::Internal(
                "the cluster's meta group has no replicas (a cluster of an older build)".into(),
            ));
        };
        let groups = self.groups()?;
        let deadline = std::time::Instant::now() + QUORUM_WAIT;
        loop {
            let node = groups.leader(META_GROUP, first).await?;
            match call(node).await {
                Err(e @ (Error::NotLeader(_) | Error::NodeUnreachable(_))) => {
                    groups.missed(META_GROUP, node, &replicas);
                    if std::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                answer => return answer,
            }
        }
    }

    /// Whether this node serves the oracle now: it leads the meta group.
    pub fn serves_oracle(&self) -> bool {
        self.groups
            .get()
            .is_some_and(|groups| groups.leading_term(META_GROUP).is_some())
    }

    /// Gives every other live node the catalog, after a schema change that
    /// the meta group applied at `meta_index` (0 without one): a node
    /// holding a meta replica waits to have applied it, the others take
    /// it. A failure leaves that node with its old catalog until it
    /// restarts, not a failed commit.
    pub(super) async fn publish_catalog(&self, meta_index: u64) {
        let Some(peers) = self.peers.get() else {
            return;
        };
        let tables = self.catalog.tables();
        if let Err(e) = peers.publish_catalog(tables, meta_index).await {
            tracing::warn!(error = %e, "a node missed a catalog change; it takes the catalog when it restarts");
        }
    }
}
