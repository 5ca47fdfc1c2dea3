//! `make_interval`, `make_date`, `make_timestamp`, `make_timestamptz` and
//! `make_time` as PostgreSQL's (a negative year is one BC: -44 is 44 BC):
//! fields out of their range are 22008, not carried into the next
//! (`make_timestamp(2024, 2, 30, ...)` is an error), seconds are
//! `double precision` rounded to the microsecond, and `make_timestamptz`
//! reads its fields in the zone given or the session's, as a timestamptz
//! written without an offset is read (a time skipped by a change to
//! summer time moves forward). `make_interval`'s named arguments
//! (`days => 3`) are made positional by `calls`.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, IntervalMonthDayNanoArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::super::time_zones::{local_to_utc, parse_zone};
use super::super::vars::{session_zone, UTC_OFFSET};
use super::{input_error, like_arguments};
use crate::error::InputError;

/// `make_interval`'s parameters, in order: all but `secs` are integers.
pub const INTERVAL_FIELDS: [&str; 7] =
    ["years", "months", "weeks", "days", "hours", "mins", "secs"];

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Interval,
    Date,
    Timestamp,
    TimestampTz,
    Time,
}

pub fn make_interval() -> ScalarUDF {
    make(Kind::Interval, &[7])
}

pub fn make_date() -> ScalarUDF {
    make(Kind::Date, &[3])
}

pub fn make_timestamp() -> ScalarUDF {
    make(Kind::Timestamp, &[6])
}

/// Six fields, and a zone or not.
pub fn make_timestamptz() -> ScalarUDF {
    make(Kind::TimestampTz, &[6, 7])
}

pub fn make_time() -> ScalarUDF {
    make(Kind::Time, &[3])
}

/// Arguments of any type, cast when called: integers but the seconds
/// (double precision) and a zone (text).
fn make(kind: Kind, arities: &[usize]) -> ScalarUDF {
    let signature = Signature::one_of(
        arities.iter().map(|&n| TypeSignature::Any(n)).collect(),
        match kind {
            Kind::TimestampTz => Volatility::Stable,
            _ => Volatility::Immutable,
        },
    );
    ScalarUDF::new_from_impl(Make { kind, signature })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Make {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for Make {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Interval => "make_interval",
            Kind::Date => "make_date",
            Kind::Timestamp => "make_timestamp",
            Kind::TimestampTz => "make_timestamptz",
            Kind::Time => "make_time",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(match self.kind {
            Kind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC_OFFSET.into()))
            }
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let seconds_at = match self.kind {
            Kind::Interval => 6,
            Kind::Timestamp | Kind::TimestampTz => 5,
            Kind::Date => 3,
            Kind::Time => 2,
        };
        let integers = arrays[..seconds_at]
            .iter()
            .map(|a| cast(a, &DataType::Int32))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let integers: Vec<_> = integers
            .iter()
            .map(|a| a.as_primitive::<Int32Type>())
            .collect();
        // A date has no time of day: midnight.
        let seconds = match arrays.get(seconds_at) {
            Some(seconds) => cast(seconds, &DataType::Float64)?,
            None => Arc::new(Float64Array::from(vec![0.0; rows])),
        };
        let seconds = seconds.as_primitive::<Float64Type>();
        let zones = arrays
            .get(6)
            .map(|z| cast(z, &DataType::Utf8))
            .transpose()?;
        let session = session_zone(&args.config_options);
        // One row's fields, NULL if any is.
        let fields = |row: usize| -> Option<(Vec<i32>, f64)> {
            let ints = integers
                .iter()
                .map(|a| a.is_valid(row).then(|| a.value(row)))
                .collect::<Option<Vec<i32>>>()?;
            seconds.is_valid(row).then(|| (ints, seconds.value(row)))
        };
        let array: ArrayRef = match self.kind {
            Kind::Interval => Arc::new(
                (0..rows)
                    .map(|row| fields(row).map(|(i, s)| interval(&i, s)).transpose())
                    .collect::<DFResult<IntervalMonthDayNanoArray>>()?,
            ),
            Kind::Timestamp | Kind::TimestampTz => {
                let micros = (0..rows)
                    .map(|row| {
                        let Some((i, s)) = fields(row) else {
                            return Ok(None);
                        };
                        let local = timestamp(&i, s)?;
                        let utc = match (self.kind, &zones) {
                            (Kind::Timestamp, _) => local,
                            (_, Some(zones)) => {
                                let zones = zones.as_string::<i32>();
                                if zones.is_null(row) {
                                    return Ok(None);
                                }
                                local_to_utc(&parse_zone(zones.value(row))?, &local)
                            }
                            (_, None) => local_to_utc(&session, &local),
                        };
                        Ok(Some(utc.and_utc().timestamp_micros()))
                    })
                    .collect::<DFResult<TimestampMicrosecondArray>>()?;
                Arc::new(match self.kind {
                    Kind::TimestampTz => micros.with_timezone(UTC_OFFSET),
                    _ => micros,
                })
            }
            Kind::Date => Arc::new(
                (0..rows)
                    .map(|row| {
                        let Some((mut i, _)) = fields(row) else {
                            return Ok(None);
                        };
                        i.extend([0, 0]);
                        let date = timestamp(&i, 0.0)?.date();
                        // Days since 1970-01-01 (chrono's default date).
                        let days = date.signed_duration_since(NaiveDate::default()).num_days();
                        Ok(Some(days as i32))
                    })
                    .collect::<DFResult<Date32Array>>()?,
            ),
            Kind::Time => Arc::new(
                (0..rows)
                    .map(|row| fields(row).map(|(i, s)| time(i[0], i[1], s)).transpose())
                    .collect::<DFResult<Time64MicrosecondArray>>()?,
            ),
        };
        like_arguments(&args.args, array)
    }
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`.
fn interval(fields: &[i32], seconds: f64) -> DFResult<IntervalMonthDayNano> {
    let wide = |v: i32| i64::from(v);
    let months = wide(fields[0]) * 12 + wide(fields[1]);
    let days = wide(fields[2]) * 7 + wide(fields[3]);
    let micros = (wide(fields[4]) as f64) * 3.6e9 + (wide(fields[5]) as f64) * 6e7 + seconds * 1e6;
    let (Ok(months), Ok(days)) = (i32::try_from(months), i32::try_from(days)) else {
        return Err(out_of_range("interval out of range"));
    };
    if !micros.is_finite() || micros.abs() >= 9.2e18 / 1000.0 {
        return Err(out_of_range("interval out of range"));
    }
    Ok(IntervalMonthDayNano::new(
        months,
        days,
        micros.round() as i64 * 1000,
    ))
}

/// The wall-clock time `make_timestamp` names.
fn timestamp(fields: &[i32], seconds: f64) -> DFResult<NaiveDateTime> {
    let [year, month, day, hour, minute] = fields[..5] else {
        return Err(out_of_range("date field value out of range"));
    };
    // PostgreSQL numbers years before 1 BC as negative: -1 is 1 BC, which
    // is ISO's (and chrono's) year 0.
    let iso_year = if year < 0 { year + 1 } else { year };
    let date = (year != 0)
        .then(|| NaiveDate::from_ymd_opt(iso_year, month as u32, day as u32))
        .flatten()
        .ok_or_else(|| {
            out_of_range(format!(
                "date field value out of range: {year}-{month:02}-{day:02}"
            ))
        })?;
    let time = time_of_day(hour, minute, seconds)?;
    // 24:00:00 is the next midnight.
    Ok(date.and_time(NaiveTime::MIN) + chrono::Duration::microseconds(time))
}

/// `make_time(hour, min, sec)`: microseconds since midnight.
fn time(hour: i32, minute: i32, seconds: f64) -> DFResult<i64> {
    time_of_day(hour, minute, seconds)
}

/// Microseconds since midnight of `hour:minute:seconds`, up to 24:00:00.
fn time_of_day(hour: i32, minute: i32, seconds: f64) -> DFResult<i64> {
    let micros = (seconds * 1e6).round();
    let valid =
        (0..24).contains(&hour) && (0..60).contains(&minute) && (0.0..6e7).contains(&micros)
            || (hour == 24 && minute == 0 && micros == 0.0);
    if !valid {
        return Err(out_of_range(format!(
            "time field value out of range: {hour}:{minute:02}:{seconds:02}"
        )));
    }
    Ok(i64::from(hour) * 3_600_000_000 + i64::from(minute) * 60_000_000 + micros as i64)
}

fn out_of_range(message: impl std::fmt::Display) -> DataFusionError {
    input_error(InputError::DatetimeFieldOverflow, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_out_of_range_are_refused() {
        assert!(timestamp(&[2024, 2, 30, 0, 0], 0.0).is_err());
        assert!(timestamp(&[0, 1, 1, 0, 0], 0.0).is_err());
        assert!(timestamp(&[2024, 1, 1, 25, 0], 0.0).is_err());
        assert!(timestamp(&[2024, 1, 1, 0, 0], 60.0).is_err());
        assert_eq!(
            timestamp(&[2024, 1, 1, 24, 0], 0.0).unwrap(),
            NaiveDate::from_ymd_opt(2024, 1, 2)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        );
        assert_eq!(time(1, 2, 3.5).unwrap(), 3_723_500_000);
        assert_eq!(
            interval(&[1, 2, 1, 3, 4, 5], 6.5).unwrap(),
            IntervalMonthDayNano::new(14, 10, 14_706_500_000_000)
        );
    }
}
