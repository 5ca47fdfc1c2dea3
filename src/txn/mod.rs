//! Transactions: snapshot isolation over MVCC storage, committed atomically
//! across all shard groups.
//!
//! A transaction reads at `start_ts`, the newest commit visible when it
//! began, and buffers its writes in memory (so it reads its own writes by
//! overlaying the buffer on scans). Commit, under one node-wide lock:
//!
//! 1. group the writes by shard group into `WriteBatch` messages;
//! 2. each replica validates its batch: a key committed by someone else
//!    after `start_ts` is a write-write conflict, and the transaction fails
//!    with a retryable error (SQLSTATE 40001): first committer wins;
//! 3. take a commit timestamp from the [`Clock`], stage every batch into one
//!    storage batch with the timestamp record, and write it synced: all
//!    groups' writes become durable together or not at all;
//! 4. publish the timestamp as visible, so later snapshots include it.
//!
//! Readers never block: a snapshot only sees versions at or below its
//! timestamp, and versions are only ever added above the visible one.
//! Rolling back is dropping the buffer.
//!
//! DDL is part of the transaction too: its [`SchemaChange`] is checked in
//! step 2 (a name taken or a table dropped by an earlier commit fails it),
//! its catalog records join the storage batch of step 3, and the catalog
//! shows it to other sessions right after. The rows of the tables it
//! dropped are purged after the commit; their ids are never reused. On several nodes, steps 2–3 become a
//! two-phase commit over the same `WriteBatch` messages.

mod clock;

pub use clock::Clock;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, SchemaChange, TableDef, TableId};
use crate::encoding::keys::{table_bounds, TABLE_ID_LEN};
use crate::error::Result;
use crate::shard::proto::{Mutation, WriteBatch};
use crate::shard::ShardMap;
use crate::storage::Storage;

/// An open transaction: its snapshot and its buffered writes.
pub struct Transaction {
    start_ts: u64,
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
    /// Newest commit timestamp whose writes are all durable.
    visible_ts: AtomicU64,
    /// Serialises validation and commit (step 2–4 above).
    commit_lock: Mutex<()>,
}

impl TxnCoordinator {
    pub fn new(
        storage: Arc<Storage>,
        shards: Arc<ShardMap>,
        catalog: Arc<Catalog>,
    ) -> Result<Self> {
        let clock = Clock::load(&storage)?;
        let visible_ts = AtomicU64::new(clock.last());
        Ok(Self {
            storage,
            shards,
            catalog,
            clock,
            visible_ts,
            commit_lock: Mutex::new(()),
        })
    }

    pub fn shards(&self) -> &Arc<ShardMap> {
        &self.shards
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn begin(&self) -> Transaction {
        Transaction {
            start_ts: self.visible_ts.load(Ordering::Acquire),
            writes: BTreeMap::new(),
            schema: SchemaChange::default(),
        }
    }

    /// Commits `txn`; blocks on disk, so async callers use `spawn_blocking`.
    /// Returns the commit timestamp (`start_ts` for a read-only transaction).
    pub fn commit(&self, txn: Transaction) -> Result<u64> {
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
        let schema = txn.schema;
        let dropped: Vec<Arc<TableDef>> = schema.dropped().cloned().collect();
        let guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.catalog.validate(&schema, &written_tables)?;
        let replicas = self.shards.replicas();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].validate(batch)?;
        }
        let commit_ts = self.clock.next();
        let mut out = self.storage.batch();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].stage(batch, commit_ts, &mut out);
        }
        self.catalog.stage(&schema, &mut out)?;
        self.clock.record(commit_ts, &mut out);
        self.storage.write(out)?;
        self.catalog.apply(schema);
        self.visible_ts.store(commit_ts, Ordering::Release);
        drop(guard);
        // No transaction can see these tables any more, and none can commit
        // rows into them (`Catalog::validate`), so their rows can go.
        // A failure leaves unreachable rows behind, not a failed commit.
        for def in dropped {
            let (start, end) = table_bounds(def.id.0);
            if let Err(e) = self.storage.purge_range(&start, &end) {
                tracing::warn!(table = %def.name, error = %e, "could not purge a dropped table");
            }
        }
        Ok(commit_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::int_table;
    use crate::encoding::keys::row_key;
    use crate::error::Error;

    /// A node in `dir` with a committed table `t` (rows can only be
    /// committed into tables that exist).
    fn open(dir: &std::path::Path) -> TxnCoordinator {
        let storage = Arc::new(Storage::open(dir).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 4).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        let c = TxnCoordinator::new(storage, shards, catalog).unwrap();
        if c.catalog().table("t").is_none() {
            let mut txn = c.begin();
            txn.create_table(c.catalog(), int_table("t"), false)
                .unwrap();
            c.commit(txn).unwrap();
        }
        c
    }

    fn t(c: &TxnCoordinator) -> u32 {
        c.catalog().table("t").unwrap().id.0
    }

    fn coordinator() -> (tempfile::TempDir, TxnCoordinator) {
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
}
