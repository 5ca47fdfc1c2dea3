//! `ShardScanExec`: a table scan with one DataFusion partition per shard
//! group.
//!
//! Each partition sends its `ScanRequest` to its shard replica and streams
//! back the Arrow batches the replica decodes, dropping the rows that fail
//! the pushed-down filters before they leave the partition. `execute` does no I/O: the
//! scan starts when the stream is first polled, runs on a blocking thread,
//! and hands batches over a bounded channel, so a slow consumer holds the
//! scan back and dropping the stream stops it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use crate::shard::proto::ScanRequest;
use crate::shard::ShardReplica;

/// The rows of `batch` for which `predicate` is true.
fn apply(predicate: &Arc<dyn PhysicalExpr>, batch: RecordBatch) -> DFResult<RecordBatch> {
    let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
    let mask = datafusion::common::cast::as_boolean_array(&mask)?;
    Ok(filter_record_batch(&batch, mask)?)
}

/// Batches a partition may have decoded ahead of its consumer.
const SCAN_CHANNEL_BATCHES: usize = 2;

type Overlay = Arc<Vec<(Vec<u8>, Option<Vec<u8>>)>>;

#[derive(Debug)]
pub struct ShardScanExec {
    table: String,
    schema: SchemaRef,
    requests: Vec<(Arc<ShardReplica>, ScanRequest)>,
    /// The transaction's own uncommitted writes to this table.
    overlay: Overlay,
    /// Pushed-down filters, applied to each batch inside the partition.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
}

impl ShardScanExec {
    pub fn new(
        table: String,
        schema: SchemaRef,
        requests: Vec<(Arc<ShardReplica>, ScanRequest)>,
        overlay: Overlay,
        predicate: Option<Arc<dyn PhysicalExpr>>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(requests.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            table,
            schema,
            requests,
            overlay,
            predicate,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for ShardScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let shards: Vec<u32> = self.requests.iter().map(|(r, _)| r.range().id.0).collect();
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "ShardScanExec: table={}, shard_groups={:?}, projection=[{}]",
            self.table,
            shards,
            columns.join(", ")
        )?;
        if let Some(predicate) = &self.predicate {
            write!(f, ", filter={predicate}")?;
        }
        if let Some((_, request)) = self.requests.first() {
            if request.point_key.is_some() {
                write!(f, ", point_lookup=true")?;
            }
            if let Some(limit) = request.limit {
                write!(f, ", limit={limit}")?;
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for ShardScanExec {
    fn name(&self) -> &str {
        "ShardScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        match &self.predicate {
            Some(predicate) => f(predicate),
            None => Ok(TreeNodeRecursion::Continue),
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("ShardScanExec has no children")
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = self.schema.clone();
        let Some((replica, request)) = self.requests.get(partition).cloned() else {
            // A table scan planned with no shard groups yields nothing.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        };
        let overlay = self.overlay.clone();
        let predicate = self.predicate.clone();
        let batches = futures::stream::once(async move {
            let (tx, rx) =
                tokio::sync::mpsc::channel::<DFResult<RecordBatch>>(SCAN_CHANNEL_BATCHES);
            tokio::task::spawn_blocking(move || {
                let result = replica.scan(&request, &overlay, |batch| {
                    let batch = match &predicate {
                        Some(predicate) => apply(predicate, batch),
                        None => Ok(batch),
                    };
                    tx.blocking_send(batch).is_ok()
                });
                if let Err(e) = result {
                    // The reader may be gone already; then nobody needs the error.
                    let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
                }
            });
            tokio_stream::wrappers::ReceiverStream::new(rx)
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}
