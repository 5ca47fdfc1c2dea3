//! Transactions: snapshot isolation over MVCC storage, committed atomically
//! across all shard groups (see `docs/architecture.md`, "The transaction
//! protocol").
//!
//! A transaction reads at `start_ts`, a fresh timestamp from the oracle
//! ([`tso`], [`meta`]), registered while it lives so garbage collection
//! keeps what it reads ([`snapshots`]), and buffers its writes in memory (so
//! it reads its own writes by overlaying the buffer on scans). Rolling back
//! is dropping the buffer. At commit the writes are grouped by shard group
//! into `WriteBatch` messages:
//! - one group's: a one-phase commit on that group's leader, one Raft
//!   write ([`one_phase`]);
//! - several groups': async commit ([`async_commit`]), one parallel round
//!   of `Prepare` (which commits it once every group applied it; the
//!   primary group holds its status), its intents resolved afterwards;
//! - a schema change: a two-phase commit ([`distributed`]): `Prepare` in
//!   each group, the decision at the oracle (with the schema change,
//!   checked against the catalog), `Commit` in each group.
//!
//! Either way each group's state machine checks its batch when it applies
//! it: a key committed by someone else after `start_ts` is a write-write
//! conflict, and the transaction fails with a retryable error (SQLSTATE
//! 40001): first committer wins. Readers wait at the group's leader only
//! for writes in flight they may have to see (`shard::locks`).
//!
//! A coordinator outside a cluster (unit tests) still commits the older
//! way, under one node-wide lock with its own [`Clock`] and prepared
//! intents ([`prepared`], [`oracle`]); that path goes next.

mod async_commit;
mod clock;
pub mod distributed;
mod meta;
mod one_phase;
pub mod oracle;
mod prepared;
pub mod service;
mod snapshots;
mod tso;

pub use clock::{since_epoch, Clock};
pub use meta::OracleCall;

use distributed::{Leaders, Peers};
use oracle::Decisions;
use prepared::Prepared;

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::catalog::{Catalog, SchemaChange, SchemaChangeMessage, TableDef, TableId};
use crate::encoding::keys::{table_bounds, TABLE_ID_LEN};
use crate::error::{Error, InputError, Result};
use crate::raft::groups::ShardGroups;
use crate::shard::access::{LocalLeader, Reroute, ShardAccess};
use crate::shard::locks::WriteLocks;
use crate::shard::machine::{prepare_command, resolve_command};
use crate::shard::proto::{Mutation, PrepareCommand, PrepareRequest, WriteBatch};
use crate::shard::{ShardMap, ShardRange, ShardReplica};
use crate::storage::{Storage, StorageBatch};
use oracle::proto::DecideRequest;

/// An open transaction: its snapshot and its buffered writes.
pub struct Transaction {
    start_ts: u64,
    /// Keeps the snapshot from garbage collection while the transaction
    /// lives.
    _reading: snapshots::Reading,
    /// `user_key -> Some(row) | None (deleted)`.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    schema: SchemaChange,
}

impl Transaction {
    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    pub fn put(&mut self, user_key: Vec<u8>, row: Vec<u8>) {
        self.writes.insert(user_key, Some(row));
    }

    pub fn delete(&mut self, user_key: Vec<u8>) {
        self.writes.insert(user_key, None);
    }

    /// This transaction's own version of a key: `None` if it did not write
    /// it, `Some(None)` if it deleted it.
    pub fn own_write(&self, user_key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(user_key).map(|v| v.as_deref())
    }

    /// A copy of the buffered writes in user-key range `[start, end)`.
    pub fn writes_in(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.writes
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty() && self.schema.is_empty()
    }

    /// The tables this transaction created and dropped.
    pub fn schema(&self) -> &SchemaChange {
        &self.schema
    }

    /// Creates a table in this transaction (see [`SchemaChange::create_table`]).
    pub fn create_table(
        &mut self,
        catalog: &Catalog,
        def: TableDef,
        if_not_exists: bool,
    ) -> Result<bool> {
        self.schema.create_table(catalog, def, if_not_exists)
    }

    /// Drops a table in this transaction, with the rows it wrote there.
    pub fn drop_table(&mut self, catalog: &Catalog, name: &str, if_exists: bool) -> Result<bool> {
        let Some(def) = self.schema.drop_table(catalog, name, if_exists)? else {
            return Ok(false);
        };
        let (start, end) = table_bounds(def.id.0);
        let written: Vec<Vec<u8>> = self
            .writes
            .range::<[u8], _>((
                Bound::Included(start.as_slice()),
                Bound::Excluded(end.as_slice()),
            ))
            .map(|(k, _)| k.clone())
            .collect();
        for key in written {
            self.writes.remove(&key);
        }
        Ok(true)
    }

    /// The ids of the tables this transaction wrote rows of. Keys start with
    /// the table id, so this skips from one table's range to the next.
    fn written_tables(&self) -> Vec<TableId> {
        let mut tables = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some((key, _)) = self
            .writes
            .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Unbounded))
            .next()
        {
            let Some(id) = key.get(..TABLE_ID_LEN).and_then(|b| b.try_into().ok()) else {
                break;
            };
            let id = u32::from_be_bytes(id);
            tables.push(TableId(id));
            from = table_bounds(id).1;
        }
        tables
    }
}

/// Begins and commits transactions on this node.
pub struct TxnCoordinator {
    storage: Arc<Storage>,
    shards: Arc<ShardMap>,
    catalog: Arc<Catalog>,
    clock: Clock,
    /// The read timestamp of new transactions: every commit at or below it
    /// is applied (see [`oracle`]). Changed only under the commit lock.
    visible_ts: AtomicU64,
    /// Serialises validation and commit (step 2–4 above), and guards what
    /// cross-node commits leave here.
    commit_lock: Mutex<Locked>,
    /// The other nodes, once this node is in a cluster of several.
    peers: OnceLock<Arc<dyn Peers>>,
    /// The Raft groups of the shard groups this node holds replicas of,
    /// when the cluster replicates.
    groups: OnceLock<Arc<ShardGroups>>,
    /// With `txn_counter`, makes cross-node transaction ids unique.
    txn_epoch: u64,
    txn_counter: AtomicU64,
    /// The meta group's term in which this node, as its leader, applied
    /// every entry of earlier terms (see `meta`).
    meta_term: AtomicU64,
    /// Held while a schema change is decided in the meta group.
    schema_lock: tokio::sync::Mutex<()>,
    /// Told whenever `visible_ts` may have moved.
    visible_changed: tokio::sync::Notify,
    /// The cross-node transactions this node is committing now, as their
    /// coordinator (see `distributed`).
    at_work: Mutex<HashSet<Vec<u8>>>,
    /// The keys of the one-phase commits this node runs as their group's
    /// leader, which readers there wait for (see `one_phase`).
    locks: Arc<WriteLocks>,
    /// As a meta replica: the timestamp limit (see `tso`).
    limit: tso::Limit,
    /// This node's requests for timestamps, gathered (see `tso`).
    timestamps: OnceLock<tso::Batcher>,
    /// The snapshots the node's transactions read at.
    snapshots: Arc<snapshots::Snapshots>,
}

/// What [`TxnCoordinator::decide_here`] recorded.
struct Decided {
    commit_ts: u64,
    schema_changed: bool,
}

/// What the commit lock guards.
struct Locked {
    /// Transactions prepared here by cross-node commits; local commits must
    /// not take their keys.
    prepared: Prepared,
    /// On the meta node: cross-node commits decided and not yet applied
    /// everywhere.
    decisions: Decisions,
}

impl TxnCoordinator {
    pub fn new(
        storage: Arc<Storage>,
        shards: Arc<ShardMap>,
        catalog: Arc<Catalog>,
    ) -> Result<Self> {
        let clock = Clock::load(&storage)?;
        let locked = Locked {
            prepared: Prepared::load(&storage)?,
            decisions: Decisions::load(&storage, clock.last())?,
        };
        let visible_ts = AtomicU64::new(locked.decisions.read_ts());
        let txn_epoch = since_epoch().as_micros() as u64;
        let limit = tso::Limit::default();
        limit.applied(stored_limit(&storage)?);
        Ok(Self {
            storage,
            shards,
            catalog,
            clock,
            visible_ts,
            commit_lock: Mutex::new(locked),
            peers: OnceLock::new(),
            groups: OnceLock::new(),
            txn_epoch,
            txn_counter: AtomicU64::new(0),
            meta_term: AtomicU64::new(0),
            schema_lock: tokio::sync::Mutex::new(()),
            visible_changed: tokio::sync::Notify::new(),
            at_work: Mutex::new(HashSet::new()),
            locks: Arc::new(WriteLocks::default()),
            limit,
            timestamps: OnceLock::new(),
            snapshots: Arc::default(),
        })
    }

    pub fn shards(&self) -> &Arc<ShardMap> {
        &self.shards
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// How this node reaches the shard group of `replica`: its leader, here
    /// in-process when this node leads it, else over the network (the
    /// leader confirms it still leads before it reads; see
    /// `shard::access`); in-process without checks when the group is not a
    /// Raft group (a node without a cluster, in unit tests).
    pub fn route(&self, replica: &Arc<ShardReplica>) -> Result<ShardAccess> {
        let range = replica.range();
        let Some(peers) = self.peers.get() else {
            return Ok(ShardAccess::Local(replica.clone()));
        };
        let (node, reroute, local) = match range.is_replicated() {
            true => {
                let groups = self.groups()?;
                let leaders = Leaders {
                    groups: groups.clone(),
                    peers: peers.clone(),
                };
                let reroute: Arc<dyn Reroute> = Arc::new(leaders);
                let local = groups.leading_term(range.id.0).map(|_| LocalLeader {
                    replica: replica.clone(),
                    groups: groups.clone(),
                    locks: self.locks.clone(),
                });
                let node = groups.leader_now(range.id.0, range.node);
                (node, Some(reroute), local)
            }
            false if range.node == peers.node_id() => {
                return Ok(ShardAccess::Local(replica.clone()))
            }
            false => (range.node, None, None),
        };
        Ok(ShardAccess::Remote {
            range: range.clone(),
            node,
            channel: peers.channel(node)?,
            cluster_id: peers.cluster_id(),
            reroute,
            local,
        })
    }

    /// The node that takes writes of `range` now: the leader of its Raft
    /// group (waiting for an election in progress), or the node holding
    /// its only copy.
    async fn home(&self, range: &ShardRange) -> Result<u32> {
        match range.is_replicated() {
            true => self.groups()?.leader(range.id.0, range.node).await,
            false => Ok(range.node),
        }
    }

    /// The Raft groups of this node's replicas, when the cluster
    /// replicates.
    pub fn shard_groups(&self) -> Option<&Arc<ShardGroups>> {
        self.groups.get()
    }

    fn groups(&self) -> Result<&Arc<ShardGroups>> {
        self.groups
            .get()
            .ok_or_else(|| Error::Unavailable("this node does not run its shard groups yet".into()))
    }

    fn is_replicated(&self, group: u32) -> bool {
        self.shards
            .replicas()
            .get(group as usize)
            .is_some_and(|r| r.range().is_replicated())
    }

    /// Makes the replicated shard groups `groups` take this node's writes.
    pub fn set_groups(&self, groups: Arc<ShardGroups>) {
        let _ = self.groups.set(groups);
    }

    /// Begins a transaction at the cluster's read timestamp, the oracle's
    /// (this node's own when it is alone).
    pub async fn begin_shared(&self) -> Result<Transaction> {
        if self.peers.get().is_none() {
            return Ok(self.begin());
        }
        Ok(self.begin_at(self.timestamp().await?))
    }

    /// The oldest snapshot this node's transactions read at, or the newest
    /// timestamp it was handed when none is open (0: none yet): garbage
    /// collection keeps what such a transaction may read.
    ///
    /// A transaction prepared in a group this node holds a replica of
    /// holds the floor at its snapshot too, until it is resolved: the
    /// records recovery reads to resolve it are kept while it waits (see
    /// `async_commit`). Blocks on disk (a few intent records).
    pub fn snapshot_floor(&self) -> u64 {
        let floor = self.snapshots.floor();
        let Some(groups) = self.groups.get() else {
            return floor;
        };
        let held = (0..self.shards.replicas().len() as u32).filter(|&g| groups.holds(g));
        let mut oldest_intent = u64::MAX;
        for group in held {
            match crate::shard::machine::intents(&self.storage, group) {
                Ok(intents) => {
                    let start = intents.iter().filter_map(|(_, i)| i.batch.as_ref());
                    oldest_intent = start.map(|b| b.start_ts).fold(oldest_intent, u64::min);
                }
                // Hold everything back rather than let a record go early.
                Err(e) => {
                    tracing::warn!(group, error = %e, "could not read the prepared transactions");
                    return 0;
                }
            }
        }
        match floor {
            0 => 0,
            floor => floor.min(oldest_intent),
        }
    }

    /// A timestamp from the oracle: of a cluster that replicates, a fresh
    /// one (gathered with this node's other requests once
    /// [`Self::gather_timestamps`] ran); of one that does not, the read
    /// timestamp.
    async fn timestamp(&self) -> Result<u64> {
        if let Some(batcher) = self.timestamps.get() {
            return batcher.next().await;
        }
        self.ask_oracle(OracleCall::Begin(1))
            .await?
            .ok_or_else(|| Error::Internal("the oracle gave no timestamp".into()))
    }

    /// Gathers this node's concurrent requests for timestamps into one call
    /// to the oracle from now on (once the node is in its cluster).
    pub fn gather_timestamps(self: &Arc<Self>) {
        let coordinator = Arc::downgrade(self);
        let batcher = tso::Batcher::start(move |count| {
            let coordinator = coordinator.clone();
            async move {
                let coordinator = coordinator
                    .upgrade()
                    .ok_or_else(|| Error::Unavailable("the node is stopping".into()))?;
                coordinator
                    .ask_oracle(OracleCall::Begin(count))
                    .await?
                    .ok_or_else(|| Error::Internal("the oracle gave no timestamp".into()))
            }
        });
        let _ = self.timestamps.set(batcher);
    }

    /// What readers of the groups this node leads wait for.
    pub fn locks(&self) -> &Arc<WriteLocks> {
        &self.locks
    }

    /// Makes commits that write other nodes' shard groups, or commit off the
    /// meta node, go through two-phase commit with `peers`.
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        self.catalog.set_node(peers.node_id());
        let _ = self.peers.set(peers);
    }

    pub fn begin(&self) -> Transaction {
        self.begin_at(self.visible_ts.load(Ordering::Acquire))
    }

    fn begin_at(&self, start_ts: u64) -> Transaction {
        Transaction {
            start_ts,
            _reading: self.snapshots.read_at(start_ts),
            writes: BTreeMap::new(),
            schema: SchemaChange::default(),
        }
    }

    /// Commits `txn`; blocks on disk, so async callers use `spawn_blocking`.
    /// Returns the commit timestamp (`start_ts` for a read-only transaction).
    pub fn commit(self: &Arc<Self>, txn: Transaction) -> Result<u64> {
        if txn.is_read_only() {
            return Ok(txn.start_ts);
        }
        let written_tables = txn.written_tables();
        let mut batches: BTreeMap<u32, WriteBatch> = BTreeMap::new();
        for (key, value) in txn.writes {
            let shard = self.shards.for_key(&key).range().id.0;
            batches
                .entry(shard)
                .or_insert_with(|| WriteBatch {
                    shard_id: shard,
                    start_ts: txn.start_ts,
                    mutations: Vec::new(),
                })
                .mutations
                .push(Mutation { key, value });
        }
        if let Some(peers) = self.peers.get() {
            let me = peers.node_id();
            let replicas = self.shards.replicas();
            if batches.len() == 1 && txn.schema.is_empty() {
                if let Some((&group, _)) = batches.first_key_value() {
                    if replicas[group as usize].range().is_replicated() {
                        // Tables dropped since the statements ran.
                        self.catalog.validate(&txn.schema, &written_tables)?;
                        let batch = batches.remove(&group).unwrap_or_default();
                        return self.commit_one_phase(peers, batch);
                    }
                }
            }
            let all_replicated = batches.keys().all(|&group| self.is_replicated(group));
            if all_replicated && txn.schema.is_empty() {
                self.catalog.validate(&txn.schema, &written_tables)?;
                return self.commit_async(peers, batches.into_values().collect());
            }
            let all_here = batches.values().all(|b| {
                let range = replicas[b.shard_id as usize].range();
                !range.is_replicated() && range.node == me
            });
            // Unless this node is the meta node of a cluster that does not
            // replicate, every commit takes the oracle's timestamp, and a
            // schema change commits with the decision there.
            if !all_here || !peers.is_unreplicated_oracle() {
                let decide = DecideRequest {
                    txn_id: self.new_txn_id(me),
                    participants: batches.keys().copied().collect(),
                    schema_change: match txn.schema.is_empty() {
                        true => Vec::new(),
                        false => serde_json::to_vec(&txn.schema.to_message())
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    },
                    written_tables: written_tables.iter().map(|t| t.0).collect(),
                };
                return self.commit_across(peers, batches.into_values().collect(), decide);
            }
        }
        let schema = txn.schema;
        let dropped: Vec<Arc<TableDef>> = schema.dropped().cloned().collect();
        let mut locked = self.lock();
        self.catalog.validate(&schema, &written_tables)?;
        let replicas = self.shards.replicas();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].validate(batch)?;
            locked.prepared.check_unlocked(batch, &[])?;
        }
        let commit_ts = self.clock.next();
        let mut out = self.storage.batch();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].stage(batch, commit_ts, &mut out);
        }
        self.catalog.stage(&schema, &mut out)?;
        self.clock.record(commit_ts, &mut out);
        self.storage.write(out)?;
        let schema_changed = !schema.is_empty();
        self.catalog.apply(schema);
        locked.decisions.applied(commit_ts);
        self.publish(&locked);
        drop(locked);
        if schema_changed {
            self.schema_changed(dropped);
        }
        Ok(commit_ts)
    }

    /// After a schema change committed here: every live node gets the new
    /// catalog before the commit returns, and the rows of the dropped
    /// tables go. Blocks.
    fn schema_changed(&self, dropped: Vec<Arc<TableDef>>) {
        // A commit runs on a blocking thread of the runtime (see `commit`),
        // which drives the calls to the other nodes.
        if let (Some(_), Ok(runtime)) = (self.peers.get(), tokio::runtime::Handle::try_current()) {
            runtime.block_on(self.publish_catalog(0));
        }
        self.purge(dropped);
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

impl TxnCoordinator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Locked> {
        // The state is only changed after its records are written, so a
        // panic elsewhere leaves it consistent.
        self.commit_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the read timestamp of `locked` the one new transactions get.
    fn publish(&self, locked: &Locked) {
        self.visible_ts
            .store(locked.decisions.read_ts(), Ordering::Release);
        self.visible_changed.notify_waiters();
    }

    /// The timestamp oracle: records the commit point of a cross-node
    /// transaction at `commit_ts` (the meta group leader's choice) or at a
    /// timestamp from the clock, with its schema change, which is checked
    /// against the catalog as a local commit's is (so are the tables it
    /// writes), all in one write with `batch`; then purges the rows of the
    /// tables it dropped here. Asking twice gets the same answer. Blocks on
    /// disk.
    fn decide_here(
        &self,
        request: DecideRequest,
        commit_ts: Option<u64>,
        mut batch: StorageBatch,
    ) -> Result<Decided> {
        let schema = schema_change_of(&request)?;
        let mut locked = self.lock();
        match self.earlier_or_check(&request, &schema) {
            Ok(None) => {}
            // Nothing to record but the entry applied, if `batch` says so.
            Ok(Some(commit_ts)) => {
                self.storage.write(batch)?;
                return Ok(Decided {
                    commit_ts,
                    schema_changed: false,
                });
            }
            Err(e) => {
                self.storage.write(batch)?;
                return Err(e);
            }
        }
        self.catalog.stage(&schema, &mut batch)?;
        let commit_ts = locked.decisions.decide(
            &self.storage,
            &self.clock,
            &request.txn_id,
            request.participants,
            commit_ts,
            batch,
        )?;
        let dropped: Vec<Arc<TableDef>> = schema.dropped().cloned().collect();
        let schema_changed = !schema.is_empty();
        self.catalog.apply(schema);
        self.publish(&locked);
        drop(locked);
        self.purge(dropped);
        Ok(Decided {
            commit_ts,
            schema_changed,
        })
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
        let mut locked = self.lock();
        locked.decisions.done(&self.storage, txn_id, batch)?;
        self.publish(&locked);
        Ok(())
    }

    /// The timestamp oracle: the decision for `txn_id`, aborting it if it
    /// has none (see [`oracle`]); written with `batch`. Blocks on disk.
    fn resolve_here(&self, txn_id: &[u8], batch: StorageBatch) -> Result<Option<u64>> {
        self.lock().decisions.resolve(&self.storage, txn_id, batch)
    }

    /// Two-phase commit, participant side, phase one: validates the writes
    /// as a local commit would (also against keys other prepared
    /// transactions hold), then keeps them as intents holding their keys:
    /// through the Raft group of each replicated shard group (which this
    /// node must lead), on disk here for the others. Preparing a
    /// transaction twice is a no-op. A transaction with a primary group
    /// (`async_commit`) takes each group's minimum commit timestamp while
    /// its keys are held: the highest is the answer (0 for others). Blocks
    /// on disk (in place: call it on the multi-threaded runtime).
    pub async fn prepare(&self, request: PrepareRequest) -> Result<u64> {
        let PrepareRequest {
            txn_id,
            batches,
            primary,
            participants,
        } = request;
        let (replicated, here): (Vec<WriteBatch>, Vec<WriteBatch>) = batches
            .into_iter()
            .partition(|b| self.is_replicated(b.shard_id));
        if !here.is_empty() {
            let request = PrepareRequest {
                txn_id: txn_id.clone(),
                batches: here,
                ..Default::default()
            };
            tokio::task::block_in_place(|| self.prepare_here(request))?;
        }
        if replicated.is_empty() {
            return Ok(0);
        }
        let groups = self.groups()?;
        let prepare = PrepareCommand {
            txn_id: txn_id.clone(),
            primary,
            participants,
            ..Default::default()
        };
        let proposals = replicated.into_iter().map(|batch| async {
            let answer = match prepare.primary {
                Some(_) => {
                    let command = |min_commit_ts, batch| {
                        let prepare = PrepareCommand {
                            min_commit_ts,
                            ..prepare.clone()
                        };
                        prepare_command(prepare, batch)
                    };
                    self.propose_held(&txn_id, batch, command).await?
                }
                None => {
                    let group = batch.shard_id;
                    groups
                        .propose(group, prepare_command(prepare.clone(), batch))
                        .await?
                }
            };
            crate::shard::machine::outcome(&answer)
        });
        let mut min_commit_ts = 0;
        for answer in futures::future::join_all(proposals).await {
            min_commit_ts = min_commit_ts.max(answer?);
        }
        Ok(min_commit_ts)
    }

    /// Phase one for the shard groups whose only copy is on this node.
    fn prepare_here(&self, request: PrepareRequest) -> Result<()> {
        let mut locked = self.lock();
        let prepared = &mut locked.prepared;
        if prepared.contains(&request.txn_id) {
            return Ok(());
        }
        let replicas = self.shards.replicas();
        for batch in &request.batches {
            let replica = replicas.get(batch.shard_id as usize).ok_or_else(|| {
                Error::input(
                    crate::error::InputError::Other,
                    format!("no shard group {}", batch.shard_id),
                )
            })?;
            replica.validate(batch)?;
            prepared.check_unlocked(batch, &request.txn_id)?;
        }
        prepared.add(&self.storage, request)
    }

    /// Phase two, participant side: commits `txn_id` at `Some(commit_ts)`
    /// or aborts it (`None`, recording the abort aged by `start_ts` if
    /// nonzero) in the replicated shard groups `groups` (through their Raft
    /// groups, which this node must lead) and in the shard groups whose
    /// only copy is here. `Ok(false)` if nothing was prepared here (it was
    /// resolved before, or never prepared). Blocks on disk in place, as
    /// [`Self::prepare`].
    pub async fn resolve_prepared(
        &self,
        txn_id: &[u8],
        outcome: Option<u64>,
        start_ts: u64,
        groups: &[u32],
    ) -> Result<bool> {
        let mut found = tokio::task::block_in_place(|| match outcome {
            Some(commit_ts) => self.commit_prepared(txn_id, commit_ts),
            None => self.abort_prepared(txn_id),
        })?;
        let replicated: Vec<u32> = groups
            .iter()
            .copied()
            .filter(|&g| self.is_replicated(g))
            .collect();
        if !replicated.is_empty() {
            let shard_groups = self.groups()?;
            let command = resolve_command(txn_id, outcome, start_ts);
            let proposals = replicated
                .iter()
                .map(|&g| shard_groups.propose(g, command.clone()));
            for answer in futures::future::join_all(proposals).await {
                crate::shard::machine::outcome(&answer?)?;
            }
            found = true;
        }
        Ok(found)
    }

    /// Phase two for the shard groups whose only copy is here: writes a
    /// prepared transaction's intents as versions at `commit_ts`, which the
    /// cluster's timestamp source chose. `Ok(false)` if nothing is prepared
    /// under `txn_id`. Blocks on disk.
    fn commit_prepared(&self, txn_id: &[u8], commit_ts: u64) -> Result<bool> {
        let mut locked = self.lock();
        let prepared = &mut locked.prepared;
        let mut out = self.storage.batch();
        let Some(batches) = prepared.take(txn_id, &mut out) else {
            return Ok(false);
        };
        let replicas = self.shards.replicas();
        for batch in &batches {
            if let Some(replica) = replicas.get(batch.shard_id as usize) {
                replica.stage(batch, commit_ts, &mut out);
            }
        }
        // A later local commit must not reuse the timestamp: versions of a
        // key are told apart by it.
        self.clock.observe(commit_ts, &mut out);
        self.storage.write(out)?;
        prepared.release(txn_id);
        Ok(true)
    }

    /// Phase two, the other way: drops a prepared transaction's intents.
    /// `Ok(false)` if nothing is prepared under `txn_id`. Blocks on disk.
    fn abort_prepared(&self, txn_id: &[u8]) -> Result<bool> {
        let mut locked = self.lock();
        let prepared = &mut locked.prepared;
        let mut out = self.storage.batch();
        if prepared.take(txn_id, &mut out).is_none() {
            return Ok(false);
        }
        self.storage.write(out)?;
        prepared.release(txn_id);
        Ok(true)
    }

    /// The transactions prepared here that wait for a decision, for tests.
    #[cfg(test)]
    pub fn prepared_txns(&self) -> Vec<Vec<u8>> {
        self.lock().prepared.waiting(std::time::Duration::ZERO)
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

/// The schema change a decision request carries.
fn schema_change_of(request: &DecideRequest) -> Result<SchemaChange> {
    if request.schema_change.is_empty() {
        return Ok(SchemaChange::default());
    }
    let message = serde_json::from_slice::<SchemaChangeMessage>(&request.schema_change)
        .map_err(|e| Error::input(InputError::Other, format!("bad schema change: {e}")))?;
    Ok(SchemaChange::from_message(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TxnCoordinator {
        /// The oracle of a cluster that does not replicate, in place.
        pub(crate) fn decide(&self, request: DecideRequest) -> Result<u64> {
            self.decide_here(request, None, self.storage.batch())
                .map(|d| d.commit_ts)
        }

        pub(crate) fn done(&self, txn_id: &[u8]) -> Result<()> {
            self.done_here(txn_id, self.storage.batch())
        }

        pub(crate) fn resolve(&self, txn_id: &[u8]) -> Result<Option<u64>> {
            self.resolve_here(txn_id, self.storage.batch())
        }
    }

    /// A decision request for a transaction that writes no schema change.
    pub(crate) fn decision(txn_id: &[u8], participants: Vec<u32>) -> DecideRequest {
        DecideRequest {
            txn_id: txn_id.to_vec(),
            participants,
            ..Default::default()
        }
    }
    use crate::catalog::int_table;
    use crate::encoding::keys::row_key;
    use crate::error::Error;

    /// A node in `dir` with a committed table `t` (rows can only be
    /// committed into tables that exist).
    pub(super) fn open(dir: &std::path::Path) -> Arc<TxnCoordinator> {
        let storage = Arc::new(Storage::open(dir).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 4).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        let c = Arc::new(TxnCoordinator::new(storage, shards, catalog).unwrap());
        if c.catalog().table("t").is_none() {
            let mut txn = c.begin();
            txn.create_table(c.catalog(), int_table("t"), false)
                .unwrap();
            c.commit(txn).unwrap();
        }
        c
    }

    pub(super) fn t(c: &TxnCoordinator) -> u32 {
        c.catalog().table("t").unwrap().id.0
    }

    fn coordinator() -> (tempfile::TempDir, Arc<TxnCoordinator>) {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = open(dir.path());
        (dir, coordinator)
    }

    fn read(c: &TxnCoordinator, txn: &Transaction, key: &[u8]) -> Option<Vec<u8>> {
        c.shards().for_key(key).get(key, txn.start_ts()).unwrap()
    }

    #[test]
    fn snapshot_isolation_and_first_committer_wins() {
        let (_dir, c) = coordinator();
        let key = row_key(t(&c), b"a");
        let mut setup = c.begin();
        setup.put(key.clone(), b"v1".to_vec());
        c.commit(setup).unwrap();

        let mut t1 = c.begin();
        let mut t2 = c.begin();
        t1.put(key.clone(), b"t1".to_vec());
        t2.put(key.clone(), b"t2".to_vec());
        c.commit(t1).unwrap();
        // t2 still reads its snapshot, and loses the conflict.
        assert_eq!(read(&c, &t2, &key).unwrap(), b"v1");
        assert!(matches!(c.commit(t2), Err(Error::Retry(_))));
        let after = c.begin();
        assert_eq!(read(&c, &after, &key).unwrap(), b"t1");
    }

    #[test]
    fn commit_spans_shard_groups_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_>;
        let last_ts;
        {
            let c = open(dir.path());
            keys = (0..100u32)
                .map(|i| row_key(t(&c), &i.to_be_bytes()))
                .collect();
            let mut txn = c.begin();
            for key in &keys {
                txn.put(key.clone(), b"x".to_vec());
            }
            last_ts = c.commit(txn).unwrap();
        }
        let c = open(dir.path());
        let txn = c.begin();
        assert_eq!(txn.start_ts(), last_ts);
        assert!(keys.iter().all(|k| read(&c, &txn, k).is_some()));
        let mut next = c.begin();
        next.delete(keys[0].clone());
        assert!(c.commit(next).unwrap() > last_ts);
    }

    #[test]
    fn a_table_and_its_rows_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let key;
        {
            let c = open(dir.path());
            // Rolled back: nothing of it remains.
            let mut txn = c.begin();
            txn.create_table(c.catalog(), int_table("gone"), false)
                .unwrap();
            drop(txn);
            assert!(c.catalog().table("gone").is_none());

            let mut txn = c.begin();
            txn.create_table(c.catalog(), int_table("made"), false)
                .unwrap();
            let id = txn.schema().table(c.catalog(), "made").unwrap().id;
            key = row_key(id.0, b"k");
            txn.put(key.clone(), b"row".to_vec());
            // A table created and dropped again takes its rows with it.
            txn.create_table(c.catalog(), int_table("tmp"), false)
                .unwrap();
            let tmp = txn.schema().table(c.catalog(), "tmp").unwrap().id;
            txn.put(row_key(tmp.0, b"k"), b"row".to_vec());
            assert!(txn.drop_table(c.catalog(), "tmp", false).unwrap());
            assert_eq!(txn.written_tables(), vec![id]);
            assert!(c.catalog().table("made").is_none(), "not before commit");
            c.commit(txn).unwrap();
        }
        let c = open(dir.path());
        let made = c.catalog().table("made").unwrap();
        assert_eq!(read(&c, &c.begin(), &key).unwrap(), b"row");

        // A writer into a table dropped by an earlier commit must retry.
        let mut writer = c.begin();
        writer.put(row_key(made.id.0, b"other"), b"row".to_vec());
        let mut dropper = c.begin();
        dropper.drop_table(c.catalog(), "made", false).unwrap();
        c.commit(dropper).unwrap();
        assert!(c.catalog().table("made").is_none());
        assert!(matches!(c.commit(writer), Err(Error::Retry(_))));
        assert!(read(&c, &c.begin(), &key).is_none(), "purged");
    }

    pub(super) fn prepare_request(
        txn_id: &[u8],
        key: &[u8],
        value: &[u8],
        start_ts: u64,
        c: &TxnCoordinator,
    ) -> PrepareRequest {
        let shard_id = c.shards().for_key(key).range().id.0;
        PrepareRequest {
            txn_id: txn_id.to_vec(),
            batches: vec![WriteBatch {
                shard_id,
                start_ts,
                mutations: vec![Mutation {
                    key: key.to_vec(),
                    value: Some(value.to_vec()),
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn prepared_writes_hold_their_keys_until_resolved_and_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (key, other);
        {
            let c = open(dir.path());
            key = row_key(t(&c), b"k");
            other = row_key(t(&c), b"o");
            let start = c.begin().start_ts();
            c.prepare_here(prepare_request(b"tx1", &key, b"v1", start, &c))
                .unwrap();
            c.prepare_here(prepare_request(b"tx1", &key, b"v1", start, &c))
                .unwrap();
            // Neither a local commit nor another prepare may take the key.
            let mut local = c.begin();
            local.put(key.clone(), b"local".to_vec());
            assert!(matches!(c.commit(local), Err(Error::Retry(_))));
            let err = c.prepare_here(prepare_request(b"tx2", &key, b"v2", start, &c));
            assert!(matches!(err, Err(Error::Retry(_))));
            // Another key is free; its transaction is aborted.
            c.prepare_here(prepare_request(b"tx3", &other, b"v3", start, &c))
                .unwrap();
            assert!(c.abort_prepared(b"tx3").unwrap());
            assert!(!c.abort_prepared(b"tx3").unwrap(), "resolved once");
            assert!(
                read(&c, &c.begin(), &key).is_none(),
                "an intent is not a row"
            );
        }
        // After a restart the intent is still there, holding its key.
        let c = open(dir.path());
        assert_eq!(c.prepared_txns(), vec![b"tx1".to_vec()]);
        let mut local = c.begin();
        local.put(key.clone(), b"local".to_vec());
        assert!(matches!(c.commit(local), Err(Error::Retry(_))));
        let commit_ts = c.begin().start_ts() + 1;
        assert!(c.commit_prepared(b"tx1", commit_ts).unwrap());
        assert!(
            !c.commit_prepared(b"tx1", commit_ts).unwrap(),
            "resolved once"
        );
        assert!(c.prepared_txns().is_empty());
        let mut after = c.begin();
        after.put(other.clone(), b"after".to_vec());
        assert!(
            c.commit(after).unwrap() > commit_ts,
            "timestamps stay unique"
        );
        let at = |ts| c.shards().for_key(&key).get(&key, ts).unwrap();
        assert_eq!(at(commit_ts).unwrap(), b"v1");
        assert!(at(commit_ts - 1).is_none());
        // The key is free again; a writer whose snapshot predates the
        // commit loses to it.
        let late = prepare_request(b"tx4", &key, b"v4", commit_ts - 1, &c);
        assert!(matches!(c.prepare_here(late), Err(Error::Retry(_))));
        let now = c.begin().start_ts();
        c.prepare_here(prepare_request(b"tx5", &other, b"v5", now, &c))
            .unwrap();
        assert!(c.abort_prepared(b"tx5").unwrap());
    }

    #[test]
    fn a_decision_in_flight_holds_reads_back_across_restarts_and_recovery_aborts_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let decided;
        {
            let c = open(dir.path());
            decided = c.decide(decision(b"cross", vec![1, 2])).unwrap();
            assert_eq!(
                c.decide(decision(b"cross", vec![1, 2])).unwrap(),
                decided,
                "idempotent"
            );
            // Local commits after it are applied, but reads stay below it.
            let mut local = c.begin();
            local.put(row_key(t(&c), b"k"), b"v".to_vec());
            let local_ts = c.commit(local).unwrap();
            assert!(local_ts > decided);
            assert!(c.begin().start_ts() < decided);
        }
        let c = open(dir.path());
        assert!(
            c.begin().start_ts() < decided,
            "still in flight after a restart"
        );
        assert_eq!(c.resolve(b"cross").unwrap(), Some(decided));
        c.done(b"cross").unwrap();
        assert!(c.begin().start_ts() > decided);

        // Recovery got there first: the transaction can no longer commit.
        assert_eq!(c.resolve(b"orphan").unwrap(), None);
        assert!(matches!(
            c.decide(decision(b"orphan", vec![2])),
            Err(Error::Retry(_))
        ));
    }
}
