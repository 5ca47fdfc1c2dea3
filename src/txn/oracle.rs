//! The commit decisions of transactions with a schema change
//! (`proto/txn.proto`): part of the meta group's state (see `meta`).
//!
//! Such a commit is *decided* here: once every participant prepared, the
//! meta group's leader takes a commit timestamp from its clock, and the
//! decision is stored under `txn/decision/<txn id>` with the catalog
//! change (the commit point). It is *in flight* until the coordinator
//! reports every participant applied it (readers wait at the groups for
//! the prepared intents meanwhile, `shard::locks`).
//!
//! Decisions in flight survive a restart. Recovery asks for a decision with
//! [`Decisions::resolve`], which records an abort if there is none, so a
//! coordinator that comes back late can no longer commit.

use std::collections::BTreeMap;

use prost::Message;

use super::Clock;
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageBatch};

/// The decision record (`proto/txn.proto`).
pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/shardforge.txn.rs"));
}

use proto::Decision;

pub(super) const DECISION_PREFIX: &[u8] = b"txn/decision/";

pub struct Decisions {
    /// Decided, not yet applied everywhere: commit timestamp -> txn id.
    in_flight: BTreeMap<u64, Vec<u8>>,
}

impl Decisions {
    /// The decisions in flight persisted in `storage`.
    pub fn load(storage: &Storage) -> Result<Self> {
        let mut in_flight = BTreeMap::new();
        for (key, value) in storage.scan_meta(DECISION_PREFIX)? {
            let decision = Decision::decode(value.as_slice())
                .map_err(|e| Error::Corrupt(format!("commit decision: {e}")))?;
            if decision.commit_ts > 0 {
                in_flight.insert(decision.commit_ts, key[DECISION_PREFIX.len()..].to_vec());
            }
        }
        Ok(Self { in_flight })
    }

    /// The commit timestamp of `txn_id` if it is decided already (asking
    /// twice gets the same answer); an error if recovery aborted it.
    pub fn earlier(storage: &Storage, txn_id: &[u8]) -> Result<Option<u64>> {
        match read(storage, txn_id)? {
            None => Ok(None),
            Some(Decision { commit_ts: 0, .. }) => Err(Error::Retry(
                "the transaction was aborted while its commit was pending".into(),
            )),
            Some(decision) => Ok(Some(decision.commit_ts)),
        }
    }

    /// The commit point of `txn_id`, which has no decision yet
    /// ([`Self::earlier`]): `commit_ts` (the meta group leader's choice),
    /// which `clock` observes, stored with the participants in `batch`
    /// (which holds what commits with it) and written.
    pub fn decide(
        &mut self,
        storage: &Storage,
        clock: &Clock,
        txn_id: &[u8],
        participants: Vec<u32>,
        commit_ts: u64,
        mut batch: StorageBatch,
    ) -> Result<()> {
        let decision = Decision {
            commit_ts,
            participants,
        };
        batch.put_meta(&key(txn_id), &decision.encode_to_vec());
        clock.observe(commit_ts, &mut batch);
        storage.write(batch)?;
        self.in_flight.insert(commit_ts, txn_id.to_vec());
        Ok(())
    }

    /// Decisions in flight for `at_least` (by their commit timestamp, which
    /// is wall-clock microseconds), with their transaction ids.
    pub fn waiting(
        &self,
        storage: &Storage,
        at_least: std::time::Duration,
    ) -> Result<Vec<(Vec<u8>, Decision)>> {
        let now = super::clock::since_epoch().as_micros() as u64;
        let mut waiting = Vec::new();
        for (&ts, txn_id) in &self.in_flight {
            if now.saturating_sub(ts) < at_least.as_micros() as u64 {
                continue;
            }
            if let Some(decision) = read(storage, txn_id)? {
                waiting.push((txn_id.clone(), decision));
            }
        }
        Ok(waiting)
    }

    /// Every participant applied `txn_id`: forget its decision, in
    /// `batch`, written synced.
    pub fn done(
        &mut self,
        storage: &Storage,
        txn_id: &[u8],
        mut batch: StorageBatch,
    ) -> Result<()> {
        let Some(ts) = self
            .in_flight
            .iter()
            .find_map(|(ts, id)| (id.as_slice() == txn_id).then_some(*ts))
        else {
            return storage.write(batch);
        };
        batch.delete_meta(&key(txn_id));
        storage.write(batch)?;
        self.in_flight.remove(&ts);
        Ok(())
    }

    /// The commit timestamp of `txn_id` if it was decided; otherwise it is
    /// aborted now, for good (in `batch`, written synced).
    pub fn resolve(
        &mut self,
        storage: &Storage,
        txn_id: &[u8],
        mut batch: StorageBatch,
    ) -> Result<Option<u64>> {
        if let Some(decision) = read(storage, txn_id)? {
            storage.write(batch)?;
            return Ok((decision.commit_ts > 0).then_some(decision.commit_ts));
        }
        batch.put_meta(&key(txn_id), &Decision::default().encode_to_vec());
        storage.write(batch)?;
        Ok(None)
    }
}

fn read(storage: &Storage, txn_id: &[u8]) -> Result<Option<Decision>> {
    storage
        .get_meta(&key(txn_id))?
        .map(|raw| {
            Decision::decode(raw.as_slice())
                .map_err(|e| Error::Corrupt(format!("commit decision: {e}")))
        })
        .transpose()
}

fn key(txn_id: &[u8]) -> Vec<u8> {
    let mut key = DECISION_PREFIX.to_vec();
    key.extend_from_slice(txn_id);
    key
}
