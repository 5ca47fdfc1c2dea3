//! `numeric` as PostgreSQL computes it.
//!
//! Two Arrow types hold `numeric` values:
//!
//! - `numeric(p, s)` is a decimal of that scale (Decimal128, Decimal256
//!   past 38 digits): `+ - *` of such values have the static scales
//!   PostgreSQL's per-value rules give them, and DataFusion computes them;
//! - every other `numeric`, whose values keep their own scale (an
//!   unconstrained column, a cast to `numeric` alone, a quotient, `avg`,
//!   `sqrt`, ...), is [`values::NUMERIC`]: each value's bytes of
//!   `crate::numeric`, computed by [`functions`] in place of DataFusion's
//!   operators ([`planning`]) and functions ([`overloads`]).
//!
//! Also here: [`NumericAggregates`], run before type coercion, makes
//! `sum(bigint)` `numeric` (DataFusion: a `bigint` that wraps on overflow);
//! [`float_round`] rounds floats as PostgreSQL does, [`exact_float_cast`]
//! turns decimals into floats without Arrow's rounding error, and
//! [`integer_cast`] rounds decimals cast to integers half away from zero.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    i256, DataType, Decimal128Type, Decimal256Type, Float32Type, Float64Type,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionDefinition};
use datafusion::logical_expr::{
    cast, Between, BinaryExpr, Cast, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF,
};
use datafusion::optimizer::AnalyzerRule;

use super::analyze::{array_udf, rewrite_node_expressions};

mod functions;
mod overloads;
mod planning;
mod values;

pub use overloads::register_overloads;
pub use planning::{numeric_elements, numeric_operator, NumericValues};
pub use values::{fitted, from_numerics, is_numeric, numerics, to_i256, to_numerics, NUMERIC};

/// Arrow's Decimal128 precision.
const MAX_PRECISION: u8 = 38;

#[derive(Debug, Default)]
pub struct NumericAggregates;

impl AnalyzerRule for NumericAggregates {
    fn name(&self) -> &str {
        "postgresql_numeric_aggregates"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            if !matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)) {
                return Ok(Transformed::no(node));
            }
            rewrite_node_expressions(node, true, aggregate_input)
        })
        .map(|t| t.data)
    }
}

/// `avg(x)` / `sum(x)` (as an aggregate or a window function) with its
/// argument cast to the decimal PostgreSQL's result type needs.
fn aggregate_input(expr: Expr, schema: &DFSchema) -> DFResult<Transformed<Expr>> {
    let Some((name, [arg])) = aggregate_call(&expr) else {
        return Ok(Transformed::no(expr));
    };
    let Ok(arg_type) = arg.get_type(schema) else {
        return Ok(Transformed::no(expr));
    };
    let target = match name {
        "sum" if arg_type == DataType::Int64 => Some(DataType::Decimal128(19, 0)),
        _ => None,
    };
    let Some(target) = target else {
        return Ok(Transformed::no(expr));
    };
    let arg = cast(arg.clone(), target);
    Ok(Transformed::yes(match expr {
        Expr::AggregateFunction(mut aggregate) => {
            aggregate.params.args = vec![arg];
            Expr::AggregateFunction(aggregate)
        }
        Expr::WindowFunction(mut window) => {
            let WindowFunction { params, .. } = window.as_mut();
            params.args = vec![arg];
            Expr::WindowFunction(window)
        }
        other => other,
    }))
}

/// The name and arguments of an aggregate function's call, also as a
/// window function.
fn aggregate_call(expr: &Expr) -> Option<(&str, &[Expr])> {
    match expr {
        // Named as before a rewrite of its argument.
        Expr::Alias(alias) => aggregate_call(&alias.expr),
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            Some((func.name(), &params.args))
        }
        Expr::WindowFunction(window) => match &window.fun {
            WindowFunctionDefinition::AggregateUDF(func) => {
                Some((func.name(), &window.params.args))
            }
            WindowFunctionDefinition::WindowUDF(_) => None,
        },
        _ => None,
    }
}

/// A cast of a decimal to a float, read as PostgreSQL reads it: the
/// decimal's digits parsed as a float, rounded once. Arrow divides by a
/// power of ten, which is inexact once the digits or the power pass 2^53
/// (`-2.25e100::float8` became -2.2500000000000006e100).
pub fn exact_float_cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let to = field.data_type();
    if !matches!(to, DataType::Float64 | DataType::Float32) {
        return None;
    }
    let from = inner.get_type(schema).ok()?;
    if !matches!(from, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        return None;
    }
    let udf = array_udf(
        &format!("pg_float_of_{from}"),
        vec![from],
        DataType::Float64,
        |arrays| decimals_as_floats(&arrays[0]),
    );
    let float = udf.call(vec![inner.as_ref().clone()]);
    Some(match to {
        DataType::Float32 => crate::sql::float_checks::narrowed(float),
        _ => float,
    })
}

fn decimals_as_floats(array: &ArrayRef) -> DFResult<ArrayRef> {
    /// Integers up to 2^53 and powers of ten up to 10^22 are exact floats,
    /// so one division rounds once.
    const EXACT: i128 = 1 << 53;
    let parse = |digits: String, scale: i8| -> f64 {
        format!("{digits}e{}", -i32::from(scale))
            .parse()
            .unwrap_or(f64::NAN)
    };
    Ok(match array.data_type() {
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            Arc::new(
                array
                    .as_primitive::<Decimal128Type>()
                    .unary::<_, Float64Type>(|v| {
                        if v.abs() < EXACT && (0..=22).contains(&scale) {
                            v as f64 / 10f64.powi(i32::from(scale))
                        } else {
                            parse(v.to_string(), scale)
                        }
                    }),
            )
        }
        DataType::Decimal256(_, scale) => {
            let scale = *scale;
            Arc::new(
                array
                    .as_primitive::<Decimal256Type>()
                    .unary::<_, Float64Type>(|v| parse(v.to_string(), scale)),
            )
        }
        other => {
            return Err(DataFusionError::Internal(format!(
                "pg_float_of: unexpected {other}"
            )))
        }
    })
}

/// `round(x)` on a float, rounding halves to even as PostgreSQL's `rint`
/// does (`round(2.5::float8)` is 2); DataFusion rounds them away from zero,
/// which is what PostgreSQL does for `numeric`.
pub fn float_round(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    let [arg] = call.args.as_slice() else {
        return None;
    };
    if call.func.name() != "round" {
        return None;
    }
    let data_type = arg.get_type(schema).ok()?;
    matches!(data_type, DataType::Float64 | DataType::Float32)
        .then(|| rint_udf(data_type).call(vec![arg.clone()]))
}

/// `ceil`, `floor` and `trunc` of a numeric are whole numbers, shown
/// without decimals as PostgreSQL shows them (`ceil(2.1)` is 3; DataFusion
/// keeps the argument's scale, 3.0), and `trunc(x, n)` has n decimals.
pub fn rescaled_rounding(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    let name = call.func.name();
    if !matches!(name, "ceil" | "floor" | "trunc") {
        return None;
    }
    let (arg, digits) = match call.args.as_slice() {
        [arg] => (arg, 0),
        [arg, digits] if name == "trunc" => {
            let digits = match digits {
                Expr::Cast(Cast { expr, .. }) => expr.as_ref(),
                other => other,
            };
            let Expr::Literal(n, _) = digits else {
                return None;
            };
            match n.clone().cast_to(&DataType::Int64).ok()? {
                ScalarValue::Int64(Some(n)) => (arg, n),
                _ => return None,
            }
        }
        _ => return None,
    };
    let DataType::Decimal128(precision, scale) = arg.get_type(schema).ok()? else {
        return None;
    };
    let wanted = i8::try_from(digits.max(0)).ok()?;
    if wanted >= scale {
        return None;
    }
    // DataFusion keeps the argument's type, which has no room for the
    // digit `ceil` or `floor` may carry into (`ceil(9.5)` of a
    // numeric(2,1) failed with an overflow): the argument gets one more.
    let mut call = call.clone();
    let widened = match name {
        "ceil" | "floor" => (precision + 1).min(MAX_PRECISION),
        _ => precision,
    };
    call.args[0] = cast(arg.clone(), DataType::Decimal128(widened, scale));
    Some(cast(
        Expr::ScalarFunction(call),
        DataType::Decimal128(widened, wanted),
    ))
}

fn rint_udf(data_type: DataType) -> Arc<ScalarUDF> {
    array_udf(
        &format!("pg_rint_{data_type}"),
        vec![data_type.clone()],
        data_type,
        |arrays| {
            let values = &arrays[0];
            Ok(match values.data_type() {
                DataType::Float32 => Arc::new(
                    values
                        .as_primitive::<Float32Type>()
                        .unary::<_, Float32Type>(f32::round_ties_even),
                ) as ArrayRef,
                _ => Arc::new(
                    values
                        .as_primitive::<Float64Type>()
                        .unary::<_, Float64Type>(f64::round_ties_even),
                ),
            })
        },
    )
}

/// A cast of a float or a numeric to an integer type rounds as PostgreSQL
/// does: floats half to even (`rint`: `2.5::float8::int` is 2), numerics
/// half away from zero (`2.5::int` is 3, `12.5::int` is 13), where Arrow
/// truncates (`3.5::int` was 3). INSERT and UPDATE reach a column's type
/// through the same cast, so assignments round alike.
pub fn integer_cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let to = field.data_type();
    if !matches!(to, DataType::Int16 | DataType::Int32 | DataType::Int64) {
        return None;
    }
    let from = inner.get_type(schema).ok()?;
    let rounded = match from {
        DataType::Float32 | DataType::Float64 => rint_udf(from),
        DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) if scale > 0 => {
            round_decimal_udf(from)?
        }
        _ => return None,
    };
    Some(cast(rounded.call(vec![inner.as_ref().clone()]), to.clone()))
}

/// Rounds a decimal to scale 0, half away from zero, keeping the integer
/// digits (one more, for the carry).
fn round_decimal_udf(from: DataType) -> Option<Arc<ScalarUDF>> {
    let digits = |precision: u8, scale: i8, max: i16| {
        (i16::from(precision) - i16::from(scale) + 1).clamp(1, max) as u8
    };
    let to = match from {
        DataType::Decimal128(p, s) => DataType::Decimal128(digits(p, s, 38), 0),
        DataType::Decimal256(p, s) => DataType::Decimal256(digits(p, s, 76), 0),
        _ => return None,
    };
    let name = format!("pg_round_{from}");
    let out = to.clone();
    Some(array_udf(&name, vec![from], to, move |arrays| {
        let values = &arrays[0];
        Ok(match (values.data_type(), &out) {
            (DataType::Decimal128(_, scale), DataType::Decimal128(p, _)) => {
                let unit = i256::from_i128(10).wrapping_pow(*scale as u32);
                // |v| / unit + 1 always fits back in 128 bits.
                let rounded = values
                    .as_primitive::<Decimal128Type>()
                    .unary::<_, Decimal128Type>(|v| div_round(i256::from_i128(v), unit).as_i128());
                Arc::new(rounded.with_precision_and_scale(*p, 0)?) as ArrayRef
            }
            (DataType::Decimal256(_, scale), DataType::Decimal256(p, _)) => {
                let unit = i256::from_i128(10).wrapping_pow(*scale as u32);
                let rounded = values
                    .as_primitive::<Decimal256Type>()
                    .unary::<_, Decimal256Type>(|v| div_round(v, unit));
                Arc::new(rounded.with_precision_and_scale(*p, 0)?)
            }
            (other, _) => {
                return Err(DataFusionError::Internal(format!(
                    "pg_round: unexpected {other}"
                )))
            }
        })
    }))
}

/// dividend / divisor (not zero), rounded half away from zero. Doubling the
/// remainder cannot overflow: it is below the divisor, and a decimal holds
/// at most 76 digits (i256 holds 77).
fn div_round(dividend: i256, divisor: i256) -> i256 {
    let quotient = dividend.wrapping_div(divisor);
    let remainder = dividend.wrapping_rem(divisor);
    if remainder.wrapping_abs().wrapping_mul(i256::from_i128(2)) < divisor.wrapping_abs() {
        quotient
    } else if dividend.is_negative() != divisor.is_negative() {
        quotient.wrapping_sub(i256::ONE)
    } else {
        quotient.wrapping_add(i256::ONE)
    }
}

/// Floats beside exact numbers, in arithmetic or a comparison (with an
/// operator or BETWEEN), are computed in `double precision`, as
/// PostgreSQL resolves the operators (it has none of `real` and `integer`
/// or `numeric`, nor of a float and `numeric`, and prefers `float8`).
/// DataFusion computed `real` with an integer in `real`, so `3::real / 7`
/// showed 0.42857143 (PostgreSQL 0.42857142857142855) and `0.1::real =
/// 0.1` was true (PostgreSQL false); and it compared a float with a
/// decimal as `numeric(30, 15)`, so `f8 > 0.0` was false for 1e-20 and
/// failed for 1e16. Run before type coercion.
pub fn floats_beside_exact(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    use Operator::{Eq, Gt, GtEq, Lt, LtEq, NotEq};
    let mixed = |operands: &[&Expr]| {
        let types: Vec<DataType> = (operands.iter())
            .filter_map(|e| e.get_type(schema).ok())
            .collect();
        let decimal =
            |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
        let exact = |t: &DataType| t.is_integer() || decimal(t);
        (types.contains(&DataType::Float32) && types.iter().any(exact))
            || (types.contains(&DataType::Float64) && types.iter().any(decimal))
    };
    let double = |e: Expr| match e.get_type(schema) {
        Ok(DataType::Float64) => e,
        _ => cast(e, DataType::Float64),
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if (op.is_numerical_operators()
                || matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq))
                && mixed(&[&left, &right]) =>
        {
            Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(double(*left)),
                op,
                Box::new(double(*right)),
            )))
        }
        // IN of several constants takes its operands' common type, as a
        // CASE does: `real` if no `double precision` is among them
        // (`0.1::real IN (0.1, 1)` is true where `0.1::real = 0.1` is
        // false, in PostgreSQL too); of one, it is `=`.
        Expr::InList(mut in_list)
            if mixed(
                &[&*in_list.expr]
                    .into_iter()
                    .chain(&in_list.list)
                    .collect::<Vec<_>>(),
            ) =>
        {
            let double = [&*in_list.expr]
                .into_iter()
                .chain(&in_list.list)
                .any(|e| e.get_type(schema).is_ok_and(|t| t == DataType::Float64));
            let constants = in_list.list.iter().filter(|e| e.column_refs().is_empty());
            let float = match constants.count() > 1 && !double {
                true => DataType::Float32,
                false => DataType::Float64,
            };
            let common = |e: Expr| match e.get_type(schema) {
                Ok(t) if t == float => e,
                _ => cast(e, float.clone()),
            };
            in_list.expr = Box::new(common(*in_list.expr));
            in_list.list = in_list.list.into_iter().map(common).collect();
            Transformed::yes(Expr::InList(in_list))
        }
        Expr::Between(between) if mixed(&[&between.expr, &between.low, &between.high]) => {
            Transformed::yes(Expr::Between(Between::new(
                Box::new(double(*between.expr)),
                between.negated,
                Box::new(double(*between.low)),
                Box::new(double(*between.high)),
            )))
        }
        other => Transformed::no(other),
    }
}
