//! COPY in a session: starting it, the data of a COPY FROM as it arrives,
//! and its end (see [`crate::sql::copy`]).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
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
        let options = CopyOptions::new(options, legacy, to)?;
        if to {
            let (plan, names) = match table_query(self.txn.as_ref(), source)? {
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
            let (schema, stream) = self.stream(plan, &names).await?;
            let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let force_quote = options.force_quote(&columns)?;
            return Ok(Output::CopyOut {
                schema,
                stream,
                layout: options.layout,
                force_quote,
            });
        }
        if self.implicit {
            return Err(Error::unsupported(
                "COPY FROM STDIN among several statements of one query: send it alone",
            ));
        }
        let zone = self.time_zone()?;
        let autocommit = self.state == TxnState::Idle;
        let copy = CopyFrom::start(self.txn.as_ref(), source, options, zone, autocommit)?;
        let output = Output::CopyIn {
            columns: copy.targets.len(),
            binary: copy.binary(),
        };
        self.copy = Some(copy);
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
        let copy = self.copy.take().ok_or_else(no_copy)?;
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
        if let Some(copy) = self.copy.take() {
            if copy.autocommit {
                self.txn.take();
            } else {
                self.state = TxnState::Failed;
            }
        }
    }

    async fn copy_batches(&mut self, data: Option<&[u8]>) -> Result<()> {
        let copy = self.copy.as_mut().ok_or_else(no_copy)?;
        if let Some(data) = data {
            copy.feed(data);
        }
        loop {
            self.canceller.running().check()?;
            let copy = self.copy.as_mut().ok_or_else(no_copy)?;
            let Some(batch) = copy.next_batch(data.is_none())? else {
                return Ok(());
            };
            let (table, targets) = (copy.table.clone(), copy.targets.clone());
            self.write_copied(table, &targets, batch).await?;
        }
    }

    /// Writes a batch of copied rows; `targets` are the stored columns of
    /// its columns.
    async fn write_copied(
        &self,
        table: Arc<TableDef>,
        targets: &[usize],
        batch: RecordBatch,
    ) -> Result<()> {
        if targets.len() < table.visible_columns() {
            // The columns left out get their defaults, as in an INSERT of
            // the others.
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
            let Some(Statement::Insert(insert)) = self.parse(&sql)?.pop() else {
                return Err(Error::Internal(format!("not an INSERT: {sql}")));
            };
            let rows = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(classify)?;
            self.with_scratch([(COPIED_ROWS, rows)], self.insert(&insert, None))
                .await?;
            return Ok(());
        }
        // Every column: in the table's order.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by_key(|&i| targets[i]);
        let batch = batch.project(&order)?;
        let writer = Arc::new(RowWriter::new(table, self.engine.coordinator().clone()));
        write::insert_batch(&writer, &self.txn, batch, OnConflict::Fail).await?;
        Ok(())
    }
}

fn no_copy() -> Error {
    Error::input(InputError::ProtocolViolation, "no COPY is in progress")
}
