//! Transactions: snapshot isolation over MVCC storage, committed atomically
//! across all shard groups (see `docs/architecture.md`, "The transaction
//! protocol").
//!
//! A transaction reads at `start_ts`, a fresh timestamp from the oracle
//! ([`tso`], [`meta`]), registered while it lives so garbage collection
//! keeps what it reads ([`snapshots`]), and buffers its writes in memory (so
//! it reads its own writes by overlaying the buffer on scans); past its
//! buffer's size it sends them ahead to their shard groups, which hold them
//! locked until it ends ([`sent_ahead`]). Rolling back is dropping the
//! buffer (and aborting what was sent ahead). At commit the writes are
//! grouped by shard group into `WriteBatch` messages:
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
//! Every node, a lone one too, runs its shard groups and the meta group as
//! Raft groups: there is no other way to commit (a coordinator outside a
//! cluster cannot).
//!
//! Three parts, each with one job: the [`TxnCoordinator`] runs this
//! node's transactions (the snapshot, the buffer, the commit protocols,
//! recovery); the [`Participant`] proposes what commits ask of the groups
//! this node leads; the [`Oracle`] hands out timestamps and decides schema
//! changes (served by the meta group's leader, over the [`OracleState`]
//! every meta replica applies).

mod async_commit;
mod clock;
pub mod distributed;
mod meta;
mod one_phase;
pub mod oracle;
mod participant;
mod sent_ahead;
pub mod service;
mod snapshots;
mod tso;

pub use clock::{since_epoch, Clock};
pub use meta::{Oracle, OracleCall, OracleState};
pub use participant::Participant;

use distributed::Leaders;
pub use sent_ahead::Parcel;
use sent_ahead::SentAhead;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Bound;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, SchemaChange, TableDef, TableId};
use crate::cluster::Cluster;
use crate::encoding::keys::{table_bounds, TABLE_ID_LEN};
use crate::error::{Error, InputError, Result};
use crate::raft::groups::ShardGroups;
use crate::shard::access::{LocalLeader, ShardAccess};
use crate::shard::locks::WriteLocks;
use crate::shard::proto::{Mutation, WriteBatch};
use crate::shard::{ShardMap, ShardRange, ShardReplica};
use crate::storage::Storage;
use oracle::proto::DecideRequest;

/// An open transaction: its snapshot and its buffered writes.
pub struct Transaction {
    start_ts: u64,
    /// Keeps the snapshot from garbage collection while the transaction
    /// lives.
    _reading: snapshots::Reading,
    /// `user_key -> Some(row) | None (deleted)`, with the statement that
    /// wrote it.
    writes: BTreeMap<Vec<u8>, BufferedWrite>,
    /// About how many bytes `writes` holds, and how many it may hold
    /// before they are sent ahead ([`sent_ahead`]).
    buffered: usize,
    buffer_limit: usize,
    /// The writes sent ahead to the shard groups, once there are any.
    sent: Option<SentAhead>,
    /// The statement running now, counted from 1: it reads the writes of
    /// the statements before it.
    statement: u32,
    schema: SchemaChange,
    /// The savepoints set, oldest first.
    savepoints: Vec<Savepoint>,
    /// While a savepoint is set: each buffered write's key and what the
    /// buffer held under it before, so ROLLBACK TO can put it back.
    undo: Vec<(Vec<u8>, Option<BufferedWrite>)>,
}

/// A buffered write: the row (None: deleted) and the statement that wrote
/// it.
type BufferedWrite = (Option<Vec<u8>>, u32);

/// A point ROLLBACK TO SAVEPOINT returns the transaction to: its buffered
/// writes and schema changes as they were when it was set. Writes sent
/// ahead since cannot be taken back from the shard groups (they are held
/// there as one intent per group): rolling back past them is refused.
#[derive(Debug)]
struct Savepoint {
    name: String,
    /// How long `undo` was when it was set.
    undo_len: usize,
    buffered: usize,
    schema: SchemaChange,
    /// Writes were sent ahead since it was set.
    sent_since: bool,
}

/// How a statement of a transaction reads the shard groups: at the
/// transaction's snapshot, and, once it sent writes ahead, with those of
/// its earlier statements (`ScanRequest.txn_id` and `statement`).
#[derive(Debug, Clone, Default)]
pub struct ReadAs {
    pub snapshot_ts: u64,
    /// Empty until the transaction sent writes ahead.
    pub txn_id: Vec<u8>,
    pub statement: u32,
}

impl ReadAs {
    /// Reads each row's newest committed version, waiting for a write in
    /// flight on it as any reader does (`shard::locks`): what a statement
    /// that reads one row and nothing else (an autocommit point SELECT)
    /// reads without asking the oracle for a snapshot. The read is served
    /// by the row's group leader under its lease, after it applied every
    /// entry committed before, so it sees every commit acknowledged before
    /// it began: it is linearizable for that row. A read of several rows
    /// this way would not be a snapshot of them.
    pub fn newest() -> Self {
        Self {
            snapshot_ts: u64::MAX,
            ..Self::default()
        }
    }
}

/// The default of [`Parts::write_buffer`]: 16 MiB.
pub const DEFAULT_WRITE_BUFFER: usize = 16 << 20;

/// What a buffered write costs beyond its key and row (the map's node).
const WRITE_OVERHEAD: usize = 64;

impl Transaction {
    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    pub fn put(&mut self, user_key: Vec<u8>, row: Vec<u8>) {
        self.buffer(user_key, Some(row));
    }

    pub fn delete(&mut self, user_key: Vec<u8>) {
        self.buffer(user_key, None);
    }

    fn buffer(&mut self, user_key: Vec<u8>, row: Option<Vec<u8>>) {
        self.buffered += user_key.len() + row.as_ref().map_or(0, Vec::len) + WRITE_OVERHEAD;
        if self.savepoints.is_empty() {
            self.writes.insert(user_key, (row, self.statement));
        } else {
            let before = self.writes.insert(user_key.clone(), (row, self.statement));
            self.undo.push((user_key, before));
        }
    }

    /// Sets a savepoint named `name` (a newer one of the same name hides
    /// an older one, as in PostgreSQL).
    pub fn savepoint(&mut self, name: String) {
        self.savepoints.push(Savepoint {
            name,
            undo_len: self.undo.len(),
            buffered: self.buffered,
            schema: self.schema.clone(),
            sent_since: false,
        });
    }

    /// The newest savepoint named `name`: 3B001 if there is none.
    fn find_savepoint(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| {
                Error::input(
                    InputError::InvalidSavepoint,
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    /// Forgets the savepoint `name` and those set after it; the writes
    /// made since stay.
    pub fn release_savepoint(&mut self, name: &str) -> Result<()> {
        let at = self.find_savepoint(name)?;
        self.savepoints.truncate(at);
        if self.savepoints.is_empty() {
            self.undo.clear();
        }
        Ok(())
    }

    /// Undoes the writes and schema changes made since the savepoint
    /// `name` was set, and forgets the savepoints set after it (it stays).
    pub fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let at = self.find_savepoint(name)?;
        self.savepoints.truncate(at + 1);
        let Some(savepoint) = self.savepoints.last() else {
            return Ok(());
        };
        if savepoint.sent_since {
            return Err(Error::unsupported(format!(
                "ROLLBACK TO SAVEPOINT {name} after the transaction sent more than its \
                 write buffer of writes ahead since"
            )));
        }
        (self.buffered, self.schema) = (savepoint.buffered, savepoint.schema.clone());
        for (key, before) in self.undo.drain(savepoint.undo_len..).rev() {
            match before {
                Some(write) => self.writes.insert(key, write),
                None => self.writes.remove(&key),
            };
        }
        Ok(())
    }

    /// The buffer's writes were sent ahead: no savepoint set before can
    /// take them back.
    fn sent_past_savepoints(&mut self) {
        for savepoint in &mut self.savepoints {
            savepoint.sent_since = true;
            savepoint.undo_len = 0;
        }
        self.undo.clear();
    }

    /// Starts the next statement.
    pub fn next_statement(&mut self) {
        self.statement += 1;
    }

    /// This transaction's own version of a key among the writes it holds:
    /// `None` if it holds none (it may have sent one ahead: reads of the
    /// shard groups find those), `Some(None)` if it deleted it.
    pub fn own_write(&self, user_key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(user_key).map(|(row, _)| row.as_deref())
    }

    /// A copy of the buffered writes in user-key range `[start, end)`.
    pub fn writes_in(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.writes
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .map(|(k, (row, _))| (k.clone(), row.clone()))
            .collect()
    }

    /// How the statement running now reads the shard groups.
    pub fn read_as(&self) -> ReadAs {
        let txn_id = self.sent.as_ref().map(|s| s.txn_id.clone());
        ReadAs {
            snapshot_ts: self.start_ts,
            txn_id: txn_id.unwrap_or_default(),
            statement: self.statement,
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty() && self.sent.is_none() && self.schema.is_empty()
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
            let before = self.writes.remove(&key);
            if !self.savepoints.is_empty() {
                self.undo.push((key, before));
            }
        }
        // Rows it sent ahead into the table commit into a table no one can
        // read (its id is never reused) and are left behind.
        if let Some(sent) = &mut self.sent {
            sent.tables.remove(&def.id);
        }
        if self.sent.is_some() {
            // Forgetting them cannot be undone.
            self.sent_past_savepoints();
        }
        Ok(true)
    }

    /// The ids of the tables this transaction wrote rows of (holds or
    /// sent ahead). Keys start with the table id, so this skips from one
    /// table's range to the next.
    fn written_tables(&self) -> BTreeSet<TableId> {
        let mut tables: BTreeSet<TableId> = match &self.sent {
            Some(sent) => sent.tables.clone(),
            None => BTreeSet::new(),
        };
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
            tables.insert(TableId(id));
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
    cluster: Arc<Cluster>,
    /// This node's id and its cluster's.
    node: u32,
    cluster_id: String,
    /// The Raft groups of the shard groups (and the meta group) this node
    /// holds replicas of.
    groups: Arc<ShardGroups>,
    /// The timestamp oracle, as this node reaches it (see `meta`).
    oracle: Arc<Oracle>,
    /// This node as the leader of shard groups that commits write.
    participant: Arc<Participant>,
    /// With `txn_counter`, makes cross-node transaction ids unique.
    txn_epoch: u64,
    txn_counter: AtomicU64,
    /// The cross-node transactions this node is committing now, as their
    /// coordinator (see `distributed`).
    at_work: Mutex<HashSet<Vec<u8>>>,
    /// The keys of the commits this node's groups hold in flight, which
    /// readers there wait for (see `one_phase`).
    locks: Arc<WriteLocks>,
    /// The snapshots the node's transactions read at.
    snapshots: Arc<snapshots::Snapshots>,
    /// How many bytes of writes a transaction holds in memory before it
    /// sends them ahead to the shard groups ([`sent_ahead`]).
    write_buffer: usize,
}

/// What a node's transactions run on: its storage, its place in the
/// cluster, its Raft groups (whose state machines hold `oracle` and
/// `locks`), its catalog, and how many bytes of writes a transaction holds
/// in memory before it sends them ahead (`cluster.txn_write_buffer_kib`).
pub struct Parts {
    pub storage: Arc<Storage>,
    pub cluster: Arc<Cluster>,
    pub groups: Arc<ShardGroups>,
    pub oracle: Arc<OracleState>,
    pub locks: Arc<WriteLocks>,
    pub catalog: Arc<Catalog>,
    pub write_buffer: usize,
}

impl TxnCoordinator {
    /// The coordinator of a node made of `parts`, with the oracle and the
    /// participant it reaches in-process.
    pub fn new(parts: Parts) -> Result<Arc<Self>> {
        let Parts {
            storage,
            cluster,
            groups,
            oracle,
            locks,
            catalog,
            write_buffer,
        } = parts;
        let node = cluster
            .node_id()
            .ok_or_else(|| Error::Internal("a coordinator outside a cluster".into()))?;
        catalog.set_node(node);
        let oracle = Oracle::new(oracle, cluster.clone(), groups.clone(), node);
        let participant = Participant::new(groups.clone(), locks.clone(), oracle.clone());
        Ok(Arc::new(Self {
            storage,
            shards: cluster.shards().clone(),
            cluster_id: cluster.cluster_id(),
            node,
            cluster,
            catalog,
            groups,
            oracle,
            participant: Arc::new(participant),
            txn_epoch: since_epoch().as_micros() as u64,
            txn_counter: AtomicU64::new(0),
            at_work: Mutex::new(HashSet::new()),
            locks,
            snapshots: Arc::default(),
            write_buffer: write_buffer.max(1),
        }))
    }

    /// The timestamp oracle, as this node reaches it.
    pub fn oracle(&self) -> &Arc<Oracle> {
        &self.oracle
    }

    /// This node as a participant in commits.
    pub fn participant(&self) -> &Arc<Participant> {
        &self.participant
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

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// How this node reaches the shard group of `replica`: its leader, here
    /// in-process when this node leads it, else over the network (the
    /// leader confirms it still leads before it reads; see
    /// `shard::access`).
    pub fn route(&self, replica: &Arc<ShardReplica>) -> Result<ShardAccess> {
        let range = replica.range();
        let groups = &self.groups;
        let leaders = Leaders {
            groups: groups.clone(),
            cluster: self.cluster.clone(),
        };
        let local = groups.leading_term(range.id.0).map(|_| LocalLeader {
            replica: replica.clone(),
            groups: groups.clone(),
            locks: self.locks.clone(),
        });
        let node = groups.leader_now(range.id.0, range.node);
        Ok(ShardAccess {
            range: range.clone(),
            node,
            channel: self.cluster.channel(node)?,
            cluster_id: self.cluster_id.clone(),
            reroute: Arc::new(leaders),
            local,
        })
    }

    /// The node that takes writes of `range` now: the leader of its Raft
    /// group (waiting for an election in progress).
    async fn home(&self, range: &ShardRange) -> Result<u32> {
        self.groups.leader(range.id.0, range.node).await
    }

    /// The Raft groups of this node's replicas.
    pub fn groups(&self) -> &Arc<ShardGroups> {
        &self.groups
    }

    /// Begins a transaction at a fresh timestamp from the oracle.
    pub async fn begin_shared(&self) -> Result<Transaction> {
        Ok(self.begin_at(self.oracle.timestamp().await?))
    }

    /// Moves this node's floor (see [`Self::snapshot_floor`]) to the
    /// oracle's time now if none of its transactions is open: point
    /// SELECTs and INSERTs that are transactions of their own take no
    /// snapshot (`ReadAs::newest`, [`Self::insert_alone`]), so a node
    /// serving only them would otherwise hold garbage collection back.
    pub async fn advance_idle_floor(&self) -> Result<()> {
        // A busy node's floor is its oldest snapshot: no timestamp needed.
        if !self.snapshots.is_idle() {
            return Ok(());
        }
        let ts = self.oracle.timestamp().await?;
        self.snapshots.handed_while_idle(ts);
        Ok(())
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
        let groups = &self.groups;
        let held = (0..self.shards.replicas().len() as u32).filter(|&g| groups.holds(g));
        let mut oldest_intent = u64::MAX;
        for group in held {
            match crate::shard::machine::intents(&self.storage, group) {
                Ok(intents) => {
                    let start = intents.iter().map(|(_, i)| i.start_ts);
                    oldest_intent = start.fold(oldest_intent, u64::min);
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

    /// What readers of the groups this node leads wait for.
    pub fn locks(&self) -> &Arc<WriteLocks> {
        &self.locks
    }

    fn begin_at(&self, start_ts: u64) -> Transaction {
        Transaction {
            start_ts,
            _reading: self.snapshots.read_at(start_ts),
            writes: BTreeMap::new(),
            buffered: 0,
            buffer_limit: self.write_buffer,
            sent: None,
            statement: 0,
            schema: SchemaChange::default(),
            savepoints: Vec::new(),
            undo: Vec::new(),
        }
    }

    /// Commits `txn`: the commit timestamp (`start_ts` for a read-only
    /// transaction). A schema change's commit runs on a blocking thread
    /// (it applies the catalog and purges dropped tables' rows here).
    pub async fn commit(self: &Arc<Self>, mut txn: Transaction) -> Result<u64> {
        if txn.is_read_only() {
            return Ok(txn.start_ts);
        }
        let written_tables: Vec<TableId> = txn.written_tables().into_iter().collect();
        let mut batches = self.batches(txn.start_ts, std::mem::take(&mut txn.writes));
        // Every group it sent writes ahead to prepares them, with what it
        // holds for the group, if anything.
        let mut sent = txn.sent.take();
        for &group in sent.iter().flat_map(|s| &s.groups) {
            batches.entry(group).or_insert_with(|| WriteBatch {
                shard_id: group,
                start_ts: txn.start_ts,
                mutations: Vec::new(),
            });
        }
        if txn.schema.is_empty() {
            // Tables dropped since the statements ran.
            self.catalog.validate(&txn.schema, &written_tables)?;
            let mut batches: Vec<WriteBatch> = batches.into_values().collect();
            // From here on, the commit resolves the writes sent ahead.
            let txn_id = sent.as_mut().map(SentAhead::take_over);
            return match (batches.len(), txn_id) {
                (1, None) => self.commit_one_phase(batches.remove(0)).await,
                (_, txn_id) => self.commit_async(batches, txn_id).await,
            };
        }
        // A schema change commits with the decision at the oracle, which
        // holds the catalog.
        let txn_id = sent.as_mut().map(SentAhead::take_over);
        let decide = DecideRequest {
            txn_id: txn_id.unwrap_or_else(|| self.new_txn_id()),
            participants: batches.keys().copied().collect(),
            schema_change: txn.schema.to_bytes(),
            written_tables: written_tables.iter().map(|t| t.0).collect(),
        };
        let coordinator = self.clone();
        let batches = batches.into_values().collect();
        tokio::task::spawn_blocking(move || coordinator.commit_across(batches, decide))
            .await
            .map_err(|e| Error::Internal(format!("a commit failed: {e}")))?
    }

    /// `writes` of a transaction that read at `start_ts`, by shard group.
    fn batches(
        &self,
        start_ts: u64,
        writes: BTreeMap<Vec<u8>, (Option<Vec<u8>>, u32)>,
    ) -> BTreeMap<u32, WriteBatch> {
        let mut batches: BTreeMap<u32, WriteBatch> = BTreeMap::new();
        for (key, (value, statement)) in writes {
            let shard = self.shards.for_key(&key).range().id.0;
            batches
                .entry(shard)
                .or_insert_with(|| WriteBatch {
                    shard_id: shard,
                    start_ts,
                    mutations: Vec::new(),
                })
                .mutations
                .push(Mutation {
                    key,
                    value,
                    statement,
                    absent: false,
                });
        }
        batches
    }
}

/// The schema change a decision request carries.
fn schema_change_of(request: &DecideRequest) -> Result<SchemaChange> {
    if request.schema_change.is_empty() {
        return Ok(SchemaChange::default());
    }
    SchemaChange::from_bytes(&request.schema_change)
        .map_err(|e| Error::input(InputError::Other, format!("bad schema change: {e}")))
}
