//! `percentile_cont(f) WITHIN GROUP (ORDER BY x)` as PostgreSQL computes
//! it: the group's non-NULL values in the ORDER BY's order, and between
//! the two at position `f * (n - 1)` (counted from 0) the value `first +
//! proportion * (second - first)`. DataFusion's rounds the proportion to
//! six digits (3.699999 for PostgreSQL's 3.6999999999999997). The values
//! are `double precision` (`calls` casts integers and numerics to it, as
//! PostgreSQL does); a fraction outside 0 to 1 is 22003.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{plan_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};

use super::input_error;
use crate::error::InputError;

pub fn percentile_cont() -> AggregateUDF {
    AggregateUDF::new_from_impl(PercentileCont {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PercentileCont {
    signature: Signature,
}

impl AggregateUDFImpl for PercentileCont {
    fn name(&self) -> &str {
        "percentile_cont"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let number = |t: &DataType| t.is_numeric() || t.is_null();
        match arg_types {
            [x, fraction] if number(x) && number(fraction) => {
                Ok(vec![DataType::Float64, DataType::Float64])
            }
            _ => plan_err!("function percentile_cont({arg_types:?}) does not exist"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Float64)
    }

    /// The values seen, as a list.
    fn state_fields(&self, _args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        let element = Arc::new(Field::new_list_field(DataType::Float64, true));
        Ok(vec![Arc::new(Field::new(
            "values",
            DataType::List(element),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        // A constant: evaluated on no rows.
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        let fraction = match args.exprs.get(1).map(|e| e.evaluate(&empty)).transpose()? {
            Some(ColumnarValue::Scalar(ScalarValue::Float64(f))) => f,
            _ => return plan_err!("percentile_cont takes a constant fraction"),
        };
        if let Some(f) = fraction.filter(|f| !(0.0..=1.0).contains(f)) {
            return Err(input_error(
                InputError::OutOfRange,
                format!("percentile value {f} is not between 0 and 1"),
            ));
        }
        Ok(Box::new(PercentileAccumulator {
            fraction,
            descending: args.order_bys.first().is_some_and(|o| o.options.descending),
            values: Vec::new(),
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct PercentileAccumulator {
    /// None: a NULL fraction, whose answer is NULL.
    fraction: Option<f64>,
    descending: bool,
    values: Vec<f64>,
}

/// PostgreSQL's order of `double precision` values: NaN above every other.
fn float8_order(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let values = values[0].as_primitive::<Float64Type>();
        self.values.extend(values.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let lists = states[0].as_list::<i32>();
        for row in (0..lists.len()).filter(|&row| lists.is_valid(row)) {
            self.update_batch(&[lists.value(row)])?;
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = (self.values.iter())
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Float64,
        ))])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let Some(fraction) = self.fraction.filter(|_| !self.values.is_empty()) else {
            return Ok(ScalarValue::Float64(None));
        };
        match self.descending {
            true => self.values.sort_by(|a, b| float8_order(b, a)),
            false => self.values.sort_by(float8_order),
        }
        let position = fraction * (self.values.len() - 1) as f64;
        let (first, second) = (position.floor(), position.ceil());
        let first_value = self.values[first as usize];
        let value = match second > first {
            true => {
                let second_value = self.values[second as usize];
                first_value + (position - first) * (second_value - first_value)
            }
            false => first_value,
        };
        Ok(ScalarValue::Float64(Some(value)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}
