//! A Raft group's state machine. A shard group's is the rows of the
//! group's hash range in the node's `data` column family, and the intents
//! of the transactions prepared in the group; the meta group's is the
//! [`MetaState`] the transaction coordinator keeps (decisions, clock,
//! catalog), which applies its own commands.
//!
//! Applying a [`Command`] is deterministic, so every replica ends in the
//! same state:
//! - `Prepare` checks the writes as a local commit would (a key committed
//!   after the writer's snapshot, or held by another transaction's intent,
//!   is a conflict) and stores them as an intent record plus one lock
//!   record per key;
//! - `Commit` turns an intent into row versions at the decided timestamp
//!   (as a local commit does, `ShardReplica::stage`), `Abort` drops it;
//!   both are no-ops for a transaction with no intent here, so a decision
//!   delivered twice is harmless.
//!
//! Each entry is applied in one synced RocksDB batch with the applied log
//! id and membership, so a restart neither applies an entry twice nor skips
//! one.
//!
//! A snapshot is every row version of the group's hash range (of every
//! table) and every intent and lock record of the group, read from one
//! consistent RocksDB view while applying goes on, with the applied state.
//! It is kept in the `raft` column family until a newer one replaces it;
//! installing one replaces the group's rows and intents in one batch.
//!
//! The meta group's snapshot is every `meta` record under the state's
//! prefixes.
//!
//! Snapshot bytes: `[u32 BE meta length][meta JSON]` then, per record,
//! `[u32 BE key length][tag u8][key][u32 BE value length][value]`, the tag
//! telling a `data` record from a `raft` or a `meta` one.

use std::io::{self, Cursor};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use prost::Message;

use super::log_store::{decode, encode, key, named_key, APPLIED, INTENT, LOCK, SNAPSHOT};
use super::{Applied, Command, GroupId, MetaState, ShardRaft, META_GROUP};
use crate::encoding::keys::{key_hash, TABLE_ID_LEN};
use crate::error::{Error, Result};
use crate::shard::proto::WriteBatch;
use crate::shard::{ShardReplica, KEY_LOCKED};
use crate::storage::{Storage, StorageBatch};

/// Snapshot record tags.
const DATA_RECORD: u8 = 0;
const RAFT_RECORD: u8 = 1;
const META_RECORD: u8 = 2;

type AppliedState = (Option<LogIdOf<ShardRaft>>, StoredMembershipOf<ShardRaft>);

/// The state machine of a Raft group. Clones share it (a snapshot builder
/// is a clone).
#[derive(Clone)]
pub struct GroupMachine {
    storage: Arc<Storage>,
    group: GroupId,
    state: GroupState,
}

#[derive(Clone)]
enum GroupState {
    /// A shard group: the rows `replica` serves.
    Rows(Arc<ShardReplica>),
    Meta(Arc<dyn MetaState>),
}

impl GroupMachine {
    /// The state machine of the shard group `replica` serves.
    pub fn new(storage: Arc<Storage>, replica: Arc<ShardReplica>) -> Self {
        let group = replica.range().id.0;
        Self {
            storage,
            group,
            state: GroupState::Rows(replica),
        }
    }

    /// The meta group's state machine.
    pub fn meta(storage: Arc<Storage>, state: Arc<dyn MetaState>) -> Self {
        Self {
            storage,
            group: META_GROUP,
            state: GroupState::Meta(state),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&GroupMachine) -> Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let machine = self.clone();
        tokio::task::spawn_blocking(move || work(&machine))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }

    /// Whether the raw `data` record `key` is a row version of this group.
    fn owns(&self, key: &[u8]) -> bool {
        let GroupState::Rows(replica) = &self.state else {
            return false;
        };
        let range = replica.range();
        key.len() > TABLE_ID_LEN + 1
            && (range.hash_start..range.hash_end).contains(&u32::from(key_hash(key)))
    }

    /// The `meta` key prefixes of the group's state (none for a shard
    /// group).
    fn meta_prefixes(&self) -> Vec<&'static [u8]> {
        match &self.state {
            GroupState::Rows(_) => Vec::new(),
            GroupState::Meta(meta) => meta.prefixes(),
        }
    }

    fn applied(&self) -> Result<AppliedState> {
        applied_state(self.storage.get_raft(&key(self.group, APPLIED, 0))?)
    }

    /// Applies one entry and records it applied with the membership, in
    /// one batch; returns the membership as it is after the entry, and the
    /// entry's answer.
    fn apply_entry(
        &self,
        log_id: LogIdOf<ShardRaft>,
        payload: Payload,
        mut membership: StoredMembershipOf<ShardRaft>,
    ) -> Result<(StoredMembershipOf<ShardRaft>, Applied)> {
        let mut batch = self.storage.batch();
        let command = match payload {
            Payload::Command(command) => Some(command),
            Payload::Membership(changed) => {
                membership = StoredMembershipOf::<ShardRaft>::new(Some(log_id), changed);
                None
            }
            Payload::Nothing => None,
        };
        batch.put_raft(
            &key(self.group, APPLIED, 0),
            &encode(&(Some(log_id), &membership))?,
        );
        let applied = match (command, &self.state) {
            (None, _) => Applied::Done,
            (Some(command), GroupState::Meta(meta)) => {
                return Ok((membership, meta.apply(command, batch)?))
            }
            (Some(command), GroupState::Rows(replica)) => {
                self.stage_command(replica, command, &mut batch)?
            }
        };
        self.storage.write(batch)?;
        Ok((membership, applied))
    }

    /// Adds what `command` changes in the rows of `replica` to `out`.
    /// Reads see every entry applied before (each is its own batch).
    fn stage_command(
        &self,
        replica: &ShardReplica,
        command: Command,
        out: &mut StorageBatch,
    ) -> Result<Applied> {
        match command {
            Command::Prepare {
                txn_id,
                prepared_at_ms,
                batch,
            } => {
                let intent = named_key(self.group, INTENT, &txn_id);
                if self.storage.get_raft(&intent)?.is_some() {
                    return Ok(Applied::Done);
                }
                let writes = decode_batch(&batch)?;
                match replica.validate(&writes) {
                    Ok(()) => {}
                    Err(Error::Retry(message)) => return Ok(Applied::Conflict(message)),
                    Err(Error::Internal(message)) => return Ok(Applied::Rejected(message)),
                    Err(e) => return Err(e),
                }
                let locks: Vec<Vec<u8>> = writes
                    .mutations
                    .iter()
                    .map(|m| named_key(self.group, LOCK, &m.key))
                    .collect();
                for lock in &locks {
                    if self
                        .storage
                        .get_raft(lock)?
                        .is_some_and(|holder| holder != txn_id)
                    {
                        return Ok(Applied::Conflict(KEY_LOCKED.into()));
                    }
                }
                for lock in &locks {
                    out.put_raft(lock, &txn_id);
                }
                let mut record = prepared_at_ms.to_be_bytes().to_vec();
                record.extend_from_slice(&batch);
                out.put_raft(&intent, &record);
            }
            Command::Commit { txn_id, commit_ts } => {
                if let Some(writes) = self.take_intent(&txn_id, out)? {
                    replica.stage(&writes, commit_ts, out);
                }
            }
            Command::Abort { txn_id } => {
                self.take_intent(&txn_id, out)?;
            }
            Command::Decide { .. }
            | Command::Done { .. }
            | Command::Resolve { .. }
            | Command::Join { .. }
            | Command::Decommission { .. } => {
                return Ok(Applied::Rejected(format!(
                    "shard group {} takes no {command}",
                    self.group
                )))
            }
        }
        Ok(Applied::Done)
    }

    /// The writes of `txn_id`'s intent, if it has one here, adding the
    /// deletion of its records to `out`.
    fn take_intent(&self, txn_id: &[u8], out: &mut StorageBatch) -> Result<Option<WriteBatch>> {
        let intent = named_key(self.group, INTENT, txn_id);
        let Some(record) = self.storage.get_raft(&intent)? else {
            return Ok(None);
        };
        let writes = decode_batch(record.get(8..).unwrap_or_default())?;
        for mutation in &writes.mutations {
            out.delete_raft(&named_key(self.group, LOCK, &mutation.key));
        }
        out.delete_raft(&intent);
        Ok(Some(writes))
    }

    /// The current snapshot: built now from a consistent view, and kept.
    fn build(&self) -> Result<(SnapshotMetaOf<ShardRaft>, Vec<u8>)> {
        let view = self.storage.view();
        let (last_log_id, last_membership) =
            applied_state(view.get_raft(&key(self.group, APPLIED, 0))?)?;
        let meta = SnapshotMetaOf::<ShardRaft> {
            last_log_id,
            last_membership,
        };
        let meta_json = encode(&meta)?;
        let mut bytes = Vec::new();
        put_chunk(&mut bytes, &meta_json);
        let mut put_record = |tag: u8, key: &[u8], value: &[u8]| {
            bytes.extend_from_slice(&(key.len() as u32 + 1).to_be_bytes());
            bytes.push(tag);
            bytes.extend_from_slice(key);
            put_chunk(&mut bytes, value);
        };
        view.scan_data(|key, value| {
            if self.owns(key) {
                put_record(DATA_RECORD, key, value);
            }
            Ok(())
        })?;
        let (start, end) = self.txn_records();
        for (key, value) in view.scan_raft(&start, &end)? {
            put_record(RAFT_RECORD, &key, &value);
        }
        for prefix in self.meta_prefixes() {
            for (key, value) in view.scan_meta(prefix)? {
                put_record(META_RECORD, &key, &value);
            }
        }
        drop(view);
        let mut batch = self.storage.batch();
        batch.put_raft(&key(self.group, SNAPSHOT, 0), &bytes);
        self.storage.write(batch)?;
        Ok((meta, bytes))
    }

    /// The `raft` records of the group's transactions: its intents and
    /// locks.
    fn txn_records(&self) -> (Vec<u8>, Vec<u8>) {
        (
            named_key(self.group, INTENT, &[]),
            named_key(self.group, LOCK + 1, &[]),
        )
    }

    /// Replaces the group's rows, intents (or meta records) and applied
    /// state with the snapshot `bytes`, and keeps it as the current
    /// snapshot; one batch.
    fn install(&self, meta: &SnapshotMetaOf<ShardRaft>, bytes: &[u8]) -> Result<()> {
        let mut chunks = Chunks(bytes);
        chunks.next()?; // the meta, which openraft passes decoded
        let mut batch = self.storage.batch();
        self.storage.view().scan_data(|key, _| {
            if self.owns(key) {
                batch.put_data_record(key, None);
            }
            Ok(())
        })?;
        let (start, end) = self.txn_records();
        batch.delete_raft_range(&start, &end);
        let prefixes = self.meta_prefixes();
        for prefix in &prefixes {
            for (key, _) in self.storage.scan_meta(prefix)? {
                batch.delete_meta(&key);
            }
        }
        while !chunks.0.is_empty() {
            let record = chunks.next()?;
            let value = chunks.next()?;
            match record.split_first() {
                Some((&DATA_RECORD, key)) => batch.put_data_record(key, Some(value)),
                Some((&RAFT_RECORD, key)) if (start.as_slice()..end.as_slice()).contains(&key) => {
                    batch.put_raft(key, value)
                }
                Some((&META_RECORD, key)) if prefixes.iter().any(|p| key.starts_with(p)) => {
                    batch.put_meta(key, value)
                }
                _ => return Err(Error::Corrupt("a snapshot record of no kind".into())),
            }
        }
        batch.put_raft(
            &key(self.group, APPLIED, 0),
            &encode(&(meta.last_log_id, meta.last_membership.clone()))?,
        );
        batch.put_raft(&key(self.group, SNAPSHOT, 0), bytes);
        self.storage.write(batch)?;
        if let GroupState::Meta(meta) = &self.state {
            meta.reload()?;
        }
        tracing::info!(
            group = self.group,
            log_index = meta.last_log_id.map(|l| l.index),
            bytes = bytes.len(),
            "installed a snapshot of the group"
        );
        Ok(())
    }

    fn current(&self) -> Result<Option<(SnapshotMetaOf<ShardRaft>, Vec<u8>)>> {
        let Some(bytes) = self.storage.get_raft(&key(self.group, SNAPSHOT, 0))? else {
            return Ok(None);
        };
        let meta = decode(Chunks(&bytes).next()?)?;
        Ok(Some((meta, bytes)))
    }
}

/// The applied state a stored `APPLIED` record holds (none yet: nothing
/// applied, no membership).
fn applied_state(record: Option<Vec<u8>>) -> Result<AppliedState> {
    Ok(match record {
        Some(raw) => decode(&raw)?,
        None => (None, StoredMembershipOf::<ShardRaft>::default()),
    })
}

/// The transactions prepared in `group` on this node (whether or not it
/// leads the group): `(txn id, prepared at, in ms since the epoch)`.
pub fn intents(storage: &Storage, group: GroupId) -> Result<Vec<(Vec<u8>, u64)>> {
    let start = named_key(group, INTENT, &[]);
    let end = named_key(group, INTENT + 1, &[]);
    storage
        .scan_raft(&start, &end)?
        .into_iter()
        .map(|(key, record)| {
            let at = record
                .first_chunk::<8>()
                .ok_or_else(|| Error::Corrupt("an intent record is cut short".into()))?;
            Ok((key[start.len()..].to_vec(), u64::from_be_bytes(*at)))
        })
        .collect()
}

fn decode_batch(bytes: &[u8]) -> Result<WriteBatch> {
    WriteBatch::decode(bytes).map_err(|e| Error::Corrupt(format!("raft log entry: {e}")))
}

/// What applying an entry does.
enum Payload {
    Command(Command),
    Membership(openraft::Membership<u64, openraft::BasicNode>),
    Nothing,
}

fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    out.extend_from_slice(chunk);
}

/// Reads length-prefixed chunks off the front of a snapshot.
struct Chunks<'a>(&'a [u8]);

impl<'a> Chunks<'a> {
    fn next(&mut self) -> Result<&'a [u8]> {
        let corrupt = || Error::Corrupt("snapshot is cut short".into());
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt());
        }
        let (chunk, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(chunk)
    }
}

fn snapshot(
    meta: SnapshotMetaOf<ShardRaft>,
    bytes: Vec<u8>,
) -> SnapshotOf<ShardRaft, Cursor<Vec<u8>>> {
    SnapshotOf::<ShardRaft, _> {
        meta,
        snapshot: Cursor::new(bytes),
    }
}

impl RaftSnapshotBuilder<ShardRaft> for GroupMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<ShardRaft, Self::SnapshotData>> {
        let (meta, bytes) = self.blocking(|machine| machine.build()).await?;
        Ok(snapshot(meta, bytes))
    }
}

impl RaftStateMachine<ShardRaft> for GroupMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<AppliedState> {
        self.blocking(|machine| machine.applied()).await
    }

    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<ShardRaft>>> + Unpin + OptionalSend,
    {
        // The membership is carried from entry to entry, not read back.
        let (_, mut membership) = self.applied_state().await?;
        while let Some((entry, responder)) = entries.try_next().await? {
            let log_id = entry.log_id();
            let payload = match entry.payload {
                EntryPayload::Normal(command) => Payload::Command(command),
                EntryPayload::Membership(membership) => Payload::Membership(membership),
                EntryPayload::Blank => Payload::Nothing,
            };
            let applied;
            (membership, applied) = self
                .blocking(move |machine| machine.apply_entry(log_id, payload, membership))
                .await?;
            if let Some(responder) = responder {
                responder.send(applied);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<ShardRaft>,
        snapshot: Self::SnapshotData,
    ) -> io::Result<()> {
        let meta = meta.clone();
        let bytes = snapshot.into_inner();
        self.blocking(move |machine| machine.install(&meta, &bytes))
            .await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> io::Result<Option<SnapshotOf<ShardRaft, Self::SnapshotData>>> {
        let current = self.blocking(|machine| machine.current()).await?;
        Ok(current.map(|(meta, bytes)| snapshot(meta, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::{row_key, HASH_SPACE};
    use crate::shard::proto::Mutation;
    use crate::shard::{ShardId, ShardRange};
    use openraft::alias::EntryOf;
    use openraft::testing::log_id;

    const HALF: u32 = HASH_SPACE / 2;

    fn replica(storage: &Arc<Storage>, id: u32) -> Arc<ShardReplica> {
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
        Arc::new(ShardReplica::new(range, storage.clone()))
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

    fn entry(index: u64, command: Command) -> EntryOf<ShardRaft> {
        EntryOf::<ShardRaft>::new_normal(log_id::<ShardRaft>(1, 1, index), command)
    }

    /// `Prepare` of `keys` set to `value` by transaction `txn`, which read
    /// at `start_ts`.
    fn prepare(
        index: u64,
        txn: &[u8],
        start_ts: u64,
        keys: &[Vec<u8>],
        value: &[u8],
    ) -> EntryOf<ShardRaft> {
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
        let command = Command::Prepare {
            txn_id: txn.to_vec(),
            prepared_at_ms: 7,
            batch: batch.encode_to_vec(),
        };
        entry(index, command)
    }

    fn commit(index: u64, txn: &[u8], commit_ts: u64) -> EntryOf<ShardRaft> {
        let txn_id = txn.to_vec();
        entry(index, Command::Commit { txn_id, commit_ts })
    }

    /// Entries `index` and `index + 1`: `keys` written at `commit_ts`.
    fn write(
        index: u64,
        commit_ts: u64,
        keys: &[Vec<u8>],
        value: &[u8],
    ) -> Vec<EntryOf<ShardRaft>> {
        let txn = commit_ts.to_be_bytes();
        vec![
            prepare(index, &txn, commit_ts - 1, keys, value),
            commit(index + 1, &txn, commit_ts),
        ]
    }

    async fn apply(machine: &mut GroupMachine, entries: Vec<EntryOf<ShardRaft>>) {
        let stream = futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
        machine.apply(stream).await.unwrap();
    }

    /// Group 1's rows, written as a local commit would.
    fn other_group_rows(storage: &Storage, keys: &[Vec<u8>]) {
        let mut batch = storage.batch();
        for key in keys {
            batch.put_version(key, 5, Some(b"theirs"));
        }
        storage.write(batch).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_apply_with_their_log_id_and_a_snapshot_carries_the_groups_rows() {
        let [ours, theirs] = keys();
        let a_dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(a_dir.path()).unwrap());
        other_group_rows(&a, &theirs);
        let mut machine = GroupMachine::new(a.clone(), replica(&a, 0));
        apply(
            &mut machine,
            [
                write(1, 10, &ours, b"one"),
                write(3, 20, &ours[..3], b"two"),
            ]
            .concat(),
        )
        .await;
        let rows = replica(&a, 0);
        assert_eq!(
            rows.get(&ours[0], 15).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(
            rows.get(&ours[0], 25).unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(
            rows.get(&ours[5], 25).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        let (applied, _) = machine.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id::<ShardRaft>(1, 1, 4)));

        // Node B has a stale row of the group and a row of the other group.
        let b_dir = tempfile::tempdir().unwrap();
        let b = Arc::new(Storage::open(b_dir.path()).unwrap());
        other_group_rows(&b, &theirs[..1]);
        let mut stale = b.batch();
        stale.put_version(&ours[1], 3, Some(b"stale"));
        b.write(stale).unwrap();

        let built = machine.build_snapshot().await.unwrap();
        let mut installer = GroupMachine::new(b.clone(), replica(&b, 0));
        installer
            .install_snapshot(&built.meta, built.snapshot)
            .await
            .unwrap();
        let copy = replica(&b, 0);
        for key in &ours {
            for ts in [15, 25] {
                assert_eq!(copy.get(key, ts).unwrap(), rows.get(key, ts).unwrap());
            }
        }
        assert_eq!(
            copy.get(&ours[1], 4).unwrap(),
            None,
            "the stale version is gone"
        );
        // The other group's rows neither travel nor go.
        assert_eq!(
            copy.get(&theirs[0], 9).unwrap().as_deref(),
            Some(&b"theirs"[..])
        );
        assert_eq!(copy.get(&theirs[1], 9).unwrap(), None);
        assert_eq!(installer.applied_state().await.unwrap().0, applied);
        let current = installer.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, built.meta);
    }

    /// Applies `entries` one by one: their answers.
    fn answers(machine: &GroupMachine, entries: Vec<EntryOf<ShardRaft>>) -> Vec<Applied> {
        let mut membership = machine.applied().unwrap().1;
        let mut answers = Vec::new();
        for entry in entries {
            let EntryPayload::Normal(command) = entry.payload else {
                panic!("not a command");
            };
            let (kept, applied) = machine
                .apply_entry(entry.log_id, Payload::Command(command), membership)
                .unwrap();
            membership = kept;
            answers.push(applied);
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn intents_lock_their_keys_until_committed_or_aborted_and_travel_in_snapshots() {
        let [ours, _] = keys();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(dir.path()).unwrap());
        let mut machine = GroupMachine::new(a.clone(), replica(&a, 0));
        let (k0, k1) = (&ours[..1], &ours[1..2]);
        let applied = answers(
            &machine,
            vec![
                prepare(1, b"t1", 5, k0, b"one"),
                prepare(2, b"t1", 5, k0, b"one"),
                // The key is held: another transaction loses.
                prepare(3, b"t2", 5, k0, b"two"),
                prepare(4, b"t3", 5, k1, b"three"),
                commit(5, b"t1", 10),
                commit(6, b"t1", 10),
                // Committed after t4's snapshot: t4 loses.
                prepare(7, b"t4", 9, k0, b"four"),
                entry(
                    8,
                    Command::Abort {
                        txn_id: b"t3".to_vec(),
                    },
                ),
                prepare(9, b"t5", 10, k1, b"five"),
            ],
        );
        use Applied::{Conflict, Done};
        assert!(
            matches!(
                applied.as_slice(),
                [
                    Done,
                    Done,
                    Conflict(_),
                    Done,
                    Done,
                    Done,
                    Conflict(_),
                    Done,
                    Done
                ]
            ),
            "{applied:?}"
        );
        let rows = replica(&a, 0);
        assert_eq!(rows.get(&k0[0], 10).unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(
            rows.get(&k1[0], 20).unwrap(),
            None,
            "an intent is not a row"
        );
        let waiting = intents(&a, 0).unwrap();
        assert_eq!(waiting, vec![(b"t5".to_vec(), 7)]);

        // A new replica gets t5's intent with the rows; it holds k1 there
        // and commits.
        let built = machine.build_snapshot().await.unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let b = Arc::new(Storage::open(b_dir.path()).unwrap());
        let mut copy = GroupMachine::new(b.clone(), replica(&b, 0));
        copy.install_snapshot(&built.meta, built.snapshot)
            .await
            .unwrap();
        assert_eq!(intents(&b, 0).unwrap(), waiting);
        let applied = answers(
            &copy,
            vec![prepare(10, b"t6", 10, k1, b"six"), commit(11, b"t5", 12)],
        );
        assert!(
            matches!(applied.as_slice(), [Conflict(_), Done]),
            "{applied:?}"
        );
        let rows = replica(&b, 0);
        assert_eq!(rows.get(&k1[0], 12).unwrap().as_deref(), Some(&b"five"[..]));
        assert_eq!(rows.get(&k0[0], 12).unwrap().as_deref(), Some(&b"one"[..]));
        assert!(intents(&b, 0).unwrap().is_empty());
    }
}
