//! `sum`, `avg` and the variances of `real` and `double precision` values
//! computed as PostgreSQL's `float.c` does, to the last bit:
//!
//! - `sum` adds the values one at a time in the argument's own type
//!   (`float4pl` / `float8pl`: a sum of `real`s is rounded to `real` at
//!   every step and is a `real`), and a sum that overflows from finite
//!   values is 22003. DataFusion added each batch in several lanes (Arrow's
//!   vectorised `sum`) and then the batches' sums, so the last digit of a
//!   sum could differ from PostgreSQL's; it summed `real`s as doubles.
//! - `avg`, `var_*` and `stddev_*` keep PostgreSQL's transition values
//!   (`float8_accum`: the count, the sum and the sum of squared
//!   differences by the Youngs-Cramer update, in doubles, with its
//!   overflow checks) and combine partial states as `float8_combine` does;
//!   DataFusion's variances use Welford's update, whose rounding differs.
//!
//! A window frame that moves is aggregated afresh for each row
//! ([`FrameAccumulator`]), as PostgreSQL does for floats (taking a value
//! back out of a sum rounds otherwise). A GROUP BY of these goes through
//! DataFusion's adapter of a plain accumulator per group, which is slower
//! than its own sums per group but gives the same digits as without GROUP
//! BY.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float32Type, Float64Type, Int64Type,
};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Accumulator;

use super::aggregate_overload::{
    FrameAccumulator, FrameAggregate, Moment, Overload, OwnAggregate, MOMENTS,
};
use super::distinct_values::DistinctKey;
use super::float_checks::refused;

/// Wraps the [`MOMENTS`] registered in `ctx`: on floats they are computed
/// here.
pub fn register(ctx: &SessionContext) {
    let state = ctx.state();
    for (name, moment) in MOMENTS {
        if let Some(inner) = state.aggregate_functions().get(*name) {
            ctx.register_udaf(Overload::udaf(inner.clone(), FloatAggregate(*moment)));
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatAggregate(Moment);

impl OwnAggregate for FloatAggregate {
    fn computes(&self, types: &[DataType]) -> bool {
        matches!(types, [DataType::Float32 | DataType::Float64])
    }

    /// `sum` keeps its argument's type; the others compute in doubles.
    fn coerced(&self, types: &[DataType]) -> Vec<DataType> {
        match self.0 {
            Moment::Sum => types.to_vec(),
            _ => vec![DataType::Float64],
        }
    }

    fn return_type(&self, types: &[DataType]) -> DataType {
        self.coerced(types).swap_remove(0)
    }

    fn state_fields(&self, name: &str, types: &[DataType]) -> Vec<FieldRef> {
        let field = |part: &str, t: &DataType| {
            Arc::new(Field::new(format!("{name}[{part}]"), t.clone(), true))
        };
        match self.0 {
            Moment::Sum => vec![field("sum", &types[0]), field("count", &DataType::Int64)],
            _ => ["count", "sum", "squares"]
                .iter()
                .map(|part| field(part, &DataType::Float64))
                .collect(),
        }
    }

    fn accumulator(&self, input: &DataType) -> Box<dyn Accumulator> {
        self.steps(input)
    }

    fn sliding_accumulator(&self, input: &DataType) -> Box<dyn Accumulator> {
        FrameAccumulator::boxed(FloatFrame {
            aggregate: FloatAggregate(self.0),
            input: input.clone(),
        })
    }

    fn distinct_key(&self) -> DistinctKey {
        by_value
    }
}

impl FloatAggregate {
    fn steps(&self, input: &DataType) -> Box<dyn Steps> {
        match self.0 {
            Moment::Sum => Box::new(SumAccumulator {
                single: *input == DataType::Float32,
                sum: 0.0,
                count: 0,
            }),
            moment => Box::new(MomentsAccumulator {
                moment,
                n: 0.0,
                sx: 0.0,
                sxx: 0.0,
            }),
        }
    }
}

/// An accumulator that takes its values one at a time.
trait Steps: Accumulator {
    fn push(&mut self, value: f64) -> DFResult<()>;
}

/// A float aggregate of a window frame that moves.
#[derive(Debug)]
struct FloatFrame {
    aggregate: FloatAggregate,
    input: DataType,
}

impl FrameAggregate for FloatFrame {
    type Value = f64;

    fn values(&self, array: &ArrayRef) -> Vec<f64> {
        floats(array.as_ref()).collect()
    }

    fn aggregate(&self, values: &VecDeque<f64>) -> DFResult<ScalarValue> {
        let mut fresh = self.aggregate.steps(&self.input);
        values.iter().try_for_each(|v| fresh.push(*v))?;
        fresh.evaluate()
    }
}

/// What DISTINCT tells apart: a float's value, as PostgreSQL compares
/// floats (`-0` is `0`; every NaN is one).
fn by_value(value: &ScalarValue) -> ScalarValue {
    let canonical = |v: f64| {
        if v.is_nan() {
            f64::NAN
        } else if v == 0.0 {
            0.0
        } else {
            v
        }
    };
    match value {
        ScalarValue::Float64(Some(v)) => ScalarValue::Float64(Some(canonical(*v))),
        ScalarValue::Float32(Some(v)) => ScalarValue::Float64(Some(canonical(f64::from(*v)))),
        other => other.clone(),
    }
}

/// The non-NULL values of a `real` or `double precision` array, as doubles.
fn floats(array: &dyn Array) -> Box<dyn Iterator<Item = f64> + '_> {
    match array.data_type() {
        DataType::Float32 => Box::new(
            (array.as_primitive::<Float32Type>().iter())
                .flatten()
                .map(f64::from),
        ),
        _ => Box::new(array.as_primitive::<Float64Type>().iter().flatten()),
    }
}

/// `sum` of floats: PostgreSQL's `float4pl` / `float8pl` from the first
/// value on, NULL over no values.
#[derive(Debug)]
struct SumAccumulator {
    /// Whether the values are `real`s, added in single precision.
    single: bool,
    sum: f64,
    count: i64,
}

impl SumAccumulator {
    /// `x` in the values' precision.
    fn rounded(&self, x: f64) -> f64 {
        match self.single {
            true => f64::from(x as f32),
            false => x,
        }
    }

    /// Adds `value`, the sum of `count` values: the first is the sum,
    /// each later one is added, and 22003 for an infinity from finite
    /// operands.
    fn add(&mut self, value: f64, count: i64) -> DFResult<()> {
        if self.count > 0 {
            let sum = self.rounded(self.sum + value);
            refused(sum, self.sum.is_finite() && value.is_finite(), false)?;
            self.sum = sum;
        } else {
            self.sum = value;
        }
        self.count += count;
        Ok(())
    }

    fn value(&self, of: Option<f64>) -> ScalarValue {
        match self.single {
            true => ScalarValue::Float32(of.map(|v| v as f32)),
            false => ScalarValue::Float64(of),
        }
    }
}

impl Steps for SumAccumulator {
    fn push(&mut self, value: f64) -> DFResult<()> {
        self.add(value, 1)
    }
}

impl Accumulator for SumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        floats(values[0].as_ref()).try_for_each(|v| self.add(v, 1))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let counts = states[1].as_primitive::<Int64Type>();
        let sums = floats(states[0].as_ref());
        // A state without values has a NULL sum, which `floats` skips.
        for (sum, count) in sums.zip(counts.iter().flatten().filter(|c| *c > 0)) {
            self.add(sum, count)?;
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?, ScalarValue::Int64(Some(self.count))])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(self.value((self.count > 0).then_some(self.sum)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `avg` and the variances of floats: PostgreSQL's `float8_accum`
/// transition values `n`, `sx` (the sum) and `sxx` (the sum of squared
/// differences from the mean), kept by the Youngs-Cramer update.
#[derive(Debug)]
struct MomentsAccumulator {
    moment: Moment,
    n: f64,
    sx: f64,
    sxx: f64,
}

impl MomentsAccumulator {
    /// `float8_accum`: one more value.
    fn add(&mut self, value: f64) -> DFResult<()> {
        let (before, sum_before) = (self.n, self.sx);
        self.n += 1.0;
        self.sx += value;
        if before > 0.0 {
            let tmp = value * self.n - self.sx;
            self.sxx += tmp * tmp / (self.n * before);
            if self.sx.is_infinite() || self.sxx.is_infinite() {
                refused(
                    f64::INFINITY,
                    sum_before.is_finite() && value.is_finite(),
                    false,
                )?;
                self.sxx = f64::NAN;
            }
        } else if !value.is_finite() {
            // An infinity or NaN first: its spread is unknown.
            self.sxx = f64::NAN;
        }
        Ok(())
    }

    /// `float8_combine`: the values of another partial state.
    fn combine(&mut self, n: f64, sx: f64, sxx: f64) -> DFResult<()> {
        if n == 0.0 {
            return Ok(());
        }
        if self.n == 0.0 {
            (self.n, self.sx, self.sxx) = (n, sx, sxx);
            return Ok(());
        }
        let total = self.n + n;
        let sum = self.sx + sx;
        refused(sum, self.sx.is_finite() && sx.is_finite(), false)?;
        let tmp = self.sx / self.n - sx / n;
        let squares = self.sxx + sxx + self.n * n * tmp * tmp / total;
        refused(squares, self.sxx.is_finite() && sxx.is_finite(), false)?;
        (self.n, self.sx, self.sxx) = (total, sum, squares);
        Ok(())
    }

    /// `float8_avg`, `float8_var_samp` / `_pop`, `float8_stddev_*`.
    fn result(&self) -> Option<f64> {
        match self.moment {
            Moment::Sum | Moment::Avg => (self.n > 0.0).then(|| self.sx / self.n),
            Moment::Variance { sample, root } => {
                let divisor = if sample { self.n - 1.0 } else { self.n };
                if divisor <= 0.0 {
                    return None;
                }
                // Rounding can make the sum of squares negative.
                let variance = match self.sxx <= 0.0 {
                    true => 0.0,
                    false => self.sxx / divisor,
                };
                Some(if root { variance.sqrt() } else { variance })
            }
        }
    }
}

impl Steps for MomentsAccumulator {
    fn push(&mut self, value: f64) -> DFResult<()> {
        self.add(value)
    }
}

impl Accumulator for MomentsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        floats(values[0].as_ref()).try_for_each(|v| self.add(v))
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let column = |i: usize| states[i].as_primitive::<Float64Type>();
        let (n, sx, sxx) = (column(0), column(1), column(2));
        for i in 0..n.len() {
            self.combine(n.value(i), sx.value(i), sxx.value(i))?;
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok([self.n, self.sx, self.sxx]
            .map(|v| ScalarValue::Float64(Some(v)))
            .to_vec())
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.result()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
