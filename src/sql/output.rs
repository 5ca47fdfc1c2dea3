//! Values as PostgreSQL prints them, where Arrow's text differs: dates
//! (`0044-03-15 BC`), timestamps and times of day (PostgreSQL drops a zero fraction and
//! trailing zeros: `2024-01-02 03:04:05+00`, `10:11:12.5`), intervals
//! (`1 mon 21:29:44.5`), floating point (shortest round-trip digits,
//! exponent form outside 1e-4 .. 1e15, `Infinity`), numerics (all their
//! scale's digits, beyond rust_decimal's 28), uuids. The pg front end sends
//! results in this text (`pg::text`); JSON built from values uses it too
//! (`sql::json`). `timestamptz` values print in the session time zone, with
//! its offset (`+00`, `+09`, `+05:30`).

use std::sync::Arc;

use chrono::{Datelike, Offset};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    i256, DataType, Date32Type, Decimal128Type, Decimal256Type, Field, Float32Type, Float64Type,
    Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType,
    TimeUnit, TimestampMicrosecondType,
};

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result as DFResult};
use datafusion::logical_expr::{
    lit, BinaryExpr, Case, Cast, ColumnarValue, Expr, ExprSchemable, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, TryCast, Volatility,
};

mod floats;

use super::analyze::{as_string_type, is_text, like_arguments};
use super::vars::session_zone;
use crate::catalog::types::sql_type_name;
use crate::catalog::PG_TYPE_METADATA;
use crate::error::Result;
use crate::sql::numeric::numerics;
use floats::{float4, float8};
use pgwire::api::Type;

/// A date, timestamp, time, interval or float made text, as PostgreSQL prints
/// the value: by a cast (`ts::text` is `2024-01-02 03:04:05`, Arrow's cast
/// `2024-01-02T03:04:05`; `interval '1 day'::text` is `1 day`, not `1
/// days`), by `||` beside text (`'at ' || ts`) or by `concat`: an
/// expression rewrite before type coercion (`analyze::ExpressionRewrites`).
pub fn text_casts(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let rendered = |e: &Expr| {
        e.get_type(schema).is_ok_and(|t| {
            matches!(
                t,
                DataType::Timestamp(..)
                    | DataType::Date32
                    | DataType::Time32(_)
                    | DataType::Time64(_)
                    | DataType::Interval(_)
                    | DataType::Float32
                    | DataType::Float64
                    | DataType::List(_)
                    | DataType::Struct(_)
                    | DataType::Binary
                    | DataType::FixedSizeBinary(_)
            )
        })
    };
    // A boolean is `t` or `f` where PostgreSQL takes a value's output
    // (`concat`, `format`), `true` or `false` where it casts (`::text`,
    // `||`).
    let boolean = |e: &Expr| e.get_type(schema).is_ok_and(|t| t == DataType::Boolean);
    let named = |e: &Expr| {
        e.to_field(schema).ok().and_then(|(_, f)| {
            match (is_vector(&f), f.metadata().get(PG_TYPE_METADATA)) {
                (true, _) => Some(vector_text()),
                (false, Some(t)) if t == "regtype" => Some(regtype_text()),
                _ => None,
            }
        })
    };
    let as_text = |e: Expr| match (named(&e), rendered(&e)) {
        (Some(udf), _) => udf.call(vec![e]),
        (None, true) => pg_text().call(vec![e]),
        (None, false) => e,
    };
    let textual = |e: &Expr| e.get_type(schema).is_ok_and(|t| is_text(&t));
    match expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if is_text(field.data_type()) && (rendered(&expr) || named(&expr).is_some()) =>
        {
            Transformed::yes(as_string_type(as_text(*expr), field))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) if ((rendered(&left) || named(&left).is_some()) && textual(&right))
            || (textual(&left) && (rendered(&right) || named(&right).is_some())) =>
        {
            Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(as_text(*left)),
                Operator::StringConcat,
                Box::new(as_text(*right)),
            )))
        }
        Expr::ScalarFunction(mut call)
            if matches!(call.name(), "concat" | "concat_ws" | "format")
                && call
                    .args
                    .iter()
                    .any(|a| rendered(a) || named(a).is_some() || boolean(a)) =>
        {
            call.args = call
                .args
                .into_iter()
                .map(|a| match boolean(&a) {
                    true => Expr::Case(Case::new(
                        Some(Box::new(a)),
                        vec![
                            (Box::new(lit(true)), Box::new(lit("t"))),
                            (Box::new(lit(false)), Box::new(lit("f"))),
                        ],
                        None,
                    )),
                    false => as_text(a),
                })
                .collect();
            Transformed::yes(Expr::ScalarFunction(call))
        }
        other => Transformed::no(other),
    }
}

/// `regtype_text(x)`: [`type_names`].
fn regtype_text() -> ScalarUDF {
    let udf = super::analyze::array_udf(
        "regtype_text",
        vec![DataType::Int32],
        DataType::Utf8,
        |arrays| Ok(type_names(&arrays[0])?),
    );
    udf.as_ref().clone()
}

/// `vector_text(x)`: [`vector_texts`].
fn vector_text() -> ScalarUDF {
    let udf = super::analyze::array_udf(
        "vector_text",
        vec![DataType::new_list(DataType::Int32, true)],
        DataType::Utf8,
        |arrays| Ok(vector_texts(&arrays[0])?),
    );
    udf.as_ref().clone()
}

fn pg_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgText {
        signature: Signature::any(1, Volatility::Stable),
    })
}

/// `pg_text(x)`: [`render`] in the session's time zone.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgText {
    signature: Signature,
}

impl ScalarUDFImpl for PgText {
    fn name(&self) -> &str {
        "pg_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let zone = session_zone(&args.config_options);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = render(&arrays[0], &zone)?;
        like_arguments(&args.args, cast(&text, &DataType::Utf8)?)
    }
}

/// `array`'s values as PostgreSQL prints them, for the types whose text
/// Arrow's differs from (see the module's documentation); others as they
/// are.
pub fn render(array: &ArrayRef, zone: &Tz) -> Result<ArrayRef> {
    let strings: StringArray = match array.data_type() {
        DataType::Timestamp(_, tz) => {
            let micros = cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            )?;
            let zone = tz.is_some().then_some(zone);
            micros
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.map(|v| timestamp(v, zone)))
                .collect()
        }
        DataType::Date32 => array
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(date))
            .collect(),
        DataType::Time32(_) | DataType::Time64(_) => {
            let micros = cast(array, &DataType::Time64(TimeUnit::Microsecond))?;
            micros
                .as_primitive::<Time64MicrosecondType>()
                .iter()
                .map(|v| v.map(time))
                .collect()
        }
        DataType::Interval(_) => {
            let intervals = cast(array, &DataType::Interval(IntervalUnit::MonthDayNano))?;
            intervals
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| v.map(|v| interval(v.months, v.days, v.nanoseconds / 1_000)))
                .collect()
        }
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(float4))
            .collect(),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(float8))
            .collect(),
        DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) => decimals(array)
            .map(|v| v.map(|v| decimal_text(v, *scale)))
            .collect(),
        DataType::LargeBinary => numerics(array.as_ref())
            .map(|v| v.map(|v| v.map(|v| v.to_string())))
            .collect::<Result<_>>()?,
        DataType::FixedSizeBinary(_) => return Ok(super::uuid::texts(array)),
        DataType::Binary => bytea_texts(array),
        DataType::List(_) => return array_texts(array, zone),
        DataType::Struct(_) => return record_texts(array, zone),
        _ => return Ok(array.clone()),
    };
    Ok(Arc::new(strings))
}

/// bytea values in PostgreSQL's hex form (`\\x01ff`).
fn bytea_texts(array: &ArrayRef) -> StringArray {
    array
        .as_binary::<i32>()
        .iter()
        .map(|b| {
            b.map(|b| {
                let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
                format!("\\x{hex}")
            })
        })
        .collect()
}

/// Arrays as PostgreSQL's `array_out` prints them: `{1,2}`, `{"a b",NULL}`,
/// elements as their type prints them (booleans `t`/`f`), quoted when
/// empty, `NULL`, or holding braces, commas, quotes, backslashes or white
/// space, with quotes and backslashes escaped; bytea in hex.
fn array_texts(array: &ArrayRef, zone: &Tz) -> Result<ArrayRef> {
    let lists = array.as_list::<i32>();
    let nested = matches!(lists.values().data_type(), DataType::List(_));
    let elements = item_texts(lists.values(), zone)?;
    let elements = elements.as_string::<i32>();
    let texts: StringArray = (0..lists.len())
        .map(|row| {
            if lists.is_null(row) {
                return None;
            }
            let offsets = lists.value_offsets();
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            let items: Vec<String> = (start..end)
                .map(|i| match elements.is_null(i) {
                    true => "NULL".to_string(),
                    false if nested => elements.value(i).to_string(),
                    false => array_element(elements.value(i)),
                })
                .collect();
            Some(format!("{{{}}}", items.join(",")))
        })
        .collect();
    Ok(Arc::new(texts))
}

/// Records as PostgreSQL's `record_out` prints them: `(10,1)`, a NULL
/// field empty, a field quoted when empty or holding parentheses, commas,
/// quotes, backslashes or white space, with quotes and backslashes
/// doubled.
fn record_texts(array: &ArrayRef, zone: &Tz) -> Result<ArrayRef> {
    let records = array.as_struct();
    let fields = records
        .columns()
        .iter()
        .map(|column| item_texts(column, zone))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let texts: StringArray = (0..records.len())
        .map(|row| {
            if records.is_null(row) {
                return None;
            }
            let items: Vec<String> = fields
                .iter()
                .map(|field| {
                    let field = field.as_string::<i32>();
                    if field.is_null(row) {
                        return String::new();
                    }
                    let text = field.value(row);
                    let quoted = text.is_empty()
                        || text.chars().any(|c| {
                            matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_ascii_whitespace()
                        });
                    match quoted {
                        true => format!("\"{}\"", text.replace('"', "\"\"").replace('\\', "\\\\")),
                        false => text.to_string(),
                    }
                })
                .collect();
            Some(format!("({})", items.join(",")))
        })
        .collect();
    Ok(Arc::new(texts))
}

/// The values of an array's elements or a record's field (which `field`
/// describes) as text, as their type prints them: booleans `t`/`f` (a
/// cast says `true`), bytea in hex.
fn item_texts(values: &ArrayRef, zone: &Tz) -> Result<ArrayRef> {
    if *values.data_type() == DataType::Boolean {
        let texts: StringArray = values
            .as_boolean()
            .iter()
            .map(|b| b.map(|b| if b { "t" } else { "f" }))
            .collect();
        return Ok(Arc::new(texts));
    }
    Ok(cast(&render(values, zone)?, &DataType::Utf8)?)
}

/// One element of an array's text (see [`array_texts`]).
fn array_element(text: &str) -> String {
    let quoted = text.is_empty()
        || text.eq_ignore_ascii_case("NULL")
        || text.chars().any(|c| {
            matches!(
                c,
                '{' | '}' | ',' | '"' | '\\' | ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'
            )
        });
    match quoted {
        true => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
        false => text.to_string(),
    }
}

/// An `int2vector` or `oidvector` (a list the field marks so, such as
/// `pg_index.indkey`) as PostgreSQL prints it: its numbers separated by
/// spaces (`1 2`), not an array's `{1,2}`.
pub fn vector_texts(array: &ArrayRef) -> Result<ArrayRef> {
    let texts: StringArray = array
        .as_list::<i32>()
        .iter()
        .map(|list| {
            let numbers = cast(&list?, &DataType::Utf8).ok()?;
            let numbers: Vec<&str> = numbers.as_string::<i32>().iter().flatten().collect();
            Some(numbers.join(" "))
        })
        .collect();
    Ok(Arc::new(texts))
}

/// A `regtype` column's text: each oid's type as PostgreSQL prints it
/// (`integer`), or the number of one it does not know.
pub fn type_names(array: &ArrayRef) -> Result<ArrayRef> {
    let oids = cast(array, &DataType::Int64)?;
    let names: StringArray = oids
        .as_primitive::<Int64Type>()
        .iter()
        .map(|oid| {
            oid.map(
                |oid| match u32::try_from(oid).ok().and_then(Type::from_oid) {
                    Some(known) => sql_type_name(known.name()),
                    None => oid.to_string(),
                },
            )
        })
        .collect();
    Ok(Arc::new(names))
}

/// Whether `field` holds `int2vector`s or `oidvector`s (see
/// [`vector_texts`]).
pub fn is_vector(field: &Field) -> bool {
    matches!(field.data_type(), DataType::List(_))
        && field
            .metadata()
            .get(PG_TYPE_METADATA)
            .is_some_and(|t| t == "int2vector" || t == "oidvector")
}

/// `HH:MM:SS[.ffffff]` of a time of day, the fraction cut as a
/// timestamp's.
fn time(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let mut text = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    push_fraction(&mut text, micros);
    text
}

/// The values of a Decimal128 or Decimal256 column, as 256-bit integers
/// (nothing for another type).
pub fn decimals(array: &ArrayRef) -> Box<dyn Iterator<Item = Option<i256>> + '_> {
    match array.data_type() {
        DataType::Decimal128(..) => Box::new(
            array
                .as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| v.map(i256::from_i128)),
        ),
        DataType::Decimal256(..) => Box::new(array.as_primitive::<Decimal256Type>().iter()),
        _ => Box::new(std::iter::empty()),
    }
}

/// `value` as PostgreSQL prints it ([`interval`]).
pub fn interval_text(value: IntervalMonthDayNano) -> String {
    interval(value.months, value.days, value.nanoseconds / 1_000)
}

/// An interval as PostgreSQL prints it (IntervalStyle `postgres`): `1 year
/// 2 mons -3 days 04:05:06.5`, each part with its own sign, the time part
/// left out when zero unless nothing else is printed.
fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut parts = Vec::new();
    // A positive part right after a negative one shows its sign (`-1 years
    // +3 days`, but `-1 mons +1 day 08:00:00`), as PostgreSQL writes it.
    let mut after_negative = false;
    let mut sign = |n: i64| {
        let plus = if after_negative && n > 0 { "+" } else { "" };
        after_negative = n < 0;
        plus
    };
    let (years, months) = (i64::from(months / 12), i64::from(months % 12));
    for (n, one, many) in [
        (years, "year", "years"),
        (months, "mon", "mons"),
        (i64::from(days), "day", "days"),
    ] {
        if n != 0 {
            let plus = sign(n);
            parts.push(format!("{plus}{n} {}", if n == 1 { one } else { many }));
        }
    }
    if micros != 0 || parts.is_empty() {
        let sign = match micros < 0 {
            true => "-",
            false => sign(micros),
        };
        let abs = micros.unsigned_abs();
        let seconds = abs / 1_000_000;
        let mut time = format!(
            "{sign}{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        push_fraction(&mut time, (abs % 1_000_000) as i64);
        parts.push(time);
    }
    parts.join(" ")
}

/// `.ffffff` of `micros` past the second, trailing zeros cut; nothing
/// for a whole second.
fn push_fraction(text: &mut String, micros: i64) {
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
}

/// `YYYY-MM-DD` of days since 1970-01-01: a year before 1 AD as PostgreSQL
/// prints it (`0044-03-15 BC`; Arrow's is `-0043-03-15`), one past 9999
/// without a sign (Arrow's `+10000-01-01`).
fn date(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let Some(day) = epoch.checked_add_signed(chrono::Duration::days(i64::from(days))) else {
        return days.to_string();
    };
    let (year, era) = era_year(day.year());
    format!("{year:04}-{:02}-{:02}{era}", day.month(), day.day())
}

/// A year as PostgreSQL prints it, and the era to write after the value:
/// ISO's year 0 is 1 BC.
fn era_year(iso: i32) -> (i32, &'static str) {
    match iso <= 0 {
        true => (1 - iso, " BC"),
        false => (iso, ""),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction cut;
/// a `timestamptz` (`zone` given) in that zone, followed by its offset.
fn timestamp(micros: i64, zone: Option<&Tz>) -> String {
    let Some(at) = chrono::DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let (local, offset) = match zone {
        Some(zone) => {
            let local = at.with_timezone(zone);
            (
                local.naive_local(),
                Some(local.offset().fix().local_minus_utc()),
            )
        }
        None => (at.naive_utc(), None),
    };
    let (year, era) = era_year(local.year());
    let mut text = format!("{year:04}-{}", local.format("%m-%d %H:%M:%S"));
    push_fraction(&mut text, micros);
    if let Some(offset) = offset {
        text.push_str(&utc_offset(offset));
    }
    text.push_str(era);
    text
}

/// PostgreSQL's form of a UTC offset: `+00`, `-03`, `+05:30`, `+00:09:21`.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.unsigned_abs();
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (minutes, secs) {
        (0, 0) => format!("{sign}{hours:02}"),
        (_, 0) => format!("{sign}{hours:02}:{minutes:02}"),
        _ => format!("{sign}{hours:02}:{minutes:02}:{secs:02}"),
    }
}

/// A Decimal256 as PostgreSQL prints a numeric: all `scale` digits kept;
/// a negative scale is that many zeros after the digits (`1e100` is a
/// 1 of scale -100).
pub fn decimal_text(value: i256, scale: i8) -> String {
    let negative = value < i256::ZERO;
    let digits = if negative {
        value.wrapping_neg().to_string()
    } else {
        value.to_string()
    };
    let sign = if negative { "-" } else { "" };
    if scale <= 0 {
        let zeros = match value == i256::ZERO {
            true => 0,
            false => usize::from(scale.unsigned_abs()),
        };
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_print_like_postgresql() {
        // PostgreSQL 15's output.
        assert_eq!(interval(52, 16, 0), "4 years 4 mons 16 days");
        assert_eq!(interval(-1, -1, 0), "-1 mons -1 days");
        assert_eq!(interval(1, 0, 77_384_500_000), "1 mon 21:29:44.5");
        assert_eq!(interval(0, 1, -3_600_000_000), "1 day -01:00:00");
        assert_eq!(interval(0, 0, 90_000_000_000), "25:00:00");
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(-13, 0, 0), "-1 years -1 mons");
        assert_eq!(
            interval(-14, 3, -14_706_000_000),
            "-1 years -2 mons +3 days -04:05:06"
        );
        assert_eq!(interval(0, -1, 0), "-1 days");
        assert_eq!(interval(-1, 1, 28_800_000_000), "-1 mons +1 day 08:00:00");
        assert_eq!(
            interval(-10, 3, 14_400_000_000),
            "-10 mons +3 days 04:00:00"
        );
        assert_eq!(interval(0, -1, 18_000_000_000), "-1 days +05:00:00");
        assert_eq!(interval(-2, 0, 3_600_000_000), "-2 mons +01:00:00");
        assert_eq!(interval(0, 0, 1_500_000), "00:00:01.5");
    }

    #[test]
    fn timestamps_drop_zero_fractions_and_show_the_session_zone() {
        let utc: Tz = "+00:00".parse().unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let india: Tz = "+05:30".parse().unwrap();
        let at = 1_704_164_645_000_000;
        assert_eq!(timestamp(at, Some(&utc)), "2024-01-02 03:04:05+00");
        assert_eq!(timestamp(at, Some(&tokyo)), "2024-01-02 12:04:05+09");
        assert_eq!(timestamp(at, Some(&india)), "2024-01-02 08:34:05+05:30");
        assert_eq!(
            timestamp(1_704_164_645_120_000, None),
            "2024-01-02 03:04:05.12"
        );
        assert_eq!(timestamp(-1, None), "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn wide_numerics_keep_their_scale() {
        assert_eq!(decimal_text(i256::from_i128(12345), 2), "123.45");
        assert_eq!(decimal_text(i256::from_i128(-5), 3), "-0.005");
        assert_eq!(decimal_text(i256::from_i128(7), 0), "7");
    }
}
