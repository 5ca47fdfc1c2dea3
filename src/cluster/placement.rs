//! Decommissioning a member and placing its replicas elsewhere (see the
//! module docs of `cluster`): the meta group's leader checks and proposes
//! it, every meta replica applies it alike, and each node's Raft groups
//! follow the new placement.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::meta::{member_command, Changed};
use super::proto::meta_command::Command;
use super::{proto, shards_to_proto, Cluster, State, HEARTBEAT_INTERVAL, LIVENESS_WINDOW};
use crate::error::{Error, InputError, Result};
use crate::raft::groups::ShardGroups;
use crate::raft::META_GROUP;
use crate::storage::StorageBatch;

/// How long a group's leader waits for a new replica to catch up before
/// it tries again (see [`Cluster::place_replicas`]).
const PLACE_WAIT: Duration = Duration::from_secs(60);

impl Cluster {
    /// `Decommission` (see [`Self::apply_decommission`]): on the meta
    /// group's leader, which checks that the node is down (it hears every
    /// member's heartbeats); other nodes forward it there. Only a cluster
    /// that replicates has copies to re-create a node's replicas from.
    pub async fn decommission(
        self: &Arc<Self>,
        groups: &ShardGroups,
        node: u32,
    ) -> Result<proto::DecommissionResponse> {
        let state = self.initialised_state()?;
        if state.identity.meta_replicas.is_empty() {
            return Err(Error::input(
                InputError::Unsupported,
                "a cluster that does not replicate holds one copy of each shard group: \
                 a node's cannot be re-created elsewhere",
            ));
        }
        let me = state.identity.node_id;
        self.at_meta(groups, |leader| async move {
                    if leader != me {
                        return self
                            .client(&self.member_addr(leader)?)?
                            .decommission(proto::DecommissionRequest { node_id: node })
                            .await
                            .map(|r| r.into_inner())
                            .map_err(|s| Error::from_rpc(&format!("node {leader}"), s));
                    }
                    if self.opened.elapsed() < LIVENESS_WINDOW {
                        return Err(Error::Unavailable(format!(
                            "the meta group's leader started too recently to know whether \
                             node {node} is live; try again in a few seconds"
                        )));
                    }
                    let live = self
                        .nodes_with_liveness()?
                        .iter()
                        .any(|n| n.node_id == node && n.live);
                    if live {
                        return Err(Error::input(
                            InputError::Other,
                            format!("node {node} is live: only a node that is down for good is decommissioned (stop it first)"),
                        ));
                    }
                    let command = member_command(Command::Decommission(
                        proto::DecommissionRequest { node_id: node },
                    ));
                    match Changed::from_answer(&groups.propose(META_GROUP, command).await?)? {
                        Changed::Decommissioned => {
                            tracing::info!(node, "node decommissioned");
                            let state = self.initialised_state()?;
                            Ok(proto::DecommissionResponse {
                                shards: shards_to_proto(&state.shards),
                                meta_replicas: state.identity.meta_replicas,
                            })
                        }
                        other => Err(Error::Internal(format!("a decommission answered {other:?}"))),
                    }
        })
        .await
    }

    /// Applies a `Decommission` of `node` with `batch`: it is marked
    /// removed, and its replicas go to other members ([`place_elsewhere`]);
    /// every meta replica computes the same. The groups' leaders then
    /// change their voters ([`Self::place_replicas`]). Blocks on disk.
    pub(super) fn apply_decommission(&self, node: u32, batch: StorageBatch) -> Result<Changed> {
        let mut state = self.initialised_state()?;
        let Some(member) = state
            .members
            .iter_mut()
            .find(|m| m.id == node && !m.removed)
        else {
            self.storage.write(batch)?;
            return Ok(Changed::Rejected(format!("node {node} is not a member")));
        };
        member.removed = true;
        place_elsewhere(&mut state, node);
        state.members_version += 1;
        self.persist(state, batch)?;
        Ok(Changed::Decommissioned)
    }

    /// Every second until `stop`, makes this node's Raft groups match the
    /// placement: it opens its replica of each group placed on it that it
    /// does not run yet (empty: the group's leader adds it), and, as the
    /// leader of a group whose voters differ from its placement, changes
    /// them (adding new replicas as learners first: see
    /// `ShardGroups::change_replicas`); a leader hands each group back to
    /// its first replica as placed now.
    pub async fn place_replicas(
        self: Arc<Self>,
        groups: Arc<ShardGroups>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let Some(state) = self.state() else {
                continue;
            };
            let me = state.identity.node_id;
            let addrs = self.member_addrs();
            let placed = state
                .shards
                .iter()
                .map(|s| (s.id.0, &s.replicas))
                .chain([(META_GROUP, &state.identity.meta_replicas)]);
            for (group, replicas) in placed.filter(|(_, r)| !r.is_empty()) {
                let changed = if !groups.holds(group) {
                    match replicas.contains(&me) {
                        true => groups.open(group, replicas, None).await,
                        false => Ok(()),
                    }
                } else if groups.leading_term(group).is_some() {
                    if let Some(&first) = replicas.first() {
                        groups.prefer(group, first);
                    }
                    let change = groups.change_replicas(group, replicas, &addrs);
                    match tokio::time::timeout(PLACE_WAIT, change).await {
                        Ok(changed) => changed.map(|_| ()),
                        Err(_) => Err(Error::Unavailable(format!(
                            "a new replica did not catch up within {} s",
                            PLACE_WAIT.as_secs()
                        ))),
                    }
                } else {
                    Ok(())
                };
                if let Err(e) = changed {
                    tracing::warn!(group, error = %e, "could not place a group's replicas yet");
                }
            }
        }
    }
}

/// Moves `node`'s replicas (of shard groups, of the meta group) in `state`
/// to the members not removed: each to the one holding the fewest replicas
/// (then the lowest id) among those not holding one of that group, appended
/// to the group's replicas; without such a member the group keeps one
/// replica fewer.
fn place_elsewhere(state: &mut State, node: u32) {
    let mut load: std::collections::BTreeMap<u32, usize> = state
        .members
        .iter()
        .filter(|m| !m.removed && m.id != node)
        .map(|m| (m.id, 0))
        .collect();
    let placed = state.shards.iter().map(|s| &s.replicas);
    for id in placed.chain([&state.identity.meta_replicas]).flatten() {
        if let Some(n) = load.get_mut(id) {
            *n += 1;
        }
    }
    let mut replace = |replicas: &mut Vec<u32>| {
        let Some(at) = replicas.iter().position(|&r| r == node) else {
            return;
        };
        replicas.remove(at);
        let spare = load
            .iter()
            .filter(|(id, _)| !replicas.contains(id))
            .min_by_key(|(&id, &n)| (n, id))
            .map(|(&id, _)| id);
        if let Some(spare) = spare {
            replicas.push(spare);
            load.entry(spare).and_modify(|n| *n += 1);
        }
    };
    for shard in &mut state.shards {
        replace(&mut shard.replicas);
        if let Some(&first) = shard.replicas.first() {
            shard.node = first;
        }
    }
    replace(&mut state.identity.meta_replicas);
}

#[cfg(test)]
mod tests {
    use super::super::{Identity, Member};
    use super::*;
    use crate::shard::{ShardId, ShardRange};

    /// Members 1..=`nodes`, groups placed as `groups`, meta group on 1-3.
    fn state(nodes: u32, groups: &[&[u32]]) -> State {
        State {
            identity: Identity {
                cluster_id: "c".into(),
                node_id: 1,
                meta_node: 1,
                meta_replicas: vec![1, 2, 3],
            },
            members: (1..=nodes)
                .map(|id| Member {
                    id,
                    rpc_addr: format!("n{id}"),
                    pg_addr: String::new(),
                    http_addr: String::new(),
                    removed: false,
                })
                .collect(),
            members_version: 1,
            shards: groups
                .iter()
                .enumerate()
                .map(|(i, replicas)| ShardRange {
                    id: ShardId(i as u32),
                    hash_start: 0,
                    hash_end: 0,
                    node: replicas[0],
                    replicas: replicas.to_vec(),
                })
                .collect(),
        }
    }

    fn placement(state: &State) -> Vec<Vec<u32>> {
        state.shards.iter().map(|s| s.replicas.clone()).collect()
    }

    #[test]
    fn a_decommissioned_nodes_replicas_go_to_the_least_loaded_others() {
        // Node 5 holds one replica, node 4 two: node 5 gets the first
        // replica of node 1, then they alternate by load.
        let mut s = state(
            5,
            &[&[1, 2, 3], &[2, 3, 4], &[1, 3, 4], &[1, 2, 5], &[2, 3, 1]],
        );
        s.members[0].removed = true;
        place_elsewhere(&mut s, 1);
        assert_eq!(
            placement(&s),
            vec![
                vec![2, 3, 5],
                vec![2, 3, 4],
                vec![3, 4, 5],
                vec![2, 5, 4],
                vec![2, 3, 4],
            ]
        );
        // The first replica, which starts as the group's leader, moves on.
        assert_eq!(s.shards[0].node, 2);
        assert_eq!(s.identity.meta_replicas, vec![2, 3, 5]);
    }

    #[test]
    fn without_a_spare_node_a_group_keeps_one_replica_fewer() {
        let mut s = state(3, &[&[1, 2, 3], &[3, 1, 2]]);
        s.members[2].removed = true;
        place_elsewhere(&mut s, 3);
        assert_eq!(placement(&s), vec![vec![1, 2], vec![1, 2]]);
        assert_eq!(s.shards[1].node, 1);
        assert_eq!(s.identity.meta_replicas, vec![1, 2]);
    }
}
