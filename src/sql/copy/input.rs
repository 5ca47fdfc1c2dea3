//! The type input functions COPY FROM reads values with: a field's text (or,
//! in binary COPY, its bytes as PostgreSQL's send functions write them)
//! into a column of the stored Arrow type, as PostgreSQL's input functions
//! read them, with their errors.
//!
//! A value is parsed straight into its column's builder: no text column is
//! kept and cast afterwards (Arrow's casts read `t`, `1e3` or `\x01`
//! differently from PostgreSQL).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
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

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;

/// One column being read: its type and the values read so far.
pub struct ColumnInput {
    sql_type: SqlType,
    builder: Builder,
    clock: Clock,
}

/// What the words `now`, `today`, `tomorrow` and `yesterday` are read at:
/// the transaction's start (microseconds since 1970, UTC; None where it is
/// not known, and the words are refused) in the session's time zone.
#[derive(Clone, Copy)]
struct Clock {
    now: Option<i64>,
    zone: Tz,
}

/// A word PostgreSQL reads as a date or time: `epoch`, or one relative to
/// the transaction's start (`Day`: the midnight that many days from its
/// day).
enum Word {
    Epoch,
    Now,
    Day(i64),
}

impl Word {
    fn read(text: &str) -> Option<Word> {
        let word = text.trim().to_ascii_lowercase();
        Some(match word.as_str() {
            "epoch" => Word::Epoch,
            "now" => Word::Now,
            "today" => Word::Day(0),
            "tomorrow" => Word::Day(1),
            "yesterday" => Word::Day(-1),
            _ => return None,
        })
    }
}

impl Clock {
    /// The wall-clock date and time the transaction began at, in the
    /// session's zone; `bad` if it is not known.
    fn local_now(&self, bad: impl Fn() -> Error) -> Result<NaiveDateTime> {
        let now = self.now.ok_or_else(&bad)?;
        let utc = chrono::DateTime::from_timestamp_micros(now).ok_or_else(bad)?;
        Ok(utc.with_timezone(&self.zone).naive_local())
    }

    /// The day a word stands for, in days since 1970.
    fn date(&self, word: Word, bad: impl Fn() -> Error) -> Result<i32> {
        let offset = match word {
            Word::Epoch => return Ok(0),
            Word::Now => 0,
            Word::Day(offset) => offset,
        };
        let day = self.local_now(bad)?.date() + chrono::Duration::days(offset);
        Ok((day - NaiveDate::default()).num_days() as i32)
    }

    /// The timestamp a word stands for, in microseconds since 1970 (UTC
    /// if `zoned`, a `timestamptz`).
    fn timestamp(&self, word: Word, zoned: bool, bad: impl Fn() -> Error) -> Result<i64> {
        Ok(match word {
            Word::Epoch => 0,
            Word::Now if zoned => self.now.ok_or_else(bad)?,
            Word::Now => micros(self.local_now(bad)?),
            Word::Day(offset) => {
                let day = self.local_now(bad)?.date() + chrono::Duration::days(offset);
                let midnight = day.and_time(NaiveTime::MIN);
                match zoned {
                    true => micros(crate::sql::time_zones::local_to_utc(&self.zone, &midnight)),
                    false => micros(midnight),
                }
            }
        })
    }
}

/// Microseconds since 1970 of a date and time (UTC, or a wall clock).
fn micros(at: NaiveDateTime) -> i64 {
    let utc = at.and_utc();
    let nanos = utc.timestamp_subsec_nanos() as i64;
    utc.timestamp() * 1_000_000 + (nanos + 500) / 1_000
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

/// A date as `date_in` reads it, as days since 1970-01-01: ISO
/// (`2024-02-29`, a time after it read and dropped), `2024/02/29`,
/// `20240229`, with the month's name (`Feb 29 2024`, `29 Feb 2024`,
/// `February 29, 2024`), a [`Word`]; `BC` after it counts years before 1
/// AD (it was dropped: `0044-03-15 BC` read as 44 AD).
fn date(text: &str, clock: Clock) -> Result<i32> {
    refuse_infinity(text)?;
    if let Some(word) = Word::read(text) {
        return clock.date(word, || {
            invalid(InputError::InvalidDatetimeFormat, "date", text)
        });
    }
    let trimmed = text.trim();
    let era = trimmed
        .len()
        .checked_sub(2)
        .and_then(|at| trimmed.get(at..));
    let (trimmed, bc) = match era.filter(|e| e.eq_ignore_ascii_case("bc")) {
        Some(_) => (trimmed[..trimmed.len() - 2].trim_end(), true),
        None => (trimmed, false),
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    const NAMED: [&str; 6] = [
        "%b %d %Y",
        "%b %d, %Y",
        "%B %d %Y",
        "%B %d, %Y",
        "%d %b %Y",
        "%d %B %Y",
    ];
    let named = NAMED
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(trimmed, f).ok());
    let day_text = trimmed.split([' ', 'T']).next().unwrap_or(trimmed);
    let numeric = || {
        let compact = day_text.len() == 8 && day_text.bytes().all(|b| b.is_ascii_digit());
        match compact {
            true => NaiveDate::parse_from_str(
                &format!("{}-{}-{}", &day_text[..4], &day_text[4..6], &day_text[6..]),
                "%Y-%m-%d",
            ),
            false => NaiveDate::parse_from_str(&day_text.replace('/', "-"), "%Y-%m-%d"),
        }
    };
    let day = named.map_or_else(numeric, Ok).map_err(|_| {
        // A date of the right shape that does not exist is out of range.
        let shaped = day_text.split('-').count() == 3
            && day_text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        match shaped {
            true => Error::input(
                InputError::DatetimeFieldOverflow,
                format!("date/time field value out of range: \"{text}\""),
            ),
            false => invalid(InputError::InvalidDatetimeFormat, "date", text),
        }
    })?;
    // ISO's year 0 is 1 BC.
    let day = match bc {
        true => day
            .with_year(1 - day.year())
            .ok_or_else(|| invalid(InputError::InvalidDatetimeFormat, "date", text))?,
        false => day,
    };
    Ok((day - epoch).num_days() as i32)
}

/// Microseconds in a day: `24:00:00`, the largest `time`.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A time of day as `time_in` reads it in ISO form: `HH:MM[:SS[.f]]`
/// (surrounding whitespace allowed), up to `24:00:00`; fractions beyond
/// microseconds are rounded. `allballs` is midnight and `now` the time
/// the transaction began.
fn time(text: &str, clock: Clock) -> Result<i64> {
    let trimmed = text.trim();
    let bad = || {
        invalid(
            InputError::InvalidDatetimeFormat,
            "time without time zone",
            text,
        )
    };
    if trimmed.eq_ignore_ascii_case("allballs") {
        return Ok(0);
    }
    if trimmed.eq_ignore_ascii_case("now") {
        let time = clock.local_now(bad)?.time();
        return Ok(micros(NaiveDate::default().and_time(time)));
    }
    let mut parts = trimmed.splitn(3, ':');
    let (Some(hours), Some(minutes)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let seconds = parts.next().unwrap_or("0");
    let number =
        |s: &str| match !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse::<i64>().map_err(|_| bad()),
            false => Err(bad()),
        };
    let (hours, minutes) = (number(hours)?, number(minutes)?);
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole = number(whole)?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Microseconds, rounded half up on the seventh digit.
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(7)
        .collect();
    let tenths_of_micros: i64 = digits.parse().map_err(|_| bad())?;
    let micros = (tenths_of_micros + 5) / 10;
    let total = ((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros;
    if minutes > 59 || whole > 60 || total > MICROS_PER_DAY {
        return Err(Error::input(
            InputError::DatetimeFieldOverflow,
            format!("date/time field value out of range: \"{text}\""),
        ));
    }
    Ok(total)
}

/// `infinity` and `-infinity`, which PostgreSQL has as dates and
/// timestamps and ShardForge cannot store: 0A000 rather than a date that
/// is not the one meant. (Their binary forms are the extreme integers.)
fn refuse_infinity(text: &str) -> Result<()> {
    let text = text.trim().trim_start_matches(['+', '-']);
    match text.eq_ignore_ascii_case("infinity") {
        true => Err(infinite()),
        false => Ok(()),
    }
}

fn infinite() -> Error {
    Error::unsupported("infinite dates and timestamps")
}

/// A timestamp in ISO form (`2024-02-29 13:45:00.5`, `T` between date and
/// time, the time optional), as microseconds since 1970 (UTC for a
/// `timestamptz`: an offset such as `+02`, `-05:30` or `Z` after the time
/// gives its zone, else `zone`). Fractions past microseconds are rounded.
fn timestamp(text: &str, clock: Clock, zoned: bool) -> Result<i64> {
    let kind = match zoned {
        true => "timestamp with time zone",
        false => "timestamp without time zone",
    };
    refuse_infinity(text)?;
    let bad = || invalid(InputError::InvalidDatetimeFormat, kind, text);
    if let Some(word) = Word::read(text) {
        return clock.timestamp(word, zoned, bad);
    }
    // A `timestamp` ignores an offset or zone written after the time, as
    // in PostgreSQL.
    let (text, named) = split_zone_name(text.trim()).ok_or_else(bad)?;
    let (local, offset) = split_offset(text).ok_or_else(bad)?;
    let local = local.replacen('T', " ", 1);
    let (day, time) = local.split_once(' ').unwrap_or((&local, "00:00:00"));
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    let time = ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(time.trim(), format).ok())
        .ok_or_else(bad)?;
    let at = NaiveDateTime::new(day, time);
    let local_to_utc = crate::sql::time_zones::local_to_utc;
    Ok(match (zoned, named, offset) {
        (false, _, _) => micros(at),
        (true, Some(named), _) => micros(local_to_utc(&named, &at)),
        (true, None, Some(seconds)) => micros(at) - seconds * 1_000_000,
        (true, None, None) => micros(local_to_utc(&clock.zone, &at)),
    })
}

/// Splits a zone's name written after a timestamp's time (`2024-01-15
/// 10:30:00 UTC`, `... Europe/Berlin`, `... PST`) off its text. None when
/// the last word is a name of no zone.
fn split_zone_name(text: &str) -> Option<(&str, Option<Tz>)> {
    match text.rsplit_once(' ') {
        Some((rest, word)) if word.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            let zone = crate::sql::time_zones::input_zone(word)?;
            Some((rest.trim_end(), Some(zone)))
        }
        _ => Some((text, None)),
    }
}

/// Splits a trailing UTC offset (`+02`, `+0530`, `-05:30`, `Z`) off a
/// timestamp's text: the rest and the offset in seconds east of UTC.
/// None when what follows the time is not an offset.
fn split_offset(text: &str) -> Option<(&str, Option<i64>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(0)));
    }
    // The sign of an offset comes after the time's colon, never in the date.
    let Some(time_at) = text.find(':') else {
        return Some((text, None));
    };
    let Some(sign_at) = text[time_at..].find(['+', '-']).map(|i| i + time_at) else {
        return Some((text, None));
    };
    let digits: String = text[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 1 | 2 | 4) {
        return None;
    }
    let (hours, minutes) = digits.split_at(digits.len().min(2));
    let seconds = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().unwrap_or(0) * 60;
    let sign = if text.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    Some((text[..sign_at].trim_end(), Some(sign * seconds)))
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

    /// A clock of 2024-03-10 06:30 UTC in `zone`.
    fn clock(zone: Tz) -> Clock {
        let now = NaiveDate::from_ymd_opt(2024, 3, 10)
            .and_then(|d| d.and_hms_opt(6, 30, 0))
            .unwrap();
        Clock {
            now: Some(micros(now)),
            zone,
        }
    }

    fn utc() -> Tz {
        "UTC".parse().unwrap()
    }

    #[test]
    fn words_are_read_at_the_transactions_start_in_the_sessions_zone() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        let at = |day: &str| {
            let (d, t) = day.split_once(' ').unwrap_or((day, "00:00"));
            micros(NaiveDateTime::new(
                NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
                NaiveTime::parse_from_str(t, "%H:%M").unwrap(),
            ))
        };
        let zoned = |text: &str| timestamp(text, clock(new_york), true).unwrap();
        let local = |text: &str| timestamp(text, clock(new_york), false).unwrap();
        // 06:30 UTC is 01:30 on the 10th in New York (EST, -05).
        assert_eq!(zoned("now"), at("2024-03-10 06:30"));
        assert_eq!(local(" NOW "), at("2024-03-10 01:30"));
        assert_eq!(zoned("today"), at("2024-03-10 05:00"));
        // The 11th begins in summer time (-04).
        assert_eq!(zoned("tomorrow"), at("2024-03-11 04:00"));
        assert_eq!(local("yesterday"), at("2024-03-09"));
        assert_eq!(zoned("epoch"), 0);
        assert_eq!(local("epoch"), 0);
        assert_eq!(date("today", clock(new_york)).unwrap(), 19792);
        assert_eq!(date("tomorrow", clock(utc())).unwrap(), 19793);
        assert_eq!(time("now", clock(new_york)).unwrap(), 5_400_000_000);
        assert_eq!(time("allballs", clock(utc())).unwrap(), 0);
        // Without the transaction's start the words are refused.
        let unknown = Clock {
            now: None,
            zone: utc(),
        };
        assert!(timestamp("now", unknown, true).is_err());
        assert!(date("today", unknown).is_err());
        assert_eq!(date("epoch", unknown).unwrap(), 0);
    }

    #[test]
    fn timestamps_with_offsets_and_zones() {
        let utc: Tz = "UTC".parse().unwrap();
        let t = |s: &str| timestamp(s, clock(utc), true).map_err(|e| e.to_string());
        assert_eq!(t("2000-01-01 00:00:00+00"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01T02:00:00+02"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 05:30:00+05:30"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("1999-12-31 19:00:00-0500"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 00:00:00.0000004Z"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01"), Ok(PG_EPOCH_MICROS));
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            timestamp("2000-01-01 01:00", clock(berlin), true).unwrap(),
            PG_EPOCH_MICROS
        );
        assert!(t("2000-13-01 00:00:00").is_err());
        assert_eq!(t("2000-01-01 00:00:00 UTC"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 01:00 Europe/Berlin"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("1999-12-31 16:00:00 pst"), Ok(PG_EPOCH_MICROS));
        assert!(t("2000-01-01 00:00:00 Nowhere").is_err());
        assert_eq!(
            timestamp("2000-01-01 00:00:00 PST", clock(berlin), false).unwrap(),
            PG_EPOCH_MICROS
        );
        assert_eq!(
            timestamp("2000-01-01 00:00:01.5", clock(berlin), false).unwrap(),
            PG_EPOCH_MICROS + 1_500_000
        );
    }

    #[test]
    fn times_as_time_in_reads_them() {
        assert_eq!(time("00:00", clock(utc())).unwrap(), 0);
        assert_eq!(time(" 08:30:01.5 ", clock(utc())).unwrap(), 30_601_500_000);
        assert_eq!(
            time("23:59:59.9999999", clock(utc())).unwrap(),
            MICROS_PER_DAY
        );
        assert_eq!(time("24:00:00", clock(utc())).unwrap(), MICROS_PER_DAY);
        for (bad, code) in [
            ("24:00:01", InputError::DatetimeFieldOverflow),
            ("12:60", InputError::DatetimeFieldOverflow),
            ("noon", InputError::InvalidDatetimeFormat),
            ("12", InputError::InvalidDatetimeFormat),
            ("12:3x", InputError::InvalidDatetimeFormat),
            ("123:00", InputError::InvalidDatetimeFormat),
        ] {
            assert!(
                matches!(time(bad, clock(utc())), Err(Error::Input(c, _)) if c == code),
                "{bad}"
            );
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
