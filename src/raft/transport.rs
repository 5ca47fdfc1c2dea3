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
//! `NetworkError` (retried soon). A leader's appends to a follower go on
//! one stream per replication session ([`GroupNetwork::stream_append`]);
//! votes and leadership transfers are unary calls; a snapshot is streamed
//! from its file in chunks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use openraft::alias::{SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendError,
    StreamAppendResult, TransferLeaderError, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
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
    /// True once the node stops: the append streams its peers keep open
    /// end then, or the server would wait for them to end (see [`Self::stop`]).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl RaftService {
    pub fn ready(&self, cluster_id: String) {
        let _ = self.cluster_id.set(cluster_id);
    }

    pub fn server(self: &Arc<Self>) -> RaftTransportServer<Self> {
        RaftTransportServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Ends the append streams of every group: the node stops. A peer's
    /// leader keeps its stream to each of its followers here open as long
    /// as it leads.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
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
    type AppendStreamStream = BoxStream<'static, Result<proto::AppendReply, Status>>;

    /// Hands the leader's requests to the group as they arrive, and its
    /// answers back in order (openraft pipelines them). A request that
    /// cannot be decoded, or names another group, ends the stream: the
    /// leader starts another.
    async fn append_stream(
        &self,
        request: Request<tonic::Streaming<proto::AppendEntriesRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        self.check_member(&request)?;
        let mut incoming = request.into_inner();
        let Some(first) = incoming.message().await? else {
            return Ok(Response::new(Box::pin(futures::stream::empty())));
        };
        let group = first.group;
        let raft = self.served(group)?.0;
        let mut stopping = self.stopping.subscribe();
        let requests = futures::stream::once(async { Ok(first) })
            .chain(incoming)
            .take_until(async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            })
            .scan((), move |_, message| {
                let request = message
                    .map_err(|e| e.to_string())
                    .and_then(|message| match message.group == group {
                        true => codec::append_request_from(message).map_err(|e| e.to_string()),
                        false => Err(format!("a request for group {}", message.group)),
                    })
                    .inspect_err(|e| {
                        tracing::warn!(group, error = %e, "an append stream ends");
                    });
                futures::future::ready(request.ok())
            });
        let answers = raft.stream_append(requests).map(|answer| {
            use proto::append_reply::Outcome;
            let outcome = match answer.map_err(failed)? {
                Ok(matching) => Outcome::Matching(proto::Matching {
                    log_id: codec::opt_log_id_to(&matching),
                }),
                Err(StreamAppendError::Conflict(log_id)) => {
                    Outcome::Conflict(codec::log_id_to(&log_id))
                }
                Err(StreamAppendError::HigherVote(vote)) => {
                    Outcome::HigherVote(codec::vote_to(&vote))
                }
            };
            Ok(proto::AppendReply {
                outcome: Some(outcome),
            })
        });
        Ok(Response::new(Box::pin(answers)))
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
        let mut request = self.request(message)?;
        request.set_timeout(option.hard_ttl());
        let response = method(self.client()?, request)
            .await
            .map_err(|status| call_failed(&self.addr, status))?;
        Ok(response.into_inner())
    }

    fn client(&self) -> Result<RaftTransportClient<Channel>, CallError> {
        let channel = self
            .channels
            .get(&self.addr)
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        Ok(RaftTransportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn request<T>(&self, message: T) -> Result<Request<T>, CallError> {
        as_member(message, &self.cluster_id).map_err(|e| CallError::Network(e.to_string()))
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
            vote: codec::vote_from(reply.vote).map_err(|e| bad_answer(&self.addr, e))?,
            vote_granted: reply.granted,
            last_log_id: codec::opt_log_id_from(reply.last_log_id),
        })
    }
}

impl RaftNetworkV2<ShardRaft> for GroupNetwork {
    type SnapshotData = Snapshot;

    /// One request, on a stream of its own (openraft sends none this
    /// way: its replication and heartbeats go through [`Self::stream_append`]).
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ShardRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ShardRaft>, RPCError<ShardRaft>> {
        let last = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id);
        let (ttl, addr) = (option.hard_ttl(), self.addr.clone());
        let mut answers = self
            .stream_append(futures::stream::iter([rpc]), option)
            .await?;
        let answer = tokio::time::timeout(ttl, answers.next())
            .await
            .map_err(|_| CallError::Network(format!("{addr}: no answer")))?;
        Ok(match answer {
            Some(Ok(Ok(matching))) if matching == last => AppendEntriesResponse::Success,
            Some(Ok(Ok(matching))) => AppendEntriesResponse::PartialSuccess(matching),
            Some(Ok(Err(StreamAppendError::Conflict(_)))) => AppendEntriesResponse::Conflict,
            Some(Ok(Err(StreamAppendError::HigherVote(vote)))) => {
                AppendEntriesResponse::HigherVote(vote)
            }
            Some(Err(e)) => return Err(e),
            None => return Err(bad_answer(&addr, "no answer").into()),
        })
    }

    /// Sends openraft's requests as they come on one gRPC stream, without
    /// waiting for the answers to the ones before (openraft matches the
    /// answers to its requests by log id), where a unary call per request
    /// sent one at a time: a request is a frame on an open stream.
    ///
    /// A request that carries no entries only tells the replica of a new
    /// commit index (openraft sends one after every commit); one that
    /// follows within [`COMMIT_NOTICE_WAIT`] carries it too, so it goes
    /// instead (see [`fold_commit_notices`]).
    ///
    /// The stream ends in an error when requests wait unanswered for
    /// longer than the option's soft time to live twice over.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<ShardRaft>, RPCError<ShardRaft>>>,
            RPCError<ShardRaft>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<ShardRaft>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let group = self.group;
            let sent = Arc::new(AtomicU64::new(0));
            let counted = sent.clone();
            // The requests end when openraft drops the answers (its session
            // ended): the stream closes both ways instead of staying open
            // for the requests of a session that is over.
            let (dropped, answers_dropped) = tokio::sync::oneshot::channel::<()>();
            let mut requests = Box::pin(
                fold_commit_notices(input, COMMIT_NOTICE_WAIT).take_until(answers_dropped),
            );
            // The first request before the call: openraft makes it after the
            // backoff its last failure asked for, so a peer that is down is
            // not called again at once, in a loop, by every group.
            let Some(first) = requests.next().await else {
                return Ok(futures::stream::empty().boxed());
            };
            let requests = futures::stream::once(async { first })
                .chain(requests)
                .map(move |rpc| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    codec::append_request_to(group, &rpc)
                });
            let replies = self
                .client()?
                .append_stream(self.request(requests)?)
                .await
                .map_err(|status| call_failed(&self.addr, status))?
                .into_inner();
            let answers = Answers {
                _dropped: dropped,
                addr: self.addr.clone(),
                replies,
                sent,
                answered: 0,
                patience: option.soft_ttl(),
                waited: false,
            };
            Ok(answers.stream().boxed())
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
        let vote = |v| codec::vote_from(v).map_err(|e| bad_answer(&self.addr, e));
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
        let vote = codec::vote_from(reply.vote).map_err(|e| bad_answer(&self.addr, e))?;
        Ok(SnapshotResponse::new(vote))
    }
}

/// A call that failed, as openraft tells failures apart.
fn call_failed(addr: &str, status: Status) -> CallError {
    let message = format!("{addr}: {}", status.message());
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::NotFound | tonic::Code::Cancelled => {
            CallError::Unreachable(message)
        }
        _ if std::error::Error::source(&status).is_some() => CallError::Unreachable(message),
        _ => CallError::Network(message),
    }
}

/// An answer that cannot be decoded.
fn bad_answer(addr: &str, e: impl std::fmt::Display) -> CallError {
    CallError::Network(format!("{addr}: bad answer: {e}"))
}

/// How long a request that carries only a new commit index is held back
/// for a request that carries it with entries. A replica applies an entry
/// once it learns it committed: under load that is with the next
/// request, at the latest a heartbeat later.
const COMMIT_NOTICE_WAIT: Duration = Duration::from_millis(5);

/// `input`, where a request that carries no entries is dropped when
/// another follows within `wait`: the later one starts at the same entry
/// or a later one and carries the same commit index or a later one, so
/// the replica learns as much. openraft counts the dropped request
/// answered with the later one (it matches answers by log id).
fn fold_commit_notices<S>(
    input: S,
    wait: Duration,
) -> impl Stream<Item = AppendEntriesRequest<ShardRaft>> + Send + 'static
where
    S: Stream<Item = AppendEntriesRequest<ShardRaft>> + Send + Unpin + 'static,
{
    futures::stream::unfold(input.fuse(), move |mut input| async move {
        let mut request = input.next().await?;
        let deadline = tokio::time::Instant::now() + wait;
        while request.entries.is_empty() {
            match tokio::time::timeout_at(deadline, input.next()).await {
                Ok(Some(later)) => request = later,
                Ok(None) | Err(_) => break,
            }
        }
        Some((request, input))
    })
}

/// A replica's answers on an append stream, as openraft reads them.
struct Answers {
    /// Dropped with the answers, which ends the requests.
    _dropped: tokio::sync::oneshot::Sender<()>,
    addr: String,
    replies: tonic::Streaming<proto::AppendReply>,
    /// How many requests went out on the stream, and how many were answered.
    sent: Arc<AtomicU64>,
    answered: u64,
    /// How long requests may wait unanswered, twice over, before the
    /// stream is given up.
    patience: Duration,
    /// Whether requests were waiting at the end of the last period.
    waited: bool,
}

type AnswerOf = Result<StreamAppendResult<ShardRaft>, RPCError<ShardRaft>>;

impl Answers {
    fn stream(self) -> impl Stream<Item = AnswerOf> + Send + 'static {
        futures::stream::unfold(Some(self), |answers| async move {
            let mut answers = answers?;
            match answers.next().await {
                Ok(Some(answer)) => Some((Ok(answer), Some(answers))),
                Ok(None) => None,
                Err(e) => Some((Err(e.into()), None)),
            }
        })
    }

    async fn next(&mut self) -> Result<Option<StreamAppendResult<ShardRaft>>, CallError> {
        loop {
            match tokio::time::timeout(self.patience, self.replies.message()).await {
                Ok(Ok(Some(reply))) => {
                    self.answered += 1;
                    self.waited = false;
                    return self.answer(reply).map(Some);
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(status)) => return Err(call_failed(&self.addr, status)),
                Err(_) => {
                    let waiting = self.sent.load(Ordering::Relaxed) > self.answered;
                    if waiting && self.waited {
                        return Err(CallError::Network(format!("{}: no answer", self.addr)));
                    }
                    self.waited = waiting;
                }
            }
        }
    }

    fn answer(
        &self,
        reply: proto::AppendReply,
    ) -> Result<StreamAppendResult<ShardRaft>, CallError> {
        use proto::append_reply::Outcome;
        Ok(match reply.outcome {
            Some(Outcome::Matching(m)) => Ok(codec::opt_log_id_from(m.log_id)),
            Some(Outcome::Conflict(log_id)) => {
                Err(StreamAppendError::Conflict(codec::log_id_from(log_id)))
            }
            Some(Outcome::HigherVote(vote)) => Err(StreamAppendError::HigherVote(
                codec::vote_from(Some(vote)).map_err(|e| bad_answer(&self.addr, e))?,
            )),
            None => return Err(bad_answer(&self.addr, "no outcome")),
        })
    }
}

/// The size of a snapshot chunk: no message grows with the snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// How long sending a snapshot of `bytes` may take beyond an RPC's time,
/// at 10 MiB/s at worst.
fn snapshot_transfer_time(bytes: u64) -> Duration {
    Duration::from_millis(bytes / (10 << 10))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use openraft::alias::{EntryOf, LogIdOf};
    use openraft::testing::log_id;
    use openraft::{EntryPayload, Vote};
    use tonic::transport::Server;

    use super::*;
    use crate::raft::log_store::GroupLog;
    use crate::raft::state_machine::tests::{note, Notes};
    use crate::storage::Storage;

    /// A request after `prev`, with entries up to index `last` (none when
    /// `last` is `prev`), and the commit index `commit`.
    fn append(prev: u64, last: u64, commit: u64) -> AppendEntriesRequest<ShardRaft> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(log_id::<ShardRaft>(1, 1, prev)),
            entries: (prev + 1..=last)
                .map(|index| EntryOf::<ShardRaft> {
                    log_id: log_id::<ShardRaft>(1, 1, index),
                    payload: EntryPayload::Blank,
                })
                .collect(),
            leader_commit: Some(log_id::<ShardRaft>(1, 1, commit)),
        }
    }

    /// What a request covers: previous entry, last entry, commit index.
    fn covers(request: &AppendEntriesRequest<ShardRaft>) -> (u64, u64, u64) {
        let index = |id: &Option<LogIdOf<ShardRaft>>| id.as_ref().unwrap().index;
        let last = request
            .entries
            .last()
            .map_or(index(&request.prev_log_id), |e| e.log_id.index);
        (
            index(&request.prev_log_id),
            last,
            index(&request.leader_commit),
        )
    }

    #[tokio::test]
    async fn a_commit_notice_followed_by_another_request_is_not_sent() {
        let (requests, input) = tokio::sync::mpsc::unbounded_channel();
        let input = tokio_stream::wrappers::UnboundedReceiverStream::new(input);
        let mut sent = Box::pin(fold_commit_notices(input, COMMIT_NOTICE_WAIT));

        // Entries go at once; the notice of their commit gives way to the
        // next entries, which carry it.
        requests.send(append(0, 2, 0)).unwrap();
        assert_eq!(covers(&sent.next().await.unwrap()), (0, 2, 0));
        requests.send(append(2, 2, 2)).unwrap();
        requests.send(append(2, 3, 2)).unwrap();
        assert_eq!(covers(&sent.next().await.unwrap()), (2, 3, 2));

        // A notice that nothing follows goes after the wait; one that ends
        // the stream (a heartbeat) goes without it.
        requests.send(append(3, 3, 3)).unwrap();
        let start = Instant::now();
        assert_eq!(covers(&sent.next().await.unwrap()), (3, 3, 3));
        assert!(start.elapsed() >= COMMIT_NOTICE_WAIT);
        requests.send(append(3, 3, 3)).unwrap();
        drop(requests);
        assert_eq!(covers(&sent.next().await.unwrap()), (3, 3, 3));
        assert!(sent.next().await.is_none());
    }

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
