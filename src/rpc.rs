//! What every node-to-node service shares: callers name their cluster in
//! the [`CLUSTER_HEADER`] metadata, and only members of this node's cluster
//! are served.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::error::{Error, InputError};

/// How long a node waits to connect to another.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a node waits for one answer: a large transaction's prepare
/// replicates megabytes through a Raft group (three synced writes, then a
/// check of every key), which takes seconds on a busy machine. A dead peer
/// is noticed sooner: its connections are refused or reset.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message a node takes from another: all of a transaction's
/// writes to one node travel in one `Prepare`, and its own writes to a
/// table in the ticket of a scan (tonic's default is 4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Metadata key carrying the caller's cluster id.
pub const CLUSTER_HEADER: &str = "x-shardforge-cluster";

/// PERMISSION_DENIED unless `metadata` names cluster `cluster_id`.
pub fn check_member(metadata: &MetadataMap, cluster_id: &str) -> Result<(), Status> {
    let caller = metadata.get(CLUSTER_HEADER).and_then(|v| v.to_str().ok());
    if caller == Some(cluster_id) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "a call from outside cluster {cluster_id}"
        )))
    }
}

/// Calls `method` of `client` with `request`, as a member of cluster
/// `cluster_id`, and calls once more if the peer was unreachable: a pooled
/// channel to a node that was down reports the old failure once before it
/// reconnects. Only for calls that may be repeated (all of ShardForge's are
/// idempotent).
pub async fn call_twice<C, Req, T, Fut>(
    client: &C,
    request: &Req,
    cluster_id: &str,
    method: impl Fn(C, tonic::Request<Req>) -> Fut,
) -> Result<T, Status>
where
    C: Clone,
    Req: Clone,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let call = || async {
        let request =
            as_member(request.clone(), cluster_id).map_err(|e| Status::internal(e.to_string()))?;
        method(client.clone(), request).await
    };
    match call().await {
        Err(status) if status.code() == tonic::Code::Unavailable => call().await,
        other => other,
    }
}

/// `request` with this node's cluster named, for a call to a member.
pub fn as_member<T>(request: T, cluster_id: &str) -> Result<tonic::Request<T>, Error> {
    let mut request = tonic::Request::new(request);
    let value = cluster_id
        .parse()
        .map_err(|_| Error::Internal("cluster id is not a header value".into()))?;
    request.metadata_mut().insert(CLUSTER_HEADER, value);
    Ok(request)
}

/// The connections `listener` accepts, as gRPC serves them. Without
/// TCP_NODELAY (which tonic sets only on listeners it binds itself) a small
/// answer waits for the peer's delayed ACK: 40 ms on Linux.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The endpoint of the node at `addr`, with ShardForge's timeouts.
pub fn endpoint(addr: &str) -> Result<Endpoint, Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| {
            Error::input(
                InputError::InvalidParameterValue,
                format!("bad address {addr}: {e}"),
            )
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(RPC_TIMEOUT))
}

/// One channel per peer address, connected on first use and shared by
/// every call to that peer (cluster, transactions, scans, Raft).
#[derive(Default)]
pub struct ChannelPool {
    channels: Mutex<HashMap<String, Channel>>,
}

impl ChannelPool {
    pub fn get(&self, addr: &str) -> Result<Channel, Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = endpoint(addr)?.connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }
}

/// Serves `router` on a free loopback port and connects to it, for tests of
/// the services over real TCP.
#[cfg(test)]
pub async fn loopback(router: tonic::transport::server::Router) -> tonic::transport::Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(router.serve_with_incoming(incoming(listener)));
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}
