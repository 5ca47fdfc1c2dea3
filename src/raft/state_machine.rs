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
//! A snapshot costs nothing until a follower needs one. Building one (as
//! openraft does every `raft_snapshot_entries` entries, to let the log
//! behind it go) pins a RocksDB view of the database with the applied
//! state it holds ([`Built`]): the group's state is in RocksDB already, so
//! there is nothing to copy, and the log can go because the applied
//! batches sit before the log's purge in RocksDB's one WAL, and the purge
//! is a synced write (`GroupLog::purge`), which makes them durable with
//! it (RocksDB also syncs closed WAL files before it flushes one column
//! family of several). Only
//! when the snapshot is sent is the view written, once, record by record,
//! to a file ([`SnapshotFile`]: length-delimited `SnapshotRecord`s of
//! `proto/raft.proto`). Writing every group out every few thousand
//! entries cost time in proportion to the group's size, again and again.
//!
//! A snapshot travels in chunks (`transport`), and is installed in
//! batches: a record of the install in progress comes first, so a crash in
//! the middle is finished at the next start, before the group serves. The
//! `raft` column family names the installed file (`StoredSnapshot`) until
//! a snapshot built here replaces it. No message, RocksDB value or buffer
//! grows with the group.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{FutureExt, Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use prost::Message;

use super::codec;
use super::log_store::{key, APPLIED, INSTALLING, SNAPSHOT};
use super::transport::proto;
use super::{Command, GroupId, ShardRaft, StateMachine};
use crate::error::{Error, Result};
use crate::storage::{Family, PinnedView, Storage, StorageBatch};

type AppliedState = (Option<LogIdOf<ShardRaft>>, StoredMembershipOf<ShardRaft>);

/// The state machine of a Raft group. Clones share it (a snapshot builder
/// is a clone).
#[derive(Clone)]
pub struct GroupMachine {
    storage: Arc<Storage>,
    group: GroupId,
    state: Arc<dyn StateMachine>,
    /// The snapshot built last, unless one was installed since.
    built: Arc<Mutex<Option<Arc<Built>>>>,
}

impl GroupMachine {
    /// Group `group`'s machine, applying its commands to `state`.
    pub fn new(storage: Arc<Storage>, group: GroupId, state: Arc<dyn StateMachine>) -> Self {
        Self {
            storage,
            group,
            state,
            built: Arc::default(),
        }
    }

    fn built(&self) -> std::sync::MutexGuard<'_, Option<Arc<Built>>> {
        self.built.lock().unwrap_or_else(|e| e.into_inner())
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

    /// A snapshot of the group as it is now: a pinned view and the applied
    /// state it holds; written out only if it is sent. It replaces the
    /// snapshot built or installed before.
    fn build(&self) -> Result<Arc<Built>> {
        let view = self.storage.pinned_view();
        let (last_log_id, last_membership) =
            applied_state(view.get_raft(&key(self.group, APPLIED, 0))?)?;
        let built = Arc::new(Built {
            meta: SnapshotMetaOf::<ShardRaft> {
                last_log_id,
                last_membership,
            },
            view,
            group: self.group,
            state: self.state.clone(),
            file: Mutex::new(None),
        });
        *self.built() = Some(built.clone());
        // An installed snapshot is older than this one: its file goes.
        if let Some((_, installed)) = self.current()? {
            let mut batch = self.storage.batch();
            batch.delete_raft(&key(self.group, SNAPSHOT, 0));
            self.storage.write(batch)?;
            installed.remove();
        }
        Ok(built)
    }

    /// Records `file` as the group's current snapshot in `batch`: the file
    /// it replaces, to delete once `batch` is written.
    fn keep(
        &self,
        meta: &SnapshotMetaOf<ShardRaft>,
        file: &SnapshotFile,
        batch: &mut StorageBatch,
    ) -> Result<Option<SnapshotFile>> {
        batch.put_raft(&key(self.group, SNAPSHOT, 0), &file.record(meta));
        Ok(self
            .current()?
            .map(|(_, previous)| previous)
            .filter(|previous| previous.path != file.path))
    }

    /// Replaces the group's records and applied state with the snapshot in
    /// `file`, and keeps it as the current snapshot. The file is read and
    /// written in batches of about [`INSTALL_BATCH_BYTES`]: a record of
    /// the install in progress is written first, and a restart that finds
    /// it installs the file again ([`Self::resume`]) before the group
    /// does anything else.
    fn install(&self, meta: &SnapshotMetaOf<ShardRaft>, snapshot: &Snapshot) -> Result<()> {
        // A file of another storage, or one a built snapshot deletes when
        // it goes, is copied into this storage's directory to be kept.
        let file = &match snapshot {
            Snapshot::File(file) => file.in_dir_of(&self.storage, self.group)?,
            Snapshot::Built(built) => built.written()?.copy_into(&self.storage, self.group)?,
        };
        // A corrupt file is refused before anything changes.
        self.each_record(file, |_, _| Ok(()))?;
        let mut batch = self.storage.batch();
        batch.put_raft(&key(self.group, INSTALLING, 0), &file.record(meta));
        self.storage.write(batch)?;
        self.install_file(meta, file)
    }

    fn install_file(&self, meta: &SnapshotMetaOf<ShardRaft>, file: &SnapshotFile) -> Result<()> {
        let mut batch = self.storage.batch();
        batch.unsynced();
        self.state.clear(&self.storage, &mut batch)?;
        let mut bytes = 0u64;
        self.each_record(file, |family, record| {
            batch.put_record(family, &record.key, Some(&record.value));
            if batch.size() >= INSTALL_BATCH_BYTES {
                bytes += batch.size() as u64;
                self.storage.write(std::mem::take(&mut batch))?;
                batch.unsynced();
            }
            Ok(())
        })?;
        bytes += batch.size() as u64;
        // The last batch, synced, makes the install durable and done.
        let mut done = std::mem::take(&mut batch);
        let applied = proto::AppliedState {
            last_applied: codec::opt_log_id_to(&meta.last_log_id),
            membership: Some(codec::stored_membership_to(&meta.last_membership)),
        };
        done.put_raft(&key(self.group, APPLIED, 0), &applied.encode_to_vec());
        let replaced = self.keep(meta, file, &mut done)?;
        done.delete_raft(&key(self.group, INSTALLING, 0));
        self.storage.write(done)?;
        if let Some(old) = replaced {
            old.remove();
        }
        // What was built here before is of the state replaced.
        *self.built() = None;
        self.state.reload()?;
        tracing::info!(
            group = self.group,
            log_index = meta.last_log_id.map(|l| l.index),
            bytes,
            "installed a snapshot of the group"
        );
        Ok(())
    }

    /// Calls `each` with every record of the snapshot `file`, in order;
    /// a record that cannot be one of the group's state is corrupt.
    fn each_record(
        &self,
        file: &SnapshotFile,
        mut each: impl FnMut(Family, proto::SnapshotRecord) -> Result<()>,
    ) -> Result<()> {
        let mut input = io::BufReader::new(std::fs::File::open(&file.path)?);
        while let Some(record) = read_record(&mut input)? {
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
            each(family, record)?;
        }
        Ok(())
    }

    /// At start: finishes a snapshot install a crash interrupted, if there
    /// is one, and deletes the group's snapshot files other than the
    /// current one (left by a crash, or received and not installed).
    fn resume(&self) -> Result<()> {
        if let Some(raw) = self.storage.get_raft(&key(self.group, INSTALLING, 0))? {
            let (meta, file) = SnapshotFile::from_record(&self.storage, &raw)?;
            tracing::info!(
                group = self.group,
                "finishing an interrupted snapshot install"
            );
            self.install_file(&meta, &file)?;
        }
        let current = self.current()?.map(|(_, file)| file.path);
        let prefix = SnapshotFile::prefix(self.group);
        for entry in std::fs::read_dir(self.storage.snapshot_dir())? {
            let path = entry?.path();
            let ours = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
            if ours && Some(&path) != current.as_ref() {
                SnapshotFile { path }.remove();
            }
        }
        Ok(())
    }

    /// The current snapshot, if its file is there (else openraft builds a
    /// new one when it needs one).
    fn current(&self) -> Result<Option<(SnapshotMetaOf<ShardRaft>, SnapshotFile)>> {
        let Some(raw) = self.storage.get_raft(&key(self.group, SNAPSHOT, 0))? else {
            return Ok(None);
        };
        let (meta, file) = SnapshotFile::from_record(&self.storage, &raw)?;
        Ok(file.path.exists().then_some((meta, file)))
    }
}

/// At most how many entries ready together are applied in one trip to a
/// blocking thread.
const APPLY_AT_ONCE: usize = 64;

/// Up to how many ready entries, each quick (`StateMachine::quick`), are
/// applied on the Raft task instead of a blocking thread.
const QUICK_AT_ONCE: usize = 4;

/// How many bytes of records a snapshot install writes per batch.
const INSTALL_BATCH_BYTES: usize = 4 << 20;

/// A snapshot of a group, as openraft hands it around.
pub enum Snapshot {
    /// Received from a leader (or installed from there).
    File(SnapshotFile),
    /// Built here, written to a file when first sent.
    Built(Arc<Built>),
}

impl Snapshot {
    /// The snapshot's file: a built one is written now (once, on a
    /// blocking thread). The file lives as long as the snapshot.
    pub(super) async fn file(&self) -> io::Result<PathBuf> {
        match self {
            Snapshot::File(file) => Ok(file.path.clone()),
            Snapshot::Built(built) => {
                let built = built.clone();
                tokio::task::spawn_blocking(move || built.written())
                    .await
                    .map_err(io::Error::other)?
                    .map(|file| file.path)
                    .map_err(io::Error::other)
            }
        }
    }
}

/// A snapshot built here: the database as one pinned view saw it, with
/// the applied state that view holds, and the file it was written to once
/// it was sent (deleted with it).
pub struct Built {
    meta: SnapshotMetaOf<ShardRaft>,
    view: PinnedView,
    group: GroupId,
    state: Arc<dyn StateMachine>,
    file: Mutex<Option<SnapshotFile>>,
}

impl Built {
    /// The file of the snapshot's records, written now if it is not yet.
    fn written(&self) -> Result<SnapshotFile> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = &*file {
            return Ok(file.clone());
        }
        let out = SnapshotFile::new(self.view.storage(), self.group, "built");
        let written = self.write(&out);
        if written.is_err() {
            out.remove();
        }
        written?;
        *file = Some(out.clone());
        Ok(out)
    }

    fn write(&self, file: &SnapshotFile) -> Result<()> {
        let mut out = io::BufWriter::new(std::fs::File::create(&file.path)?);
        let mut record_bytes = Vec::new();
        self.state.dump(&self.view, &mut |family, key, value| {
            let record = proto::SnapshotRecord {
                family: match family {
                    Family::Data => proto::Family::Data,
                    Family::Meta => proto::Family::Meta,
                } as i32,
                key: key.to_vec(),
                value: value.to_vec(),
            };
            record_bytes.clear();
            record
                .encode_length_delimited(&mut record_bytes)
                .map_err(|e| Error::Internal(format!("snapshot record: {e}")))?;
            Ok(out.write_all(&record_bytes)?)
        })?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        if let Some(file) = self.file.get_mut().unwrap_or_else(|e| e.into_inner()) {
            file.remove();
        }
    }
}

/// A snapshot's file: length-delimited `SnapshotRecord`s in the node's
/// snapshot directory (`Storage::snapshot_dir`), so that no message,
/// RocksDB value or buffer grows with the group. Sent in chunks
/// (`transport`); installed in batches.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub(super) path: PathBuf,
}

impl SnapshotFile {
    /// A new file name for a snapshot of `group` (`how`: built here or
    /// received), unique on this node, across restarts too (the current
    /// snapshot's file outlives the process).
    pub(super) fn new(storage: &Storage, group: GroupId, how: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let unique = (now.as_micros() as u64).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        let name = format!("{}{how}-{unique}.snapshot", Self::prefix(group));
        Self {
            path: storage.snapshot_dir().join(name),
        }
    }

    /// How the names of `group`'s snapshot files begin.
    fn prefix(group: GroupId) -> String {
        format!("group-{group}-")
    }

    /// This file if it is in `storage`'s snapshot directory (as the
    /// transport receives one), else a copy there: openraft's contract
    /// lets a snapshot be handed over from anywhere (its conformance
    /// suite installs one built on another storage).
    fn in_dir_of(&self, storage: &Storage, group: GroupId) -> Result<Self> {
        if self.path.parent() == Some(storage.snapshot_dir()) {
            return Ok(Self {
                path: self.path.clone(),
            });
        }
        self.copy_into(storage, group)
    }

    /// A copy of this file in `storage`'s snapshot directory.
    fn copy_into(&self, storage: &Storage, group: GroupId) -> Result<Self> {
        let copy = Self::new(storage, group, "copied");
        std::fs::copy(&self.path, &copy.path)?;
        Ok(copy)
    }

    /// Deletes the file (it may be gone already).
    pub(super) fn remove(&self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "could not delete a snapshot file");
            }
        }
    }

    /// The `StoredSnapshot` record naming this file, with `meta`.
    fn record(&self, meta: &SnapshotMetaOf<ShardRaft>) -> Vec<u8> {
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        proto::StoredSnapshot {
            meta: Some(codec::snapshot_meta_to(meta)),
            file: file.unwrap_or_default(),
        }
        .encode_to_vec()
    }

    fn from_record(storage: &Storage, raw: &[u8]) -> Result<(SnapshotMetaOf<ShardRaft>, Self)> {
        let stored = proto::StoredSnapshot::decode(raw)
            .map_err(|e| Error::Corrupt(format!("stored snapshot: {e}")))?;
        let file = Self {
            path: storage.snapshot_dir().join(&stored.file),
        };
        Ok((codec::snapshot_meta_from(stored.meta)?, file))
    }
}

/// The next length-delimited record of a snapshot file (`None` at its
/// end).
fn read_record(input: &mut impl io::BufRead) -> Result<Option<proto::SnapshotRecord>> {
    if input.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut length = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        input.read_exact(&mut byte)?;
        length |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    if length > crate::rpc::MAX_MESSAGE_BYTES as u64 {
        return Err(Error::Corrupt(format!(
            "a snapshot record of {length} bytes"
        )));
    }
    let mut bytes = vec![0; length as usize];
    input.read_exact(&mut bytes)?;
    proto::SnapshotRecord::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| Error::Corrupt(format!("snapshot record: {e}")))
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

impl RaftSnapshotBuilder<ShardRaft> for GroupMachine {
    type SnapshotData = Snapshot;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<ShardRaft, Self::SnapshotData>> {
        let built = self.blocking(|machine| machine.build()).await?;
        Ok(SnapshotOf::<ShardRaft, _> {
            meta: built.meta.clone(),
            snapshot: Snapshot::Built(built),
        })
    }
}

impl RaftStateMachine<ShardRaft> for GroupMachine {
    type SnapshotData = Snapshot;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<AppliedState> {
        self.blocking(|machine| {
            machine.resume()?;
            machine.applied()
        })
        .await
    }

    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<ShardRaft>>> + Unpin + OptionalSend,
    {
        // The membership is carried from entry to entry, not read back: it
        // is read once, by the first batch's apply.
        let mut membership = None;
        while let Some(first) = entries.try_next().await? {
            // The entries ready now are applied together (each still in its
            // own batch), in one trip to a blocking thread, not one each.
            let mut ready = vec![first];
            while ready.len() < APPLY_AT_ONCE {
                match entries.try_next().now_or_never() {
                    Some(Ok(Some(next))) => ready.push(next),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => break,
                }
            }
            let quick = ready.len() <= QUICK_AT_ONCE
                && ready.iter().all(|(entry, _)| match &entry.payload {
                    EntryPayload::Normal(command) => self.state.quick(&command.0),
                    EntryPayload::Blank | EntryPayload::Membership(_) => true,
                });
            let (payloads, responders): (Vec<_>, Vec<_>) = ready
                .into_iter()
                .map(|(entry, responder)| ((entry.log_id(), entry.payload), responder))
                .unzip();
            let known = membership.take();
            let apply = move |machine: &GroupMachine| {
                let mut membership = match known {
                    Some(membership) => membership,
                    None => machine.applied()?.1,
                };
                let mut answers = Vec::with_capacity(payloads.len());
                for (log_id, payload) in payloads {
                    let answer;
                    (membership, answer) = machine.apply_entry(log_id, payload, membership)?;
                    answers.push(answer);
                }
                Ok((membership, answers))
            };
            // A few quick commands (a row or two written: most commits)
            // cost less here than the two thread switches of a blocking
            // thread's trip; anything longer must not hold up the runtime.
            let (now, answers) = match quick {
                true => apply(self).map_err(io::Error::other)?,
                false => self.blocking(apply).await?,
            };
            membership = Some(now);
            for (responder, answer) in responders.into_iter().zip(answers) {
                if let Some(responder) = responder {
                    responder.send(answer);
                }
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
        self.blocking(move |machine| machine.install(&meta, &snapshot))
            .await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> io::Result<Option<SnapshotOf<ShardRaft, Self::SnapshotData>>> {
        if let Some(built) = self.built().clone() {
            return Ok(Some(SnapshotOf::<ShardRaft, _> {
                meta: built.meta.clone(),
                snapshot: Snapshot::Built(built),
            }));
        }
        let current = self.blocking(|machine| machine.current()).await?;
        Ok(current.map(|(meta, file)| SnapshotOf::<ShardRaft, _> {
            meta,
            snapshot: Snapshot::File(file),
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::{EachRecord, StorageBatch, View};
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

        fn dump(&self, view: &View<'_>, each: &mut EachRecord<'_>) -> Result<()> {
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

        // Building writes nothing; the snapshot holds the state as it was
        // built, whatever is applied after.
        let built = machine.build_snapshot().await.unwrap();
        let files = || std::fs::read_dir(a.snapshot_dir()).unwrap().count();
        assert_eq!(files(), 0, "nothing written until the snapshot is sent");
        apply(&mut machine, vec![entry(4, note("x", "4"))]).await;
        let ours = machine.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(ours.meta, built.meta);
        assert_eq!(
            ours.snapshot.file().await.unwrap(),
            built.snapshot.file().await.unwrap()
        );
        assert_eq!(files(), 1, "written once, when first asked for");
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
        let path = b_dir.path().join("forged");
        std::fs::write(&path, forged).unwrap();
        let refused = installer
            .install_snapshot(&built.meta, Snapshot::File(SnapshotFile { path }))
            .await;
        assert!(refused.is_err());
        assert_eq!(stale.get("x").as_deref(), Some("3"), "nothing changed");

        // A newer build replaces the last: its file goes with it.
        drop(ours);
        machine.build_snapshot().await.unwrap();
        assert_eq!(files(), 0);
    }
}
