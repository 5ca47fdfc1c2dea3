//! A shard group's state machine: the rows of the group's hash range in the
//! node's `data` column family.
//!
//! Applying a `Command::Commit` stages its `WriteBatch` as row versions at
//! the commit timestamp (as a local commit does, `ShardReplica::stage`),
//! in the same synced RocksDB batch as the applied log id and membership,
//! so a restart neither applies an entry twice nor skips one.
//!
//! A snapshot is every row version of the group's hash range (of every
//! table) with the applied state, read from one consistent RocksDB view
//! while applying goes on. It is kept in the `raft` column family until a
//! newer one replaces it; installing one replaces the group's rows in one
//! batch.
//!
//! Snapshot bytes: `[u32 BE meta length][meta JSON]` then, per row version,
//! `[u32 BE key length][key][u32 BE value length][value]`.

use std::io::{self, Cursor};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use prost::Message;

use super::log_store::{decode, encode, key, APPLIED, SNAPSHOT};
use super::{Applied, Command, GroupId, ShardRaft};
use crate::encoding::keys::{key_hash, TABLE_ID_LEN};
use crate::error::{Error, Result};
use crate::shard::proto::WriteBatch;
use crate::shard::ShardReplica;
use crate::storage::Storage;

type AppliedState = (Option<LogIdOf<ShardRaft>>, StoredMembershipOf<ShardRaft>);

/// The state machine of the shard group `replica` serves. Clones share it
/// (a snapshot builder is a clone).
#[derive(Clone)]
pub struct ShardMachine {
    storage: Arc<Storage>,
    replica: Arc<ShardReplica>,
    group: GroupId,
}

impl ShardMachine {
    pub fn new(storage: Arc<Storage>, replica: Arc<ShardReplica>) -> Self {
        let group = replica.range().id.0;
        Self {
            storage,
            replica,
            group,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ShardMachine) -> Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let machine = self.clone();
        tokio::task::spawn_blocking(move || work(&machine))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }

    /// Whether the raw `data` record `key` is a row version of this group.
    fn owns(&self, key: &[u8]) -> bool {
        let range = self.replica.range();
        key.len() > TABLE_ID_LEN + 1
            && (range.hash_start..range.hash_end).contains(&u32::from(key_hash(key)))
    }

    fn applied(&self) -> Result<AppliedState> {
        applied_state(self.storage.get_raft(&key(self.group, APPLIED, 0))?)
    }

    /// Applies one entry and records it applied with the membership, in
    /// one batch; returns the membership as it is after the entry.
    fn apply_entry(
        &self,
        log_id: LogIdOf<ShardRaft>,
        payload: Payload,
        mut membership: StoredMembershipOf<ShardRaft>,
    ) -> Result<StoredMembershipOf<ShardRaft>> {
        let mut batch = self.storage.batch();
        match payload {
            Payload::Commit {
                commit_ts,
                batch: writes,
            } => {
                let writes = WriteBatch::decode(writes.as_slice())
                    .map_err(|e| Error::Corrupt(format!("raft log entry: {e}")))?;
                self.replica.stage(&writes, commit_ts, &mut batch);
            }
            Payload::Membership(changed) => {
                membership = StoredMembershipOf::<ShardRaft>::new(Some(log_id), changed);
            }
            Payload::Nothing => {}
        }
        batch.put_raft(
            &key(self.group, APPLIED, 0),
            &encode(&(Some(log_id), &membership))?,
        );
        self.storage.write(batch)?;
        Ok(membership)
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
        view.scan_data(|key, value| {
            if self.owns(key) {
                put_chunk(&mut bytes, key);
                put_chunk(&mut bytes, value);
            }
            Ok(())
        })?;
        drop(view);
        let mut batch = self.storage.batch();
        batch.put_raft(&key(self.group, SNAPSHOT, 0), &bytes);
        self.storage.write(batch)?;
        Ok((meta, bytes))
    }

    /// Replaces the group's rows and applied state with the snapshot
    /// `bytes`, and keeps it as the current snapshot; one batch.
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
        while !chunks.0.is_empty() {
            let key = chunks.next()?;
            let value = chunks.next()?;
            batch.put_data_record(key, Some(value));
        }
        batch.put_raft(
            &key(self.group, APPLIED, 0),
            &encode(&(meta.last_log_id, meta.last_membership.clone()))?,
        );
        batch.put_raft(&key(self.group, SNAPSHOT, 0), bytes);
        self.storage.write(batch)
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

/// What applying an entry does.
enum Payload {
    Commit { commit_ts: u64, batch: Vec<u8> },
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

impl RaftSnapshotBuilder<ShardRaft> for ShardMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<ShardRaft, Self::SnapshotData>> {
        let (meta, bytes) = self.blocking(|machine| machine.build()).await?;
        Ok(snapshot(meta, bytes))
    }
}

impl RaftStateMachine<ShardRaft> for ShardMachine {
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
                EntryPayload::Normal(Command::Commit { commit_ts, batch }) => {
                    Payload::Commit { commit_ts, batch }
                }
                EntryPayload::Membership(membership) => Payload::Membership(membership),
                EntryPayload::Blank => Payload::Nothing,
            };
            membership = self
                .blocking(move |machine| machine.apply_entry(log_id, payload, membership))
                .await?;
            if let Some(responder) = responder {
                responder.send(Applied);
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

    fn commit(index: u64, commit_ts: u64, keys: &[Vec<u8>], value: &[u8]) -> EntryOf<ShardRaft> {
        let batch = WriteBatch {
            shard_id: 0,
            start_ts: 0,
            mutations: keys
                .iter()
                .map(|key| Mutation {
                    key: key.clone(),
                    value: Some(value.to_vec()),
                })
                .collect(),
        };
        let command = Command::Commit {
            commit_ts,
            batch: batch.encode_to_vec(),
        };
        EntryOf::<ShardRaft>::new_normal(log_id::<ShardRaft>(1, 1, index), command)
    }

    async fn apply(machine: &mut ShardMachine, entries: Vec<EntryOf<ShardRaft>>) {
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
        let mut machine = ShardMachine::new(a.clone(), replica(&a, 0));
        apply(
            &mut machine,
            vec![
                commit(1, 10, &ours, b"one"),
                commit(2, 20, &ours[..3], b"two"),
            ],
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
        assert_eq!(applied, Some(log_id::<ShardRaft>(1, 1, 2)));

        // Node B has a stale row of the group and a row of the other group.
        let b_dir = tempfile::tempdir().unwrap();
        let b = Arc::new(Storage::open(b_dir.path()).unwrap());
        other_group_rows(&b, &theirs[..1]);
        let mut stale = b.batch();
        stale.put_version(&ours[1], 3, Some(b"stale"));
        b.write(stale).unwrap();

        let built = machine.build_snapshot().await.unwrap();
        let mut installer = ShardMachine::new(b.clone(), replica(&b, 0));
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
}
