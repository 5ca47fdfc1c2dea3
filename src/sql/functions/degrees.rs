//! The trigonometric functions of degrees (`sind`, `cosd`, `tand`,
//! `cotd`, `asind`, `acosd`, `atand`, `atan2d`) as PostgreSQL's
//! `float.c` computes them: the angle is brought into the first quadrant
//! and the result scaled by the function's value at a known angle, so
//! that `sind(30)` is exactly 0.5 and `tand(45)` exactly 1 (the sine of
//! `30 * pi / 180` is not 0.5 in doubles).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::ScalarUDF;

use super::input_error;
use crate::error::InputError;
use crate::sql::analyze::array_udf;

/// PostgreSQL's `RADIANS_PER_DEGREE`.
const RADIANS_PER_DEGREE: f64 = 0.017_453_292_519_943_295;

/// The values at known angles PostgreSQL scales by, computed as it
/// computes them.
struct Known {
    sin_30: f64,
    one_minus_cos_60: f64,
    asin_0_5: f64,
    acos_0_5: f64,
    atan_1_0: f64,
    tan_45: f64,
    cot_45: f64,
}

static KNOWN: LazyLock<Known> = LazyLock::new(|| {
    let partial = Known {
        sin_30: (RADIANS_PER_DEGREE * 30.0).sin(),
        one_minus_cos_60: 1.0 - (RADIANS_PER_DEGREE * 60.0).cos(),
        asin_0_5: 0.5f64.asin(),
        acos_0_5: 0.5f64.acos(),
        atan_1_0: 1.0f64.atan(),
        tan_45: 1.0,
        cot_45: 1.0,
    };
    let (sin_45, cos_45) = (sind_q1(&partial, 45.0), cosd_q1(&partial, 45.0));
    Known {
        tan_45: sin_45 / cos_45,
        cot_45: cos_45 / sin_45,
        ..partial
    }
});

fn sind_0_to_30(known: &Known, x: f64) -> f64 {
    ((x * RADIANS_PER_DEGREE).sin() / known.sin_30) / 2.0
}

fn cosd_0_to_60(known: &Known, x: f64) -> f64 {
    let one_minus_cos = 1.0 - (x * RADIANS_PER_DEGREE).cos();
    1.0 - (one_minus_cos / known.one_minus_cos_60) / 2.0
}

/// The sine of `x` degrees, `x` in 0 to 90.
fn sind_q1(known: &Known, x: f64) -> f64 {
    match x <= 30.0 {
        true => sind_0_to_30(known, x),
        false => cosd_0_to_60(known, 90.0 - x),
    }
}

/// The cosine of `x` degrees, `x` in 0 to 90.
fn cosd_q1(known: &Known, x: f64) -> f64 {
    match x <= 60.0 {
        true => cosd_0_to_60(known, x),
        false => sind_0_to_30(known, 90.0 - x),
    }
}

fn asind_q1(known: &Known, x: f64) -> f64 {
    match x <= 0.5 {
        true => (x.asin() / known.asin_0_5) * 30.0,
        false => 90.0 - (x.acos() / known.acos_0_5) * 60.0,
    }
}

fn acosd_q1(known: &Known, x: f64) -> f64 {
    match x <= 0.5 {
        true => 90.0 - (x.asin() / known.asin_0_5) * 30.0,
        false => (x.acos() / known.acos_0_5) * 60.0,
    }
}

#[derive(Clone, Copy)]
enum Function {
    Sin,
    Cos,
    Tan,
    Cot,
    Asin,
    Acos,
    Atan,
    Atan2,
}

fn out_of_range() -> datafusion::common::DataFusionError {
    input_error(InputError::OutOfRange, "input is out of range")
}

impl Function {
    /// The function of `x` (and `y`, `atan2d`'s second argument). An
    /// infinity is an answer (`tand(90)`), as in PostgreSQL.
    fn compute(self, x: f64, y: f64) -> DFResult<f64> {
        let known = &*KNOWN;
        if x.is_nan() || y.is_nan() {
            return Ok(f64::NAN);
        }
        Ok(match self {
            Function::Sin | Function::Cos | Function::Tan | Function::Cot => {
                if x.is_infinite() {
                    return Err(out_of_range());
                }
                // Into 0 to 90 degrees, with the sign the quadrant gives.
                let (mut x, mut sign) = (x % 360.0, 1.0);
                let odd = !matches!(self, Function::Cos);
                if x < 0.0 {
                    x = -x;
                    if odd {
                        sign = -sign;
                    }
                }
                if x > 180.0 {
                    x = 360.0 - x;
                    if odd {
                        sign = -sign;
                    }
                }
                if x > 90.0 {
                    x = 180.0 - x;
                    if !matches!(self, Function::Sin) {
                        sign = -sign;
                    }
                }
                let result = match self {
                    Function::Sin => sign * sind_q1(known, x),
                    Function::Cos => sign * cosd_q1(known, x),
                    Function::Tan => {
                        sign * ((sind_q1(known, x) / cosd_q1(known, x)) / known.tan_45)
                    }
                    _ => sign * ((cosd_q1(known, x) / sind_q1(known, x)) / known.cot_45),
                };
                // PostgreSQL makes a tangent's or cotangent's -0 plain 0
                // (a sine's stays: `sind(-180)` is -0).
                let tangent = matches!(self, Function::Tan | Function::Cot);
                match tangent && result == 0.0 {
                    true => 0.0,
                    false => result,
                }
            }
            Function::Asin | Function::Acos => {
                if !(-1.0..=1.0).contains(&x) {
                    return Err(out_of_range());
                }
                match (self, x >= 0.0) {
                    (Function::Asin, true) => asind_q1(known, x),
                    (Function::Asin, false) => -asind_q1(known, -x),
                    (_, true) => acosd_q1(known, x),
                    (_, false) => 90.0 + asind_q1(known, -x),
                }
            }
            Function::Atan => (x.atan() / known.atan_1_0) * 45.0,
            Function::Atan2 => (x.atan2(y) / known.atan_1_0) * 45.0,
        })
    }
}

/// The functions, by PostgreSQL's names.
pub fn udfs() -> Vec<ScalarUDF> {
    [
        ("sind", Function::Sin),
        ("cosd", Function::Cos),
        ("tand", Function::Tan),
        ("cotd", Function::Cot),
        ("asind", Function::Asin),
        ("acosd", Function::Acos),
        ("atand", Function::Atan),
        ("atan2d", Function::Atan2),
    ]
    .into_iter()
    .map(|(name, function)| {
        let arguments = match function {
            Function::Atan2 => 2,
            _ => 1,
        };
        let udf = array_udf(
            name,
            vec![DataType::Float64; arguments],
            DataType::Float64,
            move |arrays| {
                let x = arrays[0].as_primitive::<Float64Type>();
                let y = arrays.get(1).map(|a| a.as_primitive::<Float64Type>());
                let results = (0..x.len())
                    .map(|i| {
                        let y = match y {
                            Some(y) if y.is_null(i) => return Ok(None),
                            Some(y) => y.value(i),
                            None => 0.0,
                        };
                        match x.is_null(i) {
                            true => Ok(None),
                            false => function.compute(x.value(i), y).map(Some),
                        }
                    })
                    .collect::<DFResult<Float64Array>>()?;
                Ok(Arc::new(results) as ArrayRef)
            },
        );
        Arc::unwrap_or_clone(udf)
    })
    .collect()
}
