//! Subqueries PostgreSQL allows and DataFusion plans only in another form.
//!
//! DataFusion decorrelates a correlated scalar subquery only when it
//! aggregates (`(SELECT max(v) FROM b WHERE b.k = a.k)`), and knows no
//! `ARRAY(subquery)`. Both become aggregating subqueries here, before
//! planning ([`single_row_subqueries`]):
//!
//! - `(SELECT v FROM b WHERE b.k = a.k)`, naming a relation of the outer
//!   query, is `pg_single_row((SELECT array_agg(v)
//!   FROM b WHERE ...))`: the value of its one row, NULL without rows, and
//!   PostgreSQL's 21000 when an outer row finds more than one (checked per
//!   outer row, as PostgreSQL does when it evaluates the subquery);
//! - with `ORDER BY ... LIMIT 1` it is the first of `array_agg(v ORDER BY
//!   ...)`;
//! - `ARRAY(SELECT v FROM ... [ORDER BY ...])` is `coalesce((SELECT
//!   array_agg(v [ORDER BY ...]) FROM ...), make_array())` (`{}` without
//!   rows, as in PostgreSQL).
//!
//! A subquery that already aggregates, groups, is DISTINCT, has a window,
//! several items, a set operation, WITH, OFFSET or another LIMIT is left
//! as it is, and so is an uncorrelated scalar subquery (DataFusion plans
//! it, a LIMIT 1 as a top-k rather than a list of every row) and one that
//! names outer columns unqualified (0A000, as before).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Expr as PlanExpr, LogicalPlan, LogicalPlanBuilder, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Subquery, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, BinaryOperator, Expr, FunctionArguments, GroupByExpr, LimitClause,
    OrderByKind, Query, Select, SelectItem, SetExpr, Statement, Value, VisitMut, VisitorMut,
};

use super::analyze::rewrite_plan_expressions;
use super::catalog_queries::relation_name;
use super::ddl::ident_name;
use super::rewrite::parse_expr;
use crate::error::{Error, InputError};

/// Rewrites the scalar and ARRAY subqueries of `stmt` DataFusion cannot
/// plan into aggregating ones (see the module's documentation).
/// `is_aggregate` tells the aggregate functions by name (DataFusion's
/// registry, which also holds ShardForge's).
pub fn single_row_subqueries(stmt: &mut Statement, is_aggregate: &dyn Fn(&str) -> bool) {
    struct Visitor<'a>(&'a dyn Fn(&str) -> bool);
    impl VisitorMut for Visitor<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let rewritten = match expr {
                Expr::Subquery(query) => scalar(query, self.0),
                Expr::Function(f) if is_array_call(f) => match &f.args {
                    FunctionArguments::Subquery(query) => array(query, self.0),
                    _ => None,
                },
                _ => None,
            };
            if let Some(rewritten) = rewritten {
                *expr = rewritten;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Visitor(is_aggregate));
}

fn is_array_call(f: &datafusion::sql::sqlparser::ast::Function) -> bool {
    matches!(f.name.0.as_slice(), [part] if part.as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("array")))
}

/// `(SELECT item ...)` as a subquery aggregating its rows into a list.
struct Aggregated {
    /// The subquery with `array_agg(item [ORDER BY ...])` as its item.
    query: Query,
    /// It had `LIMIT 1`.
    first: bool,
}

/// `query` with its one item aggregated, if it is a subquery of the form
/// this module rewrites (`limit_one`: `LIMIT 1` is allowed).
fn aggregated(
    query: &Query,
    limit_one: bool,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Option<Aggregated> {
    let first = match &query.limit_clause {
        None => false,
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(v)),
            offset: None,
            limit_by,
        }) if limit_one && limit_by.is_empty() && v.value == Value::Number("1".into(), false) => {
            true
        }
        Some(_) => return None,
    };
    let plain = query.with.is_none()
        && query.fetch.is_none()
        && query.locks.is_empty()
        && query.for_clause.is_none()
        && query.settings.is_none()
        && query.format_clause.is_none()
        && query.pipe_operators.is_empty();
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let ungrouped = matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        && select.having.is_none()
        && select.distinct.is_none()
        && select.named_window.is_empty()
        && select.qualify.is_none()
        && select.top.is_none()
        && select.into.is_none();
    let [item] = select.projection.as_slice() else {
        return None;
    };
    let (SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }) = item
    else {
        return None;
    };
    if !plain || !ungrouped || aggregates(item, is_aggregate) {
        return None;
    }
    let alias = match &select.projection[0] {
        SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
        _ => None,
    };
    let order = match &query.order_by {
        Some(order) => match &order.kind {
            OrderByKind::Expressions(exprs) if !exprs.is_empty() => {
                // Inside the aggregate, a position or the item's alias
                // would name something else: both become the item.
                let mut keys = Vec::with_capacity(exprs.len());
                for key in exprs {
                    let mut key = key.clone();
                    match &key.expr {
                        Expr::Value(v) if v.value == Value::Number("1".into(), false) => {
                            key.expr = item.clone();
                        }
                        Expr::Value(_) => return None,
                        Expr::Identifier(name) if alias == Some(ident_name(name)) => {
                            key.expr = item.clone();
                        }
                        _ => {}
                    }
                    keys.push(key.to_string());
                }
                format!(" ORDER BY {}", keys.join(", "))
            }
            OrderByKind::Expressions(_) => String::new(),
            OrderByKind::All(_) => return None,
        },
        None => String::new(),
    };
    let array_agg = parse_expr(&format!("array_agg({item}{order})")).ok()?;
    let mut select = select.clone();
    select.projection = vec![SelectItem::UnnamedExpr(array_agg)];
    let mut query = query.clone();
    query.body = Box::new(SetExpr::Select(select));
    query.order_by = None;
    query.limit_clause = None;
    Some(Aggregated { query, first })
}

/// Whether `expr` calls an aggregate (one `is_aggregate` names) or a
/// window function: its query gives one row (or one per group), which
/// neither this module's rewrite nor a join (`catalog_queries`) would
/// compute.
pub(super) fn aggregates(expr: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> bool {
    let mut found = false;
    let _ = visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.0.last().and_then(|p| p.as_ident()).map(ident_name);
            found |= f.over.is_some() || name.is_some_and(|n| is_aggregate(&n));
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// PostgreSQL's common aggregates, for a caller without DataFusion's
/// registry at hand (`catalog_queries`, at parse time).
pub(super) fn common_aggregate(name: &str) -> bool {
    const AGGREGATES: [&str; 16] = [
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "json_agg",
        "jsonb_agg",
        "stddev",
        "variance",
        "bit_and",
        "bit_or",
    ];
    AGGREGATES.contains(&name)
}

fn scalar(query: &Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    // An uncorrelated one DataFusion plans as it is (and a LIMIT 1 as a
    // top-k rather than a list of every row).
    if !correlated(query) {
        return None;
    }
    let mut query = query.clone();
    let guard = take_outer_conditions(&mut query);
    let sql = match outer_item(&query) {
        Some(split) => split.expression(is_aggregate)?,
        None => single_row(&query, is_aggregate)?,
    };
    let sql = match guard {
        Some(guard) => format!("CASE WHEN {guard} THEN {sql} END"),
        None => sql,
    };
    parse_expr(&sql).ok()
}

/// Takes the conditions of `query`'s WHERE that name only the outer
/// query's columns (`a.atthasdef` in SQLAlchemy's `(SELECT ... FROM
/// pg_attrdef d WHERE a.atthasdef AND d.adrelid = a.attrelid ...)`) out of
/// it, and returns them joined by AND: the subquery has no rows where
/// they do not hold, so it is `CASE WHEN conditions THEN subquery END`.
/// DataFusion cannot decorrelate such a condition inside a CASE.
fn take_outer_conditions(query: &mut Query) -> Option<String> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let own = own_relations(select);
    let mut conjuncts = Vec::new();
    split_conjunction(select.selection.take()?, &mut conjuncts);
    let (outer, inner): (Vec<Expr>, Vec<Expr>) = conjuncts
        .into_iter()
        .partition(|c| names_only_outer(c, &own));
    select.selection = inner.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    let outer: Vec<String> = outer.iter().map(|c| format!("({c})")).collect();
    (!outer.is_empty()).then(|| outer.join(" AND "))
}

/// The operands of `expr`'s top-level ANDs, into `into` (a parenthesised
/// operand that is not an AND stays parenthesised).
pub(super) fn split_conjunction(expr: Expr, into: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_conjunction(*left, into);
            split_conjunction(*right, into);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_conjunction(*inner, into)
        }
        other => into.push(other),
    }
}

/// Whether `expr` names columns, all of them through relations not in
/// `own` (an unqualified name might be the subquery's own, and a subquery
/// inside is left alone).
fn names_only_outer(expr: &Expr, own: &HashSet<String>) -> bool {
    let (mut outer, mut other) = (false, false);
    let _ = visit_expressions(expr, |e| {
        match e {
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., relation, _] if !own.contains(&ident_name(relation)) => outer = true,
                _ => other = true,
            },
            Expr::Identifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. } => other = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    outer && !other
}

/// The names of the relations `select`'s FROM has.
fn own_relations(select: &Select) -> HashSet<String> {
    let mut own = HashSet::new();
    for table in &select.from {
        for factor in
            std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation))
        {
            if let Some(name) = relation_name(factor) {
                own.insert(name);
            }
        }
    }
    own
}

/// The value of the one row of `query` (of the form [`aggregated`] takes):
/// an expression DataFusion decorrelates.
fn single_row(query: &Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<String> {
    let Aggregated { query, first } = aggregated(query, true, is_aggregate)?;
    Some(match first {
        true => format!("array_element(({query}), 1)"),
        false => format!("pg_single_row(({query}))"),
    })
}

/// A subquery whose item names outer columns (SQLAlchemy's
/// `(SELECT json_build_object('always', a.attidentity = 'a', 'start',
/// s.seqstart, ...) FROM pg_sequence s WHERE ...)`): DataFusion cannot
/// aggregate a value that names outer columns. So its row's own values
/// are fetched as one struct, and the item is computed outside:
/// `CASE WHEN row.present THEN json_build_object('always', a.attidentity
/// = 'a', 'start', row.c0, ...) END`, NULL without a row as the subquery
/// is.
struct OuterItem {
    /// The subquery with `named_struct('present', true, 'c0', ...)` as
    /// its item.
    query: Query,
    /// The item, its own columns replaced by `{row}.cN` placeholders.
    item: Expr,
    /// The placeholders' names and the columns they stand for.
    columns: Vec<(String, Expr)>,
}

/// The placeholder of the subquery's own column `n` in an [`OuterItem`].
fn own_column_placeholder(n: usize) -> String {
    format!("shardforge_own_column_{n}")
}

fn outer_item(query: &Query) -> Option<OuterItem> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let own = own_relations(select);
    let [SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }] =
        select.projection.as_slice()
    else {
        return None;
    };
    // (One that aggregates is left to DataFusion, which refuses it.)
    if aggregates(item, &common_aggregate) {
        return None;
    }
    let mut outer = false;
    let mut columns: Vec<(String, Expr)> = Vec::new();
    let mut item = item.clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut item, |e| {
        let own_column = match e {
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., relation, _] if own.contains(&ident_name(relation)) => true,
                _ => {
                    outer = true;
                    false
                }
            },
            // Unqualified: DataFusion looks in the subquery's FROM first.
            Expr::Identifier(_) => true,
            _ => false,
        };
        if own_column {
            let n = match columns.iter().position(|(_, c)| c == e) {
                Some(n) => n,
                None => {
                    columns.push((own_column_placeholder(columns.len()), e.clone()));
                    columns.len() - 1
                }
            };
            *e = Expr::Identifier(datafusion::sql::sqlparser::ast::Ident::new(
                own_column_placeholder(n),
            ));
        }
        ControlFlow::<()>::Continue(())
    });
    if !outer {
        return None;
    }
    let fields: Vec<String> = std::iter::once("'present', true".to_string())
        .chain(
            columns
                .iter()
                .map(|(name, column)| format!("'{name}', {column}")),
        )
        .collect();
    let row = parse_expr(&format!("named_struct({})", fields.join(", "))).ok()?;
    let mut query = query.clone();
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = vec![SelectItem::UnnamedExpr(row)];
    }
    Some(OuterItem {
        query,
        item,
        columns,
    })
}

impl OuterItem {
    fn expression(&self, is_aggregate: &dyn Fn(&str) -> bool) -> Option<String> {
        let row = single_row(&self.query, is_aggregate)?;
        let mut item = self.item.clone();
        let mut failed = false;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut item, |e| {
            if let Expr::Identifier(ident) = e {
                if self.columns.iter().any(|(name, _)| *name == ident.value) {
                    match parse_expr(&format!("get_field({row}, '{}')", ident.value)) {
                        Ok(field) => *e = field,
                        Err(_) => failed = true,
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        (!failed).then(|| format!("CASE WHEN get_field({row}, 'present') THEN {item} END"))
    }
}

fn array(query: &Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    let Aggregated { query, .. } = aggregated(query, false, is_aggregate)?;
    parse_expr(&format!("coalesce(({query}), make_array())")).ok()
}

/// Whether `query`'s SELECT names a column through a relation its FROM
/// does not have (`b.k = a.k`, `a` being the outer query's): the form of a
/// correlated subquery this module recognises. One that refers to outer
/// columns unqualified is left to DataFusion (0A000 without an aggregate).
fn correlated(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let own = own_relations(select);
    let mut outer = false;
    let mut selection = select.selection.clone();
    if let Some(selection) = selection.as_mut() {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(selection, |e| {
            if let Expr::CompoundIdentifier(parts) = e {
                if let [.., relation, _] = parts.as_slice() {
                    outer |= !own.contains(&ident_name(relation));
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    outer
}

/// `pg_single_row(list)`: the one element of a subquery's rows aggregated
/// into a list; NULL for none, 21000 for more than one.
pub fn pg_single_row() -> ScalarUDF {
    ScalarUDF::new_from_impl(SingleRow {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleRow {
    signature: Signature,
}

fn element_field(list: &DataType) -> DFResult<&FieldRef> {
    match list {
        DataType::List(element) => Ok(element),
        other => Err(DataFusionError::Plan(format!(
            "pg_single_row takes a list, not {other}"
        ))),
    }
}

impl ScalarUDFImpl for SingleRow {
    fn name(&self) -> &str {
        "pg_single_row"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        Ok(element_field(&args[0])?.data_type().clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let element = element_field(args.arg_fields[0].data_type())?;
        // Nullable: no row is NULL.
        Ok(Arc::new(element.as_ref().clone().with_nullable(true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let lists = args.args[0].to_array(args.number_rows)?;
        let lists = lists.as_list::<i32>();
        let element_type = element_field(lists.data_type())?.data_type().clone();
        let mut values = Vec::with_capacity(lists.len());
        for row in 0..lists.len() {
            let value = match lists.is_null(row) {
                true => ScalarValue::try_from(&element_type)?,
                false => {
                    let rows = lists.value(row);
                    match rows.len() {
                        0 => ScalarValue::try_from(&element_type)?,
                        1 => ScalarValue::try_from_array(&rows, 0)?,
                        _ => return Err(DataFusionError::External(Box::new(more_than_one()))),
                    }
                }
            };
            values.push(value);
        }
        let array = match values.is_empty() {
            true => new_empty_array(&element_type),
            false => ScalarValue::iter_to_array(values)?,
        };
        Ok(match args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(array),
        })
    }
}

fn more_than_one() -> Error {
    Error::input(
        InputError::CardinalityViolation,
        "more than one row returned by a subquery used as an expression",
    )
}

/// A scalar subquery's value is NULL when it finds no row, whatever its
/// column: DataFusion takes the column's nullability for the value's, so
/// `(SELECT k FROM t WHERE k = -1)` over a NOT NULL `k` failed ("null
/// value ... violates not-null constraint") and `(...) IS NULL` was
/// folded to false. Such a subquery's column is made nullable here
/// ([`nullable`]), but for one that aggregates without GROUP BY, which
/// always finds its one row (DataFusion's decorrelation gives a `count`
/// its 0 for an outer row that matches nothing by recognising it).
#[derive(Debug)]
pub struct NullableSubqueries;

impl AnalyzerRule for NullableSubqueries {
    fn name(&self) -> &str {
        "postgresql_nullable_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        let rewritten = rewrite_plan_expressions(plan, |expr, _| {
            Ok(match expr {
                PlanExpr::ScalarSubquery(subquery) if !always_one_row(&subquery.subquery) => {
                    nullable_subquery(subquery)?
                }
                other => Transformed::no(other),
            })
        })?;
        // The nodes above a changed one take its nullability.
        match rewritten.transformed {
            true => rewritten
                .data
                .transform_up_with_subqueries(|node| node.recompute_schema().map(Transformed::yes))
                .map(|t| t.data),
            false => Ok(rewritten.data),
        }
    }
}

fn always_one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Projection(projection) => always_one_row(&projection.input),
        LogicalPlan::SubqueryAlias(alias) => always_one_row(&alias.input),
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.is_empty(),
        _ => false,
    }
}

/// `subquery` with its column read through [`nullable`], if it is not
/// nullable already.
fn nullable_subquery(mut subquery: Subquery) -> DFResult<Transformed<PlanExpr>> {
    let field = subquery.subquery.schema().field(0).clone();
    if field.is_nullable() {
        return Ok(Transformed::no(PlanExpr::ScalarSubquery(subquery)));
    }
    let column = PlanExpr::Column(subquery.subquery.schema().columns().remove(0));
    let read = nullable().call(vec![column]).alias(field.name());
    let plan = LogicalPlanBuilder::from(subquery.subquery.as_ref().clone())
        .project(vec![read])?
        .build()?;
    subquery.subquery = Arc::new(plan);
    Ok(Transformed::yes(PlanExpr::ScalarSubquery(subquery)))
}

/// `nullable(x)`: `x`, as a value that may be NULL.
fn nullable() -> ScalarUDF {
    ScalarUDF::new_from_impl(Nullable {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Nullable {
    signature: Signature,
}

impl ScalarUDFImpl for Nullable {
    fn name(&self) -> &str {
        "nullable"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let field = args.arg_fields[0].as_ref().clone();
        Ok(Arc::new(field.with_nullable(true)))
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        Ok(args.args.remove(0))
    }
}
