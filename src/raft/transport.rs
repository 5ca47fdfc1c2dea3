//! Raft messages between the replicas of a group, over gRPC
//! (`proto/raft.proto`): each request names its group and is the protobuf
//! form of openraft's request ([`super::codec`]).
//!
//! A node serves one `RaftTransport` for every group it holds: the service
//! hands each request to its group's `Raft`. A remote group's failure comes
//! back as an UNAVAILABLE status. Only members of the cluster are served
//! (`crate::rpc`).
//!
//! The sending side keeps one pooled channel per peer address for all
//! groups. A peer that cannot be reached, or whose group failed, is
//! `Unreachable` to openraft (which backs off); anything else is a
//! `NetworkError` (retried soon). A snapshot travels whole in one message
//! of at most `rpc::MAX_MESSAGE_BYTES`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use openraft::alias::{SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkV2};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::codec;
use super::state_machine::{GroupMachine, Snapshot, SnapshotFile};
use super::{GroupId, ShardRaft};
use crate::error::Error;
use crate::rpc::{as_member, check_member, ChannelPool, MAX_MESSAGE_BYTES};
use crate::storage::Storage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/shardforge.raft.rs"));
}

use proto::raft_transport_client::RaftTransportClient;
use proto::raft_transport_server::{RaftTransport, RaftTransportServer};

/// A group's Raft.
pub type GroupRaft = openraft::Raft<ShardRaft, GroupMachine>;

/// A request that cannot be decoded.
fn bad_request(e: Error) -> Status {
    Status::invalid_argument(format!("raft message: {e}"))
}

/// The group's failure to handle a request.
fn failed(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

/// Serves the Raft groups of this node to the other members of its cluster.
/// It is served from the start (with the other RPCs); it knows its cluster
/// once the node is part of one ([`Self::ready`]) and answers UNAVAILABLE
/// before.
#[derive(Default)]
pub struct RaftService {
    cluster_id: OnceLock<String>,
    groups: RwLock<HashMap<GroupId, (GroupRaft, Arc<Storage>)>>,
}

impl RaftService {
    pub fn ready(&self, cluster_id: String) {
        let _ = self.cluster_id.set(cluster_id);
    }

    pub fn server(self: &Arc<Self>) -> RaftTransportServer<Self> {
        RaftTransportServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Serves `raft` as group `group`, whose snapshots go to `storage`.
    pub fn add(&self, group: GroupId, raft: GroupRaft, storage: Arc<Storage>) {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        groups.insert(group, (raft, storage));
    }

    /// The Raft of `group`, for a request from a member.
    fn group<T>(&self, request: &Request<T>, group: GroupId) -> Result<GroupRaft, Status> {
        self.check_member(request)?;
        Ok(self.served(group)?.0)
    }

    fn check_member<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let cluster_id = self
            .cluster_id
            .get()
            .ok_or_else(|| Status::unavailable("this node is not in a cluster yet"))?;
        check_member(request.metadata(), cluster_id)
    }

    fn served(&self, group: GroupId) -> Result<(GroupRaft, Arc<Storage>), Status> {
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        groups
            .get(&group)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no replica of group {group}")))
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    async fn append_entries(
        &self,
        request: Request<proto::AppendEntriesRequest>,
    ) -> Result<Response<proto::AppendEntriesReply>, Status> {
        let raft = self.group(&request, request.get_ref().group)?;
        let message = request.into_inner();
        let entries = message
            .entries
            .into_iter()
            .map(codec::entry_from)
            .collect::<crate::error::Result<Vec<_>>>()
            .map_err(bad_request)?;
        let rpc = AppendEntriesRequest::<ShardRaft> {
            vote: codec::vote_from(message.vote).map_err(bad_request)?,
            prev_log_id: codec::opt_log_id_from(message.prev_log_id),
            entries,
            leader_commit: codec::opt_log_id_from(message.leader_commit),
        };
        use proto::append_entries_reply::Outcome;
        let outcome = match raft.append_entries(rpc).await.map_err(failed)? {
            AppendEntriesResponse::Success => Outcome::Success(proto::Blank {}),
            AppendEntriesResponse::PartialSuccess(matching) => {
                Outcome::PartialSuccess(proto::PartialSuccess {
                    matching: codec::opt_log_id_to(&matching),
                })
            }
            AppendEntriesResponse::Conflict => Outcome::Conflict(proto::Blank {}),
            AppendEntriesResponse::HigherVote(vote) => Outcome::HigherVote(codec::vote_to(&vote)),
        };
        Ok(Response::new(proto::AppendEntriesReply {
            outcome: Some(outcome),
        }))
    }

    async fn vote(
        &self,
        request: Request<proto::VoteRequest>,
    ) -> Result<Response<proto::VoteReply>, Status> {
        let raft = self.group(&request, request.get_ref().group)?;
        let rpc = vote_request_from(request.into_inner())?;
        Ok(Response::new(vote_reply_to(
            raft.vote(rpc).await.map_err(failed)?,
        )))
    }

    async fn pre_vote(
        &self,
        request: Request<proto::VoteRequest>,
    ) -> Result<Response<proto::VoteReply>, Status> {
        let raft = self.group(&request, request.get_ref().group)?;
        let rpc = vote_request_from(request.into_inner())?;
        Ok(Response::new(vote_reply_to(
            raft.pre_vote(rpc).await.map_err(failed)?,
        )))
    }

    /// Receives a snapshot into a file of the node's snapshot directory,
    /// chunk by chunk, then hands it to the group to install. A file
    /// the group does not install is deleted at its next start
    /// (`GroupMachine::resume`); one cut short is deleted at once.
    async fn install_snapshot(
        &self,
        request: Request<tonic::Streaming<proto::SnapshotChunk>>,
    ) -> Result<Response<proto::SnapshotReply>, Status> {
        self.check_member(&request)?;
        let mut chunks = request.into_inner();
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an empty snapshot stream"))?;
        let header = first
            .header
            .ok_or_else(|| Status::invalid_argument("a snapshot stream without its header"))?;
        let (raft, storage) = self.served(header.group)?;
        let vote = codec::vote_from(header.vote).map_err(bad_request)?;
        let meta = codec::snapshot_meta_from(header.meta).map_err(bad_request)?;
        let file = SnapshotFile::new(&storage, header.group, "received");
        let received = async {
            let mut out = tokio::fs::File::create(&file.path).await?;
            let mut bytes = 0u64;
            let mut data = first.data;
            loop {
                out.write_all(&data).await?;
                bytes += data.len() as u64;
                match chunks.message().await.map_err(std::io::Error::other)? {
                    Some(chunk) => data = chunk.data,
                    None => break,
                }
            }
            if bytes != header.bytes {
                return Err(std::io::Error::other(format!(
                    "a snapshot of {bytes} bytes of the {} announced",
                    header.bytes
                )));
            }
            out.sync_all().await
        };
        if let Err(e) = received.await {
            file.remove();
            return Err(Status::aborted(format!("receiving a snapshot: {e}")));
        }
        let snapshot = SnapshotOf::<ShardRaft, _> {
            meta,
            snapshot: Snapshot::File(file),
        };
        let answer = raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(failed)?;
        Ok(Response::new(proto::SnapshotReply {
            vote: Some(codec::vote_to(&answer.vote)),
        }))
    }

    async fn transfer_leader(
        &self,
        request: Request<proto::TransferLeaderRequest>,
    ) -> Result<Response<proto::TransferLeaderReply>, Status> {
        let raft = self.group(&request, request.get_ref().group)?;
        let message = request.into_inner();
        let rpc = TransferLeaderRequest::<ShardRaft>::new(
            codec::vote_from(message.from_leader).map_err(bad_request)?,
            message.to_node_id,
            codec::opt_log_id_from(message.last_log_id),
        );
        use proto::transfer_leader_reply::Rejected;
        let rejected = match raft.handle_transfer_leader(rpc).await.map_err(failed)? {
            Ok(()) => None,
            Err(TransferLeaderError::VoteChanged { expected, actual }) => {
                Some(Rejected::VoteChanged(proto::VoteChanged {
                    expected: Some(codec::vote_to(&expected)),
                    actual: Some(codec::vote_to(&actual)),
                }))
            }
            Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
                Some(Rejected::LogNotFlushed(proto::LogNotFlushed {
                    expected: codec::opt_log_id_to(&expected),
                    actual: codec::opt_log_id_to(&actual),
                }))
            }
        };
        Ok(Response::new(proto::TransferLeaderReply { rejected }))
    }
}

fn vote_request_from(message: proto::VoteRequest) -> Result<VoteRequest<ShardRaft>, Status> {
    Ok(VoteRequest::<ShardRaft> {
        vote: codec::vote_from(message.vote).map_err(bad_request)?,
        last_log_id: codec::opt_log_id_from(message.last_log_id),
        leadership_transfer: message.leadership_transfer,
    })
}

fn vote_reply_to(answer: VoteResponse<ShardRaft>) -> proto::VoteReply {
    proto::VoteReply {
        vote: Some(codec::vote_to(&answer.vote)),
        granted: answer.vote_granted,
        last_log_id: codec::opt_log_id_to(&answer.last_log_id),
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
    /// Sends `message` with `method`: the answer.
    async fn call<Req, Resp, Fut>(
        &self,
        message: Req,
        option: &RPCOption,
        method: impl FnOnce(RaftTransportClient<Channel>, Request<Req>) -> Fut,
    ) -> Result<Resp, CallError>
    where
        Fut: std::future::Future<Output = Result<Response<Resp>, Status>>,
    {
        let channel = self
            .channels
            .get(&self.addr)
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
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
        Ok(response.into_inner())
    }

    /// An answer that cannot be decoded.
    fn bad_answer(&self, e: impl std::fmt::Display) -> CallError {
        CallError::Network(format!("{}: bad answer: {e}", self.addr))
    }

    fn vote_request(&self, rpc: &VoteRequest<ShardRaft>) -> proto::VoteRequest {
        proto::VoteRequest {
            group: self.group,
            vote: Some(codec::vote_to(&rpc.vote)),
            last_log_id: codec::opt_log_id_to(&rpc.last_log_id),
            leadership_transfer: rpc.leadership_transfer,
        }
    }

    fn vote_answer(&self, reply: proto::VoteReply) -> Result<VoteResponse<ShardRaft>, CallError> {
        Ok(VoteResponse::<ShardRaft> {
            vote: codec::vote_from(reply.vote).map_err(|e| self.bad_answer(e))?,
            vote_granted: reply.granted,
            last_log_id: codec::opt_log_id_from(reply.last_log_id),
        })
    }
}

impl RaftNetworkV2<ShardRaft> for GroupNetwork {
    type SnapshotData = Snapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ShardRaft>, RPCError<ShardRaft>> {
        let message = proto::AppendEntriesRequest {
            group: self.group,
            vote: Some(codec::vote_to(&rpc.vote)),
            prev_log_id: codec::opt_log_id_to(&rpc.prev_log_id),
            entries: rpc.entries.iter().map(codec::entry_to).collect(),
            leader_commit: codec::opt_log_id_to(&rpc.leader_commit),
        };
        let reply = self
            .call(message, &option, |mut client, request| async move {
                client.append_entries(request).await
            })
            .await?;
        use proto::append_entries_reply::Outcome;
        Ok(match reply.outcome {
            Some(Outcome::Success(_)) => AppendEntriesResponse::Success,
            Some(Outcome::PartialSuccess(p)) => {
                AppendEntriesResponse::PartialSuccess(codec::opt_log_id_from(p.matching))
            }
            Some(Outcome::Conflict(_)) => AppendEntriesResponse::Conflict,
            Some(Outcome::HigherVote(vote)) => AppendEntriesResponse::HigherVote(
                codec::vote_from(Some(vote)).map_err(|e| self.bad_answer(e))?,
            ),
            None => return Err(self.bad_answer("no outcome").into()),
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<ShardRaft>, RPCError<ShardRaft>> {
        let message = self.vote_request(&rpc);
        let reply = self
            .call(message, &option, |mut client, request| async move {
                client.vote(request).await
            })
            .await?;
        Ok(self.vote_answer(reply)?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<ShardRaft>, RPCError<ShardRaft>> {
        let message = self.vote_request(&rpc);
        let reply = self
            .call(message, &option, |mut client, request| async move {
                client.pre_vote(request).await
            })
            .await?;
        Ok(self.vote_answer(reply)?)
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<ShardRaft>, RPCError<ShardRaft>> {
        let message = proto::TransferLeaderRequest {
            group: self.group,
            from_leader: Some(codec::vote_to(rpc.from_leader())),
            to_node_id: *rpc.to_node_id(),
            last_log_id: rpc.last_log_id().map(codec::log_id_to),
        };
        let reply = self
            .call(message, &option, |mut client, request| async move {
                client.transfer_leader(request).await
            })
            .await?;
        use proto::transfer_leader_reply::Rejected;
        let vote = |v| codec::vote_from(v).map_err(|e| self.bad_answer(e));
        Ok(match reply.rejected {
            None => Ok(()),
            Some(Rejected::VoteChanged(v)) => Err(TransferLeaderError::VoteChanged {
                expected: vote(v.expected)?,
                actual: vote(v.actual)?,
            }),
            Some(Rejected::LogNotFlushed(l)) => Err(TransferLeaderError::LogNotFlushed {
                expected: codec::opt_log_id_from(l.expected),
                actual: codec::opt_log_id_from(l.actual),
            }),
        })
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<ShardRaft>,
        snapshot: SnapshotOf<ShardRaft, Self::SnapshotData>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<ShardRaft>, StreamingError<ShardRaft>> {
        // Held until sent: a built snapshot's file goes with it.
        let held = snapshot.snapshot;
        let unreadable = |e: std::io::Error| CallError::Network(format!("reading a snapshot: {e}"));
        let path = held.file().await.map_err(unreadable)?;
        let input = tokio::fs::File::open(&path).await.map_err(unreadable)?;
        let bytes = input.metadata().await.map_err(unreadable)?.len();
        let header = proto::SnapshotHeader {
            group: self.group,
            vote: Some(codec::vote_to(&vote)),
            meta: Some(codec::snapshot_meta_to(&snapshot.meta)),
            bytes,
        };
        // A chunk at a time, read as the stream is sent. A read that fails
        // ends the stream short, which the receiver refuses.
        let chunks =
            futures::stream::unfold((Some(header), Some(input)), |(header, input)| async move {
                let mut input = input?;
                let mut data = vec![0; SNAPSHOT_CHUNK_BYTES];
                let read = match input.read(&mut data).await {
                    Ok(0) if header.is_none() => return None,
                    Ok(read) => read,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read a snapshot to send");
                        return None;
                    }
                };
                data.truncate(read);
                let chunk = proto::SnapshotChunk { header, data };
                Some((chunk, (None, Some(input))))
            });
        // The transfer may take longer than an RPC: allow for a slow link.
        let option = RPCOption::new(option.hard_ttl() + snapshot_transfer_time(bytes));
        let sent = self.call(chunks, &option, |mut client, request| async move {
            client.install_snapshot(request).await
        });
        let reply = tokio::select! {
            reply = sent => reply?,
            closed = cancel => {
                return Err(StreamingError::Closed(closed));
            }
        };
        let vote = codec::vote_from(reply.vote).map_err(|e| self.bad_answer(e))?;
        Ok(SnapshotResponse::new(vote))
    }
}

/// The size of a snapshot chunk: no message grows with the snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// How long sending a snapshot of `bytes` may take beyond an RPC's time,
/// at 10 MiB/s at worst.
fn snapshot_transfer_time(bytes: u64) -> std::time::Duration {
    std::time::Duration::from_millis(bytes / (10 << 10))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use tonic::transport::Server;

    use super::*;
    use crate::raft::log_store::GroupLog;
    use crate::raft::state_machine::tests::{note, Notes};
    use crate::storage::Storage;

    /// A replica of group 0 with its own RocksDB, serving Raft over TCP.
    struct Replica {
        raft: GroupRaft,
        notes: Arc<Notes>,
        addr: String,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        _dir: tempfile::TempDir,
    }

    async fn replica(id: u64, channels: Arc<ChannelPool>) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let notes = Arc::new(Notes(storage.clone()));
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
            GroupMachine::new(storage.clone(), 0, notes.clone()),
        )
        .await
        .unwrap();
        let service = Arc::new(RaftService::default());
        service.ready("c1".into());
        service.add(0, raft.clone(), storage);
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
            notes,
            addr,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Sets note `key` to `value` through `raft`: the entry's log id.
    async fn commit(
        raft: &GroupRaft,
        key: &str,
        value: &str,
    ) -> openraft::alias::LogIdOf<ShardRaft> {
        raft.client_write(note(key, value)).await.unwrap().log_id
    }

    /// Sets note `key` at the leader the replicas in `live` agree on, asked
    /// again if leadership moved before the write reached it (elections
    /// are quick, and a busy machine delays heartbeats): the leader and the
    /// entry's log id.
    async fn commit_at_leader(
        replicas: &[Replica],
        live: &[usize],
        key: &str,
        value: &str,
    ) -> (usize, openraft::alias::LogIdOf<ShardRaft>) {
        for _ in 0..50 {
            let at = leader(replicas, live).await;
            if let Ok(written) = replicas[at].raft.client_write(note(key, value)).await {
                return (at, written.log_id);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no leader took the write of {key}");
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

        let (first, written) = commit_at_leader(&replicas, &[0, 1, 2], "k", "one").await;
        for replica in &replicas {
            replica
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(written.index), "applied")
                .await
                .unwrap();
            assert_eq!(replica.notes.get("k").as_deref(), Some("one"));
        }

        // The leader goes away: the other two elect one and take writes.
        if let Some(stop) = replicas[first].stop.take() {
            let _ = stop.send(());
        }
        replicas[first].raft.shutdown().await.unwrap();
        let live: Vec<usize> = (0..3).filter(|&i| i != first).collect();
        let (second, written) = commit_at_leader(&replicas, &live, "k", "two").await;
        assert_ne!(second, first);
        for &i in &live {
            replicas[i]
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(written.index), "applied")
                .await
                .unwrap();
            assert_eq!(replicas[i].notes.get("k").as_deref(), Some("two"));
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
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let mut last = None;
        for key in &keys {
            last = Some(commit(leader_raft, key, "v").await);
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
        let written = commit(leader_raft, &keys[0], "again").await;
        let newest = replicas[2]
            .raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(written.index), "caught up")
            .await
            .unwrap();
        assert!(newest.snapshot.is_some(), "replica 3 installed a snapshot");
        for key in &keys[1..] {
            assert_eq!(replicas[2].notes.get(key).as_deref(), Some("v"));
        }
        assert_eq!(replicas[2].notes.get(&keys[0]).as_deref(), Some("again"));
        for replica in &replicas {
            replica.raft.shutdown().await.unwrap();
        }
    }
}
