//! Float results PostgreSQL refuses, where Arrow gives an infinity, zero
//! or NaN: arithmetic on `real` and `double precision` that overflows or
//! underflows (`1e308::float8 * 10`: 22003 `value out of range:
//! overflow`) or divides by zero (22012), a `double precision` cast to a
//! `real` it does not fit, `ln` / `log` / `log10` of zero or a negative
//! number (2201E), `sqrt` of a negative number, `power` of zero to a
//! negative power or of a negative number to a fraction (2201F), `exp` and
//! `power` past the range, `acosh` below 1 and `atanh` beyond 1 (22003),
//! text of a number past the type's range. Infinities in, infinities out:
//! only a result no input explains is refused, as in PostgreSQL's
//! `float.c`. The functions whose results are checked are computed here
//! as PostgreSQL computes them ([`Check`]).
//!
//! [`checked_float`] rewrites such an expression, after type coercion, in
//! the same pass as `sql::checked`'s integer arithmetic.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{BinaryExpr, Cast, Expr, ExprSchemable, Operator, ScalarUDF};

use super::analyze::{array_udf, is_text};
use super::copy::float_input;
use crate::error::{Error, InputError};

/// `expr` with PostgreSQL's checks, if it is one of the module's kinds.
pub fn checked_float(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let is_float = |e: &Expr| e.get_type(schema).ok().filter(DataType::is_floating);
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let data_type = is_float(left)?;
            if is_float(right)? != data_type {
                return None;
            }
            let op = match op {
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide => *op,
                _ => return None,
            };
            Some(arithmetic(op, data_type).call(vec![*left.clone(), *right.clone()]))
        }
        Expr::Cast(Cast { expr: inner, field })
            if *field.data_type() == DataType::Float32
                && inner.get_type(schema).ok()? == DataType::Float64 =>
        {
            Some(narrowed(*inner.clone()))
        }
        Expr::Cast(Cast { expr: inner, field })
            if field.data_type().is_floating()
                && inner.get_type(schema).ok().is_some_and(|t| is_text(&t)) =>
        {
            Some(text_input(*inner.clone(), field.data_type()))
        }
        Expr::ScalarFunction(call) => {
            let check = Check::of(call.name(), call.args.len())?;
            let double = |e: &Expr| e.get_type(schema).is_ok_and(|t| t == DataType::Float64);
            if !double(expr) || !call.args.iter().all(double) {
                return None;
            }
            Some(match check {
                // The argument checked first: DataFusion's sqrt fails itself
                // (as an internal error).
                Check::Sqrt => {
                    let mut call = call.clone();
                    call.args[0] = check.udf(1).call(vec![call.args[0].clone()]);
                    Expr::ScalarFunction(call)
                }
                // Computed here, checked as computed.
                _ => check.udf(call.args.len()).call(call.args.clone()),
            })
        }
        _ => None,
    }
}

/// A `double precision` as a `real`, refusing one out of its range.
pub fn narrowed(double: Expr) -> Expr {
    array_udf(
        "pg_float4_of_float8",
        vec![DataType::Float64],
        DataType::Float32,
        |arrays| {
            let narrowed = cast(&arrays[0], &DataType::Float32)?;
            let doubles = arrays[0].as_primitive::<Float64Type>();
            let reals = cast(&narrowed, &DataType::Float64)?;
            for (double, real) in doubles.iter().zip(reals.as_primitive::<Float64Type>()) {
                if let (Some(double), Some(real)) = (double, real) {
                    refused(real, double.is_finite(), double != 0.0)?;
                }
            }
            Ok(narrowed)
        },
    )
    .call(vec![double])
}

/// Text read as a float of `data_type` (`float8in` / `float4in`, as COPY
/// reads it: `sql::copy::float_input`): a number past the type's range is
/// 22003, where Arrow's reader makes it an infinity or zero
/// (`'1e400'::float8`).
fn text_input(text: Expr, data_type: &DataType) -> Expr {
    let target = data_type.clone();
    array_udf(
        &format!("pg_float_in_{target}").to_lowercase(),
        vec![DataType::Utf8],
        data_type.clone(),
        move |arrays| {
            let texts = cast(&arrays[0], &DataType::Utf8)?;
            let floats: Float64Array = (texts.as_string::<i32>().iter())
                .map(|text| text.map(|t| float_input(t, &target)).transpose())
                .collect::<crate::error::Result<_>>()
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(cast(&floats, &target)?)
        },
    )
    .call(vec![text])
}

/// 22003 for a result no input explains: an infinity from finite inputs
/// (`finite`), or a zero from inputs that make none (`nonzero`).
pub(super) fn refused(result: f64, finite: bool, nonzero: bool) -> DFResult<()> {
    let what = match () {
        _ if result.is_infinite() && finite => "overflow",
        _ if result == 0.0 && finite && nonzero => "underflow",
        _ => return Ok(()),
    };
    Err(external(
        InputError::OutOfRange,
        format!("value out of range: {what}"),
    ))
}

fn external(kind: InputError, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(Error::input(kind, message)))
}

/// `a op b` on floats of `data_type`, checked.
fn arithmetic(op: Operator, data_type: DataType) -> Arc<ScalarUDF> {
    let verb = match op {
        Operator::Plus => "add",
        Operator::Minus => "sub",
        Operator::Multiply => "mul",
        _ => "div",
    };
    array_udf(
        &format!("pg_float_{verb}_{data_type}").to_lowercase(),
        vec![data_type.clone(), data_type.clone()],
        data_type,
        move |arrays| {
            let result = match op {
                Operator::Plus => numeric::add(&arrays[0], &arrays[1])?,
                Operator::Minus => numeric::sub(&arrays[0], &arrays[1])?,
                Operator::Multiply => numeric::mul(&arrays[0], &arrays[1])?,
                _ => numeric::div(&arrays[0], &arrays[1])?,
            };
            let [a, b, r] = [&arrays[0], &arrays[1], &result].map(doubles);
            let (a, b, r) = (a?, b?, r?);
            for ((a, b), r) in a.iter().zip(b.iter()).zip(r.iter()) {
                let (Some(a), Some(b), Some(r)) = (a, b, r) else {
                    continue;
                };
                let finite = a.is_finite() && b.is_finite();
                match op {
                    // NaN / 0 is NaN, as in PostgreSQL.
                    Operator::Divide if b == 0.0 && !a.is_nan() => {
                        return Err(external(InputError::DivisionByZero, "division by zero"));
                    }
                    Operator::Multiply => refused(r, finite, a != 0.0 && b != 0.0)?,
                    Operator::Divide => refused(r, a.is_finite(), a != 0.0 && !b.is_infinite())?,
                    _ => refused(r, finite, false)?,
                }
            }
            Ok(result)
        },
    )
}

fn doubles(array: &ArrayRef) -> DFResult<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// The functions checked, by what they refuse, and those computed here
/// as PostgreSQL computes them: Rust's `asinh`, `acosh` and `atanh` are
/// its own and round otherwise than glibc's (which PostgreSQL calls) in
/// the last digit; DataFusion's one-argument `log` is `ln(x) / ln(10)`,
/// not `log10`, and its `degrees` multiplies where PostgreSQL divides.
#[derive(Clone, Copy)]
enum Check {
    /// `ln`: no zero or negative number.
    Ln,
    /// `log` and `log10` of one argument, as `ln`.
    Log10,
    Sqrt,
    Exp,
    Power,
    Asinh,
    /// `acosh`: 22003 below 1.
    Acosh,
    /// `atanh`: 22003 beyond -1 .. 1.
    Atanh,
    Degrees,
}

/// PostgreSQL's `RADIANS_PER_DEGREE`, which `degrees` divides by.
const RADIANS_PER_DEGREE: f64 = 0.017_453_292_519_943_295;

/// glibc's functions, which PostgreSQL calls (std links the C math
/// library on Linux). Not `cbrt`: Rust's own takes its name in the link,
/// so `cbrt` can differ from PostgreSQL's in the last digit.
mod libm {
    extern "C" {
        pub fn asinh(x: f64) -> f64;
        pub fn acosh(x: f64) -> f64;
        pub fn atanh(x: f64) -> f64;
    }
}

impl Check {
    fn of(function: &str, arguments: usize) -> Option<Check> {
        Some(match (function, arguments) {
            ("ln", 1) => Check::Ln,
            ("log" | "log10", 1) => Check::Log10,
            ("sqrt", 1) => Check::Sqrt,
            ("exp", 1) => Check::Exp,
            ("power" | "pow", 2) => Check::Power,
            ("asinh", 1) => Check::Asinh,
            ("acosh", 1) => Check::Acosh,
            ("atanh", 1) => Check::Atanh,
            ("degrees", 1) => Check::Degrees,
            _ => return None,
        })
    }

    /// `pg_float_check_sqrt(x)`: the argument `x` of `sqrt`, or the error;
    /// `pg_float_check_<kind>(x [, y])`: the function's result, or the
    /// error.
    fn udf(self, arguments: usize) -> Arc<ScalarUDF> {
        let kind = match self {
            Check::Ln => "ln",
            Check::Log10 => "log10",
            Check::Sqrt => "sqrt",
            Check::Exp => "exp",
            Check::Power => "power",
            Check::Asinh => "asinh",
            Check::Acosh => "acosh",
            Check::Atanh => "atanh",
            Check::Degrees => "degrees",
        };
        array_udf(
            &format!("pg_float_check_{kind}"),
            vec![DataType::Float64; arguments],
            DataType::Float64,
            move |arrays| {
                let columns = arrays.iter().map(doubles).collect::<DFResult<Vec<_>>>()?;
                let mut results = Vec::with_capacity(columns[0].len());
                for row in 0..columns[0].len() {
                    let value = |i: usize| {
                        let column = columns.get(i)?;
                        column.is_valid(row).then(|| column.value(row))
                    };
                    let result = match (value(0), value(1)) {
                        (Some(x), y) => self.compute(x, y),
                        _ => None,
                    };
                    if let (Some(result), Some(x)) = (result, value(0)) {
                        self.check(result, x, value(1))?;
                    }
                    results.push(result);
                }
                Ok(Arc::new(Float64Array::from(results)) as ArrayRef)
            },
        )
    }

    /// The result for `x` (and `y`), before its check; `sqrt`'s is its
    /// argument, which DataFusion's function then takes.
    fn compute(self, x: f64, y: Option<f64>) -> Option<f64> {
        // SAFETY: C's math functions take and return plain doubles and
        // touch no memory.
        let c = |f: unsafe extern "C" fn(f64) -> f64| unsafe { f(x) };
        Some(match self {
            Check::Sqrt => x,
            Check::Ln => x.ln(),
            Check::Log10 => x.log10(),
            Check::Exp => x.exp(),
            Check::Power => x.powf(y?),
            Check::Asinh => c(libm::asinh),
            Check::Acosh => c(libm::acosh),
            Check::Atanh => c(libm::atanh),
            Check::Degrees => x / RADIANS_PER_DEGREE,
        })
    }

    fn check(self, result: f64, x: f64, y: Option<f64>) -> DFResult<()> {
        let domain = |kind, message: &str| Err(external(kind, message));
        match self {
            Check::Ln | Check::Log10 if x == 0.0 => domain(
                InputError::InvalidArgumentForLogarithm,
                "cannot take logarithm of zero",
            ),
            Check::Ln | Check::Log10 if x < 0.0 => domain(
                InputError::InvalidArgumentForLogarithm,
                "cannot take logarithm of a negative number",
            ),
            Check::Sqrt if x < 0.0 => domain(
                InputError::InvalidArgumentForPowerFunction,
                "cannot take square root of a negative number",
            ),
            Check::Acosh if x < 1.0 => domain(InputError::OutOfRange, "input is out of range"),
            // (NaN passes, as in PostgreSQL.)
            Check::Atanh if x.abs() > 1.0 => {
                domain(InputError::OutOfRange, "input is out of range")
            }
            Check::Exp => refused(result, x.is_finite(), true),
            Check::Degrees => refused(result, x.is_finite(), x != 0.0),
            Check::Power => {
                let y = y.unwrap_or(f64::NAN);
                if x == 0.0 && y < 0.0 {
                    return domain(
                        InputError::InvalidArgumentForPowerFunction,
                        "zero raised to a negative power is undefined",
                    );
                }
                if x < 0.0 && y.is_finite() && y.fract() != 0.0 {
                    return domain(
                        InputError::InvalidArgumentForPowerFunction,
                        "a negative number raised to a non-integer power yields a complex result",
                    );
                }
                refused(result, x.is_finite() && y.is_finite(), x != 0.0)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The functions computed with C's math library give PostgreSQL's
    /// digits (PostgreSQL 15 on glibc), where Rust's own differ.
    #[test]
    fn computed_as_postgresql() {
        let value = |check: Check, x: f64| check.compute(x, None).unwrap();
        assert_eq!(
            value(Check::Asinh, 0.21529202584013518),
            0.21366263324015738
        );
        assert_eq!(value(Check::Acosh, 1.2152920258401352), 0.64495256550264);
        assert_eq!(
            value(Check::Atanh, 0.0009047023829318044),
            0.0009047026297607915
        );
        assert_eq!(value(Check::Log10, 1.5), 0.17609125905568124);
        assert_eq!(
            value(Check::Degrees, -0.39812589802568477),
            -22.81093367172753
        );
    }
}
