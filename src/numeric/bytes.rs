//! The value's two byte forms.
//!
//! **Sortable** (how ShardForge stores and moves a value): bytes that
//! compare as the values do, so a scan, a sort, `min` and `max` can order
//! them as bytes, followed by the display scale.
//!
//! ```text
//! kind (1) | exponent (4) | digit pairs .. | end (1) | scale (2)
//!            \________ finite, non-zero values only ________/
//! ```
//!
//! The kind orders the classes (-Infinity, negative, zero, positive,
//! Infinity, NaN). A finite non-zero value is `0.d1d2d3... x 10^exponent`
//! with its significant digits, trailing zeros dropped, two to a byte
//! (`pair + 1`, so 0 can end them); a negative value's exponent and digits
//! are inverted so that larger magnitudes sort first. The value part
//! (everything but the last two bytes, [`value_part`]) is the same for
//! `1.5` and `1.50`; the scale after it only breaks ties.
//!
//! **PostgreSQL's binary wire form** (`numeric_send` / `numeric_recv`):
//! base-10000 digits with a weight, a sign word and the display scale.

use num_bigint::BigInt;
use num_traits::{Signed, Zero};

use super::value::{decimal_digits, pow10, rescale, Numeric, Rounding, MAX_SCALE};
use crate::error::{Error, InputError, Result};

const NEGATIVE_INFINITY: u8 = 0x01;
const NEGATIVE: u8 = 0x02;
const ZERO: u8 = 0x03;
const POSITIVE: u8 = 0x04;
const INFINITY: u8 = 0x05;
const NAN: u8 = 0x06;
/// After a value's digit pairs (inverted for a negative value).
const DIGITS_END: u8 = 0x00;
/// The display scale's bytes after the value part.
const SCALE_BYTES: usize = 2;

/// The part of a sortable value that compares values, without the display
/// scale: equal for `1.5` and `1.50`.
pub fn value_part(sortable: &[u8]) -> &[u8] {
    &sortable[..sortable.len().saturating_sub(SCALE_BYTES)]
}

fn corrupt() -> Error {
    Error::Corrupt("a stored numeric value is malformed".into())
}

impl Numeric {
    /// The sortable form (module docs).
    pub fn to_sortable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let (unscaled, scale) = match self {
            Numeric::NegInfinity => (None, NEGATIVE_INFINITY),
            Numeric::Infinity => (None, INFINITY),
            Numeric::NaN => (None, NAN),
            Numeric::Finite { unscaled, .. } if unscaled.is_zero() => (None, ZERO),
            Numeric::Finite { unscaled, .. } if unscaled.is_negative() => {
                (Some(unscaled), NEGATIVE)
            }
            Numeric::Finite { unscaled, .. } => (Some(unscaled), POSITIVE),
        };
        out.push(scale);
        if let Some(unscaled) = unscaled {
            let digits = unscaled.magnitude().to_string();
            let significant = digits.trim_end_matches('0').as_bytes();
            let exponent = digits.len() as i64 - i64::from(self.scale());
            let start = out.len();
            out.extend_from_slice(&((exponent as i32 as u32) ^ 0x8000_0000).to_be_bytes());
            for pair in significant.chunks(2) {
                let high = pair[0] - b'0';
                let low = pair.get(1).map_or(0, |d| d - b'0');
                out.push(high * 10 + low + 1);
            }
            out.push(DIGITS_END);
            if unscaled.is_negative() {
                out[start..].iter_mut().for_each(|b| *b = !*b);
            }
        }
        out.extend_from_slice(&(self.scale() as u16).to_be_bytes());
        out
    }

    /// A value from its sortable form.
    pub fn from_sortable(bytes: &[u8]) -> Result<Numeric> {
        let (value, scale) = bytes
            .split_at_checked(bytes.len().wrapping_sub(SCALE_BYTES))
            .ok_or_else(corrupt)?;
        let scale = u32::from(u16::from_be_bytes([scale[0], scale[1]]));
        let (kind, rest) = value.split_first().ok_or_else(corrupt)?;
        let negative = match *kind {
            NEGATIVE_INFINITY => return Ok(Numeric::NegInfinity),
            INFINITY => return Ok(Numeric::Infinity),
            NAN => return Ok(Numeric::NaN),
            ZERO => return Ok(Numeric::finite(BigInt::zero(), scale)),
            NEGATIVE => true,
            POSITIVE => false,
            _ => return Err(corrupt()),
        };
        let plain: Vec<u8> = match negative {
            true => rest.iter().map(|b| !b).collect(),
            false => rest.to_vec(),
        };
        let (exponent, pairs) = plain.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let exponent = i64::from((u32::from_be_bytes(*exponent) ^ 0x8000_0000) as i32);
        let (end, pairs) = pairs.split_last().ok_or_else(corrupt)?;
        if *end != DIGITS_END || pairs.iter().any(|&p| !(1..=100).contains(&p)) {
            return Err(corrupt());
        }
        let mut digits = String::with_capacity(pairs.len() * 2);
        for pair in pairs {
            digits.push_str(&format!("{:02}", pair - 1));
        }
        let digits = digits.trim_end_matches('0');
        // 0.digits x 10^exponent at `scale` digits after the point.
        let shift = i64::from(scale) + exponent - digits.len() as i64;
        let mut unscaled: BigInt = digits.parse().map_err(|_| corrupt())?;
        unscaled *= pow10(u64::try_from(shift).map_err(|_| corrupt())?);
        Ok(Numeric::finite(
            if negative { -unscaled } else { unscaled },
            scale,
        ))
    }

    /// PostgreSQL's binary form (`numeric_send`).
    pub fn to_pg_binary(&self) -> Vec<u8> {
        let (sign, scale, words, weight): (u16, u16, Vec<i16>, i16) = match self {
            Numeric::NaN => (0xC000, 0, vec![], 0),
            // PostgreSQL 15 sends these with a display scale of 32.
            Numeric::Infinity => (0xD000, 0x20, vec![], 0),
            Numeric::NegInfinity => (0xF000, 0x20, vec![], 0),
            Numeric::Finite { unscaled, scale } => {
                let sign = if unscaled.is_negative() { 0x4000 } else { 0 };
                let (words, weight) = base_10000(unscaled, *scale);
                (sign, *scale as u16, words, weight)
            }
        };
        let mut out = Vec::with_capacity(8 + 2 * words.len());
        for field in [words.len() as u16, weight as u16, sign, scale] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        words
            .iter()
            .for_each(|w| out.extend_from_slice(&w.to_be_bytes()));
        out
    }

    /// A value from PostgreSQL's binary form (`numeric_recv`): digits past
    /// the display scale are dropped, as PostgreSQL drops them.
    pub fn from_pg_binary(bytes: &[u8]) -> Result<Numeric> {
        let bad = |what: &str| {
            Error::input(
                InputError::InvalidBinaryRepresentation,
                format!("invalid {what} in external \"numeric\" value"),
            )
        };
        let word = |i: usize| {
            bytes
                .get(2 * i..2 * i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| {
                    Error::input(
                        InputError::InvalidBinaryRepresentation,
                        "insufficient data left in message",
                    )
                })
        };
        let count = usize::from(word(0)?);
        let weight = i64::from(word(1)? as i16);
        let sign = word(2)?;
        let scale = u32::from(word(3)?);
        match sign {
            0xC000 => return Ok(Numeric::NaN),
            0xD000 => return Ok(Numeric::Infinity),
            0xF000 => return Ok(Numeric::NegInfinity),
            0x0000 | 0x4000 => {}
            _ => return Err(bad("sign")),
        }
        if scale > MAX_SCALE {
            return Err(bad("scale"));
        }
        let mut unscaled = BigInt::zero();
        for i in 0..count {
            let digit = word(4 + i)?;
            if digit >= 10_000 {
                return Err(bad("digit"));
            }
            unscaled = unscaled * 10_000 + digit;
        }
        // The digits are `count` words, the first of weight `weight`.
        let fraction_words = count as i64 - 1 - weight;
        let unscaled = match u32::try_from(fraction_words * 4) {
            Ok(fraction) => rescale(&unscaled, fraction, scale, Rounding::Truncate),
            Err(_) => unscaled * pow10(fraction_words.unsigned_abs() * 4) * pow10(scale.into()),
        };
        let unscaled = if sign == 0x4000 { -unscaled } else { unscaled };
        Numeric::finite(unscaled, scale).checked()
    }
}

/// A finite value's base-10000 digits without leading or trailing zero
/// words, and the weight of the first (PostgreSQL's `NumericVar`).
pub(super) fn base_10000(unscaled: &BigInt, scale: u32) -> (Vec<i16>, i16) {
    if unscaled.is_zero() {
        return (vec![], 0);
    }
    // Align the point on a word boundary, and the digits on words.
    let aligned_scale = scale.div_ceil(4) * 4;
    let magnitude = rescale(&unscaled.abs(), scale, aligned_scale, Rounding::Truncate);
    let digits = decimal_digits(&magnitude) as usize;
    let text = format!("{}{magnitude}", "0".repeat((4 - digits % 4) % 4));
    let mut words: Vec<i16> = text
        .as_bytes()
        .chunks(4)
        .map(|w| w.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let weight = words.len() as i64 - 1 - i64::from(aligned_scale / 4);
    while words.last() == Some(&0) {
        words.pop();
    }
    (words, weight as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Numeric {
        Numeric::parse(text).unwrap()
    }

    #[test]
    fn sortable_bytes_order_as_values_and_keep_the_scale() {
        let ordered = [
            "-Infinity",
            "-1e20",
            "-12.5",
            "-12.45",
            "-1.5",
            "-1.50",
            "-0.001",
            "0",
            "0.00",
            "0.0010",
            "1",
            "1.5",
            "1.53",
            "9.9",
            "10",
            "12345678901234567890.123456789012345",
            "1e100",
            "Infinity",
            "NaN",
        ];
        let encoded: Vec<Vec<u8>> = ordered.iter().map(|t| n(t).to_sortable()).collect();
        for (text, bytes) in ordered.iter().zip(&encoded) {
            let back = Numeric::from_sortable(bytes).unwrap();
            assert_eq!(back.to_string(), n(text).to_string(), "{text}");
        }
        for (i, pair) in encoded.windows(2).enumerate() {
            let (a, b) = (value_part(&pair[0]), value_part(&pair[1]));
            let want = n(ordered[i]).cmp(&n(ordered[i + 1]));
            assert_eq!(a.cmp(b), want, "{} vs {}", ordered[i], ordered[i + 1]);
            assert!(pair[0] <= pair[1], "{} vs {}", ordered[i], ordered[i + 1]);
        }
        assert_eq!(
            value_part(&n("1.5").to_sortable()),
            value_part(&n("1.500").to_sortable())
        );
        assert!(Numeric::from_sortable(&[0x04, 1]).is_err());
    }

    #[test]
    fn binary_form_is_postgresql_s() {
        let hex = |v: &Numeric| {
            v.to_pg_binary()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        };
        for (text, want) in [
            ("-12345.678", "000300014000000300010929 1A7C"),
            ("0.0001", "0001FFFF000000040001"),
            ("1e20", "00010005000000000001"),
            ("0.00", "0000000000000002"),
            ("NaN", "00000000C0000000"),
            ("Infinity", "00000000D0000020"),
        ] {
            let want = want.replace(' ', "");
            assert_eq!(hex(&n(text)), want, "{text}");
            let back = Numeric::from_pg_binary(&n(text).to_pg_binary()).unwrap();
            assert_eq!(back.to_string(), n(text).to_string());
        }
        // Digits past the display scale are dropped.
        let mut bytes = n("1.2345").to_pg_binary();
        bytes[7] = 2;
        assert_eq!(Numeric::from_pg_binary(&bytes).unwrap().to_string(), "1.23");
        bytes[4] = 0x12;
        assert!(Numeric::from_pg_binary(&bytes).is_err());
        assert!(Numeric::from_pg_binary(&[0, 1, 0, 0]).is_err());
    }
}
