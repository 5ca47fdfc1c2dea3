//! A shard group's state machine: the rows of the group's hash range in
//! the node's `data` column family, and the intents of the transactions
//! prepared in the group, applied from the group's Raft log
//! (`raft::StateMachine`). Commands and answers are the `ShardCommand` and
//! `ShardApplied` messages of `proto/shard.proto`.
//!
//! Applying a command is deterministic, so every replica ends in the same
//! state:
//! - `Prepare` checks the writes as a local commit would (a key committed
//!   after the writer's snapshot, or held by another transaction's intent,
//!   is a conflict) and stores them as an intent record plus one lock
//!   record per key;
//! - `Commit` turns an intent into row versions at the decided timestamp
//!   (as a local commit does, [`ShardReplica::stage`]), `Abort` drops it;
//!   both are no-ops for a transaction with no intent here, so a decision
//!   delivered twice is harmless.
//!
//! - `OnePhase` is a transaction that wrote this group only: checked as
//!   `Prepare` checks, and written at its commit timestamp in the same
//!   step.
//! - `Probe` tells where a transaction stands here, for recovery
//!   (`txn::async_commit`), and records one that never prepared here as
//!   aborted, so it never will.
//!
//! How a transaction ended is kept a while under its id (a `Settled`
//! record, `o` + transaction id): a one-phase commit's (so a retry answers
//! the first attempt), a prepared transaction's commit (which recovery
//! reads), and every abort (so a prepare arriving late is refused). They go a minute behind the GC safe
//! point, by a Raft command the group's leader
//! proposes ([`forget_command`]), so every replica forgets them at the same
//! point of its log.
//!
//! A snapshot reads the group's rows range by range (one per table, see
//! [`ShardMachine::row_ranges`]), not the whole `data` family.
//!
//! Intents and locks are `meta` records under the group's own prefix
//! (`shard/<group u32 BE>`), so a snapshot takes them with the rows:
//! - `i` + transaction id: the `Intent`, the transaction's state here;
//! - `w` + id length (u8) + transaction id + user key: one of its writes,
//!   an `IntentWrite`;
//! - `l` + user key: the `Lock` on the key.
//!
//! No record grows with the transaction, and resolving an intent reads
//! and writes its writes a page at a time ([`RESOLVE_PAGE`]), so a
//! transaction of any size is applied in bounded memory.
//! Readers at the leader wait for the locks in their way
//! (`shard::locks`); applying a decision or a one-phase commit tells them
//! to look again.

mod commands;
mod records;

pub use commands::{
    one_phase_command, outcome, prepare_command, probe_command, resolve_command, status,
};
pub use records::{forget_command, intents, lock_in_the_way, staged_write, staged_writes};

use std::sync::Arc;

use prost::Message;

use super::locks::WriteLocks;
use super::proto::settled::Outcome as Ended;
use super::proto::shard_applied::Outcome;
use super::proto::shard_command::Command;
use super::proto::txn_status::State;
use super::proto::{
    AbortCommand, CommitCommand, Done, Intent, IntentWrite, Lock, Mutation, OnePhaseCommand,
    PrepareCommand, ProbeCommand, Settled, ShardApplied, ShardCommand, TxnStatus, WriteBatch,
};
use super::{ShardReplica, KEY_LOCKED};
use crate::encoding::keys::{hash_range_bounds, table_bounds, TABLE_ID_LEN};
use crate::error::{Error, InputError, Result};
use crate::raft::{GroupId, StateMachine};
use crate::storage::{prefix_end, EachRecord, Family, Storage, StorageBatch, View};
use records::{
    decode_intent, decode_lock, decode_settled, decode_write, each_locked_key, group_prefix,
    record_key, settled_records, write_key, INTENT, LOCK, SETTLED,
};

/// The largest command, and the most rows, applied on the Raft task
/// (`StateMachine::quick`).
const QUICK_BYTES: usize = 16 * 1024;
const QUICK_ROWS: usize = 16;

/// How many of an intent's writes one RocksDB batch resolves.
const RESOLVE_PAGE: usize = 4096;

/// Why a prepare arriving after its transaction was aborted is refused.
const ABORTED: &str = "the transaction was aborted while it committed (its coordinator \
                       was too slow or stopped); retry it";

/// The lock-count slots (`shard::locks::LockCounts`) of the lock
/// records a batch deletes: uncounted once it is written.
type Unlocked = Vec<usize>;

fn done(commit_ts: u64) -> Outcome {
    Outcome::Done(Done { commit_ts })
}

/// The state machine of the shard group `replica` serves.
pub struct ShardMachine {
    storage: Arc<Storage>,
    replica: Arc<ShardReplica>,
    /// Told when a lock goes.
    locks: Arc<WriteLocks>,
}

impl ShardMachine {
    /// The machine of `replica`'s group, whose lock records it counts
    /// (`shard::locks::LockCounts`). Blocks on disk.
    pub fn new(
        storage: Arc<Storage>,
        replica: Arc<ShardReplica>,
        locks: Arc<WriteLocks>,
    ) -> Result<Self> {
        let machine = Self {
            storage,
            replica,
            locks,
        };
        machine.reload()?;
        Ok(machine)
    }

    fn group(&self) -> GroupId {
        self.replica.range().id.0
    }

    /// The key ranges of the group's rows in `view`: one per table that has
    /// rows, found by skipping from one table's range to the next, so a
    /// snapshot reads the group's rows and no other group's.
    fn row_ranges(&self, view: &View<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let range = self.replica.range();
        let mut ranges = Vec::new();
        let mut from = Vec::new();
        while let Some(key) = view.next_data_key(&from)? {
            let Some(table) = key.first_chunk::<TABLE_ID_LEN>() else {
                return Err(Error::Corrupt("a row key without a table id".into()));
            };
            let table = u32::from_be_bytes(*table);
            ranges.push(hash_range_bounds(table, range.hash_start, range.hash_end));
            if table == u32::MAX {
                break;
            }
            from = table_bounds(table).1;
        }
        Ok(ranges)
    }

    /// Checks `writes` (of transaction `txn_id`, or of a one-phase commit
    /// at `commit_ts`: `None`) as a commit would: a conflict or a refusal
    /// is the answer, `None` if they may commit.
    fn check(
        &self,
        writes: &WriteBatch,
        txn_id: Option<&[u8]>,
        commit_ts: Option<u64>,
    ) -> Result<Option<Outcome>> {
        match self.replica.validate(writes, commit_ts) {
            Ok(()) => {}
            Err(Error::Retry(message)) => return Ok(Some(Outcome::Conflict(message))),
            Err(Error::Internal(message)) => return Ok(Some(Outcome::Rejected(message))),
            Err(Error::Input(InputError::UniqueViolation, message)) => {
                return Ok(Some(Outcome::Taken(message)))
            }
            Err(e) => return Err(e),
        }
        for mutation in &writes.mutations {
            if !self.replica.lock_counts().may_hold(&mutation.key) {
                continue;
            }
            let Some(record) =
                self.storage
                    .get_meta(&record_key(self.group(), LOCK, &mutation.key))?
            else {
                continue;
            };
            if txn_id != Some(decode_lock(&record)?.txn_id.as_slice()) {
                // A key that must be free and may be about to be taken:
                // its INSERT takes the ordinary way, which waits to know.
                return Ok(Some(match mutation.absent {
                    true => Outcome::Taken(KEY_LOCKED.into()),
                    false => Outcome::Conflict(KEY_LOCKED.into()),
                }));
            }
        }
        Ok(None)
    }

    fn prepare(&self, command: PrepareCommand, out: &mut StorageBatch) -> Result<Outcome> {
        let group = self.group();
        match self.settled(&command.txn_id)? {
            Some(Ended::AbortedFrom(_)) => return Ok(Outcome::Conflict(ABORTED.into())),
            Some(Ended::CommittedAt(commit_ts)) => return Ok(done(commit_ts)),
            None => {}
        }
        let intent = record_key(group, INTENT, &command.txn_id);
        let sent_ahead = match self.storage.get_meta(&intent)? {
            Some(earlier) => {
                let earlier = decode_intent(&earlier)?;
                // A retry of a prepare applied (or of writes sent ahead of it).
                if !earlier.staged {
                    return Ok(done(earlier.min_commit_ts));
                }
                true
            }
            None => false,
        };
        let writes = command.batch.unwrap_or_default();
        if command.txn_id.len() > usize::from(u8::MAX) {
            return Ok(Outcome::Rejected(
                "a transaction id of over 255 bytes".into(),
            ));
        }
        if let Some(refused) = self.check(&writes, Some(&command.txn_id), None)? {
            return Ok(refused);
        }
        let lock = Lock {
            txn_id: command.txn_id.clone(),
            start_ts: writes.start_ts,
        }
        .encode_to_vec();
        for Mutation {
            key,
            value,
            statement,
            ..
        } in writes.mutations
        {
            let record = write_key(group, &command.txn_id, &key);
            let mut write = IntentWrite {
                value,
                statement,
                earlier: None,
            };
            // Only writes sent ahead before can be replaced.
            let replaced = match sent_ahead {
                true => self.storage.get_meta(&record)?,
                false => None,
            };
            // A key is locked as long as the transaction has a write of it.
            if replaced.is_none() {
                self.replica.lock_counts().add(&key);
            }
            out.put_meta(&record_key(group, LOCK, &key), &lock);
            if let Some(replaced) = replaced {
                let mut replaced = decode_write(&replaced)?;
                write.earlier = match replaced.statement < statement {
                    true => Some(Box::new(IntentWrite {
                        earlier: None,
                        ..replaced
                    })),
                    false => replaced.earlier.take(),
                };
            }
            out.put_meta(&record, &write.encode_to_vec());
        }
        let record = Intent {
            prepared_at_ms: command.prepared_at_ms,
            min_commit_ts: command.min_commit_ts,
            primary: command.primary,
            participants: command.participants,
            start_ts: writes.start_ts,
            staged: command.staged,
        };
        out.put_meta(&intent, &record.encode_to_vec());
        Ok(done(command.min_commit_ts))
    }

    fn one_phase(&self, command: OnePhaseCommand, out: &mut StorageBatch) -> Result<Outcome> {
        match self.settled(&command.txn_id)? {
            Some(Ended::CommittedAt(commit_ts)) => return Ok(done(commit_ts)),
            Some(Ended::AbortedFrom(_)) => return Ok(Outcome::Conflict(ABORTED.into())),
            None => {}
        }
        let writes = command.batch.unwrap_or_default();
        if let Some(refused) = self.check(&writes, None, Some(command.commit_ts))? {
            return Ok(refused);
        }
        self.replica.stage(&writes, command.commit_ts, out);
        self.settle(&command.txn_id, Ended::CommittedAt(command.commit_ts), out);
        Ok(done(command.commit_ts))
    }

    /// The intent of `commit.txn_id`, if it has one here, becomes row
    /// versions, and the commit is recorded: a probe of a group resolved
    /// before others must not find the transaction absent.
    fn commit(
        &self,
        commit: CommitCommand,
        out: &mut StorageBatch,
        unlocked: &mut Unlocked,
    ) -> Result<Outcome> {
        let txn_id = &commit.txn_id;
        if self
            .take_intent(txn_id, Some(commit.commit_ts), out, unlocked)?
            .is_some()
        {
            self.settle(txn_id, Ended::CommittedAt(commit.commit_ts), out);
        }
        Ok(done(0))
    }

    /// The intent of `abort.txn_id` goes, and the abort is recorded (unless
    /// the transaction committed here).
    fn abort(
        &self,
        abort: AbortCommand,
        out: &mut StorageBatch,
        unlocked: &mut Unlocked,
    ) -> Result<Outcome> {
        let start_ts = match self.take_intent(&abort.txn_id, None, out, unlocked)? {
            Some(intent) => intent.start_ts,
            None => abort.start_ts,
        };
        if start_ts != 0 && self.settled(&abort.txn_id)?.is_none() {
            self.settle(&abort.txn_id, Ended::AbortedFrom(start_ts), out);
        }
        Ok(done(0))
    }

    /// Where `probe.txn_id` stands here; one never prepared here is
    /// recorded aborted (its writes sent ahead, if any, go).
    fn probe(
        &self,
        probe: ProbeCommand,
        out: &mut StorageBatch,
        unlocked: &mut Unlocked,
    ) -> Result<Outcome> {
        let intent = record_key(self.group(), INTENT, &probe.txn_id);
        let intent = match self.storage.get_meta(&intent)? {
            Some(record) => Some(decode_intent(&record)?),
            None => None,
        };
        let state = if let Some(intent) = intent.as_ref().filter(|i| !i.staged) {
            State::Prepared(intent.min_commit_ts)
        } else if let Some(staged) = intent {
            self.take_intent(&probe.txn_id, None, out, unlocked)?;
            self.settle(&probe.txn_id, Ended::AbortedFrom(staged.start_ts), out);
            State::Aborted(true)
        } else {
            match self.settled(&probe.txn_id)? {
                Some(Ended::CommittedAt(commit_ts)) => State::Committed(commit_ts),
                Some(Ended::AbortedFrom(_)) => State::Aborted(true),
                None => {
                    self.settle(&probe.txn_id, Ended::AbortedFrom(probe.start_ts), out);
                    State::Aborted(true)
                }
            }
        };
        Ok(Outcome::Status(TxnStatus {
            shard_id: self.group(),
            state: Some(state),
        }))
    }

    /// How `txn_id` ended here, if that is still recorded.
    fn settled(&self, txn_id: &[u8]) -> Result<Option<Ended>> {
        let record = self
            .storage
            .get_meta(&record_key(self.group(), SETTLED, txn_id))?;
        record.map(|r| decode_settled(&r)).transpose()
    }

    fn settle(&self, txn_id: &[u8], ended: Ended, out: &mut StorageBatch) {
        let record = Settled {
            outcome: Some(ended),
        };
        out.put_meta(
            &record_key(self.group(), SETTLED, txn_id),
            &record.encode_to_vec(),
        );
    }

    /// `txn_id`'s intent, if it has one here, resolved: its writes become
    /// row versions at `Some(commit_ts)`, or go (`None`), and its records
    /// go. A page of writes at a time is written ahead of `out` (the last
    /// page, the intent record and whatever the caller adds go in `out`):
    /// a replica stopped half way applies the entry again and finds the
    /// writes that are left, under the intent, whose locks keep readers
    /// waiting until the end. The slots of the locks `out` deletes are
    /// added to `unlocked`.
    fn take_intent(
        &self,
        txn_id: &[u8],
        commit_ts: Option<u64>,
        out: &mut StorageBatch,
        unlocked: &mut Unlocked,
    ) -> Result<Option<Intent>> {
        let group = self.group();
        let key = record_key(group, INTENT, txn_id);
        let Some(record) = self.storage.get_meta(&key)? else {
            return Ok(None);
        };
        let intent = decode_intent(&record)?;
        let start = write_key(group, txn_id, &[]);
        let end = prefix_end(&start).unwrap_or_default();
        // Read on from the last key done, not from the start: the writes
        // done are deletion markers until compacted, and skipping them again
        // on every page would cost their square.
        let mut from = start.clone();
        let mut first = true;
        let mut ahead_unlocked = Vec::new();
        loop {
            let page = self.storage.scan_meta_page(&from, &end, RESOLVE_PAGE)?;
            let full = page.len() == RESOLVE_PAGE;
            let mut ahead = self.storage.batch();
            ahead.unsynced();
            // A commit that takes several pages is recorded with the first:
            // readers at or after its timestamp wait for it knowing it is
            // being resolved, and those before it read past it
            // (`lock_in_the_way`).
            if let (true, true, Some(commit_ts)) = (full, first, commit_ts) {
                self.settle(txn_id, Ended::CommittedAt(commit_ts), &mut ahead);
            }
            first = false;
            let (batch, slots) = match full {
                true => (&mut ahead, &mut ahead_unlocked),
                false => (&mut *out, &mut *unlocked),
            };
            for (record, write) in &page {
                let user_key = &record[start.len()..];
                if let Some(commit_ts) = commit_ts {
                    let write = decode_write(write)?;
                    batch.put_version(user_key, commit_ts, write.value.as_deref());
                }
                batch.delete_meta(record);
                batch.delete_meta(&record_key(group, LOCK, user_key));
                slots.push(self.replica.lock_counts().slot(user_key));
            }
            match page.last() {
                Some((last, _)) if full => from = [last.as_slice(), &[0]].concat(),
                _ => break,
            }
            self.storage.write(ahead)?;
            self.replica.lock_counts().remove(&ahead_unlocked);
            ahead_unlocked.clear();
        }
        out.delete_meta(&key);
        Ok(Some(intent))
    }
}

impl StateMachine for ShardMachine {
    /// A one-phase commit or a prepare of a few rows (a seek or two per
    /// key, one small write), or a probe. Not a resolution: its cost is the
    /// transaction's size, which the command does not show.
    fn quick(&self, command: &[u8]) -> bool {
        if command.len() > QUICK_BYTES {
            return false;
        }
        let few = |batch: &Option<WriteBatch>| {
            batch
                .as_ref()
                .is_none_or(|b| b.mutations.len() <= QUICK_ROWS)
        };
        match ShardCommand::decode(command).map(|c| c.command) {
            Ok(Some(Command::OnePhase(one_phase))) => few(&one_phase.batch),
            Ok(Some(Command::Prepare(prepare))) => few(&prepare.batch),
            Ok(Some(Command::Probe(_))) => true,
            _ => false,
        }
    }

    fn apply(&self, command: &[u8], mut batch: StorageBatch) -> Result<Vec<u8>> {
        let command = ShardCommand::decode(command)
            .map_err(|e| Error::Corrupt(format!("shard group log entry: {e}")))?;
        let mut unlocked = Vec::new();
        let outcome = match command.command {
            Some(Command::Prepare(prepare)) => self.prepare(prepare, &mut batch)?,
            Some(Command::Commit(commit)) => self.commit(commit, &mut batch, &mut unlocked)?,
            Some(Command::Abort(abort)) => self.abort(abort, &mut batch, &mut unlocked)?,
            Some(Command::OnePhase(one_phase)) => self.one_phase(one_phase, &mut batch)?,
            Some(Command::Probe(probe)) => self.probe(probe, &mut batch, &mut unlocked)?,
            Some(Command::Forget(forget)) => {
                let settled = settled_records(&self.storage, self.group())?;
                for (key, _) in settled.into_iter().filter(|(_, ts)| *ts < forget.before) {
                    batch.delete_meta(&key);
                }
                done(0)
            }
            None => Outcome::Rejected("a shard group command of no kind".into()),
        };
        self.storage.write(batch)?;
        self.replica.lock_counts().remove(&unlocked);
        self.locks.released();
        Ok(ShardApplied {
            outcome: Some(outcome),
        }
        .encode_to_vec())
    }

    fn dump(&self, view: &View<'_>, each: &mut EachRecord<'_>) -> Result<()> {
        for (start, end) in self.row_ranges(view)? {
            view.scan_data_range(&start, &end, |key, value| each(Family::Data, key, value))?;
        }
        view.each_meta(&[&group_prefix(self.group())], each)
    }

    fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()> {
        for (start, end) in self.row_ranges(&storage.view())? {
            batch.delete_data_range(&start, &end);
        }
        storage.delete_meta_prefixes(&[&group_prefix(self.group())], batch)
    }

    fn owns(&self, family: Family, key: &[u8]) -> bool {
        match family {
            Family::Data => self.replica.owns(key),
            Family::Meta => key.starts_with(&group_prefix(self.group())),
        }
    }

    /// Counts the group's lock records again (`LockCounts`).
    fn reload(&self) -> Result<()> {
        let (storage, group) = (&self.storage, self.group());
        self.replica
            .lock_counts()
            .recount(|each| each_locked_key(storage, group, each))
    }
}

#[cfg(test)]
mod tests {
    use super::records::SETTLED_KEPT_US;
    use super::*;
    use crate::encoding::keys::{key_hash, row_key, versions_end, HASH_SPACE};
    use crate::raft::state_machine::GroupMachine;
    use crate::shard::locks::InTheWay;
    use crate::shard::proto::Mutation;
    use crate::shard::{ShardId, ShardRange};
    use openraft::storage::RaftStateMachine;
    use openraft::RaftSnapshotBuilder;

    const HALF: u32 = HASH_SPACE / 2;

    fn machine(storage: &Arc<Storage>, id: u32) -> Arc<ShardMachine> {
        let (hash_start, hash_end) = if id == 0 {
            (0, HALF)
        } else {
            (HALF, HASH_SPACE)
        };
        let range = ShardRange {
            id: ShardId(id),
            hash_start,
            hash_end,
            node: 1,
            replicas: Vec::new(),
        };
        let replica = Arc::new(ShardReplica::new(range, storage.clone()));
        let locks = Arc::new(WriteLocks::default());
        Arc::new(ShardMachine::new(storage.clone(), replica, locks).unwrap())
    }

    /// Row keys of table 100, split by the group (0 or 1) that owns them.
    fn keys() -> [Vec<Vec<u8>>; 2] {
        let mut keys = [Vec::new(), Vec::new()];
        for i in 0u32..10_000 {
            let key = row_key(100, format!("k{i}").as_bytes());
            let group = &mut keys[usize::from(u32::from(key_hash(&key)) >= HALF)];
            if group.len() < 20 {
                group.push(key);
            }
        }
        keys
    }

    /// `Prepare` of `keys` set to `value` by transaction `txn`, which read
    /// at `start_ts`.
    fn prepare(txn: &[u8], start_ts: u64, keys: &[Vec<u8>], value: &[u8]) -> Vec<u8> {
        let batch = WriteBatch {
            shard_id: 0,
            start_ts,
            mutations: keys
                .iter()
                .map(|key| Mutation {
                    key: key.clone(),
                    value: Some(value.to_vec()),
                    ..Default::default()
                })
                .collect(),
        };
        let prepare = PrepareCommand {
            txn_id: txn.to_vec(),
            ..Default::default()
        };
        prepare_command(prepare, batch)
    }

    /// Applies `commands` in order: whether each was done (else a conflict).
    fn apply(machine: &ShardMachine, commands: Vec<Vec<u8>>) -> Vec<bool> {
        commands
            .iter()
            .map(|command| {
                let answer = machine.apply(command, machine.storage.batch()).unwrap();
                match outcome(&answer) {
                    Ok(_) => true,
                    Err(Error::Retry(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            })
            .collect()
    }

    /// Whether `machine` counts a lock on `key` (`LockCounts`).
    fn counted(machine: &ShardMachine, key: &[u8]) -> bool {
        machine.replica.lock_counts().may_hold(key)
    }

    fn get(machine: &ShardMachine, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        machine.replica.get(key, ts).unwrap()
    }

    /// Forgets `machine`'s `Settled` records as its leader would at GC
    /// safe point `safe_point`: how many went.
    fn forget(machine: &ShardMachine, safe_point: u64) -> Result<usize> {
        let (storage, group) = (&machine.storage, machine.group());
        let before = settled_records(storage, group)?.len();
        if let Some(command) = forget_command(storage, group, safe_point)? {
            outcome(&machine.apply(&command, storage.batch())?)?;
        }
        Ok(before - settled_records(storage, group)?.len())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn intents_lock_their_keys_until_committed_or_aborted_and_travel_in_snapshots() {
        let [ours, theirs] = keys();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let rows = machine(&a, 0);
        let (k0, k1) = (&ours[..1], &ours[1..2]);
        let done = apply(
            &rows,
            vec![
                prepare(b"t1", 5, k0, b"one"),
                prepare(b"t1", 5, k0, b"one"),
                // The key is held: another transaction loses.
                prepare(b"t2", 5, k0, b"two"),
                prepare(b"t3", 5, k1, b"three"),
                resolve_command(b"t1", Some(10), 0),
                resolve_command(b"t1", Some(10), 0),
                // Committed after t4's snapshot: t4 loses.
                prepare(b"t4", 9, k0, b"four"),
                resolve_command(b"t3", None, 0),
                prepare(b"t5", 10, k1, b"five"),
            ],
        );
        assert_eq!(
            done,
            [true, true, false, true, true, true, false, true, true]
        );
        assert_eq!(get(&rows, &k0[0], 10).as_deref(), Some(&b"one"[..]));
        assert_eq!(get(&rows, &k1[0], 20), None, "an intent is not a row");
        let waiting = intents(&a, 0).unwrap();
        let ids: Vec<&[u8]> = waiting.iter().map(|(id, _)| id.as_slice()).collect();
        assert_eq!(ids, [b"t5"]);
        assert!(counted(&rows, &k1[0]) && !counted(&rows, &k0[0]));
        // A machine started on the state counts its locks.
        assert!(counted(&machine(&a, 0), &k1[0]));
        // The other group's rows are not this group's state.
        let other = machine(&a, 1);
        apply(
            &other,
            vec![
                prepare(b"o", 1, &theirs[..2], b"theirs"),
                resolve_command(b"o", Some(3), 0),
            ],
        );

        // A row of another table in the group.
        let other_table = (0u32..)
            .map(|i| row_key(200, &i.to_be_bytes()))
            .find(|k| u32::from(key_hash(k)) < HALF)
            .unwrap();
        apply(
            &rows,
            vec![
                prepare(b"x", 1, std::slice::from_ref(&other_table), b"x"),
                resolve_command(b"x", Some(4), 0),
            ],
        );
        // A new replica gets t5's intent with the rows; it holds k1 there
        // and commits. Its stale rows of the group go; those of the other
        // group stay.
        let mut group = GroupMachine::new(a.clone(), 0, rows.clone());
        let built = group.build_snapshot().await.unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let b = Arc::new(Storage::open(b_dir.path()).unwrap());
        let copy = machine(&b, 0);
        apply(
            &copy,
            vec![
                prepare(b"s", 1, &ours[2..3], b"stale"),
                resolve_command(b"s", Some(2), 0),
            ],
        );
        let theirs_there = machine(&b, 1);
        apply(
            &theirs_there,
            vec![
                prepare(b"o", 1, &theirs[..1], b"kept"),
                resolve_command(b"o", Some(3), 0),
            ],
        );
        let mut installer = GroupMachine::new(b.clone(), 0, copy.clone());
        installer
            .install_snapshot(&built.meta, built.snapshot)
            .await
            .unwrap();
        assert_eq!(intents(&b, 0).unwrap(), waiting);
        assert!(counted(&copy, &k1[0]), "an installed lock is counted");
        assert_eq!(get(&copy, &ours[2], 5), None, "the stale version is gone");
        assert_eq!(get(&copy, &theirs[0], 5).as_deref(), Some(&b"kept"[..]));
        assert_eq!(get(&copy, &theirs[1], 5), None, "nor did it travel");
        assert_eq!(get(&copy, &other_table, 5).as_deref(), Some(&b"x"[..]));
        let done = apply(
            &copy,
            vec![
                prepare(b"t6", 10, k1, b"six"),
                resolve_command(b"t5", Some(12), 0),
            ],
        );
        assert_eq!(done, [false, true]);
        assert_eq!(get(&copy, &k1[0], 12).as_deref(), Some(&b"five"[..]));
        assert_eq!(get(&copy, &k0[0], 12).as_deref(), Some(&b"one"[..]));
        assert!(intents(&b, 0).unwrap().is_empty());
        assert!(!counted(&copy, &k1[0]));
    }

    #[test]
    fn an_intent_larger_than_a_page_is_resolved_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let rows = machine(&a, 0);
        let ours: Vec<Vec<u8>> = (0u32..)
            .map(|i| row_key(100, &i.to_be_bytes()))
            .filter(|k| u32::from(key_hash(k)) < HALF)
            .take(2 * RESOLVE_PAGE + 7)
            .collect();
        let (committed, aborted) = ours.split_at(RESOLVE_PAGE + 3);
        let done = apply(
            &rows,
            vec![
                prepare(b"big", 5, committed, b"v"),
                prepare(b"gone", 5, aborted, b"w"),
            ],
        );
        assert!(ours.iter().all(|k| counted(&rows, k)));
        let done = [
            done,
            apply(
                &rows,
                vec![
                    resolve_command(b"big", Some(10), 0),
                    resolve_command(b"gone", None, 0),
                ],
            ),
        ]
        .concat();
        assert_eq!(done, [true; 4]);
        assert!(
            ours.iter().all(|k| !counted(&rows, k)),
            "every lock uncounted"
        );
        assert!(committed
            .iter()
            .all(|k| get(&rows, k, 10).as_deref() == Some(&b"v"[..])));
        assert!(aborted.iter().all(|k| get(&rows, k, 10).is_none()));
        let left = a.scan_meta(&group_prefix(0)).unwrap();
        let kinds: Vec<u8> = left.iter().map(|(k, _)| k[group_prefix(0).len()]).collect();
        assert_eq!(
            kinds,
            [SETTLED, SETTLED],
            "no intent, write or lock is left"
        );
    }

    #[test]
    fn writes_sent_ahead_lock_keys_without_stopping_readers_and_read_as_of_their_statement() {
        let [ours, _] = keys();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let rows = machine(&a, 0);
        let sent = |txn: &[u8], statement: u32, key: &[u8], value: &[u8], staged: bool| {
            let prepare = PrepareCommand {
                txn_id: txn.to_vec(),
                staged,
                ..Default::default()
            };
            prepare_one(prepare, key, value, statement)
        };
        let done = apply(
            &rows,
            vec![
                sent(b"big", 1, &ours[0], b"one", true),
                sent(b"big", 2, &ours[1], b"two", true),
                // A later statement replaces a key an earlier one wrote.
                sent(b"big", 3, &ours[0], b"three", true),
                // Another writer loses a key sent ahead.
                sent(b"other", 1, &ours[1], b"x", false),
            ],
        );
        assert_eq!(done, [true, true, true, false]);
        let (start, end) = (
            ours.iter().min().unwrap(),
            versions_end(ours.iter().max().unwrap()),
        );
        let read = |statement: u32| {
            let reader = (&b"big"[..], statement);
            let (writes, _) = staged_writes(&a, 0, reader, (start, &end), 100).unwrap();
            let mut writes: Vec<(Vec<u8>, Vec<u8>)> =
                writes.into_iter().map(|(k, v)| (k, v.unwrap())).collect();
            writes.sort();
            writes
        };
        let expected = |pairs: &[(usize, &[u8])]| {
            let mut rows: Vec<(Vec<u8>, Vec<u8>)> = pairs
                .iter()
                .map(|(i, v)| (ours[*i].clone(), v.to_vec()))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(read(2), expected(&[(0, b"one")]));
        assert_eq!(read(3), expected(&[(0, b"one"), (1, b"two")]));
        assert_eq!(read(4), expected(&[(0, b"three"), (1, b"two")]));
        // A read by exact key: as of its statement, or the latest write for
        // statement 0 (a duplicate-key check).
        let one = |statement: u32, key: &[u8]| staged_write(&a, 0, (b"big", statement), key);
        assert_eq!(one(0, &ours[0]).unwrap(), Some(Some(b"three".to_vec())));
        assert_eq!(one(4, &ours[0]).unwrap(), Some(Some(b"three".to_vec())));
        assert_eq!(one(3, &ours[0]).unwrap(), Some(Some(b"one".to_vec())));
        assert_eq!(one(1, &ours[0]).unwrap(), None);
        assert_eq!(one(2, &ours[1]).unwrap(), None);
        assert_eq!(one(0, &ours[5]).unwrap(), None);
        // Readers do not wait for staged writes unless they are preparing;
        // the transaction's own reads never do.
        let in_way = |reader: &[u8], preparing: bool| {
            let preparing = move |_: &[u8]| preparing;
            let counts = rows.replica.lock_counts();
            lock_in_the_way(&a, 0, counts, (start, &end), 10, reader, &preparing).unwrap()
        };
        assert_eq!(in_way(b"", false), InTheWay::No);
        assert_eq!(in_way(b"", true), InTheWay::Yes);
        assert_eq!(in_way(b"big", true), InTheWay::No);
        // Its last prepare makes them a prepared intent, in the way.
        assert_eq!(
            apply(&rows, vec![sent(b"big", 4, &ours[2], b"four", false)]),
            [true]
        );
        assert_eq!(in_way(b"", false), InTheWay::Yes);
        // A point read (looked up by key) meets its own row's lock only
        // (and skips the lookup of a key whose slot counts no lock).
        let point = |key: &[u8]| {
            let range = (key, versions_end(key));
            let preparing = |_: &[u8]| false;
            let replica = &rows.replica;
            replica
                .lock_in_the_way((range.0, &range.1), 10, b"", &preparing)
                .unwrap()
        };
        assert_eq!(point(&ours[0]), InTheWay::Yes);
        assert_eq!(point(&ours[5]), InTheWay::No);
        assert_eq!(probe_status(&rows, b"big"), State::Prepared(0));
        // A probe of writes only sent ahead aborts them.
        apply(&rows, vec![sent(b"gone", 1, &ours[3], b"g", true)]);
        assert_eq!(probe_status(&rows, b"gone"), State::Aborted(true));
        let reader = (&b"gone"[..], 2);
        let (left, _) = staged_writes(&a, 0, reader, (start, &end), 100).unwrap();
        assert!(left.is_empty());
        // A key written twice was locked (and counted) once.
        apply(&rows, vec![resolve_command(b"big", Some(10), 0)]);
        assert!(ours.iter().all(|k| !counted(&rows, k)));
    }

    /// `prepare` of one write of `key` (at snapshot 5) by `statement`.
    fn prepare_one(prepare: PrepareCommand, key: &[u8], value: &[u8], statement: u32) -> Vec<u8> {
        let batch = WriteBatch {
            shard_id: 0,
            start_ts: 5,
            mutations: vec![Mutation {
                key: key.to_vec(),
                value: Some(value.to_vec()),
                statement,
                absent: false,
            }],
        };
        prepare_command(prepare, batch)
    }

    fn probe_status(machine: &ShardMachine, txn: &[u8]) -> State {
        let answer = machine
            .apply(&probe_command(txn, 5), machine.storage.batch())
            .unwrap();
        status(&answer).unwrap().state.unwrap()
    }

    #[test]
    fn a_one_phase_commit_applies_once_and_its_record_goes_after_the_retries() {
        let [ours, _] = keys();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let rows = machine(&a, 0);
        let batch = |value: &[u8]| WriteBatch {
            shard_id: 0,
            start_ts: 5,
            mutations: vec![Mutation {
                key: ours[0].clone(),
                value: Some(value.to_vec()),
                ..Default::default()
            }],
        };
        let commit = |txn: &[u8], value: &[u8], ts| {
            let answer = rows
                .apply(&one_phase_command(txn, batch(value), ts), a.batch())
                .unwrap();
            outcome(&answer)
        };
        assert_eq!(commit(b"t1", b"one", 10).unwrap(), 10);
        // A retry (with a later timestamp) answers the first commit's.
        assert_eq!(commit(b"t1", b"one", 12).unwrap(), 10);
        assert_eq!(get(&rows, &ours[0], 11).as_deref(), Some(&b"one"[..]));
        assert_eq!(get(&rows, &ours[0], 20).as_deref(), Some(&b"one"[..]));
        // Another writer that read before it loses; an intent blocks one.
        assert!(matches!(commit(b"t2", b"two", 15), Err(Error::Retry(_))));
        apply(&rows, vec![prepare(b"p", 20, &ours[..1], b"p")]);
        let later = WriteBatch {
            start_ts: 30,
            ..batch(b"three")
        };
        let answer = rows
            .apply(&one_phase_command(b"t3", later, 31), a.batch())
            .unwrap();
        assert!(matches!(outcome(&answer), Err(Error::Retry(_))));
        // The records of commits a minute behind the safe point go.
        assert_eq!(forget(&rows, 10).unwrap(), 0);
        assert_eq!(forget(&rows, 10 + SETTLED_KEPT_US + 1).unwrap(), 1);
        assert_eq!(intents(&a, 0).unwrap().len(), 1, "intents stay");
    }

    #[test]
    fn a_probe_tells_where_a_transaction_stands_and_bars_one_that_never_prepared() {
        let [ours, _] = keys();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let rows = machine(&a, 0);
        let run = |command: Vec<u8>| rows.apply(&command, a.batch()).unwrap();
        let vote = |txn: &[u8], min_commit_ts, key: &[u8]| {
            let prepare = PrepareCommand {
                txn_id: txn.to_vec(),
                min_commit_ts,
                primary: Some(0),
                participants: vec![0, 1],
                ..Default::default()
            };
            outcome(&run(prepare_one(prepare, key, b"v", 0)))
        };
        let probe = |txn: &[u8]| status(&run(probe_command(txn, 5))).unwrap().state.unwrap();

        // A prepare answers the minimum commit timestamp it recorded, on a
        // retry too.
        assert_eq!(vote(b"t1", 11, &ours[0]).unwrap(), 11);
        assert_eq!(vote(b"t1", 15, &ours[0]).unwrap(), 11);
        assert_eq!(probe(b"t1"), State::Prepared(11));
        // Never prepared here: now recorded aborted, and its prepare,
        // arriving late, is refused.
        assert_eq!(probe(b"t2"), State::Aborted(true));
        assert!(matches!(vote(b"t2", 12, &ours[1]), Err(Error::Retry(_))));
        assert!(intents(&a, 0).unwrap().iter().all(|(id, _)| id != b"t2"));
        // Committed: recorded, so a probe after the intent went finds it.
        outcome(&run(resolve_command(b"t1", Some(13), 0))).unwrap();
        assert_eq!(probe(b"t1"), State::Committed(13));
        assert_eq!(vote(b"t1", 15, &ours[0]).unwrap(), 13);
        assert_eq!(get(&rows, &ours[0], 13).as_deref(), Some(&b"v"[..]));
        // Aborted after it prepared: recorded too.
        assert_eq!(vote(b"t3", 16, &ours[2]).unwrap(), 16);
        outcome(&run(resolve_command(b"t3", None, 0))).unwrap();
        assert_eq!(probe(b"t3"), State::Aborted(true));
        assert_eq!(get(&rows, &ours[2], 20), None);
        // The records go a minute behind the safe point: t2 and t3 by their
        // snapshot (5), t1 by its commit (13).
        assert_eq!(forget(&rows, 6 + SETTLED_KEPT_US).unwrap(), 2);
        assert_eq!(forget(&rows, 14 + SETTLED_KEPT_US).unwrap(), 1);
    }
}
