//! Transactions prepared on this node by a cross-node commit, waiting for
//! their coordinator's decision.
//!
//! A prepared transaction's writes are intents: durable under
//! `txn/prepared/<txn id>` in the storage `meta` family (so a restart keeps
//! them, and recovery can ask for the decision), and holding a lock on each
//! key in memory, so that no other transaction commits those keys before
//! the decision. Readers do not look at intents: a reader's snapshot is
//! below the commit timestamp of any transaction not yet applied
//! everywhere (see `docs/architecture.md`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prost::Message;

use crate::error::{Error, Result};
use crate::shard::proto::{PrepareRequest, WriteBatch};
use crate::shard::KEY_LOCKED;
use crate::storage::{Storage, StorageBatch};

const PREPARED_PREFIX: &[u8] = b"txn/prepared/";

/// The prepared transactions and the keys they lock. Guarded by the
/// coordinator's commit lock, which local commits take too.
#[derive(Default)]
pub struct Prepared {
    /// Each transaction's writes, and since when it waits here (since the
    /// start, for one found on disk).
    by_txn: HashMap<Vec<u8>, (Vec<WriteBatch>, Instant)>,
    locks: HashMap<Vec<u8>, Vec<u8>>,
}

impl Prepared {
    /// The prepared transactions persisted in `storage`.
    pub fn load(storage: &Storage) -> Result<Self> {
        let mut prepared = Self::default();
        for (_, value) in storage.scan_meta(PREPARED_PREFIX)? {
            let request = PrepareRequest::decode(value.as_slice())
                .map_err(|e| Error::Corrupt(format!("prepared transaction: {e}")))?;
            prepared.insert(request.txn_id, request.batches);
        }
        Ok(prepared)
    }

    fn insert(&mut self, txn_id: Vec<u8>, batches: Vec<WriteBatch>) {
        for mutation in batches.iter().flat_map(|b| &b.mutations) {
            self.locks.insert(mutation.key.clone(), txn_id.clone());
        }
        self.by_txn.insert(txn_id, (batches, Instant::now()));
    }

    pub fn contains(&self, txn_id: &[u8]) -> bool {
        self.by_txn.contains_key(txn_id)
    }

    /// Ids of the transactions waiting for a decision for `at_least`.
    pub fn waiting(&self, at_least: Duration) -> Vec<Vec<u8>> {
        self.by_txn
            .iter()
            .filter(|(_, (_, since))| since.elapsed() >= at_least)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Fails with a serialization failure if a key of `batch` is locked by
    /// a prepared transaction other than `txn_id`.
    pub fn check_unlocked(&self, batch: &WriteBatch, txn_id: &[u8]) -> Result<()> {
        for mutation in &batch.mutations {
            if self
                .locks
                .get(&mutation.key)
                .is_some_and(|holder| holder.as_slice() != txn_id)
            {
                return Err(Error::Retry(KEY_LOCKED.into()));
            }
        }
        Ok(())
    }

    /// Persists a prepared transaction (synced) and takes its locks.
    pub fn add(&mut self, storage: &Storage, request: PrepareRequest) -> Result<()> {
        let mut batch = storage.batch();
        batch.put_meta(&record_key(&request.txn_id), &request.encode_to_vec());
        storage.write(batch)?;
        self.insert(request.txn_id, request.batches);
        Ok(())
    }

    /// Removes a prepared transaction, adding the deletion of its record to
    /// `out`; the caller writes `out` and then [`Self::release`]s it.
    pub fn take(&mut self, txn_id: &[u8], out: &mut StorageBatch) -> Option<Vec<WriteBatch>> {
        let batches = self.by_txn.get(txn_id)?.0.clone();
        out.delete_meta(&record_key(txn_id));
        Some(batches)
    }

    /// Forgets a resolved transaction and frees its keys.
    pub fn release(&mut self, txn_id: &[u8]) {
        if let Some((batches, _)) = self.by_txn.remove(txn_id) {
            for mutation in batches.iter().flat_map(|b| &b.mutations) {
                if self.locks.get(&mutation.key).map(Vec::as_slice) == Some(txn_id) {
                    self.locks.remove(&mutation.key);
                }
            }
        }
    }
}

fn record_key(txn_id: &[u8]) -> Vec<u8> {
    let mut key = PREPARED_PREFIX.to_vec();
    key.extend_from_slice(txn_id);
    key
}
