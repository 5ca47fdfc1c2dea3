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
//!
//! A snapshot reads the group's rows range by range (one per table, see
//! [`ShardMachine::row_ranges`]), not the whole `data` family.
//!
//! Intents and locks are `meta` records under the group's own prefix
//! (`shard/<group u32 BE>` then `i` + transaction id, or `l` + user key,
//! whose value is a `Lock`), so a snapshot takes them with the rows.
//! Readers at the leader wait for the locks in their way
//! (`shard::locks`); applying a decision or a one-phase commit tells them
//! to look again.

use std::sync::Arc;

use prost::Message;

use super::locks::WriteLocks;
use super::proto::shard_applied::Outcome;
use super::proto::shard_command::Command;
use super::proto::{
    AbortCommand, CommitCommand, Done, Intent, Lock, OnePhaseCommand, PrepareCommand, ShardApplied,
    ShardCommand, WriteBatch,
};
use super::{ShardReplica, KEY_LOCKED};
use crate::encoding::keys::{hash_range_bounds, table_bounds, TABLE_ID_LEN};
use crate::error::{Error, Result};
use crate::raft::{GroupId, StateMachine};
use crate::storage::{Family, Storage, StorageBatch, View};

const INTENT: u8 = b'i';
const LOCK: u8 = b'l';
/// A one-phase commit applied: its transaction id → its commit timestamp.
const ONE_PHASE: u8 = b'o';

/// The state machine of the shard group `replica` serves.
pub struct ShardMachine {
    storage: Arc<Storage>,
    replica: Arc<ShardReplica>,
    /// Told when a lock goes.
    locks: Arc<WriteLocks>,
}

impl ShardMachine {
    pub fn new(storage: Arc<Storage>, replica: Arc<ShardReplica>, locks: Arc<WriteLocks>) -> Self {
        Self {
            storage,
            replica,
            locks,
        }
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

    /// Checks `writes` (of transaction `txn_id`, or of a one-phase commit:
    /// `None`) as a commit would: a conflict or a refusal is the answer,
    /// `None` if they may commit.
    fn check(&self, writes: &WriteBatch, txn_id: Option<&[u8]>) -> Result<Option<Outcome>> {
        match self.replica.validate(writes) {
            Ok(()) => {}
            Err(Error::Retry(message)) => return Ok(Some(Outcome::Conflict(message))),
            Err(Error::Internal(message)) => return Ok(Some(Outcome::Rejected(message))),
            Err(e) => return Err(e),
        }
        for mutation in &writes.mutations {
            let Some(record) =
                self.storage
                    .get_meta(&record_key(self.group(), LOCK, &mutation.key))?
            else {
                continue;
            };
            if txn_id != Some(decode_lock(&record)?.txn_id.as_slice()) {
                return Ok(Some(Outcome::Conflict(KEY_LOCKED.into())));
            }
        }
        Ok(None)
    }

    fn prepare(&self, command: PrepareCommand, out: &mut StorageBatch) -> Result<Outcome> {
        let group = self.group();
        let intent = record_key(group, INTENT, &command.txn_id);
        if self.storage.get_meta(&intent)?.is_some() {
            return Ok(Outcome::Done(Done::default()));
        }
        let writes = command.batch.unwrap_or_default();
        if let Some(refused) = self.check(&writes, Some(&command.txn_id))? {
            return Ok(refused);
        }
        let lock = Lock {
            txn_id: command.txn_id.clone(),
            start_ts: writes.start_ts,
        }
        .encode_to_vec();
        for mutation in &writes.mutations {
            out.put_meta(&record_key(group, LOCK, &mutation.key), &lock);
        }
        let record = Intent {
            prepared_at_ms: command.prepared_at_ms,
            batch: Some(writes),
        };
        out.put_meta(&intent, &record.encode_to_vec());
        Ok(Outcome::Done(Done::default()))
    }

    fn one_phase(&self, command: OnePhaseCommand, out: &mut StorageBatch) -> Result<Outcome> {
        let record = record_key(self.group(), ONE_PHASE, &command.txn_id);
        if let Some(earlier) = self.storage.get_meta(&record)? {
            let commit_ts = <[u8; 8]>::try_from(earlier.as_slice())
                .map_err(|_| Error::Corrupt("a one-phase commit record".into()))?;
            let commit_ts = u64::from_be_bytes(commit_ts);
            return Ok(Outcome::Done(Done { commit_ts }));
        }
        let writes = command.batch.unwrap_or_default();
        if let Some(refused) = self.check(&writes, None)? {
            return Ok(refused);
        }
        self.replica.stage(&writes, command.commit_ts, out);
        out.put_meta(&record, &command.commit_ts.to_be_bytes());
        Ok(Outcome::Done(Done {
            commit_ts: command.commit_ts,
        }))
    }

    /// The writes of `txn_id`'s intent, if it has one here, adding the
    /// deletion of its records to `out`.
    fn take_intent(&self, txn_id: &[u8], out: &mut StorageBatch) -> Result<Option<WriteBatch>> {
        let group = self.group();
        let intent = record_key(group, INTENT, txn_id);
        let Some(record) = self.storage.get_meta(&intent)? else {
            return Ok(None);
        };
        let writes = decode_intent(&record)?.batch.unwrap_or_default();
        for mutation in &writes.mutations {
            out.delete_meta(&record_key(group, LOCK, &mutation.key));
        }
        out.delete_meta(&intent);
        Ok(Some(writes))
    }
}

impl StateMachine for ShardMachine {
    fn apply(&self, command: &[u8], mut batch: StorageBatch) -> Result<Vec<u8>> {
        let command = ShardCommand::decode(command)
            .map_err(|e| Error::Corrupt(format!("shard group log entry: {e}")))?;
        let outcome = match command.command {
            Some(Command::Prepare(prepare)) => self.prepare(prepare, &mut batch)?,
            Some(Command::Commit(commit)) => {
                if let Some(writes) = self.take_intent(&commit.txn_id, &mut batch)? {
                    self.replica.stage(&writes, commit.commit_ts, &mut batch);
                }
                Outcome::Done(Done::default())
            }
            Some(Command::Abort(abort)) => {
                self.take_intent(&abort.txn_id, &mut batch)?;
                Outcome::Done(Done::default())
            }
            Some(Command::OnePhase(one_phase)) => self.one_phase(one_phase, &mut batch)?,
            None => Outcome::Rejected("a shard group command of no kind".into()),
        };
        self.storage.write(batch)?;
        self.locks.released();
        Ok(ShardApplied {
            outcome: Some(outcome),
        }
        .encode_to_vec())
    }

    fn dump(
        &self,
        view: &View<'_>,
        each: &mut dyn FnMut(Family, &[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        for (start, end) in self.row_ranges(view)? {
            view.scan_data_range(&start, &end, |key, value| each(Family::Data, key, value))?;
        }
        view.each_meta(&[&group_prefix(self.group())], each)
    }

    fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()> {
        let view = storage.view();
        for (start, end) in self.row_ranges(&view)? {
            view.scan_data_range(&start, &end, |key, _| {
                batch.put_record(Family::Data, key, None);
                Ok(())
            })?;
        }
        storage.delete_meta_prefixes(&[&group_prefix(self.group())], batch)
    }

    fn owns(&self, family: Family, key: &[u8]) -> bool {
        match family {
            Family::Data => self.replica.owns(key),
            Family::Meta => key.starts_with(&group_prefix(self.group())),
        }
    }
}

/// `shard/<group u32 BE>`: the start of every `meta` record of the group.
fn group_prefix(group: GroupId) -> Vec<u8> {
    [b"shard/".as_slice(), &group.to_be_bytes()].concat()
}

fn record_key(group: GroupId, kind: u8, name: &[u8]) -> Vec<u8> {
    [group_prefix(group).as_slice(), &[kind], name].concat()
}

fn decode_intent(record: &[u8]) -> Result<Intent> {
    Intent::decode(record).map_err(|e| Error::Corrupt(format!("an intent record: {e}")))
}

fn decode_lock(record: &[u8]) -> Result<Lock> {
    Lock::decode(record).map_err(|e| Error::Corrupt(format!("a lock record: {e}")))
}

/// The lock records (`Lock` messages) of `group` on the user keys in
/// `[start, end)`. Blocks on disk.
pub fn locks_in(
    storage: &Storage,
    group: GroupId,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let records = storage.scan_meta_range(
        &record_key(group, LOCK, start),
        &record_key(group, LOCK, end),
    )?;
    Ok(records.into_iter().map(|(_, value)| value).collect())
}

/// The transactions prepared in `group` on this node (whether or not it
/// leads the group): `(txn id, prepared at, in ms since the epoch)`.
/// Blocks on disk.
pub fn intents(storage: &Storage, group: GroupId) -> Result<Vec<(Vec<u8>, u64)>> {
    let prefix = record_key(group, INTENT, &[]);
    storage
        .scan_meta(&prefix)?
        .into_iter()
        .map(|(key, record)| {
            let intent = decode_intent(&record)?;
            Ok((key[prefix.len()..].to_vec(), intent.prepared_at_ms))
        })
        .collect()
}

/// How long after its commit a one-phase commit's record is kept for
/// retries of it (which stop within `txn::one_phase::ONE_PHASE_RETRY`).
const ONE_PHASE_RECORD_KEPT_US: u64 = 60_000_000;

/// Deletes the records of the one-phase commits (of every group here) at
/// least [`ONE_PHASE_RECORD_KEPT_US`] older than `safe_point`, the GC
/// safe point: no retry of them can come any more. Outside Raft, as
/// garbage collection is: a record matters only to a retry, and a retry
/// comes long before. Blocks on disk; how many went.
pub fn forget_settled(storage: &Storage, safe_point: u64) -> Result<u64> {
    let before = safe_point.saturating_sub(ONE_PHASE_RECORD_KEPT_US);
    let mut batch = storage.batch();
    batch.unsynced();
    let mut forgotten = 0;
    for (key, value) in storage.scan_meta(b"shard/")? {
        let is_record = key.get(b"shard/".len() + 4) == Some(&ONE_PHASE);
        let commit_ts = <[u8; 8]>::try_from(value.as_slice()).map(u64::from_be_bytes);
        if is_record && commit_ts.is_ok_and(|ts| ts < before) {
            batch.delete_meta(&key);
            forgotten += 1;
        }
    }
    storage.write(batch)?;
    Ok(forgotten)
}

/// The command preparing `batch` for `txn_id`.
pub fn prepare_command(txn_id: &[u8], prepared_at_ms: u64, batch: WriteBatch) -> Vec<u8> {
    command(Command::Prepare(PrepareCommand {
        txn_id: txn_id.to_vec(),
        prepared_at_ms,
        batch: Some(batch),
    }))
}

/// The one-phase commit of `batch` at `commit_ts`, by `txn_id`.
pub fn one_phase_command(txn_id: &[u8], batch: WriteBatch, commit_ts: u64) -> Vec<u8> {
    command(Command::OnePhase(OnePhaseCommand {
        batch: Some(batch),
        commit_ts,
        txn_id: txn_id.to_vec(),
    }))
}

/// The command committing `txn_id` at `Some(commit_ts)`, or aborting it.
pub fn resolve_command(txn_id: &[u8], outcome: Option<u64>) -> Vec<u8> {
    let txn_id = txn_id.to_vec();
    command(match outcome {
        Some(commit_ts) => Command::Commit(CommitCommand { txn_id, commit_ts }),
        None => Command::Abort(AbortCommand { txn_id }),
    })
}

fn command(command: Command) -> Vec<u8> {
    ShardCommand {
        command: Some(command),
    }
    .encode_to_vec()
}

/// What a shard group answered a command: a one-phase commit's
/// timestamp (0 for other commands); a conflict is a retryable error
/// (40001), a refusal an internal one.
pub fn outcome(answer: &[u8]) -> Result<u64> {
    let applied = ShardApplied::decode(answer)
        .map_err(|e| Error::Internal(format!("a shard group's answer: {e}")))?;
    match applied.outcome {
        Some(Outcome::Done(done)) => Ok(done.commit_ts),
        Some(Outcome::Conflict(message)) => Err(Error::Retry(message)),
        Some(Outcome::Rejected(message)) => Err(Error::Internal(message)),
        None => Err(Error::Internal("a shard group answered nothing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::{key_hash, row_key, HASH_SPACE};
    use crate::raft::state_machine::GroupMachine;
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
        Arc::new(ShardMachine::new(storage.clone(), replica, locks))
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
                })
                .collect(),
        };
        prepare_command(txn, 7, batch)
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

    fn get(machine: &ShardMachine, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        machine.replica.get(key, ts).unwrap()
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
                resolve_command(b"t1", Some(10)),
                resolve_command(b"t1", Some(10)),
                // Committed after t4's snapshot: t4 loses.
                prepare(b"t4", 9, k0, b"four"),
                resolve_command(b"t3", None),
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
        assert_eq!(waiting, vec![(b"t5".to_vec(), 7)]);
        // The other group's rows are not this group's state.
        let other = machine(&a, 1);
        apply(
            &other,
            vec![
                prepare(b"o", 1, &theirs[..2], b"theirs"),
                resolve_command(b"o", Some(3)),
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
                resolve_command(b"x", Some(4)),
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
                resolve_command(b"s", Some(2)),
            ],
        );
        let theirs_there = machine(&b, 1);
        apply(
            &theirs_there,
            vec![
                prepare(b"o", 1, &theirs[..1], b"kept"),
                resolve_command(b"o", Some(3)),
            ],
        );
        let mut installer = GroupMachine::new(b.clone(), 0, copy.clone());
        installer
            .install_snapshot(&built.meta, built.snapshot)
            .await
            .unwrap();
        assert_eq!(intents(&b, 0).unwrap(), waiting);
        assert_eq!(get(&copy, &ours[2], 5), None, "the stale version is gone");
        assert_eq!(get(&copy, &theirs[0], 5).as_deref(), Some(&b"kept"[..]));
        assert_eq!(get(&copy, &theirs[1], 5), None, "nor did it travel");
        assert_eq!(get(&copy, &other_table, 5).as_deref(), Some(&b"x"[..]));
        let done = apply(
            &copy,
            vec![
                prepare(b"t6", 10, k1, b"six"),
                resolve_command(b"t5", Some(12)),
            ],
        );
        assert_eq!(done, [false, true]);
        assert_eq!(get(&copy, &k1[0], 12).as_deref(), Some(&b"five"[..]));
        assert_eq!(get(&copy, &k0[0], 12).as_deref(), Some(&b"one"[..]));
        assert!(intents(&b, 0).unwrap().is_empty());
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
        assert_eq!(forget_settled(&a, 10).unwrap(), 0);
        assert_eq!(
            forget_settled(&a, 10 + ONE_PHASE_RECORD_KEPT_US + 1).unwrap(),
            1
        );
        assert_eq!(intents(&a, 0).unwrap().len(), 1, "intents stay");
    }
}
