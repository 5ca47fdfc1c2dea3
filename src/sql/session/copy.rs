//! COPY in a session: starting it, the data of a COPY FROM as it arrives,
//! and its end (see [`crate::sql::copy`]).

use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyOption, CopyOption, CopySource, CopyTarget, Insert, Statement,
};

use super::{Output, Session, TxnState};
use crate::catalog::TableDef;
use crate::error::{Error, InputError, Result};
use crate::sql::copy::{table_query, CopyFrom, CopyOptions};
use crate::sql::dml::quote;
use crate::sql::engine::SCRATCH_SCHEMA;
use crate::sql::errors::classify;
use crate::sql::write::{self, OnConflict, RowWriter};

/// The scratch table a COPY FROM's batch is read from when the COPY leaves
/// columns to their defaults.
const COPIED_ROWS: &str = "__copied";

impl Session {
    /// `COPY ... FROM STDIN` starts a load ([`Output::CopyIn`]); `COPY ...
    /// TO STDOUT` gives its rows ([`Output::CopyOut`]).
    pub(super) async fn copy(
        &mut self,
        source: &CopySource,
        to: bool,
        target: &CopyTarget,
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
    ) -> Result<Output> {
        if !matches!(target, CopyTarget::Stdin | CopyTarget::Stdout) {
            return Err(Error::unsupported(
                "COPY to or from a file or program on the server: use COPY ... FROM STDIN or TO STDOUT (psql's \\copy)",
            ));
        }
        // Its data goes between its own messages and the statement's end,
        // which a query of several statements answers only at the end.
        if self.implicit {
            return Err(Error::unsupported(
                "COPY among several statements of one query: send it alone",
            ));
        }
        let options = CopyOptions::new(options, legacy, to)?;
        if to {
            let plan = match table_query(self.txn.as_ref(), source)? {
                Some(sql) => {
                    let query = self.parse(&sql)?.pop().ok_or_else(|| {
                        Error::Internal(format!("COPY's query did not parse: {sql}"))
                    })?;
                    self.plan_query(&query, None).await?
                }
                None => {
                    let CopySource::Query(query) = source else {
                        return Err(Error::Internal("COPY of neither table nor query".into()));
                    };
                    self.plan_query(&Statement::Query(query.clone()), None)
                        .await?
                }
            };
            let (schema, stream) = self.stream(plan).await?;
            let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let force_quote = options.force_quote(&columns)?;
            return Ok(Output::CopyOut {
                schema,
                stream,
                layout: options.layout,
                force_quote,
            });
        }
        let zone = self.time_zone()?;
        let autocommit = self.state == TxnState::Idle;
        let clock = (zone, self.transaction_began);
        let from = CopyFrom::start(self.txn.as_ref(), source, options, clock, autocommit)?;
        let output = Output::CopyIn {
            columns: from.targets.len(),
            binary: from.binary(),
        };
        let sink = self.copy_sink(&from.table, &from.targets)?;
        self.copy = Some(CopyIn { from, sink });
        Ok(output)
    }

    /// A piece of a COPY FROM's data: every batch it completes is written.
    /// An error ends the COPY (see [`Self::copy_failed`]).
    pub async fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        let copied = self.copy_batches(Some(data)).await;
        if copied.is_err() {
            self.copy_failed();
        }
        copied
    }

    /// The end of a COPY FROM's data: the last rows are written and, for a
    /// COPY outside a block, its transaction commits. `COPY n`.
    pub async fn copy_done(&mut self) -> Result<Output> {
        if let Err(e) = self.copy_batches(None).await {
            self.copy_failed();
            return Err(e);
        }
        let copy = self.copy.take().ok_or_else(no_copy)?.from;
        if copy.autocommit {
            if let Some(txn) = self.txn.take() {
                self.commit(txn).await?;
            }
        }
        Ok(Output::Command(format!("COPY {}", copy.rows)))
    }

    /// The client gave up its COPY FROM (CopyFail): nothing of it stays.
    pub fn copy_fail(&mut self, message: &str) -> Error {
        self.copy_failed();
        Error::input(
            InputError::QueryCanceled,
            format!("COPY from stdin failed: {message}"),
        )
    }

    /// Ends a COPY FROM that failed: its own transaction rolls back, or the
    /// block it ran in fails, as for any statement.
    fn copy_failed(&mut self) {
        if let Some(CopyIn { from: copy, .. }) = self.copy.take() {
            if copy.autocommit {
                self.txn.take();
            } else {
                self.state = TxnState::Failed;
            }
        }
    }

    async fn copy_batches(&mut self, data: Option<&[u8]>) -> Result<()> {
        if let Some(data) = data {
            self.copy.as_mut().ok_or_else(no_copy)?.from.feed(data);
        }
        loop {
            self.canceller.running().check()?;
            let copy = self.copy.as_mut().ok_or_else(no_copy)?;
            let Some(batch) = copy.from.next_batch(data.is_none())? else {
                return Ok(());
            };
            match &copy.sink {
                CopySink::Rows { writer, order } => {
                    let batch = batch.project(order)?;
                    let writer = writer.clone();
                    write::insert_batch(&writer, &self.txn, batch, OnConflict::Fail).await?;
                }
                CopySink::WithDefaults(insert) => {
                    let insert = Insert::clone(insert);
                    let rows =
                        MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(classify)?;
                    self.with_scratch([(COPIED_ROWS, rows)], self.insert(&insert, None))
                        .await?;
                }
            }
        }
    }

    /// How a COPY's batches are written: `targets` are the stored columns
    /// of its columns.
    fn copy_sink(&self, table: &Arc<TableDef>, targets: &[usize]) -> Result<CopySink> {
        if targets.len() == table.visible_columns() {
            // Every column: in the table's order.
            let mut order: Vec<usize> = (0..targets.len()).collect();
            order.sort_by_key(|&i| targets[i]);
            let writer = RowWriter::new(table.clone(), self.engine.coordinator().clone());
            return Ok(CopySink::Rows {
                writer: Arc::new(writer),
                order,
            });
        }
        // The columns left out get their defaults, as in an INSERT of the
        // others.
        let names: Vec<String> = targets
            .iter()
            .map(|&i| quote(&table.columns[i].name))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM {SCRATCH_SCHEMA}.{}",
            quote(&table.name),
            names.join(", "),
            quote(COPIED_ROWS)
        );
        match self.parse(&sql)?.pop() {
            Some(Statement::Insert(insert)) => Ok(CopySink::WithDefaults(Box::new(insert))),
            _ => Err(Error::Internal(format!("not an INSERT: {sql}"))),
        }
    }
}

/// A COPY FROM in progress: the data read so far, and where it goes.
pub(super) struct CopyIn {
    from: CopyFrom,
    sink: CopySink,
}

enum CopySink {
    /// Every column: the batch, its columns put in the table's order, goes
    /// to the writer.
    Rows {
        writer: Arc<RowWriter>,
        order: Vec<usize>,
    },
    /// Some columns: the planned INSERT of them from the batch (registered
    /// in the scratch schema) fills the others' defaults.
    WithDefaults(Box<Insert>),
}

fn no_copy() -> Error {
    Error::input(InputError::ProtocolViolation, "no COPY is in progress")
}
