//! The type input functions COPY FROM reads values with: a field's text (or,
//! in binary COPY, its bytes as PostgreSQL's send functions write them)
//! into a column of the stored Arrow type, as PostgreSQL's input functions
//! read them, with their errors.
//!
//! A value is parsed straight into its column's builder: no text column is
//! kept and cast afterwards (Arrow's casts read `t`, `1e3` or `\x01`
//! differently from PostgreSQL). Dates and times are read in
//! [`datetime`].

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, LargeBinaryBuilder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{i256, DataType, Field};
use std::sync::Arc;

use crate::catalog::SqlType;
use crate::encoding::row::ListShape;
use crate::error::{Error, InputError, Result};
use crate::numeric::Numeric;
use crate::sql::datetime::PG_EPOCH_MICROS;
use crate::sql::json::{jsonb_binary_text, stored_text, Flavor};
use datetime::{date, infinite, time, timestamp, Clock, MICROS_PER_DAY};

mod datetime;

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;

/// One column being read: its type and the values read so far.
pub struct ColumnInput {
    sql_type: SqlType,
    builder: Builder,
    clock: Clock,
}

enum Builder {
    SmallInt(Int16Builder),
    Integer(Int32Builder),
    BigInt(Int64Builder),
    Real(Float32Builder),
    Double(Float64Builder),
    Numeric128(Decimal128Builder, u8, i8),
    Numeric256(Decimal256Builder, u8, i8),
    /// An unconstrained numeric: each value's sortable bytes.
    Numeric(LargeBinaryBuilder),
    Boolean(BooleanBuilder),
    Text(StringBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    /// Whether it is a `timestamptz`.
    Timestamp(TimestampMicrosecondBuilder, bool),
    Bytea(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Json(StringBuilder, Flavor),
    Interval(IntervalMonthDayNanoBuilder),
    Array(Box<ArrayInput>),
}

fn malformed_array() -> Error {
    Error::input(
        InputError::InvalidBinaryRepresentation,
        "malformed binary array",
    )
}

/// The first `n` of `rest`'s bytes, taken off it.
fn binary_take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n).ok_or_else(malformed_array)?;
    *rest = tail;
    Ok(head)
}

/// A big-endian i32 taken off `rest`.
fn binary_int(rest: &mut &[u8]) -> Result<i32> {
    let head = binary_take(rest, 4)?;
    Ok(i32::from_be_bytes(
        head.try_into().map_err(|_| malformed_array())?,
    ))
}

/// The arrays of an array column: their elements read into one column.
struct ArrayInput {
    shape: ListShape,
    elements: ColumnInput,
}

impl ArrayInput {
    /// An array in PostgreSQL's text form (`{1,NULL,"a b"}`), one
    /// dimension, each element read by the element type's input.
    fn push_text(&mut self, text: &str) -> Result<()> {
        if text.trim_start().starts_with("{{") {
            return Err(Error::unsupported("arrays of more than one dimension"));
        }
        let elements = crate::sql::array_literal::elements(text).ok_or_else(|| {
            Error::input(
                InputError::InvalidText,
                format!("malformed array literal: \"{text}\""),
            )
        })?;
        for element in &elements {
            self.elements.push_text(element.as_deref())?;
        }
        self.shape.push(elements.len());
        Ok(())
    }

    /// An array as `array_send` writes it: dimensions, flags, the element
    /// type, each dimension's length and lower bound, then each element's
    /// length (-1: NULL) and bytes.
    fn push_binary(&mut self, bytes: &[u8]) -> Result<()> {
        let rest = &mut &bytes[..];
        let dimensions = binary_int(rest)?;
        let _flags = binary_int(rest)?;
        let _element_type = binary_int(rest)?;
        let count = match dimensions {
            0 => 0,
            1 => {
                let count = binary_int(rest)?;
                let _lower_bound = binary_int(rest)?;
                usize::try_from(count).map_err(|_| malformed_array())?
            }
            n if n > 1 => return Err(Error::unsupported("arrays of more than one dimension")),
            _ => return Err(malformed_array()),
        };
        for _ in 0..count {
            let value = match usize::try_from(binary_int(rest)?) {
                Err(_) => None,
                Ok(length) => Some(binary_take(rest, length)?),
            };
            self.elements.push_binary(value)?;
        }
        if !rest.is_empty() {
            return Err(malformed_array());
        }
        self.shape.push(count);
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        let elements = self.elements.finish();
        Arc::new(self.shape.finish(elements))
    }
}

impl ColumnInput {
    /// A column of `sql_type`; `zone` is the session time zone, in which a
    /// `timestamptz` written without an offset is read.
    pub fn new(sql_type: &SqlType, zone: Tz) -> Result<Self> {
        let builder = match sql_type {
            SqlType::SmallInt => Builder::SmallInt(Int16Builder::new()),
            SqlType::Integer => Builder::Integer(Int32Builder::new()),
            SqlType::BigInt => Builder::BigInt(Int64Builder::new()),
            SqlType::Real => Builder::Real(Float32Builder::new()),
            SqlType::Double => Builder::Double(Float64Builder::new()),
            SqlType::UnconstrainedNumeric => Builder::Numeric(LargeBinaryBuilder::new()),
            SqlType::Numeric { .. } => match sql_type.to_arrow() {
                DataType::Decimal128(p, s) => {
                    let b = Decimal128Builder::new().with_precision_and_scale(p, s)?;
                    Builder::Numeric128(b, p, s)
                }
                DataType::Decimal256(p, s) => {
                    let b = Decimal256Builder::new().with_precision_and_scale(p, s)?;
                    Builder::Numeric256(b, p, s)
                }
                other => return Err(Error::Internal(format!("numeric stored as {other}"))),
            },
            SqlType::Boolean => Builder::Boolean(BooleanBuilder::new()),
            SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_) => {
                Builder::Text(StringBuilder::new())
            }
            SqlType::Date => Builder::Date(Date32Builder::new()),
            SqlType::Time(_) => Builder::Time(Time64MicrosecondBuilder::new()),
            SqlType::Timestamp(_) => Builder::Timestamp(TimestampMicrosecondBuilder::new(), false),
            SqlType::TimestampTz(_) => {
                let b = TimestampMicrosecondBuilder::new().with_data_type(sql_type.to_arrow());
                Builder::Timestamp(b, true)
            }
            SqlType::Bytea => Builder::Bytea(BinaryBuilder::new()),
            SqlType::Uuid => Builder::Uuid(FixedSizeBinaryBuilder::new(16)),
            SqlType::Json => Builder::Json(StringBuilder::new(), Flavor::Json),
            SqlType::Jsonb => Builder::Json(StringBuilder::new(), Flavor::Jsonb),
            SqlType::Interval => Builder::Interval(IntervalMonthDayNanoBuilder::new()),
            SqlType::Array(element) => Builder::Array(Box::new(ArrayInput {
                shape: ListShape::new(Arc::new(Field::new_list_field(element.to_arrow(), true))),
                elements: ColumnInput::new(element, zone)?,
            })),
        };
        Ok(Self {
            sql_type: sql_type.clone(),
            builder,
            clock: Clock { now: None, zone },
        })
    }

    /// Reads `now`, `today`, `tomorrow` and `yesterday` as of `now`, the
    /// transaction's start in microseconds since 1970 (UTC), as
    /// PostgreSQL reads them (without it they are refused).
    pub fn at(mut self, now: i64) -> Self {
        self.clock.now = Some(now);
        if let Builder::Array(array) = &mut self.builder {
            array.elements.clock.now = Some(now);
        }
        self
    }

    /// Reads one value written as text (None: NULL).
    pub fn push_text(&mut self, text: Option<&str>) -> Result<()> {
        let Some(text) = text else {
            self.push_null();
            return Ok(());
        };
        let name = self.sql_type.pg_name();
        let clock = self.clock;
        match &mut self.builder {
            Builder::SmallInt(b) => b.append_value(integer(text, &name)?),
            Builder::Integer(b) => b.append_value(integer(text, &name)?),
            Builder::BigInt(b) => b.append_value(integer(text, &name)?),
            Builder::Real(b) => b.append_value(float_input(text, &DataType::Float32)? as f32),
            Builder::Double(b) => b.append_value(float_input(text, &DataType::Float64)?),
            Builder::Numeric128(b, p, s) => b.append_value(numeric(text, *p, *s)?.as_i128()),
            Builder::Numeric256(b, p, s) => b.append_value(numeric(text, *p, *s)?),
            Builder::Numeric(b) => b.append_value(Numeric::parse(text)?.to_sortable()),
            Builder::Boolean(b) => b.append_value(boolean(text)?),
            Builder::Text(b) => b.append_value(text),
            Builder::Date(b) => b.append_value(date(text, clock)?),
            Builder::Time(b) => b.append_value(time(text, clock)?),
            Builder::Timestamp(b, zoned) => b.append_value(timestamp(text, clock, *zoned)?),
            Builder::Bytea(b) => b.append_value(crate::sql::functions::bytea_input(text)?),
            Builder::Uuid(b) => b.append_value(crate::sql::uuid::parse(text)?)?,
            Builder::Json(b, flavor) => b.append_value(stored_text(text, *flavor)?),
            Builder::Interval(b) => b.append_value(crate::sql::interval::parse(text)?),
            Builder::Array(b) => b.push_text(text)?,
        }
        Ok(())
    }

    /// Reads one value in PostgreSQL's binary format (None: NULL).
    pub fn push_binary(&mut self, bytes: Option<&[u8]>) -> Result<()> {
        let Some(bytes) = bytes else {
            self.push_null();
            return Ok(());
        };
        let name = self.sql_type.pg_name();
        match &mut self.builder {
            Builder::SmallInt(b) => b.append_value(i16::from_be_bytes(fixed(bytes, &name)?)),
            Builder::Integer(b) => b.append_value(i32::from_be_bytes(fixed(bytes, &name)?)),
            Builder::BigInt(b) => b.append_value(i64::from_be_bytes(fixed(bytes, &name)?)),
            Builder::Real(b) => b.append_value(f32::from_be_bytes(fixed(bytes, &name)?)),
            Builder::Double(b) => b.append_value(f64::from_be_bytes(fixed(bytes, &name)?)),
            Builder::Numeric128(b, p, s) => {
                b.append_value(numeric(&numeric_text(bytes)?, *p, *s)?.as_i128())
            }
            Builder::Numeric256(b, p, s) => b.append_value(numeric(&numeric_text(bytes)?, *p, *s)?),
            Builder::Numeric(b) => b.append_value(Numeric::from_pg_binary(bytes)?.to_sortable()),
            Builder::Boolean(b) => b.append_value(u8::from_be_bytes(fixed(bytes, &name)?) != 0),
            Builder::Text(b) => b.append_value(utf8(bytes)?),
            Builder::Date(b) => {
                let days = i32::from_be_bytes(fixed(bytes, &name)?);
                if days == i32::MIN || days == i32::MAX {
                    return Err(infinite());
                }
                b.append_value(
                    days.checked_add(PG_EPOCH_DAYS)
                        .ok_or_else(|| Error::input(InputError::OutOfRange, "date out of range"))?,
                )
            }
            Builder::Time(b) => {
                let micros = i64::from_be_bytes(fixed(bytes, &name)?);
                if !(0..=MICROS_PER_DAY).contains(&micros) {
                    return Err(Error::input(InputError::OutOfRange, "time out of range"));
                }
                b.append_value(micros)
            }
            Builder::Timestamp(b, _) => {
                let micros = i64::from_be_bytes(fixed(bytes, &name)?);
                if micros == i64::MIN || micros == i64::MAX {
                    return Err(infinite());
                }
                b.append_value(micros.checked_add(PG_EPOCH_MICROS).ok_or_else(|| {
                    Error::input(InputError::OutOfRange, "timestamp out of range")
                })?)
            }
            Builder::Bytea(b) => b.append_value(bytes),
            Builder::Uuid(b) => b.append_value(fixed::<16>(bytes, &name)?)?,
            Builder::Json(b, flavor) => {
                let text = match flavor {
                    Flavor::Json => bytes,
                    Flavor::Jsonb => jsonb_binary_text(bytes)?,
                };
                b.append_value(stored_text(utf8(text)?, *flavor)?)
            }
            Builder::Interval(b) => {
                b.append_value(crate::sql::interval::from_binary(fixed(bytes, &name)?)?)
            }
            Builder::Array(b) => b.push_binary(bytes)?,
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match &mut self.builder {
            Builder::SmallInt(b) => b.append_null(),
            Builder::Integer(b) => b.append_null(),
            Builder::BigInt(b) => b.append_null(),
            Builder::Real(b) => b.append_null(),
            Builder::Double(b) => b.append_null(),
            Builder::Numeric128(b, ..) => b.append_null(),
            Builder::Numeric256(b, ..) => b.append_null(),
            Builder::Numeric(b) => b.append_null(),
            Builder::Boolean(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Timestamp(b, _) => b.append_null(),
            Builder::Bytea(b) => b.append_null(),
            Builder::Uuid(b) => b.append_null(),
            Builder::Json(b, _) => b.append_null(),
            Builder::Interval(b) => b.append_null(),
            Builder::Array(b) => b.shape.push_null(),
        }
    }

    /// The values read since the last call.
    pub fn finish(&mut self) -> ArrayRef {
        let builder: &mut dyn ArrayBuilder = match &mut self.builder {
            Builder::SmallInt(b) => b,
            Builder::Integer(b) => b,
            Builder::BigInt(b) => b,
            Builder::Real(b) => b,
            Builder::Double(b) => b,
            Builder::Numeric128(b, ..) => b,
            Builder::Numeric256(b, ..) => b,
            Builder::Numeric(b) => b,
            Builder::Boolean(b) => b,
            Builder::Text(b) => b,
            Builder::Date(b) => b,
            Builder::Time(b) => b,
            Builder::Timestamp(b, _) => b,
            Builder::Bytea(b) => b,
            Builder::Uuid(b) => b,
            Builder::Json(b, _) => b,
            Builder::Interval(b) => b,
            Builder::Array(b) => return b.finish(),
        };
        builder.finish()
    }
}

fn invalid(kind: InputError, type_name: &str, text: &str) -> Error {
    Error::input(
        kind,
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )
}

fn out_of_range(text: &str, type_name: &str) -> Error {
    Error::input(
        InputError::OutOfRange,
        format!("value \"{text}\" is out of range for type {type_name}"),
    )
}

/// An integer as `int2in` / `int4in` / `int8in` read it: surrounding
/// whitespace allowed, an optional sign, decimal digits.
fn integer<T: TryFrom<i64>>(text: &str, type_name: &str) -> Result<T> {
    let trimmed = text.trim();
    let digits = trimmed.trim_start_matches(['+', '-']);
    if digits.is_empty()
        || trimmed.len() - digits.len() > 1
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(InputError::InvalidText, type_name, text));
    }
    trimmed
        .parse::<i64>()
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| out_of_range(text, type_name))
}

/// A float as `float8in` / `float4in` read it (`data_type` Float64 or
/// Float32): `inf`, `Infinity`, `NaN` in any case, surrounding whitespace;
/// a number past the type's range, or that the type would make zero, is
/// 22003 (Rust's and Arrow's readers make it an infinity or zero).
pub fn float_input(text: &str, data_type: &DataType) -> Result<f64> {
    let type_name = match data_type {
        DataType::Float32 => "real",
        _ => "double precision",
    };
    let trimmed = text.trim();
    let value: f64 = trimmed
        .parse()
        .map_err(|_| invalid(InputError::InvalidText, type_name, text))?;
    let written = trimmed.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let held = match data_type {
        DataType::Float32 => f64::from(value as f32),
        _ => value,
    };
    let mantissa = written.split('e').next().unwrap_or_default();
    let infinite = held.is_infinite() && !written.starts_with("inf");
    let vanished = held == 0.0 && mantissa.contains(|c: char| ('1'..='9').contains(&c));
    if infinite || vanished {
        return Err(Error::input(
            InputError::OutOfRange,
            format!("\"{text}\" is out of range for type {type_name}"),
        ));
    }
    Ok(value)
}

/// A numeric as `numeric_in` reads it, as `numeric(precision, scale)`
/// holds it (rounded half away from zero to `scale` digits, 22003 past
/// the precision or for an infinity): the unscaled integer. NaN, which
/// PostgreSQL lets into a `numeric(p, s)`, is 0A000: a fixed-scale decimal
/// cannot hold it.
pub fn numeric(text: &str, precision: u8, scale: i8) -> Result<i256> {
    let unscaled = crate::sql::numeric::fitted(&Numeric::parse(text)?, precision, scale)?;
    Ok(crate::sql::numeric::to_i256(&unscaled))
}

/// The decimal text of a numeric in PostgreSQL's binary format: counts of
/// base-10000 digits, the weight of the first, a sign, the display scale,
/// then the digits.
pub fn numeric_text(bytes: &[u8]) -> Result<String> {
    let bad = || {
        Error::input(
            InputError::InvalidBinaryRepresentation,
            "invalid binary data for type numeric",
        )
    };
    let word = |i: usize| -> Result<i16> {
        let at = bytes.get(i * 2..i * 2 + 2).ok_or_else(bad)?;
        Ok(i16::from_be_bytes([at[0], at[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if ndigits < 0 || bytes.len() != 8 + 2 * ndigits as usize {
        return Err(bad());
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        _ => {
            return Err(Error::unsupported(
                "numeric NaN and infinity are not stored in numeric columns",
            ))
        }
    };
    let mut text = String::from(if negative { "-" } else { "" });
    let mut exponent = 4 * (weight as i64 + 1 - ndigits as i64);
    for i in 0..ndigits as usize {
        let digit = word(4 + i)?;
        if !(0..10_000).contains(&digit) {
            return Err(bad());
        }
        text.push_str(&format!("{digit:04}"));
    }
    if ndigits == 0 {
        text.push('0');
        exponent = 0;
    }
    Ok(format!("{text}e{exponent}"))
}

/// A boolean as `boolin` reads it: `t`, `true`, `yes`, `on`, `1` and their
/// opposites, any case, or an unambiguous prefix of the words.
fn boolean(text: &str) -> Result<bool> {
    let word = text.trim().to_ascii_lowercase();
    let prefix_of = |full: &str| !word.is_empty() && full.starts_with(&word);
    if prefix_of("true") || prefix_of("yes") || word == "on" || word == "1" {
        Ok(true)
    } else if prefix_of("false")
        || prefix_of("no")
        || (word.len() >= 2 && prefix_of("off"))
        || word == "0"
    {
        Ok(false)
    } else {
        Err(invalid(InputError::InvalidText, "boolean", text))
    }
}

/// The bytes of a binary value of a fixed-width type.
fn fixed<const N: usize>(bytes: &[u8], type_name: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| {
        Error::input(
            InputError::InvalidBinaryRepresentation,
            format!(
                "incorrect binary data format: {} bytes for type {type_name}, which takes {N}",
                bytes.len()
            ),
        )
    })
}

/// Text in the only server encoding, UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let bad: Vec<String> = bytes[at..]
            .iter()
            .take(e.error_len().unwrap_or(1))
            .map(|b| format!("0x{b:02x}"))
            .collect();
        Error::input(
            InputError::InvalidEncoding,
            format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                bad.join(" ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str, p: u8, s: i8) -> String {
        match numeric(text, p, s) {
            Ok(v) => v.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn arrays_are_read_from_text_and_binary_in_one_dimension() {
        use datafusion::arrow::array::{Array, AsArray};
        let utc: Tz = "+00:00".parse().unwrap();
        let mut input = ColumnInput::new(&SqlType::Array(Box::new(SqlType::Integer)), utc).unwrap();
        input.push_text(Some("{1, NULL ,3}")).unwrap();
        input.push_text(None).unwrap();
        input.push_text(Some("{}")).unwrap();
        // array_send of {7,NULL}: one dimension, has nulls, int4, length
        // 2 from 1, then each element's length (-1: NULL) and bytes.
        let binary = [1i32, 1, 23, 2, 1, 4, 7, -1].map(i32::to_be_bytes).concat();
        input.push_binary(Some(&binary)).unwrap();
        let arrays = input.finish();
        let lists = arrays.as_list::<i32>();
        let ints = |i: usize| -> Vec<Option<i32>> {
            lists
                .value(i)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .iter()
                .collect()
        };
        assert_eq!(ints(0), vec![Some(1), None, Some(3)]);
        assert!(lists.is_null(1));
        assert_eq!(ints(2), vec![]);
        assert_eq!(ints(3), vec![Some(7), None]);
        let mut error = |text: &str| input.push_text(Some(text)).unwrap_err().to_string();
        assert!(error("{{1,2},{3,4}}").contains("more than one dimension"));
        assert!(error("1,2").contains("malformed array literal"));
        assert!(error("{1,x}").contains("invalid input syntax for type integer"));
        let two_dimensions = [2i32, 0, 23, 1, 1, 1, 1].map(i32::to_be_bytes).concat();
        assert!(input.push_binary(Some(&two_dimensions)).is_err());
        assert!(input
            .push_binary(Some(&binary[..binary.len() - 1]))
            .is_err());
    }

    #[test]
    fn numerics_round_half_away_from_zero_and_read_exponents() {
        assert_eq!(num("2.675", 10, 2), "268");
        assert_eq!(num("-2.675", 10, 2), "-268");
        assert_eq!(num("1e3", 10, 2), "100000");
        assert_eq!(num(" 0.004 ", 10, 2), "0");
        assert_eq!(num("0.005", 10, 2), "1");
        assert_eq!(num(".5", 10, 0), "1");
        assert_eq!(num("5.", 10, 0), "5");
        assert_eq!(num("1.5E-1", 10, 2), "15");
        assert_eq!(num("00012", 3, 0), "12");
        assert!(num("999.995", 5, 2).starts_with("error: numeric field overflow"));
        assert!(num("1e40", 38, 0).starts_with("error: numeric field overflow"));
        assert!(num("1e-400", 10, 2) == "0");
        for bad in ["", "-", "1.2.3", "abc", "1e", "e5", "--1"] {
            assert!(num(bad, 10, 2).contains("invalid input syntax"), "{bad}");
        }
    }

    #[test]
    fn binary_numerics_become_their_text() {
        // 12345.678: digits 1, 2345, 6780; weight 1; dscale 3.
        let mut bytes = Vec::new();
        for word in [3i16, 1, 0, 3, 1, 2345, 6780] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let text = numeric_text(&bytes).unwrap();
        assert_eq!(numeric(&text, 10, 3).unwrap().to_string(), "12345678");
    }

    #[test]
    fn booleans_read_as_boolin_reads_them() {
        for yes in ["t", "TRUE", " yes ", "on", "1", "tr", "y"] {
            assert!(boolean(yes).unwrap(), "{yes}");
        }
        for no in ["f", "false", "no", "off", "0", "of", "n"] {
            assert!(!boolean(no).unwrap(), "{no}");
        }
        for bad in ["o", "", "2", "truth"] {
            assert!(boolean(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_and_floats() {
        assert_eq!(integer::<i32>(" -12 ", "integer").unwrap(), -12);
        assert!(integer::<i16>("40000", "smallint")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(integer::<i32>("1.5", "integer").is_err());
        assert!(integer::<i32>("+-1", "integer").is_err());
        let (double, real) = (DataType::Float64, DataType::Float32);
        assert_eq!(
            float_input(" -Infinity", &double).unwrap(),
            f64::NEG_INFINITY
        );
        assert!(float_input("NaN", &real).unwrap().is_nan());
        assert_eq!(float_input("-0", &real).unwrap(), 0.0);
        for (text, data_type) in [
            ("1e400", &double),
            ("1e-400", &double),
            ("1e39", &real),
            ("1e-50", &real),
        ] {
            let error = float_input(text, data_type).unwrap_err().to_string();
            assert!(error.contains("is out of range"), "{text}: {error}");
        }
        assert!(float_input("1e38", &real).is_ok());
    }
}
