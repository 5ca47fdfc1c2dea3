//! Multi-version reads: which version of a key a snapshot sees.
//!
//! A reader at snapshot `s` sees, for each user key, the newest version with
//! `commit_ts <= s`; if that version is a tombstone the row does not exist.
//! Versions are never overwritten, so readers need no locks: a commit only
//! adds versions newer than every snapshot already handed out.

use crate::encoding::keys::{mvcc_key, split_mvcc_key, versions_end};
use crate::encoding::row::is_tombstone;
use crate::error::Result;

use super::Storage;

/// Writes collected for one atomic [`Storage::write`].
#[derive(Default)]
pub struct StorageBatch {
    /// Raw `data` records: a value, or `None` to delete the record.
    pub(super) data: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(super) meta: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(super) raft: Vec<RaftWrite>,
    /// `data` key ranges `[start, end)` deleted, before the records above.
    pub(super) data_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// `meta` key ranges deleted, before the `meta` records above.
    pub(super) meta_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Written without syncing the WAL (see [`StorageBatch::unsynced`]).
    pub(super) unsynced: bool,
}

/// A column family a state machine keeps records in (see
/// `raft::StateMachine`); the `raft` family is Raft's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Data,
    Meta,
}

/// A visitor of raw records (a snapshot's content): their family, key
/// and value.
pub type EachRecord<'a> = dyn FnMut(Family, &[u8], &[u8]) -> Result<()> + 'a;

/// A write to the `raft` column family, in batch order.
pub(super) enum RaftWrite {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Deletes the keys in `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

impl StorageBatch {
    /// Adds the version of `user_key` committed at `ts`; `None` deletes the row.
    pub fn put_version(&mut self, user_key: &[u8], ts: u64, value: Option<&[u8]>) {
        self.data.push((
            mvcc_key(user_key, ts),
            Some(value.unwrap_or_default().to_vec()),
        ));
    }

    pub fn put_meta(&mut self, key: &[u8], value: &[u8]) {
        self.meta.push((key.to_vec(), Some(value.to_vec())));
    }

    pub fn delete_meta(&mut self, key: &[u8]) {
        self.meta.push((key.to_vec(), None));
    }

    /// A raw record of `family` (as a scan gives it, e.g. from a replica's
    /// snapshot); `None` deletes it.
    pub fn put_record(&mut self, family: Family, key: &[u8], value: Option<&[u8]>) {
        let record = (key.to_vec(), value.map(<[u8]>::to_vec));
        match family {
            Family::Data => self.data.push(record),
            Family::Meta => self.meta.push(record),
        }
    }

    /// Marks the batch as not needing its own fsync: what it writes can be
    /// written again from a record that is durable already (a Raft entry
    /// applied: the synced log append was the commit point, and replaying
    /// the log redoes a lost apply). The WAL keeps writes in order, so the
    /// next synced write makes this one durable too, and a process crash
    /// without power loss loses nothing either way.
    pub fn unsynced(&mut self) {
        self.unsynced = true;
    }

    pub fn put_raft(&mut self, key: &[u8], value: &[u8]) {
        self.raft.push(RaftWrite::Put(key.to_vec(), value.to_vec()));
    }

    pub fn delete_raft(&mut self, key: &[u8]) {
        self.raft.push(RaftWrite::Delete(key.to_vec()));
    }

    /// Deletes the `data` records in `[start, end)` (one range deletion,
    /// whatever their number), before the batch's other `data` writes.
    pub fn delete_data_range(&mut self, start: &[u8], end: &[u8]) {
        self.data_ranges.push((start.to_vec(), end.to_vec()));
    }

    /// Deletes the `raft` records in `[start, end)`.
    pub fn delete_raft_range(&mut self, start: &[u8], end: &[u8]) {
        self.raft
            .push(RaftWrite::DeleteRange(start.to_vec(), end.to_vec()));
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.meta.is_empty()
            && self.raft.is_empty()
            && self.data_ranges.is_empty()
            && self.meta_ranges.is_empty()
    }

    /// About how many bytes the batch writes.
    pub fn size(&self) -> usize {
        let records = self.data.iter().chain(&self.meta);
        records
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum()
    }
}

/// A visitor's answer: keep scanning or stop.
pub enum VisibleRows {
    Continue,
    Stop,
}

impl Storage {
    /// The commit timestamp of the newest version of `user_key`, if any.
    /// Used to detect write-write conflicts.
    pub fn latest_version_ts(&self, user_key: &[u8]) -> Result<Option<u64>> {
        let mut iter = self.data_iter(&versions_end(user_key))?;
        iter.seek(mvcc_key(user_key, u64::MAX));
        if let Some(key) = iter.key() {
            let (user, ts) = split_mvcc_key(key)?;
            if user == user_key {
                return Ok(Some(ts));
            }
        }
        iter.status()?;
        Ok(None)
    }

    /// The row stored under `user_key` as seen at `snapshot_ts`.
    pub fn get_visible(&self, user_key: &[u8], snapshot_ts: u64) -> Result<Option<Vec<u8>>> {
        let mut found = None;
        self.scan_visible(
            user_key,
            &versions_end(user_key),
            snapshot_ts,
            |user, value| {
                if user == user_key {
                    found = Some(value.to_vec());
                }
                Ok(VisibleRows::Stop)
            },
        )?;
        Ok(found)
    }

    /// Calls `visit(user_key, row)` for every live row in user-key range
    /// `[start, end)` as seen at `snapshot_ts`, in key order.
    pub fn scan_visible(
        &self,
        start: &[u8],
        end: &[u8],
        snapshot_ts: u64,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<VisibleRows>,
    ) -> Result<()> {
        self.check_snapshot(snapshot_ts)?;
        let mut iter = self.data_iter(end)?;
        iter.seek(start);
        // The user key whose visible version was already handled; older
        // versions of it are skipped.
        let mut done: Vec<u8> = Vec::new();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let (user, ts) = split_mvcc_key(key)?;
            if user == done.as_slice() {
                iter.next();
                continue;
            }
            if ts > snapshot_ts {
                // Too new for this snapshot: jump to the newest version we may see.
                iter.seek(mvcc_key(user, snapshot_ts));
                continue;
            }
            done.clear();
            done.extend_from_slice(user);
            if !is_tombstone(value) {
                if let VisibleRows::Stop = visit(user, value)? {
                    return Ok(());
                }
            }
            iter.next();
        }
        iter.status()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::row_key;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        (dir, storage)
    }

    fn write(storage: &Storage, key: &[u8], ts: u64, value: Option<&[u8]>) {
        let mut batch = storage.batch();
        batch.put_version(key, ts, value);
        storage.write(batch).unwrap();
    }

    #[test]
    fn snapshot_sees_newest_version_at_or_below_it() {
        let (_dir, storage) = storage();
        let key = row_key(1, b"k");
        write(&storage, &key, 10, Some(b"v10"));
        write(&storage, &key, 20, Some(b"v20"));
        write(&storage, &key, 30, None);
        assert_eq!(storage.get_visible(&key, 5).unwrap(), None);
        assert_eq!(storage.get_visible(&key, 10).unwrap().unwrap(), b"v10");
        assert_eq!(storage.get_visible(&key, 29).unwrap().unwrap(), b"v20");
        assert_eq!(storage.get_visible(&key, 30).unwrap(), None);
        assert_eq!(storage.latest_version_ts(&key).unwrap(), Some(30));
        assert_eq!(storage.latest_version_ts(&row_key(1, b"x")).unwrap(), None);
    }

    #[test]
    fn scan_returns_each_live_row_once() {
        let (_dir, storage) = storage();
        let keys: Vec<_> = (0..20u8).map(|i| row_key(2, &[i])).collect();
        for (i, key) in keys.iter().enumerate() {
            write(&storage, key, 10, Some(b"old"));
            write(&storage, key, 20, Some(b"new"));
            if i % 2 == 0 {
                write(&storage, key, 30, None);
            }
        }
        write(&storage, &row_key(3, b"other table"), 10, Some(b"x"));
        let (start, end) = crate::encoding::keys::table_bounds(2);
        let mut seen = Vec::new();
        storage
            .scan_visible(&start, &end, 25, |user, value| {
                seen.push((user.to_vec(), value.to_vec()));
                Ok(VisibleRows::Continue)
            })
            .unwrap();
        assert_eq!(seen.len(), 20);
        assert!(seen.iter().all(|(_, v)| v == b"new"));
        let mut live = 0;
        storage
            .scan_visible(&start, &end, 30, |_, _| {
                live += 1;
                Ok(VisibleRows::Continue)
            })
            .unwrap();
        assert_eq!(live, 10);
    }
}
