//! PostgreSQL's binary form of `numeric`, `uuid`, `time`, `interval` and
//! `jsonb`, written
//! here: arrow-pg encodes a numeric through rust_decimal, which holds 28
//! digits (a stored `numeric(30,10)` could not be read back) and drops the
//! display scale of a zero (`0.00` came back as `0`), does not know uuids
//! (FixedSizeBinary(16), whose binary form is its 16 bytes), and sends a
//! `time` of 24:00:00 as NULL, and writes a `jsonb` (Utf8) without its
//! version byte.
//!
//! Binary-format numeric, uuid and time columns become Binary arrays of the
//! encoded values before arrow-pg writes the row; it writes a Binary
//! value's bytes as they are, under the column's real type.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    i256, DataType, IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType, TimeUnit,
};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;

use super::text::replace_columns;
use crate::error::Result;
use crate::sql::interval::to_binary;
use crate::sql::json::JSONB_VERSION;
use crate::sql::numeric::numerics;
use crate::sql::output::{decimal_text, decimals};

/// The sign words of the binary numeric header.
const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
/// Decimal digits per base-10000 digit.
const DIGITS_PER_WORD: usize = 4;

/// Encodes the binary-format numeric, uuid, time and jsonb columns of
/// `batch`.
pub fn binary_values(batch: RecordBatch, fields: &[FieldInfo]) -> Result<RecordBatch> {
    let jsonb = |i: usize| fields.get(i).is_some_and(|f| *f.datatype() == Type::JSONB);
    replace_columns(
        batch,
        DataType::Binary,
        |i, field| {
            fields.get(i).map(|f| f.format()) == Some(FieldFormat::Binary)
                && (jsonb(i)
                    || matches!(
                        field.data_type(),
                        DataType::Decimal128(..)
                            | DataType::Decimal256(..)
                            | DataType::LargeBinary
                            | DataType::FixedSizeBinary(16)
                            | DataType::Time64(TimeUnit::Microsecond)
                            | DataType::Interval(IntervalUnit::MonthDayNano)
                    ))
        },
        |i, array| match array.data_type() {
            DataType::Interval(_) => {
                let encoded: BinaryArray = array
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .iter()
                    .map(|v| v.map(to_binary))
                    .collect();
                Ok(Arc::new(encoded) as ArrayRef)
            }
            DataType::Utf8 if jsonb(i) => {
                let encoded: BinaryArray = array
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(|text| [&[JSONB_VERSION], text.as_bytes()].concat()))
                    .collect();
                Ok(Arc::new(encoded) as ArrayRef)
            }
            DataType::FixedSizeBinary(_) => Ok(cast(array, &DataType::Binary)?),
            DataType::LargeBinary => {
                let encoded: BinaryArray = numerics(array.as_ref())
                    .map(|v| v.map(|v| v.map(|v| v.to_pg_binary())))
                    .collect::<Result<_>>()?;
                Ok(Arc::new(encoded) as ArrayRef)
            }
            // Microseconds since midnight, 24:00:00 included (which
            // arrow-pg's chrono time cannot hold).
            DataType::Time64(_) => {
                let micros = array.as_primitive::<Time64MicrosecondType>();
                let encoded: BinaryArray =
                    micros.iter().map(|v| v.map(|v| v.to_be_bytes())).collect();
                Ok(Arc::new(encoded) as ArrayRef)
            }
            _ => Ok(encode(array)),
        },
    )
}

/// A numeric column's values.
fn encode(array: &ArrayRef) -> ArrayRef {
    let (DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale)) = *array.data_type()
    else {
        return array.clone();
    };
    let encoded: BinaryArray = decimals(array)
        .map(|v| v.map(|v| numeric_send(v, scale)))
        .collect();
    Arc::new(encoded)
}

/// `numeric_send`: the number of base-10000 digits, the weight of the
/// first (its power of 10000), the sign, the display scale, then the
/// digits, leading and trailing zero digits left out.
pub fn numeric_send(value: i256, scale: i8) -> Vec<u8> {
    let text = decimal_text(value, scale);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int = int.trim_start_matches('0');
    // Whole base-10000 digits on both sides of the point.
    let int_pad = (DIGITS_PER_WORD - int.len() % DIGITS_PER_WORD) % DIGITS_PER_WORD;
    let frac_pad = (DIGITS_PER_WORD - frac.len() % DIGITS_PER_WORD) % DIGITS_PER_WORD;
    let digits: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut words: Vec<i16> = digits
        .as_bytes()
        .chunks(DIGITS_PER_WORD)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'))
        })
        .collect();
    let mut weight = ((int_pad + int.len()) / DIGITS_PER_WORD) as i16 - 1;
    let leading = words.iter().take_while(|w| **w == 0).count();
    words.drain(..leading);
    weight -= leading as i16;
    while words.last() == Some(&0) {
        words.pop();
    }
    if words.is_empty() {
        weight = 0;
    }
    let sign = if negative && !words.is_empty() {
        NEGATIVE
    } else {
        POSITIVE
    };
    let mut out = Vec::with_capacity(8 + 2 * words.len());
    out.extend_from_slice(&(words.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&i16::from(scale.max(0)).to_be_bytes());
    for word in words {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(bytes: &[u8]) -> Vec<i16> {
        bytes
            .chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_sent_as_postgresql_sends_them() {
        // ndigits, weight, sign, dscale, digits (PostgreSQL 15's numeric_send).
        let send = |v: i128, s: i8| words(&numeric_send(i256::from_i128(v), s));
        assert_eq!(send(1234567, 2), vec![3, 1, 0, 2, 1, 2345, 6700]);
        assert_eq!(send(5, 1), vec![1, -1, 0, 1, 5000]);
        assert_eq!(send(0, 2), vec![0, 0, 0, 2]);
        assert_eq!(send(-100000000, 0), vec![1, 2, 0x4000, 0, 1]);
        assert_eq!(send(1, 6), vec![1, -2, 0, 6, 100]);
        // 30 digits, more than rust_decimal holds.
        assert_eq!(
            send(-123456789012345678900123456789, 10),
            vec![8, 4, 0x4000, 10, 1234, 5678, 9012, 3456, 7890, 123, 4567, 8900]
        );
    }
}
