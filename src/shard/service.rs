//! What a node serves of its shard groups to the other nodes: scans over
//! Arrow Flight (`super::flight`), and reads of single rows
//! (`ShardReads.Get`, here) in one unary call, which costs a point read
//! less than a Flight stream (no Arrow IPC schema and batch to encode and
//! decode, one response frame instead of a stream's).
//!
//! Only members of the cluster are served (`crate::rpc`). A replicated
//! group is read on its leader only, once the leader may serve the read
//! (`access::ready_to_read`: it leads under its lease, has applied every
//! commit acknowledged before the read, and no write in flight the read
//! may have to see is in its way), so no read misses an acknowledged
//! write. A replica that does not lead answers ABORTED (retry the
//! transaction).

use std::sync::{Arc, OnceLock};

use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::access::{ready_to_read, INLINE_KEYS};
use super::locks::WriteLocks;
use super::proto::shard_reads_client::ShardReadsClient;
use super::proto::shard_reads_server::{ShardReads, ShardReadsServer};
use super::proto::{FoundRow, GetReply, ScanRequest};
use super::{ShardMap, ShardReplica};
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;
use crate::rpc::{call_twice, check_member, MAX_MESSAGE_BYTES};

/// What the service needs once the node is part of a cluster.
struct Ready {
    cluster_id: String,
    node: u32,
    shards: Arc<ShardMap>,
    /// The node's Raft groups, when the cluster replicates.
    groups: Option<Arc<ShardGroups>>,
    /// What readers of a replicated group wait for (see `shard::locks`).
    locks: Arc<WriteLocks>,
}

/// Serves reads of this node's shard groups. It is served from the start
/// (with the other RPCs) and answers UNAVAILABLE until [`Self::ready`].
#[derive(Default)]
pub struct ShardService {
    ready: OnceLock<Ready>,
}

impl ShardService {
    pub fn reads_server(self: &Arc<Self>) -> ShardReadsServer<Self> {
        ShardReadsServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Starts serving the shard groups `shards` holds for `node`, the
    /// replicated ones through `groups`.
    pub fn ready(
        &self,
        cluster_id: String,
        node: u32,
        shards: Arc<ShardMap>,
        groups: Option<Arc<ShardGroups>>,
        locks: Arc<WriteLocks>,
    ) {
        let _ = self.ready.set(Ready {
            cluster_id,
            node,
            shards,
            groups,
            locks,
        });
    }

    /// This node's replica of the group `request` reads, for a member of
    /// the cluster.
    pub(super) fn replica_for(
        &self,
        metadata: &MetadataMap,
        request: &ScanRequest,
    ) -> std::result::Result<Served, Status> {
        let ready = self
            .ready
            .get()
            .ok_or_else(|| Status::unavailable("this node does not serve shard groups yet"))?;
        check_member(metadata, &ready.cluster_id)?;
        let replica = ready
            .shards
            .replicas()
            .get(request.shard_id as usize)
            .filter(|r| r.range().node == ready.node || r.range().replicas.contains(&ready.node))
            .cloned()
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "shard group {} is not on node {}",
                    request.shard_id, ready.node
                ))
            })?;
        let leader = match (replica.range().is_replicated(), &ready.groups) {
            (false, _) => None,
            (true, Some(groups)) => Some((groups.clone(), ready.locks.clone())),
            (true, None) => return Err(Status::unavailable("replication is not running here")),
        };
        Ok(Served { replica, leader })
    }
}

/// A replica of this node that a read is for.
pub(super) struct Served {
    pub replica: Arc<ShardReplica>,
    /// What a replicated group's leader checks before it serves a read.
    leader: Option<(Arc<ShardGroups>, Arc<WriteLocks>)>,
}

impl Served {
    /// Waits until the replica may serve `request` (at once for a group
    /// that is not replicated; `access::ready_to_read` otherwise).
    pub async fn ready(&self, request: &ScanRequest) -> Result<()> {
        match &self.leader {
            None => Ok(()),
            Some((groups, locks)) => {
                ready_to_read(groups, locks, self.replica.clone(), request).await
            }
        }
    }
}

#[tonic::async_trait]
impl ShardReads for ShardService {
    async fn get(
        &self,
        request: Request<ScanRequest>,
    ) -> std::result::Result<Response<GetReply>, Status> {
        let (metadata, _, request) = request.into_parts();
        let served = self.replica_for(&metadata, &request)?;
        served.ready(&request).await?;
        let replica = served.replica;
        let rows = match request.keys.len() <= INLINE_KEYS {
            true => replica.read_keys(&request)?,
            false => tokio::task::spawn_blocking(move || replica.read_keys(&request))
                .await
                .map_err(|e| Status::internal(e.to_string()))??,
        };
        let rows = rows.into_iter().map(|row| FoundRow { row }).collect();
        Ok(Response::new(GetReply { rows }))
    }
}

/// The rows under `request.keys` in a shard group on the node at the other
/// end of `channel` (see [`ShardReplica::read_keys`]), as a member of
/// cluster `cluster_id`; errors name `node`.
pub async fn get_remote(
    channel: Channel,
    cluster_id: &str,
    node: &str,
    request: &ScanRequest,
) -> Result<Vec<Option<Vec<u8>>>> {
    let client = ShardReadsClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let reply = call_twice(&client, request, cluster_id, |mut c, r| async move {
        c.get(r).await
    })
    .await
    .map_err(|s| Error::from_rpc(node, s))?
    .into_inner();
    if reply.rows.len() != request.keys.len() {
        return Err(Error::Internal(format!(
            "{node} answered {} rows for {} keys",
            reply.rows.len(),
            request.keys.len()
        )));
    }
    Ok(reply.rows.into_iter().map(|found| found.row).collect())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::catalog::{create_for_test, int_table, Catalog};
    use crate::encoding::keys::{encode_key_value, row_key};
    use crate::encoding::row::encode_rows;
    use crate::encoding::schema::encode_schema;
    use crate::rpc::as_member;
    use crate::shard::flight::scan_remote;
    use crate::storage::Storage;
    use arrow_flight::flight_service_client::FlightServiceClient;
    use arrow_flight::Ticket;
    use datafusion::arrow::array::{AsArray, Int32Array};
    use datafusion::arrow::datatypes::Int32Type;
    use datafusion::arrow::record_batch::RecordBatch;
    use futures::TryStreamExt;
    use tonic::transport::Server;

    pub const ROWS: i32 = 20_000;
    /// The snapshot the tests read at, after the rows' commit.
    pub const READ_TS: u64 = 10;

    /// A node with `ROWS` rows of `t (id int PRIMARY KEY)` in two shard
    /// groups, and the table's id.
    pub fn node() -> (tempfile::TempDir, Arc<ShardMap>, u32) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 2).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        let table = create_for_test(&catalog, int_table("t"));
        crate::shard::put_rows_for_test(&storage, rows(table.id.0, 0..ROWS), 1);
        (dir, shards, table.id.0)
    }

    /// The keys and encoded rows of `ids`.
    pub fn rows(table: u32, ids: std::ops::Range<i32>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let def = int_table("t");
        let batch = RecordBatch::try_new(
            def.row_schema(),
            vec![Arc::new(Int32Array::from_iter_values(ids.clone()))],
        )
        .unwrap();
        ids.zip(encode_rows(&batch).unwrap())
            .map(|(id, row)| (key(table, id), row))
            .collect()
    }

    pub fn key(table: u32, id: i32) -> Vec<u8> {
        let mut pk = Vec::new();
        encode_key_value(&mut pk, &Int32Array::from(vec![id]), 0).unwrap();
        row_key(table, &pk)
    }

    /// `service` on a loopback port: its Flight scans and its reads.
    pub async fn serve(service: Arc<ShardService>) -> Channel {
        let server = Server::builder()
            .add_service(service.flight_server())
            .add_service(service.reads_server());
        crate::rpc::loopback(server).await
    }

    /// A service of node `node` of cluster `c1` serving `shards`, on a
    /// loopback port.
    pub async fn serve_as(node: u32, shards: &Arc<ShardMap>) -> Channel {
        let service = Arc::new(ShardService::default());
        service.ready("c1".into(), node, shards.clone(), None, Arc::default());
        serve(service).await
    }

    pub fn ids(batches: &[RecordBatch]) -> Vec<i32> {
        let mut ids: Vec<i32> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strangers_bad_tickets_and_other_nodes_groups_are_refused() {
        let (_dir, c, table) = node();
        let not_ready = serve(Arc::new(ShardService::default())).await;
        // This node is node 2; every group of this shard map is node 1's.
        let channel = serve_as(2, &c).await;
        let request = ScanRequest {
            table_id: table,
            shard_id: 0,
            row_schema: encode_schema(&int_table("t").row_schema()),
            ..Default::default()
        };
        // A scan and a read of keys are refused alike.
        let refused = |channel: Channel, cluster: &'static str, request: ScanRequest| async move {
            let scan = scan_remote(channel.clone(), cluster, "n", &request)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err()
                .to_string();
            let keys = ScanRequest {
                keys: vec![key(table, 1)],
                ..request
            };
            let get = get_remote(channel, cluster, "n", &keys).await.unwrap_err();
            [scan, get.to_string()]
        };
        for (channel, cluster, error) in [
            (not_ready, "c1", "does not serve"),
            (channel.clone(), "c2", "outside cluster"),
            (channel.clone(), "c1", "is not on node 2"),
        ] {
            for refusal in refused(channel, cluster, request.clone()).await {
                assert!(refusal.contains(error), "{refusal}");
            }
        }

        let call = as_member(
            Ticket {
                ticket: vec![0xff, 0xff, 0xff].into(),
            },
            "c1",
        )
        .unwrap();
        let status = FlightServiceClient::new(channel)
            .do_get(call)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_read_of_keys_reads_what_a_local_one_does() {
        let (_dir, c, table) = node();
        let channel = serve_as(1, &c).await;
        let (present, absent) = (rows(table, 7..8).remove(0), key(table, ROWS + 1));
        let group = c.for_key(&present.0).range().id.0;
        let read = |projection: Vec<u32>, snapshot_ts: u64| ScanRequest {
            table_id: table,
            shard_id: group,
            snapshot_ts,
            projection,
            keys: vec![absent.clone(), present.0.clone(), absent.clone()],
            ..Default::default()
        };
        let rows = get_remote(channel.clone(), "c1", "n1", &read(vec![0], READ_TS)).await;
        assert_eq!(rows.unwrap(), [None, Some(present.1.clone()), None]);
        let local = c.for_key(&present.0).read_keys(&read(vec![0], READ_TS));
        assert_eq!(local.unwrap(), [None, Some(present.1), None]);
        // Presence only: no column asked, none sent.
        let rows = get_remote(channel.clone(), "c1", "n1", &read(vec![], READ_TS)).await;
        assert_eq!(rows.unwrap(), [None, Some(Vec::new()), None]);
        // Before the rows' commit, there is none.
        let rows = get_remote(channel.clone(), "c1", "n1", &read(vec![0], 0)).await;
        assert_eq!(rows.unwrap(), [None, None, None]);
        // A Flight scan of keys is refused: they are read with Get.
        let scan: Result<Vec<RecordBatch>> =
            scan_remote(channel, "c1", "n1", &read(vec![0], READ_TS))
                .try_collect()
                .await;
        assert!(scan.unwrap_err().to_string().contains("ShardReads.Get"));
    }
}
