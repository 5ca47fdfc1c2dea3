//! Integer literals typed as PostgreSQL types them.
//!
//! PostgreSQL types an integer literal `integer` when it fits in 32 bits and
//! `bigint` otherwise; DataFusion's SQL planner makes them all `Int64`. So
//! `SELECT 1` would be described as `int8` (a driver asking for an `i32`
//! fails) and `2147483647 + 1` would be 2147483648 instead of 22003. This
//! analyzer rule, run before type coercion, narrows such literals to
//! `Int32`; coercion then types the expressions around them as PostgreSQL
//! does (`int4 + int4` is `int4`, `int8 + int4` is `int8`), and checked
//! arithmetic (`sql::checked`) catches the overflow.
//!
//! Only expressions whose node schema is recomputed are touched:
//! projections, filters, aggregates, windows, sorts and join conditions.
//! `LIMIT` / `OFFSET` stay `Int64` (DataFusion requires it), and so do
//! `VALUES` rows, whose schema the planner fixed (INSERT casts them to the
//! column types anyway). Output column names are kept. A plan with a
//! recursive CTE is left as planned: the CTE's work table has the column
//! types the planner gave it, which the recursive term must keep.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::metadata::{FieldMetadata, ScalarAndMetadata};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{ParamValues, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

use super::analyze::rewrite_node_expressions;

/// The literal metadata key of a bound parameter's value ([`parameters`]).
pub const PARAMETER_METADATA: &str = "shardforge.parameter";

/// The type a parameter is bound as: the number type the client declared
/// (psycopg's int2 for a small Python int: `$1 + 1` is then `integer`, as
/// in PostgreSQL) where the plan inferred a number too, or a declared
/// numeric whatever the plan inferred (`pg::params::own_scale_numeric`);
/// otherwise the plan's type, and the declared one when the plan has none.
pub fn parameter_type(
    declared: Option<&DataType>,
    inferred: Option<&DataType>,
) -> Option<DataType> {
    let number = |t: &DataType| t.is_integer() || t.is_floating() || t.is_decimal();
    match (declared, inferred) {
        (Some(d), _) if d.is_decimal() => Some(d.clone()),
        (Some(d), Some(i)) if number(d) && number(i) => Some(d.clone()),
        (d, i) => i.or(d).cloned(),
    }
}

/// `values` marked as parameters' (see [`narrow`]).
pub fn parameters(values: ParamValues) -> ParamValues {
    let marked = |value: ScalarAndMetadata| {
        let mut metadata = value
            .metadata
            .map(|m| m.inner().clone())
            .unwrap_or_default();
        metadata.insert(PARAMETER_METADATA.to_string(), String::new());
        ScalarAndMetadata::new(value.value, Some(FieldMetadata::from(metadata)))
    };
    match values {
        ParamValues::List(list) => ParamValues::List(list.into_iter().map(marked).collect()),
        ParamValues::Map(map) => {
            ParamValues::Map(map.into_iter().map(|(k, v)| (k, marked(v))).collect())
        }
    }
}

#[derive(Debug, Default)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "postgresql_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        let mut recursive = false;
        plan.apply_with_subqueries(|node| {
            recursive = matches!(node, LogicalPlan::RecursiveQuery(_));
            Ok(if recursive {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if recursive {
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|node| {
            if !matches!(
                node,
                LogicalPlan::Projection(_)
                    | LogicalPlan::Filter(_)
                    | LogicalPlan::Aggregate(_)
                    | LogicalPlan::Window(_)
                    | LogicalPlan::Sort(_)
                    | LogicalPlan::Join(_)
            ) {
                return Ok(Transformed::no(node));
            }
            rewrite_node_expressions(node, true, |e, _| narrow(e))
        })
        .map(|t| t.data)
    }
}

/// An `Int64` literal that fits in 32 bits, as `Int32`; a numeric literal
/// with an exponent (`1e6`, a decimal of negative scale, which parts of
/// DataFusion cannot take) as the same number with scale 0.
fn narrow(expr: Expr) -> DFResult<Transformed<Expr>> {
    match expr {
        // A bound parameter has the type the client was told (`$1 + 1`
        // with an int8 `$1` is int8, as described); only SQL's literals
        // are narrowed.
        Expr::Literal(_, Some(ref metadata))
            if metadata.inner().contains_key(PARAMETER_METADATA) =>
        {
            Ok(Transformed::no(expr))
        }
        Expr::Literal(ScalarValue::Int64(Some(v)), metadata) if i32::try_from(v).is_ok() => Ok(
            Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v as i32)), metadata)),
        ),
        Expr::Literal(ScalarValue::Decimal128(Some(v), precision, scale), metadata)
            if scale < 0 =>
        {
            let digits = u32::from(scale.unsigned_abs());
            let widened = u32::from(precision) + digits;
            let scaled = 10i128.checked_pow(digits).and_then(|f| v.checked_mul(f));
            let literal = match scaled {
                Some(scaled) if widened <= 38 => {
                    ScalarValue::Decimal128(Some(scaled), widened as u8, 0)
                }
                // Too wide for 38 digits: left to DataFusion as written.
                _ => {
                    return Ok(Transformed::no(Expr::Literal(
                        ScalarValue::Decimal128(Some(v), precision, scale),
                        metadata,
                    )))
                }
            };
            Ok(Transformed::yes(Expr::Literal(literal, metadata)))
        }
        other => Ok(Transformed::no(other)),
    }
}
