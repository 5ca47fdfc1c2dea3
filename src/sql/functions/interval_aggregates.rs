//! `min` and `max` of intervals as PostgreSQL's: by length, a month of 30
//! days and a day of 24 hours (`sql::interval::length`), keeping the value
//! as it was written (`max` of `1 mon` and `32 days` is `32 days`).
//! DataFusion's compared the months, then the days, then the time, so its
//! `max` was `1 mon` and its `min` of `1 day` and `25:00:00` was
//! `25:00:00`. `sql::interval::IntervalOrder` plans `min(x)` / `max(x)` of
//! an interval as these.
//!
//! `avg` of intervals, which DataFusion's does not take, is PostgreSQL's
//! `interval_avg`: each field summed (overflow an error, as
//! `interval_pl`'s) and the sum divided by the count
//! (`sql::interval::divide`); [`register_average`] wraps the `avg`
//! registered, which computes every other call. `avg(DISTINCT x)` counts
//! intervals of one length once (`sql::distinct_values`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType,
    IntervalUnit,
};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::input_error;
use crate::error::InputError;
use crate::sql::aggregate_overload::{Overload, OwnAggregate};
use crate::sql::distinct_values::DistinctKey;
use crate::sql::interval::{divide, length};

/// The names the two are planned under.
pub const INTERVAL_MIN: &str = "interval_min";
pub const INTERVAL_MAX: &str = "interval_max";

pub fn interval_min() -> AggregateUDF {
    extreme(false)
}

pub fn interval_max() -> AggregateUDF {
    extreme(true)
}

fn extreme(greatest: bool) -> AggregateUDF {
    AggregateUDF::new_from_impl(Extreme {
        greatest,
        signature: Signature::exact(vec![interval_type()], Volatility::Immutable),
    })
}

fn interval_type() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Extreme {
    greatest: bool,
    signature: Signature,
}

impl AggregateUDFImpl for Extreme {
    fn name(&self) -> &str {
        match self.greatest {
            true => INTERVAL_MAX,
            false => INTERVAL_MIN,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(interval_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_value", args.name),
            interval_type(),
            true,
        ))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        Ok(Box::new(ExtremeAccumulator {
            greatest: self.greatest,
            kept: None,
        }))
    }
}

#[derive(Debug)]
struct ExtremeAccumulator {
    greatest: bool,
    kept: Option<IntervalMonthDayNano>,
}

impl ExtremeAccumulator {
    /// Keeps `value` if it is beyond the kept one; of two of one length,
    /// the later, as PostgreSQL's `interval_larger` / `interval_smaller`.
    fn offer(&mut self, values: &ArrayRef) {
        for value in values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .flatten()
        {
            let beyond = match self.kept {
                None => true,
                Some(kept) if self.greatest => length(value) >= length(kept),
                Some(kept) => length(value) <= length(kept),
            };
            if beyond {
                self.kept = Some(value);
            }
        }
    }
}

impl Accumulator for ExtremeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.offer(&values[0]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        self.offer(&states[0]);
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::IntervalMonthDayNano(self.kept))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// Wraps the `avg` registered in `ctx`: intervals are averaged here,
/// everything else by it.
pub fn register_average(ctx: &SessionContext) {
    if let Some(inner) = ctx.state().aggregate_functions().get("avg") {
        ctx.register_udaf(Overload::udaf(inner.clone(), Average));
    }
}

/// `avg` of intervals (an `aggregate_overload::Overload` over the `avg`
/// registered).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Average;

impl OwnAggregate for Average {
    fn computes(&self, types: &[DataType]) -> bool {
        matches!(types, [DataType::Interval(_)])
    }

    fn coerced(&self, _types: &[DataType]) -> Vec<DataType> {
        vec![interval_type()]
    }

    fn return_type(&self, _types: &[DataType]) -> DataType {
        interval_type()
    }

    fn state_fields(&self, name: &str, _types: &[DataType]) -> Vec<FieldRef> {
        vec![
            Arc::new(Field::new(format!("{name}[sum]"), interval_type(), true)),
            Arc::new(Field::new(format!("{name}[count]"), DataType::Int64, true)),
        ]
    }

    fn accumulator(&self, _input: &DataType) -> Box<dyn Accumulator> {
        Box::<AverageAccumulator>::default()
    }

    fn distinct_key(&self) -> DistinctKey {
        by_length
    }
}

/// An interval's length, what DISTINCT tells apart (`1 mon` and `30 days`
/// are one, as PostgreSQL compares them).
fn by_length(value: &ScalarValue) -> ScalarValue {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            ScalarValue::Decimal128(Some(length(*v)), 38, 0)
        }
        other => other.clone(),
    }
}

/// The fields' sums (each field overflowing as PostgreSQL's `interval_pl`)
/// and the count of values.
#[derive(Debug, Default)]
struct AverageAccumulator {
    sum: IntervalMonthDayNano,
    count: i64,
}

impl AverageAccumulator {
    /// Adds (`sign` 1) or takes away (-1) the `values` counted `counts`
    /// times each (1 for values, the counts of partial states).
    fn add(&mut self, values: &ArrayRef, counts: Option<&ArrayRef>, sign: i32) -> DFResult<()> {
        let out_of_range =
            || input_error(InputError::DatetimeFieldOverflow, "interval out of range");
        let counts = counts.map(|c| c.as_primitive::<Int64Type>());
        for (row, value) in values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .enumerate()
        {
            let Some(value) = value else { continue };
            let sum = &mut self.sum;
            let months = value.months.checked_mul(sign);
            let days = value.days.checked_mul(sign);
            let nanoseconds = value.nanoseconds.checked_mul(i64::from(sign));
            sum.months = months
                .and_then(|m| sum.months.checked_add(m))
                .ok_or_else(out_of_range)?;
            sum.days = days
                .and_then(|d| sum.days.checked_add(d))
                .ok_or_else(out_of_range)?;
            sum.nanoseconds = nanoseconds
                .and_then(|n| sum.nanoseconds.checked_add(n))
                .ok_or_else(out_of_range)?;
            self.count += i64::from(sign) * counts.map_or(1, |c| c.value(row));
        }
        Ok(())
    }
}

impl Accumulator for AverageAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.add(&values[0], None, 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.add(&values[0], None, -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        self.add(&states[0], Some(&states[1]), 1)
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::IntervalMonthDayNano(Some(self.sum)),
            ScalarValue::Int64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let average = match self.count {
            0 => None,
            count => Some(divide(self.sum, count as f64)?),
        };
        Ok(ScalarValue::IntervalMonthDayNano(average))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::interval::parse;
    use datafusion::arrow::array::IntervalMonthDayNanoArray;

    #[test]
    fn extremes_are_by_length_and_keep_the_value_as_written() {
        let values: IntervalMonthDayNanoArray = ["25 hours", "1 day", "1 mon", "32 days"]
            .iter()
            .map(|v| Some(parse(v).unwrap()))
            .collect();
        let values: ArrayRef = Arc::new(values);
        for (greatest, want) in [(true, "32 days"), (false, "1 day")] {
            let mut accumulator = ExtremeAccumulator {
                greatest,
                kept: None,
            };
            accumulator
                .update_batch(std::slice::from_ref(&values))
                .unwrap();
            assert_eq!(
                accumulator.evaluate().unwrap(),
                ScalarValue::IntervalMonthDayNano(Some(parse(want).unwrap())),
                "greatest: {greatest}"
            );
        }
    }
}
