//! `age(timestamp, timestamp)` and `age(timestamp)`: the difference as
//! PostgreSQL's `timestamp_age` gives it, in years, months and days
//! (`4 years 4 mons 16 days`), not a count of days: each field is the
//! difference of the fields, a negative one borrowing from the next, a
//! month borrowed counting the days of the earlier value's month.
//! `age(t)` is `age(current_date, t)` (the date in UTC).

use std::sync::Arc;

use super::like_arguments;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{ArrayRef, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

const MICROS_PER_SECOND: i64 = 1_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Age {
    signature: Signature,
}

impl Default for Age {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Stable),
        }
    }
}

fn naive_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

impl ScalarUDFImpl for Age {
    fn name(&self) -> &str {
        "age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        match arg_types.len() {
            1 | 2 => Ok(vec![naive_micros(); arg_types.len()]),
            _ => plan_err!("age takes one or two timestamps"),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let micros = |value: &ColumnarValue| -> DFResult<ArrayRef> {
            Ok(cast(&value.clone().into_array(rows)?, &naive_micros())?)
        };
        let later: Vec<Option<i64>> = match args.args.as_slice() {
            [_] => {
                let today = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0);
                let today = today.map(|t| t.and_utc().timestamp_micros());
                vec![today; rows]
            }
            [later, _] => micros(later)?
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect(),
            _ => return plan_err!("age takes one or two timestamps"),
        };
        let earlier = micros(&args.args[args.args.len() - 1])?;
        let ages: IntervalMonthDayNanoArray = later
            .iter()
            .zip(earlier.as_primitive::<TimestampMicrosecondType>().iter())
            .map(|(later, earlier)| Some(age(at(later.as_ref().copied()?)?, at(earlier?)?)))
            .collect();
        let ages: ArrayRef = Arc::new(ages);
        like_arguments(&args.args, ages)
    }
}

fn at(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = match month {
        12 => NaiveDate::from_ymd_opt(year + 1, 1, 1),
        _ => NaiveDate::from_ymd_opt(year, month + 1, 1),
    };
    match (first, next) {
        (Some(first), Some(next)) => (next - first).num_days(),
        _ => 30,
    }
}

/// PostgreSQL's `timestamp_age(t1, t2)`.
fn age(t1: NaiveDateTime, t2: NaiveDateTime) -> IntervalMonthDayNano {
    let negative = t1 < t2;
    let field_micros = |t: &NaiveDateTime| {
        i64::from(t.num_seconds_from_midnight()) * MICROS_PER_SECOND
            + i64::from(t.nanosecond() / 1_000)
    };
    let sign = if negative { -1 } else { 1 };
    let mut years = sign * i64::from(t1.year() - t2.year());
    let mut months = sign * (i64::from(t1.month()) - i64::from(t2.month()));
    let mut days = sign * (i64::from(t1.day()) - i64::from(t2.day()));
    let mut micros = sign * (field_micros(&t1) - field_micros(&t2));
    while micros < 0 {
        micros += 86_400 * MICROS_PER_SECOND;
        days -= 1;
    }
    // A borrowed month has the days of the earlier value's month.
    let earlier = if negative { t1 } else { t2 };
    while days < 0 {
        days += days_in_month(earlier.year(), earlier.month());
        months -= 1;
    }
    while months < 0 {
        months += 12;
        years -= 1;
    }
    let months = sign * (years * 12 + months);
    IntervalMonthDayNano::new(months as i32, (sign * days) as i32, sign * micros * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn ages_are_postgresqls() {
        // PostgreSQL 15's answers.
        let cases = [
            ("2024-05-17 00:00:00", "2020-01-01 00:00:00", (52, 16, 0)),
            ("2020-01-31 00:00:00", "2020-03-01 00:00:00", (-1, -1, 0)),
            (
                "2024-03-01 10:00:00",
                "2024-01-31 12:30:15.5",
                (1, 0, 77_384_500_000_000),
            ),
            ("2024-05-17 00:00:00", "2024-06-18 00:00:00", (-1, -1, 0)),
        ];
        for (t1, t2, (months, days, nanos)) in cases {
            assert_eq!(
                age(ts(t1), ts(t2)),
                IntervalMonthDayNano::new(months, days, nanos),
                "age({t1}, {t2})"
            );
        }
    }
}
