//! PostgreSQL's `numeric` versions of functions DataFusion has for other
//! types. DataFusion checks a call's argument types as it plans it, before
//! any analyzer rule: a `numeric` argument (Arrow `LargeBinary`) fails
//! every built-in signature. So the registered function is wrapped, under
//! its own name, in one that also accepts `numeric` arguments:
//!
//! - [`NumericScalar`]: planned as given; `super::planning` then puts the
//!   `numeric` computation in the call's place (or converts its arguments,
//!   for `coalesce` and the like), so it never runs on them itself.
//! - [`NumericAggregate`]: the [`MOMENTS`] (`sum`, `avg`, `var_*`,
//!   `stddev_*`) of `numeric` values computed here ([`NumericAccumulator`]),
//!   with PostgreSQL's result scales; every other call is the wrapped
//!   function's.
//! - [`Extreme`]: `max` and `min` of `numeric` values, which of equal
//!   values (`2.5`, `2.50`) give the last one, as PostgreSQL does (the
//!   wrapped functions compared the values' bytes, display scale last);
//!   of other types the wrapped function's, of the argument's named type
//!   (a `char(n)`'s `max` is one).

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef};
use datafusion::common::{internal_err, plan_err, Result as DFResult, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    Accumulator, ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::aggregate::sum_checked;
use datafusion::arrow::compute::kernels::numeric::neg;

use super::values::{is_numeric, map_numerics, numerics, to_numerics, NUMERIC};
use crate::numeric::{value_part, Numeric};
use crate::sql::aggregate_overload::{
    FrameAccumulator, FrameAggregate, Moment, Overload, OwnAggregate, MOMENTS,
};
use crate::sql::analyze::{coerced_types, is_text};
use crate::sql::distinct_values::DistinctKey;

/// Scalar functions with a `numeric` version (`super::functions`) or that
/// pass `numeric` values through (`coalesce` and the like).
const SCALARS: &[&str] = &[
    "abs",
    "round",
    "trunc",
    "ceil",
    "floor",
    "signum",
    "sqrt",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "power",
    "exp",
    "ln",
    "log",
    "log10",
    "cbrt",
    "to_char",
    "width_bucket",
    "generate_series",
];

/// PostgreSQL's functions of `numeric` values alone: planned here and
/// computed by `super::functions` (integers and decimals become `numeric`
/// values first).
const NUMERIC_ONLY: &[&str] = &["scale", "min_scale", "trim_scale", "div"];

/// Wraps the functions of [`SCALARS`] and [`MOMENTS`] registered in
/// `ctx` (after every other registration: the wrapped one is whatever is
/// registered under the name by then).
pub fn register_overloads(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Negative {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    for name in NUMERIC_ONLY {
        ctx.register_udf(ScalarUDF::new_from_impl(NumericOnly {
            name,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
    let state = ctx.state();
    for name in SCALARS {
        if let Some(inner) = state.scalar_functions().get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(NumericScalar::new(inner.clone())));
        }
    }
    for (name, kind) in MOMENTS {
        if let Some(inner) = state.aggregate_functions().get(*name) {
            ctx.register_udaf(Overload::udaf(
                inner.clone(),
                NumericAggregate { kind: *kind },
            ));
        }
    }
    for (name, larger) in [("max", true), ("min", false)] {
        if let Some(inner) = state.aggregate_functions().get(name) {
            ctx.register_udaf(Overload::udaf(inner.clone(), Extreme { larger }));
        }
    }
}

fn any_numeric(types: &[DataType]) -> bool {
    types.iter().any(is_numeric)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericScalar {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl NumericScalar {
    fn new(inner: Arc<ScalarUDF>) -> Self {
        let volatility = inner.signature().volatility;
        Self {
            inner,
            signature: Signature::user_defined(volatility),
        }
    }
}

impl NumericScalar {
    /// Whether a call of these argument types is planned as `numeric`
    /// (`generate_series` of decimals too: DataFusion's takes integers).
    fn numeric_call(&self, arg_types: &[DataType]) -> bool {
        any_numeric(arg_types)
            || (self.name() == "generate_series" && arg_types.iter().any(DataType::is_decimal))
    }
}

impl ScalarUDFImpl for NumericScalar {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// A call with a `numeric` argument keeps its types: `planning`
    /// converts them as PostgreSQL resolves the function.
    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        if self.numeric_call(arg_types) {
            return Ok(arg_types.to_vec());
        }
        coerced_types(arg_types, self.inner.as_ref()).or_else(|e| {
            // Text beside one other type in `coalesce` and its kin is read
            // as that type, as PostgreSQL reads an untyped literal there
            // (`coalesce(active, 'true')`, `coalesce(day, '2024-01-01')`);
            // DataFusion found no common type.
            let passing = matches!(self.name(), "coalesce" | "nullif" | "greatest" | "least");
            let typed: Vec<&DataType> = (arg_types.iter())
                .filter(|t| !is_text(t) && **t != DataType::Null)
                .collect();
            match typed.first() {
                Some(t) if passing && typed.iter().all(|o| o == t) => {
                    Ok(vec![(*t).clone(); arg_types.len()])
                }
                _ => Err(e),
            }
        })
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        if !self.numeric_call(arg_types) {
            return self.inner.return_type(arg_types);
        }
        Ok(match self.name() {
            "to_char" => DataType::Utf8,
            "width_bucket" => DataType::Int32,
            "generate_series" => DataType::List(Arc::new(Field::new_list_field(NUMERIC, true))),
            _ => NUMERIC,
        })
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DFResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        match self.numeric_call(&types) {
            true => Ok(Arc::new(Field::new(
                self.name(),
                self.return_type(&types)?,
                true,
            ))),
            false => self.inner.return_field_from_args(args),
        }
    }

    /// `coalesce` becomes a CASE, as DataFusion's does.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DFResult<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        match self.name() {
            // Passing values through works on any type.
            "coalesce" | "nullif" | "greatest" | "least" => self.inner.invoke_with_args(args),
            name if self.numeric_call(&types) => {
                internal_err!("{name} of a numeric was not planned as one")
            }
            _ => self.inner.invoke_with_args(args),
        }
    }
}

/// A function of [`NUMERIC_ONLY`]: accepts numbers, is never computed
/// itself.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericOnly {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for NumericOnly {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        // (Text: a constant PostgreSQL reads as a number, `'NaN'`.)
        let number = |t: &DataType| {
            is_numeric(t)
                || t.is_integer()
                || is_text(t)
                || matches!(
                    t,
                    DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Null
                )
        };
        let arity = if self.name == "div" { 2 } else { 1 };
        match arg_types.len() == arity && arg_types.iter().all(number) {
            true => Ok(arg_types.to_vec()),
            false => plan_err!("function {}({:?}) does not exist", self.name, arg_types),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(match self.name {
            "scale" | "min_scale" => DataType::Int32,
            _ => NUMERIC,
        })
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        internal_err!("{} was not planned on a numeric", self.name)
    }
}

/// `pg_negative(x)`: `-x` of any number, `numeric` values included
/// (`functions::calls` spells every negation so).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Negative {
    signature: Signature,
}

impl ScalarUDFImpl for Negative {
    fn name(&self) -> &str {
        "pg_negative"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let negatable = |t: &DataType| {
            is_numeric(t)
                || t.is_signed_integer()
                || t.is_floating()
                || matches!(
                    t,
                    DataType::Decimal128(..)
                        | DataType::Decimal256(..)
                        | DataType::Interval(_)
                        | DataType::Null
                )
        };
        match arg_types {
            [t] if negatable(t) => Ok(arg_types.to_vec()),
            [t] => plan_err!("operator does not exist: - {t}"),
            _ => plan_err!("- takes one operand"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(args.number_rows)?;
        let negated = match values.data_type() {
            t if is_numeric(t) => map_numerics(&[values], |v| Ok(v[0].neg()))?,
            DataType::Null => values,
            _ => neg(&values)?,
        };
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&negated, 0)?),
            false => ColumnarValue::Array(negated),
        })
    }
}

/// The calls of one of [`MOMENTS`] computed here (an
/// `aggregate_overload::Overload` over DataFusion's function).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericAggregate {
    kind: Moment,
}

impl OwnAggregate for NumericAggregate {
    /// On a `numeric`, and for `avg` and the variances on integers and
    /// decimals too (which `planning` makes `numeric` values).
    fn computes(&self, types: &[DataType]) -> bool {
        let exact = |t: &DataType| {
            t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
        };
        any_numeric(types) || (self.kind != Moment::Sum && types.len() == 1 && exact(&types[0]))
    }

    fn coerced(&self, types: &[DataType]) -> Vec<DataType> {
        types.to_vec()
    }

    fn return_type(&self, _types: &[DataType]) -> DataType {
        NUMERIC
    }

    fn state_fields(&self, name: &str, _types: &[DataType]) -> Vec<FieldRef> {
        let field =
            |part: &str, t: DataType| Arc::new(Field::new(format!("{name}[{part}]"), t, true));
        vec![
            field("sum", NUMERIC),
            field("count", DataType::Int64),
            field("squares", NUMERIC),
        ]
    }

    fn accumulator(&self, _input: &DataType) -> Box<dyn Accumulator> {
        Box::new(NumericAccumulator::new(self.kind))
    }

    fn distinct_key(&self) -> DistinctKey {
        by_value
    }
}

/// A `numeric` value without its scale, what DISTINCT tells apart (`1.5`
/// and `1.50` are one).
fn by_value(value: &ScalarValue) -> ScalarValue {
    match value {
        ScalarValue::LargeBinary(Some(bytes)) => {
            ScalarValue::LargeBinary(Some(crate::numeric::value_part(bytes).to_vec()))
        }
        other => other.clone(),
    }
}

/// The sum of a batch of integers or Decimal128s and its scale, if it
/// fits 128 bits.
fn exact_sum(values: &ArrayRef) -> Option<(i128, i8)> {
    let (values, scale) = match values.data_type() {
        DataType::Decimal128(_, scale) => (values.clone(), *scale),
        t if t.is_integer() => (cast(values, &DataType::Decimal128(38, 0)).ok()?, 0),
        _ => return None,
    };
    let sum = sum_checked(values.as_primitive::<Decimal128Type>()).ok()?;
    Some((sum.unwrap_or(0), scale))
}

/// Sum, count and sum of squares of `numeric` values, exactly: `sum` has
/// the largest scale of its inputs, `avg` is the sum over the count as
/// `numeric` division scales it, and the variances follow PostgreSQL's
/// `numeric_stddev_internal` (the square root of the variance rounded at
/// the variance's scale). NaN, or both infinities, make NaN; an infinity
/// makes itself (sum, avg) or NaN (the variances).
#[derive(Debug)]
struct NumericAccumulator {
    kind: Moment,
    sum: Numeric,
    count: i64,
    squares: Numeric,
}

impl NumericAccumulator {
    fn new(kind: Moment) -> Self {
        Self {
            kind,
            sum: Numeric::zero(),
            count: 0,
            squares: Numeric::zero(),
        }
    }

    fn add(&mut self, value: &Numeric, sign: i64) -> crate::error::Result<()> {
        let squares = matches!(self.kind, Moment::Variance { .. });
        match sign {
            1 => {
                self.sum = self.sum.add(value)?;
                if squares {
                    self.squares = self.squares.add(&value.mul(value)?)?;
                }
            }
            _ => {
                self.sum = self.sum.sub(value)?;
                if squares {
                    self.squares = self.squares.sub(&value.mul(value)?)?;
                }
            }
        }
        self.count += sign;
        Ok(())
    }

    /// Adds (`sign` 1) or takes away (-1) a batch of values: `numeric`
    /// values one by one; integers and decimals (`avg`'s) summed as the
    /// batch's one sum, exactly, in 128 bits when they fit (else one by
    /// one), so `avg` of a `numeric(12,2)` column costs an addition per row.
    fn add_batch(&mut self, values: &ArrayRef, sign: i64) -> DFResult<()> {
        let squares = matches!(self.kind, Moment::Variance { .. });
        if !squares {
            if let Some((sum, scale)) = exact_sum(values) {
                let sum = Numeric::from_scaled(sum, scale);
                self.sum = match sign {
                    1 => self.sum.add(&sum)?,
                    _ => self.sum.sub(&sum)?,
                };
                self.count += sign * (values.len() - values.null_count()) as i64;
                return Ok(());
            }
        }
        let values = match is_numeric(values.data_type()) {
            true => values.clone(),
            false => to_numerics(values.as_ref())?,
        };
        for value in numerics(values.as_ref()) {
            if let Some(value) = value? {
                self.add(&value, sign)?;
            }
        }
        Ok(())
    }

    fn result(&self) -> crate::error::Result<Option<Numeric>> {
        let count = Numeric::from_i64(self.count);
        Ok(match self.kind {
            _ if self.count == 0 => None,
            Moment::Sum => Some(self.sum.clone()),
            Moment::Avg => Some(self.sum.div(&count)?),
            Moment::Variance { sample, .. } if sample && self.count == 1 => None,
            Moment::Variance { .. }
                if !matches!(self.sum, Numeric::Finite { .. })
                    || !matches!(self.squares, Numeric::Finite { .. }) =>
            {
                Some(Numeric::NaN)
            }
            Moment::Variance { sample, root } => {
                let spread = count.mul(&self.squares)?.sub(&self.sum.mul(&self.sum)?)?;
                if spread <= Numeric::zero() {
                    return Ok(Some(Numeric::zero()));
                }
                let pairs = match sample {
                    true => count.mul(&Numeric::from_i64(self.count - 1))?,
                    false => count.mul(&count)?,
                };
                let variance = spread.div(&pairs)?;
                Some(match root {
                    true => variance.sqrt_to(variance.scale())?,
                    false => variance,
                })
            }
        })
    }
}

impl Accumulator for NumericAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.add_batch(&values[0], 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.add_batch(&values[0], -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let counts = states[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let sums = numerics(states[0].as_ref());
        let squares = numerics(states[2].as_ref());
        for ((sum, count), square) in sums.zip(counts.iter()).zip(squares) {
            if let (Some(sum), Some(count), Some(square)) = (sum?, count, square?) {
                self.sum = self.sum.add(&sum)?;
                self.squares = self.squares.add(&square)?;
                self.count += count;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let bytes = |v: &Numeric| ScalarValue::LargeBinary(Some(v.to_sortable()));
        Ok(vec![
            bytes(&self.sum),
            ScalarValue::Int64(Some(self.count)),
            bytes(&self.squares),
        ])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::LargeBinary(
            self.result()?.map(|v| v.to_sortable()),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + 2 * 64
    }
}

/// `max` (`larger`) or `min` of `numeric` values (an
/// `aggregate_overload::Overload` over DataFusion's function): PostgreSQL's
/// `numeric_larger` / `numeric_smaller` keep the new value unless the kept
/// one is strictly beyond it, so of equal values of different scales the
/// last one read is the answer.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Extreme {
    larger: bool,
}

impl OwnAggregate for Extreme {
    fn computes(&self, types: &[DataType]) -> bool {
        matches!(types, [t] if is_numeric(t))
    }

    fn coerced(&self, types: &[DataType]) -> Vec<DataType> {
        types.to_vec()
    }

    fn return_type(&self, _types: &[DataType]) -> DataType {
        NUMERIC
    }

    fn state_fields(&self, name: &str, _types: &[DataType]) -> Vec<FieldRef> {
        vec![Arc::new(Field::new(format!("{name}[kept]"), NUMERIC, true))]
    }

    fn accumulator(&self, _input: &DataType) -> Box<dyn Accumulator> {
        Box::new(ExtremeAccumulator {
            larger: self.larger,
            kept: None,
        })
    }

    /// A moving frame's values, the answer taken afresh over them, as
    /// PostgreSQL does for an aggregate it cannot take values out of.
    fn sliding_accumulator(&self, _input: &DataType) -> Box<dyn Accumulator> {
        FrameAccumulator::boxed(Extreme {
            larger: self.larger,
        })
    }

    fn distinct_key(&self) -> DistinctKey {
        by_value
    }

    fn keeps_argument_type(&self) -> bool {
        true
    }
}

/// Whether `new` (a `numeric` value's sortable bytes) replaces `kept`.
fn replaces(larger: bool, kept: &[u8], new: &[u8]) -> bool {
    let order = value_part(kept).cmp(value_part(new));
    match larger {
        true => order.is_le(),
        false => order.is_ge(),
    }
}

/// The non-NULL values of a `numeric` array, as their sortable bytes.
fn sortables(array: &ArrayRef) -> impl Iterator<Item = &[u8]> {
    array.as_binary::<i64>().iter().flatten()
}

#[derive(Debug)]
struct ExtremeAccumulator {
    larger: bool,
    kept: Option<Vec<u8>>,
}

impl Accumulator for ExtremeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        for value in sortables(&values[0]) {
            if self
                .kept
                .as_deref()
                .is_none_or(|kept| replaces(self.larger, kept, value))
            {
                self.kept = Some(value.to_vec());
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::LargeBinary(self.kept.clone()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.kept.as_ref().map_or(0, Vec::len)
    }
}

/// [`Extreme`] of a window frame that moves.
impl FrameAggregate for Extreme {
    type Value = Vec<u8>;

    fn values(&self, array: &ArrayRef) -> Vec<Vec<u8>> {
        sortables(array).map(<[u8]>::to_vec).collect()
    }

    fn aggregate(&self, values: &VecDeque<Vec<u8>>) -> DFResult<ScalarValue> {
        let kept = values
            .iter()
            .reduce(|kept, value| match replaces(self.larger, kept, value) {
                true => value,
                false => kept,
            });
        Ok(ScalarValue::LargeBinary(kept.cloned()))
    }
}
