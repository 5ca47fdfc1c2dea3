//! Replication: every shard group (and, later, the meta group) is a Raft
//! group run by openraft. Issue #4 builds this in steps; this module holds
//! what is built so far.
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
//! A shard group's state machine ([`state_machine`]) is its rows in the
//! `data` column family, and [`transport`] carries every group's messages
//! over one gRPC service. None of it is wired into the write path yet.
//!
//! Log entries and votes are stored as JSON (openraft's types are serde).
//! Every write is synced before it is acknowledged to openraft (see
//! [`log_store`]).

pub mod log_store;
pub mod state_machine;
pub mod transport;

use serde::{Deserialize, Serialize};

/// A shard group's id as a Raft group.
pub type GroupId = u32;

/// What a shard group's log carries: a commit of rows at a timestamp the
/// cluster chose (a `WriteBatch` message, protobuf-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Commit { commit_ts: u64, batch: Vec<u8> },
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Commit { commit_ts, batch } => {
                write!(f, "commit at {commit_ts} ({} bytes)", batch.len())
            }
        }
    }
}

/// The answer of an applied [`Command`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied;

openraft::declare_raft_types!(
    /// The Raft types of a shard group.
    pub ShardRaft:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
);
