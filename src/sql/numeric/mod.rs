//! `numeric` arithmetic as PostgreSQL does it, within one scale per column.
//!
//! PostgreSQL picks the scale of a quotient (and so of `avg`) per value:
//! at least 16 significant digits, more when the quotient is small. An
//! Arrow decimal column has one scale, and DataFusion's rules (borrowed
//! from Hive) give `10::numeric / 4` the scale 14 and `avg` the input's
//! scale plus 4. ShardForge uses PostgreSQL's scale for the common case,
//! a quotient of at least 1: 16 digits, or the operands' scale if that is
//! larger. Quotients are rounded half away from zero, as PostgreSQL rounds.
//!
//! - [`NumericAggregates`], run before type coercion, makes `avg` of
//!   integers `numeric` (DataFusion: `double precision`), `sum(bigint)`
//!   `numeric` (DataFusion: a `bigint` that wraps on overflow) and
//!   `sum(real)` `real` (DataFusion: `double precision`), and widens the
//!   scale `avg` works at.
//! - [`RoundedAvg`] replaces DataFusion's `avg`, which truncates a decimal
//!   average (5 / 3 = 1.666...6): it averages at one more digit and rounds
//!   that digit away. Truncating and then rounding the next digit gives the
//!   correctly rounded result.
//! - [`numeric_division`], used by the arithmetic rule in `sql::checked`
//!   after coercion, replaces `/` on two decimals; [`float_round`] there
//!   rounds floats as PostgreSQL does, and [`exact_float_cast`] turns
//!   decimals into floats without Arrow's rounding error.
//! - [`unconstrained`]: `numeric` without precision and scale, whose
//!   values keep their own digits where one column scale allows.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::kernels::arity::try_binary;
use datafusion::arrow::compute::{cast as arrow_cast, cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{
    i256, DataType, Decimal128Type, Decimal256Type, FieldRef, Float32Type, Float64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, DataFusionError, Result as DFResult, ScalarValue};
use datafusion::functions_aggregate::average::Avg;
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionDefinition};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    cast, Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, Cast, EmitTo, Expr,
    ExprSchemable, GroupsAccumulator, LogicalPlan, Operator, Projection, ReversedUDAF, ScalarUDF,
    Signature,
};
use datafusion::optimizer::AnalyzerRule;

use super::analyze::{array_udf, rewrite_node_expressions};
use crate::catalog::SqlType;
use unconstrained::{as_cast_to, unconstrained};
pub use unconstrained::{
    decimal_at, decimal_literal, unconstrained_arithmetic, UnconstrainedCasts,
};

mod unconstrained;

/// The scale PostgreSQL gives a quotient of at least 1 (its
/// `NUMERIC_MIN_SIG_DIGITS`).
const QUOTIENT_SCALE: i8 = 16;
/// Arrow's Decimal128 precision.
const MAX_PRECISION: u8 = 38;
/// `avg` of a Decimal128(p, s) has the scale s + 4 in DataFusion, and
/// [`RoundedAvg`] rounds one digit away.
const AVG_EXTRA_SCALE: i8 = 3;

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
            rewrite_node_expressions(node, true, aggregate_input)?.transform_data(typed_results)
        })
        .map(|t| t.data)
    }
}

/// How [`typed_results`] retypes an aggregate's result column.
type Retype = fn(Expr) -> Expr;

/// The aggregates (also as window functions) whose results DataFusion
/// types otherwise than PostgreSQL, retyped by a projection above their
/// node that keeps their names:
/// - `sum` of `real` is `real` in PostgreSQL; DataFusion's is `double
///   precision`, so `sum` of 0.1 and 0.2 showed 0.30000000447034836
///   (PostgreSQL: 0.3). It is cast back to `real`.
/// - `sum`, `min` and `max` of an unconstrained numeric are one too, shown
///   as its values are ([`unconstrained`]).
fn typed_results(node: LogicalPlan) -> DFResult<Transformed<LogicalPlan>> {
    let (input, calls) = match &node {
        LogicalPlan::Aggregate(aggregate) => (aggregate.input.schema(), &aggregate.aggr_expr),
        LogicalPlan::Window(window) => (window.input.schema(), &window.window_expr),
        _ => return Ok(Transformed::no(node)),
    };
    let retyped: Vec<Option<Retype>> = calls
        .iter()
        .map(|e| {
            let (name, [arg]) = aggregate_call(e)? else {
                return None;
            };
            let (_, field) = arg.to_field(input).ok()?;
            let retype: Retype = match name {
                "sum" if *field.data_type() == DataType::Float32 => |e| cast(e, DataType::Float32),
                "sum" | "min" | "max" if SqlType::is_unconstrained_numeric(&field) => {
                    |e| unconstrained().call(vec![e])
                }
                _ => return None,
            };
            Some(retype)
        })
        .collect();
    if retyped.iter().all(Option::is_none) {
        return Ok(Transformed::no(node));
    }
    let output = node.schema().clone();
    // The aggregates' (or window functions') columns come last.
    let first = output.fields().len() - retyped.len();
    let columns = output
        .iter()
        .enumerate()
        .map(|(at, (qualifier, field))| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match at.checked_sub(first).and_then(|i| retyped[i]) {
                Some(retype) => retype(column).alias_qualified(qualifier.cloned(), field.name()),
                None => column,
            }
        })
        .collect();
    Ok(Transformed::yes(LogicalPlan::Projection(
        Projection::try_new(columns, Arc::new(node))?,
    )))
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
        "avg" => avg_input_type(&arg_type),
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

/// The decimal `avg` should read so that its result has PostgreSQL's
/// scale: integers are exact decimals, and the scale is raised to 13 (the
/// result gets 3 more) when the integer digits still fit; `None` if the
/// argument can stay as it is.
fn avg_input_type(arg_type: &DataType) -> Option<DataType> {
    let wanted = QUOTIENT_SCALE - AVG_EXTRA_SCALE;
    let (integer_digits, scale) = match arg_type {
        DataType::Int16 => (5, 0),
        DataType::Int32 => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::Decimal128(precision, scale) if *scale >= 0 && *scale < wanted => {
            (*precision as i8 - *scale, *scale)
        }
        _ => return None,
    };
    let scale = if integer_digits + wanted <= MAX_PRECISION as i8 {
        wanted
    } else {
        scale
    };
    let input = DataType::Decimal128((integer_digits + scale) as u8, scale);
    (input != *arg_type).then_some(input)
}

/// DataFusion's `avg`, with a decimal result rounded to one digit less than
/// DataFusion computes it at.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct RoundedAvg {
    inner: Avg,
}

impl RoundedAvg {
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::from(Self::default())
    }
}

/// Our result type for DataFusion's `avg` result type: one digit less scale.
fn rounded_type(inner: &DataType) -> DataType {
    match inner {
        DataType::Decimal128(precision, scale) if *scale > 0 => {
            DataType::Decimal128(*precision, scale - 1)
        }
        other => other.clone(),
    }
}

impl AggregateUDFImpl for RoundedAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(rounded_type(&self.inner.return_type(arg_types)?))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        let return_field = self.inner_return_field(&args.return_field, args.input_fields)?;
        self.inner.state_fields(StateFieldsArgs {
            return_field,
            ..args
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        let output = args.return_field.data_type().clone();
        let inner = self.inner.accumulator(self.inner_args(args)?)?;
        Ok(Box::new(RoundingAccumulator { inner, output }))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner_args(args)
            .is_ok_and(|inner| self.inner.groups_accumulator_supported(inner))
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DFResult<Box<dyn GroupsAccumulator>> {
        let output = args.return_field.data_type().clone();
        let inner = self
            .inner
            .create_groups_accumulator(self.inner_args(args)?)?;
        Ok(Box::new(RoundingGroupsAccumulator { inner, output }))
    }
}

impl RoundedAvg {
    /// `args` as DataFusion's `avg` expects them: with its own result type,
    /// which sets the scale its accumulators divide at.
    fn inner_args<'a>(&self, args: AccumulatorArgs<'a>) -> DFResult<AccumulatorArgs<'a>> {
        let return_field = self.inner_return_field(&args.return_field, args.expr_fields)?;
        Ok(AccumulatorArgs {
            return_field,
            ..args
        })
    }

    /// Our result field with DataFusion's `avg` result type for `inputs`.
    fn inner_return_field(&self, outer: &FieldRef, inputs: &[FieldRef]) -> DFResult<FieldRef> {
        let input_types: Vec<DataType> = inputs.iter().map(|f| f.data_type().clone()).collect();
        let data_type = self.inner.return_type(&input_types)?;
        Ok(Arc::new(outer.as_ref().clone().with_data_type(data_type)))
    }
}

#[derive(Debug)]
struct RoundingAccumulator {
    inner: Box<dyn Accumulator>,
    output: DataType,
}

impl Accumulator for RoundingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        // Arrow's cast to a smaller decimal scale rounds half away from zero.
        self.inner.evaluate()?.cast_to(&self.output)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

struct RoundingGroupsAccumulator {
    inner: Box<dyn GroupsAccumulator>,
    output: DataType,
}

impl GroupsAccumulator for RoundingGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.inner
            .update_batch(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DFResult<ArrayRef> {
        Ok(arrow_cast(&self.inner.evaluate(emit_to)?, &self.output)?)
    }

    fn state(&mut self, emit_to: EmitTo) -> DFResult<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DFResult<Vec<ArrayRef>> {
        self.inner.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

/// `a / b` on two Decimal128 operands, as a call that divides at
/// PostgreSQL's scale; `None` for anything else.
pub fn numeric_division(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Divide,
        right,
    }) = expr
    else {
        return None;
    };
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return None;
    };
    let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) = (&left_type, &right_type)
    else {
        return None;
    };
    if *s1 < 0 || *s2 < 0 {
        return None;
    }
    let scale = constant_quotient_scale(left, right)
        .unwrap_or(QUOTIENT_SCALE)
        .max(*s1)
        .max(*s2);
    let udf = division_udf(left_type.clone(), right_type.clone(), *s1, *s2, scale);
    Some(udf.call(vec![left.as_ref().clone(), right.as_ref().clone()]))
}

/// PostgreSQL's scale for the quotient of two constants (`1::numeric /
/// 3` has 20 digits, `10::numeric / 4` 16): at least 16 significant
/// digits, counted in base-10000 digits as `select_div_scale` counts them.
/// None when an operand is not a constant, or the scale would not fit a
/// Decimal128 beside the quotient's integer digits.
fn constant_quotient_scale(left: &Expr, right: &Expr) -> Option<i8> {
    let leading = |e: &Expr| -> Option<(i64, i64)> {
        let (value, scale) = match constant(e)? {
            ScalarValue::Decimal128(Some(v), _, s) => (v, s),
            _ => return None,
        };
        Some(base_10000_leading(value, scale))
    };
    let ((w1, d1), (w2, d2)) = (leading(left)?, leading(right)?);
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    let scale = i64::from(QUOTIENT_SCALE) - qweight * 4;
    // The quotient has about 4 * (qweight + 1) integer digits.
    let integer_digits = (4 * (qweight + 1)).max(1);
    (scale >= 0 && scale + integer_digits <= i64::from(MAX_PRECISION)).then_some(scale as i8)
}

/// The weight (the power of 10000) and value of the first base-10000
/// digit of the decimal `value` × 10^-`scale`, as PostgreSQL's numeric
/// stores it; (0, 0) for zero.
fn base_10000_leading(value: i128, scale: i8) -> (i64, i64) {
    if value == 0 {
        return (0, 0);
    }
    let digits = value.unsigned_abs().to_string();
    // The power of ten of the first digit.
    let exponent = digits.len() as i64 - 1 - i64::from(scale);
    let weight = exponent.div_euclid(4);
    let first_len = (exponent.rem_euclid(4) + 1) as usize;
    let first: String = digits
        .chars()
        .chain(std::iter::repeat('0'))
        .take(first_len)
        .collect();
    (weight, first.parse().unwrap_or(0))
}

fn division_udf(
    left_type: DataType,
    right_type: DataType,
    s1: i8,
    s2: i8,
    scale: i8,
) -> Arc<ScalarUDF> {
    // a / b at `scale` is a * 10^(scale - s1 + s2) / b, which is never a
    // negative power: scale >= s1.
    let shift = (scale - s1 + s2) as u32;
    array_udf(
        &format!("pg_numeric_div_{s1}_{s2}"),
        vec![left_type, right_type],
        DataType::Decimal128(MAX_PRECISION, scale),
        move |arrays| {
            let quotients = try_binary::<_, _, _, Decimal128Type>(
                arrays[0].as_primitive::<Decimal128Type>(),
                arrays[1].as_primitive::<Decimal128Type>(),
                |a, b| divide(a, b, shift),
            )
            .and_then(|quotients| quotients.with_precision_and_scale(MAX_PRECISION, scale))?;
            Ok(Arc::new(quotients) as ArrayRef)
        },
    )
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
        DataType::Float32 => cast(float, DataType::Float32),
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

/// A cast of text to `numeric` reads an exponent as PostgreSQL does
/// (`'1.5e-3'::numeric(10,4)` is 0.0015); Arrow's decimal parser refuses
/// it. Each string with an exponent is rewritten in plain digits, then
/// Arrow's own cast reads it (and reports what it cannot read as before).
pub fn text_to_numeric_cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let to = field.data_type().clone();
    if !matches!(to, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        return None;
    }
    if inner.get_type(schema).ok()? != DataType::Utf8 {
        return None;
    }
    let out = to.clone();
    let udf = array_udf(
        &format!("pg_numeric_in_{to}"),
        vec![DataType::Utf8],
        to,
        move |arrays| {
            let plain: StringArray = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(without_exponent))
                .collect();
            digits_to_decimal(&plain, &out)
        },
    );
    Some(as_cast_to(field, udf.call(vec![inner.as_ref().clone()])))
}

/// A cast of a float to a decimal, read as PostgreSQL reads it: the
/// float's 15 significant digits (6 for a `real`), then rounded to the
/// decimal's scale. Arrow converts the binary value itself, so
/// `1e20::float8::numeric` was `100000000000000001988.4624838656`.
pub fn float_to_numeric_cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let to = field.data_type().clone();
    if !matches!(to, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        return None;
    }
    let from = inner.get_type(schema).ok()?;
    let digits = match from {
        DataType::Float64 => 15,
        DataType::Float32 => 6,
        _ => return None,
    };
    let out = to.clone();
    let udf = array_udf(
        &format!("pg_numeric_of_{from}_{to}"),
        vec![DataType::Float64],
        to,
        move |arrays| {
            let texts: StringArray = arrays[0]
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| {
                    v.map(|v| match v.is_finite() {
                        true => without_exponent(&float_digits(v, digits)),
                        false => v.to_string(),
                    })
                })
                .collect();
            digits_to_decimal(&texts, &out)
        },
    );
    let float = cast(inner.as_ref().clone(), DataType::Float64);
    Some(as_cast_to(field, udf.call(vec![float])))
}

/// `texts` (plain digits) as decimals of type `to`, as the text and float
/// casts to numeric both read them: an error, not a NULL, for a text that
/// is no number or does not fit.
fn digits_to_decimal(texts: &StringArray, to: &DataType) -> DFResult<ArrayRef> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    Ok(cast_with_options(texts, to, &options)?)
}

/// `text` in plain digits if it is a number with an exponent (`-1.5e2` is
/// `-150`), else unchanged.
fn without_exponent(text: &str) -> String {
    let trimmed = text.trim();
    let Some((mantissa, exponent)) = trimmed.split_once(['e', 'E']) else {
        return text.to_string();
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return text.to_string();
    };
    let (sign, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all = format!("{whole}{fraction}");
    // A bound no real value needs, so that a huge exponent cannot make a
    // huge string; Arrow then refuses the value as out of range.
    if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) || exponent.abs() > 1000 {
        return text.to_string();
    }
    let point = whole.len() as i32 + exponent;
    let plain = if point <= 0 {
        format!("0.{}{all}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= all.len() {
        format!("{all}{}", "0".repeat(point as usize - all.len()))
    } else {
        format!("{}.{}", &all[..point as usize], &all[point as usize..])
    };
    format!("{sign}{plain}")
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

/// round(a * 10^shift / b), half away from zero; fails if b is zero or the
/// quotient has more than 38 digits.
fn divide(a: i128, b: i128, shift: u32) -> Result<i128, ArrowError> {
    if b == 0 {
        return Err(ArrowError::DivideByZero);
    }
    // Both errors are classified like Arrow's own (`sql::errors`): 22012, 22003.
    let overflow = || ArrowError::ArithmeticOverflow("value overflows numeric format".into());
    let ten = i256::from_i128(10);
    let dividend = ten
        .checked_pow(shift)
        .and_then(|factor| i256::from_i128(a).checked_mul(factor))
        .ok_or_else(overflow)?;
    let quotient = div_round(dividend, i256::from_i128(b));
    let limit = ten.wrapping_pow(MAX_PRECISION as u32);
    let quotient = quotient
        .to_i128()
        .filter(|_| quotient.wrapping_abs() < limit);
    quotient.ok_or_else(overflow)
}

/// `real` beside an integer or a `numeric` (in arithmetic or a
/// comparison) is computed in `double precision`, as PostgreSQL resolves
/// the operator (it has none of `real` and `integer`, and prefers
/// `float8`); DataFusion computed in `real`, so `3::real / 7` showed
/// 0.42857143 (PostgreSQL 0.42857142857142855) and `0.1::real = 0.1` was
/// true (PostgreSQL false). Run before type coercion.
pub fn real_beside_exact(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Transformed::no(expr);
    };
    use Operator::{Eq, Gt, GtEq, Lt, LtEq, NotEq};
    if !(op.is_numerical_operators() || matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq)) {
        return Transformed::no(expr);
    }
    let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
        return Transformed::no(expr);
    };
    let exact = |t: &DataType| {
        t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
    };
    let mixed = match (&l, &r) {
        (DataType::Float32, other) | (other, DataType::Float32) => exact(other),
        _ => false,
    };
    if !mixed {
        return Transformed::no(expr);
    }
    let double = |e: &Expr| cast(e.clone(), DataType::Float64);
    Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(double(left)),
        *op,
        Box::new(double(right)),
    )))
}

/// The value of a literal, or of a cast of one (`0.1::float8`).
pub(super) fn constant(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(Cast { expr, field }) => constant(expr)?.cast_to(field.data_type()).ok(),
        _ => None,
    }
}

/// `value` to `digits` significant digits, without trailing zeros, in
/// exponent form (`3.33333333333333e-1`).
pub(super) fn float_digits(value: f64, digits: usize) -> String {
    let text = format!("{:.*e}", digits - 1, value);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    format!("{mantissa}e{exponent}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn exponents_become_plain_digits() {
        for (text, plain) in [
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("-2.5E+2", "-250"),
            (" 12e0 ", "12"),
            ("+1.25e1", "12.5"),
            ("9e-1", "0.9"),
            ("12.5", "12.5"),
            ("abc", "abc"),
            ("1e", "1e"),
            ("1e99999", "1e99999"),
        ] {
            assert_eq!(without_exponent(text), plain, "{text}");
        }
    }
    use super::*;

    #[test]
    fn division_rounds_half_away_from_zero_at_the_scale() {
        // 10 / 4 at scale 16, operands at scale 0.
        assert_eq!(divide(10, 4, 16).unwrap(), 25_000_000_000_000_000);
        // 2 / 3 = 0.666...67 at scale 16.
        assert_eq!(divide(2, 3, 16).unwrap(), 6_666_666_666_666_667);
        assert_eq!(divide(-2, 3, 16).unwrap(), -6_666_666_666_666_667);
        assert_eq!(divide(2, -3, 16).unwrap(), -6_666_666_666_666_667);
        // 1 / 3 rounds down.
        assert_eq!(divide(1, 3, 16).unwrap(), 3_333_333_333_333_333);
        assert!(matches!(divide(1, 0, 16), Err(ArrowError::DivideByZero)));
        assert!(divide(i128::MAX / 10, 1, 16).is_err());
    }

    #[test]
    fn avg_reads_integers_as_decimals_with_room_for_the_scale() {
        assert_eq!(
            avg_input_type(&DataType::Int32),
            Some(DataType::Decimal128(23, 13))
        );
        assert_eq!(
            avg_input_type(&DataType::Decimal128(10, 2)),
            Some(DataType::Decimal128(21, 13))
        );
        // 30 integer digits leave no room: the scale stays.
        assert_eq!(avg_input_type(&DataType::Decimal128(32, 2)), None);
        assert_eq!(avg_input_type(&DataType::Float64), None);
        assert_eq!(avg_input_type(&DataType::Decimal128(38, 20)), None);
    }
}
