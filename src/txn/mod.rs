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
//! Rolling back is dropping the buffer. On several nodes, steps 2–3 become a
//! two-phase commit over the same `WriteBatch` messages.

mod clock;

pub use clock::Clock;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::shard::proto::{Mutation, WriteBatch};
use crate::shard::ShardMap;
use crate::storage::Storage;

/// An open transaction: its snapshot and its buffered writes.
pub struct Transaction {
    start_ts: u64,
    /// `user_key -> Some(row) | None (deleted)`.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
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
        self.writes.is_empty()
    }
}

/// Begins and commits transactions on this node.
pub struct TxnCoordinator {
    storage: Arc<Storage>,
    shards: Arc<ShardMap>,
    clock: Clock,
    /// Newest commit timestamp whose writes are all durable.
    visible_ts: AtomicU64,
    /// Serialises validation and commit (step 2–4 above).
    commit_lock: Mutex<()>,
}

impl TxnCoordinator {
    pub fn new(storage: Arc<Storage>, shards: Arc<ShardMap>) -> Result<Self> {
        let clock = Clock::load(&storage)?;
        let visible_ts = AtomicU64::new(clock.last());
        Ok(Self {
            storage,
            shards,
            clock,
            visible_ts,
            commit_lock: Mutex::new(()),
        })
    }

    pub fn shards(&self) -> &Arc<ShardMap> {
        &self.shards
    }

    pub fn begin(&self) -> Transaction {
        Transaction {
            start_ts: self.visible_ts.load(Ordering::Acquire),
            writes: BTreeMap::new(),
        }
    }

    /// Commits `txn`; blocks on disk, so async callers use `spawn_blocking`.
    /// Returns the commit timestamp (`start_ts` for a read-only transaction).
    pub fn commit(&self, txn: Transaction) -> Result<u64> {
        if txn.is_read_only() {
            return Ok(txn.start_ts);
        }
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
        let _guard = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let replicas = self.shards.replicas();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].validate(batch)?;
        }
        let commit_ts = self.clock.next();
        let mut out = self.storage.batch();
        for batch in batches.values() {
            replicas[batch.shard_id as usize].stage(batch, commit_ts, &mut out);
        }
        self.clock.record(commit_ts, &mut out);
        self.storage.write(out)?;
        self.visible_ts.store(commit_ts, Ordering::Release);
        Ok(commit_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::row_key;
    use crate::error::Error;

    fn coordinator() -> (tempfile::TempDir, TxnCoordinator) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 4).unwrap());
        let coordinator = TxnCoordinator::new(storage, shards).unwrap();
        (dir, coordinator)
    }

    fn read(c: &TxnCoordinator, txn: &Transaction, key: &[u8]) -> Option<Vec<u8>> {
        c.shards().for_key(key).get(key, txn.start_ts()).unwrap()
    }

    #[test]
    fn snapshot_isolation_and_first_committer_wins() {
        let (_dir, c) = coordinator();
        let key = row_key(1, b"a");
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
        let keys: Vec<_> = (0..100u32).map(|i| row_key(1, &i.to_be_bytes())).collect();
        let last_ts;
        {
            let storage = Arc::new(Storage::open(dir.path()).unwrap());
            let shards = Arc::new(ShardMap::load_or_init(&storage, 4).unwrap());
            let c = TxnCoordinator::new(storage, shards).unwrap();
            let mut txn = c.begin();
            for key in &keys {
                txn.put(key.clone(), b"x".to_vec());
            }
            last_ts = c.commit(txn).unwrap();
        }
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 4).unwrap());
        let c = TxnCoordinator::new(storage, shards).unwrap();
        let txn = c.begin();
        assert_eq!(txn.start_ts(), last_ts);
        assert!(keys.iter().all(|k| read(&c, &txn, k).is_some()));
        let mut next = c.begin();
        next.delete(keys[0].clone());
        assert!(c.commit(next).unwrap() > last_ts);
    }
}
