//! The value: an integer of any size and the count of its digits after
//! the point, which is also how many it shows (PostgreSQL's display scale),
//! or one of the three special values. Reading and writing its text form,
//! comparing, and converting from and to the fixed-size types.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, Sign};
use num_traits::{Signed, ToPrimitive, Zero};

use crate::error::{Error, ErrorFields, InputError, Result};

/// The most digits after the point a value can hold (PostgreSQL's
/// NUMERIC_DSCALE_MAX).
pub const MAX_SCALE: u32 = 0x3FFF;
/// The most digits before the point (PostgreSQL's 131072: a weight of
/// 0x7FFF base-10000 digits).
pub const MAX_INTEGER_DIGITS: u64 = 131_072;

/// A PostgreSQL `numeric` value.
///
/// PostgreSQL orders NaN above every other value and counts it equal to
/// itself (so it sorts, groups and indexes); `Ord` here does the same.
#[derive(Clone, Debug)]
pub enum Numeric {
    /// `unscaled / 10^scale`, shown with `scale` digits after the point:
    /// `2.50` is (250, 2), `2.5` is (25, 1), equal but shown apart.
    Finite {
        unscaled: BigInt,
        scale: u32,
    },
    Infinity,
    NegInfinity,
    NaN,
}

impl Numeric {
    pub fn zero() -> Self {
        Self::finite(BigInt::zero(), 0)
    }

    pub fn finite(unscaled: BigInt, scale: u32) -> Self {
        Numeric::Finite { unscaled, scale }
    }

    pub fn from_i64(value: i64) -> Self {
        Self::finite(BigInt::from(value), 0)
    }

    /// An Arrow decimal's value: `unscaled` at `scale`. A negative scale
    /// (Arrow allows it; ShardForge makes none) is multiplied out.
    pub fn from_scaled(unscaled: impl Into<BigInt>, scale: i8) -> Self {
        let unscaled = unscaled.into();
        match u32::try_from(scale) {
            Ok(scale) => Self::finite(unscaled, scale),
            Err(_) => Self::finite(unscaled * pow10(scale.unsigned_abs().into()), 0),
        }
    }

    /// A `float8` (or, with `digits` 6, a `float4`) as PostgreSQL 15 turns
    /// one into `numeric`: its decimal form rounded to that many
    /// significant digits (DBL_DIG 15, FLT_DIG 6), so `0.1::float8` is
    /// `0.1`, not the binary fraction's 55 digits.
    pub fn from_float(value: f64, digits: usize) -> Self {
        if value.is_nan() {
            return Numeric::NaN;
        }
        if value.is_infinite() {
            return if value > 0.0 {
                Numeric::Infinity
            } else {
                Numeric::NegInfinity
            };
        }
        // `{:.*e}` rounds to the digits asked (as C's %.*g does) and never
        // fails to parse back.
        let text = format!("{:.*e}", digits.saturating_sub(1), value);
        let parsed = Self::parse(&text).unwrap_or_else(|_| Self::zero());
        parsed.trimmed()
    }

    /// PostgreSQL's `numeric_in`: surrounding spaces, a sign, digits with
    /// an optional point, an optional exponent; or `NaN`, `Infinity`,
    /// `inf` (any case, the infinities with a sign). The scale is the
    /// digits after the point less the exponent (`1.5e3` is `1500`,
    /// `1e-3` is `0.001`).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::input(
                InputError::InvalidText,
                format!("invalid input syntax for type numeric: \"{text}\""),
            )
        };
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let (negative, body) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, &trimmed[1..]),
            Some(b'+') => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
            return Ok(if negative {
                Numeric::NegInfinity
            } else {
                Numeric::Infinity
            });
        }
        if trimmed.eq_ignore_ascii_case("nan") {
            return Ok(Numeric::NaN);
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(at) => (&body[..at], Some(&body[at + 1..])),
            None => (body, None),
        };
        if mantissa.ends_with(|c: char| c.is_ascii_whitespace()) {
            return Err(invalid());
        }
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(invalid());
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                // Read as C's strtol reads it: spaces may come first.
                let e = e.trim_start_matches(|c: char| c.is_ascii_whitespace());
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !all_digits(digits) {
                    return Err(invalid());
                }
                // PostgreSQL refuses exponents past half of INT_MAX.
                e.parse::<i64>()
                    .ok()
                    .filter(|e| e.unsigned_abs() < (i32::MAX / 2) as u64)
                    .ok_or_else(overflow)?
            }
        };
        let mut unscaled: BigInt = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| invalid())?;
        let scale = fraction.len() as i64 - exponent;
        if negative {
            unscaled = -unscaled;
        }
        let value = if scale >= 0 {
            Self::finite(unscaled, u32::try_from(scale).map_err(|_| overflow())?)
        } else {
            Self::finite(unscaled * pow10(scale.unsigned_abs()), 0)
        };
        value.checked()
    }

    /// The value if it is within PostgreSQL's limits, else 22003.
    pub fn checked(self) -> Result<Self> {
        if let Numeric::Finite { unscaled, scale } = &self {
            if *scale > MAX_SCALE || integer_digits(unscaled, *scale) > MAX_INTEGER_DIGITS {
                return Err(overflow());
            }
        }
        Ok(self)
    }

    /// The value as an integer, if it is a finite one (`2.00` is 2; the
    /// scale does not matter).
    pub fn integral(&self) -> Option<BigInt> {
        let Numeric::Finite { unscaled, scale } = self else {
            return None;
        };
        let whole = rescale(unscaled, *scale, 0, Rounding::Truncate);
        (rescale(&whole, 0, *scale, Rounding::Truncate) == *unscaled).then_some(whole)
    }

    /// How many digits it has before the point (0 below 1 and for the
    /// special values).
    pub fn integer_digits(&self) -> u64 {
        match self {
            Numeric::Finite { unscaled, scale } => integer_digits(unscaled, *scale),
            _ => 0,
        }
    }

    /// The display scale (0 for the special values).
    pub fn scale(&self) -> u32 {
        match self {
            Numeric::Finite { scale, .. } => *scale,
            _ => 0,
        }
    }

    /// The same value shown with `scale` digits after the point, rounded
    /// half away from zero when that drops digits (PostgreSQL's
    /// `round_var`).
    pub fn rescaled(&self, scale: u32) -> Self {
        match self {
            Numeric::Finite {
                unscaled,
                scale: from,
            } => Self::finite(rescale(unscaled, *from, scale, Rounding::HalfAway), scale),
            special => special.clone(),
        }
    }

    /// The same value without trailing zeros after the point (`trim_scale`).
    pub fn trimmed(&self) -> Self {
        match self {
            Numeric::Finite { unscaled, scale } => {
                let (mut unscaled, mut scale) = (unscaled.clone(), *scale);
                let ten = BigInt::from(10);
                while scale > 0 && !unscaled.is_zero() && (&unscaled % &ten).is_zero() {
                    unscaled /= &ten;
                    scale -= 1;
                }
                if unscaled.is_zero() {
                    scale = 0;
                }
                Self::finite(unscaled, scale)
            }
            special => special.clone(),
        }
    }

    /// The value as an integer, rounded half away from zero as PostgreSQL
    /// casts it; `None` if it does not fit an `i64` (the caller names the
    /// type in its 22003). NaN and the infinities are 0A000.
    pub fn to_i64(&self) -> Result<Option<i64>> {
        match self {
            Numeric::Finite { unscaled, scale } => {
                Ok(rescale(unscaled, *scale, 0, Rounding::HalfAway).to_i64())
            }
            Numeric::NaN => Err(Error::unsupported("cannot convert NaN to integer")),
            _ => Err(Error::unsupported("cannot convert infinity to integer")),
        }
    }

    /// The nearest `f64` (PostgreSQL reads the value's text with strtod).
    pub fn to_f64(&self) -> f64 {
        match self {
            Numeric::Finite { .. } => self.to_string().parse().unwrap_or(f64::NAN),
            Numeric::Infinity => f64::INFINITY,
            Numeric::NegInfinity => f64::NEG_INFINITY,
            Numeric::NaN => f64::NAN,
        }
    }

    /// The unscaled integer at `scale` (rounded half away from zero), for
    /// an Arrow decimal of that scale; `None` for the special values.
    pub fn unscaled_at(&self, scale: u32) -> Option<BigInt> {
        match self {
            Numeric::Finite {
                unscaled,
                scale: from,
            } => Some(rescale(unscaled, *from, scale, Rounding::HalfAway)),
            _ => None,
        }
    }

    /// Coerced to `numeric(precision, scale)` as PostgreSQL's typmod does:
    /// rounded to `scale` digits, 22003 if it then has more than
    /// `precision - scale` digits before the point or is infinite.
    pub fn fit(&self, precision: u32, scale: u32) -> Result<Self> {
        match self {
            Numeric::NaN => Ok(Numeric::NaN),
            Numeric::Infinity | Numeric::NegInfinity => Err(field_overflow(format!(
                "A field with precision {precision}, scale {scale} cannot hold an infinite value."
            ))),
            Numeric::Finite { .. } => {
                let rounded = self.rescaled(scale);
                let Numeric::Finite { unscaled, .. } = &rounded else {
                    unreachable!()
                };
                let allowed = u64::from(precision.saturating_sub(scale));
                if !unscaled.is_zero() && integer_digits(unscaled, scale) > allowed {
                    return Err(too_large_for(precision, scale));
                }
                Ok(rounded)
            }
        }
    }

    pub fn is_negative(&self) -> bool {
        match self {
            Numeric::Finite { unscaled, .. } => unscaled.is_negative(),
            Numeric::NegInfinity => true,
            _ => false,
        }
    }

    pub fn is_zero(&self) -> bool {
        matches!(self, Numeric::Finite { unscaled, .. } if unscaled.is_zero())
    }

    /// Where the value sits in PostgreSQL's order of kinds.
    fn rank(&self) -> u8 {
        match self {
            Numeric::NegInfinity => 0,
            Numeric::Finite { .. } => 1,
            Numeric::Infinity => 2,
            Numeric::NaN => 3,
        }
    }
}

/// 22003 for a value past `numeric`'s limits.
pub(super) fn overflow() -> Error {
    Error::input(InputError::OutOfRange, "value overflows numeric format")
}

/// `10^n`.
pub(super) fn pow10(n: u64) -> BigInt {
    BigInt::from(10).pow(u32::try_from(n).unwrap_or(u32::MAX))
}

/// How the digits a rescale drops are rounded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rounding {
    /// Half away from zero (PostgreSQL's `round`, and every computed result).
    HalfAway,
    /// Towards zero (`trunc`).
    Truncate,
}

/// `unscaled / 10^from` as an unscaled integer at scale `to`.
pub(super) fn rescale(unscaled: &BigInt, from: u32, to: u32, rounding: Rounding) -> BigInt {
    if to >= from {
        return unscaled * pow10(u64::from(to - from));
    }
    let divisor = pow10(u64::from(from - to));
    let (quotient, remainder) = (unscaled / &divisor, unscaled % &divisor);
    if rounding == Rounding::HalfAway && remainder.abs() * 2 >= divisor {
        quotient + remainder.signum()
    } else {
        quotient
    }
}

/// How many digits `unscaled / 10^scale` has before the point (0 for a
/// value below 1).
pub(super) fn integer_digits(unscaled: &BigInt, scale: u32) -> u64 {
    let digits = decimal_digits(unscaled);
    digits.saturating_sub(u64::from(scale))
}

/// How many decimal digits `n` has (1 for zero).
pub(super) fn decimal_digits(n: &BigInt) -> u64 {
    if n.is_zero() {
        return 1;
    }
    // bits * log10(2) is within one of the answer; settle it exactly.
    let estimate = ((n.bits() as f64) * std::f64::consts::LOG10_2) as u64;
    let magnitude = n.abs();
    let mut digits = estimate.max(1);
    while pow10(digits) <= magnitude {
        digits += 1;
    }
    while digits > 1 && pow10(digits - 1) > magnitude {
        digits -= 1;
    }
    digits
}

impl fmt::Display for Numeric {
    /// PostgreSQL's text form: never an exponent, exactly `scale` digits
    /// after the point.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Numeric::NaN => f.write_str("NaN"),
            Numeric::Infinity => f.write_str("Infinity"),
            Numeric::NegInfinity => f.write_str("-Infinity"),
            Numeric::Finite { unscaled, scale } => {
                let digits = unscaled.magnitude().to_string();
                let scale = *scale as usize;
                if unscaled.sign() == Sign::Minus {
                    f.write_str("-")?;
                }
                if scale == 0 {
                    return f.write_str(&digits);
                }
                if digits.len() > scale {
                    let (whole, fraction) = digits.split_at(digits.len() - scale);
                    write!(f, "{whole}.{fraction}")
                } else {
                    write!(f, "0.{}{digits}", "0".repeat(scale - digits.len()))
                }
            }
        }
    }
}

impl PartialEq for Numeric {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Numeric {}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Numeric {
    /// By value (`1.5 = 1.50`), NaN above `Infinity` and equal to itself.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (
                Numeric::Finite {
                    unscaled: a,
                    scale: sa,
                },
                Numeric::Finite {
                    unscaled: b,
                    scale: sb,
                },
            ) => {
                let scale = (*sa).max(*sb);
                rescale(a, *sa, scale, Rounding::Truncate).cmp(&rescale(
                    b,
                    *sb,
                    scale,
                    Rounding::Truncate,
                ))
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// 22003 `numeric field overflow`, with PostgreSQL's detail.
fn field_overflow(detail: String) -> Error {
    let fields = ErrorFields {
        detail: Some(detail),
        ..Default::default()
    };
    Error::input_with(InputError::OutOfRange, "numeric field overflow", &fields)
}

/// A value too large for `numeric(precision, scale)`, as PostgreSQL's
/// typmod refuses it.
pub fn too_large_for(precision: u32, scale: u32) -> Error {
    let must = match precision.saturating_sub(scale) {
        0 => "less than 1".to_string(),
        exp => format!("less than 10^{exp}"),
    };
    field_overflow(format!(
        "A field with precision {precision}, scale {scale} must round to an absolute value {must}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Numeric {
        Numeric::parse(text).unwrap()
    }

    #[test]
    fn reads_and_writes_postgresql_text() {
        for (input, shown) in [
            ("2.50", "2.50"),
            (" -0.5 ", "-0.5"),
            ("+.5", "0.5"),
            ("5.", "5"),
            ("1e3", "1000"),
            ("1e +5", "100000"),
            ("1.5e3", "1500"),
            ("1.5E-3", "0.0015"),
            ("1e-3", "0.001"),
            ("0.000", "0.000"),
            ("-0.00", "0.00"),
            ("00012.30", "12.30"),
            (
                "12345678901234567890.123456789012345",
                "12345678901234567890.123456789012345",
            ),
            ("nan", "NaN"),
            ("-Infinity", "-Infinity"),
            ("+inf", "Infinity"),
        ] {
            assert_eq!(n(input).to_string(), shown, "{input}");
        }
        for bad in [
            "", ".", "-", "1.2.3", "1e", "e5", "abc", "1 2", "- 1", "--1", "-nan",
        ] {
            let err = Numeric::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid input syntax for type numeric: \"{bad}\"")
            );
        }
        assert!(Numeric::parse("1e2000000000").is_err());
        assert!(Numeric::parse("1e-20000").is_err());
    }

    #[test]
    fn compares_by_value_with_nan_highest() {
        assert_eq!(n("1.5"), n("1.50"));
        assert!(n("-2") < n("-1.99"));
        assert!(n("-Infinity") < n("-1e100"));
        assert!(n("1e100") < n("Infinity"));
        assert!(n("Infinity") < n("NaN"));
        assert_eq!(n("NaN"), n("NaN"));
    }

    #[test]
    fn converts_as_postgresql_casts() {
        assert_eq!(Numeric::from_float(0.1, 15).to_string(), "0.1");
        assert_eq!(
            Numeric::from_float(1.0 / 3.0, 15).to_string(),
            "0.333333333333333"
        );
        assert_eq!(
            Numeric::from_float(1e20, 15).to_string(),
            "100000000000000000000"
        );
        assert_eq!(Numeric::from_float(0.1f32 as f64, 6).to_string(), "0.1");
        assert_eq!(Numeric::from_float(-0.0, 15).to_string(), "0");
        assert_eq!(n("2.5").to_i64().unwrap(), Some(3));
        assert_eq!(n("-2.5").to_i64().unwrap(), Some(-3));
        assert_eq!(n("-2.49").to_i64().unwrap(), Some(-2));
        assert_eq!(n("1e30").to_i64().unwrap(), None);
        assert!(n("NaN").to_i64().is_err());
        assert_eq!(n("0.1").to_f64(), 0.1);
        assert_eq!(Numeric::from_scaled(12345i128, 2).to_string(), "123.45");
        assert_eq!(Numeric::from_scaled(12i128, -2).to_string(), "1200");
    }

    #[test]
    fn fits_a_typmod_as_postgresql() {
        assert_eq!(n("2.345").fit(10, 2).unwrap().to_string(), "2.35");
        assert_eq!(n("-2.345").fit(10, 2).unwrap().to_string(), "-2.35");
        assert_eq!(n("5").fit(10, 2).unwrap().to_string(), "5.00");
        assert_eq!(
            n("99.995").fit(4, 2).unwrap_err().to_string(),
            "numeric field overflow"
        );
        assert!(n("0.5").fit(2, 2).is_ok());
        assert!(n("0.995").fit(2, 2).is_err());
        assert!(n("Infinity").fit(10, 2).is_err());
        assert_eq!(n("NaN").fit(10, 2).unwrap().to_string(), "NaN");
    }
}
