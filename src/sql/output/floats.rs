//! `float4out` / `float8out` with the default `extra_float_digits = 1`: the
//! shortest digits that read back as the same value, in plain form when the
//! decimal exponent is in `-4 .. digits`, otherwise as `1.5e+20`.
//!
//! Rust's shortest digits (`{:e}`) are PostgreSQL's (both are Ryu-exact)
//! except at two kinds of tie:
//! - Rust may name a decimal exactly halfway to the next float, which reads
//!   back only because ties go to the even float (`1234567936::float4` as
//!   `1.234568e9`). PostgreSQL never rests on a tie and prints the next
//!   longer digits (`1.2345679e+09`) ([`untied`]).
//! - When two decimals of the shortest length read back and the value is
//!   exactly halfway between them (`1428571428571429.25`), Rust takes the
//!   upper (`1.4285714285714293e15`), PostgreSQL the even one
//!   (`1.4285714285714292e+15`): the value rounded to that many digits
//!   ([`nearest`]).

use num_bigint::BigInt;

/// Significant digits past which PostgreSQL switches to exponent form.
const FLOAT8_DIGITS: i32 = 15;
const FLOAT4_DIGITS: i32 = 6;

pub(super) fn float4(value: f32) -> String {
    let neighbours = [value.abs().next_down(), value.abs().next_up()].map(f64::from);
    let shortest = nearest(
        format!("{value:e}"),
        |decimals| format!("{value:.decimals$e}"),
        |digits| digits.parse::<f32>() == Ok(value),
    );
    let scientific = untied(shortest, f64::from(value), neighbours, |decimals| {
        format!("{value:.decimals$e}")
    });
    float(f64::from(value), &scientific, FLOAT4_DIGITS)
}

pub(super) fn float8(value: f64) -> String {
    let neighbours = [value.abs().next_down(), value.abs().next_up()];
    let shortest = nearest(
        format!("{value:e}"),
        |decimals| format!("{value:.decimals$e}"),
        |digits| digits.parse::<f64>() == Ok(value),
    );
    let scientific = untied(shortest, value, neighbours, |decimals| {
        format!("{value:.decimals$e}")
    });
    float(value, &scientific, FLOAT8_DIGITS)
}

/// `shortest`, or when it is halfway between `value` and one of its
/// `neighbours` (of `|value|`), the first longer digits (`longer(decimals)`
/// after the point) that are not; 17 significant digits always suffice.
fn untied(
    shortest: String,
    value: f64,
    neighbours: [f64; 2],
    longer: impl Fn(usize) -> String,
) -> String {
    let halfway = |digits: &str| {
        neighbours
            .iter()
            .any(|&next| next.is_finite() && next > 0.0 && at_midpoint(digits, value.abs(), next))
    };
    if !value.is_finite() || !halfway(&shortest) {
        return shortest;
    }
    (significant(&shortest)..=16)
        .map(longer)
        .find(|digits| !halfway(digits))
        .unwrap_or(shortest)
}

/// `shortest`, or the value rounded to as many digits (`rounded(decimals)`
/// after the point) where that differs and reads back as the value.
fn nearest(
    shortest: String,
    rounded: impl Fn(usize) -> String,
    reads_back: impl Fn(&str) -> bool,
) -> String {
    let candidate = rounded(significant(&shortest).saturating_sub(1));
    match candidate != shortest && reads_back(&candidate) {
        true => candidate,
        false => shortest,
    }
}

/// The count of significant digits of `[-]d.ddde[-]x`.
fn significant(digits: &str) -> usize {
    digits
        .split('e')
        .next()
        .map_or(0, |m| m.chars().filter(char::is_ascii_digit).count())
}

/// Whether the decimal `digits` (`[-]d.ddde[-]x`, sign ignored) is exactly
/// `(a + b) / 2`, compared as exact integers.
fn at_midpoint(digits: &str, a: f64, b: f64) -> bool {
    let Some((mantissa, exponent)) = digits.trim_start_matches('-').split_once('e') else {
        return false;
    };
    let Ok(mut exponent) = exponent.parse::<i32>() else {
        return false;
    };
    if let Some((_, fraction)) = mantissa.split_once('.') {
        exponent -= fraction.len() as i32;
    }
    let Ok(mut decimal) = mantissa.replace('.', "").parse::<BigInt>() else {
        return false;
    };
    // a + b = sum * 2^power, so the midpoint is sum * 2^(power - 1).
    let ((ma, ea), (mb, eb)) = (binary(a), binary(b));
    let power = ea.min(eb);
    let mut midpoint = (BigInt::from(ma) << (ea - power)) + (BigInt::from(mb) << (eb - power));
    let power = power - 1;
    if exponent >= 0 {
        decimal *= BigInt::from(10).pow(exponent as u32);
    } else {
        midpoint *= BigInt::from(10).pow(exponent.unsigned_abs());
    }
    if power >= 0 {
        midpoint <<= power;
    } else {
        decimal <<= power.unsigned_abs();
    }
    decimal == midpoint
}

/// A finite, non-negative f64 as `mantissa * 2^exponent`.
fn binary(value: f64) -> (u64, i32) {
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, exponent - 1075)
    }
}

/// The text of a finite or special float from its scientific digits.
fn float(value: f64, scientific: &str, digits: i32) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits_only: String = mantissa.chars().filter(|c| *c != '.').collect();
    if exponent < -4 || exponent >= digits {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits_only}", "0".repeat((-point) as usize))
    } else if point as usize >= digits_only.len() {
        format!(
            "{sign}{digits_only}{}",
            "0".repeat(point as usize - digits_only.len())
        )
    } else {
        let (int, frac) = digits_only.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgresql() {
        // Expected values from PostgreSQL 15 (`SELECT x::float8`).
        assert_eq!(float8(0.1), "0.1");
        assert_eq!(float8(1.0), "1");
        assert_eq!(float8(-2.5), "-2.5");
        assert_eq!(float8(100.0), "100");
        assert_eq!(float8(0.0001), "0.0001");
        assert_eq!(float8(0.00001), "1e-05");
        assert_eq!(float8(1e15), "1e+15");
        assert_eq!(float8(123456789012345.0), "123456789012345");
        assert_eq!(float8(1.5e300), "1.5e+300");
        assert_eq!(float8(f64::INFINITY), "Infinity");
        assert_eq!(float8(f64::NAN), "NaN");
        assert_eq!(float4(1.1), "1.1");
        assert_eq!(float4(1e6), "1e+06");
        assert_eq!(float4(1234567936.0), "1.2345679e+09");
        assert_eq!(float4(-1234567936.0), "-1.2345679e+09");
        assert_eq!(float4(16777216.0), "1.6777216e+07");
        assert_eq!(float4(1.2345678), "1.2345678");
        assert_eq!(float8(63091483074331904.0), "6.3091483074331904e+16");
        assert_eq!(float8(6.904404091254583e18), "6.904404091254583e+18");
        assert_eq!(float4(0.0), "0");
        assert_eq!(float4(f32::MAX), "3.4028235e+38");
        assert_eq!(float8(f64::MIN_POSITIVE / 4.0), "5.562684646268003e-309");
        // Halfway between two shortest decimals (1428571428571429.25,
        // exactly): the even one.
        let tie = 5714285714285717.0 / 4.0;
        assert_eq!(float8(tie), "1.4285714285714292e+15");
        assert_eq!(float8(-tie), "-1.4285714285714292e+15");
    }
}
