//! Replication: every shard group, and the meta group, is a Raft group run
//! by openraft. This module is Raft plumbing only (log store, transport,
//! the node's running groups); what a group's log entries mean is its
//! [`StateMachine`]'s business: the shard group's lives in
//! `shard::machine`, the meta group's in `cluster::meta` (the member
//! list) and `txn::meta` (the oracle's state). Here a command is opaque
//! bytes, and so is its answer.
//!
//! All groups of a node share its one RocksDB (`storage`, column family
//! `raft`) under keys that start with the group id, so a node with many
//! groups has one WAL and one set of files, not one per group:
//!
//! ```text
//! [group u32 BE][kind u8][index u64 BE]   kind: 0 vote, 1 committed,
//!                                               2 last purged, 3 log entry,
//!                                               5 applied, 6 snapshot
//! ```
//!
//! Every record, and every message between replicas, is the protobuf of
//! `proto/raft.proto` ([`codec`]); the storage's format version
//! (`storage::FORMAT_VERSION`) names this layout.
//!
//! Durability: the log append is the commit point. A vote or an append is
//! synced before openraft hears it is done (see [`log_store`]); applying
//! an entry writes its effects and the applied index in one batch that is
//! not synced on its own, since a lost apply is redone from the log after a
//! crash (see [`state_machine`]).

pub mod codec;
pub mod groups;
pub mod log_store;
pub mod state_machine;
pub mod transport;

use crate::error::Result;
use crate::storage::{EachRecord, Family, Storage, StorageBatch, View};

/// A shard group's id as a Raft group.
pub type GroupId = u32;

/// The meta group's id: above every shard group's.
pub const META_GROUP: GroupId = u32::MAX;

/// What a Raft group replicates: a state in the node's storage, changed
/// only by applying the group's commands in log order, so every replica
/// that applied the same entries holds the same state.
pub trait StateMachine: Send + Sync + 'static {
    /// Applies `command`, writing what it changes together with `batch`
    /// (which records the entry applied) in one [`Storage::write`], and
    /// answers the proposer. A command too large for one batch may write
    /// earlier batches of its own first, if applying it again after a
    /// stop half way ends in the same state. Deterministic: the answer and
    /// the state depend only on the state and the command. An error is a
    /// failure of the replica (its disk), not a refusal: a refusal is an
    /// answer. Blocks on disk.
    fn apply(&self, command: &[u8], batch: StorageBatch) -> Result<Vec<u8>>;

    /// Whether applying `command` is quick (a few small reads and one
    /// small write), so it may run on the async runtime rather than a
    /// blocking thread. A command whose cost is not known from its size
    /// (resolving a transaction of any size) is not.
    fn quick(&self, _command: &[u8]) -> bool {
        false
    }

    /// Calls `each` with every record of the state in `view` (a
    /// snapshot's content).
    fn dump(&self, view: &View<'_>, each: &mut EachRecord<'_>) -> Result<()>;

    /// Adds the deletion of every record of the state to `batch` (a
    /// snapshot replaces them).
    fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()>;

    /// Whether a snapshot's record `key` in `family` can be one of the
    /// state's (any other is corrupt).
    fn owns(&self, family: Family, key: &[u8]) -> bool;

    /// Reads any state kept in memory again after a snapshot replaced the
    /// records. Blocks on disk.
    fn reload(&self) -> Result<()> {
        Ok(())
    }
}

/// A command in a group's log: the bytes its [`StateMachine`] applies.
#[derive(Clone, PartialEq, Eq)]
pub struct Command(pub Vec<u8>);

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "command ({} bytes)", self.0.len())
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// The Raft types of every group.
    pub ShardRaft:
        D = Command,
        R = Vec<u8>,
        NodeId = u64,
        Node = openraft::BasicNode,
);
