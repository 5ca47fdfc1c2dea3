//! Scans of a shard group held by another node, over Arrow Flight.
//!
//! `DoGet` takes a `ScanRequest` (protobuf, `proto/shard.proto`) as its
//! ticket, with the reading transaction's own writes in that range as its
//! overlay. The node's replica of the group scans as a local scan does
//! ([`scan_local`]) and the response streams its batches as Arrow IPC: a
//! slow reader stops the scan from running ahead, and a reader that drops
//! the stream stops the scan. Only
//! members of the cluster are served (`crate::rpc`), and a ticket that does
//! not decode is INVALID_ARGUMENT. Every other Flight method is
//! UNIMPLEMENTED.
//!
//! A replicated group is read on its leader only, once the leader may
//! serve the read (`access::ready_to_read`: it leads under its lease, has
//! applied every commit acknowledged before the read, and no write in
//! flight the read may have to see is in its way), so no read misses an
//! acknowledged write. A replica that does not lead answers ABORTED (retry
//! the transaction).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::access::{ready_to_read, scan_local};
use super::locks::WriteLocks;
use super::proto::ScanRequest;
use super::replica::decode_filter;
use super::{scan_schema, ShardMap};
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;
use crate::rpc::{call_twice, check_member, MAX_MESSAGE_BYTES};

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

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

/// Serves scans of this node's shard groups. It is served from the start
/// (with the other RPCs) and answers UNAVAILABLE until [`Self::ready`].
#[derive(Default)]
pub struct ShardFlightService {
    ready: OnceLock<Ready>,
}

impl ShardFlightService {
    pub fn server(self: &Arc<Self>) -> FlightServiceServer<Self> {
        FlightServiceServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
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

    fn scan(&self, request: Request<Ticket>) -> std::result::Result<BoxStream<FlightData>, Status> {
        let ready = self
            .ready
            .get()
            .ok_or_else(|| Status::unavailable("this node does not serve shard groups yet"))?;
        check_member(request.metadata(), &ready.cluster_id)?;
        let mut scan = ScanRequest::decode(request.into_inner().ticket)
            .map_err(|e| Status::invalid_argument(format!("bad scan ticket: {e}")))?;
        let replica = ready
            .shards
            .replicas()
            .get(scan.shard_id as usize)
            .filter(|r| r.range().node == ready.node || r.range().replicas.contains(&ready.node))
            .cloned()
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "shard group {} is not on node {}",
                    scan.shard_id, ready.node
                ))
            })?;
        // A replicated group's read waits until its leader may serve it
        // (`access::ready_to_read`).
        let linearized: BoxFuture<'static, Result<()>> =
            match (replica.range().is_replicated(), &ready.groups) {
                (false, _) => Box::pin(futures::future::ready(Ok(()))),
                (true, Some(groups)) => {
                    let (groups, locks) = (groups.clone(), ready.locks.clone());
                    let (replica, request) = (replica.clone(), scan.clone());
                    Box::pin(async move { ready_to_read(&groups, &locks, replica, &request).await })
                }
                (true, None) => return Err(Status::unavailable("replication is not running here")),
            };
        if !scan.keys.is_empty() {
            return existing(replica, scan, linearized);
        }
        let schema = Arc::new(scan_schema(&scan).map_err(Status::from)?);
        let mut overlay: Vec<(Vec<u8>, Option<Vec<u8>>)> = std::mem::take(&mut scan.overlay)
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        overlay.sort_by(|a, b| a.0.cmp(&b.0));
        let filter = decode_filter(&scan.filter, &schema);
        let scanned = scan_local(replica, scan, Arc::new(overlay), filter);
        let batches = futures::stream::once(async move {
            match linearized.await {
                Ok(()) => scanned,
                Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .map_err(|e| FlightError::Tonic(Box::new(e.into())));
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Box::pin(data))
    }
}

/// The answer to a scan of `keys`: a row per key, in order, whose one
/// column tells whether it has a row at the snapshot.
fn existing(
    replica: Arc<super::ShardReplica>,
    scan: ScanRequest,
    linearized: BoxFuture<'static, Result<()>>,
) -> std::result::Result<BoxStream<FlightData>, Status> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "exists",
        DataType::Boolean,
        false,
    )]));
    let counted = {
        let schema = schema.clone();
        async move {
            linearized
                .await
                .map_err(|e| FlightError::Tonic(Box::new(e.into())))?;
            let existing =
                tokio::task::spawn_blocking(move || super::access::existing_local(&replica, &scan))
                    .await
                    .map_err(|e| FlightError::ExternalError(Box::new(e)))?
                    .map_err(|e| FlightError::Tonic(Box::new(e.into())))?;
            let column = BooleanArray::from(existing);
            Ok(RecordBatch::try_new(schema, vec![Arc::new(column)])?)
        }
    };
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(counted))
        .map_err(Status::from);
    Ok(Box::pin(data))
}

/// Scans a shard group on the node at the other end of `channel`, as a
/// member of cluster `cluster_id`; errors name `node`.
pub fn scan_remote(
    channel: Channel,
    cluster_id: &str,
    node: &str,
    request: &ScanRequest,
) -> impl Stream<Item = Result<RecordBatch>> + Send + 'static {
    let ticket = Ticket {
        ticket: request.encode_to_vec().into(),
    };
    let cluster_id = cluster_id.to_string();
    let node = node.to_string();
    let failed = {
        let node = node.clone();
        move |e: FlightError| match e {
            FlightError::Tonic(status) => Error::from_rpc(&node, *status),
            other => Error::NodeUnreachable(format!("scan on {node}: {other}")),
        }
    };
    futures::stream::once(async move {
        let client = FlightServiceClient::new(channel);
        let response = call_twice(&client, &ticket, &cluster_id, |mut c, r| async move {
            c.do_get(r).await
        })
        .await
        .map_err(|s| Error::from_rpc(&node, s))?;
        let data = response.into_inner().map_err(FlightError::from);
        Ok::<_, Error>(FlightRecordBatchStream::new_from_flight_data(data).map_err(failed))
    })
    .try_flatten()
}

type Unimplemented<T> = std::result::Result<Response<T>, Status>;

fn unimplemented<T>() -> Unimplemented<T> {
    Err(Status::unimplemented(
        "ShardForge serves shard scans with DoGet only",
    ))
}

#[tonic::async_trait]
impl FlightService for ShardFlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn do_get(&self, request: Request<Ticket>) -> Unimplemented<Self::DoGetStream> {
        self.scan(request).map(Response::new)
    }

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Unimplemented<Self::HandshakeStream> {
        unimplemented()
    }

    async fn list_flights(&self, _: Request<Criteria>) -> Unimplemented<Self::ListFlightsStream> {
        unimplemented()
    }

    async fn get_flight_info(&self, _: Request<FlightDescriptor>) -> Unimplemented<FlightInfo> {
        unimplemented()
    }

    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Unimplemented<PollInfo> {
        unimplemented()
    }

    async fn get_schema(&self, _: Request<FlightDescriptor>) -> Unimplemented<SchemaResult> {
        unimplemented()
    }

    async fn do_put(&self, _: Request<Streaming<FlightData>>) -> Unimplemented<Self::DoPutStream> {
        unimplemented()
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Unimplemented<Self::DoExchangeStream> {
        unimplemented()
    }

    async fn do_action(&self, _: Request<Action>) -> Unimplemented<Self::DoActionStream> {
        unimplemented()
    }

    async fn list_actions(&self, _: Request<Empty>) -> Unimplemented<Self::ListActionsStream> {
        unimplemented()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{create_for_test, int_table, Catalog};
    use crate::encoding::keys::{encode_key_value, row_key};
    use crate::encoding::row::encode_rows;
    use crate::encoding::schema::encode_schema;
    use crate::rpc::as_member;
    use crate::shard::proto::Mutation;
    use crate::shard::replica::encode_filter;
    use crate::storage::Storage;
    use datafusion::arrow::array::{AsArray, Int32Array};
    use datafusion::arrow::datatypes::Int32Type;
    use tonic::transport::Server;

    const ROWS: i32 = 20_000;
    /// The snapshot the tests read at, after the rows' commit.
    const READ_TS: u64 = 10;

    /// A node with `ROWS` rows of `t (id int PRIMARY KEY)` in two shard
    /// groups, and the table's id.
    fn node() -> (tempfile::TempDir, Arc<ShardMap>, u32) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 2).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        let table = create_for_test(&catalog, int_table("t"));
        crate::shard::put_rows_for_test(&storage, rows(table.id.0, 0..ROWS), 1);
        (dir, shards, table.id.0)
    }

    /// The keys and encoded rows of `ids`.
    fn rows(table: u32, ids: std::ops::Range<i32>) -> Vec<(Vec<u8>, Vec<u8>)> {
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

    fn key(table: u32, id: i32) -> Vec<u8> {
        let mut pk = Vec::new();
        encode_key_value(&mut pk, &Int32Array::from(vec![id]), 0).unwrap();
        row_key(table, &pk)
    }

    async fn serve(service: Arc<ShardFlightService>) -> Channel {
        crate::rpc::loopback(Server::builder().add_service(service.server())).await
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i32> {
        let mut ids: Vec<i32> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_scan_reads_what_a_local_one_does() {
        let (_dir, c, table) = node();
        let service = Arc::new(ShardFlightService::default());
        service.ready("c1".into(), 1, c.clone(), None, Arc::default());
        let channel = serve(service).await;
        let def = int_table("t");
        // The reader's own writes: one new row, one deleted.
        let new_row = rows(table, ROWS..ROWS + 1).remove(0);
        let overlay = [
            (new_row.0.clone(), Some(new_row.1.clone())),
            (key(table, 7), None),
        ];
        let mut remote = Vec::new();
        for replica in c.replicas().iter() {
            let (start, end) = crate::encoding::keys::hash_range_bounds(
                table,
                replica.range().hash_start,
                replica.range().hash_end,
            );
            let mine: Vec<_> = overlay
                .iter()
                .filter(|(k, _)| start <= *k && *k < end)
                .cloned()
                .collect();
            let request = ScanRequest {
                table_id: table,
                shard_id: replica.range().id.0,
                snapshot_ts: READ_TS,
                row_schema: encode_schema(&def.row_schema()),
                projection: vec![0],
                limit: None,
                point_key: None,
                overlay: mine
                    .iter()
                    .map(|(key, value)| Mutation {
                        key: key.clone(),
                        value: value.clone(),
                        ..Default::default()
                    })
                    .collect(),
                keys: Vec::new(),
                filter: Vec::new(),
                ..Default::default()
            };
            let batches: Vec<RecordBatch> = scan_remote(channel.clone(), "c1", "n1", &request)
                .try_collect()
                .await
                .unwrap();
            assert!(batches.len() > 1, "several batches stream from one group");
            let mut local = Vec::new();
            replica
                .scan(&request, &mine, None, |b| {
                    local.push(b);
                    true
                })
                .unwrap();
            assert_eq!(ids(&batches), ids(&local));
            remote.extend(batches);
        }
        let expected: Vec<i32> = (0..=ROWS).filter(|&id| id != 7).collect();
        assert_eq!(ids(&remote), expected);

        // A reader that stops early leaves the service serving.
        let request = ScanRequest {
            table_id: table,
            shard_id: 0,
            snapshot_ts: READ_TS,
            row_schema: encode_schema(&def.row_schema()),
            projection: vec![],
            limit: Some(3),
            point_key: None,
            overlay: Vec::new(),
            keys: Vec::new(),
            filter: Vec::new(),
            ..Default::default()
        };
        let mut stream = Box::pin(scan_remote(channel.clone(), "c1", "n1", &request));
        let first = futures::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.num_rows(), 3);
        drop(stream);
        let again: Vec<RecordBatch> = scan_remote(channel, "c1", "n1", &request)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(again.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_serving_node_applies_the_filter_and_leaves_a_failing_one_to_the_reader() {
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::{binary, col, lit};
        use datafusion::physical_expr::PhysicalExpr;

        let (_dir, c, table) = node();
        let service = Arc::new(ShardFlightService::default());
        service.ready("c1".into(), 1, c.clone(), None, Arc::default());
        let channel = serve(service).await;
        let def = int_table("t");
        let schema = def.row_schema();
        let filter = |op: Operator, value: i32| -> Arc<dyn PhysicalExpr> {
            binary(col("id", &schema).unwrap(), op, lit(value), &schema).unwrap()
        };
        let scan = |filter: Vec<u8>| {
            let channel = channel.clone();
            let request = ScanRequest {
                table_id: table,
                snapshot_ts: READ_TS,
                row_schema: encode_schema(&schema),
                projection: vec![0],
                filter,
                ..Default::default()
            };
            async move {
                let mut batches = Vec::new();
                for shard_id in 0..2 {
                    let request = ScanRequest {
                        shard_id,
                        ..request.clone()
                    };
                    let mut more: Vec<RecordBatch> =
                        scan_remote(channel.clone(), "c1", "n1", &request)
                            .try_collect()
                            .await
                            .unwrap();
                    batches.append(&mut more);
                }
                ids(&batches)
            }
        };

        // Only the rows that pass come over the wire.
        let kept = scan(encode_filter(&filter(Operator::Lt, 10))).await;
        assert_eq!(kept, (0..10).collect::<Vec<_>>());

        // `1 / (id - 5) > 0` fails on row 5: the node stops filtering and
        // sends the rows, so the reader (which filters again) reports it.
        let minus_five = binary(
            col("id", &schema).unwrap(),
            Operator::Minus,
            lit(5),
            &schema,
        );
        let divide = binary(lit(1), Operator::Divide, minus_five.unwrap(), &schema).unwrap();
        let failing = binary(divide, Operator::Gt, lit(0), &schema).unwrap();
        assert!(scan(encode_filter(&failing)).await.contains(&5));

        // Bytes that do not decode as a filter: every row.
        assert_eq!(scan(vec![0xff, 0x01]).await.len(), ROWS as usize);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strangers_bad_tickets_and_other_nodes_groups_are_refused() {
        let (_dir, c, table) = node();
        let not_ready = serve(Arc::new(ShardFlightService::default())).await;
        let service = Arc::new(ShardFlightService::default());
        // This node is node 2; every group of this shard map is node 1's.
        service.ready("c1".into(), 2, c.clone(), None, Arc::default());
        let channel = serve(service).await;
        let request = ScanRequest {
            table_id: table,
            shard_id: 0,
            row_schema: encode_schema(&int_table("t").row_schema()),
            ..Default::default()
        };
        let error = |channel: Channel, cluster: &'static str, request: ScanRequest| async move {
            scan_remote(channel, cluster, "n", &request)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err()
                .to_string()
        };
        assert!(error(not_ready, "c1", request.clone())
            .await
            .contains("does not serve"));
        assert!(error(channel.clone(), "c2", request.clone())
            .await
            .contains("outside cluster"));
        assert!(error(channel.clone(), "c1", request)
            .await
            .contains("is not on node 2"));

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
}
