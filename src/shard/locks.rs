//! The writes a reader at a shard group's leader must wait for, because
//! their commit timestamp may be at or below the reader's snapshot while
//! their rows are not written yet:
//! - a one-phase commit or a prepare in progress here: its keys are held
//!   in memory ([`WriteLocks::hold`]) from before its timestamp is taken
//!   until its Raft entry is applied here, or cut from the log here (it
//!   never commits), whether or not its proposer still waits for it
//!   (`raft::groups::ShardGroups::propose_keeping`);
//! - a prepared transaction's intent: its lock records, in the group's
//!   state (`shard::machine`), until its decision is applied.
//!
//! A reader at `read_ts` waits for a lock whose holder read at a snapshot
//! below `read_ts` (the holder's commit timestamp is above its snapshot,
//! so a reader at or below the snapshot cannot see the write whatever its
//! timestamp turns out to be), then reads. This is what lets snapshots be
//! plain timestamps from the oracle: a timestamp taken after a commit was
//! acknowledged is above its commit timestamp, and its rows are written,
//! or locked until they are.
//!
//! Waiting is bounded: a one-phase commit ends with its Raft write, and an
//! intent whose coordinator died is resolved by recovery within
//! `txn::distributed::RECOVER_AFTER`; a reader that waited
//! [`LOCK_WAIT`] fails with 40001.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::KEY_LOCKED;
use crate::error::{Error, Result};

/// How long a reader waits for the locks in its way.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A reader re-checks locks held on disk at least this often (they are
/// released by applying a Raft entry, which tells [`WriteLocks::released`],
/// but a replica that became leader may hold intents it never applied the
/// end of).
const RECHECK: Duration = Duration::from_millis(50);

/// The keys held in memory: key -> (holder's snapshot, holder's
/// transaction id).
type HeldKeys = BTreeMap<Vec<u8>, (u64, Vec<u8>)>;

/// The keys held in memory on this node, and the signal that some lock
/// went. One per node, shared by the Flight service (readers), the
/// one-phase commits and the shard groups' state machines.
pub struct WriteLocks {
    /// User key → the holder's snapshot and transaction id.
    held: Mutex<HeldKeys>,
    /// The transactions holding keys here, with how many holds each: a
    /// transaction that sent writes ahead (`shard::machine`, staged) is
    /// in the way of readers while it prepares too, on its keys not held
    /// here in memory.
    preparing: Mutex<HashMap<Vec<u8>, usize>>,
    released: tokio::sync::watch::Sender<u64>,
}

impl Default for WriteLocks {
    fn default() -> Self {
        Self {
            held: Mutex::new(BTreeMap::new()),
            preparing: Mutex::default(),
            released: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// Keys held by a commit while it takes its timestamp; dropping it
/// releases them.
pub struct Held {
    locks: Arc<WriteLocks>,
    keys: Vec<Vec<u8>>,
    txn_id: Vec<u8>,
}

impl Drop for Held {
    fn drop(&mut self) {
        {
            let mut held = self.locks.held();
            for key in &self.keys {
                held.remove(key);
            }
        }
        {
            let mut preparing = self.locks.preparing();
            if let Some(count) = preparing.get_mut(&self.txn_id) {
                *count -= 1;
                if *count == 0 {
                    preparing.remove(&self.txn_id);
                }
            }
        }
        self.locks.released();
    }
}

/// How many lock records (`shard::machine`) a group's state holds, per
/// slot of their user keys' hash: a key whose slot counts none has no
/// lock record, so a point read or a write's check answers "not locked"
/// without a RocksDB get (which, after a load wrote and deleted every
/// key's lock, finds the deletions in the memtable and searches it: an
/// eighth of a point SELECT's CPU). Fixed size, so bounded whatever the
/// number of locks: when every slot counts some, each key is read as
/// before.
///
/// Exact, or above the truth, never below: the state machine counts a
/// lock before the batch that writes it and uncounts it after the batch
/// that deletes it is written, and recounts from storage when it starts
/// and after a snapshot replaced its records (a follower's state, which
/// nobody reads then). A count left too high (a batch that failed to be
/// written) costs a get, never a missed lock.
pub struct LockCounts {
    slots: Box<[AtomicU32]>,
}

/// Slots per group: 64 KiB each.
const LOCK_SLOTS: usize = 16 * 1024;

impl Default for LockCounts {
    fn default() -> Self {
        Self {
            slots: (0..LOCK_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl LockCounts {
    /// The slot of user key `key`.
    pub fn slot(&self, key: &[u8]) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() as usize) % self.slots.len()
    }

    /// Whether `key` may hold a lock record.
    pub fn may_hold(&self, key: &[u8]) -> bool {
        self.slots[self.slot(key)].load(Ordering::SeqCst) != 0
    }

    /// A lock record of `key` is about to be written.
    pub fn add(&self, key: &[u8]) {
        self.slots[self.slot(key)].fetch_add(1, Ordering::SeqCst);
    }

    /// Lock records of the keys in `slots` were deleted.
    pub fn remove(&self, slots: &[usize]) {
        for &slot in slots {
            let before = self.slots[slot].fetch_sub(1, Ordering::SeqCst);
            debug_assert!(before > 0, "a lock record uncounted twice");
        }
    }

    /// Counts afresh the lock records `each_key` calls its argument with
    /// (every one the group holds).
    pub fn recount(
        &self,
        each_key: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<()>,
    ) -> Result<()> {
        let mut counts = vec![0u32; self.slots.len()];
        each_key(&mut |key| counts[self.slot(key)] += 1)?;
        for (slot, count) in self.slots.iter().zip(counts) {
            slot.store(count, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Whether the locks a reader finds on disk stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InTheWay {
    No,
    Yes,
    /// A transaction committed before the read is writing its rows: wait
    /// for it however long that takes (it will end).
    Resolving,
}

/// Whether a lock held by a transaction that read at `holder_ts` is in
/// the way of a reader at `read_ts`.
pub fn in_the_way(holder_ts: u64, read_ts: u64) -> bool {
    holder_ts < read_ts
}

impl WriteLocks {
    fn held(&self) -> std::sync::MutexGuard<'_, HeldKeys> {
        // Changed in single inserts and removes: a panic leaves it whole.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn preparing(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, usize>> {
        self.preparing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `keys` for transaction `txn_id`, which read at `start_ts`. A
    /// key another transaction holds is a conflict (40001): the two
    /// writers' snapshots both precede the other's commit, so one of them
    /// must lose. A key the same transaction holds is an earlier attempt
    /// of its commit still in flight: `Unavailable`, try again later.
    pub fn hold(
        self: &Arc<Self>,
        keys: Vec<Vec<u8>>,
        txn_id: &[u8],
        start_ts: u64,
    ) -> Result<Held> {
        let mut held = self.held();
        for key in &keys {
            match held.get(key) {
                None => {}
                Some((_, holder)) if holder.as_slice() == txn_id => {
                    return Err(Error::Unavailable(
                        "an earlier attempt of this commit is still in flight".into(),
                    ))
                }
                Some(_) => return Err(Error::Retry(KEY_LOCKED.into())),
            }
        }
        for key in &keys {
            held.insert(key.clone(), (start_ts, txn_id.to_vec()));
        }
        *self.preparing().entry(txn_id.to_vec()).or_default() += 1;
        Ok(Held {
            locks: self.clone(),
            keys,
            txn_id: txn_id.to_vec(),
        })
    }

    /// [`Self::hold`], waiting up to `wait` for keys another commit holds
    /// to be released (the conflict is then settled where it is certain:
    /// when the entries apply, first committer wins). Still held after
    /// `wait`: `Unavailable`, since an earlier attempt of this same commit
    /// may still be pending in the group's log behind the holder.
    pub async fn hold_when_free(
        self: &Arc<Self>,
        keys: Vec<Vec<u8>>,
        txn_id: &[u8],
        start_ts: u64,
        wait: Duration,
    ) -> Result<Held> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut released = self.released.subscribe();
        loop {
            released.mark_unchanged();
            match self.hold(keys.clone(), txn_id, start_ts) {
                Err(Error::Retry(_)) if tokio::time::Instant::now() < deadline => {
                    let _ = tokio::time::timeout_at(deadline, released.changed()).await;
                }
                Err(Error::Retry(message)) => {
                    return Err(Error::Unavailable(format!(
                        "{message}: another commit held a key for {} ms",
                        wait.as_millis()
                    )))
                }
                held => return held,
            }
        }
    }

    /// Some lock went: waiting readers look again.
    pub fn released(&self) {
        self.released.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether a key in `[start, end)` is held in memory in the way of a
    /// reader at `read_ts`.
    fn held_in(&self, start: &[u8], end: &[u8], read_ts: u64) -> bool {
        self.held()
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .any(|(_, (holder_ts, _))| in_the_way(*holder_ts, read_ts))
    }

    /// Waits until no lock on a key of `ranges` (user-key ranges `[start,
    /// end)`) is in the way of a reader at `read_ts`: neither one held
    /// here in memory nor a lock record `on_disk` finds in the way in a
    /// range (`shard::machine::lock_in_the_way`, told which transactions
    /// hold keys here now; it blocks on disk, so it runs on a blocking
    /// thread unless `in_place`).
    pub async fn wait(
        &self,
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
        read_ts: u64,
        on_disk: impl Fn((&[u8], &[u8]), &dyn Fn(&[u8]) -> bool) -> Result<InTheWay>
            + Send
            + Sync
            + Clone
            + 'static,
        in_place: bool,
    ) -> Result<()> {
        let mut deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut released = self.released.subscribe();
        let ranges = Arc::new(ranges);
        loop {
            released.mark_unchanged();
            let in_memory = ranges
                .iter()
                .any(|(start, end)| self.held_in(start, end, read_ts));
            let blocked = match in_memory {
                true => InTheWay::Yes,
                false => {
                    let (ranges, on_disk) = (ranges.clone(), on_disk.clone());
                    let preparing: HashSet<Vec<u8>> = self.preparing().keys().cloned().collect();
                    let preparing = move |txn_id: &[u8]| preparing.contains(txn_id);
                    let locked = move || -> Result<InTheWay> {
                        for (start, end) in ranges.iter() {
                            match on_disk((start, end), &preparing)? {
                                InTheWay::No => {}
                                blocked => return Ok(blocked),
                            }
                        }
                        Ok(InTheWay::No)
                    };
                    match in_place {
                        true => locked()?,
                        false => tokio::task::spawn_blocking(locked)
                            .await
                            .map_err(|e| Error::Internal(format!("a lock check failed: {e}")))??,
                    }
                }
            };
            match blocked {
                InTheWay::No => return Ok(()),
                // A commit writing its rows ends: its time does not count.
                InTheWay::Resolving => deadline = tokio::time::Instant::now() + LOCK_WAIT,
                InTheWay::Yes => {}
            }
            let wake = tokio::time::Instant::now() + RECHECK;
            if wake >= deadline {
                return Err(Error::Retry(format!(
                    "{KEY_LOCKED}: waited {} s for it",
                    LOCK_WAIT.as_secs()
                )));
            }
            let _ = tokio::time::timeout_at(wake, released.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: (&[u8], &[u8]), _: &dyn Fn(&[u8]) -> bool) -> Result<InTheWay> {
        Ok(InTheWay::No)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_waits_for_a_held_key_only_if_it_could_see_the_write() {
        let locks = Arc::new(WriteLocks::default());
        let held = locks.hold(vec![b"k2".to_vec()], b"t1", 10).unwrap();
        assert!(matches!(
            locks.hold(vec![b"k1".to_vec(), b"k2".to_vec()], b"t2", 11),
            Err(Error::Retry(_))
        ));
        assert!(matches!(
            locks.hold(vec![b"k2".to_vec()], b"t1", 10),
            Err(Error::Unavailable(_))
        ));
        let other = locks.hold(vec![b"k1".to_vec()], b"t2", 11).unwrap();
        drop(other);
        let range = || vec![(b"k".to_vec(), b"l".to_vec())];
        // At or below the holder's snapshot: no wait.
        locks.wait(range(), 10, none, false).await.unwrap();
        // Elsewhere: no wait.
        locks
            .wait(vec![(b"a".to_vec(), b"b".to_vec())], 99, none, true)
            .await
            .unwrap();
        // Above it: waits until the commit ends.
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.wait(range(), 11, none, true).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.unwrap().unwrap();
        // A lock record on disk in the way is waited for too.
        let on_disk = |_: (&[u8], &[u8]), _: &dyn Fn(&[u8]) -> bool| Ok(InTheWay::Yes);
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.wait(range(), 6, on_disk, false).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished());
        waiting.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_waits_for_a_key_another_one_holds() {
        let locks = Arc::new(WriteLocks::default());
        let first = locks.hold(vec![b"k".to_vec()], b"t1", 10).unwrap();
        let short = locks
            .hold_when_free(vec![b"k".to_vec()], b"t2", 11, Duration::from_millis(50))
            .await;
        assert!(matches!(short, Err(Error::Unavailable(_))), "still held");
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                locks
                    .hold_when_free(vec![b"k".to_vec()], b"t2", 11, Duration::from_secs(5))
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap().unwrap();
    }
}
