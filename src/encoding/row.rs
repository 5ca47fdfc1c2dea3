//! The stored value of a row version.
//!
//! ```text
//! live row:  FORMAT_V1 | ncols (u16 LE) | null bitmap (ceil(ncols/8) bytes) | values
//! tombstone: empty value (the row was deleted at this version)
//! ```
//!
//! Values of non-null columns follow in column order: fixed-width types
//! little-endian at their natural width (bool 1, int2 2, int4/date/float4 4,
//! int8/timestamp/float8 8, decimal128 16, decimal256 32 bytes); text and
//! bytea as a u32 LE length and the bytes; an array (a `List`) as a u32 LE
//! length and, in those bytes, its element count (u32 LE), a null bitmap
//! of its elements and the values of the others, each as a column's.
//! `ncols` lets a row written before a column was added decode with the
//! missing columns as NULL.
//!
//! Every column, key columns included, is in the value, so a scan decodes a
//! row from its value alone and appends straight into Arrow builders.

use std::sync::Arc;

use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, LargeBinaryBuilder, ListArray,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    i256, DataType, Date32Type, Decimal128Type, Decimal256Type, FieldRef, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
    SchemaRef, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;

/// Whether a stored value is a deletion marker.
pub fn is_tombstone(value: &[u8]) -> bool {
    value.is_empty()
}

/// Encodes every row of `batch` (all columns, in schema order).
pub fn encode_rows(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let ncols = batch.num_columns();
    let ncols_u16 =
        u16::try_from(ncols).map_err(|_| Error::Internal(format!("{ncols} columns in a row")))?;
    let bitmap_len = ncols.div_ceil(8);
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut out = Vec::with_capacity(16 + 8 * ncols);
        out.push(FORMAT_V1);
        out.extend_from_slice(&ncols_u16.to_le_bytes());
        let bitmap_at = out.len();
        out.resize(bitmap_at + bitmap_len, 0);
        for (col, array) in batch.columns().iter().enumerate() {
            if array.is_null(row) {
                out[bitmap_at + col / 8] |= 1 << (col % 8);
            } else {
                encode_value(&mut out, array.as_ref(), row)?;
            }
        }
        rows.push(out);
    }
    Ok(rows)
}

fn encode_value(out: &mut Vec<u8>, array: &dyn Array, row: usize) -> Result<()> {
    match array.data_type() {
        DataType::Boolean => out.push(u8::from(array.as_boolean().value(row))),
        DataType::Int16 => {
            out.extend_from_slice(&array.as_primitive::<Int16Type>().value(row).to_le_bytes())
        }
        DataType::Int32 => {
            out.extend_from_slice(&array.as_primitive::<Int32Type>().value(row).to_le_bytes())
        }
        DataType::Date32 => {
            out.extend_from_slice(&array.as_primitive::<Date32Type>().value(row).to_le_bytes())
        }
        DataType::Int64 => {
            out.extend_from_slice(&array.as_primitive::<Int64Type>().value(row).to_le_bytes())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => out.extend_from_slice(
            &array
                .as_primitive::<TimestampMicrosecondType>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Time64(TimeUnit::Microsecond) => out.extend_from_slice(
            &array
                .as_primitive::<Time64MicrosecondType>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Float32 => {
            out.extend_from_slice(&array.as_primitive::<Float32Type>().value(row).to_le_bytes())
        }
        DataType::Float64 => {
            out.extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_le_bytes())
        }
        DataType::Decimal128(_, _) => out.extend_from_slice(
            &array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Decimal256(_, _) => out.extend_from_slice(
            &array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Utf8 => put_bytes(out, array.as_string::<i32>().value(row).as_bytes())?,
        DataType::Binary => put_bytes(out, array.as_binary::<i32>().value(row))?,
        // A numeric with its own scale: its sortable bytes (`crate::numeric`).
        DataType::LargeBinary => put_bytes(out, array.as_binary::<i64>().value(row))?,
        DataType::FixedSizeBinary(_) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(row))
        }
        // Months, days, nanoseconds.
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            out.extend_from_slice(&v.months.to_le_bytes());
            out.extend_from_slice(&v.days.to_le_bytes());
            out.extend_from_slice(&v.nanoseconds.to_le_bytes());
        }
        DataType::List(_) => {
            let elements = array.as_list::<i32>().value(row);
            let mut list = Vec::with_capacity(8 + 8 * elements.len());
            let count = u32::try_from(elements.len())
                .map_err(|_| Error::Internal(format!("an array of {} elements", elements.len())))?;
            list.extend_from_slice(&count.to_le_bytes());
            let bitmap_at = list.len();
            list.resize(bitmap_at + elements.len().div_ceil(8), 0);
            for element in 0..elements.len() {
                if elements.is_null(element) {
                    list[bitmap_at + element / 8] |= 1 << (element % 8);
                } else {
                    encode_value(&mut list, elements.as_ref(), element)?;
                }
            }
            put_bytes(out, &list)?;
        }
        other => return Err(Error::Internal(format!("cannot store a {other} value"))),
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Internal(format!("value of {} bytes", bytes.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// One Arrow builder per projected column, typed once up front.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal128(Decimal128Builder, u8, i8),
    Decimal256(Decimal256Builder, u8, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    LargeBinary(LargeBinaryBuilder),
    FixedSizeBinary(FixedSizeBinaryBuilder, usize),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Interval(IntervalMonthDayNanoBuilder),
    List(Box<ListBuilder>),
}

/// The arrays of a `List` column: their elements in one builder.
struct ListBuilder {
    shape: ListShape,
    elements: ColumnBuilder,
}

/// Where each array of a `List` column starts and ends among its
/// elements, and which arrays are NULL: what a `ListArray` is built from
/// besides the elements (also used by COPY's array input).
pub struct ListShape {
    field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl ListShape {
    /// The shape of a `List` of `field` elements.
    pub fn new(field: FieldRef) -> Self {
        Self {
            field,
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    /// An array of the next `count` elements.
    pub fn push(&mut self, count: usize) {
        let end = self.offsets[self.offsets.len() - 1] + count as i32;
        self.offsets.push(end);
        self.nulls.append_non_null();
    }

    /// A NULL array.
    pub fn push_null(&mut self) {
        self.offsets.push(self.offsets[self.offsets.len() - 1]);
        self.nulls.append_null();
    }

    /// The arrays pushed since the last call, of `elements`: the elements
    /// appended alongside the pushes (whose counts the offsets sum).
    pub fn finish(&mut self, elements: ArrayRef) -> ListArray {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        ListArray::new(
            self.field.clone(),
            OffsetBuffer::new(offsets.into()),
            elements,
            self.nulls.finish(),
        )
    }
}

impl ColumnBuilder {
    fn new(data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Int16 => Self::Int16(Int16Builder::new()),
            DataType::Int32 => Self::Int32(Int32Builder::new()),
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::Float32 => Self::Float32(Float32Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            DataType::Decimal128(p, s) => Self::Decimal128(Decimal128Builder::new(), *p, *s),
            DataType::Decimal256(p, s) => Self::Decimal256(Decimal256Builder::new(), *p, *s),
            DataType::Utf8 => Self::Utf8(StringBuilder::new()),
            DataType::Binary => Self::Binary(BinaryBuilder::new()),
            DataType::LargeBinary => Self::LargeBinary(LargeBinaryBuilder::new()),
            DataType::FixedSizeBinary(width) => {
                Self::FixedSizeBinary(FixedSizeBinaryBuilder::new(*width), *width as usize)
            }
            DataType::Date32 => Self::Date32(Date32Builder::new()),
            DataType::Time64(TimeUnit::Microsecond) => {
                Self::Time64(Time64MicrosecondBuilder::new())
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new(), tz.clone())
            }
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Self::Interval(IntervalMonthDayNanoBuilder::new())
            }
            DataType::List(field) => Self::List(Box::new(ListBuilder {
                shape: ListShape::new(field.clone()),
                elements: ColumnBuilder::new(field.data_type())?,
            })),
            other => return Err(Error::Internal(format!("cannot decode a {other} column"))),
        })
    }

    fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal128(b, _, _) => b.append_null(),
            Self::Decimal256(b, _, _) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::LargeBinary(b) => b.append_null(),
            Self::FixedSizeBinary(b, _) => b.append_null(),
            Self::Date32(b) => b.append_null(),
            Self::Time64(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
            Self::Interval(b) => b.append_null(),
            Self::List(b) => b.shape.push_null(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal128(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Self::Decimal256(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::LargeBinary(b) => Arc::new(b.finish()),
            Self::FixedSizeBinary(b, _) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::Time64(b) => Arc::new(b.finish()),
            Self::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Self::Interval(b) => Arc::new(b.finish()),
            Self::List(b) => {
                let elements = b.elements.finish()?;
                Arc::new(b.shape.finish(elements))
            }
        })
    }
}

/// Reads values out of an encoded row, one column at a time.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos + n;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| Error::Corrupt("row value is truncated".into()))?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn var(&mut self) -> Result<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    /// Skips one value of `data_type` without decoding it.
    fn skip(&mut self, data_type: &DataType) -> Result<()> {
        match data_type {
            DataType::Utf8 | DataType::Binary | DataType::LargeBinary | DataType::List(_) => {
                self.var()?;
            }
            other => {
                self.take(fixed_width(other)?)?;
            }
        }
        Ok(())
    }
}

fn fixed_width(data_type: &DataType) -> Result<usize> {
    Ok(match data_type {
        DataType::Boolean => 1,
        DataType::Int16 => 2,
        DataType::Int32 | DataType::Date32 | DataType::Float32 => 4,
        DataType::Int64 | DataType::Float64 | DataType::Timestamp(_, _) | DataType::Time64(_) => 8,
        DataType::Decimal128(_, _) => 16,
        DataType::Decimal256(_, _) => 32,
        DataType::FixedSizeBinary(width) => *width as usize,
        DataType::Interval(IntervalUnit::MonthDayNano) => 16,
        other => return Err(Error::Internal(format!("{other} has no fixed width"))),
    })
}

/// Decodes encoded rows of one row layout into Arrow record batches holding
/// the projected columns.
pub struct RowDecoder {
    row_schema: SchemaRef,
    output_schema: SchemaRef,
    /// For each stored column, the index of its builder if it is projected.
    slot: Vec<Option<usize>>,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl RowDecoder {
    /// `projection` lists stored column indexes in output order.
    pub fn new(row_schema: SchemaRef, projection: &[usize]) -> Result<Self> {
        let output_schema = Arc::new(row_schema.project(projection)?);
        let mut slot = vec![None; row_schema.fields().len()];
        let mut builders = Vec::with_capacity(projection.len());
        for (out, &col) in projection.iter().enumerate() {
            if slot[col].is_some() {
                return Err(Error::Internal(format!("column {col} projected twice")));
            }
            slot[col] = Some(out);
            builders.push(ColumnBuilder::new(row_schema.field(col).data_type())?);
        }
        Ok(Self {
            row_schema,
            output_schema,
            slot,
            builders,
            rows: 0,
        })
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one live row (not a tombstone). With no column projected
    /// the row is only counted: its bytes may be empty (a read that asked
    /// only whether it exists).
    pub fn push(&mut self, value: &[u8]) -> Result<()> {
        if self.builders.is_empty() {
            self.rows += 1;
            return Ok(());
        }
        let mut cur = Cursor {
            bytes: value,
            pos: 0,
        };
        if cur.take(1)?[0] != FORMAT_V1 {
            return Err(Error::Corrupt(format!("unknown row format {}", value[0])));
        }
        let stored_cols = u16::from_le_bytes(cur.array()?) as usize;
        let bitmap = cur.take(stored_cols.div_ceil(8))?;
        for (col, field) in self.row_schema.fields().iter().enumerate() {
            let data_type = field.data_type();
            let is_null = col >= stored_cols || bitmap[col / 8] & (1 << (col % 8)) != 0;
            match self.slot[col] {
                None if is_null => {}
                None => cur.skip(data_type)?,
                Some(b) if is_null => self.builders[b].append_null(),
                Some(b) => Self::append(&mut self.builders[b], &mut cur)?,
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn append(builder: &mut ColumnBuilder, cur: &mut Cursor) -> Result<()> {
        match builder {
            ColumnBuilder::Boolean(b) => b.append_value(cur.take(1)?[0] != 0),
            ColumnBuilder::Int16(b) => b.append_value(i16::from_le_bytes(cur.array()?)),
            ColumnBuilder::Int32(b) => b.append_value(i32::from_le_bytes(cur.array()?)),
            ColumnBuilder::Int64(b) => b.append_value(i64::from_le_bytes(cur.array()?)),
            ColumnBuilder::Float32(b) => b.append_value(f32::from_le_bytes(cur.array()?)),
            ColumnBuilder::Float64(b) => b.append_value(f64::from_le_bytes(cur.array()?)),
            ColumnBuilder::Decimal128(b, _, _) => b.append_value(i128::from_le_bytes(cur.array()?)),
            ColumnBuilder::Decimal256(b, _, _) => b.append_value(i256::from_le_bytes(cur.array()?)),
            ColumnBuilder::Utf8(b) => {
                let bytes = cur.var()?;
                let s = std::str::from_utf8(bytes)
                    .map_err(|e| Error::Corrupt(format!("stored text is not UTF-8: {e}")))?;
                b.append_value(s)
            }
            ColumnBuilder::Binary(b) => b.append_value(cur.var()?),
            ColumnBuilder::LargeBinary(b) => b.append_value(cur.var()?),
            ColumnBuilder::FixedSizeBinary(b, width) => b.append_value(cur.take(*width)?)?,
            ColumnBuilder::Date32(b) => b.append_value(i32::from_le_bytes(cur.array()?)),
            ColumnBuilder::Time64(b) => b.append_value(i64::from_le_bytes(cur.array()?)),
            ColumnBuilder::Timestamp(b, _) => b.append_value(i64::from_le_bytes(cur.array()?)),
            ColumnBuilder::Interval(b) => {
                let months = i32::from_le_bytes(cur.array()?);
                let days = i32::from_le_bytes(cur.array()?);
                let nanos = i64::from_le_bytes(cur.array()?);
                b.append_value(IntervalMonthDayNano::new(months, days, nanos))
            }
            ColumnBuilder::List(b) => {
                let mut list = Cursor {
                    bytes: cur.var()?,
                    pos: 0,
                };
                let count = u32::from_le_bytes(list.array()?) as usize;
                let bitmap = list.take(count.div_ceil(8))?;
                for element in 0..count {
                    match bitmap[element / 8] & (1 << (element % 8)) != 0 {
                        true => b.elements.append_null(),
                        false => Self::append(&mut b.elements, &mut list)?,
                    }
                }
                b.shape.push(count);
            }
        }
        Ok(())
    }

    /// Returns the rows pushed since the last call as a batch.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            columns,
            &options,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BinaryArray, Decimal128Array, Int32Array, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("blob", DataType::Binary, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("")])),
                Arc::new(
                    Decimal128Array::from(vec![Some(12345), Some(-1), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\x01"[..]),
                    None,
                    Some(&b""[..]),
                ])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1), None, Some(-5)])
                        .with_timezone("+00:00"),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_round_trip_through_arrow() {
        let batch = sample();
        let rows = encode_rows(&batch).unwrap();
        let mut decoder = RowDecoder::new(batch.schema(), &[0, 1, 2, 3, 4]).unwrap();
        for row in &rows {
            decoder.push(row).unwrap();
        }
        assert_eq!(decoder.finish().unwrap(), batch);
    }

    #[test]
    fn arrays_round_trip_with_null_elements_and_are_skipped() {
        use datafusion::arrow::array::ListArray;
        use datafusion::arrow::datatypes::Int32Type;
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
            Some((0..20).map(Some).collect()),
        ]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", ints.data_type().clone(), true),
            Field::new("id", DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(ints), Arc::new(Int32Array::from(vec![1, 2, 3, 4]))],
        )
        .unwrap();
        let rows = encode_rows(&batch).unwrap();
        for projection in [vec![0, 1], vec![1]] {
            let mut decoder = RowDecoder::new(batch.schema(), &projection).unwrap();
            for row in &rows {
                decoder.push(row).unwrap();
            }
            assert_eq!(
                decoder.finish().unwrap(),
                batch.project(&projection).unwrap()
            );
        }
    }

    #[test]
    fn projection_skips_columns_and_reorders() {
        let batch = sample();
        let rows = encode_rows(&batch).unwrap();
        let mut decoder = RowDecoder::new(batch.schema(), &[3, 0]).unwrap();
        for row in &rows {
            decoder.push(row).unwrap();
        }
        assert_eq!(decoder.finish().unwrap(), batch.project(&[3, 0]).unwrap());
    }

    #[test]
    fn empty_projection_counts_rows() {
        let batch = sample();
        let mut decoder = RowDecoder::new(batch.schema(), &[]).unwrap();
        for row in encode_rows(&batch).unwrap() {
            decoder.push(&row).unwrap();
        }
        assert_eq!(decoder.finish().unwrap().num_rows(), 3);
    }

    #[test]
    fn truncated_row_is_corrupt_not_a_panic() {
        let rows = encode_rows(&sample()).unwrap();
        let mut decoder = RowDecoder::new(sample().schema(), &[0, 1]).unwrap();
        let err = decoder.push(&rows[0][..rows[0].len() - 3]).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)));
    }
}
