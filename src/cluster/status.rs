//! `Status`: the members, their liveness, the shard map and every live
//! member's replicas, as the oracle sees them.

use std::collections::HashMap;

use super::{member_to_proto, proto, shards_to_proto, Cluster, LIVENESS_WINDOW};
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;
use crate::raft::META_GROUP;

impl Cluster {
    /// `Status`: the oracle's view (it hears every heartbeat), from any
    /// member, through its `groups` once it runs them.
    pub async fn status(&self, groups: Option<&ShardGroups>) -> Result<proto::StatusResponse> {
        let state = self.initialised_state()?;
        let me = state.identity.node_id;
        match groups {
            Some(groups) if groups.leading_term(META_GROUP).is_none() => {
                self.at_meta(groups, |node| async move {
                    if node == me {
                        return self.status_here(Some(groups)).await;
                    }
                    self.client(&self.member_addr(node)?)?
                        .status(proto::StatusRequest {})
                        .await
                        .map(|r| r.into_inner())
                        .map_err(|s| Error::from_rpc(&format!("node {node}"), s))
                })
                .await
            }
            _ => self.status_here(groups).await,
        }
    }

    /// `Status` as this node sees it.
    async fn status_here(&self, groups: Option<&ShardGroups>) -> Result<proto::StatusResponse> {
        let state = self.initialised_state()?;
        let nodes = self.nodes_with_liveness()?;
        let mut replicas = self.local_replicas(groups);
        let others = nodes
            .iter()
            .filter(|n| n.live && n.node_id != state.identity.node_id)
            .map(|n| async move {
                let mut client = self.client(&n.rpc_addr).ok()?;
                let response = client.replicas(proto::ReplicasRequest {}).await.ok()?;
                Some(response.into_inner().replicas)
            });
        for theirs in futures::future::join_all(others)
            .await
            .into_iter()
            .flatten()
        {
            replicas.extend(theirs);
        }
        with_lag(&mut replicas);
        let meta_node_id = match groups {
            Some(groups) if !state.identity.meta_replicas.is_empty() => {
                groups.leader_now(META_GROUP, state.identity.meta_replicas[0])
            }
            _ => state.identity.meta_node,
        };
        Ok(proto::StatusResponse {
            cluster_id: state.identity.cluster_id.clone(),
            meta_node_id,
            nodes,
            shards: shards_to_proto(&state.shards),
            replicas,
        })
    }

    /// This node's replicas of the replicated shard groups (none before
    /// it runs its `groups`).
    pub fn local_replicas(&self, groups: Option<&ShardGroups>) -> Vec<proto::Replica> {
        let Some(groups) = groups else {
            return Vec::new();
        };
        let node_id = self.node_id().unwrap_or_default();
        groups
            .status()
            .into_iter()
            .map(|g| proto::Replica {
                shard_id: g.group,
                node_id,
                leader_id: g.leader.unwrap_or_default(),
                term: g.term,
                last_log_index: g.last_log_index,
                applied_index: g.applied_index,
                lag: 0,
                purged_index: g.purged_index,
            })
            .collect()
    }

    /// The members as the meta node sees them.
    pub(super) fn nodes_with_liveness(&self) -> Result<Vec<proto::Node>> {
        let state = self.initialised_state()?;
        let seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .members
            .iter()
            .map(|m| {
                if m.id == state.identity.node_id {
                    return member_to_proto(m, true, 0);
                }
                match seen.get(&m.id) {
                    Some(at) => {
                        let age = at.elapsed();
                        member_to_proto(m, age <= LIVENESS_WINDOW, age.as_millis() as u64)
                    }
                    None => member_to_proto(m, false, 0),
                }
            })
            .collect())
    }
}

/// Fills in each replica's lag behind its group's leader (when the leader
/// reported), and sorts them by group and node.
fn with_lag(replicas: &mut [proto::Replica]) {
    let leaders: HashMap<u32, u64> = replicas
        .iter()
        .filter(|r| r.leader_id == r.node_id)
        .map(|r| (r.shard_id, r.last_log_index))
        .collect();
    for replica in replicas.iter_mut() {
        if let Some(&last) = leaders.get(&replica.shard_id) {
            replica.lag = last.saturating_sub(replica.applied_index);
        }
    }
    replicas.sort_by_key(|r| (r.shard_id, r.node_id));
}
