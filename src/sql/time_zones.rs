//! `x AT TIME ZONE zone` and `timezone(zone, x)`, as PostgreSQL reads
//! them: a `timestamptz` becomes the `timestamp` a clock in `zone` shows
//! at that instant, and a `timestamp` (a wall-clock time in `zone`)
//! becomes the `timestamptz` of that instant. DataFusion cast either to a
//! nanosecond `timestamptz` labelled with the zone, so a `timestamptz`
//! kept its instant and its type (`'2024-01-01 00:00+00'::timestamptz AT
//! TIME ZONE 'America/New_York'` showed `2024-01-01 00:00:00+00`,
//! PostgreSQL `2023-12-31 19:00:00`), and years outside 1677-2262 failed.
//!
//! A zone is an IANA name, `UTC` (or a spelling of it), or a POSIX offset
//! such as `+02`, which, as in PostgreSQL, counts hours *west* of
//! Greenwich (`+02` is two hours behind UTC). A `date` is first the
//! `timestamptz` of its midnight in the session time zone, as PostgreSQL
//! casts it.

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::analyze::like_arguments;
use super::rewrite::parse_expr;
use super::vars::{session_zone, time_zone, UTC_OFFSET};
use crate::error::{Error, InputError};

/// The function `AT TIME ZONE` is a call of, as in PostgreSQL.
const TIMEZONE: &str = "timezone";

/// Each `x AT TIME ZONE zone` as `timezone(zone, x)` (a parse-time
/// rule, so column defaults and every kind of statement get it).
#[derive(Debug)]
pub struct AtTimeZoneCalls;

impl SqlStatementRewriteRule for AtTimeZoneCalls {
    fn rewrite(&self, mut stmt: ast::Statement) -> ast::Statement {
        let _ = ast::visit_expressions_mut(&mut stmt, |expr| {
            if let ast::Expr::AtTimeZone {
                timestamp,
                time_zone,
            } = expr
            {
                // Printed by the parser itself, so it parses.
                if let Ok(call) = parse_expr(&format!("{TIMEZONE}({time_zone}, {timestamp})")) {
                    *expr = call;
                }
            }
            ControlFlow::<()>::Continue(())
        });
        stmt
    }
}

pub fn timezone() -> ScalarUDF {
    ScalarUDF::new_from_impl(AtTimeZone {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        TIMEZONE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        let micros =
            |zone: Option<&str>| DataType::Timestamp(TimeUnit::Microsecond, zone.map(Arc::from));
        match &args[1] {
            DataType::Timestamp(_, Some(_)) | DataType::Date32 => Ok(micros(None)),
            DataType::Timestamp(_, None) => Ok(micros(Some(UTC_OFFSET))),
            DataType::Null => Ok(micros(None)),
            other => plan_err!("function timezone(text, {other}) does not exist"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let zones = args.args[0].to_array(rows)?;
        let zones = cast(&zones, &DataType::Utf8)?;
        let zones = zones.as_string::<i32>();
        let input = args.args[1].to_array(rows)?;
        let wall_clock = matches!(input.data_type(), DataType::Timestamp(_, None));
        let instants: ArrayRef = match input.data_type() {
            // A date's midnight, in the session's zone.
            DataType::Date32 => {
                let session = session_zone(&args.config_options);
                let midnights = cast(&input, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let midnights = midnights.as_primitive::<TimestampMicrosecondType>();
                let zone = |_| Ok(session);
                Arc::new(convert(midnights, zone, true)?)
            }
            _ => cast(&input, &DataType::Timestamp(TimeUnit::Microsecond, None))?,
        };
        let instants = instants.as_primitive::<TimestampMicrosecondType>();
        let zone = |row: usize| match zones.is_null(row) {
            true => exec_err!("the time zone is NULL"),
            false => parse_zone(zones.value(row)),
        };
        let out = convert(instants, zone, wall_clock)?;
        let out = match wall_clock {
            true => out.with_timezone(UTC_OFFSET),
            false => out,
        };
        like_arguments(&args.args, Arc::new(out))
    }
}

/// Each microsecond timestamp of `values` converted in the zone of its
/// row: a wall-clock time there to its instant (`to_instant`), or an
/// instant (counted from 1970-01-01 UTC) to the wall-clock time there.
fn convert(
    values: &TimestampMicrosecondArray,
    zone: impl Fn(usize) -> DFResult<Tz>,
    to_instant: bool,
) -> DFResult<TimestampMicrosecondArray> {
    (0..values.len())
        .map(|row| {
            if values.is_null(row) {
                return Ok(None);
            }
            let micros = values.value(row);
            let Some(at) = DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc()) else {
                return exec_err!("timestamp out of range");
            };
            let offset = match to_instant {
                true => local_offset(&zone(row)?, &at),
                false => zone(row)?.offset_from_utc_datetime(&at).fix(),
            };
            let shift = i64::from(offset.local_minus_utc()) * 1_000_000;
            Ok(Some(match to_instant {
                true => micros - shift,
                false => micros + shift,
            }))
        })
        .collect()
}

/// The UTC time of wall-clock time `local` in `zone` (see
/// [`local_offset`]).
pub fn local_to_utc(zone: &Tz, local: &NaiveDateTime) -> NaiveDateTime {
    *local - Duration::seconds(i64::from(local_offset(zone, local).local_minus_utc()))
}

/// The offset from UTC of wall-clock time `local` in `zone`. As in
/// PostgreSQL, a time a change of offset skips (spring forward) takes the
/// offset before the change, and one it repeats (fall back) the one
/// after it.
fn local_offset(zone: &Tz, local: &NaiveDateTime) -> FixedOffset {
    match zone.offset_from_local_datetime(local).latest() {
        Some(offset) => offset.fix(),
        None => zone
            .offset_from_local_datetime(&(*local - Duration::hours(3)))
            .earliest()
            .map_or_else(
                || FixedOffset::east_opt(0).expect("zero offset"),
                |o| o.fix(),
            ),
    }
}

/// The zone a timestamp's text names after its time (`2024-01-15 10:30
/// UTC`, `... America/New_York`, `... PST`), as PostgreSQL's input reads
/// it: UTC's spellings, an IANA name, or an abbreviation of PostgreSQL's
/// default set as its fixed offset. None for a word that names no zone.
pub fn input_zone(name: &str) -> Option<Tz> {
    const ABBREVIATIONS: &[(&str, &str)] = &[
        ("EST", "-05:00"),
        ("EDT", "-04:00"),
        ("CST", "-06:00"),
        ("CDT", "-05:00"),
        ("MST", "-07:00"),
        ("MDT", "-06:00"),
        ("PST", "-08:00"),
        ("PDT", "-07:00"),
        ("AKST", "-09:00"),
        ("AKDT", "-08:00"),
        ("HST", "-10:00"),
        ("BST", "+01:00"),
        ("CET", "+01:00"),
        ("CEST", "+02:00"),
        ("EET", "+02:00"),
        ("EEST", "+03:00"),
        ("MSK", "+03:00"),
        ("JST", "+09:00"),
        ("KST", "+09:00"),
        ("AEST", "+10:00"),
        ("AEDT", "+11:00"),
        ("NZST", "+12:00"),
        ("NZDT", "+13:00"),
    ];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    match ABBREVIATIONS
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
    {
        Some((_, offset)) => offset.parse().ok(),
        None => time_zone(name).ok(),
    }
}

/// The zone `name` names (see the module docs); 22023 if none.
pub(super) fn parse_zone(name: &str) -> DFResult<Tz> {
    let name = name.trim();
    // As the session's zone is read: a signed offset counts hours west.
    let parsed = time_zone(name).ok();
    parsed.ok_or_else(|| {
        DataFusionError::External(Box::new(Error::input(
            InputError::InvalidParameterValue,
            format!("time zone \"{name}\" not recognized"),
        )))
    })
}
