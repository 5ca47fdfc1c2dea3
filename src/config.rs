//! Node configuration: defaults, then the TOML file (`--config`), then
//! `SHARDFORGE_<SECTION>_<KEY>` environment variables, then command-line
//! flags; each later source overrides the earlier ones.
//! `config/shardforge.example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, InputError, Result};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub cluster: ClusterConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where this node keeps its RocksDB database.
    pub data_dir: PathBuf,
    /// Address of the PostgreSQL protocol listener.
    pub pg_addr: SocketAddr,
    /// Address for node-to-node RPC (the cluster control plane).
    pub rpc_addr: SocketAddr,
    /// Address of the HTTP admin endpoint (`/health`).
    pub http_addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Number of shard groups the hash space is split into when the cluster
    /// is initialised; ignored afterwards.
    pub shard_groups: u32,
    /// Replicas of every shard group (each a Raft group) when the cluster
    /// is initialised with at least this many nodes; with fewer, every node
    /// holds a replica of every group. 1: one replica of each, a Raft group
    /// of one voter. Ignored
    /// after initialisation.
    pub replication_factor: u32,
    /// A replica of a shard group snapshots its state every this many Raft
    /// log entries and drops the log behind the snapshot but the last
    /// fifth of them; a replica further behind catches up from the
    /// snapshot.
    pub raft_snapshot_entries: u64,
    /// Row versions that no snapshot in use needs any more are deleted
    /// once they are this many seconds older than the oldest snapshot in
    /// use (the cluster's GC safe point; `cluster::gc`). A transaction open
    /// longer than this on a node cut off from the meta replicas may fail
    /// with "snapshot too old".
    pub gc_retention_secs: u64,
    /// A transaction holds this many KiB of its writes in memory; beyond
    /// that it sends them ahead to their shard groups, where they wait
    /// for its commit (`txn::sent_ahead`), so its memory stays bounded
    /// whatever it writes.
    pub txn_write_buffer_kib: u64,
    /// rpc addresses (`host:port`) of the cluster's nodes. Empty: the node
    /// is a one-node cluster of its own. Otherwise it waits to be
    /// initialised (`shardforge init`) or joins the cluster they are in.
    pub join: Vec<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("shardforge-data"),
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 5432)),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 7432)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8432)),
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            shard_groups: 8,
            replication_factor: 3,
            raft_snapshot_entries: 5000,
            gc_retention_secs: 60,
            txn_write_buffer_kib: 16 * 1024,
            join: Vec::new(),
        }
    }
}

/// `a:1,b:2` as a list of addresses; blanks are skipped.
pub fn split_addrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

fn invalid(message: String) -> Error {
    Error::Input(InputError::InvalidParameterValue, message)
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            invalid(format!(
                "bad config file {}: {}",
                path.display(),
                e.message()
            ))
        })
    }

    /// Applies `SHARDFORGE_<SECTION>_<KEY>` variables from `vars`; an
    /// unknown key of a known section is an error.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<()> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("SHARDFORGE_") else {
                continue;
            };
            let bad = |e: String| invalid(format!("{name}={value}: {e}"));
            match key {
                "NODE_DATA_DIR" => self.node.data_dir = PathBuf::from(&value),
                "NODE_PG_ADDR" => {
                    self.node.pg_addr = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "NODE_RPC_ADDR" => {
                    self.node.rpc_addr = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "NODE_HTTP_ADDR" => {
                    self.node.http_addr = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_SHARD_GROUPS" => {
                    self.cluster.shard_groups = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_REPLICATION_FACTOR" => {
                    self.cluster.replication_factor =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_RAFT_SNAPSHOT_ENTRIES" => {
                    self.cluster.raft_snapshot_entries =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_GC_RETENTION_SECS" => {
                    self.cluster.gc_retention_secs =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_TXN_WRITE_BUFFER_KIB" => {
                    self.cluster.txn_write_buffer_kib =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CLUSTER_JOIN" => self.cluster.join = split_addrs(&value),
                // A typo in a known section is an error; other SHARDFORGE_*
                // variables (scripts' own, like SHARDFORGE_BIN) are not ours.
                _ if key.starts_with("NODE_") || key.starts_with("CLUSTER_") => {
                    return Err(invalid(format!("unknown setting {name}")))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<()> {
        if !(1..=4096).contains(&self.cluster.shard_groups) {
            return Err(invalid(format!(
                "cluster.shard_groups must be between 1 and 4096, not {}",
                self.cluster.shard_groups
            )));
        }
        if !(1..=7).contains(&self.cluster.replication_factor) {
            return Err(invalid(format!(
                "cluster.replication_factor must be between 1 and 7, not {}",
                self.cluster.replication_factor
            )));
        }
        if !(1..=4 * 1024 * 1024).contains(&self.cluster.txn_write_buffer_kib) {
            return Err(invalid(format!(
                "cluster.txn_write_buffer_kib must be between 1 and 4194304 (4 GiB), not {}",
                self.cluster.txn_write_buffer_kib
            )));
        }
        if self.cluster.raft_snapshot_entries == 0 {
            return Err(invalid(
                "cluster.raft_snapshot_entries must be at least 1".into(),
            ));
        }
        let addrs = [self.node.pg_addr, self.node.rpc_addr, self.node.http_addr];
        if addrs[0] == addrs[2] || addrs[0] == addrs[1] || addrs[1] == addrs[2] {
            return Err(invalid(
                "pg_addr, rpc_addr and http_addr must differ".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[node]\npg_addr = \"127.0.0.1:6000\"\n[cluster]\nshard_groups = 4\n",
        )
        .unwrap();
        let mut config = Config::from_file(&path).unwrap();
        assert_eq!(config.node.pg_addr.port(), 6000);
        assert_eq!(config.node.http_addr.port(), 8432);
        config
            .apply_env([(
                "SHARDFORGE_NODE_PG_ADDR".to_string(),
                "127.0.0.1:6001".to_string(),
            )])
            .unwrap();
        assert_eq!(config.node.pg_addr.port(), 6001);
        assert_eq!(config.cluster.shard_groups, 4);
        assert!(config
            .apply_env([("SHARDFORGE_NODE_NOPE".to_string(), "x".to_string())])
            .is_err());
        config
            .apply_env([("SHARDFORGE_BIN".to_string(), "/x".to_string())])
            .unwrap();
    }

    #[test]
    fn the_shipped_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let example = Config::from_file(&dir.join("shardforge.example.toml")).unwrap();
        assert_eq!(example, Config::default());
        for i in 1..=3 {
            let node = Config::from_file(&dir.join(format!("node{i}.toml"))).unwrap();
            node.validate().unwrap();
            assert_eq!(node.cluster.join.len(), 3);
            assert!(node.cluster.join.contains(&node.node.rpc_addr.to_string()));
        }
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[node]\npg_adr = \"x\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("pg_adr"), "{err}");
    }
}
