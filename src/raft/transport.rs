//! Raft messages between the replicas of a group, over gRPC
//! (`proto/raft.proto`).
//!
//! A node serves one `RaftTransport` for every group it holds: each message
//! names its group, and the service hands it to that group's `Raft`. The
//! openraft request and its answer travel as JSON (openraft's types are
//! serde); the answer is `Result<T, String>`, where an error is the remote
//! group's failure. Only members of the cluster are served (`crate::rpc`).
//!
//! The sending side keeps one pooled channel per peer address for all
//! groups. A peer that cannot be reached, or whose group failed, is
//! `Unreachable` to openraft (which backs off); anything else is a
//! `NetworkError` (retried soon). A snapshot travels whole in one message
//! of at most `rpc::MAX_MESSAGE_BYTES`.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, OnceLock, RwLock};

use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::state_machine::GroupMachine;
use super::{GroupId, ShardRaft};
use crate::rpc::{as_member, check_member, ChannelPool, MAX_MESSAGE_BYTES};

pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/shardforge.raft.rs"));
}

use proto::raft_transport_client::RaftTransportClient;
use proto::raft_transport_server::{RaftTransport, RaftTransportServer};
use proto::RaftMessage;

/// A shard group's Raft.
pub type GroupRaft = openraft::Raft<ShardRaft, GroupMachine>;

type Answer<T> = std::result::Result<T, String>;

/// What a `RaftTransport` handler returns.
type Served = std::result::Result<Response<RaftMessage>, Status>;

fn to_json(value: &impl Serialize) -> std::result::Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(format!("raft message: {e}")))
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, Status> {
    serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))
}

/// Serves the Raft groups of this node to the other members of its cluster.
/// It is served from the start (with the other RPCs); it knows its cluster
/// once the node is part of one ([`Self::ready`]) and answers UNAVAILABLE
/// before.
#[derive(Default)]
pub struct RaftService {
    cluster_id: OnceLock<String>,
    groups: RwLock<HashMap<GroupId, GroupRaft>>,
}

impl RaftService {
    pub fn ready(&self, cluster_id: String) {
        let _ = self.cluster_id.set(cluster_id);
    }

    pub fn server(self: &Arc<Self>) -> RaftTransportServer<Self> {
        RaftTransportServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Serves `raft` as group `group`.
    pub fn add(&self, group: GroupId, raft: GroupRaft) {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        groups.insert(group, raft);
    }

    /// The group a request is for, and the request.
    fn open(
        &self,
        request: Request<RaftMessage>,
    ) -> std::result::Result<(GroupRaft, RaftMessage), Status> {
        let cluster_id = self
            .cluster_id
            .get()
            .ok_or_else(|| Status::unavailable("this node is not in a cluster yet"))?;
        check_member(request.metadata(), cluster_id)?;
        let message = request.into_inner();
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        let raft = groups
            .get(&message.group)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no replica of group {}", message.group)))?;
        Ok((raft, message))
    }

    /// Decodes a request, has `handle` answer it with the group's Raft, and
    /// encodes the answer.
    async fn serve<Req, T, E, Fut>(
        &self,
        request: Request<RaftMessage>,
        handle: impl FnOnce(GroupRaft, Req, Vec<u8>) -> Fut,
    ) -> Served
    where
        Req: DeserializeOwned,
        T: Serialize,
        E: std::fmt::Display,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        let (raft, message) = self.open(request)?;
        let rpc: Req = from_json(&message.payload)?;
        let answer: Answer<T> = handle(raft, rpc, message.data)
            .await
            .map_err(|e| e.to_string());
        Ok(Response::new(RaftMessage {
            group: message.group,
            payload: to_json(&answer)?,
            data: Vec::new(),
        }))
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    async fn append_entries(&self, request: Request<RaftMessage>) -> Served {
        self.serve(
            request,
            |raft, rpc: AppendEntriesRequest<ShardRaft>, _| async move {
                raft.append_entries(rpc).await
            },
        )
        .await
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Served {
        self.serve(request, |raft, rpc: VoteRequest<ShardRaft>, _| async move {
            raft.vote(rpc).await
        })
        .await
    }

    async fn pre_vote(&self, request: Request<RaftMessage>) -> Served {
        self.serve(request, |raft, rpc: VoteRequest<ShardRaft>, _| async move {
            raft.pre_vote(rpc).await
        })
        .await
    }

    async fn transfer_leader(&self, request: Request<RaftMessage>) -> Served {
        self.serve(
            request,
            |raft, rpc: TransferLeaderRequest<ShardRaft>, _| async move {
                raft.handle_transfer_leader(rpc).await
            },
        )
        .await
    }

    async fn install_snapshot(&self, request: Request<RaftMessage>) -> Served {
        type Header = (VoteOf<ShardRaft>, SnapshotMetaOf<ShardRaft>);
        self.serve(request, |raft, (vote, meta): Header, data| async move {
            let snapshot = SnapshotOf::<ShardRaft, _> {
                meta,
                snapshot: Cursor::new(data),
            };
            raft.install_full_snapshot(vote, snapshot).await
        })
        .await
    }
}

/// Makes the network of one group: a client per peer replica.
pub struct GroupNetworks {
    group: GroupId,
    cluster_id: String,
    channels: Arc<ChannelPool>,
}

impl GroupNetworks {
    pub fn new(group: GroupId, cluster_id: String, channels: Arc<ChannelPool>) -> Self {
        Self {
            group,
            cluster_id,
            channels,
        }
    }
}

impl RaftNetworkFactory<ShardRaft> for GroupNetworks {
    type Network = GroupNetwork;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> Self::Network {
        GroupNetwork {
            group: self.group,
            cluster_id: self.cluster_id.clone(),
            addr: node.addr.clone(),
            channels: self.channels.clone(),
        }
    }
}

/// Group `group`'s messages to the replica at `addr`.
pub struct GroupNetwork {
    group: GroupId,
    cluster_id: String,
    addr: String,
    channels: Arc<ChannelPool>,
}

/// Why a call failed, as openraft tells failures apart.
enum CallError {
    Unreachable(String),
    Network(String),
}

impl From<CallError> for RPCError<ShardRaft> {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unreachable(m) => RPCError::Unreachable(Unreachable::from_string(m)),
            CallError::Network(m) => RPCError::Network(NetworkError::from_string(m)),
        }
    }
}

impl From<CallError> for StreamingError<ShardRaft> {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unreachable(m) => StreamingError::Unreachable(Unreachable::from_string(m)),
            CallError::Network(m) => StreamingError::Network(NetworkError::from_string(m)),
        }
    }
}

impl GroupNetwork {
    /// Sends `rpc` (and `data`) with `method` and decodes the answer.
    async fn call<Req, Resp, Fut>(
        &self,
        rpc: &Req,
        data: Vec<u8>,
        option: &RPCOption,
        method: impl FnOnce(RaftTransportClient<Channel>, Request<RaftMessage>) -> Fut,
    ) -> std::result::Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Fut: std::future::Future<Output = std::result::Result<Response<RaftMessage>, Status>>,
    {
        let payload = serde_json::to_vec(rpc).map_err(|e| CallError::Network(e.to_string()))?;
        let channel = self
            .channels
            .get(&self.addr)
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let message = RaftMessage {
            group: self.group,
            payload,
            data,
        };
        let mut request =
            as_member(message, &self.cluster_id).map_err(|e| CallError::Network(e.to_string()))?;
        request.set_timeout(option.hard_ttl());
        let client = RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let response = method(client, request).await.map_err(|status| {
            let message = format!("{}: {}", self.addr, status.message());
            match status.code() {
                tonic::Code::Unavailable | tonic::Code::NotFound | tonic::Code::Cancelled => {
                    CallError::Unreachable(message)
                }
                _ if std::error::Error::source(&status).is_some() => {
                    CallError::Unreachable(message)
                }
                _ => CallError::Network(message),
            }
        })?;
        let answer: Answer<Resp> = serde_json::from_slice(&response.into_inner().payload)
            .map_err(|e| CallError::Network(format!("{}: bad answer: {e}", self.addr)))?;
        answer.map_err(|e| CallError::Unreachable(format!("{}: {e}", self.addr)))
    }
}

impl RaftNetworkV2<ShardRaft> for GroupNetwork {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ShardRaft>,
        option: RPCOption,
    ) -> std::result::Result<AppendEntriesResponse<ShardRaft>, RPCError<ShardRaft>> {
        let call = self.call(
            &rpc,
            Vec::new(),
            &option,
            |mut client, request| async move { client.append_entries(request).await },
        );
        Ok(call.await?)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ShardRaft>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<ShardRaft>, RPCError<ShardRaft>> {
        let call = self.call(
            &rpc,
            Vec::new(),
            &option,
            |mut client, request| async move { client.vote(request).await },
        );
        Ok(call.await?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<ShardRaft>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<ShardRaft>, RPCError<ShardRaft>> {
        let call = self.call(
            &rpc,
            Vec::new(),
            &option,
            |mut client, request| async move { client.pre_vote(request).await },
        );
        Ok(call.await?)
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<ShardRaft>,
        option: RPCOption,
    ) -> std::result::Result<TransferLeaderResponse<ShardRaft>, RPCError<ShardRaft>> {
        let call = self.call(
            &rpc,
            Vec::new(),
            &option,
            |mut client, request| async move { client.transfer_leader(request).await },
        );
        Ok(call.await?)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<ShardRaft>,
        snapshot: SnapshotOf<ShardRaft, Self::SnapshotData>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> std::result::Result<SnapshotResponse<ShardRaft>, StreamingError<ShardRaft>> {
        let data = snapshot.snapshot.into_inner();
        let header = (vote, snapshot.meta);
        let call = self.call(&header, data, &option, |mut client, request| async move {
            client.install_snapshot(request).await
        });
        Ok(call.await?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use prost::Message;
    use tonic::transport::Server;

    use super::*;
    use crate::encoding::keys::{row_key, HASH_SPACE};
    use crate::raft::log_store::GroupLog;
    use crate::raft::Command;
    use crate::shard::proto::{Mutation, WriteBatch};
    use crate::shard::{ShardId, ShardRange, ShardReplica};
    use crate::storage::Storage;

    /// A replica of group 0 with its own RocksDB, serving Raft over TCP.
    struct Replica {
        raft: GroupRaft,
        rows: Arc<ShardReplica>,
        addr: String,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        _dir: tempfile::TempDir,
    }

    async fn replica(id: u64, channels: Arc<ChannelPool>) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let range = ShardRange {
            id: ShardId(0),
            hash_start: 0,
            hash_end: HASH_SPACE,
            node: id as u32,
            replicas: Vec::new(),
        };
        let rows = Arc::new(ShardReplica::new(range, storage.clone()));
        let config = openraft::Config {
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            ..Default::default()
        };
        let raft = GroupRaft::new(
            id,
            Arc::new(config.validate().unwrap()),
            GroupNetworks::new(0, "c1".into(), channels),
            GroupLog::new(storage.clone(), 0),
            GroupMachine::new(storage, rows.clone()),
        )
        .await
        .unwrap();
        let service = Arc::new(RaftService::default());
        service.ready("c1".into());
        service.add(0, raft.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .add_service(service.server())
                .serve_with_incoming_shutdown(crate::rpc::incoming(listener), async {
                    let _ = stopped.await;
                }),
        );
        Replica {
            raft,
            rows,
            addr,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Writes `key` at `commit_ts` through `raft` (prepare, then commit);
    /// the log id of the commit.
    async fn commit(
        raft: &GroupRaft,
        commit_ts: u64,
        key: &[u8],
        value: &[u8],
    ) -> openraft::alias::LogIdOf<ShardRaft> {
        let batch = WriteBatch {
            shard_id: 0,
            start_ts: commit_ts - 1,
            mutations: vec![Mutation {
                key: key.to_vec(),
                value: Some(value.to_vec()),
            }],
        };
        let txn_id = commit_ts.to_be_bytes().to_vec();
        let prepare = Command::Prepare {
            txn_id: txn_id.clone(),
            prepared_at_ms: 0,
            batch: batch.encode_to_vec(),
        };
        let prepared = raft.client_write(prepare).await.unwrap();
        assert_eq!(prepared.data, crate::raft::Applied::Done);
        let commit = Command::Commit { txn_id, commit_ts };
        raft.client_write(commit).await.unwrap().log_id
    }

    /// The leader that the replicas in `live` agree on.
    async fn leader(replicas: &[Replica], live: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut leaders = Vec::new();
            for &i in live {
                leaders.push(replicas[i].raft.current_leader().await);
            }
            if let Some(Some(id)) = leaders.first() {
                let index = (*id - 1) as usize;
                if leaders.iter().all(|l| *l == Some(*id)) && live.contains(&index) {
                    return index;
                }
            }
            assert!(Instant::now() < deadline, "no leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_replicas_elect_a_leader_replicate_commits_and_fail_over() {
        let channels = Arc::new(ChannelPool::default());
        let mut replicas = Vec::new();
        for id in 1..=3 {
            replicas.push(replica(id, channels.clone()).await);
        }
        let members: BTreeMap<u64, BasicNode> = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i as u64 + 1,
                    BasicNode {
                        addr: r.addr.clone(),
                    },
                )
            })
            .collect();
        replicas[0].raft.initialize(members).await.unwrap();

        let first = leader(&replicas, &[0, 1, 2]).await;
        let key = row_key(100, b"k");
        let written = commit(&replicas[first].raft, 10, &key, b"one").await;
        for replica in &replicas {
            replica
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(written.index), "applied")
                .await
                .unwrap();
            assert_eq!(
                replica.rows.get(&key, 10).unwrap().as_deref(),
                Some(&b"one"[..])
            );
        }

        // The leader goes away: the other two elect one and take writes.
        if let Some(stop) = replicas[first].stop.take() {
            let _ = stop.send(());
        }
        replicas[first].raft.shutdown().await.unwrap();
        let live: Vec<usize> = (0..3).filter(|&i| i != first).collect();
        let second = leader(&replicas, &live).await;
        assert_ne!(second, first);
        let written = commit(&replicas[second].raft, 20, &key, b"two").await;
        for &i in &live {
            replicas[i]
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(written.index), "applied")
                .await
                .unwrap();
            assert_eq!(
                replicas[i].rows.get(&key, 20).unwrap().as_deref(),
                Some(&b"two"[..])
            );
            assert_eq!(
                replicas[i].rows.get(&key, 15).unwrap().as_deref(),
                Some(&b"one"[..])
            );
        }
        for &i in &live {
            replicas[i].raft.shutdown().await.unwrap();
        }
    }

    /// A replica added after the log was purged catches up from a snapshot
    /// sent over the transport, with every committed row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_behind_a_purged_log_catches_up_from_a_snapshot() {
        let channels = Arc::new(ChannelPool::default());
        let mut replicas = Vec::new();
        for id in 1..=3 {
            replicas.push(replica(id, channels.clone()).await);
        }
        let node = |i: usize| BasicNode {
            addr: replicas[i].addr.clone(),
        };
        let members = BTreeMap::from([(1, node(0)), (2, node(1))]);
        replicas[0].raft.initialize(members).await.unwrap();
        let first = leader(&replicas, &[0, 1]).await;
        let leader_raft = &replicas[first].raft;
        let keys: Vec<Vec<u8>> = (0..20u32).map(|i| row_key(100, &i.to_be_bytes())).collect();
        let mut last = None;
        for (i, key) in keys.iter().enumerate() {
            last = Some(commit(leader_raft, 10 + i as u64, key, b"v").await);
        }
        let last = last.unwrap();
        let wait = || leader_raft.wait(Some(Duration::from_secs(10)));
        leader_raft.trigger().snapshot().await.unwrap();
        wait().snapshot(last, "snapshot built").await.unwrap();
        leader_raft.trigger().purge_log(last.index).await.unwrap();
        wait().purged(Some(last), "log purged").await.unwrap();

        // Replica 3 joins: the entries it lacks are gone, so it gets the
        // snapshot, then becomes a voter and takes part in a new commit.
        leader_raft.add_learner(3, node(2), true).await.unwrap();
        leader_raft
            .change_membership([1, 2, 3], false)
            .await
            .unwrap();
        let written = commit(leader_raft, 100, &keys[0], b"again").await;
        let newest = replicas[2]
            .raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(written.index), "caught up")
            .await
            .unwrap();
        assert!(newest.snapshot.is_some(), "replica 3 installed a snapshot");
        for (i, key) in keys.iter().enumerate() {
            let ts = 10 + i as u64;
            assert_eq!(
                replicas[2].rows.get(key, ts).unwrap().as_deref(),
                Some(&b"v"[..])
            );
        }
        assert_eq!(
            replicas[2].rows.get(&keys[0], 100).unwrap().as_deref(),
            Some(&b"again"[..])
        );
        for replica in &replicas {
            replica.raft.shutdown().await.unwrap();
        }
    }
}
