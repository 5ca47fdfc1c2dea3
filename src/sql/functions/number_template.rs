//! `to_char(number, template)`: PostgreSQL's numeric templates (`9`, `0`,
//! `.`/`D`, `,`/`G`, `FM`, `S`, `MI`, `PR`, `TH`), rounding half away from
//! zero and printing `#` for a value too wide, as PostgreSQL does.

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::Result as DFResult;

use super::template::{ordinal_suffix, Case};
use crate::error::Error;

/// Each number as decimal text (`-12.50`).
pub(super) fn decimal_strings(values: &ArrayRef) -> DFResult<Vec<Option<String>>> {
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
pub(super) fn format_number(number: &str, template: &str) -> DFResult<String> {
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
    // The sign where it may be a space: none at all under FM.
    let minus = match (negative, t.fill) {
        (true, _) => "-",
        (false, true) => "",
        (false, false) => " ",
    };
    let plus_minus = if negative { '-' } else { '+' };
    Ok(match t.sign {
        SignStyle::Default => format!("{pad}{minus}{body}"),
        SignStyle::Always { trailing: false } => format!("{pad}{plus_minus}{body}"),
        SignStyle::Always { trailing: true } => format!("{pad}{body}{plus_minus}"),
        SignStyle::Minus => format!("{pad}{body}{minus}"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
