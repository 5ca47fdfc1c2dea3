//! Turning Arrow rows into a transaction's writes: validation and keys.
//!
//! Checks made here, before a row reaches the transaction: NOT NULL (23502),
//! `varchar(n)` / `char(n)` length (22001; `char` is stored without
//! trailing spaces, `sql::bpchar`), numeric precision (22003), and for inserts that the key is not taken (23505) at
//! the transaction's snapshot or by its own earlier writes. A key taken by a
//! transaction that commits after our snapshot is caught at commit (40001).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Decimal256Type, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;

use super::json::{stored_column, Flavor};
use super::session_txn::SessionTxn;
use crate::catalog::{SqlType, TableDef, PUBLIC_SCHEMA};
use crate::encoding::keys::{encode_key_value, row_key};
use crate::encoding::row::encode_rows;
use crate::error::{Error, ErrorFields, InputError, Result};
use crate::shard::access::block_on;
use crate::shard::proto::ScanRequest;
use crate::txn::{since_epoch, ReadAs, Transaction, TxnCoordinator};

/// Source of hidden row ids: start-up time in microseconds times 1024,
/// counting up, so ids stay unique across restarts unless a node makes more
/// than 1024 rows per microsecond of its uptime.
static NEXT_ROWID: LazyLock<AtomicI64> = LazyLock::new(|| {
    let micros = since_epoch().as_micros() as i64;
    AtomicI64::new(micros.saturating_mul(1024))
});

/// User keys by the shard group that holds them.
type KeysByShard = BTreeMap<u32, Vec<Vec<u8>>>;

/// Writes rows of one table into a transaction.
pub struct RowWriter {
    def: Arc<TableDef>,
    coordinator: Arc<TxnCoordinator>,
}

impl RowWriter {
    pub fn new(def: Arc<TableDef>, coordinator: Arc<TxnCoordinator>) -> Self {
        Self { def, coordinator }
    }

    /// Validates a batch of rows and completes it to the stored layout:
    /// `batch` holds the first `batch.num_columns()` stored columns; a
    /// missing hidden row id is generated.
    pub fn complete(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if columns.len() + 1 == self.def.columns.len() && self.def.hidden_rowid {
            let start = NEXT_ROWID.fetch_add(batch.num_rows() as i64, Ordering::Relaxed);
            columns.push(Arc::new(Int64Array::from_iter_values(
                start..start + batch.num_rows() as i64,
            )));
        }
        if columns.len() != self.def.columns.len() {
            return Err(Error::Internal(format!(
                "{} columns written to table {} of {}",
                columns.len(),
                self.def.name,
                self.def.columns.len()
            )));
        }
        for (array, column) in columns.iter_mut().zip(&self.def.columns) {
            // The planner casts values to the column's type, but an integer
            // literal it typed as bigint may have been retyped as integer
            // since (`sql::literals`): widen it (a narrowing that does not
            // fit is 22003, as for any value).
            let target = column.sql_type.to_arrow();
            let numeric = super::numeric::is_numeric;
            if array.data_type() != &target && (numeric(&target) || numeric(array.data_type())) {
                // A `numeric` of its own scale, to or from another type.
                let converted = match numeric(&target) {
                    true => super::numeric::to_numerics(array.as_ref()),
                    false => super::numeric::from_numerics(array.as_ref(), &target),
                };
                *array = converted.map_err(super::errors::classify)?;
            } else if array.data_type() != &target {
                let options = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                *array = cast_with_options(array, &target, &options).map_err(|_| {
                    Error::input(
                        InputError::OutOfRange,
                        format!("value out of range for column \"{}\"", column.name),
                    )
                })?;
            }
            if !column.nullable && array.null_count() > 0 {
                return Err(not_null_violation(&self.def.name, &column.name));
            }
            check_value_fits(array, &column.sql_type)?;
            if let Some(digits) = column.sql_type.fraction_digits() {
                *array = super::datetime::round_fraction(array, digits)?;
            }
            match column.sql_type {
                SqlType::Char(n) => *array = super::bpchar::unpadded_column(array, n as usize),
                SqlType::Varchar(Some(n)) => *array = cut_to(array, n as usize),
                SqlType::Json => *array = stored_column(array, Flavor::Json)?,
                SqlType::Jsonb => *array = stored_column(array, Flavor::Jsonb)?,
                _ => {}
            }
        }
        Ok(RecordBatch::try_new(self.def.row_schema(), columns)?)
    }

    /// The user key of every row of a completed batch.
    pub fn keys(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        (0..batch.num_rows())
            .map(|row| {
                let mut pk = Vec::new();
                for &col in &self.def.primary_key {
                    encode_key_value(&mut pk, batch.column(col).as_ref(), row)?;
                }
                Ok(row_key(self.def.id.0, &pk))
            })
            .collect()
    }

    /// Fails with 23505 if the transaction sees a row under any of `keys`,
    /// or one of them comes twice. Committed rows are counted with one call
    /// per shard group. Blocks (a shard group on another node is asked over
    /// the network).
    fn check_free(&self, txn: &Transaction, batch: &RecordBatch, keys: &[Vec<u8>]) -> Result<()> {
        let unseen = self.not_written(txn, batch, keys, OnConflict::Fail)?.1;
        block_on(self.check_not_committed(unseen, txn.read_as(), batch, keys))
    }

    /// Which of `keys` (those of `batch`'s rows) are taken in `txn` itself
    /// (it wrote a row under the key, or the key came earlier in `keys`),
    /// and the others by shard group, to be checked in the groups (see
    /// [`Self::check_free`]). With [`OnConflict::Fail`] a taken key is
    /// 23505.
    fn not_written(
        &self,
        txn: &Transaction,
        batch: &RecordBatch,
        keys: &[Vec<u8>],
        on_conflict: OnConflict,
    ) -> Result<(Vec<bool>, KeysByShard)> {
        let mut seen = HashSet::with_capacity(keys.len());
        let mut taken = Vec::with_capacity(keys.len());
        let mut by_shard = KeysByShard::new();
        let shards = self.coordinator.shards();
        for key in keys {
            let own = txn.own_write(key);
            let repeated = !seen.insert(key.as_slice());
            if repeated && on_conflict == OnConflict::Update {
                return Err(updated_twice());
            }
            let here = repeated || matches!(own, Some(Some(_)));
            if here && on_conflict == OnConflict::Fail {
                return Err(self.duplicate_key(batch, keys, key));
            }
            taken.push(here);
            // A key the transaction deleted (`Some(None)`) is free whatever
            // is committed; one it did not touch is asked of its group.
            if !here && own.is_none() {
                by_shard
                    .entry(shards.for_key(key).range().id.0)
                    .or_default()
                    .push(key.clone());
            }
        }
        Ok((taken, by_shard))
    }

    /// 23505 if a row is committed under one of `by_shard`'s keys at the
    /// snapshot `read_as`, with one call per shard group.
    async fn check_not_committed(
        &self,
        by_shard: KeysByShard,
        read_as: ReadAs,
        batch: &RecordBatch,
        keys: &[Vec<u8>],
    ) -> Result<()> {
        let committed = self.committed(by_shard, read_as).await?;
        match keys.iter().find(|k| committed.contains(*k)) {
            None => Ok(()),
            Some(key) => Err(self.duplicate_key(batch, keys, key)),
        }
    }

    /// The keys of `by_shard` under which a row is committed at the
    /// snapshot `read_as`, with one call per shard group.
    async fn committed(&self, by_shard: KeysByShard, read_as: ReadAs) -> Result<HashSet<Vec<u8>>> {
        let shards = self.coordinator.shards();
        let mut committed = HashSet::new();
        for (shard, keys) in by_shard {
            let access = self.coordinator.route(&shards.replicas()[shard as usize])?;
            let request = ScanRequest {
                table_id: self.def.id.0,
                snapshot_ts: read_as.snapshot_ts,
                txn_id: read_as.txn_id.clone(),
                ..Default::default()
            };
            let exists = access.existing(keys.clone(), request).await?;
            committed.extend(
                keys.into_iter()
                    .zip(exists)
                    .filter_map(|(k, e)| e.then_some(k)),
            );
        }
        Ok(committed)
    }

    /// 23505 for `key`, one of `keys` (those of `batch`'s rows), with
    /// PostgreSQL's fields: the constraint, its table, and a DETAIL naming
    /// the key's values (`Key (id)=(1) already exists.`).
    fn duplicate_key(&self, batch: &RecordBatch, keys: &[Vec<u8>], key: &[u8]) -> Error {
        let constraint = self.def.key_name();
        let detail = keys.iter().position(|k| k == key).map(|row| {
            let (names, values): (Vec<_>, Vec<_>) = self
                .def
                .primary_key
                .iter()
                .map(|&col| {
                    let value = array_value_to_string(batch.column(col), row).unwrap_or_default();
                    (self.def.columns[col].name.as_str(), value)
                })
                .unzip();
            format!(
                "Key ({})=({}) already exists.",
                names.join(", "),
                values.join(", ")
            )
        });
        let fields = ErrorFields {
            detail,
            schema: Some(PUBLIC_SCHEMA.to_string()),
            table: Some(self.def.name.clone()),
            constraint: Some(constraint.clone()),
            ..Default::default()
        };
        Error::input_with(
            InputError::UniqueViolation,
            format!("duplicate key value violates unique constraint \"{constraint}\""),
            &fields,
        )
    }

    /// Inserts new rows into the session's transaction; a key that exists
    /// is a unique violation. Awaited on the caller's task for a few rows
    /// (their keys are a read or two each, as a point read is), with
    /// `block_on` on a blocking thread for more (see [`insert_batch`]).
    /// With [`OnConflict::Skip`] or [`OnConflict::Update`] a row whose key
    /// is taken is left out instead (see [`Inserted`]).
    async fn insert(
        &self,
        txn: &SessionTxn,
        batch: &RecordBatch,
        on_conflict: OnConflict,
    ) -> Result<Inserted> {
        let batch = self.complete(batch)?;
        let keys = self.keys(&batch)?;
        let ((mut taken, unseen), read_as) = txn.with(|t| {
            Ok((
                self.not_written(t, &batch, &keys, on_conflict)?,
                t.read_as(),
            ))
        })?;
        if on_conflict == OnConflict::Fail {
            self.check_not_committed(unseen, read_as, &batch, &keys)
                .await?;
        } else {
            let committed = self.committed(unseen, read_as).await?;
            for (taken, key) in taken.iter_mut().zip(&keys) {
                *taken |= committed.contains(key);
            }
        }
        let (written, free_keys) = rows_where(&batch, &keys, &taken, false)?;
        let (conflicting, conflicting_keys) = rows_where(&batch, &keys, &taken, true)?;
        let rows = encode_rows(&written)?;
        txn.with(|t| {
            for (key, row) in free_keys.into_iter().zip(rows) {
                t.put(key, row);
            }
            Ok(())
        })?;
        Ok(Inserted {
            written,
            conflicting,
            conflicting_keys,
        })
    }

    /// Inserts new rows as a transaction of their own, their keys checked
    /// when the commit applies instead of by a read first
    /// ([`TxnCoordinator::insert_alone`]): how many, or `None` with nothing
    /// written when the ordinary way must take it: rows of several shard
    /// groups, a key twice, or a key taken or locked (that way waits for
    /// the lock, and reports a taken key as PostgreSQL does, naming it, or
    /// inserts after all if the row went meanwhile).
    pub async fn insert_alone(&self, batch: &RecordBatch) -> Result<Option<usize>> {
        let batch = self.complete(batch)?;
        let keys = self.keys(&batch)?;
        if keys.len() > 1 && keys.iter().collect::<HashSet<_>>().len() < keys.len() {
            return Ok(None);
        }
        let rows = keys.into_iter().zip(encode_rows(&batch)?).collect();
        let committed = self.coordinator.insert_alone(self.def.id, rows).await?;
        Ok(committed.map(|_| batch.num_rows()))
    }

    /// Replaces the rows at `old_keys` with the rows of `batch` (same
    /// order). A row whose key changed moves; its new key must be free.
    /// Returns the new rows as written.
    pub fn update(
        &self,
        txn: &mut Transaction,
        old_keys: &[Vec<u8>],
        batch: &RecordBatch,
    ) -> Result<RecordBatch> {
        let batch = self.complete(batch)?;
        let keys = self.keys(&batch)?;
        let rows = encode_rows(&batch)?;
        for (i, ((old, new), row)) in old_keys.iter().zip(keys).zip(rows).enumerate() {
            if *old != new {
                txn.delete(old.clone());
                self.check_free(txn, &batch.slice(i, 1), std::slice::from_ref(&new))?;
            }
            txn.put(new, row);
        }
        Ok(batch)
    }
}

/// What an INSERT does with a row whose key is taken (by a row the
/// transaction sees, or an earlier row of the statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Fails the statement with 23505.
    Fail,
    /// Leaves the row out (`ON CONFLICT DO NOTHING`).
    Skip,
    /// Leaves the row out for the statement to update the one under its
    /// key (`ON CONFLICT DO UPDATE`); a key that comes twice in a batch
    /// is 21000, as PostgreSQL refuses to update a row twice.
    Update,
}

/// An upsert that would write a key twice (21000, as in PostgreSQL).
pub fn updated_twice() -> Error {
    Error::input(
        InputError::CardinalityViolation,
        "ON CONFLICT DO UPDATE command cannot affect row a second time",
    )
}

/// A batch an INSERT wrote: the rows written (completed, see
/// [`RowWriter::complete`]), and the completed rows left out because their
/// key is taken, with their keys (none with [`OnConflict::Fail`]).
pub struct Inserted {
    pub written: RecordBatch,
    pub conflicting: RecordBatch,
    pub conflicting_keys: Vec<Vec<u8>>,
}

/// The rows of `batch` (and their `keys`) whose `taken` flag is `want`.
fn rows_where(
    batch: &RecordBatch,
    keys: &[Vec<u8>],
    taken: &[bool],
    want: bool,
) -> Result<(RecordBatch, Vec<Vec<u8>>)> {
    let mask: BooleanArray = taken.iter().map(|&t| Some(t == want)).collect();
    let keys = keys
        .iter()
        .zip(taken)
        .filter(|(_, &t)| t == want)
        .map(|(key, _)| key.clone())
        .collect();
    Ok((filter_record_batch(batch, &mask)?, keys))
}

/// `array`'s strings cut to `max` characters (what is cut is spaces:
/// [`check_value_fits`] refused anything else), as PostgreSQL stores a
/// `varchar(n)` value with trailing spaces beyond `n`.
fn cut_to(array: &ArrayRef, max: usize) -> ArrayRef {
    let strings = array.as_string::<i32>();
    if strings.iter().flatten().all(|v| v.len() <= max) {
        return array.clone();
    }
    let cut: StringArray = strings
        .iter()
        .map(|v| v.map(|v| v.char_indices().nth(max).map_or(v, |(at, _)| &v[..at])))
        .collect();
    Arc::new(cut)
}

/// Rejects values that do not fit the column's declared size.
fn check_value_fits(array: &ArrayRef, sql_type: &SqlType) -> Result<()> {
    if let Some(max) = sql_type.max_chars() {
        let strings = array.as_string::<i32>();
        for value in strings.iter().flatten() {
            // PostgreSQL cuts trailing spaces that do not fit instead of failing.
            if value.chars().count() > max as usize
                && value.trim_end_matches(' ').chars().count() > max as usize
            {
                return Err(Error::input(
                    InputError::StringTooLong,
                    format!("value too long for type {}", sql_type.pg_name()),
                ));
            }
        }
    }
    let overflow = |p: u8, s: i8| crate::numeric::too_large_for(u32::from(p), s.max(0) as u32);
    match *array.data_type() {
        DataType::Decimal128(p, s) => array
            .as_primitive::<Decimal128Type>()
            .validate_decimal_precision(p)
            .map_err(|_| overflow(p, s)),
        DataType::Decimal256(p, s) => array
            .as_primitive::<Decimal256Type>()
            .validate_decimal_precision(p)
            .map_err(|_| overflow(p, s)),
        _ => Ok(()),
    }
}

/// A batch of the first `columns.len()` columns of `table`'s rows, as
/// statements produce them (any value may be NULL until the writer checks).
pub fn statement_rows(table: &TableDef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let fields: Vec<Field> = table.columns[..columns.len()]
        .iter()
        .map(|c| Field::new(&c.name, c.sql_type.to_arrow(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Up to how many rows an INSERT checks and writes on the session's task.
const INSERTED_IN_PLACE: usize = 16;

/// Inserts a batch of new rows into the session's transaction (sending
/// its writes ahead if they outgrow the buffer).
pub async fn insert_batch(
    writer: &Arc<RowWriter>,
    txn: &Arc<SessionTxn>,
    batch: RecordBatch,
    on_conflict: OnConflict,
) -> Result<Inserted> {
    let written = match batch.num_rows() <= INSERTED_IN_PLACE {
        true => writer.insert(txn, &batch, on_conflict).await?,
        false => {
            let (writer, session_txn) = (writer.clone(), txn.clone());
            // Many keys' checks read storage: keep them off the async runtime.
            let insert = move || block_on(writer.insert(&session_txn, &batch, on_conflict));
            tokio::task::spawn_blocking(insert).await??
        }
    };
    txn.bound_writes().await?;
    Ok(written)
}

/// Replaces the row at `old_key` with `row` in the session's transaction
/// (sending its writes ahead if they outgrow the buffer).
pub async fn update_row(
    writer: RowWriter,
    txn: &Arc<SessionTxn>,
    old_key: Vec<u8>,
    row: RecordBatch,
) -> Result<()> {
    let session_txn = txn.clone();
    // A moved row's new key is checked in storage: off the async runtime.
    tokio::task::spawn_blocking(move || session_txn.with(|t| writer.update(t, &[old_key], &row)))
        .await??;
    txn.bound_writes().await
}

/// PostgreSQL's error for a NULL written to NOT NULL `column` of `table`.
pub fn not_null_violation(table: &str, column: &str) -> Error {
    let fields = ErrorFields {
        schema: Some(PUBLIC_SCHEMA.to_string()),
        table: Some(table.to_string()),
        column: Some(column.to_string()),
        ..Default::default()
    };
    Error::input_with(
        InputError::NotNullViolation,
        format!("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"),
        &fields,
    )
}
