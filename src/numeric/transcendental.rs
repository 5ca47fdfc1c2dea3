//! `exp`, `ln`, `log` and `power` with PostgreSQL's result scales.
//!
//! The scale of each result is chosen as `numeric.c` chooses it, from a
//! rough estimate of the result's size (in floats, where PostgreSQL uses
//! floats); the value is then computed in fixed point with enough guard
//! digits that rounding it to that scale gives the correctly rounded
//! result, which is what PostgreSQL's own computation gives:
//!
//! - `ln` halves its argument's logarithm by square roots until the
//!   argument is within 1% of 1, then sums the series of `atanh`;
//! - `exp` halves its argument until it is below 0.01, sums the Taylor
//!   series, and squares back;
//! - `power` multiplies exactly for an integer exponent (when the product
//!   stays small), else is `exp(y * ln(x))`.

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};

use super::arith::{MAX_DISPLAY_SCALE, MIN_SIG_DIGITS};
use super::bytes::base_10000;
use super::value::{overflow, pow10, rescale, Numeric, Rounding, MAX_SCALE};
use crate::error::{Error, InputError, Result};

use Numeric::{Finite, Infinity, NaN, NegInfinity};

/// Guard digits beyond what a result needs.
const GUARD: i64 = 12;
/// An exponent whose exactly multiplied power has more digits than this
/// is computed as `exp(y * ln(x))` instead.
const EXACT_POWER_DIGITS: u64 = 20_000;

fn log_error(message: &str) -> Error {
    Error::input(InputError::InvalidArgumentForLogarithm, message)
}

fn power_error(message: &str) -> Error {
    Error::input(InputError::InvalidArgumentForPowerFunction, message)
}

/// A scale: `wanted`, at least each of `at_least`, within `0..=1000`.
fn clamp_scale(wanted: i64, at_least: &[u32]) -> u32 {
    let floor = at_least.iter().copied().max().unwrap_or(0);
    wanted.max(floor.into()).clamp(0, MAX_DISPLAY_SCALE) as u32
}

/// `value` (unscaled at `from`) at scale `to`, rounded.
fn at(unscaled: &BigInt, from: u32, to: u32) -> BigInt {
    rescale(unscaled, from, to, Rounding::HalfAway)
}

impl Numeric {
    /// `exp(x)`.
    pub fn exp(&self) -> Result<Numeric> {
        let Finite { scale, .. } = self else {
            return Ok(match self {
                NegInfinity => Numeric::zero(),
                special => special.clone(),
            });
        };
        let float = self.to_f64();
        let weight = (float * std::f64::consts::LOG10_E).clamp(-2000.0, 2000.0);
        let to = clamp_scale(MIN_SIG_DIGITS - weight as i64, &[*scale]);
        if float.abs() >= 6000.0 {
            return match float > 0.0 {
                true => Err(overflow()),
                false => Ok(Numeric::finite(BigInt::zero(), to)),
            };
        }
        exp_at(self, to)
    }

    /// `ln(x)`.
    pub fn ln(&self) -> Result<Numeric> {
        match self {
            NaN | Infinity => return Ok(self.clone()),
            NegInfinity => return Err(log_error("cannot take logarithm of a negative number")),
            _ => {}
        }
        checked_log_argument(self)?;
        let to = clamp_scale(MIN_SIG_DIGITS - ln_weight(self), &[self.scale()]);
        let working = to + GUARD as u32;
        let ln = ln_fixed(self, working);
        Numeric::finite(at(&ln, working, to), to).checked()
    }

    /// `log(base, x)`: `ln(x) / ln(base)`.
    pub fn log(&self, base: &Numeric) -> Result<Numeric> {
        let (x, b) = (self, base);
        if matches!(x, NaN) || matches!(b, NaN) {
            return Ok(NaN);
        }
        if x.is_negative() || b.is_negative() {
            return Err(log_error("cannot take logarithm of a negative number"));
        }
        if x.is_zero() || b.is_zero() {
            return Err(log_error("cannot take logarithm of zero"));
        }
        match (b, x) {
            (Infinity, Infinity) => return Ok(NaN),
            (Infinity, _) => return Ok(Numeric::zero()),
            (_, Infinity) => return Ok(Infinity),
            _ => {}
        }
        let to = clamp_scale(
            MIN_SIG_DIGITS - (ln_weight(x) - ln_weight(b)),
            &[b.scale(), x.scale()],
        );
        // ln(b) near 0 magnifies ln(x)'s error in the quotient; a large
        // quotient does too.
        let (lx, lb) = (x.to_f64().ln(), b.to_f64().ln());
        let extra = (-lb.abs().log10()).max(0.0) + ((lx / lb).abs() + 1.0).log10().max(0.0);
        let working = to + GUARD as u32 + extra.min(2000.0).ceil() as u32;
        let (ln_x, ln_b) = (ln_fixed(x, working), ln_fixed(b, working));
        if ln_b.is_zero() {
            return Err(Error::input(InputError::DivisionByZero, "division by zero"));
        }
        Numeric::finite(ln_x, working).quotient(
            &Numeric::finite(ln_b, working),
            to,
            Rounding::HalfAway,
        )
    }

    /// `power(x, y)`, `x ^ y`.
    pub fn power(&self, exponent: &Numeric) -> Result<Numeric> {
        let (x, y) = (self, exponent);
        if let Some(special) = special_power(x, y)? {
            return Ok(special);
        }
        let (Finite { scale: xs, .. }, Finite { scale: ys, .. }) = (x, y) else {
            return Ok(NaN);
        };
        if x.is_zero() && y.is_negative() {
            return Err(power_error("zero raised to a negative power is undefined"));
        }
        let integer = y.integral();
        if let Some(n) = integer.as_ref().and_then(|n| n.to_i32()) {
            return integer_power(x, *xs, n);
        }
        if x.is_zero() {
            return Ok(Numeric::finite(BigInt::zero(), MIN_SIG_DIGITS as u32));
        }
        let negative = x.is_negative();
        if negative && integer.is_none() {
            return Err(power_error(
                "a negative number raised to a non-integer power yields a complex result",
            ));
        }
        let odd = negative && integer.is_some_and(|n| n % 2i32 != BigInt::zero());
        let base = x.abs();
        // PostgreSQL's estimate of the result's size: ln(x) and y * ln(x)
        // to a few digits, as floats.
        let rough = 8i64.saturating_sub(ln_weight(&base)).max(0) as u32;
        let ln_rough = Numeric::finite(ln_fixed(&base, rough + GUARD as u32), rough + GUARD as u32)
            .rescaled(rough);
        let product = ln_rough.mul(y)?.rescaled(rough).to_f64();
        if product.abs() > 6020.0 {
            return match product > 0.0 {
                true => Err(overflow()),
                false => Ok(Numeric::finite(BigInt::zero(), MAX_DISPLAY_SCALE as u32)),
            };
        }
        let weight = product * std::f64::consts::LOG10_E;
        let to = clamp_scale(MIN_SIG_DIGITS - weight as i64, &[*xs, *ys]);
        let result = exp_of_product(&base, y, to, weight)?;
        Ok(if odd { result.neg() } else { result })
    }
}

/// `ln`'s argument must be positive.
fn checked_log_argument(x: &Numeric) -> Result<()> {
    if x.is_zero() {
        return Err(log_error("cannot take logarithm of zero"));
    }
    if x.is_negative() {
        return Err(log_error("cannot take logarithm of a negative number"));
    }
    Ok(())
}

/// PostgreSQL's `estimate_ln_dweight`: the decimal weight of `ln(x)`.
fn ln_weight(x: &Numeric) -> i64 {
    let Finite { unscaled, scale } = x else {
        return 0;
    };
    if !unscaled.is_positive() {
        return 0;
    }
    let (low, high) = (Numeric::parse("0.9"), Numeric::parse("1.1"));
    if let (Ok(low), Ok(high)) = (low, high) {
        if *x >= low && *x <= high {
            let Ok(Finite {
                unscaled: d,
                scale: ds,
            }) = x.sub(&Numeric::from_i64(1))
            else {
                return 0;
            };
            if d.is_zero() {
                return 0;
            }
            return super::value::decimal_digits(&d) as i64 - 1 - i64::from(ds);
        }
    }
    let (words, weight) = base_10000(unscaled, *scale);
    let (digits, decimal_weight) = match words.as_slice() {
        [first, second, ..] => (
            f64::from(*first) * 10_000.0 + f64::from(*second),
            4 * (i64::from(weight) - 1),
        ),
        [first] => (f64::from(*first), 4 * i64::from(weight)),
        [] => return 0,
    };
    let ln = digits.ln() + decimal_weight as f64 * std::f64::consts::LN_10;
    ln.abs().log10() as i64
}

/// `ln(x)` for a positive finite `x`, unscaled at `working` digits.
fn ln_fixed(x: &Numeric, working: u32) -> BigInt {
    let Finite { unscaled, scale } = x else {
        return BigInt::zero();
    };
    // Square roots until within 1% of 1: ln(x) = 2^halvings * ln(root).
    let size = x.to_f64().ln().abs().max(1e-300);
    let halvings = (size / 0.01).log2().ceil().max(0.0) as u32;
    let precision = working + GUARD as u32 + halvings / 3 + 1;
    let one = pow10(precision.into());
    let mut z = rescale(unscaled, *scale, precision, Rounding::Truncate);
    for _ in 0..halvings {
        z = (z * &one).sqrt();
    }
    // ln(z) = 2 atanh(u), u = (z - 1) / (z + 1).
    let u = (&z - &one) * &one / (&z + &one);
    let u2 = &u * &u / &one;
    let mut term = u.clone();
    let mut sum = u;
    let mut k = 1u32;
    loop {
        term = &term * &u2 / &one;
        k += 2;
        let step = &term / k;
        if step.is_zero() {
            break;
        }
        sum += step;
    }
    let ln = sum * 2 * (BigInt::from(1) << halvings);
    rescale(&ln, precision, working, Rounding::HalfAway)
}

/// `exp(x)` rounded at `to` digits.
fn exp_at(x: &Numeric, to: u32) -> Result<Numeric> {
    let Finite { unscaled, scale } = x else {
        return Ok(NaN);
    };
    // The result's integer digits, which the working precision must
    // cover too, and the halvings that bring x below 0.01.
    let float = x.to_f64();
    let digits = (float * std::f64::consts::LOG10_E).max(0.0).ceil() as u32;
    let halvings = (float.abs() / 0.01).log2().ceil().max(0.0) as u32;
    let precision = to + digits + halvings + GUARD as u32;
    let one = pow10(precision.into());
    let y = rescale(unscaled, *scale, precision, Rounding::Truncate) >> halvings;
    // Taylor: sum of y^k / k!.
    let mut term = one.clone();
    let mut sum = one.clone();
    let mut k = 0u32;
    loop {
        k += 1;
        term = &term * &y / &one / k;
        if term.is_zero() {
            break;
        }
        sum += &term;
    }
    for _ in 0..halvings {
        sum = &sum * &sum / &one;
    }
    Numeric::finite(rescale(&sum, precision, to, Rounding::HalfAway), to).checked()
}

/// `exp(y * ln(base))` rounded at `to` digits; `weight` is the result's
/// rough decimal weight.
fn exp_of_product(base: &Numeric, y: &Numeric, to: u32, weight: f64) -> Result<Numeric> {
    // y * ln(base) must be exact to the result's own digits.
    let digits = weight.max(0.0).ceil() as u32;
    let y_digits = (y.to_f64().abs() + 1.0).log10().ceil() as u32;
    let working = to + digits + y_digits + GUARD as u32;
    let ln = Numeric::finite(ln_fixed(base, working), working);
    let product = ln.mul(y)?.rescaled(working);
    exp_at(&product, to)
}

/// `x ^ n` for an integer `n`: exactly, rounded at PostgreSQL's scale
/// (at least 16 digits, never fewer than x shows).
fn integer_power(x: &Numeric, scale: u32, n: i32) -> Result<Numeric> {
    let to = clamp_scale(MIN_SIG_DIGITS, &[scale]);
    let Finite { unscaled, .. } = x else {
        return Ok(NaN);
    };
    if n == 0 {
        return Ok(Numeric::finite(pow10(to.into()), to));
    }
    if unscaled.is_zero() {
        return Ok(Numeric::finite(BigInt::zero(), to));
    }
    // The result's decimal weight, roughly: past the limits it overflows,
    // or rounds to 0.
    let weight = f64::from(n) * x.abs().to_f64().log10();
    if weight > 393_204.0 {
        return Err(overflow());
    }
    if weight + 1.0 < -f64::from(to) {
        return Ok(Numeric::finite(BigInt::zero(), to));
    }
    let digits = super::value::decimal_digits(unscaled);
    if digits.saturating_mul(u64::from(n.unsigned_abs())) > EXACT_POWER_DIGITS {
        let result = exp_of_product(&x.abs(), &Numeric::from_i64(n.into()), to, weight)?;
        let odd = x.is_negative() && n % 2 != 0;
        return Ok(if odd { result.neg() } else { result });
    }
    let power = Numeric::finite(
        unscaled.pow(n.unsigned_abs()),
        scale.saturating_mul(n.unsigned_abs()),
    );
    if u64::from(power.scale()) > u64::from(MAX_SCALE) * 64 {
        return Err(overflow());
    }
    match n > 0 {
        true => power.rescaled(to).checked(),
        false => Numeric::from_i64(1).quotient(&power, to, Rounding::HalfAway),
    }
}

/// PostgreSQL's `power` of NaN and the infinities (POSIX's `pow`), in its
/// order of tests; None when both are finite.
fn special_power(x: &Numeric, y: &Numeric) -> Result<Option<Numeric>> {
    let one = || Numeric::from_i64(1);
    match (x, y) {
        (NaN, _) => return Ok(Some(if y.is_zero() { one() } else { NaN })),
        (_, NaN) => return Ok(Some(if *x == one() { one() } else { NaN })),
        (Finite { .. }, Finite { .. }) => return Ok(None),
        _ => {}
    }
    // An infinity counts as an integer here, as in POSIX's pow.
    let integral = |v: &Numeric| !matches!(v, Finite { .. }) || v.integral().is_some();
    if x.is_zero() && y.is_negative() {
        return Err(power_error("zero raised to a negative power is undefined"));
    }
    if x.is_negative() && !integral(y) {
        return Err(power_error(
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if *x == one() || y.is_zero() {
        return Ok(Some(one()));
    }
    if x.is_zero() {
        return Ok(Some(Numeric::zero()));
    }
    let infinite = |big: bool| if big { Infinity } else { Numeric::zero() };
    Ok(Some(match (x, y) {
        (_, Infinity | NegInfinity) => {
            if *x == one().neg() {
                one()
            } else {
                let large = matches!(x, Infinity | NegInfinity) || x.abs() > one();
                infinite(large == matches!(y, Infinity))
            }
        }
        (Infinity, _) => infinite(!y.is_negative()),
        (NegInfinity, _) if y.is_negative() => Numeric::zero(),
        (NegInfinity, _) => match y.integral().is_some_and(|n| n % 2i32 != BigInt::zero()) {
            true => NegInfinity,
            false => Infinity,
        },
        _ => NaN,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Numeric {
        Numeric::parse(text).unwrap()
    }

    fn shown(result: Result<Numeric>) -> String {
        result
            .map(|v| v.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn exponentials_and_logarithms_as_postgresql() {
        for (x, want) in [
            ("1", "2.7182818284590452"),
            ("0", "1.0000000000000000"),
            ("1.000000000000000000000", "2.718281828459045235360"),
            ("-1", "0.3678794411714423"),
            ("10", "22026.465794806717"),
            ("-10", "0.00004539992976248485"),
            ("100", "26881171418161354484126255515800135873611119"),
            ("1e-30", "1.000000000000000000000000000001"),
            ("6000", "value overflows numeric format"),
        ] {
            assert_eq!(shown(n(x).exp()), want, "exp({x})");
        }
        for (x, want) in [
            ("10", "2.3025850929940457"),
            ("1", "0.0000000000000000"),
            ("1.01", "0.009950330853168083"),
            ("0.9", "-0.10536051565782630"),
            ("1.000001", "0.0000009999995000003333"),
            ("9999", "9.2102403669758494"),
            ("1e30", "69.077552789821371"),
            ("1e-30", "-69.077552789821370520539743640531"),
            ("0", "cannot take logarithm of zero"),
        ] {
            assert_eq!(shown(n(x).ln()), want, "ln({x})");
        }
        for (b, x, want) in [
            ("10", "100", "2.0000000000000000"),
            ("10", "2", "0.3010299956639812"),
            ("10", "1.0001", "0.00004342727686266964"),
            ("2", "1024", "10.0000000000000000"),
            ("3", "100", "4.1918065485787692"),
            ("1e30", "1e-30", "-1.000000000000000000000000000000"),
            ("1", "10", "division by zero"),
        ] {
            assert_eq!(shown(n(x).log(&n(b))), want, "log({b}, {x})");
        }
    }

    #[test]
    fn powers_as_postgresql() {
        for (x, y, want) in [
            ("1.1", "2", "1.2100000000000000"),
            ("2", "10.0", "1024.0000000000000000"),
            ("1.123456789", "3", "1.4179767796223607"),
            ("1.5000000000000000000", "2", "2.2500000000000000000"),
            ("-2", "3", "-8.0000000000000000"),
            ("3", "-1", "0.3333333333333333"),
            ("0.1", "20", "0.0000000000000000"),
            ("1.000001", "1000000", "2.7182804693193769"),
            ("0", "0", "1.0000000000000000"),
            ("0", "2.5", "0.0000000000000000"),
            ("0", "-1", "zero raised to a negative power is undefined"),
            ("2", "0.5", "1.4142135623730950"),
            ("100", "-0.5", "0.10000000000000000"),
            (
                "-8",
                "0.5",
                "a negative number raised to a non-integer power yields a complex result",
            ),
            ("Infinity", "-2", "0"),
            ("-Infinity", "3", "-Infinity"),
            ("NaN", "0", "1"),
        ] {
            assert_eq!(shown(n(x).power(&n(y))), want, "{x} ^ {y}");
        }
    }
}
