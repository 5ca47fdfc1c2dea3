//! End-to-end tests: the real `shardforge` binary, started in a temp dir on
//! loopback ports, reached over TCP by real drivers (tokio-postgres, sqlx) and
//! by hand-written wire bytes.
//!
//! Every test starts its own server through [`harness::TestServer`], so tests
//! can run in parallel and a crash in one cannot leak into another. Tests check
//! what a user would check — values, row counts, SQLSTATE codes — and never
//! how long something took.
//!
//! Run with `cargo test --test e2e`; a failing test prints the tail of its
//! server's log.

mod harness;

mod bad_input;
mod big_txn;
mod cancel;
mod cluster;
mod copy;
mod durability;
mod gc;
mod replication;
mod returning;
mod sql;
mod txn;
mod wire;
mod wire_bounds;
mod wire_fuzz;
