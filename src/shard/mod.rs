//! Shard groups and their replicas.
//!
//! The 16-bit hash space of row keys (see `encoding::keys`) is split into
//! contiguous ranges when the cluster is initialised; each range is a shard
//! group, and every table has rows in every group. The [`ShardMap`] is
//! persisted in the storage `meta` family; its ranges never change after
//! initialisation (splitting comes later). It records which nodes hold
//! each group, which changes when a node is decommissioned (see
//! `cluster`).
//!
//! A [`ShardReplica`] is the boundary every write and scan crosses: it takes
//! the protobuf messages of `proto/shard.proto` (a `WriteBatch` to validate
//! and stage, a `ScanRequest` to serve) and knows what a row is. On one node
//! the transaction coordinator calls it in-process; later the same messages
//! travel over gRPC and Arrow Flight.

pub mod access;
pub mod flight;
pub mod locks;
pub mod machine;
mod replica;
pub mod service;

pub use replica::{scan_schema, ShardReplica};

use std::sync::{Arc, RwLock};

use prost::Message;

use crate::encoding::keys::{key_hash, HASH_SPACE};
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageBatch};

/// The protobuf messages of `proto/shard.proto`.
pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/shardforge.shard.rs"));
}

/// Why a write lost to a transaction that holds its key prepared.
pub const KEY_LOCKED: &str = "could not serialize access due to concurrent update (a row is being committed by another transaction)";

pub(crate) const SHARD_MAP_KEY: &[u8] = b"cluster/shard_map";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

/// One shard group: the rows whose key hash is in `[hash_start, hash_end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRange {
    pub id: ShardId,
    pub hash_start: u32,
    pub hash_end: u32,
    /// The node holding its replica.
    pub node: u32,
    /// With replication: the nodes holding its replicas, the voters of its
    /// Raft group (`node` first). Empty: `node` holds the only copy and
    /// writes it directly.
    pub replicas: Vec<u32>,
}

impl ShardRange {
    /// Whether the group is a Raft group.
    pub fn is_replicated(&self) -> bool {
        !self.replicas.is_empty()
    }
}

/// The node's shard groups, each with its local replica. The ranges never
/// change; which nodes hold each group's replicas does (a decommissioned
/// node's are re-created elsewhere: see `cluster`).
pub struct ShardMap {
    replicas: RwLock<Arc<Vec<Arc<ShardReplica>>>>,
    storage: Arc<Storage>,
}

impl ShardMap {
    /// Loads the shard map, creating one with `groups` equal ranges on node
    /// 1 if there is none (for tests; a node's `Cluster` keeps its shard
    /// map).
    #[cfg(test)]
    pub fn load_or_init(storage: &Arc<Storage>, groups: u32) -> Result<Self> {
        let ranges = match load_ranges(storage)? {
            Some(ranges) => ranges,
            None => {
                let ranges = split_hash_space(groups)?;
                let mut batch = storage.batch();
                stage_ranges(&ranges, &mut batch)?;
                storage.write(batch)?;
                ranges
            }
        };
        Ok(Self::new(storage.clone(), &ranges))
    }

    /// The map of the shard groups `ranges` (none before the node is in a
    /// cluster: [`Self::place`] places them then).
    pub fn new(storage: Arc<Storage>, ranges: &[ShardRange]) -> Self {
        let map = Self {
            replicas: RwLock::default(),
            storage,
        };
        map.place(ranges);
        map
    }

    /// Every shard group, in order, as placed now.
    pub fn replicas(&self) -> Arc<Vec<Arc<ShardReplica>>> {
        // Replaced whole, never changed in place: a panic elsewhere leaves
        // it consistent.
        self.replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The replica whose range holds `user_key`.
    pub fn for_key(&self, user_key: &[u8]) -> Arc<ShardReplica> {
        let hash = u32::from(key_hash(user_key));
        let replicas = self.replicas();
        // Ranges are sorted and cover the whole hash space.
        let at = replicas.partition_point(|r| r.range().hash_end <= hash);
        replicas[at.min(replicas.len() - 1)].clone()
    }

    /// Takes the placement of `ranges` (the same groups, placed anew, or
    /// the first placement): their nodes and replicas.
    pub fn place(&self, ranges: &[ShardRange]) {
        let mut replicas = self.replicas.write().unwrap_or_else(|e| e.into_inner());
        let placed = ranges
            .iter()
            .enumerate()
            .map(|(i, range)| match replicas.get(i) {
                Some(replica) if replica.range() == range => replica.clone(),
                Some(replica) => Arc::new(replica.placed(range)),
                None => Arc::new(ShardReplica::new(range.clone(), self.storage.clone())),
            })
            .collect();
        *replicas = Arc::new(placed);
    }
}

impl From<proto::ShardRange> for ShardRange {
    fn from(r: proto::ShardRange) -> Self {
        ShardRange {
            id: ShardId(r.id),
            hash_start: r.hash_start,
            hash_end: r.hash_end,
            node: r.node,
            replicas: r.replicas,
        }
    }
}

impl From<&ShardRange> for proto::ShardRange {
    fn from(r: &ShardRange) -> Self {
        proto::ShardRange {
            id: r.id.0,
            hash_start: r.hash_start,
            hash_end: r.hash_end,
            node: r.node,
            replicas: r.replicas.clone(),
        }
    }
}

/// The persisted shard groups, if the shard map was made.
pub fn load_ranges(storage: &Storage) -> Result<Option<Vec<ShardRange>>> {
    let Some(raw) = storage.get_meta(SHARD_MAP_KEY)? else {
        return Ok(None);
    };
    let map = proto::ShardMap::decode(raw.as_slice())
        .map_err(|e| Error::Corrupt(format!("shard map: {e}")))?;
    Ok(Some(map.ranges.into_iter().map(ShardRange::from).collect()))
}

/// Adds the shard map `ranges` to `batch`.
pub fn stage_ranges(ranges: &[ShardRange], batch: &mut StorageBatch) -> Result<()> {
    let map = proto::ShardMap {
        ranges: ranges.iter().map(proto::ShardRange::from).collect(),
    };
    batch.put_meta(SHARD_MAP_KEY, &map.encode_to_vec());
    Ok(())
}

/// `groups` equal ranges covering the hash space, all on node 1.
pub fn split_hash_space(groups: u32) -> Result<Vec<ShardRange>> {
    if groups == 0 || groups > HASH_SPACE {
        return Err(Error::Input(
            crate::error::InputError::InvalidParameterValue,
            format!("shard groups must be between 1 and {HASH_SPACE}, not {groups}"),
        ));
    }
    Ok((0..groups)
        .map(|i| ShardRange {
            id: ShardId(i),
            hash_start: i * HASH_SPACE / groups,
            hash_end: (i + 1) * HASH_SPACE / groups,
            node: 1,
            replicas: Vec::new(),
        })
        .collect())
}

/// Writes `rows` (user key, encoded row) as committed at `commit_ts`,
/// straight into storage, for tests of the read side.
#[cfg(test)]
pub(crate) fn put_rows_for_test(storage: &Storage, rows: Vec<(Vec<u8>, Vec<u8>)>, commit_ts: u64) {
    let mut out = storage.batch();
    for (key, row) in rows {
        out.put_version(&key, commit_ts, Some(&row));
    }
    storage.write(out).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::row_key;

    #[test]
    fn ranges_cover_the_hash_space_without_gaps() {
        let ranges = split_hash_space(8).unwrap();
        assert_eq!(ranges[0].hash_start, 0);
        assert_eq!(ranges[7].hash_end, HASH_SPACE);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].hash_end, pair[1].hash_start);
        }
        assert!(split_hash_space(0).is_err());
    }

    #[test]
    fn every_key_routes_to_the_range_holding_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let map = ShardMap::load_or_init(&storage, 8).unwrap();
        let mut used = std::collections::HashSet::new();
        for i in 0..1000u32 {
            let key = row_key(1, &i.to_be_bytes());
            let replica = map.for_key(&key);
            let hash = u32::from(key_hash(&key));
            assert!(replica.range().hash_start <= hash && hash < replica.range().hash_end);
            used.insert(replica.range().id);
        }
        assert_eq!(used.len(), 8, "1000 keys spread over all groups");
        // The map is fixed at initialisation.
        let again = ShardMap::load_or_init(&storage, 3).unwrap();
        assert_eq!(again.replicas().len(), 8);
    }
}
