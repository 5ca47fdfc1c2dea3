//! Literals typed as PostgreSQL types them: integers ([`IntegerLiterals`]),
//! and strings beside a `boolean` or an `interval` ([`literal_operands`],
//! [`boolean_literals`]).
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
//! projections, filters, aggregates, windows, sorts and join conditions,
//! and the rows of a `VALUES` list, whose column is then `integer` where
//! all its values are (`SELECT x FROM (VALUES (1), (2)) v(x)` reads
//! `int4`, as in PostgreSQL: node-pg returns a number, not a string). A
//! `UNION` of `integer` columns is `integer` too. Once a list or union is
//! retyped, the nodes above it take their schemas from their inputs again.
//! `LIMIT` / `OFFSET` stay `Int64` (DataFusion requires it), and so do the
//! `VALUES` of an INSERT or UPDATE (cast to the column types anyway).
//! Output column names are kept. A plan with a recursive CTE is left as
//! planned: the CTE's work table has the column types the planner gave it,
//! which the recursive term must keep.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::metadata::{FieldMetadata, ScalarAndMetadata};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ParamValues, Result as DFResult, ScalarValue};
use datafusion::logical_expr::planner::RawBinaryExpr;
use datafusion::logical_expr::{
    cast, Cast, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Union, Values,
};
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
        let dml = matches!(plan, LogicalPlan::Dml(_));
        // Set once a VALUES list or a UNION below changed its column types:
        // every node visited after it (its ancestors among them, as the
        // walk is bottom-up) then recomputes its schema from its inputs.
        let mut retyped = false;
        plan.transform_up_with_subqueries(|node| {
            let node = match node {
                LogicalPlan::Values(values) if !dml => {
                    let node = narrow_values(values)?;
                    retyped |= node.transformed;
                    return Ok(node);
                }
                LogicalPlan::Union(union) => {
                    let node = integer_union(union)?;
                    retyped |= node.transformed;
                    return Ok(node.update_data(LogicalPlan::Union));
                }
                node @ (LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Join(_)) => {
                    rewrite_node_expressions(node, !retyped, |e, _| narrow(e))?
                }
                node => Transformed::no(node),
            };
            if retyped {
                node.map_data(LogicalPlan::recompute_schema)
            } else {
                Ok(node)
            }
        })
        .map(|t| t.data)
    }
}

/// A VALUES list's integer literals narrowed ([`narrow`]), its typed NULLs
/// too (the planner gave them the column's `Int64`), and its schema read
/// from its rows again. A list with a parameter is left as planned (its
/// type is not known yet).
fn narrow_values(values: Values) -> DFResult<Transformed<LogicalPlan>> {
    let parameter = values.values.iter().flatten().any(|e| {
        e.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))
            .unwrap_or(true)
    });
    if parameter {
        return Ok(Transformed::no(LogicalPlan::Values(values)));
    }
    let floats = float_columns(&values.values);
    let mut changed = floats.iter().any(Option::is_some);
    let mut rows = Vec::with_capacity(values.values.len());
    for row in values.values {
        let mut narrowed = Vec::with_capacity(row.len());
        for (expr, float) in row.into_iter().zip(&floats) {
            let expr = match float {
                Some(float) => float_value(expr, float),
                None => expr,
            };
            let expr = match expr {
                Expr::Literal(ScalarValue::Int64(None), metadata) => {
                    Transformed::yes(Expr::Literal(ScalarValue::Int32(None), metadata))
                }
                expr => expr.transform_up(narrow)?,
            };
            changed |= expr.transformed;
            narrowed.push(expr.data);
        }
        rows.push(narrowed);
    }
    if !changed {
        let schema = values.schema;
        return Ok(Transformed::no(LogicalPlan::Values(Values {
            schema,
            values: rows,
        })));
    }
    let rebuilt = LogicalPlanBuilder::values(rows)?.build()?;
    // A list whose every column kept its type (`VALUES (1), (3000000000)`
    // is bigint) changed nothing above it.
    let retyped = (rebuilt.schema().fields().iter())
        .zip(values.schema.fields())
        .any(|(new, old)| new.data_type() != old.data_type());
    Ok(Transformed::new(
        rebuilt,
        retyped,
        TreeNodeRecursion::Continue,
    ))
}

/// Whether `data_type` is one DataFusion makes a column of floats beside
/// exact numbers: `numeric(30, 15)` (a `double precision`'s; a `real`'s
/// is `numeric(14, 7)`) widened to hold the exact numbers' digits, so at
/// least 7 digits on each side of the point. (A cast written in SQL,
/// `x::numeric(10, 2)`, is none.)
fn float_beside_exact(data_type: &DataType) -> bool {
    match data_type {
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            *scale >= 7 && i16::from(*precision) - i16::from(*scale) >= 7
        }
        _ => false,
    }
}

/// For each column of a VALUES list, the float type PostgreSQL gives it
/// where DataFusion made floats beside exact numbers a decimal
/// ([`float_beside_exact`]; `VALUES (-1::float8), (0.5)` showed
/// -1.000000000000000): `double precision` if one of them is, else `real`.
fn float_columns(rows: &[Vec<Expr>]) -> Vec<Option<DataType>> {
    let empty = DFSchema::empty();
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|column| {
            let floats = rows.iter().filter_map(|row| match row.get(column)? {
                Expr::Cast(Cast { expr, field }) if float_beside_exact(field.data_type()) => {
                    expr.get_type(&empty).ok().filter(DataType::is_floating)
                }
                _ => None,
            });
            floats.reduce(|a, b| match a == DataType::Float64 {
                true => a,
                false => b,
            })
        })
        .collect()
}

/// A value of a [`float_columns`] column as the column's `float` type,
/// without the cast to a decimal DataFusion put on it.
fn float_value(expr: Expr, float: &DataType) -> Expr {
    let value = match expr {
        Expr::Cast(Cast { expr, field }) if float_beside_exact(field.data_type()) => *expr,
        other => other,
    };
    match value.get_type(&DFSchema::empty()) {
        Ok(t) if t == *float => value,
        _ => cast(value, float.clone()),
    }
}

/// `union` with each `bigint` column whose every input is `integer` (or
/// NULL) typed `integer`, as PostgreSQL types `SELECT 1 UNION SELECT 2`
/// (the planner typed it from its inputs' literals, then all `Int64`).
fn integer_union(union: Union) -> DFResult<Transformed<Union>> {
    let narrow = |i: usize| {
        let types = union
            .inputs
            .iter()
            .map(|input| input.schema().field(i).data_type());
        types
            .clone()
            .all(|t| matches!(t, DataType::Int32 | DataType::Null))
            && types.clone().any(|t| *t == DataType::Int32)
    };
    let mut narrowed = false;
    let fields = (union.schema.iter().enumerate())
        .map(|(i, (qualifier, field))| {
            let field = match *field.data_type() == DataType::Int64 && narrow(i) {
                true => {
                    narrowed = true;
                    Arc::new(field.as_ref().clone().with_data_type(DataType::Int32))
                }
                false => Arc::clone(field),
            };
            (qualifier.cloned(), field)
        })
        .collect();
    if !narrowed {
        return Ok(Transformed::no(union));
    }
    let schema = DFSchema::new_with_metadata(fields, union.schema.metadata().clone())?;
    Ok(Transformed::yes(Union {
        inputs: union.inputs,
        schema: Arc::new(schema),
    }))
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

/// A string literal compared with a `boolean` or an `interval` is read as
/// that type, as PostgreSQL reads an untyped literal (`active = 't'`,
/// `took > '1 hour'`), and so is one in arithmetic with an interval or a
/// moment as PostgreSQL resolves the operator ([`arithmetic_typed`]);
/// DataFusion finds no common type for them (other types find theirs).
/// Called as the operator is planned: a select list's types are resolved
/// then.
pub fn literal_operands(mut expr: RawBinaryExpr, schema: &DFSchema) -> RawBinaryExpr {
    use datafusion::sql::sqlparser::ast::BinaryOperator as Op;
    let (left, right) = match expr.op {
        Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq => (
            literal_typed(&expr.left, schema),
            literal_typed(&expr.right, schema),
        ),
        Op::Plus | Op::Minus | Op::Multiply | Op::Divide => (
            arithmetic_typed(&expr.op, &expr.left, true, schema),
            arithmetic_typed(&expr.op, &expr.right, false, schema),
        ),
        _ => return expr,
    };
    match (left, right) {
        (Some(t), None) => expr.right = as_literal_of(expr.right, &t),
        (None, Some(t)) => expr.left = as_literal_of(expr.left, &t),
        _ => {}
    }
    expr
}

/// The type a string literal takes as the other operand of `op` beside
/// `e` (its left operand when `first`): an interval beside `+` or `-` of
/// an interval and beside `+` of a timestamp or a time (`ts + '1 day'`), a
/// `double precision` beside `*` of an interval and after its `/`.
fn arithmetic_typed(
    op: &datafusion::sql::sqlparser::ast::BinaryOperator,
    e: &Expr,
    first: bool,
    schema: &DFSchema,
) -> Option<DataType> {
    use datafusion::sql::sqlparser::ast::BinaryOperator as Op;
    let t = e.get_type(schema).ok()?;
    let interval = matches!(t, DataType::Interval(_));
    let moment = matches!(t, DataType::Timestamp(..) | DataType::Time64(_));
    match op {
        Op::Plus | Op::Minus if interval => Some(DataType::Interval(IntervalUnit::MonthDayNano)),
        Op::Plus if moment => Some(DataType::Interval(IntervalUnit::MonthDayNano)),
        Op::Multiply if interval => Some(DataType::Float64),
        Op::Divide if interval && first => Some(DataType::Float64),
        _ => None,
    }
}

/// The type of `e` if it is one a string literal beside it takes.
fn literal_typed(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema)
        .ok()
        .filter(|t| matches!(t, DataType::Boolean | DataType::Interval(_)))
}

fn as_literal_of(e: Expr, target: &DataType) -> Expr {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(_)), _) => cast(e, target.clone()),
        other => other,
    }
}

/// [`literal_operands`] for the operands of IN and BETWEEN with a
/// `boolean` (whose types are resolved after planning): an expression
/// rewrite run before type coercion.
pub fn boolean_literals(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let boolean = |e: &Expr| e.get_type(schema).is_ok_and(|t| t == DataType::Boolean);
    let text = |e: &Expr| matches!(e, Expr::Literal(ScalarValue::Utf8(Some(_)), _));
    let as_bool = |e: Expr| as_literal_of(e, &DataType::Boolean);
    match expr {
        Expr::InList(mut in_list) if boolean(&in_list.expr) && in_list.list.iter().any(text) => {
            in_list.list = in_list.list.into_iter().map(as_bool).collect();
            Transformed::yes(Expr::InList(in_list))
        }
        Expr::Between(mut between)
            if boolean(&between.expr) && (text(&between.low) || text(&between.high)) =>
        {
            between.low = Box::new(as_bool(*between.low));
            between.high = Box::new(as_bool(*between.high));
            Transformed::yes(Expr::Between(between))
        }
        other => Transformed::no(other),
    }
}
