//! Garbage collection of MVCC versions.
//!
//! Below the cluster's GC safe point (the oldest snapshot any transaction
//! still reads at, minus a retention: see `cluster::gc`) no reader needs a
//! version that a newer version at or below the safe point hides. A pass
//! ([`Storage::collect_garbage`]) walks the `data` family once and, for
//! each user key, keeps every version above the safe point and the newest
//! one at or below it, deleting the older ones (one range deletion per
//! key); when that newest one is a deletion it goes too. A key whose many
//! versions went is compacted at once, so scans stop paying for them.
//!
//! Each replica collects on its own, outside Raft: what it deletes no
//! reader at or above the safe point can see, so replicas that collected
//! at different times answer every such read alike. The threshold a pass
//! used is recorded first (in `meta`, `storage/gc_threshold`); a read at a
//! snapshot below it fails with "snapshot too old" instead of missing rows
//! (a transaction that outlived the retention on a node the safe point did
//! not hear from).
//!
//! The deletions are not synced: a pass lost in a crash is simply done
//! again.

use std::sync::atomic::Ordering;

use rocksdb::WriteOptions;

use super::{Storage, CF_DATA, CF_META};
use crate::encoding::keys::{mvcc_key, split_mvcc_key, versions_end};
use crate::encoding::row::is_tombstone;
use crate::error::{Error, InputError, Result};

const THRESHOLD_KEY: &[u8] = b"storage/gc_threshold";

/// A key with at least this many versions deleted is compacted at once.
const COMPACT_AFTER: u64 = 1000;

/// Deletions are written in batches of this many keys.
const WRITE_EVERY: usize = 1000;

/// What a garbage collection pass found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Versions stored before the pass.
    pub versions: u64,
    /// Versions it deleted.
    pub deleted: u64,
}

impl Storage {
    pub(super) fn load_gc_threshold(&self) -> Result<()> {
        if let Some(raw) = self.get_meta(THRESHOLD_KEY)? {
            let raw = <[u8; 8]>::try_from(raw.as_slice())
                .map_err(|_| Error::Corrupt("the GC threshold".into()))?;
            self.gc_threshold
                .fetch_max(u64::from_be_bytes(raw), Ordering::AcqRel);
        }
        Ok(())
    }

    /// Versions below this may have been collected.
    pub fn gc_threshold(&self) -> u64 {
        self.gc_threshold.load(Ordering::Acquire)
    }

    /// Fails for a read at `snapshot_ts` below the GC threshold.
    pub(super) fn check_snapshot(&self, snapshot_ts: u64) -> Result<()> {
        let threshold = self.gc_threshold();
        if snapshot_ts < threshold {
            return Err(Error::input(
                InputError::SnapshotTooOld,
                format!(
                    "snapshot too old: the transaction reads at {snapshot_ts}, and row versions \
                     below {threshold} were garbage-collected; retry the transaction"
                ),
            ));
        }
        Ok(())
    }

    /// One pass at `safe_point` (see the module docs): how many versions
    /// there were, and how many it deleted. Blocks on disk.
    pub fn collect_garbage(&self, safe_point: u64) -> Result<Collected> {
        if safe_point > self.gc_threshold() {
            let mut record = rocksdb::WriteBatch::default();
            record.put_cf(self.cf(CF_META)?, THRESHOLD_KEY, safe_point.to_be_bytes());
            self.db.write(record)?;
            self.gc_threshold.fetch_max(safe_point, Ordering::AcqRel);
        }
        let safe_point = self.gc_threshold();
        let data = self.cf(CF_DATA)?;
        let mut collected = Collected::default();
        let mut deletions = rocksdb::WriteBatch::default();
        let mut compact = Vec::new();
        let mut iter = self.db.raw_iterator_cf(data);
        iter.seek_to_first();
        while let Some(key) = iter.key() {
            let (user, mut ts) = split_mvcc_key(key)?;
            let user = user.to_vec();
            // The versions above the safe point stay.
            let mut newest = Some(ts);
            while ts > safe_point {
                collected.versions += 1;
                iter.next();
                newest = version_of(&iter, &user)?;
                match newest {
                    Some(next) => ts = next,
                    None => break,
                }
            }
            if newest.is_none() {
                continue;
            }
            // Here is the newest version at or below the safe point; the
            // older ones (all hidden from every reader) follow it.
            let tombstone = iter.value().is_some_and(is_tombstone);
            let newest_key = mvcc_key(&user, ts);
            let mut older = 0;
            iter.next();
            while version_of(&iter, &user)?.is_some() {
                older += 1;
                iter.next();
            }
            collected.versions += older + 1;
            // Within a table, user keys are prefix-free (every key has the
            // same columns, each encoded prefix-free: `encoding::keys`), so
            // this range holds versions of `user` only.
            let (from, deleted) = match tombstone {
                true => (newest_key, older + 1),
                // (A version at 0 has none older: `older` is 0.)
                false => (mvcc_key(&user, ts.saturating_sub(1)), older),
            };
            if deleted == 0 {
                continue;
            }
            let end = versions_end(&user);
            deletions.delete_range_cf(data, &from, &end);
            collected.deleted += deleted;
            if deleted >= COMPACT_AFTER {
                compact.push((from, end));
            }
            if deletions.len() >= WRITE_EVERY {
                self.write_unsynced(std::mem::take(&mut deletions))?;
            }
        }
        iter.status()?;
        drop(iter);
        self.write_unsynced(deletions)?;
        for (start, end) in compact {
            self.db.compact_range_cf(data, Some(&start), Some(&end));
        }
        Ok(collected)
    }

    fn write_unsynced(&self, batch: rocksdb::WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut options = WriteOptions::default();
        options.set_sync(false);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }
}

/// The timestamp of the version `iter` is at, if it is one of `user`'s.
fn version_of(iter: &rocksdb::DBRawIterator<'_>, user: &[u8]) -> Result<Option<u64>> {
    let Some(key) = iter.key() else {
        return Ok(None);
    };
    let (other, ts) = split_mvcc_key(key)?;
    Ok((other == user).then_some(ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::row_key;

    fn write(storage: &Storage, key: &[u8], ts: u64, value: Option<&[u8]>) {
        let mut batch = storage.batch();
        batch.put_version(key, ts, value);
        storage.write(batch).unwrap();
    }

    #[test]
    fn a_pass_keeps_what_readers_at_or_above_the_safe_point_see() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let (hot, gone, fresh, alone) = (
            row_key(1, b"hot"),
            row_key(1, b"gone"),
            row_key(1, b"fresh"),
            row_key(1, b"alone"),
        );
        for ts in 1..=2000 {
            write(&storage, &hot, ts, Some(format!("v{ts}").as_bytes()));
        }
        write(&storage, &gone, 10, Some(b"x"));
        write(&storage, &gone, 20, None);
        write(&storage, &fresh, 10, Some(b"old"));
        write(&storage, &fresh, 3000, Some(b"new"));
        write(&storage, &alone, 5, Some(b"one"));
        let read = |key: &[u8], ts| storage.get_visible(key, ts).unwrap();
        let before: Vec<_> = [&hot, &gone, &fresh, &alone]
            .iter()
            .flat_map(|k| [1500, 2500, 3500].map(|ts| read(k, ts)))
            .collect();

        let collected = storage.collect_garbage(1500).unwrap();
        assert_eq!(collected.versions, 2000 + 2 + 2 + 1);
        // hot: 1..=1499 (1500 stays); gone: both (deleted at 20); fresh:
        // none; alone: none.
        assert_eq!(collected.deleted, 1499 + 2);
        let after: Vec<_> = [&hot, &gone, &fresh, &alone]
            .iter()
            .flat_map(|k| [1500, 2500, 3500].map(|ts| read(k, ts)))
            .collect();
        assert_eq!(after, before, "every read at or above the safe point");
        // Below it: a clear error, not a missing row.
        let Err(Error::Input(InputError::SnapshotTooOld, _)) = storage.get_visible(&hot, 1499)
        else {
            panic!("a read below the threshold");
        };
        let again = storage.collect_garbage(1500).unwrap();
        assert_eq!((again.versions, again.deleted), (501 + 2 + 1, 0));
        // The threshold survives a restart.
        drop(storage);
        let storage = Storage::open(dir.path()).unwrap();
        assert_eq!(storage.gc_threshold(), 1500);
    }
}
