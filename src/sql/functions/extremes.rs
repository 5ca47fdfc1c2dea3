//! `min` and `max` of intervals as PostgreSQL's: by length, a month of 30
//! days and a day of 24 hours (`sql::interval::length`), keeping the value
//! as it was written (`max` of `1 mon` and `32 days` is `32 days`).
//! DataFusion's compared the months, then the days, then the time, so its
//! `max` was `1 mon` and its `min` of `1 day` and `25:00:00` was
//! `25:00:00`. `sql::interval::IntervalOrder` plans `min(x)` / `max(x)` of
//! an interval as these.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use crate::sql::interval::length;

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
