//! One Raft group's log and vote, in the node's shared RocksDB.
//!
//! openraft's contract, and how it is kept here:
//! - the vote is on disk before `save_vote` returns (one synced RocksDB
//!   batch, `Storage::write`); appended entries are readable when `append`
//!   returns and on disk before their `IOFlushed` callback, which the
//!   next sync of the WAL calls (`Storage::write_then_sync`: concurrent
//!   appends of every group share it);
//! - the committed id is not saved (openraft's default): every entry the
//!   state machine applied is recorded applied in the same RocksDB batch
//!   (`super::state_machine`), so a restarted replica already holds what
//!   it applied, and it applies the rest once its leader (itself, for a
//!   lone voter) commits an entry of its term; reads wait for that
//!   (`ShardGroups::linearize`). Saving it cost a RocksDB write per commit
//!   on every replica, for nothing a replica reads;
//! - writes are serialized: openraft issues them one at a time, and each
//!   returns only once written;
//! - the log has no holes: `truncate_after` deletes a suffix and `purge` a
//!   prefix, each in one batch (purge records the last purged id in the same
//!   batch, so `get_log_state` knows where the log starts even when it is
//!   empty).
//!
//! Every method runs its RocksDB work on a blocking thread, but those
//! that write or read a few small records in the memtable: `append` of a
//! few small entries (an unsynced write, see above), and reads of a few
//! entries.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use prost::Message;

use super::codec;
use super::transport::proto;
use super::{GroupId, ShardRaft};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Up to how many bytes of entries an append writes on the Raft task.
const IN_PLACE_APPEND_BYTES: usize = 64 * 1024;

/// Up to how many entries a read of the log makes on the Raft task.
const IN_PLACE_READ_ENTRIES: u64 = 8;

/// Kinds of `raft` records, the byte after the group id. The state
/// machine's (`super::state_machine`) share the group's prefix. (Kinds 7
/// and 8 held prepared transactions in format 1.)
const VOTE: u8 = 0;
// Kind 1 held the committed id, no longer saved (see the module docs).
const PURGED: u8 = 2;
const LOG: u8 = 3;
pub(super) const APPLIED: u8 = 5;
pub(super) const SNAPSHOT: u8 = 6;
pub(super) const INSTALLING: u8 = 9;

pub(super) fn key(group: GroupId, kind: u8, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.extend_from_slice(&group.to_be_bytes());
    key.push(kind);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The first key after every log entry of `group`.
fn log_end(group: GroupId) -> Vec<u8> {
    key(group, LOG + 1, 0)
}

fn decode<T: Message + Default>(bytes: &[u8]) -> Result<T> {
    T::decode(bytes).map_err(|e| Error::Corrupt(format!("raft record: {e}")))
}

fn decode_entry(bytes: &[u8]) -> Result<EntryOf<ShardRaft>> {
    codec::entry_from(decode(bytes)?)
}

/// The log of Raft group `group` on this node. Clones share it (openraft
/// reads through a clone while it writes through the original).
#[derive(Clone)]
pub struct GroupLog {
    storage: Arc<Storage>,
    group: GroupId,
}

impl GroupLog {
    pub fn new(storage: Arc<Storage>, group: GroupId) -> Self {
        Self { storage, group }
    }

    /// Runs `work` on a blocking thread, with an error openraft takes.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Storage, GroupId) -> Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let storage = self.storage.clone();
        let group = self.group;
        tokio::task::spawn_blocking(move || work(&storage, group))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }

    /// Writes one small record of kind `kind`, synced.
    async fn put(&self, kind: u8, value: Vec<u8>) -> io::Result<()> {
        self.blocking(move |storage, group| {
            let mut batch = storage.batch();
            batch.put_raft(&key(group, kind, 0), &value);
            storage.write(batch)
        })
        .await
    }

    /// Reads one small record of kind `kind`.
    async fn get<T: Message + Default + Send + 'static>(&self, kind: u8) -> io::Result<Option<T>> {
        self.blocking(move |storage, group| {
            storage
                .get_raft(&key(group, kind, 0))?
                .map(|raw| decode(&raw))
                .transpose()
        })
        .await
    }
}

impl RaftLogReader<ShardRaft> for GroupLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<EntryOf<ShardRaft>>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        // The few entries just committed, which the state machine reads
        // back to apply them (most reads), are looked up by key on the
        // Raft task: memtable reads cost less than the two thread
        // switches of a blocking thread's trip, which every commit paid.
        if let Some(end) = end.filter(|&end| end.saturating_sub(start) <= IN_PLACE_READ_ENTRIES) {
            let mut entries = Vec::new();
            for index in start..end {
                match self.storage.get_raft(&key(self.group, LOG, index)) {
                    Ok(Some(raw)) => entries.push(decode_entry(&raw).map_err(io::Error::other)?),
                    Ok(None) => {}
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            return Ok(entries);
        }
        self.blocking(move |storage, group| {
            let end = end.map_or_else(|| log_end(group), |end| key(group, LOG, end));
            storage
                .scan_raft(&key(group, LOG, start), &end)?
                .iter()
                .map(|(_, raw)| decode_entry(raw))
                .collect()
        })
        .await
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<ShardRaft>>> {
        self.get::<proto::Vote>(VOTE)
            .await?
            .map(|vote| codec::vote_from(Some(vote)).map_err(io::Error::other))
            .transpose()
    }
}

impl RaftLogStorage<ShardRaft> for GroupLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<ShardRaft>> {
        let last_purged_log_id = self.get(PURGED).await?.map(codec::log_id_from);
        let last = self
            .blocking(|storage, group| {
                storage
                    .last_raft(&key(group, LOG, 0), &log_end(group))?
                    .map(|(_, raw)| decode_entry(&raw))
                    .transpose()
            })
            .await?;
        let last_log_id = last.map(|entry| entry.log_id()).or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<ShardRaft>) -> io::Result<()> {
        self.put(VOTE, codec::vote_to(vote).encode_to_vec()).await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<ShardRaft>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<ShardRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        let mut bytes = 0;
        for entry in entries {
            let record = codec::entry_to(&entry).encode_to_vec();
            bytes += record.len();
            records.push((entry.index(), record));
        }
        // Readable once written; durable, and so acknowledged to openraft,
        // at the next sync of the WAL, which concurrent appends share.
        let synced: crate::storage::Synced = Box::new(move |synced| {
            callback.io_completed(synced.map_err(|e| io::Error::other(e.to_string())))
        });
        let write = move |storage: &Storage, group| {
            let mut batch = storage.batch();
            for (index, record) in &records {
                batch.put_raft(&key(group, LOG, *index), record);
            }
            storage.write_then_sync(batch, synced)
        };
        // A small unsynced write to the memtable costs less on the Raft task
        // itself than the two thread switches of a blocking thread's trip;
        // a large one would hold up the runtime's other tasks.
        match bytes <= IN_PLACE_APPEND_BYTES {
            true => write(&self.storage, self.group).map_err(io::Error::other),
            false => self.blocking(write).await,
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<ShardRaft>>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        self.blocking(move |storage, group| {
            let mut batch = storage.batch();
            batch.delete_raft_range(&key(group, LOG, from), &log_end(group));
            storage.write(batch)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf<ShardRaft>) -> io::Result<()> {
        let record = codec::log_id_to(&log_id).encode_to_vec();
        self.blocking(move |storage, group| {
            let mut batch = storage.batch();
            batch.put_raft(&key(group, PURGED, 0), &record);
            batch.delete_raft_range(&key(group, LOG, 0), &key(group, LOG, log_id.index() + 1));
            storage.write(batch)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{blank_ent, log_id};

    type Vote = VoteOf<ShardRaft>;

    fn open(dir: &std::path::Path) -> Arc<Storage> {
        Arc::new(Storage::open(dir).unwrap())
    }

    async fn indexes(
        log: &mut GroupLog,
        range: impl RangeBounds<u64> + Clone + Debug + Send,
    ) -> Vec<u64> {
        log.try_get_log_entries(range)
            .await
            .unwrap()
            .iter()
            .map(|e| e.index())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_keep_their_own_logs_and_votes_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = open(dir.path());
            let mut one = GroupLog::new(storage.clone(), 1);
            let mut two = GroupLog::new(storage, 2);
            let entries = (1..=5).map(|i| blank_ent::<ShardRaft>(1, 1, i));
            one.append(entries, IOFlushed::noop()).await.unwrap();
            let entries = (1..=3).map(|i| blank_ent::<ShardRaft>(2, 3, i));
            two.append(entries, IOFlushed::noop()).await.unwrap();
            two.save_vote(&Vote::new(2, 3)).await.unwrap();
        }
        // Reopened: everything acknowledged is there, each in its group.
        let storage = open(dir.path());
        let mut one = GroupLog::new(storage.clone(), 1);
        let mut two = GroupLog::new(storage, 2);
        assert_eq!(indexes(&mut one, ..).await, [1, 2, 3, 4, 5]);
        assert_eq!(indexes(&mut one, 2..4).await, [2, 3]);
        assert_eq!(indexes(&mut one, 4..=9).await, [4, 5]);
        assert_eq!(indexes(&mut two, ..).await, [1, 2, 3]);
        assert!(one.read_vote().await.unwrap().is_none());
        assert_eq!(two.read_vote().await.unwrap(), Some(Vote::new(2, 3)));
        let state = two.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id::<ShardRaft>(2, 3, 3)));
        assert_eq!(state.last_purged_log_id, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncate_and_purge_cut_one_groups_log_without_holes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        let mut one = GroupLog::new(storage.clone(), 1);
        let mut two = GroupLog::new(storage, 2);
        for log in [&mut one, &mut two] {
            let entries = (1..=6).map(|i| blank_ent::<ShardRaft>(1, 1, i));
            log.append(entries, IOFlushed::noop()).await.unwrap();
        }
        one.truncate_after(Some(log_id::<ShardRaft>(1, 1, 4)))
            .await
            .unwrap();
        assert_eq!(indexes(&mut one, ..).await, [1, 2, 3, 4]);
        one.purge(log_id::<ShardRaft>(1, 1, 2)).await.unwrap();
        assert_eq!(indexes(&mut one, ..).await, [3, 4]);
        let state = one.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id::<ShardRaft>(1, 1, 2)));
        assert_eq!(state.last_log_id, Some(log_id::<ShardRaft>(1, 1, 4)));
        // Purged to the end, the log starts and ends at the purged id.
        one.purge(log_id::<ShardRaft>(1, 1, 4)).await.unwrap();
        let state = one.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id::<ShardRaft>(1, 1, 4)));
        assert!(indexes(&mut one, ..).await.is_empty());
        // Truncating everything after nothing empties the log.
        two.truncate_after(None).await.unwrap();
        assert!(indexes(&mut two, ..).await.is_empty());
        assert_eq!(two.get_log_state().await.unwrap().last_log_id, None);
    }
}

/// openraft's own conformance suite for a log store and state machine, run
/// against [`GroupLog`] and a `GroupMachine` on a fresh
/// RocksDB per case, with another group's records in the same database.
#[cfg(test)]
mod conformance {
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::type_config::TypeConfigExt;
    use openraft::StorageError;

    use super::*;
    use crate::raft::state_machine::{tests::Notes, GroupMachine};

    struct Fresh;

    impl StoreBuilder<ShardRaft, GroupLog, GroupMachine, tempfile::TempDir> for Fresh {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, GroupLog, GroupMachine), StorageError<ShardRaft>> {
            let dir = tempfile::tempdir().unwrap();
            let storage = Arc::new(Storage::open(dir.path()).unwrap());
            let mut other = GroupLog::new(storage.clone(), 6);
            let entries = (1..=3).map(|i| openraft::testing::blank_ent::<ShardRaft>(9, 9, i));
            other.append(entries, IOFlushed::noop()).await.unwrap();
            other
                .save_vote(&VoteOf::<ShardRaft>::new(9, 9))
                .await
                .unwrap();
            let machine = GroupMachine::new(storage.clone(), 7, Arc::new(Notes(storage.clone())));
            Ok((dir, GroupLog::new(storage, 7), machine))
        }
    }

    #[test]
    fn the_log_store_and_state_machine_pass_openrafts_suite() {
        ShardRaft::run(async {
            Suite::test_all(Fresh).await.unwrap();
        });
    }
}
