//! `mode() WITHIN GROUP (ORDER BY x)`: the most frequent value of `x`
//! among the group's non-NULL values; of values equally frequent, the
//! first in the ORDER BY's order (the smallest, or with DESC the largest),
//! as PostgreSQL's, which reads them sorted and keeps the first run of the
//! greatest length. Numerics of one value and different scales are one
//! value (of the first scale read).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::{exec_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};

use crate::numeric::value_part;
use crate::sql::numeric::is_numeric;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

pub fn mode() -> AggregateUDF {
    AggregateUDF::new_from_impl(Mode {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Mode {
    signature: Signature,
}

impl AggregateUDFImpl for Mode {
    fn name(&self) -> &str {
        "mode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        Ok(args[0].clone())
    }

    /// The values seen and how often, as two lists.
    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        let value = args.input_fields[0].data_type().clone();
        let list = |name: &str, element: DataType| {
            let element = Arc::new(Field::new_list_field(element, true));
            Arc::new(Field::new(name, DataType::List(element), true))
        };
        Ok(vec![
            list("values", value),
            list("counts", DataType::UInt64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        let descending = args.order_bys.first().is_some_and(|o| o.options.descending);
        Ok(Box::new(ModeAccumulator {
            data_type: args.return_field.data_type().clone(),
            counts: HashMap::new(),
            descending,
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct ModeAccumulator {
    data_type: DataType,
    /// By each value's key ([`Self::key`]): the first value read with it,
    /// and how often it came.
    counts: HashMap<ScalarValue, (ScalarValue, u64)>,
    /// Ties go to the largest value (`ORDER BY x DESC`).
    descending: bool,
}

impl ModeAccumulator {
    /// What tells values apart: a `numeric`'s value without its scale
    /// (`2.5` and `2.50` are one value, as PostgreSQL's equality has it);
    /// any other value itself.
    fn key(&self, value: &ScalarValue) -> ScalarValue {
        match value {
            ScalarValue::LargeBinary(Some(bytes)) if is_numeric(&self.data_type) => {
                ScalarValue::LargeBinary(Some(value_part(bytes).to_vec()))
            }
            other => other.clone(),
        }
    }

    fn add(&mut self, values: &ArrayRef, counts: Option<&ArrayRef>) -> DFResult<()> {
        let counts = counts.map(|c| c.as_primitive::<UInt64Type>());
        for i in (0..values.len()).filter(|&i| values.is_valid(i)) {
            let value = ScalarValue::try_from_array(values, i)?;
            let entry = self.counts.entry(self.key(&value)).or_insert((value, 0));
            entry.1 += counts.map_or(1, |c| c.value(i));
        }
        Ok(())
    }
}

impl Accumulator for ModeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.add(&values[0], None)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in (0..values.len()).filter(|&row| values.is_valid(row)) {
            self.add(&values.value(row), Some(&counts.value(row)))?;
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.counts.values().map(|(v, _)| v.clone()).collect();
        let counts: Vec<ScalarValue> = (self.counts.values())
            .map(|(_, count)| ScalarValue::UInt64(Some(*count)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::UInt64)),
        ])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let mut best: Option<(&ScalarValue, &ScalarValue, u64)> = None;
        for (key, (value, count)) in &self.counts {
            let count = *count;
            let better = match best {
                None => true,
                Some((held, _, held_count)) => {
                    let Some(order) = key.partial_cmp(held) else {
                        return exec_err!("mode: {key} and {held} do not compare");
                    };
                    let first = match self.descending {
                        true => order.is_gt(),
                        false => order.is_lt(),
                    };
                    count > held_count || count == held_count && first
                }
            };
            if better {
                best = Some((key, value, count));
            }
        }
        match best {
            Some((_, value, _)) => Ok(value.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .counts
                .iter()
                .map(|(k, (v, _))| k.size() + v.size() + std::mem::size_of::<u64>())
                .sum::<usize>()
    }
}
