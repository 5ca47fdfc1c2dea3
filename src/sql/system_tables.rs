//! `shardforge_nodes`, `shardforge_shards` and `shardforge_replicas`: the
//! cluster's members, shard map and the live members' replicas of the
//! replicated shard groups and of the meta group (its `shard_id` is NULL)
//! as read-only tables, filled from the meta node's
//! `Status` on every scan (so from any node, as `shardforge status` shows
//! them).
//!
//! They are found by unqualified name like user tables (the `public` schema
//! serves them), but are not listed there, and their names cannot be taken
//! by a user table (`catalog::SYSTEM_TABLES`).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::{SYSTEM_NODES, SYSTEM_REPLICAS, SYSTEM_SHARDS};
use crate::raft::META_GROUP;
use crate::txn::TxnCoordinator;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Nodes,
    Shards,
    Replicas,
}

pub struct SystemTable {
    kind: Kind,
    /// The node's, for its cluster and its Raft groups.
    coordinator: Arc<TxnCoordinator>,
    schema: SchemaRef,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SystemTable({:?})", self.kind)
    }
}

/// The system table called `name`, if there is one.
pub fn system_table(
    name: &str,
    coordinator: &Arc<TxnCoordinator>,
) -> Option<Arc<dyn TableProvider>> {
    let (kind, fields) = match name {
        SYSTEM_NODES => (
            Kind::Nodes,
            vec![
                Field::new("node_id", DataType::Int32, false),
                Field::new("rpc_addr", DataType::Utf8, false),
                Field::new("pg_addr", DataType::Utf8, false),
                Field::new("http_addr", DataType::Utf8, false),
                Field::new("is_live", DataType::Boolean, false),
                Field::new("is_meta", DataType::Boolean, false),
                Field::new("last_seen_ms", DataType::Int64, false),
            ],
        ),
        SYSTEM_SHARDS => (
            Kind::Shards,
            vec![
                Field::new("shard_id", DataType::Int32, false),
                Field::new("hash_start", DataType::Int32, false),
                Field::new("hash_end", DataType::Int32, false),
                Field::new("node_id", DataType::Int32, false),
                Field::new("replicas", DataType::Utf8, false),
            ],
        ),
        SYSTEM_REPLICAS => (
            Kind::Replicas,
            vec![
                Field::new("shard_id", DataType::Int32, true),
                Field::new("node_id", DataType::Int32, false),
                Field::new("is_leader", DataType::Boolean, false),
                Field::new("leader_id", DataType::Int32, true),
                Field::new("term", DataType::Int64, false),
                Field::new("applied_index", DataType::Int64, false),
                Field::new("lag", DataType::Int64, false),
                Field::new("purged_index", DataType::Int64, false),
            ],
        ),
        _ => return None,
    };
    Some(Arc::new(SystemTable {
        kind,
        coordinator: coordinator.clone(),
        schema: Arc::new(Schema::new(fields)),
    }))
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let coordinator = &self.coordinator;
        let status = coordinator
            .cluster()
            .status(Some(coordinator.groups()))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let int = |v: Vec<i32>| Arc::new(Int32Array::from(v)) as ArrayRef;
        let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        let columns: Vec<ArrayRef> = match self.kind {
            Kind::Nodes => {
                let nodes = &status.nodes;
                vec![
                    int(nodes.iter().map(|n| n.node_id as i32).collect()),
                    text(nodes.iter().map(|n| n.rpc_addr.clone()).collect()),
                    text(nodes.iter().map(|n| n.pg_addr.clone()).collect()),
                    text(nodes.iter().map(|n| n.http_addr.clone()).collect()),
                    Arc::new(BooleanArray::from(
                        nodes.iter().map(|n| n.live).collect::<Vec<_>>(),
                    )),
                    Arc::new(BooleanArray::from(
                        nodes
                            .iter()
                            .map(|n| n.node_id == status.meta_node_id)
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        nodes
                            .iter()
                            .map(|n| i64::try_from(n.last_seen_ms).unwrap_or(i64::MAX))
                            .collect::<Vec<_>>(),
                    )),
                ]
            }
            Kind::Shards => {
                let shards = &status.shards;
                vec![
                    int(shards.iter().map(|s| s.id as i32).collect()),
                    int(shards.iter().map(|s| s.hash_start as i32).collect()),
                    int(shards.iter().map(|s| s.hash_end as i32).collect()),
                    int(shards.iter().map(|s| s.node as i32).collect()),
                    text(
                        shards
                            .iter()
                            .map(|s| {
                                let ids: Vec<String> =
                                    s.replicas.iter().map(u32::to_string).collect();
                                ids.join(",")
                            })
                            .collect(),
                    ),
                ]
            }
            Kind::Replicas => {
                let replicas = &status.replicas;
                let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                vec![
                    // The meta group's replicas have no shard id.
                    Arc::new(Int32Array::from(
                        replicas
                            .iter()
                            .map(|r| (r.shard_id != META_GROUP).then_some(r.shard_id as i32))
                            .collect::<Vec<_>>(),
                    )),
                    int(replicas.iter().map(|r| r.node_id as i32).collect()),
                    Arc::new(BooleanArray::from(
                        replicas
                            .iter()
                            .map(|r| r.leader_id == r.node_id)
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int32Array::from(
                        replicas
                            .iter()
                            .map(|r| (r.leader_id != 0).then_some(r.leader_id as i32))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        replicas.iter().map(|r| big(r.term)).collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        replicas
                            .iter()
                            .map(|r| big(r.applied_index))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        replicas.iter().map(|r| big(r.lag)).collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        replicas
                            .iter()
                            .map(|r| big(r.purged_index))
                            .collect::<Vec<_>>(),
                    )),
                ]
            }
        };
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
