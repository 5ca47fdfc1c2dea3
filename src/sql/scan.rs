//! `ShardScanExec`: a table scan with one DataFusion partition per shard
//! group.
//!
//! Each partition sends its `ScanRequest` to its shard group, on this node
//! or another (`shard::access`), and streams back the Arrow batches the
//! replica decodes. The request carries the pushed-down filters, so rows
//! that fail them never leave the node that holds them. `execute` does no I/O: the scan starts
//! when the stream is first polled; a slow consumer holds it back and
//! dropping the stream stops it. `EXPLAIN` shows each group with the node
//! that serves it (`shard_groups=[0@node1, 1@node2, ...]`).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
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

use crate::shard::access::{OwnWrites, ShardAccess};
use crate::shard::proto::ScanRequest;

#[derive(Debug)]
pub struct ShardScanExec {
    table: String,
    schema: SchemaRef,
    requests: Vec<(ShardAccess, ScanRequest)>,
    /// The transaction's own uncommitted writes to this table.
    overlay: OwnWrites,
    /// Pushed-down filters, applied where the rows are read.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
}

impl ShardScanExec {
    pub fn new(
        table: String,
        schema: SchemaRef,
        requests: Vec<(ShardAccess, ScanRequest)>,
        overlay: OwnWrites,
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
        // Which node serves each group's scan.
        let shards: Vec<String> = self
            .requests
            .iter()
            .map(|(s, _)| format!("{s:?}"))
            .collect();
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "ShardScanExec: table={}, shard_groups=[{}], projection=[{}]",
            self.table,
            shards.join(", "),
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
        let Some((shard, request)) = self.requests.get(partition).cloned() else {
            // A table scan planned with no shard groups yields nothing.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        };
        let batches = shard
            .scan(request, self.overlay.clone(), self.predicate.clone())
            .map(|batch| batch.map_err(|e| DataFusionError::External(Box::new(e))));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}
