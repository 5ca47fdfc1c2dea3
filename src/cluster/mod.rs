//! Cluster membership: which nodes form the cluster, their ids and
//! addresses, which node holds each shard group, and which nodes are alive.
//!
//! A node started without `--join` is a one-node cluster: on first start it
//! initialises itself as node 1 with every shard group. A node started with
//! `--join a,b,c` waits. `shardforge init --host a` makes node `a` node 1 and
//! the *meta node*: it checks that every other node of its join list
//! answers, numbers them 2, 3, ... in list order, spreads the shard groups
//! over all of them round-robin, and persists that in one batch. The others
//! keep asking the addresses of their join list to let them join; once one
//! of them is initialised it answers with the node's id, the member list and
//! the shard map.
//!
//! When the cluster replicates, the first three members also hold the meta
//! group (`txn::meta`): the oracle, the catalog and the member list live
//! there, so node 1 may die. A node that joins later is admitted by the
//! meta group's leader, which replicates the `Join` (`Command::Join`: the
//! next id, no shard group; moving data to it comes with rebalancing), so
//! any majority of the meta replicas can admit it. In a cluster that does
//! not replicate the meta node admits it. Members send a heartbeat every
//! second to the meta node and to every meta replica, so whichever leads
//! the meta group (the oracle) knows who is live (heard from within
//! [`LIVENESS_WINDOW`]) and records a member's changed addresses; it
//! answers `Status`, and other nodes forward `Status` to it. The member
//! list has a version: a heartbeat's answer carries a newer list, which
//! is how the members that hold no meta replica learn of a new node.
//!
//! A member that is gone for good is decommissioned
//! ([`Cluster::decommission`]): the meta group marks it removed and places
//! its replicas on other members, in the same versioned list; each group's
//! leader then makes the new replicas voters ([`Cluster::place_replicas`]).
//!
//! Each node keeps its identity in the storage `meta` family
//! (`cluster/identity`, `cluster/members`, and the shard map), so a
//! restarted node is the same member with the same data.

mod catalog_sync;
mod gc;
pub mod meta;
mod placement;
mod service;
mod status;

pub use service::ClusterService;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prost::Message;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::catalog::ID_STRIDE;
use crate::config::Config;
use crate::error::{Error, InputError, Result};
use crate::raft::groups::ShardGroups;
use crate::raft::META_GROUP;
use crate::rpc::{endpoint, ChannelPool, RPC_TIMEOUT};
use crate::shard::{load_ranges, split_hash_space, stage_ranges, ShardMap, ShardRange};
use crate::storage::{Storage, StorageBatch};
use meta::Changed;

/// The protobuf messages and gRPC stubs of `proto/cluster.proto`.
pub mod proto {
    /// prost names shard.proto's messages as if each package were a
    /// nested module: `super::shard::ShardRange`.
    use crate::shard::proto as shard;

    mod generated {
        #![allow(clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/shardforge.cluster.rs"));
    }
    pub use generated::*;
    pub use shard::ShardRange;
}

use proto::cluster_client::ClusterClient;

const IDENTITY_KEY: &[u8] = b"cluster/identity";
/// The member list; also the prefix of the meta group's records of it.
const MEMBERS_KEY: &[u8] = b"cluster/members";
const MEMBERS_VERSION_KEY: &[u8] = b"cluster/members_version";
/// The meta group's replicas, as the meta group keeps them (under the
/// member list's prefix); each node also has them in its identity.
const META_REPLICAS_KEY: &[u8] = b"cluster/members_meta_replicas";
/// The node `init` runs on, and the id of a one-node cluster.
const META_NODE: u32 = 1;
/// A member is live if the meta node heard from it this recently.
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(3);
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const JOIN_RETRY: Duration = Duration::from_millis(300);
/// How long `init` waits for the enrolled nodes to pick up their ids.
const INIT_WAIT: Duration = Duration::from_secs(15);

/// This node's place in its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    cluster_id: String,
    node_id: u32,
    meta_node: u32,
    /// The meta group's replicas; none when the cluster does not replicate.
    meta_replicas: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u32,
    pub rpc_addr: String,
    /// Empty until the node has joined (it reports its own addresses).
    pub pg_addr: String,
    pub http_addr: String,
    /// Decommissioned: gone for good, its replicas placed elsewhere.
    pub removed: bool,
}

#[derive(Debug, Clone)]
struct State {
    identity: Identity,
    members: Vec<Member>,
    /// Goes up with every change of `members` and of where the replicas
    /// are (`shards`, the meta replicas).
    members_version: u64,
    shards: Vec<ShardRange>,
}

/// This node's view of the cluster, and the meta node's registry when it is
/// the meta node.
pub struct Cluster {
    storage: Arc<Storage>,
    /// This node's own addresses, as members know it.
    me: Member,
    join: Vec<String>,
    shard_groups: u32,
    replication_factor: u32,
    state: RwLock<Option<State>>,
    initialised: watch::Sender<bool>,
    /// Meta node only: when each member was last heard from.
    last_seen: Mutex<HashMap<u32, Instant>>,
    /// When this process opened the cluster: until `LIVENESS_WINDOW` has
    /// passed, a member not heard from may still be live.
    opened: Instant,
    /// Serialises `init` calls (the meta group's log orders every later
    /// change of membership).
    changes: tokio::sync::Mutex<()>,
    /// One lazily connected channel per peer address.
    channels: Arc<ChannelPool>,
    /// The shard groups as placed now, with this node's replicas.
    shards: Arc<ShardMap>,
    /// The members' snapshot floors and the GC safe point (see `gc`).
    floors: gc::Floors,
    gc_retention_us: u64,
}

impl Cluster {
    /// Loads this node's identity from `storage`, if it has one.
    pub fn open(storage: Arc<Storage>, config: &Config) -> Result<Arc<Self>> {
        let identity = read_record::<proto::Identity>(&storage, IDENTITY_KEY)?;
        let state = match identity {
            Some(identity) => Some(State {
                identity: Identity {
                    cluster_id: identity.cluster_id,
                    node_id: identity.node_id,
                    meta_node: identity.meta_node,
                    meta_replicas: identity.meta_replicas,
                },
                members: read_members(&storage)?,
                members_version: read_members_version(&storage)?,
                shards: load_ranges(&storage)?
                    .ok_or_else(|| Error::Corrupt("the shard map is missing".into()))?,
            }),
            None => None,
        };
        let (initialised, _) = watch::channel(state.is_some());
        let ranges = state.as_ref().map_or(&[][..], |s| &s.shards);
        let shards = Arc::new(ShardMap::new(storage.clone(), ranges));
        Ok(Arc::new(Self {
            storage,
            me: Member {
                id: 0,
                rpc_addr: config.node.rpc_addr.to_string(),
                pg_addr: config.node.pg_addr.to_string(),
                http_addr: config.node.http_addr.to_string(),
                removed: false,
            },
            join: config.cluster.join.clone(),
            shard_groups: config.cluster.shard_groups,
            replication_factor: config.cluster.replication_factor,
            state: RwLock::new(state),
            initialised,
            last_seen: Mutex::new(HashMap::new()),
            opened: Instant::now(),
            changes: tokio::sync::Mutex::new(()),
            channels: Arc::default(),
            shards,
            floors: gc::Floors::default(),
            gc_retention_us: config.cluster.gc_retention_secs.saturating_mul(1_000_000),
        }))
    }

    fn state(&self) -> Option<State> {
        self.read_state(State::clone)
    }

    /// `read` of the state, in place: the paths of every statement (a
    /// channel to a member, this node's id) copy only what they need.
    fn read_state<T>(&self, read: impl FnOnce(&State) -> T) -> Option<T> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(read)
    }

    /// This node's id, once the cluster is initialised.
    pub fn node_id(&self) -> Option<u32> {
        self.read_state(|s| s.identity.node_id)
    }

    pub fn is_initialised(&self) -> bool {
        *self.initialised.borrow()
    }

    /// The other nodes of the join list (this node may be listed too).
    fn peers(&self) -> Vec<String> {
        self.join
            .iter()
            .filter(|a| **a != self.me.rpc_addr)
            .cloned()
            .collect()
    }

    /// Makes the node part of a cluster: at once for a one-node cluster;
    /// otherwise by joining (or being initialised by `shardforge init`),
    /// which this waits for, until `stop` turns true.
    pub async fn ensure_initialised(
        self: &Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<bool> {
        if self.is_initialised() {
            return Ok(true);
        }
        if self.join.is_empty() {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.bootstrap(Vec::new())).await??;
            return Ok(true);
        }
        tracing::info!(
            join = ?self.join,
            "waiting to join a cluster; run `shardforge init --host <rpc addr>` on one node to create it"
        );
        let mut initialised = self.initialised.subscribe();
        loop {
            if self.is_initialised() {
                return Ok(true);
            }
            for peer in self.peers() {
                match self.try_join(&peer).await {
                    Ok(()) => return Ok(true),
                    Err(e) => tracing::debug!(%peer, error = %e, "not joined yet"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(JOIN_RETRY) => {}
                _ = initialised.changed() => {}
                _ = stop.wait_for(|s| *s) => return Ok(false),
            }
        }
    }

    /// Creates the cluster with this node as node 1 and meta node, and
    /// `peers` as the next members; spreads the shard groups over them.
    /// Blocks on disk.
    fn bootstrap(&self, peers: Vec<String>) -> Result<State> {
        let mut members = vec![Member {
            id: META_NODE,
            ..self.me.clone()
        }];
        for (i, rpc_addr) in peers.into_iter().enumerate() {
            members.push(Member {
                id: META_NODE + 1 + i as u32,
                rpc_addr,
                pg_addr: String::new(),
                http_addr: String::new(),
                removed: false,
            });
        }
        // A data directory from before clusters keeps its split.
        let mut shards = match load_ranges(&self.storage)? {
            Some(shards) => shards,
            None => split_hash_space(self.shard_groups)?,
        };
        // Group i's replicas are members i, i+1, ... (round-robin), so
        // the first replicas, which start as leaders, are spread too. Every
        // group is a Raft group, of one voter without replication: growing
        // is adding voters, not another way of committing.
        let factor = (self.replication_factor as usize).min(members.len());
        for (i, shard) in shards.iter_mut().enumerate() {
            shard.node = members[i % members.len()].id;
            shard.replicas = (0..factor)
                .map(|r| members[(i + r) % members.len()].id)
                .collect();
        }
        // The meta group lives on the first members (at most three).
        let meta_replicas = members.iter().take(factor.min(3)).map(|m| m.id).collect();
        let state = State {
            identity: Identity {
                cluster_id: new_cluster_id(),
                node_id: META_NODE,
                meta_node: META_NODE,
                meta_replicas,
            },
            members,
            members_version: 1,
            shards,
        };
        self.persist(state.clone(), self.storage.batch())?;
        tracing::info!(cluster = %state.identity.cluster_id, nodes = state.members.len(), "cluster initialised");
        Ok(state)
    }

    /// Writes `state` with `batch` and makes it this node's. Blocks on disk.
    fn persist(&self, state: State, mut batch: StorageBatch) -> Result<()> {
        let identity = &state.identity;
        let record = proto::Identity {
            cluster_id: identity.cluster_id.clone(),
            node_id: identity.node_id,
            meta_node: identity.meta_node,
            meta_replicas: identity.meta_replicas.clone(),
        };
        batch.put_meta(IDENTITY_KEY, &record.encode_to_vec());
        let members = proto::MemberList {
            nodes: state
                .members
                .iter()
                .map(|m| member_to_proto(m, false, 0))
                .collect(),
        };
        batch.put_meta(MEMBERS_KEY, &members.encode_to_vec());
        batch.put_meta(MEMBERS_VERSION_KEY, &state.members_version.to_be_bytes());
        let meta_replicas = proto::MetaReplicas {
            nodes: identity.meta_replicas.clone(),
        };
        batch.put_meta(META_REPLICAS_KEY, &meta_replicas.encode_to_vec());
        stage_ranges(&state.shards, &mut batch)?;
        self.storage.write(batch)?;
        self.shards.place(&state.shards);
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Some(state);
        self.initialised.send_replace(true);
        Ok(())
    }

    async fn persist_off_runtime(self: &Arc<Self>, state: State) -> Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.persist(state, this.storage.batch())).await?
    }

    async fn try_join(self: &Arc<Self>, peer: &str) -> Result<()> {
        let response = self
            .client(peer)?
            .join(proto::JoinRequest {
                rpc_addr: self.me.rpc_addr.clone(),
                pg_addr: self.me.pg_addr.clone(),
                http_addr: self.me.http_addr.clone(),
            })
            .await
            .map_err(|s| Error::from_rpc(&format!("node at {peer}"), s))?
            .into_inner();
        let state = State {
            identity: Identity {
                cluster_id: response.cluster_id,
                node_id: response.node_id,
                meta_node: response.meta_node_id,
                meta_replicas: response.meta_replicas,
            },
            members: response.nodes.into_iter().map(member_from_proto).collect(),
            members_version: response.members_version,
            shards: shards_from_proto(response.shards),
        };
        tracing::info!(node = state.identity.node_id, cluster = %state.identity.cluster_id, "joined the cluster");
        self.persist_off_runtime(state).await
    }

    /// `Init`: see the module docs.
    pub async fn init(self: &Arc<Self>) -> Result<proto::InitResponse> {
        let change = self.changes.lock().await;
        if self.is_initialised() {
            return Err(Error::input(
                InputError::Other,
                "the cluster is already initialised",
            ));
        }
        let peers = self.peers();
        for peer in &peers {
            self.client(peer)?
                .ping(proto::PingRequest {})
                .await
                .map_err(|s| Error::from_rpc(&format!("node at {peer}"), s))?;
        }
        let this = self.clone();
        let state = tokio::task::spawn_blocking(move || this.bootstrap(peers)).await??;
        drop(change);
        // The enrolled nodes pick up their ids by joining; wait for them, so
        // that the answer shows a working cluster.
        let deadline = Instant::now() + INIT_WAIT;
        while Instant::now() < deadline {
            let joined = self
                .state()
                .is_some_and(|s| s.members.iter().all(|m| !m.pg_addr.is_empty()));
            if joined {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(proto::InitResponse {
            cluster_id: state.identity.cluster_id.clone(),
            nodes: self.nodes_with_liveness()?,
        })
    }

    /// `Join`: a member the cluster was created with (or any member asking
    /// again) is answered by any member, from its own state: when `init`
    /// enrolls the first members, the meta group they will form has no
    /// quorum yet. A new node is admitted by the meta group (see
    /// [`Self::admit`]) through this node's `groups`, once it runs them.
    pub async fn join(
        self: &Arc<Self>,
        groups: Option<&ShardGroups>,
        request: proto::JoinRequest,
    ) -> Result<proto::JoinResponse> {
        let state = self.initialised_state()?;
        if let Some(member) = state
            .members
            .iter()
            .find(|m| m.rpc_addr == request.rpc_addr)
        {
            if member.removed {
                return Err(Error::input(
                    InputError::Other,
                    format!("node {} was decommissioned: start a node with an empty data directory to join again", member.id),
                ));
            }
            // Its heartbeats record its addresses.
            return Ok(join_response(&state, member.id));
        }
        let groups =
            groups.ok_or_else(|| Error::Unavailable("this node does not serve yet".into()))?;
        self.admit(groups, request).await
    }

    /// Records `request` (a node joining, or a member's new addresses) in
    /// the member list: the meta group's leader replicates it; other nodes
    /// forward it there. Answers with the member's id and the new list.
    async fn admit(
        self: &Arc<Self>,
        groups: &ShardGroups,
        request: proto::JoinRequest,
    ) -> Result<proto::JoinResponse> {
        let me = self.initialised_state()?.identity.node_id;
        self.at_meta(groups, |node| {
            let request = request.clone();
            async move {
                if node != me {
                    return self
                        .client(&self.member_addr(node)?)?
                        .join(request)
                        .await
                        .map(|r| r.into_inner())
                        .map_err(|s| Error::from_rpc(&format!("node {node}"), s));
                }
                let command = meta::member_command(proto::meta_command::Command::Join(request));
                match Changed::from_answer(&groups.propose(META_GROUP, command).await?)? {
                    Changed::Member(id) => {
                        self.seen(id);
                        tracing::info!(node = id, "member recorded");
                        Ok(join_response(&self.initialised_state()?, id))
                    }
                    Changed::Rejected(message) => Err(Error::input(InputError::Other, message)),
                    other => Err(Error::Internal(format!("a join answered {other:?}"))),
                }
            }
        })
        .await
    }

    /// Applies a `Join` (see [`Self::admit`]) with `batch`: the member gets
    /// the next id, or its new addresses. Blocks on disk.
    fn apply_join(&self, request: &proto::JoinRequest, batch: StorageBatch) -> Result<Changed> {
        let mut state = self.initialised_state()?;
        let id = match state
            .members
            .iter_mut()
            .find(|m| m.rpc_addr == request.rpc_addr)
        {
            Some(member) => {
                member.pg_addr.clone_from(&request.pg_addr);
                member.http_addr.clone_from(&request.http_addr);
                member.id
            }
            None => {
                let id = state.members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
                // Node ids pick the table ids a node hands out.
                if id >= ID_STRIDE {
                    self.storage.write(batch)?;
                    return Ok(Changed::Rejected(format!(
                        "a cluster has at most {} nodes",
                        ID_STRIDE - 1
                    )));
                }
                state.members.push(Member {
                    id,
                    rpc_addr: request.rpc_addr.clone(),
                    pg_addr: request.pg_addr.clone(),
                    http_addr: request.http_addr.clone(),
                    removed: false,
                });
                id
            }
        };
        state.members_version += 1;
        self.persist(state, batch)?;
        Ok(Changed::Member(id))
    }

    /// Reads the member list again after a meta snapshot replaced it.
    /// Blocks on disk.
    fn reload_members(&self) -> Result<()> {
        let Some(mut state) = self.state() else {
            return Ok(());
        };
        state.members = read_members(&self.storage)?;
        state.members_version = read_members_version(&self.storage)?;
        if let Some(meta_replicas) =
            read_record::<proto::MetaReplicas>(&self.storage, META_REPLICAS_KEY)?
        {
            state.identity.meta_replicas = meta_replicas.nodes;
        }
        if let Some(shards) = load_ranges(&self.storage)? {
            state.shards = shards;
        }
        self.persist(state, self.storage.batch())
    }

    /// `Heartbeat`, on the meta node and the meta replicas: only members of
    /// this cluster count. The oracle records the sender's addresses when
    /// they changed (this node leads the meta group in its `groups`). The
    /// answer carries this node's member list when it is newer than the
    /// sender's.
    pub async fn heartbeat(
        self: &Arc<Self>,
        groups: Option<&ShardGroups>,
        request: proto::HeartbeatRequest,
    ) -> Result<proto::HeartbeatResponse> {
        let state = self.initialised_state()?;
        let member = state
            .members
            .iter()
            .find(|m| m.id == request.node_id && !m.removed);
        let Some(member) = member.filter(|_| request.cluster_id == state.identity.cluster_id)
        else {
            return Err(Error::input(
                InputError::Other,
                format!(
                    "node {} of cluster {:?} is not a member of this cluster",
                    request.node_id, request.cluster_id
                ),
            ));
        };
        self.seen(request.node_id);
        self.record_floor(request.node_id, request.snapshot_floor);
        let moved = (&member.pg_addr, &member.http_addr) != (&request.pg_addr, &request.http_addr);
        let oracle = groups.filter(|g| moved && g.leading_term(META_GROUP).is_some());
        if let Some(groups) = oracle {
            let change = proto::JoinRequest {
                rpc_addr: member.rpc_addr.clone(),
                pg_addr: request.pg_addr.clone(),
                http_addr: request.http_addr.clone(),
            };
            if let Err(e) = self.admit(groups, change).await {
                tracing::warn!(node = request.node_id, error = %e, "could not record a member's addresses");
            }
        }
        let state = self.initialised_state()?;
        let gc_safe_point = self.safe_point_here(&state);
        if state.members_version <= request.members_version {
            return Ok(proto::HeartbeatResponse {
                gc_safe_point,
                ..Default::default()
            });
        }
        Ok(proto::HeartbeatResponse {
            gc_safe_point,
            members_version: state.members_version,
            nodes: state
                .members
                .iter()
                .map(|m| member_to_proto(m, false, 0))
                .collect(),
            shards: shards_to_proto(&state.shards),
            meta_replicas: state.identity.meta_replicas.clone(),
        })
    }

    fn seen(&self, node: u32) {
        self.last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, Instant::now());
    }

    /// Sends a heartbeat every second to every other node that hears
    /// them (the meta node and the meta replicas), until `stop`; takes the
    /// newest member list their answers carry.
    pub async fn heartbeats(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if let Some(state) = self.state() {
                let listeners = state
                    .members
                    .iter()
                    .filter(|m| m.id != state.identity.node_id && !m.removed)
                    .filter(|m| hears_heartbeats(&state.identity, m.id));
                let sent = listeners.map(|m| self.send_heartbeat(&state, m));
                let mut newest = proto::HeartbeatResponse::default();
                for answer in futures::future::join_all(sent).await {
                    if let Ok(answer) = &answer {
                        self.told_safe_point(answer.gc_safe_point);
                    }
                    match answer {
                        Ok(answer) if answer.members_version > newest.members_version => {
                            newest = answer;
                        }
                        Ok(_) => {}
                        Err((failed, e)) => {
                            tracing::warn!(node = failed, error = %e, "heartbeat failed")
                        }
                    }
                }
                if let Err(e) = self.take_members(newest).await {
                    tracing::warn!(error = %e, "could not take the newer member list");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn send_heartbeat(
        &self,
        state: &State,
        to: &Member,
    ) -> std::result::Result<proto::HeartbeatResponse, (u32, Error)> {
        let client = self.client(&to.rpc_addr).map_err(|e| (to.id, e))?;
        client
            .clone()
            .heartbeat(proto::HeartbeatRequest {
                cluster_id: state.identity.cluster_id.clone(),
                node_id: state.identity.node_id,
                pg_addr: self.me.pg_addr.clone(),
                http_addr: self.me.http_addr.clone(),
                members_version: state.members_version,
                snapshot_floor: self.local_floor(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| (to.id, Error::from_rpc(&format!("node {}", to.id), s)))
    }

    /// Makes the member list of a heartbeat's answer this node's, if it is
    /// newer, unless this node keeps the list itself (a meta replica
    /// changes it by applying the meta group's log only).
    async fn take_members(self: &Arc<Self>, answer: proto::HeartbeatResponse) -> Result<()> {
        let mut state = self.initialised_state()?;
        if answer.members_version <= state.members_version || keeps_members(&state.identity) {
            return Ok(());
        }
        state.members = answer.nodes.into_iter().map(member_from_proto).collect();
        state.members_version = answer.members_version;
        state.shards = shards_from_proto(answer.shards);
        state.identity.meta_replicas = answer.meta_replicas;
        tracing::info!(
            version = state.members_version,
            nodes = state.members.len(),
            "took a newer member list"
        );
        self.persist_off_runtime(state).await
    }

    /// The shard groups as placed now, with this node's replicas.
    pub fn shards(&self) -> &Arc<ShardMap> {
        &self.shards
    }

    /// Refuses a call from a node of another cluster.
    fn check_cluster(&self, cluster_id: &str) -> Result<()> {
        let state = self.initialised_state()?;
        match cluster_id == state.identity.cluster_id {
            true => Ok(()),
            false => Err(Error::input(
                InputError::Other,
                format!("a call from outside cluster {}", state.identity.cluster_id),
            )),
        }
    }

    /// `Ping`: the cluster id, empty before initialisation.
    pub fn cluster_id(&self) -> String {
        self.state()
            .map(|s| s.identity.cluster_id)
            .unwrap_or_default()
    }

    fn initialised_state(&self) -> Result<State> {
        self.state().ok_or_else(|| {
            Error::Unavailable(
                "this node is not part of an initialised cluster yet (run `shardforge init`)"
                    .into(),
            )
        })
    }

    /// The rpc address of member `node`.
    fn member_addr(&self, node: u32) -> Result<String> {
        self.read_state(|s| {
            (s.members.iter())
                .find(|m| m.id == node)
                .map(|m| m.rpc_addr.clone())
        })
        .flatten()
        .ok_or_else(|| Error::NodeUnreachable(format!("node {node} is not a member")))
    }

    /// The node's channels to its peers, which its Raft groups share.
    pub fn channel_pool(&self) -> Arc<ChannelPool> {
        self.channels.clone()
    }

    /// Every member's rpc address, by node id.
    pub fn member_addrs(&self) -> HashMap<u32, String> {
        self.state()
            .map(|s| s.members.into_iter().map(|m| (m.id, m.rpc_addr)).collect())
            .unwrap_or_default()
    }

    /// The PostgreSQL address of member `id`, once it has joined.
    pub fn pg_addr(&self, id: u32) -> Option<String> {
        self.read_state(|s| {
            let member = s.members.iter().find(|m| m.id == id)?;
            (!member.pg_addr.is_empty() && !member.removed).then(|| member.pg_addr.clone())
        })
        .flatten()
    }

    /// A client over the pooled channel to `addr`.
    fn client(&self, addr: &str) -> Result<ClusterClient<Channel>> {
        Ok(ClusterClient::new(self.pooled_channel(addr)?))
    }

    /// The one channel to `addr`, connected on first use.
    fn pooled_channel(&self, addr: &str) -> Result<Channel> {
        self.channels.get(addr)
    }
}

/// What transactions use of the cluster.
impl Cluster {
    /// The meta group's replicas (none before the cluster is initialised).
    pub fn meta_replicas(&self) -> Vec<u32> {
        self.state()
            .map(|s| s.identity.meta_replicas)
            .unwrap_or_default()
    }

    /// The pooled channel to member `node`.
    pub fn channel(&self, node: u32) -> Result<Channel> {
        self.pooled_channel(&self.member_addr(node)?)
    }
}

/// Whether node `node` hears the heartbeats of the cluster of `identity`:
/// the meta node and the meta replicas do.
fn hears_heartbeats(identity: &Identity, node: u32) -> bool {
    node == identity.meta_node || identity.meta_replicas.contains(&node)
}

/// Whether the node of `identity` keeps the member list: it holds a meta
/// replica, or it is the meta node of a cluster that does not replicate.
fn keeps_members(identity: &Identity) -> bool {
    match identity.meta_replicas.is_empty() {
        true => identity.node_id == identity.meta_node,
        false => identity.meta_replicas.contains(&identity.node_id),
    }
}

/// The endpoint of a node's rpc address, with the timeouts every call uses.
/// A client for one call to the node at `addr` (the `init` and `status`
/// commands); `init` waits for the nodes it enrolls.
pub async fn connect(addr: &str) -> Result<ClusterClient<Channel>> {
    let channel = endpoint(addr)?
        .timeout(INIT_WAIT + RPC_TIMEOUT)
        .connect()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach the node at {addr}: {e}")))?;
    Ok(ClusterClient::new(channel))
}

/// The answer to a `Join` of member `id`.
fn join_response(state: &State, id: u32) -> proto::JoinResponse {
    proto::JoinResponse {
        cluster_id: state.identity.cluster_id.clone(),
        node_id: id,
        meta_node_id: state.identity.meta_node,
        nodes: state
            .members
            .iter()
            .map(|m| member_to_proto(m, false, 0))
            .collect(),
        shards: shards_to_proto(&state.shards),
        meta_replicas: state.identity.meta_replicas.clone(),
        members_version: state.members_version,
    }
}

fn member_to_proto(m: &Member, live: bool, last_seen_ms: u64) -> proto::Node {
    proto::Node {
        node_id: m.id,
        rpc_addr: m.rpc_addr.clone(),
        pg_addr: m.pg_addr.clone(),
        http_addr: m.http_addr.clone(),
        live: live && !m.removed,
        last_seen_ms,
        removed: m.removed,
    }
}

fn member_from_proto(n: proto::Node) -> Member {
    Member {
        id: n.node_id,
        rpc_addr: n.rpc_addr,
        pg_addr: n.pg_addr,
        http_addr: n.http_addr,
        removed: n.removed,
    }
}

fn shards_from_proto(shards: Vec<proto::ShardRange>) -> Vec<ShardRange> {
    shards.into_iter().map(ShardRange::from).collect()
}

fn shards_to_proto(shards: &[ShardRange]) -> Vec<proto::ShardRange> {
    shards.iter().map(proto::ShardRange::from).collect()
}

/// A cluster id unique enough to tell clusters apart: the time and the
/// process, hashed.
fn new_cluster_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = format!("{nanos}-{}", std::process::id());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}{:08x}", nanos as u32)
}

/// The `meta` record `key`, a protobuf message `M`, if there is one.
fn read_record<M: prost::Message + Default>(storage: &Storage, key: &[u8]) -> Result<Option<M>> {
    storage
        .get_meta(key)?
        .map(|raw| {
            M::decode(raw.as_slice())
                .map_err(|e| Error::Corrupt(format!("{}: {e}", String::from_utf8_lossy(key))))
        })
        .transpose()
}

fn read_members(storage: &Storage) -> Result<Vec<Member>> {
    let list = read_record::<proto::MemberList>(storage, MEMBERS_KEY)?.unwrap_or_default();
    Ok(list.nodes.into_iter().map(member_from_proto).collect())
}

fn read_members_version(storage: &Storage) -> Result<u64> {
    match storage.get_meta(MEMBERS_VERSION_KEY)? {
        None => Ok(0),
        Some(raw) => <[u8; 8]>::try_from(raw.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt("the member list's version".into())),
    }
}
