//! The node's SQL engine: the DataFusion setup shared by every session,
//! and the DDL it executes itself.
//!
//! One base `SessionState` holds the catalog (`postgres` with the `public`
//! and internal schemas), `pg_catalog` from datafusion-pg-catalog, and the
//! PostgreSQL functions clients expect (`version()`, `current_database()`...).
//! Each connection gets a copy of it whose config carries its own
//! [`SessionTxn`]; the table providers look the transaction up there.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::common::ScalarValue;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{CreateTable, ObjectName, Statement};
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::setup_pg_catalog;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use super::ddl;
use super::provider::{ShardSchemaProvider, TableSource, INTERNAL_SCHEMA};
use super::session_txn::SessionTxn;
use crate::catalog::{Catalog, DATABASE, PUBLIC_SCHEMA};
use crate::encoding::keys::table_bounds;
use crate::error::{Error, InputError, Result};
use crate::storage::Storage;
use crate::txn::TxnCoordinator;

pub struct SqlEngine {
    storage: Arc<Storage>,
    catalog: Arc<Catalog>,
    coordinator: Arc<TxnCoordinator>,
    base: SessionState,
    parser: PostgresCompatibilityParser,
}

impl SqlEngine {
    pub fn new(
        storage: Arc<Storage>,
        catalog: Arc<Catalog>,
        coordinator: Arc<TxnCoordinator>,
    ) -> Result<Self> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE, PUBLIC_SCHEMA)
            .with_information_schema(true)
            // Point lookups read one shard group; fanning their one batch out
            // over threads only costs time. Full scans have a partition per
            // shard group already.
            .with_round_robin_repartition(false)
            // Sessions start in UTC (see Session::apply_time_zone).
            .set_str("datafusion.execution.time_zone", super::vars::UTC_OFFSET);
        let ctx = SessionContext::new_with_config(config);
        let source = Arc::new(TableSource {
            catalog: catalog.clone(),
            coordinator: coordinator.clone(),
            expr_planner: ctx.state(),
        });
        let schemas = MemoryCatalogProvider::new();
        schemas
            .register_schema(
                PUBLIC_SCHEMA,
                Arc::new(ShardSchemaProvider::new(source.clone(), false)),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
        schemas
            .register_schema(
                INTERNAL_SCHEMA,
                Arc::new(ShardSchemaProvider::new(source, true)),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
        ctx.register_catalog(DATABASE, Arc::new(schemas));
        setup_pg_catalog(&ctx, DATABASE, EmptyContextProvider)
            .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
        ctx.register_udf(version_udf());
        ctx.add_analyzer_rule(Arc::new(super::checked::CheckedIntegerArithmetic));
        Ok(Self {
            storage,
            catalog,
            coordinator,
            base: ctx.state(),
            parser: PostgresCompatibilityParser::new(),
        })
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn coordinator(&self) -> &Arc<TxnCoordinator> {
        &self.coordinator
    }

    /// A DataFusion context for one connection, bound to its transaction.
    pub fn session_context(&self, txn: Arc<SessionTxn>) -> SessionContext {
        let mut state = self.base.clone();
        state.config_mut().set_extension(txn);
        SessionContext::new_with_state(state)
    }

    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.parser
            .parse(sql)
            .map_err(|e| Error::input(InputError::Syntax, syntax_message(&e.to_string())))
    }

    pub async fn create_table(&self, create: &CreateTable) -> Result<()> {
        let def = ddl::table_def(create, &self.base)?;
        let catalog = self.catalog.clone();
        let if_not_exists = create.if_not_exists;
        tokio::task::spawn_blocking(move || catalog.create_table(def, if_not_exists)).await??;
        Ok(())
    }

    /// Drops every named table, or none if one is missing (without IF EXISTS).
    pub async fn drop_tables(&self, names: &[ObjectName], if_exists: bool) -> Result<()> {
        let names = names
            .iter()
            .map(ddl::table_name)
            .collect::<Result<Vec<_>>>()?;
        if !if_exists {
            if let Some(missing) = names.iter().find(|n| self.catalog.table(n).is_none()) {
                return Err(Error::input(
                    InputError::UndefinedTable,
                    format!("table \"{missing}\" does not exist"),
                ));
            }
        }
        let catalog = self.catalog.clone();
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || {
            for name in names {
                if let Some(def) = catalog.drop_table(&name, true)? {
                    let (start, end) = table_bounds(def.id.0);
                    storage.purge_range(&start, &end)?;
                }
            }
            Ok::<_, Error>(())
        })
        .await??;
        Ok(())
    }
}

/// `version()` in PostgreSQL's form: drivers and ORMs parse the leading
/// "PostgreSQL 15.x".
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    let text = format!(
        "PostgreSQL {} (ShardForge {}) on {}-linux, compiled by rustc, 64-bit",
        crate::PG_SERVER_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// PostgreSQL's wording for a parse error.
fn syntax_message(parser_error: &str) -> String {
    let detail = parser_error
        .trim_start_matches("sql parser error: ")
        .trim_start_matches("SQL error: ");
    format!("syntax error: {detail}")
}
