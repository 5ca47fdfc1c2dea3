//! Scans of a shard group held by another node, over Arrow Flight.
//!
//! `DoGet` takes a `ScanRequest` (protobuf, `proto/shard.proto`) as its
//! ticket, with the reading transaction's own writes in that range as its
//! overlay. The node's replica of the group scans as a local scan does
//! ([`scan_local`]) and the response streams its batches as Arrow IPC: a
//! slow reader stops the scan from running ahead, and a reader that drops
//! the stream stops the scan. Who is served, and when a replicated group's
//! leader may serve a read, is as for every read of the node's groups
//! ([`super::service`]). A ticket that does not decode is
//! INVALID_ARGUMENT. Every other Flight method is UNIMPLEMENTED.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::access::scan_local;
use super::proto::ScanRequest;
use super::replica::decode_filter;
use super::scan_schema;
use super::service::ShardService;
use crate::error::{Error, Result};
use crate::rpc::{call_twice, MAX_MESSAGE_BYTES};

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

impl ShardService {
    pub fn flight_server(self: &Arc<Self>) -> FlightServiceServer<Self> {
        FlightServiceServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn scan(&self, request: Request<Ticket>) -> std::result::Result<BoxStream<FlightData>, Status> {
        let (metadata, _, ticket) = request.into_parts();
        let mut scan = ScanRequest::decode(ticket.ticket)
            .map_err(|e| Status::invalid_argument(format!("bad scan ticket: {e}")))?;
        if !scan.keys.is_empty() {
            return Err(Status::invalid_argument(
                "a read of keys is a ShardReads.Get, not a scan",
            ));
        }
        let served = self.replica_for(&metadata, &scan)?;
        let schema = Arc::new(scan_schema(&scan).map_err(Status::from)?);
        let mut overlay: Vec<(Vec<u8>, Option<Vec<u8>>)> = std::mem::take(&mut scan.overlay)
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        overlay.sort_by(|a, b| a.0.cmp(&b.0));
        let replica = served.replica.clone();
        let request = scan.clone();
        let linearized = async move { served.ready(&request).await };
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
impl FlightService for ShardService {
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
    use crate::catalog::int_table;
    use crate::encoding::schema::encode_schema;
    use crate::shard::proto::Mutation;
    use crate::shard::replica::encode_filter;
    use crate::shard::service::tests::{ids, key, node, rows, serve_as, READ_TS, ROWS};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_scan_reads_what_a_local_one_does() {
        let (_dir, c, table) = node();
        let channel = serve_as(1, &c).await;
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
        let channel = serve_as(1, &c).await;
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
}
