//! Arithmetic with PostgreSQL's result scales (`numeric.c`):
//!
//! - `+` and `-` keep the larger scale of the two, `*` the sum of both
//!   (at most [`MAX_SCALE`]); all three are exact.
//! - `/` keeps at least [`MIN_SIG_DIGITS`] significant digits and never
//!   fewer than either input shows ([`division_scale`]): `1 / 3` is
//!   `0.33333333333333333333`, `10 / 4` is `2.5000000000000000`.
//! - `sqrt` the same way from the square root's size.
//! - Every computed result is rounded half away from zero at its scale.
//!
//! NaN in gives NaN out; the infinities follow IEEE arithmetic where it
//! has an answer and give NaN where it has none (`Infinity - Infinity`),
//! but anything divided by zero is 22012, as in PostgreSQL.

use std::cmp::Ordering;

use num_bigint::BigInt;
use num_traits::{Signed, Zero};

use super::value::{
    decimal_digits, pow10, rescale, Numeric, Rounding, MAX_INTEGER_DIGITS, MAX_SCALE,
};
use crate::error::{Error, InputError, Result};

/// The least significant digits a quotient or root keeps (PostgreSQL's
/// NUMERIC_MIN_SIG_DIGITS).
pub const MIN_SIG_DIGITS: i64 = 16;
/// The largest scale a computed result gets (NUMERIC_MAX_DISPLAY_SCALE).
pub const MAX_DISPLAY_SCALE: i64 = 1000;
/// PostgreSQL keeps a value as base-10000 digits; its scale rules count
/// in them.
const DIGITS_PER_WORD: i64 = 4;

use Numeric::{Finite, Infinity, NaN, NegInfinity};

/// -1, 0 or 1 for a value's sign (NaN counts as 0; callers test it first).
fn signum(value: &Numeric) -> i32 {
    match value {
        Finite { unscaled, .. } => unscaled.signum().try_into().unwrap_or(0),
        Infinity => 1,
        NegInfinity => -1,
        NaN => 0,
    }
}

/// An infinity of `sign`'s sign.
fn infinity(sign: i32) -> Numeric {
    if sign < 0 {
        NegInfinity
    } else {
        Infinity
    }
}

fn division_by_zero() -> Error {
    Error::input(InputError::DivisionByZero, "division by zero")
}

/// Both values' unscaled integers at the larger of their scales.
fn aligned(a: &BigInt, sa: u32, b: &BigInt, sb: u32) -> (BigInt, BigInt, u32) {
    let scale = sa.max(sb);
    (
        rescale(a, sa, scale, Rounding::Truncate),
        rescale(b, sb, scale, Rounding::Truncate),
        scale,
    )
}

impl Numeric {
    pub fn add(&self, other: &Numeric) -> Result<Numeric> {
        match (self, other) {
            (NaN, _) | (_, NaN) => Ok(NaN),
            (Infinity, NegInfinity) | (NegInfinity, Infinity) => Ok(NaN),
            (Infinity | NegInfinity, _) => Ok(self.clone()),
            (_, Infinity | NegInfinity) => Ok(other.clone()),
            (
                Finite {
                    unscaled: a,
                    scale: sa,
                },
                Finite {
                    unscaled: b,
                    scale: sb,
                },
            ) => {
                let (a, b, scale) = aligned(a, *sa, b, *sb);
                Numeric::finite(a + b, scale).checked()
            }
        }
    }

    pub fn sub(&self, other: &Numeric) -> Result<Numeric> {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Numeric) -> Result<Numeric> {
        match (self, other) {
            (NaN, _) | (_, NaN) => Ok(NaN),
            (Infinity | NegInfinity, _) | (_, Infinity | NegInfinity) => {
                match signum(self) * signum(other) {
                    0 => Ok(NaN),
                    sign => Ok(infinity(sign)),
                }
            }
            (
                Finite {
                    unscaled: a,
                    scale: sa,
                },
                Finite {
                    unscaled: b,
                    scale: sb,
                },
            ) => {
                let product = Numeric::finite(a * b, sa + sb);
                match sa + sb > MAX_SCALE {
                    true => product.rescaled(MAX_SCALE),
                    false => product,
                }
                .checked()
            }
        }
    }

    /// `self / other` at PostgreSQL's scale ([`division_scale`]).
    pub fn div(&self, other: &Numeric) -> Result<Numeric> {
        let scale = match (self, other) {
            (NaN, _) | (_, NaN) => return Ok(NaN),
            (Infinity | NegInfinity, Infinity | NegInfinity) => return Ok(NaN),
            (Infinity | NegInfinity, _) => {
                return match signum(other) {
                    0 => Err(division_by_zero()),
                    sign => Ok(infinity(signum(self) * sign)),
                }
            }
            // A finite value over an infinite one.
            (_, Infinity | NegInfinity) => return Ok(Numeric::zero()),
            _ => division_scale(self, other)?,
        };
        self.quotient(other, scale, Rounding::HalfAway)
    }

    /// `div(self, other)`: the quotient truncated to an integer.
    pub fn div_trunc(&self, other: &Numeric) -> Result<Numeric> {
        match (self, other) {
            (Finite { .. }, Finite { .. }) => self.quotient(other, 0, Rounding::Truncate),
            _ => self.div(other)?.truncated(0),
        }
    }

    /// `self % other`: `self - trunc(self / other) * other`, at the larger
    /// scale of the two.
    pub fn modulo(&self, other: &Numeric) -> Result<Numeric> {
        match (self, other) {
            (NaN, _) | (_, NaN) => Ok(NaN),
            (Infinity | NegInfinity, _) if other.is_zero() => Err(division_by_zero()),
            (Infinity | NegInfinity, _) => Ok(NaN),
            (_, Infinity | NegInfinity) => Ok(self.clone()),
            (
                Finite {
                    unscaled: a,
                    scale: sa,
                },
                Finite {
                    unscaled: b,
                    scale: sb,
                },
            ) => {
                if b.is_zero() {
                    return Err(division_by_zero());
                }
                // Truncating integer remainder of the aligned values is
                // exactly that, with the dividend's sign.
                let (a, b, scale) = aligned(a, *sa, b, *sb);
                Ok(Numeric::finite(a % b, scale))
            }
        }
    }

    /// Both finite: `self / other` at `scale`, rounded as asked.
    pub(super) fn quotient(
        &self,
        other: &Numeric,
        scale: u32,
        rounding: Rounding,
    ) -> Result<Numeric> {
        let (
            Finite {
                unscaled: a,
                scale: sa,
            },
            Finite {
                unscaled: b,
                scale: sb,
            },
        ) = (self, other)
        else {
            return Ok(NaN);
        };
        if b.is_zero() {
            return Err(division_by_zero());
        }
        // a/10^sa / (b/10^sb) * 10^scale = a * 10^(sb + scale) / (b * 10^sa)
        let numerator = a * pow10(u64::from(*sb + scale));
        let denominator = b * pow10(u64::from(*sa));
        let (quotient, remainder) = (&numerator / &denominator, &numerator % &denominator);
        let quotient = match rounding {
            Rounding::HalfAway if remainder.abs() * 2 >= denominator.abs() => {
                quotient + numerator.signum() * denominator.signum()
            }
            _ => quotient,
        };
        Numeric::finite(quotient, scale).checked()
    }

    pub fn neg(&self) -> Numeric {
        match self {
            Finite { unscaled, scale } => Numeric::finite(-unscaled, *scale),
            Infinity => NegInfinity,
            NegInfinity => Infinity,
            NaN => NaN,
        }
    }

    pub fn abs(&self) -> Numeric {
        match self.is_negative() {
            true => self.neg(),
            false => self.clone(),
        }
    }

    /// `sign(x)`: -1, 0 or 1 (NaN for NaN).
    pub fn sign(&self) -> Numeric {
        match self {
            NaN => NaN,
            _ => Numeric::from_i64(signum(self).into()),
        }
    }

    /// `round(x, digits)`: half away from zero at `digits` after the point
    /// (before it when negative, then shown without a fraction).
    pub fn round(&self, digits: i64) -> Result<Numeric> {
        self.to_digits(digits, Rounding::HalfAway)
    }

    /// `trunc(x, digits)`.
    pub fn truncated(&self, digits: i64) -> Result<Numeric> {
        self.to_digits(digits, Rounding::Truncate)
    }

    fn to_digits(&self, digits: i64, rounding: Rounding) -> Result<Numeric> {
        let Finite { unscaled, scale } = self else {
            return Ok(self.clone());
        };
        // PostgreSQL 15.18's bounds: past them the answer cannot change.
        let digits = digits.clamp(-(MAX_INTEGER_DIGITS as i64) - 1, i64::from(MAX_SCALE));
        match u32::try_from(digits) {
            Ok(to) => Numeric::finite(rescale(unscaled, *scale, to, rounding), to).checked(),
            Err(_) => {
                // To a multiple of 10^-digits: the integer digits below it go too.
                let drop = digits.unsigned_abs() as u32;
                let kept = rescale(unscaled, *scale + drop, 0, rounding);
                Numeric::finite(kept * pow10(u64::from(drop)), 0).checked()
            }
        }
    }

    /// `ceil(x)`: the least integer not below it.
    pub fn ceil(&self) -> Numeric {
        self.to_integer(Ordering::Greater)
    }

    /// `floor(x)`: the greatest integer not above it.
    pub fn floor(&self) -> Numeric {
        self.to_integer(Ordering::Less)
    }

    fn to_integer(&self, direction: Ordering) -> Numeric {
        let Finite { unscaled, scale } = self else {
            return self.clone();
        };
        let truncated = rescale(unscaled, *scale, 0, Rounding::Truncate);
        let exact = rescale(&truncated, 0, *scale, Rounding::Truncate) == *unscaled;
        let step = match direction {
            Ordering::Greater if !exact && unscaled.is_positive() => 1,
            Ordering::Less if !exact && unscaled.is_negative() => -1,
            _ => 0,
        };
        Numeric::finite(truncated + step, 0)
    }

    /// `sqrt(x)`, with PostgreSQL's scale: at least [`MIN_SIG_DIGITS`]
    /// significant digits, never fewer than the input's scale.
    pub fn sqrt(&self) -> Result<Numeric> {
        let negative = || {
            Error::input(
                InputError::InvalidArgumentForPowerFunction,
                "cannot take square root of a negative number",
            )
        };
        let Finite { unscaled, scale } = self else {
            return match self {
                NegInfinity => Err(negative()),
                special => Ok(special.clone()),
            };
        };
        if unscaled.is_negative() {
            return Err(negative());
        }
        // The root's decimal weight, from the input's base-10000 weight.
        let root_weight = (word_weight(self) + 1) * DIGITS_PER_WORD / 2 - 1;
        self.sqrt_to(result_scale(MIN_SIG_DIGITS - root_weight, &[*scale]))
    }

    /// The square root rounded half away from zero at `to` digits after
    /// the point (`stddev` takes it at its variance's scale).
    pub fn sqrt_to(&self, to: u32) -> Result<Numeric> {
        let Finite { unscaled, scale } = self else {
            return self.sqrt();
        };
        if unscaled.is_negative() {
            return self.sqrt();
        }
        // floor(sqrt(x) * 10^(to + 1)), then rounded on its last digit: the
        // digits below it only ever make the root larger, so this is the
        // correctly rounded root.
        let shift = 2 * (i64::from(to) + 1) - i64::from(*scale);
        let radicand = match u64::try_from(shift) {
            Ok(up) => unscaled * pow10(up),
            Err(_) => unscaled / pow10(shift.unsigned_abs()),
        };
        let root = radicand.sqrt();
        let (root, last) = (&root / 10, &root % 10);
        let root = if last >= BigInt::from(5) {
            root + 1
        } else {
            root
        };
        Numeric::finite(root, to).checked()
    }
}

/// A result scale: `wanted`, but at least each of `inputs`, within
/// `0..=MAX_DISPLAY_SCALE`.
fn result_scale(wanted: i64, inputs: &[u32]) -> u32 {
    let at_least = inputs.iter().copied().max().unwrap_or(0);
    wanted.max(at_least.into()).clamp(0, MAX_DISPLAY_SCALE) as u32
}

/// The weight of a value's first base-10000 digit (PostgreSQL's `weight`:
/// 0 for 1 to 9999, 1 for 10000 up, -1 for 0.0001 to 0.9999), and that
/// digit; (0, 0) for zero.
fn first_word(value: &Numeric) -> (i64, u32) {
    let Finite { unscaled, scale } = value else {
        return (0, 0);
    };
    if unscaled.is_zero() {
        return (0, 0);
    }
    // The decimal exponent of the first digit, and the word holding it.
    let exponent = decimal_digits(unscaled) as i64 - 1 - i64::from(*scale);
    let weight = exponent.div_euclid(DIGITS_PER_WORD);
    let shift = i64::from(*scale) + weight * DIGITS_PER_WORD;
    let magnitude = unscaled.abs();
    let word = match u64::try_from(shift) {
        Ok(down) => magnitude / pow10(down),
        Err(_) => magnitude * pow10(shift.unsigned_abs()),
    };
    (weight, word.try_into().unwrap_or(0))
}

fn word_weight(value: &Numeric) -> i64 {
    first_word(value).0
}

/// PostgreSQL's `select_div_scale`: enough digits for [`MIN_SIG_DIGITS`]
/// significant ones of the quotient (its size estimated from the first
/// base-10000 digits of both), and no fewer than either input shows.
fn division_scale(dividend: &Numeric, divisor: &Numeric) -> Result<u32> {
    if divisor.is_zero() {
        return Err(division_by_zero());
    }
    let (weight1, first1) = first_word(dividend);
    let (weight2, first2) = first_word(divisor);
    let mut quotient_weight = weight1 - weight2;
    if first1 <= first2 {
        quotient_weight -= 1;
    }
    Ok(result_scale(
        MIN_SIG_DIGITS - quotient_weight * DIGITS_PER_WORD,
        &[dividend.scale(), divisor.scale()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Numeric {
        Numeric::parse(text).unwrap()
    }

    fn check(op: fn(&Numeric, &Numeric) -> Result<Numeric>, cases: &[(&str, &str, &str)]) {
        for (a, b, want) in cases {
            let got = op(&n(a), &n(b))
                .map(|v| v.to_string())
                .unwrap_or_else(|e| e.to_string());
            assert_eq!(&got, want, "{a} op {b}");
        }
    }

    #[test]
    fn adds_subtracts_and_multiplies_exactly() {
        check(
            Numeric::add,
            &[
                ("1.5", "2.25", "3.75"),
                ("2.50", "100", "102.50"),
                ("0.000000000001", "1.25", "1.250000000001"),
                ("Infinity", "-Infinity", "NaN"),
                ("Infinity", "5", "Infinity"),
                ("NaN", "5", "NaN"),
            ],
        );
        check(
            Numeric::sub,
            &[("1", "1.000", "0.000"), ("-Infinity", "-Infinity", "NaN")],
        );
        check(
            Numeric::mul,
            &[
                ("2.50", "2", "5.00"),
                (
                    "12345678901234567890.123456789012345",
                    "2",
                    "24691357802469135780.246913578024690",
                ),
                ("Infinity", "0", "NaN"),
                ("-Infinity", "-2", "Infinity"),
            ],
        );
    }

    #[test]
    fn divides_with_postgresql_digits() {
        check(
            Numeric::div,
            &[
                ("1", "3", "0.33333333333333333333"),
                ("10", "4", "2.5000000000000000"),
                ("2.50", "3", "0.83333333333333333333"),
                ("100", "3", "33.3333333333333333"),
                ("0.000000000001", "3", "0.00000000000033333333333333333333"),
                (
                    "12345678901234567890.123456789012345",
                    "3",
                    "4115226300411522630.041152263004115",
                ),
                ("3.00", "3", "1.00000000000000000000"),
                ("-7", "2", "-3.5000000000000000"),
                ("2", "3", "0.66666666666666666667"),
                ("1", "0", "division by zero"),
                ("Infinity", "0", "division by zero"),
                ("Infinity", "-2", "-Infinity"),
                ("5", "Infinity", "0"),
            ],
        );
        check(
            Numeric::div_trunc,
            &[("7.5", "2", "3"), ("-7.5", "2", "-3")],
        );
        check(
            Numeric::modulo,
            &[
                ("-7.5", "2", "-1.5"),
                ("7", "0.3", "0.1"),
                ("5", "0", "division by zero"),
                ("Infinity", "2", "NaN"),
                ("5", "Infinity", "5"),
            ],
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(n("2.5").round(0).unwrap().to_string(), "3");
        assert_eq!(n("-2.5").round(0).unwrap().to_string(), "-3");
        assert_eq!(n("2.5").round(5).unwrap().to_string(), "2.50000");
        assert_eq!(n("1234.5678").round(-2).unwrap().to_string(), "1200");
        assert_eq!(n("1250").round(-2).unwrap().to_string(), "1300");
        assert_eq!(n("1234.5678").truncated(2).unwrap().to_string(), "1234.56");
        assert_eq!(n("-1234.5678").truncated(-2).unwrap().to_string(), "-1200");
        assert_eq!(n("-1.5").ceil().to_string(), "-1");
        assert_eq!(n("-1.5").floor().to_string(), "-2");
        assert_eq!(n("1.000").ceil().to_string(), "1");
        assert_eq!(n("-0.3").sign().to_string(), "-1");
    }

    #[test]
    fn square_roots_with_postgresql_digits() {
        for (x, want) in [("2", "1.414213562373095"), ("100.00", "10.000000000000000")] {
            assert_eq!(n(x).sqrt().unwrap().to_string(), want, "sqrt({x})");
        }
        assert!(n("-1").sqrt().is_err());
    }
}
