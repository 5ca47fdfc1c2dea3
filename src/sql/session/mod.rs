//! One client connection's SQL session: its transaction state, variables,
//! and the dispatch of each statement to DataFusion or to ShardForge's own
//! handlers.
//!
//! Transaction states follow PostgreSQL: outside a block every statement is
//! its own transaction (autocommit); `BEGIN` opens a block; an error inside
//! a block makes it *failed*, where every statement but `ROLLBACK` / `COMMIT`
//! (which then rolls back) is refused with 25P02. Dropping the session
//! drops any open transaction, which rolls it back.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::Expr as DFExpr;
use datafusion::logical_expr::{ExprSchemable, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{DiscardObject, ObjectType, ResetStatement, Statement};
use futures::{FutureExt, StreamExt, TryStreamExt};

use self::checks::{check_modes, in_failed_block, refuse_unsupported, statement_kind};
use super::cancel::{cancellable, Canceller, Running};
use super::ddl::ident_name;
use super::dml;
use super::engine::SqlEngine;
use super::errors::classify;
use super::functions;
use super::names;
use super::point::{self, PointSelect};
use super::point_insert;
use super::point_update::{self, PointUpdate};
use super::rewrite;
use super::session_txn::SessionTxn;
use super::vars::SessionVars;
use super::write::{self, OnConflict, RowWriter};
use writes::insert_rows;

mod checks;
mod copy;
mod cursor;
mod prepare;
mod settings;
mod writes;
use super::copy::format::Layout;
use crate::catalog::Tables;
use crate::error::{Error, InputError, Result};
use crate::txn::{since_epoch, ReadAs, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Idle,
    InBlock,
    Failed,
}

/// What a statement produced.
pub enum Output {
    /// Rows, and the command their count is reported with (`SELECT`,
    /// `INSERT 0` or `UPDATE` when it returned them).
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        command: &'static str,
    },
    /// A command tag such as `CREATE TABLE` or `INSERT 0 3`.
    Command(String),
    /// BEGIN: a transaction block started.
    TxnStart(String),
    /// COMMIT / ROLLBACK: the block ended.
    TxnEnd(String),
    /// DEALLOCATE of the named prepared statement, or of all (None): the
    /// connection holds them.
    Deallocate(Option<String>),
    /// DISCARD ALL: the session's variables are reset; the connection
    /// drops its prepared statements.
    DiscardAll,
    /// COPY FROM STDIN started: the client sends the data of `columns`
    /// columns next ([`Session::copy_data`]).
    CopyIn { columns: usize, binary: bool },
    /// COPY TO STDOUT: rows to send in the COPY format `layout` gives
    /// (`force_quote`: the CSV columns always quoted).
    CopyOut {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        layout: Layout,
        force_quote: Vec<bool>,
    },
}

pub struct Session {
    engine: Arc<SqlEngine>,
    ctx: SessionContext,
    txn: Arc<SessionTxn>,
    state: TxnState,
    /// The open block is the implicit one of a multi-statement query.
    implicit: bool,
    vars: SessionVars,
    /// Set by a result stream that failed after its statement returned, so
    /// the block it ran in becomes failed.
    stream_failed: Arc<AtomicBool>,
    /// The COPY FROM whose data the client is sending.
    copy: Option<copy::CopyIn>,
    /// Stops the running statement (CancelRequest, statement_timeout).
    canceller: Arc<Canceller>,
    /// Open cursors by name.
    cursors: HashMap<String, super::cursor::Cursor>,
    /// Statements PREPAREd in SQL, by name.
    prepared: HashMap<String, prepare::SqlPrepared>,
    /// When the open transaction (explicit or implicit) began, in
    /// microseconds since 1970: `now()`'s value in it.
    transaction_began: i64,
}

impl Session {
    pub fn new(engine: Arc<SqlEngine>) -> Self {
        let txn = Arc::new(SessionTxn::new(engine.coordinator().clone()));
        let ctx = engine.session_context(txn.clone());
        Self {
            engine,
            ctx,
            txn,
            state: TxnState::Idle,
            implicit: false,
            vars: SessionVars::default(),
            stream_failed: Arc::new(AtomicBool::new(false)),
            copy: None,
            canceller: Arc::new(Canceller::default()),
            cursors: HashMap::new(),
            transaction_began: 0,
            prepared: HashMap::new(),
        }
    }

    pub fn txn_state(&mut self) -> TxnState {
        if self.stream_failed.swap(false, Ordering::AcqRel) && self.state == TxnState::InBlock {
            self.state = TxnState::Failed;
        }
        self.state
    }

    /// The handle a CancelRequest for this session stops its running
    /// statement with.
    pub fn canceller(&self) -> Arc<Canceller> {
        self.canceller.clone()
    }

    /// The user the client connected as (see `SessionVars::set_session_user`).
    pub fn set_user(&mut self, user: String) {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let extensions = &mut state.config_mut().options_mut().extensions;
        extensions.insert(super::functions::SessionUser { name: user.clone() });
        self.vars.set_session_user(user);
    }

    /// Marks a statement's start, and its transaction's if it begins one,
    /// for the functions that read them (`now()`, `statement_timestamp()`,
    /// `pg_sleep()`'s cancellation; `functions::RunningStatement`).
    fn mark_start(&mut self, running: Arc<Running>, begins_transaction: bool) {
        let now = since_epoch().as_micros() as i64;
        if begins_transaction {
            self.transaction_began = now;
        }
        let statement = super::functions::RunningStatement {
            transaction_began: self.transaction_began,
            statement_began: now,
            running,
        };
        let state = self.ctx.state_ref();
        state
            .write()
            .config_mut()
            .options_mut()
            .extensions
            .insert(statement);
    }

    /// Reported variables changed since the last call, to send to the
    /// client as ParameterStatus messages.
    pub fn take_parameter_reports(&mut self) -> Vec<(String, String)> {
        self.vars.take_reports()
    }

    /// Parses SQL text into statements (PostgreSQL dialect, with the
    /// pg_catalog compatibility rewrites that psql and drivers need).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.engine.parse(sql)
    }

    /// Runs the statements of one simple-query message, stopping at the
    /// first error (the last item then). Outside a block they run as one
    /// implicit transaction, as in PostgreSQL: an error undoes them all. A
    /// BEGIN among them turns it into an explicit block; a COMMIT or ROLLBACK
    /// ends it.
    pub async fn execute_all(&mut self, statements: &[Statement]) -> Vec<Result<Output>> {
        if statements.len() > 1 && self.txn_state() == TxnState::Idle {
            self.transaction_began = since_epoch().as_micros() as i64;
            if let Err(e) = self.txn.begin().await {
                return vec![Err(e)];
            }
            self.state = TxnState::InBlock;
            self.implicit = true;
        }
        let mut outputs = Vec::with_capacity(statements.len());
        for stmt in statements {
            let mut output = self.execute(stmt, None).await;
            if statements.len() > 1 {
                // A statement must finish, errors included, before the next runs.
                output = match output {
                    Ok(Output::Rows {
                        schema,
                        stream,
                        command,
                    }) => materialize(schema, stream, command).await,
                    other => other,
                };
            }
            let failed = output.is_err();
            outputs.push(output);
            if failed {
                break;
            }
        }
        if std::mem::take(&mut self.implicit) {
            let failed = outputs.last().is_some_and(|o| o.is_err());
            self.state = TxnState::Idle;
            if let Some(txn) = self.txn.take().filter(|_| !failed) {
                if let Err(e) = self.commit(txn).await {
                    outputs.push(Err(e));
                }
            }
        }
        outputs
    }

    /// Executes one statement with its bound parameters.
    pub async fn execute(
        &mut self,
        stmt: &Statement,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let running = self.canceller.start(self.vars.statement_timeout());
        let state = self.txn_state();
        self.mark_start(running, state == TxnState::Idle);
        match stmt {
            Statement::StartTransaction { modes, .. } => {
                check_modes(modes)?;
                if state == TxnState::Failed {
                    return Err(in_failed_block());
                }
                self.txn.begin().await?;
                self.state = TxnState::InBlock;
                self.implicit = false;
                Ok(Output::TxnStart("BEGIN".into()))
            }
            Statement::Commit { .. } => {
                let held = match state {
                    TxnState::InBlock => self.hold_cursors().await,
                    _ => {
                        self.close_unheld_cursors();
                        Ok(())
                    }
                };
                self.state = TxnState::Idle;
                self.implicit = false;
                if let Err(e) = held {
                    self.txn.take();
                    return Err(e);
                }
                match self.txn.take() {
                    Some(txn) if state == TxnState::InBlock => {
                        self.commit(txn).await?;
                        Ok(Output::TxnEnd("COMMIT".into()))
                    }
                    // Committing a failed block rolls it back, as in PostgreSQL.
                    Some(_) => Ok(Output::TxnEnd("ROLLBACK".into())),
                    None => Ok(Output::TxnEnd("COMMIT".into())),
                }
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.close_unheld_cursors();
                self.state = TxnState::Idle;
                self.implicit = false;
                self.txn.take();
                Ok(Output::TxnEnd("ROLLBACK".into()))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                self.in_block("ROLLBACK TO SAVEPOINT")?;
                let name = ident_name(name);
                self.savepoint_change(|t| t.rollback_to_savepoint(&name))?;
                // The block works again from there, failed or not.
                self.state = TxnState::InBlock;
                Ok(Output::Command("ROLLBACK".into()))
            }
            _ if state == TxnState::Failed => Err(in_failed_block()),
            Statement::Savepoint { name } => {
                self.in_block("SAVEPOINT")?;
                let name = ident_name(name);
                self.savepoint_change(|t| {
                    t.savepoint(name);
                    Ok(())
                })?;
                Ok(Output::Command("SAVEPOINT".into()))
            }
            Statement::ReleaseSavepoint { name } => {
                self.in_block("RELEASE SAVEPOINT")?;
                let name = ident_name(name);
                self.savepoint_change(|t| t.release_savepoint(&name))?;
                Ok(Output::Command("RELEASE".into()))
            }
            // Prepared statements are not transactional: nothing to begin.
            // Statements prepared in SQL are the session's; those prepared
            // by Parse, the connection's.
            Statement::Deallocate { name, .. } => {
                let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
                if all {
                    self.prepared.clear();
                    return Ok(Output::Deallocate(None));
                }
                let name = ident_name(name);
                match self.prepared.remove(&name) {
                    Some(_) => Ok(Output::Command("DEALLOCATE".into())),
                    None => Ok(Output::Deallocate(Some(name))),
                }
            }
            // Boxed, as `dispatch` is (see `execute_in_txn`): it plans.
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => Box::pin(self.prepare(name, data_types, statement)).await,
            Statement::Execute {
                name, parameters, ..
            } => self.execute_prepared(name, parameters).await,
            // What a connection pool sends before handing a connection
            // on. Plans, sequences and temporary tables: none to discard.
            Statement::Discard { object_type } => match object_type {
                DiscardObject::ALL if state != TxnState::Idle => Err(Error::input(
                    InputError::InvalidTransactionState,
                    "DISCARD ALL cannot run inside a transaction block",
                )),
                DiscardObject::ALL => {
                    self.cursors.clear();
                    self.prepared.clear();
                    self.vars.reset_all();
                    self.apply_time_zone()?;
                    Ok(Output::DiscardAll)
                }
                other => Ok(Output::Command(format!("DISCARD {other}"))),
            },
            _ => self.execute_in_txn(stmt, params).await,
        }
    }

    /// 25P01 unless a transaction block is open (an implicit one, of the
    /// statements of one query, is not a block for savepoints either).
    fn in_block(&self, what: &str) -> Result<()> {
        match self.state {
            TxnState::InBlock | TxnState::Failed if !self.implicit => Ok(()),
            _ => Err(Error::input(
                InputError::NoActiveTransaction,
                format!("{what} can only be used in transaction blocks"),
            )),
        }
    }

    /// Sets, releases or rolls back to a savepoint; an error fails the
    /// block, as any error in it does.
    fn savepoint_change(
        &mut self,
        change: impl FnOnce(&mut Transaction) -> Result<()>,
    ) -> Result<()> {
        let changed = self.txn.with(change);
        if changed.is_err() {
            self.state = TxnState::Failed;
        }
        changed
    }

    /// Commits the transaction (a read-only one has nothing to commit).
    async fn commit(&self, txn: Transaction) -> Result<()> {
        if txn.is_read_only() {
            return Ok(());
        }
        // Boxed, as `dispatch` is: a commit across groups is a large future.
        Box::pin(self.engine.coordinator().commit(txn)).await?;
        Ok(())
    }

    /// Runs a statement in the open block, or in its own transaction.
    async fn execute_in_txn(
        &mut self,
        stmt: &Statement,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let autocommit = self.state == TxnState::Idle;
        if autocommit {
            if let Some(output) = self.alone(stmt, params.as_ref()).await? {
                return Ok(output);
            }
            self.txn.begin().await?;
        }
        self.txn.with(|t| {
            t.next_statement();
            Ok(())
        })?;
        // A panic inside DataFusion fails the statement (XX000), not the
        // connection, and the transaction is handled as for any error.
        // Boxed: planning through DataFusion makes this future tens of
        // KiB, and held inline it would make every statement's future as
        // large, copied on each call, the point paths' included.
        let result = match AssertUnwindSafe(Box::pin(self.dispatch(stmt, params)))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "a statement panicked");
                Err(Error::Internal(format!("the statement failed: {what}")))
            }
        };
        match (&result, autocommit) {
            (Err(_), true) => {
                self.txn.take();
            }
            (Err(_), false) => self.state = TxnState::Failed,
            // A COPY FROM's transaction commits when its data has come.
            (Ok(Output::CopyIn { .. }), true) => {}
            (Ok(_), true) => {
                if let Some(txn) = self.txn.take() {
                    self.commit(txn).await?;
                }
            }
            (Ok(_), false) => {}
        }
        result
    }

    /// Runs a statement that is a transaction of its own and needs no
    /// snapshot from the oracle, if it is one: a point SELECT reads its
    /// row's newest version ([`ReadAs::newest`]); a plain INSERT commits
    /// its rows with their keys checked as the commit applies
    /// ([`RowWriter::insert_alone`]). `None`: it takes the ordinary way.
    async fn alone(
        &self,
        stmt: &Statement,
        params: Option<&ParamValues>,
    ) -> Result<Option<Output>> {
        if let Some(point) = point::recognise(stmt, self.txn.as_ref(), params) {
            return self.point_rows(point).await.map(Some);
        }
        let Some(insert) = point_insert::recognise(stmt, self.txn.as_ref(), params) else {
            return Ok(None);
        };
        let writer = RowWriter::new(insert.table, self.engine.coordinator().clone());
        let inserted = writer.insert_alone(&insert.rows).await?;
        Ok(inserted.map(|count| Output::Command(format!("INSERT 0 {count}"))))
    }

    async fn dispatch(&mut self, stmt: &Statement, params: Option<ParamValues>) -> Result<Output> {
        match stmt {
            Statement::Query(_) | Statement::Explain { .. } => {
                if let Some(point) = point::recognise(stmt, self.txn.as_ref(), params.as_ref()) {
                    return self.point_rows(point).await;
                }
                let plan = self.plan_query(stmt, params).await?;
                self.rows(plan).await
            }
            Statement::Insert(insert) => {
                if let Some(insert) =
                    point_insert::recognise(stmt, self.txn.as_ref(), params.as_ref())
                {
                    let writer = Arc::new(RowWriter::new(
                        insert.table,
                        self.engine.coordinator().clone(),
                    ));
                    let inserted =
                        write::insert_batch(&writer, &self.txn, insert.rows, OnConflict::Fail)
                            .await?;
                    let count = inserted.written.num_rows();
                    return Ok(Output::Command(format!("INSERT 0 {count}")));
                }
                self.insert(insert, params).await
            }
            Statement::Update(update) => {
                if let Some(point) =
                    point_update::recognise(update, self.txn.as_ref(), params.as_ref())
                {
                    return self.point_update(point).await;
                }
                let plan = dml::plan_update(self.txn.as_ref(), update)?;
                self.run_dml(plan, params).await
            }
            Statement::Delete(delete) => {
                let plan = dml::plan_delete(self.txn.as_ref(), delete)?;
                self.run_dml(plan, params).await
            }
            Statement::Truncate(truncate) => {
                if truncate.partitions.is_some() || truncate.identity.is_some() {
                    return Err(Error::unsupported("this form of TRUNCATE"));
                }
                // Every table is checked before any row is deleted.
                let plans = truncate
                    .table_names
                    .iter()
                    .map(|t| dml::plan_truncate(self.txn.as_ref(), &t.name))
                    .collect::<Result<Vec<_>>>()?;
                for plan in plans {
                    self.run_dml(plan, None).await?;
                }
                Ok(Output::Command("TRUNCATE TABLE".into()))
            }
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                values,
            } => {
                if !values.is_empty() {
                    return Err(Error::unsupported("COPY with its data in the query text"));
                }
                self.copy(source, *to, target, options, legacy_options)
                    .await
            }
            Statement::Declare { stmts } => self.declare(stmts, params).await,
            Statement::Fetch {
                name,
                direction,
                into,
                ..
            } => self.fetch(name, direction, into).await,
            Statement::Close { cursor } => self.close_cursor(cursor),
            Statement::CreateTable(create) => match &create.query {
                Some(query) => self.create_table_as(create, query, params).await,
                None => {
                    self.engine.create_table(create, &self.txn)?;
                    Ok(Output::Command("CREATE TABLE".into()))
                }
            },
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => {
                self.engine.drop_tables(names, *if_exists, &self.txn)?;
                Ok(Output::Command("DROP TABLE".into()))
            }
            Statement::Set(set) => self.set(set),
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::Reset(ResetStatement { reset }) => self.reset(reset),
            other => Err(Error::unsupported(statement_kind(other))),
        }
    }

    /// Parameter types (as inferred from context, `None` where nothing
    /// says) and result columns of a statement, for the extended protocol.
    pub async fn describe(
        &self,
        stmt: &Statement,
        declared: &[Option<DataType>],
    ) -> Result<(Vec<Option<FieldRef>>, Option<SchemaRef>)> {
        let catalog: &dyn Tables = self.txn.as_ref();
        // A write's rows are those of its RETURNING, if any.
        let mut returning = None;
        // An upsert's SET and WHERE are planned apart (see `dml::Upsert`).
        let mut upsert = None;
        let (plan, returns_rows) = match stmt {
            Statement::Query(_) | Statement::Explain { .. } => {
                (self.plan_query(stmt, None).await?, true)
            }
            Statement::Insert(insert) => {
                let clauses = dml::insert_clauses(catalog, insert)?;
                if let Some(clause) = &clauses.upsert {
                    upsert = Some(self.plan_upsert(clause, None).await?);
                }
                returning = clauses.returning;
                (self.plan(insert_rows(insert), None).await?, false)
            }
            Statement::Update(update) => {
                let dml = dml::plan_update(catalog, update)?;
                returning = dml.returning;
                (self.plan_sql(&dml.select_sql, None).await?, false)
            }
            Statement::Delete(delete) => {
                let dml = dml::plan_delete(catalog, delete)?;
                returning = dml.returning;
                (self.plan_sql(&dml.select_sql, None).await?, false)
            }
            Statement::ShowVariable { variable } => {
                return Ok((vec![], Some(settings::show_schema(variable)?)));
            }
            Statement::Declare { stmts } => match stmts.first().and_then(|d| d.for_query.clone()) {
                Some(query) => (
                    self.plan_query(&Statement::Query(query), None).await?,
                    false,
                ),
                None => return Ok((vec![], None)),
            },
            Statement::Execute { name, .. } => {
                let prepared = self.sql_prepared(name)?;
                let (_, result) = Box::pin(self.describe(&prepared.stmt, &prepared.types)).await?;
                return Ok((vec![], result));
            }
            Statement::Fetch { name, into, .. } if !super::cursor::is_move(into) => {
                let name = ident_name(name);
                let schema = self.cursors.get(&name).map(|c| c.schema.clone());
                return Ok((vec![], schema));
            }
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::CreateTable(_)
            | Statement::Truncate(_)
            | Statement::Drop {
                object_type: ObjectType::Table,
                ..
            }
            | Statement::Set(_)
            | Statement::Reset(_)
            | Statement::Deallocate { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Copy { .. }
            | Statement::Discard { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. }
            | Statement::Prepare { .. } => return Ok((vec![], None)),
            other => return Err(Error::unsupported(statement_kind(other))),
        };
        let mut types = HashMap::new();
        for plan in std::iter::once(&plan).chain(&upsert) {
            // Fields, not only types: the field of a placeholder compared
            // with a jsonb column says it is jsonb.
            for (id, field) in plan.get_parameter_fields().map_err(classify)? {
                let slot = types.entry(id).or_insert(None);
                *slot = slot.take().or(field);
            }
            // `$1::bigint`: DataFusion leaves the placeholder untyped;
            // PostgreSQL takes the type of the cast (and an array for
            // `x = ANY($1)`).
            for (id, field) in context_placeholder_types(plan)? {
                if let Some(slot @ None) = types.get_mut(&id) {
                    *slot = Some(field);
                }
            }
        }
        let count = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        let params: Vec<Option<FieldRef>> = (1..=count)
            .map(|i| types.get(&format!("${i}")).cloned().flatten())
            .collect();
        if let Some(returning) = returning {
            // Described over no rows: only its columns matter here.
            let plan = self.plan_returning(&returning, None).await?;
            let schema = self.result_schema(&plan, &params, declared);
            return Ok((params, Some(schema)));
        }
        let result = returns_rows.then(|| self.result_schema(&plan, &params, declared));
        Ok((params, result))
    }

    /// The result columns of `plan` as it will run, named as PostgreSQL
    /// names them (`names::rename`). The
    /// types analysis gives (see `rows`) of the statement as it will run:
    /// each parameter bound as a NULL of the type Bind gives it
    /// (`pg::handler::bind_parameters`): the type inferred from context
    /// (`params`), else the one the client declared in Parse, else text.
    /// So `SELECT $1` declared int8 is described as int8, as it answers.
    /// If binding or analysis fails, the planned types are the best answer.
    fn result_schema(
        &self,
        plan: &LogicalPlan,
        params: &[Option<FieldRef>],
        declared: &[Option<DataType>],
    ) -> SchemaRef {
        let bound = (0..params.len().max(declared.len()))
            .map(|i| {
                let inferred = params
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|f| f.data_type().clone());
                let declared = declared.get(i).cloned().flatten();
                let data_type =
                    super::literals::parameter_type(declared.as_ref(), inferred.as_ref())
                        .unwrap_or(DataType::Utf8);
                ScalarValue::try_from(&data_type).map(Into::into)
            })
            .collect::<std::result::Result<Vec<_>, _>>();
        let typed = bound
            .ok()
            .and_then(|values| {
                plan.clone()
                    .with_param_values(super::literals::parameters(ParamValues::List(values)))
                    .ok()
            })
            .unwrap_or_else(|| plan.clone());
        let state = self.ctx.state();
        let analyzed = state
            .analyzer()
            .execute_and_check(typed, state.config_options(), |_, _| {});
        let schema = match &analyzed {
            Ok(analyzed) => analyzed.schema().as_arrow().clone(),
            Err(_) => plan.schema().as_arrow().clone(),
        };
        names::rename(&schema)
    }

    /// Plans a statement DataFusion handles, with its parameters bound.
    pub async fn plan(
        &self,
        mut stmt: Statement,
        params: Option<ParamValues>,
    ) -> Result<LogicalPlan> {
        refuse_unsupported(&stmt)?;
        if let Statement::Insert(insert) = &mut stmt {
            rewrite::rewrite_insert(insert, self.txn.as_ref())?;
        }
        // Before table functions get their alias as column name: the
        // JSON ones become derived tables with their own column names.
        super::json::rewrite_statement(&mut stmt);
        rewrite::name_function_columns(&mut stmt);
        let state = self.ctx.state_ref();
        let is_aggregate = |name: &str| {
            super::subqueries::common_aggregate(name)
                || state.read().aggregate_functions().contains_key(name)
        };
        super::lateral::lateral_functions(&mut stmt, &is_aggregate);
        super::using_joins::merged_using_columns(&mut stmt);
        super::records::whole_row_references(&mut stmt, self.txn.as_ref());
        rewrite::expand_set_returning_items(&mut stmt);
        rewrite::composite_fields(&mut stmt);
        rewrite::bytea_casts(&mut stmt)?;
        rewrite::numeric_values_lists(&mut stmt)?;
        super::subqueries::single_row_subqueries(&mut stmt, &is_aggregate);
        functions::inline_settings(&mut stmt, &self.vars, params.as_ref())?;
        // After the result columns got their names (`ceiling(x)` is
        // named `ceiling`, though planned as `ceil`).
        functions::rename_calls(&mut stmt);
        names::distinguish_cast_calls(&mut stmt);
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await
            .map_err(classify)?;
        match params {
            Some(params) => plan
                .with_param_values(super::literals::parameters(params))
                .map_err(classify),
            None => Ok(plan),
        }
    }

    /// Plans a query whose result columns get PostgreSQL's names (see
    /// [`names`]).
    async fn plan_query(
        &self,
        stmt: &Statement,
        params: Option<ParamValues>,
    ) -> Result<LogicalPlan> {
        let mut stmt = stmt.clone();
        names::alias_select_items(&mut stmt);
        self.plan(stmt, params).await
    }

    /// Plans the SELECT an UPDATE or DELETE is run as (for Describe, too).
    pub async fn plan_sql(&self, sql: &str, params: Option<ParamValues>) -> Result<LogicalPlan> {
        let mut statements = self.parse(sql)?;
        let (Some(stmt), true) = (statements.pop(), statements.is_empty()) else {
            return Err(Error::Internal(format!(
                "generated SQL is not one statement: {sql}"
            )));
        };
        self.plan(stmt, params).await
    }

    async fn rows(&self, plan: LogicalPlan) -> Result<Output> {
        let (schema, stream) = self.stream(plan).await?;
        Ok(Output::Rows {
            schema,
            stream,
            command: "SELECT",
        })
    }

    /// The rows of a plan as they are produced, its columns named as
    /// PostgreSQL names them.
    async fn stream(&self, plan: LogicalPlan) -> Result<(SchemaRef, SendableRecordBatchStream)> {
        let df = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(classify)?;
        let stream = self.run(df).await?;
        // The executed plan's types: analysis retypes some columns
        // (`sql::literals`), so the planned schema may be stale.
        let schema = names::rename(stream.schema().as_ref());
        let failed = self.stream_failed.clone();
        let watched = stream.inspect(move |item| {
            if item.is_err() {
                failed.store(true, Ordering::Release);
            }
        });
        Ok((
            schema.clone(),
            Box::pin(RecordBatchStreamAdapter::new(schema, watched)),
        ))
    }

    /// A planned statement's rows, computed on the query runtime
    /// ([`crate::sql::query_runtime`]) and [`cancellable`].
    async fn run(&self, df: DataFrame) -> Result<SendableRecordBatchStream> {
        let task = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await.map_err(classify)?;
        let rows = self.engine.runtime().execute(physical, task);
        Ok(cancellable(rows, self.canceller.running()))
    }

    /// The one row a point SELECT names (see [`point`]), as the open
    /// transaction sees it (with its own write of it, if any), or, with
    /// none open, its newest committed version.
    async fn read_point(&self, point: PointSelect) -> Result<Vec<RecordBatch>> {
        let (read_as, own_write) = match self.txn.is_open() {
            true => self.txn.with(|t| {
                let own = t.own_write(&point.key).map(|row| row.map(<[u8]>::to_vec));
                Ok((t.read_as(), own))
            })?,
            false => (ReadAs::newest(), None),
        };
        let coordinator = self.engine.coordinator();
        let shard = coordinator.route(&coordinator.shards().for_key(&point.key))?;
        point.read(shard, &read_as, own_write).await
    }

    async fn point_rows(&self, point: PointSelect) -> Result<Output> {
        let schema = point.schema()?;
        let batches = self.read_point(point).await?;
        Ok(rows_of(schema, batches, "SELECT"))
    }

    /// Updates the one row a point UPDATE names (see [`point_update`]).
    async fn point_update(&self, update: PointUpdate) -> Result<Output> {
        let (table, key) = (update.row.table.clone(), update.row.key.clone());
        let batches = self.read_point(update.row.clone()).await?;
        let Some(old) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(Output::Command("UPDATE 0".into()));
        };
        let row = write::statement_rows(&table, update.new_row(old)?)?;
        let writer = RowWriter::new(table, self.engine.coordinator().clone());
        write::update_row(writer, &self.txn, key, row).await?;
        Ok(Output::Command("UPDATE 1".into()))
    }
}

/// Runs a row stream to completion, keeping its rows in memory.
async fn materialize(
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    command: &'static str,
) -> Result<Output> {
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(classify)?;
    Ok(rows_of(schema, batches, command))
}

/// Rows already at hand, as an output.
fn rows_of(schema: SchemaRef, batches: Vec<RecordBatch>, command: &'static str) -> Output {
    let stream = futures::stream::iter(batches.into_iter().map(Ok));
    Output::Rows {
        schema: schema.clone(),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        command,
    }
}

/// The types of placeholders PostgreSQL reads from their context where
/// DataFusion leaves them untyped: the type a placeholder is cast to
/// (`$1::bigint`), an array of x's type for `x = ANY($1)`.
fn context_placeholder_types(plan: &LogicalPlan) -> Result<Vec<(String, FieldRef)>> {
    let mut found = Vec::new();
    plan.apply_with_subqueries(|node| {
        let schema = merge_schema(&node.inputs());
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                match e {
                    DFExpr::Cast(cast) => {
                        if let DFExpr::Placeholder(p) = cast.expr.as_ref() {
                            found.push((p.id.clone(), cast.field.clone()));
                        }
                    }
                    // `x = ANY($1)` (planned `pg_any_equal($1, x)`): an
                    // array of x's type, as PostgreSQL infers it.
                    DFExpr::ScalarFunction(call) if call.name() == functions::ANY_EQUAL => {
                        if let [DFExpr::Placeholder(p), element] = call.args.as_slice() {
                            if let Ok(element) = element.get_type(&schema) {
                                let list = DataType::new_list(element, true);
                                found.push((p.id.clone(), Arc::new(Field::new("", list, true))));
                            }
                        }
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })
    .map_err(classify)?;
    Ok(found)
}
