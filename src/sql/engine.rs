//! The node's SQL engine: the DataFusion setup shared by every session,
//! and the DDL it executes itself.
//!
//! One base `SessionState` holds the catalog (`postgres` with the `public`
//! and internal schemas), `pg_catalog` (see [`super::pg_catalog`]), and the
//! PostgreSQL functions clients expect (`version()`, `current_database()`...).
//! Each connection gets a copy of it whose config carries its own
//! [`SessionTxn`]; the table providers look the transaction up there. The
//! copy's `public` and internal schemas list tables through that
//! transaction too, so a connection sees the tables it created or dropped
//! before it commits. `pg_catalog` is shared, and shows committed tables.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::optimizer::Analyzer;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::visit_relations;
use datafusion::sql::sqlparser::ast::{CreateTable, ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::{
    FixVersionColumnName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule,
    StripCallableQualifier, StripCollate,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use super::analyze::ExpressionRewrites;
use super::catalog_queries;
use super::ddl;
use super::errors::classify;
use super::provider::{ShardSchemaProvider, TableSource, INTERNAL_SCHEMA};
use super::query_runtime::QueryRuntime;
use super::session_txn::SessionTxn;
use crate::catalog::{TableDef, Tables, DATABASE, PUBLIC_SCHEMA};
use crate::error::{Error, InputError, Result};
use crate::txn::TxnCoordinator;

/// The schema, private to each session, where a statement registers rows
/// it computed (those its RETURNING returns, those ON CONFLICT DO UPDATE
/// updates) for the time it takes to plan a query over them.
pub const SCRATCH_SCHEMA: &str = "shardforge_scratch";

/// `rows` of `table` as a table for the scratch schema (its visible
/// columns).
pub fn scratch_table(table: &TableDef, rows: Vec<RecordBatch>) -> Result<MemTable> {
    MemTable::try_new(table.visible_schema(), vec![rows]).map_err(classify)
}

pub struct SqlEngine {
    coordinator: Arc<TxnCoordinator>,
    base: SessionState,
    source: Arc<TableSource>,
    runtime: QueryRuntime,
    parser: PostgresCompatibilityParser,
    user_rules: Vec<Box<dyn SqlStatementRewriteRule>>,
}

impl SqlEngine {
    /// The engine of this node, over its transactions.
    pub fn new(coordinator: Arc<TxnCoordinator>) -> Result<Self> {
        let catalog = coordinator.catalog().clone();
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE, PUBLIC_SCHEMA)
            // `information_schema` is a schema of its own
            // (`pg_catalog::register`), with PostgreSQL's `columns`.
            .with_information_schema(false)
            // Point lookups read one shard group; fanning their one batch out
            // over threads only costs time. Full scans have a partition per
            // shard group already.
            .with_round_robin_repartition(false)
            // `1.5` is numeric in PostgreSQL, not double precision: `0.1 + 0.2`
            // is 0.3 and `1.5 / 0` is a division by zero.
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            // A derived table's ORDER BY is kept: PostgreSQL's aggregates
            // read its rows in that order (`sql::ordered_input`).
            .set_bool(
                "datafusion.sql_parser.enable_subquery_sort_elimination",
                false,
            )
            // Sessions start in UTC (see Session::apply_time_zone).
            .set_str("datafusion.execution.time_zone", super::vars::UTC_OFFSET);
        // Literals and aggregate inputs are typed before type coercion sees
        // them.
        let mut analyzer_rules = Analyzer::new().rules;
        analyzer_rules.insert(0, Arc::new(super::literals::IntegerLiterals));
        // Numerics of their own scale computed as PostgreSQL does, before
        // the aggregates over them are typed.
        analyzer_rules.insert(1, Arc::new(super::numeric::NumericValues));
        analyzer_rules.insert(2, Arc::new(super::numeric::NumericAggregates));
        // Operands typed as PostgreSQL types them, before type coercion:
        // literals and text beside a boolean, a uuid, a bytea, a char(n) or
        // a jsonb read as those types; intervals compared by their length;
        // floats beside exact numbers; regular expressions' `.`; DISTINCT
        // aggregates in order; rows tested for NULL field by field; windows
        // ordered by a numeric, bytea or uuid given frames DataFusion plans.
        let typed_operands = ExpressionRewrites::new(
            "postgresql_typed_operands",
            vec![
                super::literals::boolean_literals,
                super::uuid::uuid_text,
                super::bytea::bytea_operands,
                super::bpchar::char_semantics,
                super::json::json_semantics,
                super::interval::comparable,
                super::output::text_casts,
                super::functions::pg_subscripts,
                super::functions::dot_matches_newline,
                super::distinct_values::distinct_in_order,
                super::records::record_null_tests,
                super::numeric::floats_beside_exact,
                super::window_frames::peer_frames,
            ],
        );
        analyzer_rules.insert(3, Arc::new(typed_operands));
        analyzer_rules.insert(4, Arc::new(super::interval::IntervalOrder));
        analyzer_rules.insert(5, Arc::new(super::json::JsonbOrder));
        analyzer_rules.insert(6, Arc::new(super::subqueries::NullableSubqueries));
        analyzer_rules.insert(7, Arc::new(super::datetime::SessionZone));
        analyzer_rules.insert(8, Arc::new(super::wire_types::SignedIntegers));
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules);
        // Ours first: the first planner that plans a form wins.
        if let Some(planners) = builder.expr_planners() {
            planners.insert(0, Arc::new(super::functions::PgExprPlanner));
        }
        let state = builder.build();
        let ctx = SessionContext::new_with_state(state);
        let schemas = Arc::new(MemoryCatalogProvider::new());
        ctx.register_catalog(DATABASE, schemas.clone());
        super::pg_catalog::register(&ctx, catalog.clone())?;
        // After pg_catalog's, which it extends (its own is set by register).
        {
            let state = ctx.state_ref();
            let existing = state.read().clone();
            *state.write() = SessionStateBuilder::new_from_existing(existing)
                .with_type_planner(Arc::new(super::wire_types::PgTypePlanner))
                .build();
        }
        ctx.register_udf(version_udf());
        ctx.register_udf(super::uuid::gen_random_uuid());
        ctx.register_udf(super::bpchar::bpchar());
        for justify in super::interval::justify_functions() {
            ctx.register_udf(justify);
        }
        ctx.register_udf(super::subqueries::pg_single_row());
        ctx.register_udf(super::datetime::round_time_udf());
        ctx.register_udf(super::datetime::isfinite_udf());
        ctx.register_udf(super::time_zones::timezone());
        super::functions::register(&ctx);
        ctx.register_udf(super::records::pg_record());
        super::json::register(&ctx);
        // Last: they wrap what is registered under their names.
        super::float_aggregates::register(&ctx);
        super::bytea::register(&ctx);
        super::numeric::register_overloads(&ctx);
        ctx.add_analyzer_rule(Arc::new(super::checked::CheckedIntegerArithmetic));
        ctx.add_analyzer_rule(Arc::new(super::datetime::NaiveInSessionZone));
        ctx.add_analyzer_rule(Arc::new(super::setops::SetOperationMultiplicity));
        ctx.add_analyzer_rule(Arc::new(super::ordered_input::OrderedSubqueryInput));
        // The tables' DEFAULT expressions are planned with every function
        // registered above (`DEFAULT current_user`, `to_char(...)`).
        let source = Arc::new(TableSource::new(coordinator.clone(), ctx.state()));
        for (name, schema) in table_schemas(&source, catalog.clone()) {
            schemas
                .register_schema(&name, schema)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(Self {
            coordinator,
            base: ctx.state(),
            source,
            runtime: QueryRuntime::new()?,
            parser: PostgresCompatibilityParser::new(),
            user_rules: user_rules(),
        })
    }

    /// The runtime statements execute on (see [`super::query_runtime`]).
    pub fn runtime(&self) -> &QueryRuntime {
        &self.runtime
    }

    pub fn coordinator(&self) -> &Arc<TxnCoordinator> {
        &self.coordinator
    }

    /// A DataFusion context for one connection, bound to its transaction:
    /// its database lists tables as the transaction sees them, and shares
    /// every other schema with the base.
    pub fn session_context(&self, txn: Arc<SessionTxn>) -> SessionContext {
        let base_catalogs = self.base.catalog_list();
        let catalogs = MemoryCatalogProviderList::new();
        for name in base_catalogs.catalog_names() {
            if let Some(catalog) = base_catalogs.catalog(&name) {
                catalogs.register_catalog(name, catalog);
            }
        }
        let mut database = SessionDatabase {
            schemas: table_schemas(&self.source, txn.clone())
                .into_iter()
                .collect(),
        };
        if let Some(base) = base_catalogs.catalog(DATABASE) {
            for name in base.schema_names() {
                if let (false, Some(schema)) =
                    (database.schemas.contains_key(&name), base.schema(&name))
                {
                    database.schemas.insert(name, schema);
                }
            }
        }
        database.schemas.insert(
            SCRATCH_SCHEMA.to_string(),
            Arc::new(MemorySchemaProvider::new()),
        );
        catalogs.register_catalog(DATABASE.to_string(), Arc::new(database));
        let mut state = SessionStateBuilder::new_from_existing(self.base.clone())
            .with_catalog_list(Arc::new(catalogs))
            .build();
        state.config_mut().set_extension(txn);
        SessionContext::new_with_state(state)
    }

    /// Parses SQL text. datafusion-pg-catalog's compatibility parser makes
    /// the catalog queries of psql and other tools plannable, partly by
    /// replacing what DataFusion cannot plan: it turns a correlated subquery
    /// in a select list into NULL and gives the others `LIMIT 1`. That is
    /// fine for a tool's catalog query, and a wrong answer for anyone else,
    /// so a statement that reads no system catalog only gets the rewrites
    /// that keep its meaning.
    ///
    /// A catalog query whose lookup subqueries can be joins instead (see
    /// [`super::catalog_queries`]), that compares a type's input function
    /// with a `regproc` (`parse_rules::RegprocComparisons`) or casts to
    /// `regtype` or `regclass` (`regclass::RegCasts`) gets that rewrite
    /// first, and then the compatibility rules. Others go through the
    /// whole compatibility parser, which also replaces some known tool
    /// queries wholesale.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        // What only the compatibility parser reads (`ABORT`), or the syntax
        // error, comes from it.
        let compatible = || {
            self.parser
                .parse(sql)
                .map_err(|e| Error::input(InputError::Syntax, syntax_message(&e.to_string())))
        };
        let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql).or_else(|e| {
            if let Some(fetch) = super::cursor::parse_fetch_or_move(sql) {
                return Ok(vec![fetch]);
            }
            if let Some(reset) = super::vars::parse_reset_time_zone(sql) {
                return Ok(vec![reset]);
            }
            if let Some(create) = super::ddl::parse_create_as_with_names(sql) {
                return Ok(vec![create]);
            }
            let spelled = super::copy::spell_boolean_options(sql).ok_or(e)?;
            Parser::parse_sql(&PostgreSqlDialect {}, &spelled)
        });
        let Ok(statements) = parsed else {
            return compatible();
        };
        // What OLTP clients send most: no rule would change it.
        if statements.iter().all(super::plain::is_plain) {
            return Ok(statements);
        }
        if !statements.iter().any(reads_system_catalog) {
            return Ok(statements
                .into_iter()
                .map(|mut stmt| {
                    // Named as written, before the rules respell items.
                    super::names::alias_select_items(&mut stmt);
                    self.user_rules
                        .iter()
                        .fold(stmt, |stmt, rule| rule.rewrite(stmt))
                })
                .collect());
        }
        let before: Vec<String> = statements.iter().map(ToString::to_string).collect();
        let mut statements: Vec<Statement> = statements
            .into_iter()
            .map(|stmt| super::parse_rules::RegprocComparisons.rewrite(stmt))
            .map(|stmt| super::regclass::RegCasts.rewrite(stmt))
            // psql's `\d INDEX` asks `... AND EXISTS (...) AS condeferrable`.
            .map(|stmt| super::parse_rules::SubqueryTestsInSelectList.rewrite(stmt))
            .collect();
        let reg_rewritten = statements
            .iter()
            .zip(&before)
            .any(|(stmt, text)| stmt.to_string() != *text);
        let options = catalog_queries::storage_option_arrays(&mut statements);
        let types = catalog_queries::type_introspection(&mut statements);
        if catalog_queries::lookups_as_joins(&mut statements) || reg_rewritten || options || types {
            return Ok(statements
                .into_iter()
                .map(|stmt| self.parser.rewrite(stmt))
                .collect());
        }
        compatible()
    }

    /// CREATE TABLE, in `txn`: other sessions see the table once it commits.
    pub fn create_table(&self, create: &CreateTable, txn: &SessionTxn) -> Result<()> {
        let def = ddl::table_def(create, &self.base)?;
        let catalog = self.coordinator.catalog();
        txn.with(|t| t.create_table(catalog, def, create.if_not_exists))?;
        Ok(())
    }

    /// DROP TABLE, in `txn`. An error leaves the transaction failed (or, in
    /// autocommit, rolled back), so no table of the list is dropped.
    pub fn drop_tables(
        &self,
        names: &[ObjectName],
        if_exists: bool,
        txn: &SessionTxn,
    ) -> Result<()> {
        let catalog = self.coordinator.catalog();
        for name in names {
            let name = ddl::table_name(name)?;
            txn.with(|t| t.drop_table(catalog, &name, if_exists))?;
        }
        Ok(())
    }
}

/// The schemas holding ShardForge tables, looked up in `tables`: `public`,
/// and the internal one that also shows hidden row ids.
fn table_schemas(
    source: &Arc<TableSource>,
    tables: Arc<dyn Tables + Send + Sync>,
) -> Vec<(String, Arc<dyn SchemaProvider>)> {
    [(PUBLIC_SCHEMA, false), (INTERNAL_SCHEMA, true)]
        .into_iter()
        .map(|(name, with_hidden)| {
            let schema: Arc<dyn SchemaProvider> = Arc::new(ShardSchemaProvider::new(
                source.clone(),
                tables.clone(),
                with_hidden,
            ));
            (name.to_string(), schema)
        })
        .collect()
}

/// One connection's `postgres` database (see [`SqlEngine::session_context`]).
#[derive(Debug)]
struct SessionDatabase {
    schemas: std::collections::BTreeMap<String, Arc<dyn SchemaProvider>>,
}

impl CatalogProvider for SessionDatabase {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas.get(name).cloned()
    }
}

/// The compatibility rewrites that keep a statement's meaning (all but
/// `RemoveSubqueryFromProjection`, see [`SqlEngine::parse`]).
pub(super) fn user_rules() -> Vec<Box<dyn SqlStatementRewriteRule>> {
    vec![
        Box::new(super::parse_rules::UnicodeStrings),
        Box::new(super::array_literal::ArrayLiterals),
        Box::new(super::parse_rules::QuantifiedSubqueries),
        Box::new(super::operators::PgOperators),
        Box::new(super::parse_rules::SubqueryTestsInSelectList),
        Box::new(super::parse_rules::FetchFirstAsLimit),
        Box::new(super::parse_rules::WindowReferences),
        Box::new(super::parse_rules::InsertUnderWith),
        Box::new(super::parse_rules::SizedStringCasts),
        Box::new(super::datetime::MicrosecondTimestamps),
        Box::new(super::interval::LiteralsAsCasts),
        Box::new(super::time_zones::AtTimeZoneCalls),
        Box::new(ResolveUnqualifiedIdentifier),
        Box::new(RewriteArrayAnyAllOperation),
        Box::new(StripCallableQualifier),
        Box::new(StripCollate),
        Box::new(RewritePgCatalogOperator),
        Box::new(super::regclass::RegclassNames),
        Box::new(super::regclass::RegCasts),
        Box::new(RewriteRegCastToSubquery::new()),
        Box::new(FixVersionColumnName),
    ]
}

/// Whether a statement reads `pg_catalog` or `information_schema`.
fn reads_system_catalog(stmt: &Statement) -> bool {
    let mut found = false;
    let _ = visit_relations(stmt, |name| {
        found |= is_system_relation(name);
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Whether `name` is in `pg_catalog` or `information_schema` (tables named
/// `pg_*` are pg_catalog's, as PostgreSQL's search path puts it first).
pub(super) fn is_system_relation(name: &ObjectName) -> bool {
    let first = name
        .0
        .first()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase());
    first.is_some_and(|first| first.starts_with("pg_") || first == "information_schema")
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
