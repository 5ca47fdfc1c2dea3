//! `to_char`, `to_date` and `to_timestamp(text, template)` with
//! PostgreSQL's templates.
//!
//! A template is read once into [`Node`]s: fields (`YYYY`, `Month`, `HH24`,
//! `MI`, `SS`, `US`, `AM`, `TZ`...), each with `FM` (no padding) and `TH`
//! (an ordinal suffix), and literal text (`"quoted"` or any other
//! character). `to_char` of a date or timestamp prints the fields of the
//! value in the session time zone; `to_date` and `to_timestamp` read them
//! back, as PostgreSQL does without `FX`: a separator in the template
//! skips one separator of the input, spaces skip spaces, a number is as
//! many digits as the field has when another field follows at once and all
//! its digits otherwise. `to_char` of a number uses the numeric template
//! (`9`, `0`, `.`/`D`, `,`/`G`, `FM`, `S`, `MI`, `PR`, `TH`), rounding half
//! away from zero and printing `#` for a value too wide, as PostgreSQL
//! does.
//!
//! Time zone names print as the offset (`+09`), or `UTC` at offset zero:
//! ShardForge has no table of zone abbreviations (PostgreSQL prints `JST`).

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{plan_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, InputError};

const MONTHS: [&str; 12] = [
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
const DAYS: [&str; 7] = [
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
const JULIAN_OFFSET: i64 = 1_721_425;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Capitalized,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `YYYY`, `YYY`, `YY`, `Y`: the last n digits of the year.
    Year(u8),
    IsoYear,
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
enum Node {
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
    ("HH24", Field::Hour24, false),
    ("HH12", Field::Hour12, false),
    ("HH", Field::Hour12, false),
    ("MI", Field::Minute, false),
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
    ("IYYY", Field::IsoYear, false),
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
    ("WW", Field::Week, false),
    ("Q", Field::Quarter, false),
    ("J", Field::Julian, false),
    ("CC", Field::Century, false),
    ("TZ", Field::Zone { case: Case::Upper }, true),
    ("tz", Field::Zone { case: Case::Lower }, true),
    ("OF", Field::Offset, false),
];

/// Reads a date/time template.
fn parse_template(template: &str) -> Vec<Node> {
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
        let after_fm = strip_prefix_ignore_case(after_fm, "FX").unwrap_or(after_fm);
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
                nodes.push(Node::Field {
                    field: *field,
                    fill,
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

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
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

fn ordinal_suffix(n: i64, case: Case) -> String {
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
        let hour12 = |h: u32| if h % 12 == 0 { 12 } else { h % 12 };
        let (text, value) = match field {
            Field::Year(digits) => {
                let year = i64::from(at.year());
                let value = match digits {
                    4 => year,
                    n => year % 10i64.pow(u32::from(n)),
                };
                (number(value, usize::from(digits)), Some(value))
            }
            Field::IsoYear => {
                let y = i64::from(at.iso_week().year());
                (number(y, 4), Some(y))
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

/// `+09`, `-03:30`: PostgreSQL's `OF`.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    match minutes % 60 {
        0 => format!("{sign}{:02}", minutes / 60),
        m => format!("{sign}{:02}:{m:02}", minutes / 60),
    }
}

/// The session time zone of a call (`SET TIME ZONE`).
fn session_zone(config: &ConfigOptions) -> Tz {
    config
        .execution
        .time_zone
        .as_deref()
        .and_then(|zone| Tz::from_str(zone).ok())
        .unwrap_or_else(|| Tz::from_str("+00:00").expect("UTC parses"))
}

fn datetime_error(kind: InputError, message: String) -> datafusion::error::DataFusionError {
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
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let values = args.args[0].clone().into_array(args.number_rows)?;
        let templates = args.args[1].clone().into_array(args.number_rows)?;
        let templates = cast(&templates, &DataType::Utf8)?;
        let templates = templates.as_string::<i32>();
        let zone = session_zone(&args.config_options);
        let out: StringArray = match values.data_type() {
            DataType::Date32 | DataType::Timestamp(_, _) => {
                let moments = moments(&values, &zone)?;
                moments
                    .iter()
                    .zip(templates.iter())
                    .map(|(moment, template)| {
                        Some(format_moment(&parse_template(template?), moment.as_ref()?))
                    })
                    .collect()
            }
            _ => {
                let numbers = decimal_strings(&values)?;
                numbers
                    .iter()
                    .zip(templates.iter())
                    .map(|(number, template)| match (number, template) {
                        (Some(n), Some(t)) => format_number(n, t).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<DFResult<_>>()?
            }
        };
        let out: ArrayRef = Arc::new(out);
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            false => ColumnarValue::Array(out),
        })
    }
}

/// Each date or timestamp as the local time it prints as.
fn moments(values: &ArrayRef, zone: &Tz) -> DFResult<Vec<Option<Moment>>> {
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
                        Moment {
                            at: local.naive_local(),
                            offset: Some(local.offset().fix().local_minus_utc()),
                        }
                    }
                    false => Moment {
                        at: utc.naive_utc(),
                        offset: None,
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
            })
        })
        .collect())
}

/// Days from 0001-01-01 (day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Each number as decimal text (`-12.50`).
fn decimal_strings(values: &ArrayRef) -> DFResult<Vec<Option<String>>> {
    Ok(match values.data_type() {
        DataType::Float64 => values
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(|v| format!("{v}")))
            .collect(),
        DataType::Int64 => values
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect(),
        _ => {
            let text = cast(values, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        }
    })
}

/// A numeric template, read.
#[derive(Debug, Default)]
struct NumberTemplate {
    /// Digit positions before the decimal point, left to right: whether
    /// each is `0` (printed even when the number has no digit there).
    int: Vec<bool>,
    /// After how many integer positions a group separator comes.
    groups: Vec<usize>,
    /// Digit positions after the point: whether each is `0`.
    frac: Vec<bool>,
    fill: bool,
    sign: SignStyle,
    ordinal: Option<Case>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum SignStyle {
    /// `-` or a space before the first digit.
    #[default]
    Default,
    /// `S`: `-` or `+` before the first digit (or after the last).
    Always { trailing: bool },
    /// `MI`: `-` or a space after the number.
    Minus,
    /// `PR`: `<n>` for a negative number.
    Brackets,
}

fn parse_number_template(template: &str) -> DFResult<NumberTemplate> {
    let mut t = NumberTemplate::default();
    let mut point = false;
    let upper = template.to_uppercase();
    let mut rest = upper.as_str();
    while let Some(c) = rest.chars().next() {
        let word = |w: &str| rest.starts_with(w);
        let len = if word("FM") {
            t.fill = true;
            2
        } else if word("MI") {
            t.sign = SignStyle::Minus;
            2
        } else if word("PR") {
            t.sign = SignStyle::Brackets;
            2
        } else if word("TH") {
            t.ordinal = Some(match &template[template.len() - rest.len()..][..2] {
                "th" => Case::Lower,
                _ => Case::Upper,
            });
            2
        } else {
            match c {
                '9' | '0' => {
                    match point {
                        true => t.frac.push(c == '0'),
                        false => t.int.push(c == '0'),
                    }
                    1
                }
                '.' | 'D' => {
                    point = true;
                    1
                }
                ',' | 'G' => {
                    if !point {
                        t.groups.push(t.int.len());
                    }
                    1
                }
                'S' => {
                    t.sign = SignStyle::Always {
                        trailing: !t.int.is_empty() || !t.frac.is_empty(),
                    };
                    1
                }
                _ => {
                    return Err(Error::unsupported(format!(
                        "to_char template \"{template}\" (only 9 0 . D , G FM S MI PR TH are supported)"
                    ))
                    .into())
                }
            }
        };
        rest = &rest[len..];
    }
    Ok(t)
}

/// `to_char(number, template)`.
fn format_number(number: &str, template: &str) -> DFResult<String> {
    let t = parse_number_template(template)?;
    let (negative, int_digits, frac_digits) = round_digits(number, t.frac.len());
    let zero = int_digits.bytes().all(|b| b == b'0') && frac_digits.bytes().all(|b| b == b'0');
    let negative = negative && !zero;
    let overflow = int_digits.trim_start_matches('0').len() > t.int.len();
    // A zero integer part is not printed when there are decimals (`.50`).
    let int_digits = match int_digits.trim_start_matches('0') {
        "" if t.frac.is_empty() => "0",
        digits => digits,
    };
    let mut frac: String = match overflow {
        true => "#".repeat(t.frac.len()),
        false => frac_digits,
    };
    if t.fill && !overflow {
        // FM drops trailing zeros where the template has 9s.
        while frac.len() > t.frac.iter().rposition(|z| *z).map_or(0, |i| i + 1)
            && frac.ends_with('0')
        {
            frac.pop();
        }
    }
    // Integer positions right to left.
    let first_zero = t.int.iter().position(|z| *z).unwrap_or(t.int.len());
    let digits: Vec<char> = int_digits.chars().collect();
    let mut int = String::new();
    let mut leading = 0usize; // positions printed as padding
    for (i, _) in t.int.iter().enumerate() {
        let from_right = t.int.len() - 1 - i;
        let c = if overflow {
            Some('#')
        } else if from_right < digits.len() {
            Some(digits[digits.len() - 1 - from_right])
        } else if i >= first_zero {
            Some('0')
        } else {
            None
        };
        if t.groups.contains(&i) && i > 0 {
            match int.is_empty() {
                true => leading += 1,
                false => int.push(','),
            }
        }
        match c {
            Some(c) => int.push(c),
            None => leading += 1,
        }
    }
    if t.fill && int.is_empty() && frac.is_empty() {
        int.push('0');
    }
    let mut body = int;
    if !t.frac.is_empty() {
        body.push('.');
        body.push_str(&frac);
    }
    if let (Some(case), false) = (t.ordinal, overflow) {
        body.push_str(&ordinal_suffix(
            int_digits.parse::<i64>().unwrap_or(0),
            case,
        ));
    }
    let pad = match t.fill {
        true => String::new(),
        false => " ".repeat(leading),
    };
    Ok(match t.sign {
        SignStyle::Default => {
            let sign = match (negative, t.fill) {
                (true, _) => "-",
                (false, true) => "",
                (false, false) => " ",
            };
            format!("{pad}{sign}{body}")
        }
        SignStyle::Always { trailing: false } => {
            format!("{pad}{}{body}", if negative { '-' } else { '+' })
        }
        SignStyle::Always { trailing: true } => {
            format!("{pad}{body}{}", if negative { '-' } else { '+' })
        }
        SignStyle::Minus => {
            let sign = match (negative, t.fill) {
                (true, _) => "-",
                (false, true) => "",
                (false, false) => " ",
            };
            format!("{pad}{body}{sign}")
        }
        SignStyle::Brackets => match (negative, t.fill) {
            (true, _) => format!("{pad}<{body}>"),
            (false, true) => body,
            (false, false) => format!("{pad} {body} "),
        },
    })
}

/// A decimal text rounded half away from zero to `scale` decimals: its
/// sign, integer digits and exactly `scale` fraction digits.
fn round_digits(number: &str, scale: usize) -> (bool, String, String) {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = if int.is_empty() { "0" } else { int };
    let mut all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let keep = int.len() + scale;
    if all.len() > keep {
        let round_up = all[keep] >= b'5';
        all.truncate(keep);
        if round_up {
            let mut i = all.len();
            loop {
                if i == 0 {
                    all.insert(0, b'1');
                    break;
                }
                i -= 1;
                if all[i] == b'9' {
                    all[i] = b'0';
                } else {
                    all[i] += 1;
                    break;
                }
            }
        }
    } else {
        all.resize(keep, b'0');
    }
    let split = all.len() - scale;
    let text = String::from_utf8_lossy(&all).into_owned();
    (
        negative,
        text[..split].to_string(),
        text[split..].to_string(),
    )
}

// ------------------------------------------------- to_date, to_timestamp

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
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
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
                        let local = zone.from_local_datetime(&at).earliest()?;
                        Some(local.timestamp_micros())
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
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            false => ColumnarValue::Array(out),
        })
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
            Field::Year(4) | Field::IsoYear => {
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
            Field::Zone { .. } | Field::Offset => {
                return Err(Error::unsupported(format!(
                    "time zone fields in the template \"{template}\" of to_timestamp"
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

    fn moment(s: &str) -> Moment {
        Moment {
            at: NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap(),
            offset: None,
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

    #[test]
    fn numbers_print_as_postgresql_prints_them() {
        let cases = [
            ("0.5", "9999.99", "     .50"),
            ("0", "999", "   0"),
            ("-5", "9999", "   -5"),
            ("1234", "FM9999.99", "1234."),
            ("1234.5", "FM9999.99", "1234.5"),
            ("12345", "999", " ###"),
            ("-0.5", "9999.99", "    -.50"),
            ("5", "0009", " 0005"),
            ("5", "9099", "  005"),
            ("1234567.891", "9,999,999.99", " 1,234,567.89"),
            ("123", "9,999", "   123"),
            ("-12", "S999", " -12"),
            ("12", "S999", " +12"),
            ("-12", "999MI", " 12-"),
            ("12", "999MI", " 12 "),
            ("-12", "999PR", " <12>"),
            ("12", "FM999PR", "12"),
            ("12.5", "999D9", "  12.5"),
            ("12", "99th", " 12th"),
            ("0.05", "0.99", " 0.05"),
            ("-0.05", "FM0.00", "-0.05"),
            ("0", "FM9999", "0"),
            ("0.0", "FM9.99", "0."),
            ("0.5", "FM9.99", ".5"),
            ("0.001", "9.99", "  .00"),
            ("-0.4", "9", " 0"),
            ("99.99", "99.9", " ##.#"),
            ("-1234.5", "FM9,999.0", "-1,234.5"),
        ];
        for (number, template, want) in cases {
            assert_eq!(
                format_number(number, template).unwrap(),
                want,
                "{number} {template}"
            );
        }
    }

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
