//! PostgreSQL's numeric functions DataFusion lacks (`scale`, `min_scale`
//! and `trim_scale` are `sql::numeric`'s):
//! - `width_bucket(operand, low, high, count)`: the bucket of `operand`
//!   among `count` equal ones from `low` to `high` (0 below, `count + 1`
//!   at or above `high`; the other way round when `low > high`). Numerics
//!   are bucketed exactly, as PostgreSQL's `width_bucket_numeric` does
//!   (in floats, `width_bucket(0.3, 0.1, 0.5, 2)` would be 1, not 2);
//!   floats as PostgreSQL 15's `width_bucket_float8` does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{i256, DataType, Float64Type, Int32Type};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{input_error, like_arguments};
use crate::error::InputError;
use crate::sql::output::decimals;

/// What a numeric argument of `width_bucket` is: a decimal as it is, an
/// integer a decimal of scale 0.
fn as_numeric(arg: &DataType) -> Option<DataType> {
    match arg {
        DataType::Decimal128(..) | DataType::Decimal256(..) => Some(arg.clone()),
        DataType::Null | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Some(DataType::Decimal128(20, 0))
        }
        _ => None,
    }
}

pub fn width_bucket() -> ScalarUDF {
    ScalarUDF::new_from_impl(WidthBucket {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WidthBucket {
    signature: Signature,
}

impl ScalarUDFImpl for WidthBucket {
    fn name(&self) -> &str {
        "width_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Numerics (and integers) when the three bounds are, at the scale of
    /// the finest; else double precision.
    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let [operand, low, high, count] = arg_types else {
            return plan_err!("width_bucket takes an operand, two bounds and a count");
        };
        if !count.is_integer() && *count != DataType::Null {
            return plan_err!("width_bucket's count is an integer, not {count}");
        }
        let numerics: Option<Vec<DataType>> =
            [operand, low, high].into_iter().map(as_numeric).collect();
        let bounds = match numerics {
            Some(numerics) => {
                let scale = numerics.iter().map(decimal_scale).max().unwrap_or(0);
                DataType::Decimal256(76, scale)
            }
            None => DataType::Float64,
        };
        Ok(vec![
            bounds.clone(),
            bounds.clone(),
            bounds,
            DataType::Int32,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [operand, low, high, count] = arrays.as_slice() else {
            return plan_err!("width_bucket takes four arguments");
        };
        let counts = count.as_primitive::<Int32Type>();
        let buckets = match operand.data_type() {
            DataType::Float64 => {
                let floats = |a: &ArrayRef| -> DFResult<Vec<Option<f64>>> {
                    Ok(cast(a, &DataType::Float64)?
                        .as_primitive::<Float64Type>()
                        .iter()
                        .collect())
                };
                let bounds = [floats(operand)?, floats(low)?, floats(high)?];
                buckets(bounds, counts, float_bucket)?
            }
            _ => {
                let exact = |a: &ArrayRef| decimals(a).collect::<Vec<_>>();
                buckets(
                    [exact(operand), exact(low), exact(high)],
                    counts,
                    exact_bucket,
                )?
            }
        };
        like_arguments(&args.args, Arc::new(buckets))
    }
}

/// Each row's bucket by `bucket` of its operand, bounds and count; NULL
/// where one of them is.
fn buckets<T: Copy>(
    [operands, lows, highs]: [Vec<Option<T>>; 3],
    counts: &Int32Array,
    bucket: fn(T, T, T, i32) -> DFResult<i32>,
) -> DFResult<Int32Array> {
    (0..operands.len())
        .map(
            |i| match (operands[i], lows[i], highs[i], counts.is_valid(i)) {
                (Some(o), Some(l), Some(h), true) => bucket(o, l, h, counts.value(i)).map(Some),
                _ => Ok(None),
            },
        )
        .collect()
}

fn decimal_scale(data_type: &DataType) -> i8 {
    match data_type {
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => *s,
        _ => 0,
    }
}

/// PostgreSQL's errors for bounds and counts no bucket can be made of.
fn check_bucket_arguments(equal_bounds: bool, count: i32) -> DFResult<()> {
    if count <= 0 {
        return Err(input_error(
            InputError::InvalidArgumentForWidthBucket,
            "count must be greater than zero",
        ));
    }
    if equal_bounds {
        return Err(input_error(
            InputError::InvalidArgumentForWidthBucket,
            "lower bound cannot equal upper bound",
        ));
    }
    Ok(())
}

/// Where an operand falls among the buckets from `low` to `high`.
enum Place<T> {
    /// Before the first: bucket 0.
    Before,
    /// After the last: bucket `count + 1`.
    After,
    /// At `offset` from `low` of the `width` from `low` to `high`, both
    /// positive.
    Inside { offset: T, width: T },
}

fn place<T: PartialOrd + Copy + std::ops::Sub<Output = T>>(
    operand: T,
    low: T,
    high: T,
) -> Place<T> {
    match low < high {
        true if operand < low => Place::Before,
        true if operand >= high => Place::After,
        true => Place::Inside {
            offset: operand - low,
            width: high - low,
        },
        false if operand > low => Place::Before,
        false if operand <= high => Place::After,
        false => Place::Inside {
            offset: low - operand,
            width: low - high,
        },
    }
}

/// The bucket of `operand`, `low` and `high` being at one scale: the
/// truncated `offset * count / width`, plus one.
fn exact_bucket(operand: i256, low: i256, high: i256, count: i32) -> DFResult<i32> {
    check_bucket_arguments(low == high, count)?;
    match place(operand, low, high) {
        Place::Before => Ok(0),
        Place::After => over(count),
        Place::Inside { offset, width } => {
            Ok((offset * i256::from(count) / width).as_i128() as i32 + 1)
        }
    }
}

fn float_bucket(operand: f64, low: f64, high: f64, count: i32) -> DFResult<i32> {
    check_bucket_arguments(low == high, count)?;
    if operand.is_nan() || low.is_nan() || high.is_nan() {
        return Err(input_error(
            InputError::InvalidArgumentForWidthBucket,
            "operand, lower bound, and upper bound cannot be NaN",
        ));
    }
    match place(operand, low, high) {
        Place::Before => Ok(0),
        Place::After => over(count),
        // PostgreSQL 15's arithmetic, the one added in floating point
        // too: `width_bucket(0.3, 0.1, 0.5, 2)` is 2, though 0.3 - 0.1
        // is just under 0.2 in binary.
        Place::Inside { offset, width } => Ok((f64::from(count) * offset / width + 1.0) as i32),
    }
}

/// The bucket past the last (22003 where it does not fit an integer).
fn over(count: i32) -> DFResult<i32> {
    count
        .checked_add(1)
        .ok_or_else(|| input_error(InputError::OutOfRange, "integer out of range"))
}
