//! The meta group's state machine (`raft::StateMachine`): the member list
//! (with the shard map's placement), which the cluster keeps, beside the
//! timestamp oracle's state (decisions, clock, catalog), which `txn` keeps
//! and this module passes its commands to unread. Commands and answers are
//! `MetaCommand` and `MetaApplied` of `proto/cluster.proto`.

use std::sync::{Arc, Weak};

use prost::Message;

use super::proto::meta_applied::Outcome;
use super::proto::meta_command::Command;
use super::proto::{Decommissioned, MetaApplied, MetaCommand};
use super::{Cluster, MEMBERS_KEY};
use crate::error::{Error, InputError, Result};
use crate::raft::groups::{ShardGroups, QUORUM_WAIT};
use crate::raft::{StateMachine, META_GROUP};
use crate::shard::SHARD_MAP_KEY;
use crate::storage::{EachRecord, Family, Storage, StorageBatch, View};

/// The `meta` records of the member list: `MEMBERS_KEY` is also the
/// prefix of its version's and the meta replicas' keys; the shard map is
/// where the replicas are.
const MEMBER_PREFIXES: [&[u8]; 2] = [MEMBERS_KEY, SHARD_MAP_KEY];

/// What applying a member-list command answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Changed {
    /// A join: the member's id.
    Member(u32),
    Decommissioned,
    /// Nothing changed, for this reason.
    Rejected(String),
}

impl Changed {
    fn to_proto(&self) -> Outcome {
        match self {
            Changed::Member(id) => Outcome::Member(*id),
            Changed::Decommissioned => Outcome::Decommissioned(Decommissioned {}),
            Changed::Rejected(why) => Outcome::Rejected(why.clone()),
        }
    }

    /// The answer of the meta group to a member-list command: a refusal is
    /// the caller's error.
    pub(super) fn from_answer(answer: &[u8]) -> Result<Changed> {
        match decode_answer(answer)? {
            Outcome::Member(id) => Ok(Changed::Member(id)),
            Outcome::Decommissioned(_) => Ok(Changed::Decommissioned),
            Outcome::Rejected(why) => Err(Error::input(InputError::Other, why)),
            Outcome::Oracle(_) => Err(Error::Internal(
                "the meta group answered a member-list command for the oracle".into(),
            )),
        }
    }
}

fn decode_answer(answer: &[u8]) -> Result<Outcome> {
    MetaApplied::decode(answer)
        .ok()
        .and_then(|applied| applied.outcome)
        .ok_or_else(|| Error::Internal("the meta group's answer cannot be read".into()))
}

/// The meta group command `command` of the member list.
pub(super) fn member_command(command: Command) -> Vec<u8> {
    MetaCommand {
        command: Some(command),
    }
    .encode_to_vec()
}

/// The meta group command carrying the oracle's `command`.
pub fn oracle_command(command: Vec<u8>) -> Vec<u8> {
    member_command(Command::Oracle(command))
}

/// The oracle's answer in the meta group's answer to an
/// [`oracle_command`].
pub fn oracle_answer(answer: &[u8]) -> Result<Vec<u8>> {
    match decode_answer(answer)? {
        Outcome::Oracle(answer) => Ok(answer),
        other => Err(Error::Internal(format!(
            "the meta group answered an oracle command with {other:?}"
        ))),
    }
}

/// The meta group's state machine. Weak: the cluster holds the Raft
/// groups, which hold this.
pub struct MetaMachine {
    cluster: Weak<Cluster>,
    storage: Arc<Storage>,
    oracle: Arc<dyn StateMachine>,
}

impl MetaMachine {
    pub fn new(cluster: &Arc<Cluster>, oracle: Arc<dyn StateMachine>) -> Self {
        Self {
            cluster: Arc::downgrade(cluster),
            storage: cluster.storage.clone(),
            oracle,
        }
    }

    fn cluster(&self) -> Result<Arc<Cluster>> {
        self.cluster
            .upgrade()
            .ok_or_else(|| Error::Unavailable("the node is stopping".into()))
    }
}

impl StateMachine for MetaMachine {
    fn apply(&self, command: &[u8], batch: StorageBatch) -> Result<Vec<u8>> {
        let command = MetaCommand::decode(command)
            .map_err(|e| Error::Corrupt(format!("meta group log entry: {e}")))?;
        let outcome = match command.command {
            Some(Command::Oracle(command)) => Outcome::Oracle(self.oracle.apply(&command, batch)?),
            Some(Command::Join(request)) => self.cluster()?.apply_join(&request, batch)?.to_proto(),
            Some(Command::Decommission(request)) => self
                .cluster()?
                .apply_decommission(request.node_id, batch)?
                .to_proto(),
            None => {
                self.storage.write(batch)?;
                Outcome::Rejected("a meta group command of no kind".into())
            }
        };
        Ok(MetaApplied {
            outcome: Some(outcome),
        }
        .encode_to_vec())
    }

    fn dump(&self, view: &View<'_>, each: &mut EachRecord<'_>) -> Result<()> {
        view.each_meta(&MEMBER_PREFIXES, each)?;
        self.oracle.dump(view, each)
    }

    fn clear(&self, storage: &Storage, batch: &mut StorageBatch) -> Result<()> {
        storage.delete_meta_prefixes(&MEMBER_PREFIXES, batch)?;
        self.oracle.clear(storage, batch)
    }

    fn owns(&self, family: Family, key: &[u8]) -> bool {
        let members = family == Family::Meta && MEMBER_PREFIXES.iter().any(|p| key.starts_with(p));
        members || self.oracle.owns(family, key)
    }

    fn reload(&self) -> Result<()> {
        if let Ok(cluster) = self.cluster() {
            cluster.reload_members()?;
        }
        self.oracle.reload()
    }
}

impl Cluster {
    /// Calls `call` with the node that serves the meta group now: its
    /// leader, as this node's `groups` know it. A node that turns out not
    /// to lead it, or cannot be reached, is followed by the next guess for
    /// up to [`QUORUM_WAIT`].
    pub async fn at_meta<T, F, Fut>(&self, groups: &ShardGroups, call: F) -> Result<T>
    where
        F: Fn(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let replicas = self.meta_replicas();
        let Some(&first) = replicas.first() else {
            return Err(Error::Internal(
                "the cluster's meta group has no replicas (a cluster of an older build)".into(),
            ));
        };
        let deadline = std::time::Instant::now() + QUORUM_WAIT;
        loop {
            let node = groups.leader(META_GROUP, first).await?;
            match call(node).await {
                Err(e @ (Error::NotLeader(_) | Error::NodeUnreachable(_))) => {
                    groups.missed(META_GROUP, node, &replicas);
                    if std::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                answer => return answer,
            }
        }
    }
}
