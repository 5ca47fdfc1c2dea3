//! PostgreSQL's text output for the types whose rendering by arrow-pg
//! differs from PostgreSQL's (`sql::output` renders them: dates,
//! timestamps, times, intervals, floats, numerics, uuids), `regtype` (an oid, printed
//! as the type's name), and `char(n)` padding.
//!
//! Text-format columns of those types are rendered into Utf8 before
//! arrow-pg encodes the row; arrow-pg writes a Utf8 value's bytes as they are,
//! under the column's real type. Binary-format columns are left to arrow-pg,
//! but for numerics, uuids and times (`super::binary`).

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;

use crate::catalog::SqlType;
use crate::error::Result;
use crate::sql::output::{render, type_names, vector_texts};

/// Renders the text-format columns PostgreSQL prints differently.
pub fn to_pg_text(batch: RecordBatch, fields: &[FieldInfo], zone: &Tz) -> Result<RecordBatch> {
    // By oid: a text-format vector is described by a type of its own
    // (`results::fields`).
    let wire_oid = |i: usize| fields.get(i).map(|p| p.datatype().oid());
    let vector = |i: usize| {
        wire_oid(i)
            .is_some_and(|oid| oid == Type::INT2_VECTOR.oid() || oid == Type::OID_VECTOR.oid())
    };
    let regtype = |i: usize| wire_oid(i) == Some(Type::REGTYPE.oid());
    replace_columns(
        batch,
        DataType::Utf8,
        |i, field| {
            fields.get(i).map(|p| p.format()) == Some(FieldFormat::Text)
                && (renders(field.data_type()) || regtype(i) || vector(i))
        },
        |i, array| match (regtype(i), vector(i)) {
            (true, _) => type_names(array),
            (_, true) => vector_texts(array),
            _ => render(array, zone),
        },
    )
}

/// The `char(n)` columns of `batch` (those `schema`, the result's, marks
/// with their `n`) padded with spaces to `n` characters, as PostgreSQL
/// shows them in both formats (they are stored and computed without
/// their trailing spaces, see `sql::bpchar`).
pub fn pad_chars(batch: RecordBatch, schema: &Schema) -> Result<RecordBatch> {
    let width = |i: usize| SqlType::char_width(schema.fields().get(i)?);
    replace_columns(
        batch,
        DataType::Utf8,
        |i, field| *field.data_type() == DataType::Utf8 && width(i).is_some(),
        |i, array| {
            let n = width(i).unwrap_or_default();
            let padded: StringArray = array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|s| format!("{s:<n$}")))
                .collect();
            Ok(Arc::new(padded) as ArrayRef)
        },
    )
}

/// `batch` with the columns `replaced` picks converted by `convert` into
/// columns of type `to` (the batch itself when it picks none).
pub fn replace_columns(
    batch: RecordBatch,
    to: DataType,
    replaced: impl Fn(usize, &Field) -> bool,
    convert: impl Fn(usize, &ArrayRef) -> Result<ArrayRef>,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let picked: Vec<bool> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| replaced(i, f))
        .collect();
    if !picked.contains(&true) {
        return Ok(batch);
    }
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut new_fields = Vec::with_capacity(batch.num_columns());
    for (i, (field, array)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        if picked[i] {
            columns.push(convert(i, array)?);
            new_fields.push(Field::new(field.name(), to.clone(), true));
        } else {
            columns.push(array.clone());
            new_fields.push(field.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(new_fields)),
        columns,
    )?)
}

fn renders(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(_)
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::LargeBinary
            | DataType::FixedSizeBinary(16)
            | DataType::List(_)
            | DataType::Struct(_)
    )
}
