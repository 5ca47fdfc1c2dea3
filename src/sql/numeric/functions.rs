//! The functions that compute on `numeric` values with their own scale
//! ([`super::values::NUMERIC`] arrays), which `super::planning` puts in
//! place of operators, casts and functions: each one is the value's
//! operation of `crate::numeric` applied row by row.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BinaryBuilder, Int32Builder, LargeBinaryBuilder, ListBuilder,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::values::{from_numerics, map_numerics, map_rows, numerics, to_numerics, NUMERIC};
use crate::error::{Error, InputError, Result};
use crate::numeric::{value_part, Numeric};
use crate::sql::analyze::{array_udf, like_arguments};

/// An operation on `numeric` values.
pub type Operation = fn(&[Numeric]) -> Result<Numeric>;

/// `op` computed on `args`, `numeric` values, as the function `name`.
pub fn numeric_call(name: &str, op: Operation, args: Vec<Expr>) -> Expr {
    let arity = args.len();
    let udf = array_udf(
        &format!("{name}_{arity}"),
        vec![NUMERIC; arity],
        NUMERIC,
        move |arrays| map_numerics(arrays, op),
    );
    udf.call(args)
}

/// `x` as `numeric` values (a cast to `numeric` alone), from an
/// expression of type `from`.
pub fn to_numeric(x: Expr, from: &DataType) -> Expr {
    if *from == NUMERIC {
        return x;
    }
    ScalarUDF::new_from_impl(ToNumeric {
        signature: Signature::any(1, Volatility::Immutable),
    })
    .call(vec![x])
}

/// `numeric(x)`: [`to_numerics`] of any number or text (one function for
/// every source type: the rules after it may still retype a constant,
/// `1e6` from Decimal128(1, -6) to Decimal128(7, 0)).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToNumeric {
    signature: Signature,
}

impl ScalarUDFImpl for ToNumeric {
    fn name(&self) -> &str {
        "numeric"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(NUMERIC)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        like_arguments(&args.args, to_numerics(arrays[0].as_ref())?)
    }
}

/// `x`, a `numeric` value, cast to `to`.
pub fn from_numeric(x: Expr, to: &DataType) -> Expr {
    let udf = array_udf(
        &format!("numeric_to_{to}").to_lowercase(),
        vec![NUMERIC],
        to.clone(),
        {
            let to = to.clone();
            move |arrays| from_numerics(arrays[0].as_ref(), &to)
        },
    );
    udf.call(vec![x])
}

/// The bytes that compare `numeric` values (`1.5` and `1.50` alike), as
/// `Binary`: comparisons, IN and BETWEEN compare these, sorts and windows
/// order by them. One function instance: windows whose keys are equal
/// expressions share a sort, and a function is equal to itself only.
pub fn compared(x: Expr) -> Expr {
    static COMPARED: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    COMPARED.get_or_init(compared_udf).call(vec![x])
}

fn compared_udf() -> Arc<ScalarUDF> {
    array_udf(
        "numeric_compared",
        vec![NUMERIC],
        DataType::Binary,
        |arrays| {
            let bytes = arrays[0].as_binary::<i64>();
            let mut out = BinaryBuilder::new();
            for value in bytes.iter() {
                out.append_option(value.map(value_part));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

/// PostgreSQL's function `name` on `args.len()` `numeric` arguments, if
/// ShardForge has it.
pub fn numeric_function(name: &str, args: Vec<Expr>) -> Option<Expr> {
    let op: Operation = match (name, args.len()) {
        ("mod", 2) => |v| v[0].modulo(&v[1]),
        ("div", 2) => |v| v[0].div_trunc(&v[1]),
        ("abs", 1) => |v| Ok(v[0].abs()),
        ("signum", 1) => |v| Ok(v[0].sign()),
        ("ceil" | "ceiling", 1) => |v| Ok(v[0].ceil()),
        ("floor", 1) => |v| Ok(v[0].floor()),
        ("round", 1) => |v| v[0].round(0),
        ("round", 2) => |v| v[0].round(digits(&v[1])?),
        ("trunc", 1) => |v| v[0].truncated(0),
        ("trunc", 2) => |v| v[0].truncated(digits(&v[1])?),
        ("sqrt", 1) => |v| v[0].sqrt(),
        ("exp", 1) => |v| v[0].exp(),
        ("ln", 1) => |v| v[0].ln(),
        ("log" | "log10", 1) => |v| v[0].log(&Numeric::from_i64(10)),
        ("log", 2) => |v| v[1].log(&v[0]),
        ("power", 2) => |v| v[0].power(&v[1]),
        ("trim_scale", 1) => |v| Ok(v[0].trimmed()),
        ("scale" | "min_scale", 1) => return Some(scale_function(name, args)),
        _ => return None,
    };
    Some(numeric_call(&format!("numeric_{name}"), op, args))
}

/// `greatest`, `least` and `nullif` of `numeric` values, which compare
/// them by value: the first of equal values wins (`greatest(0, 0.00)` is
/// `0`), and `nullif(1.50, 1.5)` is NULL. None for another name.
pub fn numeric_choice(name: &str, args: Vec<Expr>) -> Option<Expr> {
    let op: fn(&[Option<Numeric>]) -> Result<Option<Numeric>> = match name {
        "greatest" => |row| Ok(first_best(row, std::cmp::Ordering::Greater)),
        "least" => |row| Ok(first_best(row, std::cmp::Ordering::Less)),
        "nullif" => |row| {
            Ok(match row {
                [Some(a), Some(b)] if a == b => None,
                [a, _] => a.clone(),
                _ => None,
            })
        },
        _ => return None,
    };
    let udf = array_udf(
        &format!("numeric_{name}_{}", args.len()),
        vec![NUMERIC; args.len()],
        NUMERIC,
        move |arrays| map_rows(arrays, op),
    );
    Some(udf.call(args))
}

/// The first non-NULL value that no later one is `better` than.
fn first_best(row: &[Option<Numeric>], better: std::cmp::Ordering) -> Option<Numeric> {
    let mut best: Option<&Numeric> = None;
    for value in row.iter().flatten() {
        if best.is_none_or(|b| value.cmp(b) == better) {
            best = Some(value);
        }
    }
    best.cloned()
}

/// The digits argument of `round(x, n)` and `trunc(x, n)`, an integer.
fn digits(value: &Numeric) -> Result<i64> {
    value
        .to_i64()?
        .ok_or_else(|| Error::input(InputError::OutOfRange, "integer out of range"))
}

/// `scale(x)`: the digits `x` shows after the point; `min_scale(x)`: the
/// fewest that show it exactly. NULL for NaN and the infinities.
fn scale_function(name: &str, args: Vec<Expr>) -> Expr {
    let trimmed = name == "min_scale";
    let udf = array_udf(
        &format!("numeric_{name}"),
        vec![NUMERIC],
        DataType::Int32,
        move |arrays| {
            let mut out = Int32Builder::new();
            for value in numerics(arrays[0].as_ref()) {
                let scale = match value? {
                    Some(v @ Numeric::Finite { .. }) if trimmed => Some(v.trimmed().scale()),
                    Some(v @ Numeric::Finite { .. }) => Some(v.scale()),
                    _ => None,
                };
                out.append_option(scale.map(|s| s as i32));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    );
    udf.call(args)
}

/// The most values a series of numerics holds: it is one list in memory
/// (`unnest` reads its rows from it), unlike a series of integers in FROM.
const MAX_SERIES: usize = 10_000_000;

/// `generate_series(start, stop [, step])` of `numeric` values, as the
/// list `unnest` reads the rows from (`sql::rewrite`): `start`, `start +
/// step`, ... while not past `stop`: `start` as it is, then sums, of the
/// larger scale of `start` and `step` (`generate_series(1, 2, 0.5)` is 1,
/// 1.5, 2.0), as PostgreSQL's; a step of zero, NaN or an infinity is
/// 22023.
pub fn numeric_series(args: Vec<Expr>) -> Expr {
    let arity = args.len();
    let item = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(
        NUMERIC, true,
    ));
    let udf = array_udf(
        &format!("numeric_generate_series_{arity}"),
        vec![NUMERIC; arity],
        DataType::List(item.clone()),
        move |arrays| {
            let columns: Vec<Vec<Option<Numeric>>> = (arrays.iter())
                .map(|a| numerics(a.as_ref()).collect::<Result<_>>())
                .collect::<Result<_>>()?;
            let mut lists = ListBuilder::new(LargeBinaryBuilder::new()).with_field(item.clone());
            for row in 0..arrays[0].len() {
                let value = |i: usize| columns.get(i).map(|c| c[row].clone());
                let step = value(2).unwrap_or(Some(Numeric::from_i64(1)));
                let (Some(Some(start)), Some(Some(stop)), Some(step)) = (value(0), value(1), step)
                else {
                    lists.append_null();
                    continue;
                };
                for (value, what) in [
                    (&start, "start value"),
                    (&stop, "stop value"),
                    (&step, "step size"),
                ] {
                    let bad = match value {
                        Numeric::NaN => Some("NaN"),
                        Numeric::Infinity | Numeric::NegInfinity => Some("infinity"),
                        Numeric::Finite { .. } => None,
                    };
                    if let Some(bad) = bad {
                        return Err(invalid_series(format!("{what} cannot be {bad}")).into());
                    }
                }
                if step.is_zero() {
                    return Err(invalid_series("step size cannot equal zero".into()).into());
                }
                let rising = !step.is_negative();
                let mut next = start;
                let mut count = 0;
                while (rising && next <= stop) || (!rising && next >= stop) {
                    count += 1;
                    if count > MAX_SERIES {
                        return Err(Error::input(
                            InputError::ProgramLimitExceeded,
                            format!("a series of numerics holds at most {MAX_SERIES} values"),
                        )
                        .into());
                    }
                    lists.values().append_value(next.to_sortable());
                    next = next.add(&step)?;
                }
                lists.append(true);
            }
            Ok(Arc::new(lists.finish()) as ArrayRef)
        },
    );
    udf.call(args)
}

fn invalid_series(message: String) -> Error {
    Error::input(InputError::InvalidParameterValue, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn operations_keep_postgresql_s_scales() {
        let text =
            |values: Vec<&str>| -> ArrayRef { to_numerics(&StringArray::from(values)).unwrap() };
        let quotients = map_numerics(&[text(vec!["1", "2.50"]), text(vec!["3", "2"])], |v| {
            v[0].div(&v[1])
        })
        .unwrap();
        let shown = from_numerics(quotients.as_ref(), &DataType::Utf8).unwrap();
        let shown: Vec<_> = shown.as_string::<i32>().iter().flatten().collect();
        assert_eq!(shown, ["0.33333333333333333333", "1.25000000000000000000"]);
        assert!(quotients.len() == 2);
    }
}
