//! `RETURNING` on INSERT, UPDATE and DELETE.
//!
//! The statement keeps each row it wrote as the table stores it (INSERT and
//! UPDATE: the new row, after defaults, casts and `char(n)` trimming; DELETE:
//! the row it deleted), and once every row is written the list is evaluated
//! as a query over those rows:
//!
//! ```text
//! UPDATE t AS x SET b = b + 1 WHERE a > 5 RETURNING a, b * 2
//!   => SELECT a, b * 2 FROM shardforge_scratch."t" AS "x"
//! ```
//!
//! where `shardforge_scratch."t"` is the kept rows, registered in the
//! session's scratch schema for the time it takes to plan the query. So the
//! list is whatever a select list may be (`*`, expressions, functions,
//! parameters, subqueries over other tables), its columns are named as
//! PostgreSQL names them, and an error in it (a division by zero) fails the
//! statement before it commits, as in PostgreSQL. Columns of other tables
//! of `UPDATE ... FROM` / `DELETE ... USING` cannot be returned yet (42703;
//! PostgreSQL returns them).
//!
//! The rows are kept in memory, like the answer of a multi-statement query:
//! PostgreSQL would spill a large result to disk; ShardForge fails the
//! statement with 54000 once they pass [`KEPT_BYTES`].

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{SelectItem, Statement};

use super::dml::quote;
use super::engine::{scratch_table, SCRATCH_SCHEMA};
use super::rewrite::parse_query;
use crate::catalog::TableDef;
use crate::error::{Error, InputError, Result};

/// How many bytes of rows one statement's RETURNING may keep.
pub const KEPT_BYTES: usize = 256 << 20;

/// A statement's RETURNING list and the rows it returns them for.
pub struct Returning {
    list: Vec<SelectItem>,
    table: Arc<TableDef>,
    /// The name the list refers to the table by (its alias, if any).
    qualifier: String,
    rows: Vec<RecordBatch>,
    bytes: usize,
}

impl Returning {
    /// The RETURNING of a statement writing `table` (known as `qualifier`
    /// in it), if it has one.
    pub fn of(
        list: &Option<Vec<SelectItem>>,
        table: Arc<TableDef>,
        qualifier: String,
    ) -> Option<Self> {
        list.as_ref().map(|list| Self {
            list: list.clone(),
            table,
            qualifier,
            rows: Vec::new(),
            bytes: 0,
        })
    }

    /// Keeps `rows`, in the table's stored layout (a hidden row id, which
    /// the list cannot name, is left out).
    pub fn keep(&mut self, rows: &RecordBatch) -> Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        // In the table's own schema, whatever the statement's batch called
        // its columns (a DELETE's come from its SELECT).
        let visible = RecordBatch::try_new(
            self.table.visible_schema(),
            rows.columns()[..self.table.visible_columns()].to_vec(),
        )?;
        self.bytes += visible.get_array_memory_size();
        if self.bytes > KEPT_BYTES {
            return Err(Error::input(
                InputError::ProgramLimitExceeded,
                format!("the rows RETURNING returns exceed {} MiB", KEPT_BYTES >> 20),
            ));
        }
        self.rows.push(visible);
        Ok(())
    }

    /// The name the kept rows are registered under in [`SCRATCH_SCHEMA`].
    pub fn table_name(&self) -> &str {
        &self.table.name
    }

    /// The kept rows, as a table.
    pub fn rows(&self) -> Result<MemTable> {
        scratch_table(&self.table, self.rows.clone())
    }

    /// The query that evaluates the list over the kept rows.
    pub fn query(&self) -> Result<Statement> {
        let list: Vec<String> = self.list.iter().map(ToString::to_string).collect();
        let sql = format!(
            "SELECT {} FROM {SCRATCH_SCHEMA}.{} AS {}",
            list.join(", "),
            quote(&self.table.name),
            quote(&self.qualifier)
        );
        Ok(Statement::Query(parse_query(&sql)?))
    }
}
