//! Byte encodings of keys and rows: the only place that knows how a row is
//! laid out on disk.
//!
//! - [`keys`]: order-preserving user keys `table_id | hash16 | pk` and the
//!   MVCC suffix appended to them in storage.
//! - [`row`]: the value of a row version, encoded from and decoded straight
//!   into Arrow arrays so scans never build per-row values.
//! - [`schema`]: the row schema a scan request carries, in Arrow IPC form.
//!
//! Both work on Arrow arrays and types: Arrow is the in-memory format of the
//! whole query path, and this layer knows nothing about SQL.

pub mod keys;
pub mod row;
pub mod schema;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// Whether a column of this Arrow type can be stored. The SQL types map onto
/// exactly these (see `catalog::SqlType`).
pub fn is_storable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Utf8
            | DataType::Binary
            | DataType::FixedSizeBinary(16)
            | DataType::Date32
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}
