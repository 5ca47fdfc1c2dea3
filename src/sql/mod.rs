//! The SQL layer: from a statement's text to rows or a command tag.
//!
//! One query's path, for `SELECT v FROM t WHERE k = 5` in autocommit mode:
//!
//! 1. [`Session::parse`] parses the text (PostgreSQL dialect plus the
//!    datafusion-pg-catalog rewrites psql and drivers rely on).
//! 2. [`Session::execute`] opens a transaction (snapshot = newest commit)
//!    in the connection's [`session_txn::SessionTxn`] and hands the
//!    statement to DataFusion.
//! 3. DataFusion resolves `t` through [`provider::ShardSchemaProvider`]; the
//!    [`provider::ShardedTableProvider`] sees `k = 5` pins the primary key and
//!    plans a [`scan::ShardScanExec`] over that key's one shard group (without
//!    it, one partition per group).
//! 4. Executing the plan streams Arrow batches decoded by the shard
//!    replica; the pg front end encodes them as DataRows.
//!
//! Writes: DataFusion plans INSERT and the session writes the rows its
//! source gives through [`write::RowWriter`];
//! UPDATE and DELETE are planned as SELECTs ([`dml`]); CREATE / DROP TABLE
//! go into the transaction too ([`ddl`]); all writes land in the
//! transaction's buffer and reach storage at COMMIT (see `txn`).

pub mod aggregate_overload;
pub mod analyze;
pub mod array_literal;
pub mod bpchar;
pub mod bytea;
pub mod cancel;
pub mod catalog_queries;
pub mod checked;
pub mod copy;
pub mod cursor;
pub mod datetime;
pub mod ddl;
pub mod distinct_values;
pub mod dml;
pub mod engine;
pub mod errors;
pub mod float_aggregates;
pub mod float_checks;
pub mod functions;
pub mod interval;
pub mod json;
pub mod lateral;
pub mod literals;
pub mod names;
pub mod numeric;
pub mod operators;
pub mod ordered_input;
pub mod output;
pub mod parse_rules;
pub mod pg_catalog;
pub mod plain;
pub mod point;
pub mod point_insert;
pub mod point_update;
pub mod provider;
pub mod query_runtime;
pub mod records;
pub mod regclass;
pub mod returning;
pub mod rewrite;
pub mod scan;
pub mod session;
pub mod session_txn;
pub mod setops;
pub mod subqueries;
pub mod system_tables;
pub mod time_zones;
pub mod using_joins;
pub mod uuid;
pub mod vars;
pub mod window_frames;
pub mod wire_types;
pub mod write;

pub use engine::SqlEngine;
pub use session::{Output, Session, TxnState};
