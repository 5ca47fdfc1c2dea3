//! The timestamp oracle's clock, on the meta group's leader (see `tso`).
//!
//! A timestamp is microseconds since the Unix epoch, bumped past the last one
//! issued so timestamps strictly increase even if the wall clock steps back.
//! A schema change's commit timestamp is recorded with its decision (a meta
//! group record), and a new leader also moves past the recorded timestamp
//! limit, so no timestamp is issued twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::storage::{Storage, StorageBatch};

pub(super) const LAST_TS_KEY: &[u8] = b"txn/last_commit_ts";

/// The wall clock as time since the Unix epoch (zero for a clock set
/// before it).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

pub struct Clock {
    last: AtomicU64,
}

impl Clock {
    pub fn load(storage: &Storage) -> Result<Self> {
        Ok(Self {
            last: AtomicU64::new(stored(storage)?),
        })
    }

    /// Takes note of the timestamp stored in `storage` (a snapshot of the
    /// meta group replaced it).
    pub fn reload(&self, storage: &Storage) -> Result<()> {
        self.last.fetch_max(stored(storage)?, Ordering::AcqRel);
        Ok(())
    }

    /// `count` (at least 1) consecutive timestamps above every one issued
    /// before: the first.
    pub fn reserve(&self, count: u64) -> u64 {
        let now = since_epoch().as_micros() as u64;
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let first = now.max(last + 1);
            let next_last = first + count.max(1) - 1;
            match self
                .last
                .compare_exchange(last, next_last, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return first,
                Err(actual) => last = actual,
            }
        }
    }

    /// Issues nothing at or below `ts` from now on (in memory: the caller
    /// knows `ts` is recorded elsewhere).
    pub fn skip_to(&self, ts: u64) {
        self.last.fetch_max(ts, Ordering::AcqRel);
    }

    /// Takes note of `ts` (a decided commit's timestamp), so that later
    /// timestamps from here are above it, and records the newest timestamp
    /// in `batch`.
    pub fn observe(&self, ts: u64, batch: &mut StorageBatch) {
        let newest = self.last.fetch_max(ts, Ordering::AcqRel).max(ts);
        batch.put_meta(LAST_TS_KEY, &newest.to_be_bytes());
    }
}

/// The newest timestamp recorded in `storage`.
fn stored(storage: &Storage) -> Result<u64> {
    Ok(match storage.get_meta(LAST_TS_KEY)? {
        Some(raw) => u64::from_be_bytes(
            raw.as_slice()
                .try_into()
                .map_err(|_| Error::Corrupt("last commit timestamp".into()))?,
        ),
        None => 0,
    })
}
