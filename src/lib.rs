//! ShardForge: a distributed SQL database that speaks the PostgreSQL wire
//! protocol. See `docs/architecture.md` for the map of the modules and the
//! path of one query through them.
//!
//! Dependency direction (a module only uses those to its right):
//! `pg → sql → (catalog, txn, shard) → storage → encoding → error`;
//! `server` and the CLI wire everything together.

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod encoding;
pub mod error;
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
