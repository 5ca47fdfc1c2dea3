//! A Raft group's state machine as openraft sees it: the generic part
//! every group shares (the applied index and membership, snapshots), over
//! the group's own [`StateMachine`], which applies the commands.
//!
//! Each entry is applied in one RocksDB batch with the applied log id and
//! membership, so a restart neither applies an entry twice nor skips one.
//! The batch is not synced (`StorageBatch::unsynced`): the entry is in the
//! synced log, and after a crash that lost the batch the entry is applied
//! again from there, the applied index having been lost with it.
//!
//! A snapshot is every record of the group's state, read from one
//! consistent RocksDB view while applying goes on, with the applied state:
//! a `StoredSnapshot` (`proto/raft.proto`) whose data is a sequence of
//! length-delimited `SnapshotRecord`s. It is kept in the `raft` column
//! family until a newer one replaces it; installing one replaces the
//! group's records in one batch.

use std::io::{self, Cursor};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use prost::Message;

use super::codec;
use super::log_store::{key, APPLIED, SNAPSHOT};
use super::transport::proto;
use super::{Command, GroupId, ShardRaft, StateMachine};
use crate::error::{Error, Result};
use crate::storage::{Family, Storage};

type AppliedState = (Option<LogIdOf<ShardRaft>>, StoredMembershipOf<ShardRaft>);

/// The state machine of a Raft group. Clones share it (a snapshot builder
/// is a clone).
#[derive(Clone)]
pub struct GroupMachine {
    storage: Arc<Storage>,
    group: GroupId,
    state: Arc<dyn StateMachine>,
}

impl GroupMachine {
    /// Group `group`'s machine, applying its commands to `state`.
    pub fn new(storage: Arc<Storage>, group: GroupId, state: Arc<dyn StateMachine>) -> Self {
        Self {
            storage,
            group,
            state,
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

    fn applied(&self) -> Result<AppliedState> {
        applied_state(self.storage.get_raft(&key(self.group, APPLIED, 0))?)
    }

    /// Applies one entry and records it applied with the membership, in
    /// one batch; returns the membership as it is after the entry, and the
    /// entry's answer.
    fn apply_entry(
        &self,
        log_id: LogIdOf<ShardRaft>,
        payload: EntryPayload<Command, u64, openraft::BasicNode>,
        mut membership: StoredMembershipOf<ShardRaft>,
    ) -> Result<(StoredMembershipOf<ShardRaft>, Vec<u8>)> {
        let mut batch = self.storage.batch();
        batch.unsynced();
        let command = match payload {
            EntryPayload::Normal(command) => Some(command),
            EntryPayload::Membership(changed) => {
                membership = StoredMembershipOf::<ShardRaft>::new(Some(log_id), changed);
                None
            }
            EntryPayload::Blank => None,
        };
        let record = proto::AppliedState {
            last_applied: Some(codec::log_id_to(&log_id)),
            membership: Some(codec::stored_membership_to(&membership)),
        };
        batch.put_raft(&key(self.group, APPLIED, 0), &record.encode_to_vec());
        let answer = match command {
            Some(command) => self.state.apply(&command.0, batch)?,
            None => {
                self.storage.write(batch)?;
                Vec::new()
            }
        };
        Ok((membership, answer))
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
        let mut data = Vec::new();
        self.state.dump(&view, &mut |family, key, value| {
            let record = proto::SnapshotRecord {
                family: match family {
                    Family::Data => proto::Family::Data,
                    Family::Meta => proto::Family::Meta,
                } as i32,
                key: key.to_vec(),
                value: value.to_vec(),
            };
            record
                .encode_length_delimited(&mut data)
                .map_err(|e| Error::Internal(format!("snapshot record: {e}")))
        })?;
        drop(view);
        self.keep(&meta, &data)?;
        Ok((meta, data))
    }

    /// Keeps `data` as the group's current snapshot.
    fn keep(&self, meta: &SnapshotMetaOf<ShardRaft>, data: &[u8]) -> Result<()> {
        let stored = proto::StoredSnapshot {
            meta: Some(codec::snapshot_meta_to(meta)),
            data: data.to_vec(),
        };
        let mut batch = self.storage.batch();
        batch.put_raft(&key(self.group, SNAPSHOT, 0), &stored.encode_to_vec());
        self.storage.write(batch)
    }

    /// Replaces the group's records and applied state with the snapshot
    /// `data`, and keeps it as the current snapshot; one batch.
    fn install(&self, meta: &SnapshotMetaOf<ShardRaft>, data: &[u8]) -> Result<()> {
        let mut batch = self.storage.batch();
        self.state.clear(&self.storage, &mut batch)?;
        let mut rest = data;
        while !rest.is_empty() {
            let record = proto::SnapshotRecord::decode_length_delimited(&mut rest)
                .map_err(|e| Error::Corrupt(format!("snapshot record: {e}")))?;
            let family = match proto::Family::try_from(record.family) {
                Ok(proto::Family::Data) => Family::Data,
                Ok(proto::Family::Meta) => Family::Meta,
                Err(_) => return Err(Error::Corrupt("a snapshot record of no family".into())),
            };
            if !self.state.owns(family, &record.key) {
                return Err(Error::Corrupt(format!(
                    "a snapshot of group {} holds a record not of its state",
                    self.group
                )));
            }
            batch.put_record(family, &record.key, Some(&record.value));
        }
        let applied = proto::AppliedState {
            last_applied: codec::opt_log_id_to(&meta.last_log_id),
            membership: Some(codec::stored_membership_to(&meta.last_membership)),
        };
        batch.put_raft(&key(self.group, APPLIED, 0), &applied.encode_to_vec());
        let stored = proto::StoredSnapshot {
            meta: Some(codec::snapshot_meta_to(meta)),
            data: data.to_vec(),
        };
        batch.put_raft(&key(self.group, SNAPSHOT, 0), &stored.encode_to_vec());
        self.storage.write(batch)?;
        self.state.reload()?;
        tracing::info!(
            group = self.group,
            log_index = meta.last_log_id.map(|l| l.index),
            bytes = data.len(),
            "installed a snapshot of the group"
        );
        Ok(())
    }

    fn current(&self) -> Result<Option<(SnapshotMetaOf<ShardRaft>, Vec<u8>)>> {
        let Some(raw) = self.storage.get_raft(&key(self.group, SNAPSHOT, 0))? else {
            return Ok(None);
        };
        let stored = proto::StoredSnapshot::decode(raw.as_slice())
            .map_err(|e| Error::Corrupt(format!("stored snapshot: {e}")))?;
        Ok(Some((codec::snapshot_meta_from(stored.meta)?, stored.data)))
    }
}

/// The applied state a stored `APPLIED` record holds (none yet: nothing
/// applied, no membership).
fn applied_state(record: Option<Vec<u8>>) -> Result<AppliedState> {
    let Some(raw) = record else {
        return Ok((None, StoredMembershipOf::<ShardRaft>::default()));
    };
    let state = proto::AppliedState::decode(raw.as_slice())
        .map_err(|e| Error::Corrupt(format!("applied state: {e}")))?;
    Ok((
        codec::opt_log_id_from(state.last_applied),
        codec::stored_membership_from(state.membership)?,
    ))
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
            let payload = entry.payload;
            let answer;
            (membership, answer) = self
                .blocking(move |machine| machine.apply_entry(log_id, payload, membership))
                .await?;
            if let Some(responder) = responder {
                responder.send(answer);
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
pub(crate) mod tests {
    use super::*;
    use crate::storage::{StorageBatch, View};
    use openraft::alias::EntryOf;
    use openraft::testing::log_id;

    const NOTES: &[u8] = b"notes/";

    /// A state machine for tests of the Raft plumbing: the command
    /// `key=value` sets the note `key` (under `notes/` in `meta`) and
    /// answers its value before.
    pub struct Notes(pub Arc<Storage>);

    impl Notes {
        pub fn get(&self, key: &str) -> Option<String> {
            let raw = self.0.get_meta(&[NOTES, key.as_bytes()].concat()).unwrap();
            raw.map(|v| String::from_utf8(v).unwrap())
        }
    }

    /// The command setting note `key` to `value`.
    pub fn note(key: &str, value: &str) -> Command {
        Command(format!("{key}={value}").into_bytes())
    }

    impl StateMachine for Notes {
        fn apply(&self, command: &[u8], mut batch: StorageBatch) -> Result<Vec<u8>> {
            let text = std::str::from_utf8(command).unwrap();
            let (key, value) = text.split_once('=').unwrap();
            let before = self.get(key).unwrap_or_default();
            batch.put_meta(&[NOTES, key.as_bytes()].concat(), value.as_bytes());
            self.0.write(batch)?;
            Ok(before.into_bytes())
        }

        fn dump(
            &self,
            view: &View<'_>,
            each: &mut dyn FnMut(Family, &[u8], &[u8]) -> Result<()>,
        ) -> Result<()> {
            view.each_meta(&[NOTES], each)
        }

        fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()> {
            storage.delete_meta_prefixes(&[NOTES], batch)
        }

        fn owns(&self, family: Family, key: &[u8]) -> bool {
            family == Family::Meta && key.starts_with(NOTES)
        }
    }

    async fn apply(machine: &mut GroupMachine, entries: Vec<EntryOf<ShardRaft>>) {
        let stream = futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
        machine.apply(stream).await.unwrap();
    }

    fn entry(index: u64, command: Command) -> EntryOf<ShardRaft> {
        EntryOf::<ShardRaft>::new_normal(log_id::<ShardRaft>(1, 1, index), command)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_apply_with_their_log_id_and_a_snapshot_replaces_the_state() {
        let a_dir = tempfile::tempdir().unwrap();
        let a = Arc::new(Storage::open(a_dir.path()).unwrap());
        let notes = Arc::new(Notes(a.clone()));
        let mut machine = GroupMachine::new(a.clone(), 3, notes.clone());
        let entries = vec![entry(1, note("x", "1")), entry(2, note("y", "2"))];
        apply(&mut machine, entries).await;
        let answers = machine
            .blocking(|m| {
                let membership = m.applied()?.1;
                let third = EntryPayload::Normal(note("x", "3"));
                m.apply_entry(log_id::<ShardRaft>(1, 1, 3), third, membership)
            })
            .await
            .unwrap();
        assert_eq!(answers.1, b"1", "the answer is the machine's");
        let (applied, _) = machine.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id::<ShardRaft>(1, 1, 3)));

        // Node B holds a note the snapshot does not: it goes.
        let b_dir = tempfile::tempdir().unwrap();
        let b = Arc::new(Storage::open(b_dir.path()).unwrap());
        let stale = Arc::new(Notes(b.clone()));
        let mut installer = GroupMachine::new(b.clone(), 3, stale.clone());
        apply(&mut installer, vec![entry(1, note("z", "stale"))]).await;

        let built = machine.build_snapshot().await.unwrap();
        installer
            .install_snapshot(&built.meta, built.snapshot)
            .await
            .unwrap();
        assert_eq!(stale.get("x").as_deref(), Some("3"));
        assert_eq!(stale.get("y").as_deref(), Some("2"));
        assert_eq!(stale.get("z"), None);
        assert_eq!(installer.applied_state().await.unwrap().0, applied);
        let current = installer.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, built.meta);

        // A snapshot holding a record that is not the state's is refused.
        let mut forged = Vec::new();
        let record = proto::SnapshotRecord {
            family: proto::Family::Data as i32,
            key: b"row".to_vec(),
            value: Vec::new(),
        };
        record.encode_length_delimited(&mut forged).unwrap();
        let refused = installer
            .install_snapshot(&built.meta, Cursor::new(forged))
            .await;
        assert!(refused.is_err());
        assert_eq!(stale.get("x").as_deref(), Some("3"), "nothing changed");
    }
}
