//! Integer arithmetic that fails on overflow, as in PostgreSQL.
//!
//! DataFusion adds, subtracts and multiplies integers with wrapping
//! kernels, so `2147483647 + 1` would silently be `-2147483648` (and an
//! `UPDATE ... SET n = n + 1` could store it). This analyzer rule, run
//! after type coercion, replaces `+`, `-` and `*` on `smallint`, `integer`
//! and `bigint` operands of the same type with functions using Arrow's
//! checked kernels, which fail with 22003 `integer out of range`; and
//! float arithmetic and functions with PostgreSQL's checks
//! (`sql::float_checks`: overflow, a zero divisor). Output column names are
//! kept, so the rest of the plan is unchanged.
//!
//! The same pass divides `numeric` values at PostgreSQL's scale, rounds
//! floats half to even, casts decimals to floats exactly, rounds
//! floats and decimals cast to integers and reads exponents in text cast
//! to numeric (`sql::numeric`), and reads text cast to dates and
//! timestamps as PostgreSQL does (`sql::datetime`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Datum};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF};
use datafusion::optimizer::AnalyzerRule;

use super::analyze::{array_udf, rewrite_node_expressions};
use crate::error::{Error, InputError};

#[derive(Debug, Default)]
pub struct CheckedIntegerArithmetic;

impl AnalyzerRule for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DFResult<LogicalPlan> {
        // A VALUES list's schema is its rows' types, which a quotient here
        // changes (`(VALUES (1.0 / 3))` failed as a batch of another type
        // than its schema): it is read from its rows again, and the nodes
        // after it (above it) read their schemas again too.
        let values_changed = std::cell::Cell::new(false);
        plan.transform_up_with_subqueries(|node| {
            let values = matches!(node, LogicalPlan::Values(_));
            let stale = values_changed.get();
            let rewritten = rewrite_node_expressions(node, values, |e, schema| {
                let pg = super::numeric::float_round(&e, schema)
                    .or_else(|| super::numeric::rescaled_rounding(&e, schema))
                    .or_else(|| super::numeric::exact_float_cast(&e, schema))
                    .or_else(|| super::numeric::integer_cast(&e, schema))
                    .or_else(|| super::float_checks::checked_float(&e, schema))
                    .or_else(|| super::datetime::text_input_cast(&e, schema, config));
                match pg {
                    Some(rewritten) => Ok(Transformed::yes(rewritten)),
                    None => checked(e, schema),
                }
            })?;
            values_changed.set(stale || (values && rewritten.transformed));
            match stale {
                true => rewritten.transform_data(|n| n.recompute_schema().map(Transformed::yes)),
                false => Ok(rewritten),
            }
        })
        .map(|t| t.data)
    }
}

/// `a op b` on same-typed integers, as a checked function call.
fn checked(expr: Expr, schema: &DFSchema) -> DFResult<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
    ) {
        return Ok(Transformed::no(expr));
    }
    // Types that cannot be resolved here (a scan's own filters) stay as they are.
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    if left_type != right_type {
        return Ok(Transformed::no(expr));
    }
    let udf = match (op, integer_name(&left_type)) {
        (Operator::Divide, _) | (_, None) => return Ok(Transformed::no(expr)),
        (_, Some(type_name)) => checked_udf(*op, left_type, type_name),
    };
    Ok(Transformed::yes(
        udf.call(vec![left.as_ref().clone(), right.as_ref().clone()]),
    ))
}

fn integer_name(data_type: &DataType) -> Option<&'static str> {
    match data_type {
        DataType::Int16 => Some("smallint"),
        DataType::Int32 => Some("integer"),
        DataType::Int64 => Some("bigint"),
        _ => None,
    }
}

/// One of Arrow's checked arithmetic kernels.
type Kernel = fn(&dyn Datum, &dyn Datum) -> Result<ArrayRef, ArrowError>;

fn checked_udf(op: Operator, data_type: DataType, type_name: &'static str) -> Arc<ScalarUDF> {
    let (verb, kernel): (&str, Kernel) = match op {
        Operator::Plus => ("add", numeric::add),
        Operator::Minus => ("sub", numeric::sub),
        _ => ("mul", numeric::mul),
    };
    array_udf(
        &format!("pg_checked_{verb}_{type_name}"),
        vec![data_type.clone(), data_type.clone()],
        data_type,
        move |arrays| {
            kernel(&arrays[0], &arrays[1])
                .map_err(|_| DataFusionError::External(Box::new(out_of_range(type_name))))
        },
    )
}

/// PostgreSQL's error for integer arithmetic whose result does not fit
/// `type_name` (`integer`, ...).
pub fn out_of_range(type_name: &str) -> Error {
    Error::input(InputError::OutOfRange, format!("{type_name} out of range"))
}
