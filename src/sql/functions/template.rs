//! `to_char`, `to_date` and `to_timestamp(text, template)` with
//! PostgreSQL's templates.
//!
//! A template is read once into [`Node`]s: fields (`YYYY`, `Month`, `HH24`,
//! `MI`, `SS`, `US`, `AM`, `TZ`, `AD`, `RM`...), each with `FM` or `TM` (no
//! padding) and `TH` (an ordinal suffix), and literal text (`"quoted"` or
//! any other character: letters that spell a field are that field, as in
//! PostgreSQL, so `'Hello World'` prints a week number for its `W`). `to_char` of a date or timestamp prints the fields of the
//! value in the session time zone; `to_date` and `to_timestamp` read them
//! back ([`super::parse_template`]). `to_char` of a number uses the
//! numeric template ([`super::number_template`]).
//!
//! Time zone names print as the offset (`+09`), or `UTC` at offset zero:
//! ShardForge has no table of zone abbreviations (PostgreSQL prints `JST`).

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::OffsetName;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::like_arguments;
use crate::error::{Error, InputError};
use crate::sql::vars::session_zone;

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(super) const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// The width PostgreSQL pads month and day names to without `FM`.
const NAME_WIDTH: usize = 9;
/// The Julian day of 0001-01-01 minus one (chrono counts that day as 1).
pub(super) const JULIAN_OFFSET: i64 = 1_721_425;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    Upper,
    Capitalized,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// `YYYY`, `YYY`, `YY`, `Y`: the last n digits of the year.
    Year(u8),
    /// `Y,YYY`: the year with a comma after its thousands.
    YearWithComma,
    /// `IYYY`, `IYY`, `IY`, `I`: the last n digits of the ISO year.
    IsoYear(u8),
    /// `IDDD`: the day of the ISO year.
    IsoDayOfYear,
    /// `W`: the week of the month (days 1-7 are week 1).
    WeekOfMonth,
    /// `RM`, `rm`: the month in Roman numerals.
    RomanMonth {
        case: Case,
    },
    /// `AD`, `BC`, `A.D.`, `B.C.`: the era, whichever is written.
    Era {
        case: Case,
        dots: bool,
    },
    /// `TZH`, `TZM`: the hours and minutes of the UTC offset.
    OffsetHours,
    OffsetMinutes,
    Month,
    MonthName {
        full: bool,
        case: Case,
    },
    Day,
    DayOfYear,
    /// `D`: 1 for Sunday.
    Weekday,
    /// `ID`: 1 for Monday.
    IsoWeekday,
    DayName {
        full: bool,
        case: Case,
    },
    Hour24,
    Hour12,
    Minute,
    Second,
    /// `SSSS`, `SSSSS`: seconds past midnight.
    SecondOfDay,
    Millis,
    Micros,
    /// `FF1` .. `FF6`: the first n digits of the fraction.
    Fraction(u8),
    Meridiem {
        case: Case,
        dots: bool,
    },
    Zone {
        case: Case,
    },
    Offset,
    Quarter,
    Week,
    IsoWeek,
    Julian,
    Century,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    Field {
        field: Field,
        fill: bool,
        ordinal: Option<Case>,
    },
    Text(String),
}

/// The template words, longest first where one starts another. Words
/// whose output has no letters match in any case (`yyyy-mm-dd`).
const WORDS: &[(&str, Field, bool)] = &[
    (
        "A.D.",
        Field::Era {
            case: Case::Upper,
            dots: true,
        },
        true,
    ),
    (
        "B.C.",
        Field::Era {
            case: Case::Upper,
            dots: true,
        },
        true,
    ),
    (
        "a.d.",
        Field::Era {
            case: Case::Lower,
            dots: true,
        },
        true,
    ),
    (
        "b.c.",
        Field::Era {
            case: Case::Lower,
            dots: true,
        },
        true,
    ),
    (
        "AD",
        Field::Era {
            case: Case::Upper,
            dots: false,
        },
        true,
    ),
    (
        "BC",
        Field::Era {
            case: Case::Upper,
            dots: false,
        },
        true,
    ),
    (
        "ad",
        Field::Era {
            case: Case::Lower,
            dots: false,
        },
        true,
    ),
    (
        "bc",
        Field::Era {
            case: Case::Lower,
            dots: false,
        },
        true,
    ),
    ("HH24", Field::Hour24, false),
    ("HH12", Field::Hour12, false),
    ("HH", Field::Hour12, false),
    ("MI", Field::Minute, false),
    ("SSSSS", Field::SecondOfDay, false),
    ("SSSS", Field::SecondOfDay, false),
    ("SS", Field::Second, false),
    ("MS", Field::Millis, false),
    ("US", Field::Micros, false),
    ("FF1", Field::Fraction(1), false),
    ("FF2", Field::Fraction(2), false),
    ("FF3", Field::Fraction(3), false),
    ("FF4", Field::Fraction(4), false),
    ("FF5", Field::Fraction(5), false),
    ("FF6", Field::Fraction(6), false),
    (
        "A.M.",
        Field::Meridiem {
            case: Case::Upper,
            dots: true,
        },
        true,
    ),
    (
        "P.M.",
        Field::Meridiem {
            case: Case::Upper,
            dots: true,
        },
        true,
    ),
    (
        "a.m.",
        Field::Meridiem {
            case: Case::Lower,
            dots: true,
        },
        true,
    ),
    (
        "p.m.",
        Field::Meridiem {
            case: Case::Lower,
            dots: true,
        },
        true,
    ),
    (
        "AM",
        Field::Meridiem {
            case: Case::Upper,
            dots: false,
        },
        true,
    ),
    (
        "PM",
        Field::Meridiem {
            case: Case::Upper,
            dots: false,
        },
        true,
    ),
    (
        "am",
        Field::Meridiem {
            case: Case::Lower,
            dots: false,
        },
        true,
    ),
    (
        "pm",
        Field::Meridiem {
            case: Case::Lower,
            dots: false,
        },
        true,
    ),
    ("Y,YYY", Field::YearWithComma, false),
    ("IYYY", Field::IsoYear(4), false),
    ("IYY", Field::IsoYear(3), false),
    ("IDDD", Field::IsoDayOfYear, false),
    ("YYYY", Field::Year(4), false),
    ("YYY", Field::Year(3), false),
    ("YY", Field::Year(2), false),
    ("Y", Field::Year(1), false),
    (
        "MONTH",
        Field::MonthName {
            full: true,
            case: Case::Upper,
        },
        true,
    ),
    (
        "Month",
        Field::MonthName {
            full: true,
            case: Case::Capitalized,
        },
        true,
    ),
    (
        "month",
        Field::MonthName {
            full: true,
            case: Case::Lower,
        },
        true,
    ),
    (
        "MON",
        Field::MonthName {
            full: false,
            case: Case::Upper,
        },
        true,
    ),
    (
        "Mon",
        Field::MonthName {
            full: false,
            case: Case::Capitalized,
        },
        true,
    ),
    (
        "mon",
        Field::MonthName {
            full: false,
            case: Case::Lower,
        },
        true,
    ),
    ("MM", Field::Month, false),
    (
        "DAY",
        Field::DayName {
            full: true,
            case: Case::Upper,
        },
        true,
    ),
    (
        "Day",
        Field::DayName {
            full: true,
            case: Case::Capitalized,
        },
        true,
    ),
    (
        "day",
        Field::DayName {
            full: true,
            case: Case::Lower,
        },
        true,
    ),
    (
        "DY",
        Field::DayName {
            full: false,
            case: Case::Upper,
        },
        true,
    ),
    (
        "Dy",
        Field::DayName {
            full: false,
            case: Case::Capitalized,
        },
        true,
    ),
    (
        "dy",
        Field::DayName {
            full: false,
            case: Case::Lower,
        },
        true,
    ),
    ("DDD", Field::DayOfYear, false),
    ("DD", Field::Day, false),
    ("D", Field::Weekday, false),
    ("ID", Field::IsoWeekday, false),
    ("IW", Field::IsoWeek, false),
    ("IY", Field::IsoYear(2), false),
    ("I", Field::IsoYear(1), false),
    ("WW", Field::Week, false),
    ("W", Field::WeekOfMonth, false),
    ("RM", Field::RomanMonth { case: Case::Upper }, true),
    ("rm", Field::RomanMonth { case: Case::Lower }, true),
    ("Q", Field::Quarter, false),
    ("J", Field::Julian, false),
    ("CC", Field::Century, false),
    ("TZH", Field::OffsetHours, false),
    ("TZM", Field::OffsetMinutes, false),
    ("TZ", Field::Zone { case: Case::Upper }, true),
    ("tz", Field::Zone { case: Case::Lower }, true),
    ("OF", Field::Offset, false),
];

/// Reads a date/time template.
pub(super) fn parse_template(template: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut rest = template;
    let mut text = String::new();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            // "literal text", with \" inside.
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            text.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => text.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            continue;
        }
        let (fill, after_fm) = match strip_prefix_ignore_case(rest, "FM") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        // `FX` (fixed format) changes nothing printed; `TM` (translated
        // names: the C locale's here) drops a name's trailing blanks.
        let after_fm = strip_prefix_ignore_case(after_fm, "FX").unwrap_or(after_fm);
        let (translated, after_fm) = match strip_prefix_ignore_case(after_fm, "TM") {
            Some(after) => (true, after),
            None => (false, after_fm),
        };
        let word = WORDS.iter().find(|(word, _, exact)| match exact {
            true => after_fm.starts_with(word),
            false => strip_prefix_ignore_case(after_fm, word).is_some(),
        });
        match word {
            Some((word, field, _)) => {
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text)));
                }
                let after = &after_fm[word.len()..];
                let (ordinal, after) = match after.get(..2) {
                    Some("TH") => (Some(Case::Upper), &after[2..]),
                    Some("th") => (Some(Case::Lower), &after[2..]),
                    _ => (None, after),
                };
                // `SP` (spell mode) is not implemented in PostgreSQL either:
                // it prints the number.
                let after = strip_prefix_ignore_case(after, "SP").unwrap_or(after);
                let name = matches!(field, Field::MonthName { .. } | Field::DayName { .. });
                nodes.push(Node::Field {
                    field: *field,
                    fill: fill || (translated && name),
                    ordinal,
                });
                rest = after;
            }
            None => {
                let mut chars = rest.chars();
                let c = chars.next().unwrap_or_default();
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        text.push(next);
                    }
                } else {
                    text.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    if !text.is_empty() {
        nodes.push(Node::Text(text));
    }
    nodes
}

pub(super) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn cased(text: &str, case: Case) -> String {
    match case {
        Case::Upper => text.to_uppercase(),
        Case::Lower => text.to_lowercase(),
        Case::Capitalized => text.to_string(),
    }
}

pub(super) fn ordinal_suffix(n: i64, case: Case) -> String {
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    cased(suffix, case)
}

/// A value being printed: its local date and time and its UTC offset in
/// seconds (`None` for a date or a timestamp without time zone).
struct Moment {
    at: NaiveDateTime,
    offset: Option<i32>,
    /// The zone's abbreviation then (`EST`), for a session zone named in
    /// the IANA database.
    abbreviation: Option<String>,
}

fn format_moment(nodes: &[Node], moment: &Moment) -> String {
    let at = moment.at;
    let mut out = String::new();
    for node in nodes {
        let (field, fill, ordinal) = match node {
            Node::Text(text) => {
                out.push_str(text);
                continue;
            }
            Node::Field {
                field,
                fill,
                ordinal,
            } => (*field, *fill, *ordinal),
        };
        let number = |value: i64, width: usize| match fill {
            true => value.to_string(),
            false => format!("{value:0width$}"),
        };
        let name = |name: &str, full: bool, case: Case| {
            let name = if full { name } else { &name[..3] };
            let name = cased(name, case);
            match full && !fill {
                true => format!("{name:<NAME_WIDTH$}"),
                false => name,
            }
        };
        let micros = i64::from(at.nanosecond() / 1_000);
        let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
        let (text, value) = match field {
            Field::Year(digits) => {
                let year = era_year(at.year());
                let value = match digits {
                    4 => year,
                    n => year % 10i64.pow(u32::from(n)),
                };
                (number(value, usize::from(digits)), Some(value))
            }
            Field::YearWithComma => {
                let year = era_year(at.year());
                (format!("{},{:03}", year / 1000, year % 1000), Some(year))
            }
            Field::IsoYear(digits) => {
                let year = i64::from(at.iso_week().year());
                let value = match digits {
                    4 => year,
                    n => year % 10i64.pow(u32::from(n)),
                };
                (number(value, usize::from(digits)), Some(value))
            }
            Field::IsoDayOfYear => {
                let week = i64::from(at.iso_week().week());
                let d = (week - 1) * 7 + i64::from(at.weekday().number_from_monday());
                (number(d, 3), Some(d))
            }
            Field::WeekOfMonth => {
                let w = i64::from(at.day0() / 7 + 1);
                (w.to_string(), Some(w))
            }
            Field::RomanMonth { case } => {
                const ROMAN: [&str; 12] = [
                    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
                ];
                let roman = cased(ROMAN[at.month0() as usize], case);
                match fill {
                    true => (roman, None),
                    false => (format!("{roman:<4}"), None),
                }
            }
            Field::Era { case, dots } => {
                let word = match (at.year() > 0, dots) {
                    (true, false) => "AD",
                    (false, false) => "BC",
                    (true, true) => "A.D.",
                    (false, true) => "B.C.",
                };
                (cased(word, case), None)
            }
            Field::OffsetHours => {
                let offset = moment.offset.unwrap_or(0);
                let sign = if offset < 0 { '-' } else { '+' };
                (format!("{sign}{:02}", offset.abs() / 3600), None)
            }
            Field::OffsetMinutes => {
                let minutes = moment.offset.unwrap_or(0).abs() / 60 % 60;
                (format!("{minutes:02}"), None)
            }
            Field::Month => {
                let m = i64::from(at.month());
                (number(m, 2), Some(m))
            }
            Field::MonthName { full, case } => {
                (name(MONTHS[at.month0() as usize], full, case), None)
            }
            Field::Day => {
                let d = i64::from(at.day());
                (number(d, 2), Some(d))
            }
            Field::DayOfYear => {
                let d = i64::from(at.ordinal());
                (number(d, 3), Some(d))
            }
            Field::Weekday => {
                let d = i64::from(at.weekday().number_from_sunday());
                (d.to_string(), Some(d))
            }
            Field::IsoWeekday => {
                let d = i64::from(at.weekday().number_from_monday());
                (d.to_string(), Some(d))
            }
            Field::DayName { full, case } => (
                name(
                    DAYS[at.weekday().num_days_from_sunday() as usize],
                    full,
                    case,
                ),
                None,
            ),
            Field::Hour24 => {
                let h = i64::from(at.hour());
                (number(h, 2), Some(h))
            }
            Field::Hour12 => {
                let h = i64::from(hour12(at.hour()));
                (number(h, 2), Some(h))
            }
            Field::Minute => {
                let m = i64::from(at.minute());
                (number(m, 2), Some(m))
            }
            Field::Second => {
                let s = i64::from(at.second());
                (number(s, 2), Some(s))
            }
            Field::SecondOfDay => {
                let s = i64::from(at.num_seconds_from_midnight());
                (s.to_string(), Some(s))
            }
            Field::Millis => (number(micros / 1_000, 3), Some(micros / 1_000)),
            Field::Micros => (number(micros, 6), Some(micros)),
            Field::Fraction(n) => {
                let digits = format!("{micros:06}");
                (digits[..usize::from(n)].to_string(), None)
            }
            Field::Meridiem { case, dots } => {
                let word = match (at.hour() < 12, dots) {
                    (true, false) => "AM",
                    (false, false) => "PM",
                    (true, true) => "A.M.",
                    (false, true) => "P.M.",
                };
                (cased(word, case), None)
            }
            Field::Zone { case } => match moment.offset {
                Some(_) if moment.abbreviation.is_some() => (
                    cased(moment.abbreviation.as_deref().unwrap_or_default(), case),
                    None,
                ),
                Some(0) => (cased("UTC", case), None),
                Some(offset) => (utc_offset(offset), None),
                None => (String::new(), None),
            },
            Field::Offset => (utc_offset(moment.offset.unwrap_or(0)), None),
            Field::Quarter => {
                let q = i64::from(at.month0() / 3 + 1);
                (q.to_string(), Some(q))
            }
            Field::Week => {
                let w = i64::from(at.ordinal0() / 7 + 1);
                (number(w, 2), Some(w))
            }
            Field::IsoWeek => {
                let w = i64::from(at.iso_week().week());
                (number(w, 2), Some(w))
            }
            Field::Julian => {
                let j = i64::from(at.num_days_from_ce()) + JULIAN_OFFSET;
                (j.to_string(), Some(j))
            }
            Field::Century => {
                let year = i64::from(at.year());
                let c = if year > 0 {
                    (year + 99) / 100
                } else {
                    year / 100 - 1
                };
                (number(c, 2), Some(c))
            }
        };
        out.push_str(&text);
        if let (Some(case), Some(value)) = (ordinal, value) {
            out.push_str(&ordinal_suffix(value, case));
        }
    }
    out
}

/// A year as its era counts it (PostgreSQL's `ADJYEAR`): ISO's year 0 is 1
/// BC, -43 is 44 BC.
fn era_year(iso: i32) -> i64 {
    i64::from(if iso <= 0 { 1 - iso } else { iso })
}

/// `+09`, `-03:30`: PostgreSQL's `OF`.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    match minutes % 60 {
        0 => format!("{sign}{:02}", minutes / 60),
        m => format!("{sign}{:02}:{m:02}", minutes / 60),
    }
}

pub(super) fn datetime_error(
    kind: InputError,
    message: String,
) -> datafusion::error::DataFusionError {
    Error::input(kind, message).into()
}

// ------------------------------------------------------------ to_char

/// `to_char(value, template)` for dates, timestamps and numbers.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToChar {
    signature: Signature,
}

impl Default for ToChar {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let [value, _] = arg_types else {
            return plan_err!("to_char takes a value and a template");
        };
        let value = match value {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => DataType::Int64,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                DataType::Int64
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Date32
            | DataType::Timestamp(_, _) => value.clone(),
            DataType::Date64 => DataType::Date32,
            other => {
                return Err(Error::input(
                    InputError::UndefinedFunction,
                    format!("function to_char({other}, text) does not exist"),
                )
                .into())
            }
        };
        Ok(vec![value, DataType::Utf8])
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let values = args.args[0].clone().into_array(args.number_rows)?;
        let templates = args.args[1].clone().into_array(args.number_rows)?;
        let templates = cast(&templates, &DataType::Utf8)?;
        let templates = templates.as_string::<i32>();
        let zone = session_zone(&args.config_options);
        let named = args.config_options.execution.time_zone.as_deref();
        let named = named.and_then(|name| name.parse::<chrono_tz::Tz>().ok());
        let out: StringArray = match values.data_type() {
            DataType::Date32 | DataType::Timestamp(_, _) => {
                let moments = moments(&values, &zone, named)?;
                moments
                    .iter()
                    .zip(templates.iter())
                    .map(|(moment, template)| {
                        // An empty template gives NULL, as in PostgreSQL.
                        let template = template.filter(|t| !t.is_empty())?;
                        Some(format_moment(&parse_template(template), moment.as_ref()?))
                    })
                    .collect()
            }
            _ => {
                let numbers = super::number_template::decimal_strings(&values)?;
                numbers
                    .iter()
                    .zip(templates.iter())
                    .map(|(number, template)| match (number, template) {
                        (Some(n), Some(t)) => super::number_template::format_number(n, t).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<DFResult<_>>()?
            }
        };
        let out: ArrayRef = Arc::new(out);
        like_arguments(&args.args, out)
    }
}

/// Each date or timestamp as the local time it prints as, in `zone`
/// (`named`, if it has a name in the IANA database).
fn moments(
    values: &ArrayRef,
    zone: &Tz,
    named: Option<chrono_tz::Tz>,
) -> DFResult<Vec<Option<Moment>>> {
    if let DataType::Timestamp(_, tz) = values.data_type() {
        let micros = cast(
            values,
            &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        )?;
        let with_zone = tz.is_some();
        return Ok(micros
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| {
                let utc = DateTime::from_timestamp_micros(v?)?;
                Some(match with_zone {
                    true => {
                        let local = utc.with_timezone(zone);
                        let abbreviation = named.and_then(|named| {
                            let offset = named.offset_from_utc_datetime(&utc.naive_utc());
                            offset.abbreviation().map(str::to_string)
                        });
                        Moment {
                            at: local.naive_local(),
                            offset: Some(local.offset().fix().local_minus_utc()),
                            abbreviation,
                        }
                    }
                    false => Moment {
                        at: utc.naive_utc(),
                        offset: None,
                        abbreviation: None,
                    },
                })
            })
            .collect());
    }
    let days = cast(values, &DataType::Date32)?;
    Ok(days
        .as_primitive::<Date32Type>()
        .iter()
        .map(|d| {
            let date = NaiveDate::from_num_days_from_ce_opt(d? + EPOCH_DAYS_FROM_CE)?;
            Some(Moment {
                at: date.and_hms_opt(0, 0, 0)?,
                offset: None,
                abbreviation: None,
            })
        })
        .collect())
}

/// Days from 0001-01-01 (day 1) to 1970-01-01.
pub(super) const EPOCH_DAYS_FROM_CE: i32 = 719_163;

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(s: &str) -> Moment {
        Moment {
            at: NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap(),
            offset: None,
            abbreviation: None,
        }
    }

    #[test]
    fn dates_print_as_postgresql_prints_them() {
        let at = moment("2024-05-07 09:04:05.1234");
        let cases = [
            ("YYYY-MM-DD HH24:MI:SS.MS", "2024-05-07 09:04:05.123"),
            ("US FF3 HH12 AM am P.M.", "123400 123 09 AM am A.M."),
            (
                "Month|MON|mon|Day|DY|dy",
                "May      |MAY|may|Tuesday  |TUE|tue",
            ),
            (
                "DDD D ID IW WW Q J CC YY Y IYYY",
                "128 3 2 19 19 2 2460438 21 24 4 2024",
            ),
            ("FMDD FMMonth DDth FMDDth \"at\" HH", "7 May 07th 7th at 09"),
            ("yyyy-mm-dd hh24:mi", "2024-05-07 09:04"),
        ];
        for (template, want) in cases {
            assert_eq!(
                format_moment(&parse_template(template), &at),
                want,
                "{template}"
            );
        }
    }
}
