//! The timestamp oracle as the cluster reaches it: the meta group's
//! leader (the meta group has one voter on a lone node).
//!
//! The oracle's state ([`OracleState`]: commit decisions, the clock's
//! newest timestamp, the timestamp limit, the catalog) is part of the
//! state machine of the meta group, a Raft group on the first three
//! members. Its leader serves the `Oracle` calls ([`Oracle::serve`]);
//! every other node asks it ([`Oracle::ask`]):
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
//! (`Cluster::at_meta`): from its own replica, or by trying the
//! meta replicas in turn, for up to `QUORUM_WAIT`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use prost::Message;

use super::oracle::proto::oracle_applied::Outcome;
use super::oracle::proto::oracle_client::OracleClient;
use super::oracle::proto::{
    oracle_command, BeginRequest, Decide, DecideRequest, DoneRequest, DoneResponse, OracleApplied,
    OracleCommand, ResolveRequest, ResolveResponse, TimestampLimit,
};
use super::oracle::{Decisions, DECISION_PREFIX};
use super::{clock, tso, Clock};
use crate::catalog::{Catalog, SchemaChange, TableDef, TableId, NEXT_TABLE_ID, TABLE_PREFIX};
use crate::cluster::meta::{oracle_answer, oracle_command};
use crate::cluster::Cluster;
use crate::encoding::keys::table_bounds;
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;
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

/// The timestamp oracle's state, which every meta replica keeps by
/// applying the meta group's log: the clock, the timestamp limit, the
/// decisions of schema changes, and the catalog they change. The node
/// that leads the meta group serves the oracle from it ([`Oracle`]).
pub struct OracleState {
    storage: Arc<Storage>,
    catalog: Arc<Catalog>,
    /// As the meta group's leader: the oracle's clock (see `tso`).
    clock: Clock,
    /// The timestamp limit (see `tso`).
    limit: tso::Limit,
    /// The schema changes decided and not yet applied in every group they
    /// wrote (see [`super::oracle`]).
    decisions: Mutex<Decisions>,
    /// The meta group's term in which this node, as its leader, applied
    /// every entry of earlier terms.
    term: AtomicU64,
    /// Held while a schema change is decided.
    schema_lock: tokio::sync::Mutex<()>,
}

/// The oracle's part of the meta group's state machine (the cluster's
/// `MetaMachine` passes it the oracle's commands): `OracleCommand` and
/// `OracleApplied` of `proto/txn.proto`.
struct OracleMachine(Arc<OracleState>);

/// The `meta` records of the oracle's state.
const ORACLE_PREFIXES: [&[u8]; 5] = [
    TABLE_PREFIX,
    NEXT_TABLE_ID,
    DECISION_PREFIX,
    clock::LAST_TS_KEY,
    tso::LIMIT_KEY,
];

impl StateMachine for OracleMachine {
    fn apply(&self, command: &[u8], batch: StorageBatch) -> Result<Vec<u8>> {
        let command = OracleCommand::decode(command)
            .map_err(|e| Error::Corrupt(format!("meta log entry: {e}")))?;
        let outcome = self.0.apply(command, batch)?;
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
        self.0.reload()
    }
}

impl OracleState {
    /// The oracle's state as this node's meta replica holds it (none
    /// before the meta group's first entries). Blocks on disk.
    pub fn load(storage: Arc<Storage>, catalog: Arc<Catalog>) -> Result<Self> {
        let limit = tso::Limit::default();
        limit.applied(stored_limit(&storage)?);
        Ok(Self {
            clock: Clock::load(&storage)?,
            limit,
            decisions: Mutex::new(Decisions::load(&storage)?),
            term: AtomicU64::new(0),
            schema_lock: tokio::sync::Mutex::new(()),
            storage,
            catalog,
        })
    }

    /// The oracle's part of the meta group's state machine, for its Raft
    /// group on this node.
    pub fn machine(self: &Arc<Self>) -> Arc<dyn StateMachine> {
        Arc::new(OracleMachine(self.clone()))
    }

    /// Applies an oracle command of the meta group's log. Blocks on disk.
    fn apply(&self, command: OracleCommand, batch: StorageBatch) -> Result<Outcome> {
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

    /// Reads the oracle's state again after a snapshot replaced it. Blocks
    /// on disk.
    fn reload(&self) -> Result<()> {
        let mut decisions = self.decisions();
        self.clock.reload(&self.storage)?;
        self.limit.applied(stored_limit(&self.storage)?);
        self.catalog.reload(&self.storage)?;
        *decisions = Decisions::load(&self.storage)?;
        Ok(())
    }

    pub(super) fn decisions(&self) -> std::sync::MutexGuard<'_, Decisions> {
        // The state is only changed after its records are written, so a
        // panic elsewhere leaves it consistent.
        self.decisions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timestamp oracle, applying the meta group's `Decide`: records
    /// the commit point of a transaction with a schema change at
    /// `commit_ts` (the meta group leader's choice), with the change, which
    /// is checked against the catalog (so are the tables it writes), all in
    /// one write with `batch`; then purges the rows of the tables it
    /// dropped here. Asking twice gets the same answer. Blocks on disk.
    fn decide_here(
        &self,
        request: DecideRequest,
        commit_ts: u64,
        mut batch: StorageBatch,
    ) -> Result<u64> {
        let schema = super::schema_change_of(&request)?;
        let mut decisions = self.decisions();
        match self.earlier_or_check(&request, &schema) {
            Ok(None) => {}
            // Nothing to record but the entry applied, if `batch` says so.
            Ok(Some(commit_ts)) => {
                self.storage.write(batch)?;
                return Ok(commit_ts);
            }
            Err(e) => {
                self.storage.write(batch)?;
                return Err(e);
            }
        }
        self.catalog.stage(&schema, &mut batch)?;
        decisions.decide(
            &self.storage,
            &self.clock,
            &request.txn_id,
            request.participants,
            commit_ts,
            batch,
        )?;
        let dropped: Vec<Arc<TableDef>> = schema.dropped().cloned().collect();
        self.catalog.apply(schema);
        drop(decisions);
        self.purge(dropped);
        Ok(commit_ts)
    }

    /// The commit timestamp of `request`'s transaction if it is decided
    /// already; otherwise whether it can be decided: its schema change
    /// `schema` and the tables it writes against the catalog. Called under
    /// the commit lock. Blocks on disk.
    fn earlier_or_check(
        &self,
        request: &DecideRequest,
        schema: &SchemaChange,
    ) -> Result<Option<u64>> {
        if let Some(commit_ts) = Decisions::earlier(&self.storage, &request.txn_id)? {
            return Ok(Some(commit_ts));
        }
        let written: Vec<TableId> = request.written_tables.iter().map(|&t| TableId(t)).collect();
        self.catalog.validate(schema, &written).map(|()| None)
    }

    /// The timestamp oracle: every participant applied `txn_id`; written
    /// with `batch`. Blocks on disk.
    fn done_here(&self, txn_id: &[u8], batch: StorageBatch) -> Result<()> {
        self.decisions().done(&self.storage, txn_id, batch)
    }

    /// The timestamp oracle: the decision for `txn_id`, aborting it if it
    /// has none (see [`oracle`]); written with `batch`. Blocks on disk.
    fn resolve_here(&self, txn_id: &[u8], batch: StorageBatch) -> Result<Option<u64>> {
        self.decisions().resolve(&self.storage, txn_id, batch)
    }

    /// Purges the rows of the tables `dropped` by a commit. No transaction
    /// can see those tables any more, and none can commit rows into them
    /// (`Catalog::validate`). A failure leaves unreachable rows behind, not
    /// a failed commit. Blocks on disk.
    fn purge(&self, dropped: Vec<Arc<TableDef>>) {
        for def in dropped {
            let (start, end) = table_bounds(def.id.0);
            if let Err(e) = self.storage.purge_range(&start, &end) {
                tracing::warn!(table = %def.name, error = %e, "could not purge a dropped table");
            }
        }
    }
}

/// The timestamp oracle as this node reaches it: served here while this
/// node leads the meta group ([`Oracle::serve`]), asked of the leader
/// otherwise ([`Oracle::ask`]); this node's requests for timestamps are
/// gathered into one call ([`Oracle::timestamp`], see `tso`).
pub struct Oracle {
    state: Arc<OracleState>,
    cluster: Arc<Cluster>,
    groups: Arc<ShardGroups>,
    node: u32,
    cluster_id: String,
    timestamps: tso::Batcher,
}

impl Oracle {
    /// The oracle of `state`'s meta group, reached through `cluster` and
    /// this node's `groups`.
    pub fn new(
        state: Arc<OracleState>,
        cluster: Arc<Cluster>,
        groups: Arc<ShardGroups>,
        node: u32,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Self>| {
            let oracle = this.clone();
            let timestamps = tso::Batcher::start(move |count| {
                let oracle = oracle.clone();
                async move {
                    let oracle = oracle
                        .upgrade()
                        .ok_or_else(|| Error::Unavailable("the node is stopping".into()))?;
                    oracle
                        .ask(OracleCall::Begin(count))
                        .await?
                        .ok_or_else(|| Error::Internal("the oracle gave no timestamp".into()))
                }
            });
            Self {
                cluster_id: cluster.cluster_id(),
                state,
                cluster,
                groups,
                node,
                timestamps,
            }
        })
    }

    /// The oracle's state as this node's meta replica holds it.
    pub(super) fn state(&self) -> &OracleState {
        &self.state
    }

    /// A fresh timestamp: issued in place while this node leads the meta
    /// group (no task hand-off: a lease check and a clock tick), else
    /// gathered with this node's other requests into one call.
    pub(super) async fn timestamp(&self) -> Result<u64> {
        if self.serves() {
            match self.issue(1).await {
                // Deposed meanwhile: the gathered call finds the new leader.
                Err(Error::NotLeader(_)) => {}
                // As the gathered call would answer here (`ask`).
                issued => return issued,
            }
        }
        self.timestamps.next().await
    }

    /// Replicates the oracle's `command` in the meta group, which this
    /// node leads: the oracle's answer.
    async fn propose(&self, command: oracle_command::Command) -> Result<Outcome> {
        let command = OracleCommand {
            command: Some(command),
        };
        let answer = self
            .groups
            .propose(META_GROUP, oracle_command(command.encode_to_vec()))
            .await?;
        OracleApplied::decode(oracle_answer(&answer)?.as_slice())
            .ok()
            .and_then(|applied| applied.outcome)
            .ok_or_else(|| Error::Internal("the oracle's answer cannot be read".into()))
    }

    /// Answers `call` as the oracle: as the meta group's leader (else
    /// `NotLeader`).
    pub async fn serve(&self, call: OracleCall) -> Result<Option<u64>> {
        match call {
            OracleCall::Begin(count) => self.issue(u64::from(count)).await.map(Some),
            OracleCall::Decide(request) => self.decide(request).await.map(Some),
            OracleCall::Done(txn_id) => {
                let done = oracle_command::Command::Done(DoneRequest { txn_id });
                self.propose(done).await?;
                Ok(None)
            }
            OracleCall::Resolve(txn_id) => {
                let resolve = oracle_command::Command::Resolve(ResolveRequest { txn_id });
                match self.propose(resolve).await? {
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
    async fn lead(&self) -> Result<()> {
        let groups = &self.groups;
        let term = groups
            .leading_term(META_GROUP)
            .ok_or_else(|| Error::NotLeader("this node does not lead the meta group".into()))?;
        let oracle = &self.state;
        if oracle.term.load(Ordering::Acquire) != term {
            groups.linearize(META_GROUP).await?;
            oracle.clock.skip_to(oracle.limit.get());
            oracle.term.store(term, Ordering::Release);
        }
        Ok(())
    }

    /// `count` fresh timestamps, as the meta group's leader: the first.
    /// Above every timestamp handed out before by this or a former leader,
    /// so above every commit acknowledged before; no meta group write
    /// unless the limit must rise (see `tso`).
    async fn issue(&self, count: u64) -> Result<u64> {
        self.groups.linearize(META_GROUP).await?;
        self.lead().await?;
        let oracle = &self.state;
        let first = oracle.clock.reserve(count);
        let last = first + count.max(1) - 1;
        if last >= oracle.limit.get() {
            let _raising = oracle.limit.raising.lock().await;
            if last >= oracle.limit.get() {
                let limit = last + tso::WINDOW_US;
                let raise = oracle_command::Command::TimestampLimit(TimestampLimit { limit });
                self.propose(raise).await?;
            }
        }
        Ok(first)
    }

    /// `Decide` on the meta group's leader (see the module docs).
    async fn decide(&self, request: DecideRequest) -> Result<u64> {
        let schema = super::schema_change_of(&request)?;
        let _one_schema_change = match schema.is_empty() {
            true => None,
            false => Some(self.state.schema_lock.lock().await),
        };
        let commit_ts = self.issue(1).await?;
        {
            // Readers take fresh timestamps and wait at the groups for the
            // prepared intents (see the module docs): nothing here holds
            // them back while the decision is replicated.
            let _decisions = self.state.decisions();
            if let Some(commit_ts) = self.state.earlier_or_check(&request, &schema)? {
                return Ok(commit_ts);
            }
        }
        let command = oracle_command::Command::Decide(Decide {
            request: Some(request),
            commit_ts,
        });
        match self.propose(command).await? {
            Outcome::Decision(ResolveResponse {
                commit_ts: Some(commit_ts),
            }) => {
                if !schema.is_empty() {
                    self.publish_catalog(self.groups.applied_index(META_GROUP))
                        .await;
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
    /// [`Self::serve`]).
    pub async fn ask(&self, call: OracleCall) -> Result<Option<u64>> {
        let cluster_id = &self.cluster_id;
        self.cluster
            .at_meta(&self.groups, |node| {
                let call = call.clone();
                let cluster_id = cluster_id.clone();
                async move {
                    if node == self.node {
                        return self.serve(call).await;
                    }
                    let client = OracleClient::new(self.cluster.channel(node)?);
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

    /// Whether this node serves the oracle now: it leads the meta group.
    pub fn serves(&self) -> bool {
        self.groups.leading_term(META_GROUP).is_some()
    }

    /// Gives every other live node the catalog, after a schema change that
    /// the meta group applied at `meta_index` (0 without one): a node
    /// holding a meta replica waits to have applied it, the others take
    /// it. A failure leaves that node with its old catalog until it
    /// restarts, not a failed commit.
    async fn publish_catalog(&self, meta_index: u64) {
        let tables = self.state.catalog.tables();
        if let Err(e) = self.cluster.publish_catalog(tables, meta_index).await {
            tracing::warn!(error = %e, "a node missed a catalog change; it takes the catalog when it restarts");
        }
    }
}

/// The timestamp limit recorded in `storage` (0: none; see `tso`).
fn stored_limit(storage: &Storage) -> Result<u64> {
    match storage.get_meta(tso::LIMIT_KEY)? {
        None => Ok(0),
        Some(raw) => <[u8; 8]>::try_from(raw.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt("the timestamp limit".into())),
    }
}
