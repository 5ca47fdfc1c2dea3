//! Replication: every shard group, and the meta group, is a Raft group run
//! by openraft.
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
//! `data` column family and its transactions' intents; the meta group's is
//! the cluster's members (kept by `cluster`) and its commit decisions,
//! timestamps and catalog (kept by the transaction coordinator): see
//! [`MetaParts`]. [`transport`] carries every
//! group's messages over one gRPC service.
//!
//! Log entries and votes are stored as JSON (openraft's types are serde).
//! Every write is synced before it is acknowledged to openraft (see
//! [`log_store`]).

pub mod groups;
pub mod log_store;
pub mod state_machine;
pub mod transport;

use serde::{Deserialize, Serialize};

/// A shard group's id as a Raft group.
pub type GroupId = u32;

/// The meta group's id: above every shard group's.
pub const META_GROUP: GroupId = u32::MAX;

/// A part of the meta group's state, in the `meta` column family under
/// [`MetaState::prefixes`].
pub trait MetaState: Send + Sync {
    /// Applies a meta command, writing what it changes together with
    /// `batch` (which records the entry applied) in one write. Blocks on
    /// disk.
    fn apply(
        &self,
        command: Command,
        batch: crate::storage::StorageBatch,
    ) -> crate::error::Result<Applied>;
    /// The `meta` key prefixes that hold the state (a snapshot's records).
    fn prefixes(&self) -> Vec<&'static [u8]>;
    /// Reads the state again after a snapshot replaced it. Blocks on disk.
    fn reload(&self) -> crate::error::Result<()>;
}

/// What a shard group's log carries: the two phases of a transaction's
/// commit, so a prepared transaction and its outcome survive any replica.
/// Every replica applies them alike (see `state_machine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Phase one: check `batch` (a `WriteBatch` message, protobuf-encoded)
    /// against the committed rows and the other intents, then hold its
    /// writes as intents locking their keys. `prepared_at_ms` (wall clock of
    /// the proposer) tells recovery how long it has waited.
    Prepare {
        #[serde(with = "base64_bytes")]
        txn_id: Vec<u8>,
        prepared_at_ms: u64,
        #[serde(with = "base64_bytes")]
        batch: Vec<u8>,
    },
    /// Phase two: the intents of `txn_id` become row versions at `commit_ts`.
    Commit {
        #[serde(with = "base64_bytes")]
        txn_id: Vec<u8>,
        commit_ts: u64,
    },
    /// Phase two, the other way: the intents of `txn_id` go.
    Abort {
        #[serde(with = "base64_bytes")]
        txn_id: Vec<u8>,
    },
    /// Meta group: the commit point of a cross-node transaction, `request`
    /// (a `DecideRequest`, protobuf-encoded) at `commit_ts`, which the
    /// leader's clock chose. Answers `Decision`: the transaction's earlier
    /// decision if it has one.
    Decide {
        #[serde(with = "base64_bytes")]
        request: Vec<u8>,
        commit_ts: u64,
    },
    /// Meta group: every participant applied `txn_id`.
    Done {
        #[serde(with = "base64_bytes")]
        txn_id: Vec<u8>,
    },
    /// Meta group: the decision of `txn_id`, recording an abort if it has
    /// none.
    Resolve {
        #[serde(with = "base64_bytes")]
        txn_id: Vec<u8>,
    },
    /// Meta group: the node at `rpc_addr` joins the cluster, or a member
    /// reports new addresses. Answers `Member`: its id.
    Join {
        rpc_addr: String,
        pg_addr: String,
        http_addr: String,
    },
    /// Meta group: member `node` is gone for good; its replicas move to
    /// the other members. Answers `Done`.
    Decommission { node: u32 },
}

/// The meta group's state: the members, which `cluster` keeps and `Join`
/// changes, and the oracle's (commit decisions, clock, catalog), which the
/// transaction coordinator keeps and every other meta command changes.
pub struct MetaParts {
    pub members: std::sync::Arc<dyn MetaState>,
    pub oracle: std::sync::Arc<dyn MetaState>,
}

impl MetaState for MetaParts {
    fn apply(
        &self,
        command: Command,
        batch: crate::storage::StorageBatch,
    ) -> crate::error::Result<Applied> {
        match command {
            Command::Join { .. } | Command::Decommission { .. } => {
                self.members.apply(command, batch)
            }
            _ => self.oracle.apply(command, batch),
        }
    }

    fn prefixes(&self) -> Vec<&'static [u8]> {
        let mut prefixes = self.members.prefixes();
        prefixes.extend(self.oracle.prefixes());
        prefixes
    }

    fn reload(&self) -> crate::error::Result<()> {
        self.members.reload()?;
        self.oracle.reload()
    }
}

/// Bytes as a base64 string: JSON would spell them as an array of
/// numbers, several times longer and slower to parse.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Prepare { batch, .. } => write!(f, "prepare ({} bytes)", batch.len()),
            Command::Commit { commit_ts, .. } => write!(f, "commit at {commit_ts}"),
            Command::Abort { .. } => write!(f, "abort"),
            Command::Decide { commit_ts, .. } => write!(f, "decide at {commit_ts}"),
            Command::Done { .. } => write!(f, "done"),
            Command::Resolve { .. } => write!(f, "resolve"),
            Command::Join { rpc_addr, .. } => write!(f, "join of {rpc_addr}"),
            Command::Decommission { node } => write!(f, "decommission of node {node}"),
        }
    }
}

/// The answer of an applied [`Command`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    #[default]
    Done,
    /// A `Prepare` lost a conflict (first committer wins): retry the
    /// transaction.
    Conflict(String),
    /// A `Prepare` that can never apply here (a key outside the group).
    Rejected(String),
    /// A meta group's decision: the commit timestamp, or `None` for an
    /// abort.
    Decision(Option<u64>),
    /// A `Join`: the member's node id.
    Member(u32),
}

openraft::declare_raft_types!(
    /// The Raft types of a shard group.
    pub ShardRaft:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
);
