//! How a node reaches a shard group: its own replica in-process, or the
//! replica on another node ([`super::service`]: scans over Arrow Flight,
//! reads of single rows in one unary call).
//!
//! A scan is a stream of Arrow batches either way. A local scan runs on a
//! blocking thread and hands batches over a channel of
//! [`SCAN_CHANNEL_BATCHES`], so a slow reader holds it back and a reader that
//! drops the stream stops it; a remote scan gets the same from the Flight
//! stream.
//!
//! A replicated group is read at its leader: in-process when this node
//! leads it ([`LocalLeader`]), after the checks its leader makes before any
//! read ([`ready_to_read`]), and remotely otherwise. While a read has yielded
//! nothing, a node that turns out not to lead the group, or cannot be
//! reached, is followed by the next guess ([`Reroute`]) for up to
//! `QUORUM_WAIT`, long enough for an election: a read during a leader
//! change waits for the new leader instead of failing. Once batches came
//! back, a failure fails the scan (re-reading elsewhere could repeat rows).

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;

use super::flight::scan_remote;
use super::locks::WriteLocks;
use super::proto::{Mutation, ScanRequest};
use super::replica::{encode_filter, scan_bounds, Filter};
use super::service::get_remote;
use super::{ShardRange, ShardReplica};
use crate::encoding::keys::versions_end;
use crate::error::{Error, Result};
use crate::raft::groups::{ShardGroups, QUORUM_WAIT};

/// Batches a scan may decode ahead of its reader.
pub const SCAN_CHANNEL_BATCHES: usize = 2;

/// A transaction's own writes, sorted by key: `(user key, row or None for a
/// delete)`.
pub type OwnWrites = Arc<Vec<(Vec<u8>, Option<Vec<u8>>)>>;

/// Where a replicated group's scan goes next, after the node it went to
/// does not lead the group (any more) or cannot be reached.
pub trait Reroute: Send + Sync {
    /// The next node to ask for `range`'s group after `failed`, and the
    /// channel to it.
    fn next_leader(&self, range: &ShardRange, failed: u32)
        -> BoxFuture<'_, Result<(u32, Channel)>>;
}

/// How a node reads a shard group: at its leader, `node` as far as this
/// node knows.
#[derive(Clone)]
pub struct ShardAccess {
    pub range: ShardRange,
    pub node: u32,
    pub channel: Channel,
    pub cluster_id: String,
    /// How to find the leader again when `node` does not lead the group.
    pub reroute: Arc<dyn Reroute>,
    /// This node's replica, when this node led the group as the access
    /// was made: read here unless it turns out not to lead any more.
    pub local: Option<LocalLeader>,
}

/// A replica of a group this node leads, and what a leader checks before a
/// read of it (see [`ready_to_read`]).
#[derive(Clone)]
pub struct LocalLeader {
    pub replica: Arc<ShardReplica>,
    pub groups: Arc<ShardGroups>,
    pub locks: Arc<WriteLocks>,
}

/// The user-key ranges a read of `request` in `range`'s group covers: its
/// keys (an existence check), its point key, or the table's rows there.
pub fn read_ranges(request: &ScanRequest, range: &ShardRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    match request.keys.is_empty() {
        true => vec![scan_bounds(request, range)],
        false => request
            .keys
            .iter()
            .map(|k| (k.clone(), versions_end(k)))
            .collect(),
    }
}

/// Waits until this node, the leader of `replica`'s group, may serve
/// `request` (its [`read_ranges`] at its snapshot): it still leads (under
/// its lease), has applied every entry committed before, and no write in
/// flight that the read may have to see is in its way (`shard::locks`).
/// `NotLeader` if it no longer leads.
pub async fn ready_to_read(
    groups: &ShardGroups,
    locks: &WriteLocks,
    replica: Arc<ShardReplica>,
    request: &ScanRequest,
) -> Result<()> {
    groups.linearize(replica.range().id.0).await?;
    let ranges = read_ranges(request, replica.range());
    let (read_ts, reader) = (request.snapshot_ts, request.txn_id.clone());
    let on_disk = move |range: (&[u8], &[u8]), preparing: &dyn Fn(&[u8]) -> bool| {
        replica.lock_in_the_way(range, read_ts, &reader, preparing)
    };
    let few_keys = request.point_key.is_some() || (1..=INLINE_KEYS).contains(&request.keys.len());
    locks.wait(ranges, read_ts, on_disk, few_keys).await
}

/// Up to how many keys a read checks (their locks, their rows) on the
/// caller's thread: a seek each, cheaper there than on a blocking thread
/// and back.
pub const INLINE_KEYS: usize = 16;

impl std::fmt::Debug for ShardAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@node{}", self.range().id.0, self.node())
    }
}

impl ShardAccess {
    pub fn range(&self) -> &ShardRange {
        &self.range
    }

    /// The node that serves the scan.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The rows `request` asks for that pass `filter`, with `own` (the
    /// reading transaction's writes) read over the committed ones. A remote
    /// group gets the filter in the request, so only the rows that pass
    /// cross the network.
    pub fn scan(
        &self,
        mut request: ScanRequest,
        own: OwnWrites,
        filter: Option<Filter>,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        request.shard_id = self.range.id.0;
        match &self.local {
            Some(local) => {
                let remote = self.elsewhere();
                let local = local.clone();
                let started = async move {
                    let ready =
                        ready_to_read(&local.groups, &local.locks, local.replica.clone(), &request);
                    match ready.await {
                        Ok(()) => scan_local(local.replica, request, own, filter),
                        Err(Error::NotLeader(_)) => remote.scan(request, own, filter),
                        Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
                    }
                };
                futures::stream::once(started).flatten().boxed()
            }
            None => {
                let (start, end) = scan_bounds(&request, &self.range);
                request.overlay = own
                    .iter()
                    .filter(|(key, _)| start <= *key && *key < end)
                    .map(|(key, value)| Mutation {
                        key: key.clone(),
                        value: value.clone(),
                        ..Default::default()
                    })
                    .collect();
                request.filter = filter.as_ref().map(encode_filter).unwrap_or_default();
                scan_leader(
                    self.range.clone(),
                    (self.node, self.channel.clone()),
                    self.cluster_id.clone(),
                    request,
                    self.reroute.clone(),
                )
            }
        }
    }

    /// The rows under `request.keys` as [`ShardReplica::read_keys`] reads
    /// them, in their order: one call for all of them, at the group's
    /// leader (a unary call when that is another node). A local replica's
    /// rows are read on the caller's thread: await it off the async
    /// runtime (`block_on`) unless the keys are few.
    pub async fn read_keys(&self, mut request: ScanRequest) -> Result<Vec<Option<Vec<u8>>>> {
        request.shard_id = self.range.id.0;
        if let Some(local) = &self.local {
            let ready = ready_to_read(&local.groups, &local.locks, local.replica.clone(), &request);
            match ready.await {
                Ok(()) => return local.replica.read_keys(&request),
                Err(Error::NotLeader(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let at = (self.node, self.channel.clone());
        let request = &request;
        at_leader(
            &self.range,
            at,
            &*self.reroute,
            |node, channel| async move {
                get_remote(channel, &self.cluster_id, &format!("node {node}"), request).await
            },
        )
        .await
    }

    /// Which of `keys` have a row at `request`'s snapshot (its
    /// transaction's own writes sent ahead included), in their order (see
    /// [`Self::read_keys`]).
    pub async fn existing(&self, keys: Vec<Vec<u8>>, request: ScanRequest) -> Result<Vec<bool>> {
        let request = ScanRequest {
            keys,
            projection: Vec::new(),
            ..request
        };
        let rows = self.read_keys(request).await?;
        Ok(rows.iter().map(Option::is_some).collect())
    }
}

impl ShardAccess {
    /// This access without its local replica: over Flight to the leader
    /// of the moment.
    fn elsewhere(&self) -> ShardAccess {
        ShardAccess {
            local: None,
            ..self.clone()
        }
    }
}

/// A replicated group's scan at its leader, guessed to be `at` (see the
/// module docs).
fn scan_leader(
    range: ShardRange,
    at: (u32, Channel),
    cluster_id: String,
    request: ScanRequest,
    reroute: Arc<dyn Reroute>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let group = range.id.0;
    let started = async move {
        at_leader(&range, at, &*reroute, |node, channel| {
            let peer = format!("node {node}");
            let mut scan = scan_remote(channel, &cluster_id, &peer, &request).boxed();
            async move {
                match scan.next().await {
                    Some(Err(e)) => Err(e),
                    first => Ok(futures::stream::iter(first).chain(scan)),
                }
            }
        })
        .await
    };
    futures::stream::once(started)
        .try_flatten()
        .map_err(move |e| unreachable_leader(group, e))
        .boxed()
}

/// What `call` answers at `range`'s group leader, guessed to be `at`: a
/// node that does not lead the group (any more) or cannot be reached is
/// followed by the next guess for up to `QUORUM_WAIT`, long enough for an
/// election.
async fn at_leader<T, F, Fut>(
    range: &ShardRange,
    at: (u32, Channel),
    reroute: &dyn Reroute,
    mut call: F,
) -> Result<T>
where
    F: FnMut(u32, Channel) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + QUORUM_WAIT;
    let (mut node, mut channel) = at;
    loop {
        match call(node, channel.clone()).await {
            Err(Error::NotLeader(_) | Error::NodeUnreachable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                (node, channel) = reroute.next_leader(range, node).await?;
            }
            answer => return answer.map_err(|e| unreachable_leader(range.id.0, e)),
        }
    }
}

/// `e`, an error reading `group` at its leader, as the statement reports
/// it: a dead leader is replaced within seconds, so the transaction can be
/// retried then.
fn unreachable_leader(group: u32, e: Error) -> Error {
    match e {
        Error::NodeUnreachable(m) => Error::NotLeader(format!(
            "{m}: the leader of shard group {group} cannot be reached; \
             retry the transaction once a new one is elected"
        )),
        other => other,
    }
}

/// Runs `replica`'s scan on a blocking thread, streaming its batches (a
/// point read runs on the caller's task).
pub fn scan_local(
    replica: Arc<ShardReplica>,
    request: ScanRequest,
    own: OwnWrites,
    filter: Option<Filter>,
) -> BoxStream<'static, Result<RecordBatch>> {
    if request.point_key.is_some() {
        // One key, a read from the memtable or block cache in the common
        // case: cheaper on the caller's task than handed to a blocking
        // thread and back (two thread switches, a third of a point
        // SELECT's server time). A cache miss holds the worker for one
        // disk read.
        let read = async move {
            let mut batches = Vec::with_capacity(1);
            if let Err(e) = replica.scan(&request, &own, filter, |batch| {
                batches.push(Ok(batch));
                true
            }) {
                batches.push(Err(e));
            }
            futures::stream::iter(batches)
        };
        return futures::stream::once(read).flatten().boxed();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(SCAN_CHANNEL_BATCHES);
    let start = async move {
        tokio::task::spawn_blocking(move || {
            let result = replica.scan(&request, &own, filter, |batch| {
                tx.blocking_send(Ok(batch)).is_ok()
            });
            if let Err(e) = result {
                // The reader may be gone already; then nobody needs the error.
                let _ = tx.blocking_send(Err(e));
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    };
    // Nothing runs until the stream is first polled.
    futures::stream::once(start).flatten().boxed()
}

/// Runs a future from a blocking thread of the runtime (`spawn_blocking`).
/// Off the runtime nothing could drive its network calls: an error.
pub fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        crate::error::Error::Internal("a call to another node needs the async runtime".into())
    })?;
    runtime.block_on(future)
}
