//! `agg(DISTINCT x)` for the aggregates ShardForge computes itself (`avg`
//! and the variances of exact numbers and floats, `sum` of `numeric`
//! values and floats, `avg` of intervals): DataFusion hands such an
//! accumulator the DISTINCT flag and leaves the rest to it, and ours
//! ignored it (`avg(DISTINCT x)` of 1, 1, 4 was 2, PostgreSQL's 2.5).
//! [`DistinctValues`] feeds its inner accumulator each value once, values
//! being the same when their `key`s are (a `numeric`'s value without its
//! scale: `1.5` and `1.50` are one; an interval's length: `1 mon` and `30
//! days` are one; a float's value: `-0` and `0` are one), and carries the
//! values seen as its state, a list, for partial aggregation.
//!
//! [`distinct_in_order`]: `array_agg(DISTINCT x)` and `string_agg(DISTINCT
//! x, ...)` list their values in order, as PostgreSQL's (which sorts them
//! to find the distinct ones) do and applications rely on; DataFusion's
//! came in hash order.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{Accumulator, Expr};

/// What tells two values apart.
pub type DistinctKey = fn(&ScalarValue) -> ScalarValue;

#[derive(Debug)]
pub struct DistinctValues {
    inner: Box<dyn Accumulator>,
    key: DistinctKey,
    data_type: DataType,
    keys: HashSet<ScalarValue>,
    /// The values passed on, for the state.
    values: Vec<ScalarValue>,
}

impl DistinctValues {
    pub fn new(inner: Box<dyn Accumulator>, data_type: DataType, key: DistinctKey) -> Self {
        Self {
            inner,
            key,
            data_type,
            keys: HashSet::new(),
            values: Vec::new(),
        }
    }

    /// The state's one field: the values seen, as a list.
    pub fn state_fields(name: &str, data_type: &DataType) -> Vec<FieldRef> {
        let item = Arc::new(Field::new_list_field(data_type.clone(), true));
        vec![Arc::new(Field::new(
            format!("{name}[distinct]"),
            DataType::List(item),
            true,
        ))]
    }
}

impl Accumulator for DistinctValues {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let array = &values[0];
        let mut fresh = Vec::new();
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            if !value.is_null() && self.keys.insert((self.key)(&value)) {
                fresh.push(value);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        self.values.extend(fresh.iter().cloned());
        self.inner
            .update_batch(&[ScalarValue::iter_to_array(fresh)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let lists = states[0].as_list::<i32>();
        for values in lists.iter().flatten() {
            self.update_batch(&[values])?;
        }
        Ok(())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let list = ScalarValue::new_list_nullable(&self.values, &self.data_type);
        Ok(vec![ScalarValue::List(list)])
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.inner.size()
            + self.values.iter().map(ScalarValue::size).sum::<usize>() * 2
    }
}

/// See the module's documentation. An expression rewrite.
pub fn distinct_in_order(expr: Expr, _schema: &DFSchema) -> Transformed<Expr> {
    match expr {
        Expr::AggregateFunction(mut aggregate)
            if aggregate.params.distinct
                && aggregate.params.order_by.is_empty()
                && matches!(aggregate.func.name(), "array_agg" | "string_agg") =>
        {
            // `json_agg(DISTINCT x)` is one of JSON texts
            // (`sql::json::planning`), which sort otherwise than `x`.
            let value = aggregate.params.args.first().filter(|value| {
                !matches!(value, Expr::ScalarFunction(f) if f.name().ends_with("_agg_item"))
            });
            let Some(value) = value else {
                return Transformed::no(Expr::AggregateFunction(aggregate));
            };
            aggregate.params.order_by = vec![value.clone().sort(true, false)];
            Transformed::yes(Expr::AggregateFunction(aggregate))
        }
        other => Transformed::no(other),
    }
}
