//! ShardForge: a distributed SQL database that speaks the PostgreSQL wire
//! protocol. See `docs/architecture.md` for the map of the modules and the
//! path of one query through them.
//!
//! Dependency direction (a module only uses those below it), as the
//! imports are:
//!
//! ```text
//! pg → sql → txn → cluster → shard → raft → rpc
//!               ↘    ↓         ↓   ↘   ↓
//!                 catalog → storage → encoding → numeric → error
//! ```
//!
//! `raft` knows no shard, row or transaction: the shard and meta groups'
//! state machines (`shard::machine`, `cluster::meta`, `txn::meta`)
//! implement its `StateMachine`. `cluster` knows no transaction: what it
//! needs of the node's transactions (the snapshot floor) is reported to
//! it, and its operations through the meta group take the node's Raft
//! groups as an argument. `server` and the CLI build a node bottom-up, in
//! that order (see `docs/architecture.md`, "Modules").

#![recursion_limit = "256"]

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod encoding;
pub mod error;
pub mod numeric;
pub mod pg;
pub mod raft;
pub mod rpc;
pub mod server;
pub mod shard;
pub mod sql;
pub mod storage;
pub mod txn;

/// The PostgreSQL version ShardForge presents itself as (`server_version`).
pub const PG_SERVER_VERSION: &str = "15.0";
/// The same as `server_version_num`.
pub const PG_SERVER_VERSION_NUM: &str = "150000";
