//! `to_date(text, template)` and `to_timestamp(text, template)`: the
//! fields of a PostgreSQL template read back, as PostgreSQL does without
//! `FX`: a separator in the template skips one separator of the input,
//! spaces skip spaces, and a number is as many digits as the field has
//! when another field follows at once, all its digits otherwise.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::like_arguments;
use super::template::{
    datetime_error, parse_template, strip_prefix_ignore_case, Field, Node, DAYS,
    EPOCH_DAYS_FROM_CE, JULIAN_OFFSET, MONTHS,
};
use crate::error::{Error, InputError};
use crate::sql::vars::session_zone;

/// `to_date(text, template)` or `to_timestamp(text, template)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ParseTemplate {
    name: &'static str,
    timestamp: bool,
    signature: Signature,
}

impl ParseTemplate {
    pub fn to_date() -> Self {
        Self::new("to_date", false)
    }

    pub fn to_timestamp(name: &'static str) -> Self {
        Self::new(name, true)
    }

    fn new(name: &'static str, timestamp: bool) -> Self {
        Self {
            name,
            timestamp,
            signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for ParseTemplate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(match self.timestamp {
            true => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            false => DataType::Date32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let texts = args.args[0].clone().into_array(args.number_rows)?;
        let templates = args.args[1].clone().into_array(args.number_rows)?;
        let zone = session_zone(&args.config_options);
        let parsed: Vec<Option<NaiveDateTime>> = texts
            .as_string::<i32>()
            .iter()
            .zip(templates.as_string::<i32>().iter())
            .map(|(text, template)| match (text, template) {
                (Some(text), Some(template)) => {
                    read_moment(text, &parse_template(template), template).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<DFResult<_>>()?;
        let out: ArrayRef = match self.timestamp {
            true => {
                let micros: Vec<Option<i64>> = parsed
                    .iter()
                    .map(|at| {
                        let at = (*at)?;
                        let utc = crate::sql::time_zones::local_to_utc(&zone, &at);
                        Some(utc.and_utc().timestamp_micros())
                    })
                    .collect();
                Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("+00:00"))
            }
            false => Arc::new(Date32Array::from(
                parsed
                    .iter()
                    .map(|at| Some(at.as_ref()?.date().num_days_from_ce() - EPOCH_DAYS_FROM_CE))
                    .collect::<Vec<_>>(),
            )),
        };
        like_arguments(&args.args, out)
    }
}

/// The fields read from an input.
#[derive(Debug)]
struct Read {
    year: i32,
    month: u32,
    day: u32,
    day_of_year: Option<u32>,
    julian: Option<i64>,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    pm: Option<bool>,
}

fn read_moment(input: &str, nodes: &[Node], template: &str) -> DFResult<NaiveDateTime> {
    let mut r = Read {
        year: 1,
        month: 1,
        day: 1,
        day_of_year: None,
        julian: None,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
        pm: None,
    };
    let mut rest = input;
    let bad = |what: &str| {
        datetime_error(
            InputError::InvalidDatetimeFormat,
            format!("invalid value \"{input}\" for \"{what}\""),
        )
    };
    for (i, node) in nodes.iter().enumerate() {
        let field = match node {
            Node::Text(text) => {
                for c in text.chars() {
                    if c.is_whitespace() {
                        rest = rest.trim_start();
                    } else if rest.starts_with(|r: char| !r.is_alphanumeric()) {
                        let mut chars = rest.chars();
                        chars.next();
                        rest = chars.as_str();
                    } else if rest
                        .chars()
                        .next()
                        .is_some_and(|r| r.eq_ignore_ascii_case(&c))
                    {
                        rest = &rest[c.len_utf8()..];
                    }
                }
                continue;
            }
            Node::Field { field, .. } => *field,
        };
        rest = rest.trim_start();
        // A field right after another reads its own width only.
        let fixed = matches!(nodes.get(i + 1), Some(Node::Field { .. }));
        let signed = matches!(field, Field::Year(_) | Field::Julian);
        match field {
            Field::Year(4) | Field::IsoYear(4) => {
                r.year = read_number(&mut rest, 4, fixed, signed).ok_or_else(|| bad("YYYY"))? as i32
            }
            Field::Year(digits) => {
                let y = read_number(&mut rest, usize::from(digits), fixed, signed)
                    .ok_or_else(|| bad("YY"))? as i32;
                // PostgreSQL: two digits are the year nearest 2020.
                r.year = match digits {
                    2 if y < 70 => 2000 + y,
                    2 if y < 100 => 1900 + y,
                    3 if y < 100 => 2000 + y,
                    3 => 1000 + y,
                    1 => 2000 + y,
                    _ => y,
                };
            }
            Field::Month => {
                r.month = read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("MM"))? as u32
            }
            Field::MonthName { full, .. } => {
                r.month = read_name(&mut rest, &MONTHS, full).ok_or_else(|| bad("MONTH"))? + 1
            }
            Field::DayName { full, .. } => {
                read_name(&mut rest, &DAYS, full).ok_or_else(|| bad("DAY"))?;
            }
            Field::Day => {
                r.day = read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("DD"))? as u32
            }
            Field::DayOfYear => {
                r.day_of_year =
                    Some(read_number(&mut rest, 3, fixed, signed).ok_or_else(|| bad("DDD"))? as u32)
            }
            Field::Weekday | Field::IsoWeekday | Field::Quarter => {
                read_number(&mut rest, 1, fixed, signed).ok_or_else(|| bad("D"))?;
            }
            Field::Week | Field::IsoWeek | Field::Century => {
                read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("WW"))?;
            }
            Field::Hour24 => {
                r.hour = read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("HH24"))? as u32
            }
            Field::Hour12 => {
                r.hour =
                    read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("HH12"))? as u32;
                r.pm.get_or_insert(false);
            }
            Field::Minute => {
                r.minute = read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("MI"))? as u32
            }
            Field::Second => {
                r.second = read_number(&mut rest, 2, fixed, signed).ok_or_else(|| bad("SS"))? as u32
            }
            Field::SecondOfDay => {
                let s = read_number(&mut rest, 5, fixed, signed).ok_or_else(|| bad("SSSS"))?;
                let s = u32::try_from(s).map_err(|_| bad("SSSS"))?;
                (r.hour, r.minute, r.second) = (s / 3600, s % 3600 / 60, s % 60);
            }
            Field::Millis | Field::Micros | Field::Fraction(_) => {
                let before = rest.len();
                let digits = read_number(&mut rest, 6, fixed, signed).ok_or_else(|| bad("US"))?;
                let len = before - rest.len();
                let scale = match field {
                    Field::Millis => 3,
                    _ => 6,
                };
                let read = len.max(1) as u32;
                // `MS` 5 is 500 ms, as PostgreSQL reads a fraction.
                let micros = match scale {
                    3 => digits as u32 * 10u32.pow(3u32.saturating_sub(read)) * 1_000,
                    _ => digits as u32 * 10u32.pow(6u32.saturating_sub(read)),
                };
                r.micros = micros;
            }
            Field::Meridiem { .. } => {
                let upper = rest.to_uppercase();
                let pm = if upper.starts_with("P.M.") || upper.starts_with("PM") {
                    true
                } else if upper.starts_with("A.M.") || upper.starts_with("AM") {
                    false
                } else {
                    return Err(bad("AM"));
                };
                let len = if upper.get(1..2) == Some(".") { 4 } else { 2 };
                rest = &rest[len..];
                r.pm = Some(pm);
            }
            Field::Julian => {
                r.julian = Some(
                    read_number(&mut rest, usize::MAX, fixed, signed).ok_or_else(|| bad("J"))?,
                )
            }
            Field::Zone { .. } | Field::Offset | Field::OffsetHours | Field::OffsetMinutes => {
                return Err(Error::unsupported(format!(
                    "time zone fields in the template \"{template}\" of to_timestamp"
                ))
                .into())
            }
            Field::YearWithComma
            | Field::IsoYear(_)
            | Field::IsoDayOfYear
            | Field::WeekOfMonth
            | Field::RomanMonth { .. }
            | Field::Era { .. } => {
                return Err(Error::unsupported(format!(
                    "the template \"{template}\" of to_date and to_timestamp"
                ))
                .into())
            }
        }
    }
    if let Some(pm) = r.pm {
        if !(1..=12).contains(&r.hour) {
            return Err(out_of_range(input));
        }
        r.hour = match (pm, r.hour) {
            (false, 12) => 0,
            (true, h) if h < 12 => h + 12,
            (_, h) => h,
        };
    }
    let date = match (r.julian, r.day_of_year) {
        (Some(julian), _) => i32::try_from(julian - JULIAN_OFFSET)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt),
        (None, Some(doy)) => NaiveDate::from_yo_opt(r.year, doy),
        (None, None) => NaiveDate::from_ymd_opt(r.year, r.month, r.day),
    };
    date.and_then(|d| d.and_hms_micro_opt(r.hour, r.minute, r.second, r.micros))
        .ok_or_else(|| out_of_range(input))
}

fn out_of_range(input: &str) -> datafusion::error::DataFusionError {
    datetime_error(
        InputError::DatetimeFieldOverflow,
        format!("date/time field value out of range: \"{input}\""),
    )
}

/// Reads a number of at most `width` digits when `fixed`, of all the
/// digits there otherwise; a leading `-` when `signed`.
fn read_number(rest: &mut &str, width: usize, fixed: bool, signed: bool) -> Option<i64> {
    let limit = if fixed { width } else { usize::MAX };
    let (sign, body) = match rest.strip_prefix('-') {
        Some(body) if signed => (-1, body),
        _ => (1, *rest),
    };
    let len = body
        .bytes()
        .take(limit)
        .take_while(u8::is_ascii_digit)
        .count();
    if len == 0 {
        return None;
    }
    let value: i64 = body[..len].parse().ok()?;
    *rest = &body[len..];
    Some(sign * value)
}

/// Reads a month or day name (`full`) or its first three letters, any
/// case; its index.
fn read_name(rest: &mut &str, names: &[&str], full: bool) -> Option<u32> {
    for (i, name) in names.iter().enumerate() {
        let word = if full { *name } else { &name[..3] };
        if let Some(after) = strip_prefix_ignore_case(rest, word) {
            *rest = after;
            return Some(i as u32);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_read_dates_back() {
        let read = |input: &str, template: &str| {
            read_moment(input, &parse_template(template), template)
                .map(|at| at.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            read("2024-05-17", "YYYY-MM-DD").unwrap(),
            "2024-05-17 00:00:00"
        );
        assert_eq!(read("20240517", "YYYYMMDD").unwrap(), "2024-05-17 00:00:00");
        assert_eq!(
            read("17 May 2024 10:11:12.5 pm", "DD Mon YYYY HH:MI:SS.MS AM").unwrap(),
            "2024-05-17 22:11:12.500"
        );
        assert_eq!(read("05/17/24", "MM/DD/YY").unwrap(), "2024-05-17 00:00:00");
        assert!(read("2024-13-01", "YYYY-MM-DD")
            .unwrap_err()
            .contains("out of range"));
        assert!(read("x", "YYYY").is_err());
    }
}
