//! The write statements a session runs past the point paths: a planned
//! INSERT (with ON CONFLICT and RETURNING), UPDATE and DELETE run as the
//! SELECT that finds their rows, and the session's scratch schema where
//! rows they computed are planned over.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{DmlStatement, LogicalPlan};
use datafusion::sql::sqlparser::ast::{CreateTable, Ident, Insert, Query, Statement};
use futures::StreamExt;

use super::{materialize, Output, Session};
use crate::catalog::{SqlType, Tables, DATABASE};
use crate::error::{Error, InputError, Result};
use crate::sql::ddl::{ident_name, table_name};
use crate::sql::dml::{self, DmlKind};
use crate::sql::engine::{scratch_table, SCRATCH_SCHEMA};
use crate::sql::errors::classify;
use crate::sql::point::PointSelect;
use crate::sql::returning::Returning;
use crate::sql::rewrite::parse_statement;
use crate::sql::write::{self, RowWriter};

impl Session {
    /// `CREATE TABLE name [(columns)] AS query`: a table of the query's
    /// result columns, named and typed as a client receives them (the
    /// column list renames them), without a primary key, and the query's
    /// rows inserted into it, both in the statement's transaction, so a
    /// failed insert leaves no table. Answers `SELECT n` as PostgreSQL.
    pub(super) async fn create_table_as(
        &self,
        create: &CreateTable,
        query: &Query,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let name = &create.name;
        if create.if_not_exists && self.txn.table(&table_name(name)?).is_some() {
            return Ok(Output::Command("CREATE TABLE AS".into()));
        }
        let plan = self
            .plan_query(&Statement::Query(Box::new(query.clone())), params.clone())
            .await?;
        // Typed as it runs (`SELECT 1` is an integer).
        let schema = self.result_schema(&plan, &[], &[]);
        if create.columns.len() > schema.fields().len() {
            return Err(Error::input(
                InputError::Syntax,
                "too many column names were specified",
            ));
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let name = create
                .columns
                .get(i)
                .map_or_else(|| field.name().clone(), |c| ident_name(&c.name));
            let sql_type = SqlType::of_result(field).ok_or_else(|| {
                Error::unsupported(format!(
                    "a column of type {} in CREATE TABLE AS",
                    field.data_type()
                ))
            })?;
            columns.push(format!(
                "{} {}",
                Ident::with_quote('"', name),
                sql_type.pg_name()
            ));
        }
        let sql = format!("CREATE TABLE {name} ({})", columns.join(", "));
        let Statement::CreateTable(table) = parse_statement(&sql)? else {
            return Err(Error::Internal(format!(
                "{sql} parsed as another statement"
            )));
        };
        self.engine.create_table(&table, &self.txn)?;
        let Statement::Insert(mut insert) =
            parse_statement(&format!("INSERT INTO {name} SELECT 1"))?
        else {
            return Err(Error::Internal("INSERT parsed as another statement".into()));
        };
        insert.source = Some(Box::new(query.clone()));
        match self.insert(&insert, params).await? {
            Output::Command(tag) => {
                let count = tag.rsplit(' ').next().unwrap_or("0");
                Ok(Output::Command(format!("SELECT {count}")))
            }
            other => Ok(other),
        }
    }

    /// An INSERT DataFusion plans: the rows its source gives, with the
    /// defaults of the columns it leaves out and cast to the columns'
    /// types, are written batch by batch as they come (sent ahead as they
    /// outgrow the transaction's buffer: any size in bounded memory).
    pub(super) async fn insert(
        &self,
        insert: &Insert,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let clauses = dml::insert_clauses(self.txn.as_ref(), insert)?;
        let plan = self.plan(insert_rows(insert), params.clone()).await?;
        let LogicalPlan::Dml(DmlStatement {
            table_name, input, ..
        }) = plan
        else {
            return Err(Error::Internal(format!(
                "INSERT planned as {}",
                plan.display()
            )));
        };
        // A system table (pg_catalog's) is read-only.
        let table = self
            .txn
            .table(table_name.table())
            .ok_or_else(|| Error::unsupported(format!("INSERT into {table_name}")))?;
        let df = self
            .ctx
            .execute_logical_plan(Arc::unwrap_or_clone(input))
            .await
            .map_err(classify)?;
        let mut rows = self.run(df).await?;
        let writer = Arc::new(RowWriter::new(table, self.engine.coordinator().clone()));
        let mut written = Written::new(clauses.returning);
        // The keys an upsert wrote: it may not write a key twice.
        let mut upserted = HashSet::new();
        while let Some(batch) = rows.next().await {
            let batch = batch.map_err(classify)?;
            let inserted =
                write::insert_batch(&writer, &self.txn, batch, clauses.on_conflict).await?;
            if let Some(upsert) = &clauses.upsert {
                for key in writer.keys(&inserted.written)?.iter() {
                    upserted.insert(key.clone());
                }
                for key in &inserted.conflicting_keys {
                    if !upserted.insert(key.clone()) {
                        return Err(write::updated_twice());
                    }
                }
                let (rows, keys) = (&inserted.conflicting, &inserted.conflicting_keys);
                self.upsert(upsert, rows, keys, params.clone(), &mut written)
                    .await?;
            }
            let count = inserted.written.num_rows() as u64;
            written.add(count, Some(inserted.written))?;
        }
        self.written(written, "INSERT 0", params).await
    }

    /// ON CONFLICT DO UPDATE of the rows under `keys`, where an INSERT
    /// proposed `proposed` (see [`dml::Upsert`]): the rows there are read
    /// (one point read each) and updated as the clause says.
    pub(super) async fn upsert(
        &self,
        upsert: &dml::Upsert,
        proposed: &RecordBatch,
        keys: &[Vec<u8>],
        params: Option<ParamValues>,
        written: &mut Written,
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut existing = Vec::with_capacity(keys.len());
        for key in keys {
            let row = PointSelect {
                table: upsert.table.clone(),
                projection: (0..upsert.table.columns.len()).collect(),
                key: key.clone(),
            };
            existing.extend(self.read_point(row).await?);
        }
        let tables = upsert_tables(upsert, existing, vec![proposed.clone()])?;
        self.with_scratch(tables, self.apply_dml(upsert.plan(), params, written))
            .await
    }

    /// The SELECT of an upsert over no rows (for Describe).
    pub(super) async fn plan_upsert(
        &self,
        upsert: &dml::Upsert,
        params: Option<ParamValues>,
    ) -> Result<LogicalPlan> {
        let tables = upsert_tables(upsert, vec![], vec![])?;
        let select = upsert.plan().select_sql;
        self.with_scratch(tables, self.plan_sql(&select, params))
            .await
    }

    /// Runs `run` with `tables` registered in the session's scratch schema
    /// (see [`SCRATCH_SCHEMA`]), and removes them after.
    pub(super) async fn with_scratch<T, const N: usize>(
        &self,
        tables: [(&str, MemTable); N],
        run: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let scratch = self
            .ctx
            .catalog(DATABASE)
            .and_then(|database| database.schema(SCRATCH_SCHEMA))
            .ok_or_else(|| Error::Internal("the session has no scratch schema".into()))?;
        let names: Vec<String> = tables.iter().map(|(name, _)| name.to_string()).collect();
        for (name, table) in tables {
            scratch
                .register_table(name.to_string(), Arc::new(table))
                .map_err(classify)?;
        }
        let result = run.await;
        for name in names {
            scratch.deregister_table(&name).map_err(classify)?;
        }
        result
    }

    /// What a write statement reports: its rows' RETURNING, else its
    /// command tag with the count (`command` is the tag without it).
    pub(super) async fn written(
        &self,
        written: Written,
        command: &'static str,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let Some(returning) = written.returning else {
            return Ok(Output::Command(format!("{command} {}", written.count)));
        };
        let plan = self.plan_returning(&returning, params).await?;
        let (schema, stream) = self.stream(plan).await?;
        // Whole before the statement ends: an error in the list fails it
        // before it commits.
        materialize(schema, stream, command).await
    }

    /// The query of a RETURNING list over the rows kept for it (see
    /// [`returning`]).
    pub(super) async fn plan_returning(
        &self,
        returning: &Returning,
        params: Option<ParamValues>,
    ) -> Result<LogicalPlan> {
        let query = returning.query()?;
        let rows = [(returning.table_name(), returning.rows()?)];
        self.with_scratch(rows, self.plan_query(&query, params))
            .await
    }

    pub(super) async fn run_dml(
        &self,
        mut plan: dml::DmlPlan,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let mut written = Written::new(plan.returning.take());
        let command = match plan.kind {
            DmlKind::Update => "UPDATE",
            DmlKind::Delete => "DELETE",
        };
        self.apply_dml(plan, params.clone(), &mut written).await?;
        self.written(written, command, params).await
    }

    /// Runs the SELECT of `plan` and writes what it finds.
    pub(super) async fn apply_dml(
        &self,
        plan: dml::DmlPlan,
        params: Option<ParamValues>,
        written: &mut Written,
    ) -> Result<()> {
        let select = self.plan_sql(&plan.select_sql, params).await?;
        let df = self
            .ctx
            .execute_logical_plan(select)
            .await
            .map_err(classify)?;
        // Batch by batch as the SELECT finds them, the writes sent ahead as
        // they outgrow the buffer: a statement of any size runs in bounded
        // memory (it reads the table as it was when it began: the writes
        // it makes are not in its snapshot of the buffer, and those it
        // sends ahead are of its own statement).
        let mut found = self.run(df).await?;
        let writer = Arc::new(RowWriter::new(
            plan.table.clone(),
            self.engine.coordinator().clone(),
        ));
        let plan = Arc::new(plan);
        let mut seen = HashSet::new();
        while let Some(batch) = found.next().await {
            let batch = batch.map_err(classify)?;
            let (plan, writer, txn) = (plan.clone(), writer.clone(), self.txn.clone());
            let (applied, returned) = tokio::task::spawn_blocking(move || {
                let applied = txn.with(|t| dml::apply(&plan, &writer, t, &batch, &mut seen));
                (applied, seen)
            })
            .await?;
            let (affected, rows) = applied?;
            written.add(affected, rows)?;
            seen = returned;
            self.txn.bound_writes().await?;
        }
        Ok(())
    }
}

/// What a write statement wrote so far: its count, and the rows kept for
/// its RETURNING.
pub(super) struct Written {
    count: u64,
    returning: Option<Returning>,
}

impl Written {
    pub(super) fn new(returning: Option<Returning>) -> Self {
        Self {
            count: 0,
            returning,
        }
    }

    /// `count` more rows, `rows` as RETURNING sees them.
    pub(super) fn add(&mut self, count: u64, rows: Option<RecordBatch>) -> Result<()> {
        self.count += count;
        match (&mut self.returning, rows) {
            (Some(returning), Some(rows)) => returning.keep(&rows),
            _ => Ok(()),
        }
    }
}

/// The scratch tables an upsert's SELECT reads: the rows under the keys,
/// and the rows proposed for them.
fn upsert_tables(
    upsert: &dml::Upsert,
    existing: Vec<RecordBatch>,
    proposed: Vec<RecordBatch>,
) -> Result<[(&'static str, MemTable); 2]> {
    Ok([
        (dml::Upsert::TARGET, scratch_table(&upsert.table, existing)?),
        (
            dml::Upsert::EXCLUDED,
            scratch_table(&upsert.table, proposed)?,
        ),
    ])
}

/// An INSERT without its RETURNING and ON CONFLICT, as DataFusion plans
/// it (without the target's alias too: only those clauses can name it).
pub(super) fn insert_rows(insert: &Insert) -> Statement {
    Statement::Insert(Insert {
        returning: None,
        on: None,
        table_alias: None,
        ..insert.clone()
    })
}
