//! DataFusion's view of ShardForge tables.
//!
//! [`ShardSchemaProvider`] serves the tables of the catalog as
//! [`ShardedTableProvider`]s. It is registered twice: as `public`, where a
//! table shows its user columns, and as [`INTERNAL_SCHEMA`], where it also
//! shows the hidden row id, for the SELECTs that UPDATE and DELETE are
//! planned as (they need every row's full key). Each connection has its own
//! pair, which looks tables up through its transaction (see
//! `SqlEngine::session_context`).
//!
//! A table provider knows nothing of the connection using it: `scan` finds
//! the connection's open transaction in the session config
//! ([`SessionTxn`]), so one provider per table serves every session. Rows
//! are written by the session, not through the provider (see
//! `Session::insert`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{
    Constraint, Constraints, DFSchema, DataFusionError, Result as DFResult, ScalarValue,
};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;

use super::scan::ShardScanExec;
use super::session_txn::SessionTxn;
use super::system_tables::system_table;
use crate::catalog::{TableDef, TableId, Tables, SYSTEM_TABLES};
use crate::encoding::keys::{encode_key_value, row_key, table_bounds};
use crate::error::Error;
use crate::shard::access::ShardAccess;
use crate::shard::proto::ScanRequest;
use crate::txn::{ReadAs, TxnCoordinator};

/// The schema in which tables also show their hidden row id.
pub const INTERNAL_SCHEMA: &str = "shardforge_internal";

pub struct ShardSchemaProvider {
    source: Arc<TableSource>,
    /// Where table names are looked up: a connection's transaction, or the
    /// committed catalog.
    tables: Arc<dyn Tables + Send + Sync>,
    with_hidden: bool,
}

impl std::fmt::Debug for ShardSchemaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardSchemaProvider")
    }
}

/// What every table provider needs, shared by all schemas and sessions.
pub struct TableSource {
    coordinator: Arc<TxnCoordinator>,
    /// Plans DEFAULT expressions (constants and functions, no columns).
    expr_planner: datafusion::execution::SessionState,
    /// Providers already made, by table id and `with_hidden`, reused while
    /// the table has the same definition, so DEFAULT expressions are not
    /// planned again for every statement.
    providers: Mutex<HashMap<(TableId, bool), Arc<ShardedTableProvider>>>,
}

impl std::fmt::Debug for TableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableSource")
    }
}

impl TableSource {
    pub fn new(
        coordinator: Arc<TxnCoordinator>,
        expr_planner: datafusion::execution::SessionState,
    ) -> Self {
        Self {
            coordinator,
            expr_planner,
            providers: Mutex::new(HashMap::new()),
        }
    }

    /// The provider of `def`, made once per definition.
    fn provider(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        with_hidden: bool,
    ) -> DFResult<Arc<ShardedTableProvider>> {
        let mut providers = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        let key = (def.id, with_hidden);
        if let Some(provider) = providers.get(&key).filter(|p| Arc::ptr_eq(&p.def, &def)) {
            return Ok(provider.clone());
        }
        // Forget the tables that are gone (or exist in no committed catalog:
        // another session's uncommitted ones are simply made again).
        let committed = self.coordinator.catalog().tables();
        providers.retain(|(id, _), p| {
            committed
                .iter()
                .any(|t| t.id == *id && Arc::ptr_eq(t, &p.def))
        });
        let provider = Arc::new(ShardedTableProvider::new(def, self.clone(), with_hidden)?);
        providers.insert(key, provider.clone());
        Ok(provider)
    }
}

impl ShardSchemaProvider {
    pub fn new(
        source: Arc<TableSource>,
        tables: Arc<dyn Tables + Send + Sync>,
        with_hidden: bool,
    ) -> Self {
        Self {
            source,
            tables,
            with_hidden,
        }
    }
}

#[async_trait]
impl SchemaProvider for ShardSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        // The internal schema resolves names but lists none, so that
        // `information_schema` shows every table once.
        if self.with_hidden {
            return Vec::new();
        }
        self.tables
            .tables()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let Some(def) = self.tables.table(name) else {
            if self.with_hidden {
                return Ok(None);
            }
            return Ok(system_table(name, &self.source.coordinator));
        };
        let provider: Arc<dyn TableProvider> = self.source.provider(def, self.with_hidden)?;
        Ok(Some(provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.table(name).is_some() || (!self.with_hidden && SYSTEM_TABLES.contains(&name))
    }
}

#[derive(Debug)]
pub struct ShardedTableProvider {
    def: Arc<TableDef>,
    source: Arc<TableSource>,
    /// The columns this provider shows (a prefix of the stored columns).
    schema: SchemaRef,
    defaults: HashMap<String, Expr>,
    /// The primary key, where this provider shows it: grouping by it lets
    /// a query select the table's other columns, as in PostgreSQL (`SELECT
    /// d.id, d.name, count(*) ... GROUP BY d.id`).
    constraints: Constraints,
}

impl ShardedTableProvider {
    /// The table's definition.
    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    fn new(def: Arc<TableDef>, source: Arc<TableSource>, with_hidden: bool) -> DFResult<Self> {
        let schema = match with_hidden {
            true => def.row_schema(),
            false => def.visible_schema(),
        };
        let mut defaults = HashMap::new();
        for column in &def.columns {
            if let Some(sql) = &column.default {
                let expr = source
                    .expr_planner
                    .create_logical_expr(sql, &DFSchema::empty())?;
                defaults.insert(column.name.clone(), expr);
            }
        }
        let shown = def.primary_key.iter().all(|&i| i < schema.fields().len());
        let constraints = match shown && !def.primary_key.is_empty() {
            true => {
                Constraints::new_unverified(vec![Constraint::PrimaryKey(def.primary_key.clone())])
            }
            false => Constraints::default(),
        };
        Ok(Self {
            def,
            source,
            schema,
            defaults,
            constraints,
        })
    }

    /// The key of the single row that `filters` pin down with `pk = const`
    /// on every key column, if they do.
    fn point_key(&self, filters: &[Expr]) -> Option<Vec<u8>> {
        let pinned: HashMap<usize, &ScalarValue> =
            filters.iter().filter_map(|f| self.pk_equality(f)).collect();
        point_key(&self.def, &pinned)
    }

    /// `(key column index, value)` if `filter` is `key_column = literal`.
    fn pk_equality<'a>(&self, filter: &'a Expr) -> Option<(usize, &'a ScalarValue)> {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = filter
        else {
            return None;
        };
        let (column, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        if value.is_null() {
            return None;
        }
        let index = self.def.column_index(&column.name)?;
        self.def
            .primary_key
            .contains(&index)
            .then_some((index, value))
    }
}

/// The key of the row of `def` whose key columns have the values `pinned`
/// (by column index), if it gives one for every key column that converts
/// to the column's type.
pub(super) fn point_key(def: &TableDef, pinned: &HashMap<usize, &ScalarValue>) -> Option<Vec<u8>> {
    let mut pk = Vec::new();
    for &column in &def.primary_key {
        let value = pinned.get(&column)?;
        let value = value
            .cast_to(&def.columns[column].sql_type.to_arrow())
            .ok()?;
        let array = value.to_array().ok()?;
        encode_key_value(&mut pk, array.as_ref(), 0).ok()?;
    }
    Some(row_key(def.id.0, &pk))
}

/// The scan of `def`'s rows that each of `shards` serves (the row schema is
/// encoded once for all of them).
pub(super) fn scan_requests(
    def: &TableDef,
    shards: Vec<ShardAccess>,
    read_as: &ReadAs,
    projection: &[usize],
    limit: Option<usize>,
    point_key: Option<Vec<u8>>,
) -> Vec<(ShardAccess, ScanRequest)> {
    let request = ScanRequest {
        table_id: def.id.0,
        shard_id: 0,
        snapshot_ts: read_as.snapshot_ts,
        txn_id: read_as.txn_id.clone(),
        statement: read_as.statement,
        row_schema: def.row_schema_ipc().to_vec(),
        projection: projection.iter().map(|&i| i as u32).collect(),
        limit: limit.map(|l| l as u64),
        point_key,
        ..Default::default()
    };
    shards
        .into_iter()
        .map(|shard| {
            let shard_id = shard.range().id.0;
            let request = ScanRequest {
                shard_id,
                ..request.clone()
            };
            (shard, request)
        })
        .collect()
}

/// The connection's transaction, from the session config.
pub(super) fn session_txn(state: &dyn Session) -> DFResult<Arc<SessionTxn>> {
    state.config().get_extension::<SessionTxn>().ok_or_else(|| {
        DataFusionError::External(Box::new(Error::Internal(
            "no transaction attached to the session".into(),
        )))
    })
}

#[async_trait]
impl TableProvider for ShardedTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Every filter goes to the scan: key equalities prune to one shard
        // group, and the scan drops rows that fail the rest before its
        // batches leave the partition. Inexact: DataFusion still applies
        // them above, so a filter the scan cannot evaluate is never lost.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let txn = session_txn(state)?;
        let (start, end) = table_bounds(self.def.id.0);
        let (read_as, overlay) = txn
            .with(|t| Ok((t.read_as(), t.writes_in(&start, &end))))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let output_schema = Arc::new(self.schema.project(&projection)?);
        let predicate = conjunction(filters.iter().cloned()).and_then(|filter| {
            // Filters on columns outside the projection, or with subqueries,
            // are left to DataFusion's FilterExec above the scan.
            let schema = DFSchema::try_from(output_schema.as_ref().clone()).ok()?;
            state.create_physical_expr(filter, &schema).ok()
        });
        let point_key = self.point_key(filters);
        let coordinator = &self.source.coordinator;
        let shards = coordinator.shards();
        let replicas = match &point_key {
            Some(key) => vec![shards.for_key(key).clone()],
            None => shards.replicas().to_vec(),
        };
        let accesses = replicas
            .iter()
            .map(|r| coordinator.route(r))
            .collect::<crate::error::Result<Vec<_>>>()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let requests = scan_requests(&self.def, accesses, &read_as, &projection, limit, point_key);
        Ok(Arc::new(ShardScanExec::new(
            self.def.name.clone(),
            output_schema,
            requests,
            Arc::new(overlay),
            predicate,
        )))
    }
}
