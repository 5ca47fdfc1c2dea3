//! An aggregate reads a derived table's rows in the order its ORDER BY
//! gives them, as PostgreSQL's does: `SELECT json_agg(t) FROM (SELECT ...
//! ORDER BY id) t` (a common idiom, json_agg being `array_agg` here) lists
//! the rows by id. DataFusion keeps such a sort in the plan only when told
//! to (`enable_subquery_sort_elimination` off, `sql::engine`), and then
//! drops it again, as no operator above requires its order. This analyzer
//! rule gives the order-sensitive aggregates over such a derived table
//! (`array_agg`, `string_agg`, `first_value`, `last_value`) the derived
//! table's order as their own `ORDER BY`, where they have none and the
//! sort keys are columns the derived table shows.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result as DFResult};
use datafusion::logical_expr::{Expr, LogicalPlan, SortExpr};
use datafusion::optimizer::AnalyzerRule;

use super::analyze::rewrite_node_expressions;

#[derive(Debug, Default)]
pub struct OrderedSubqueryInput;

impl AnalyzerRule for OrderedSubqueryInput {
    fn name(&self) -> &str {
        "postgresql_ordered_subquery_input"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let LogicalPlan::Aggregate(aggregate) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(order) = input_order(&aggregate.input) else {
                return Ok(Transformed::no(node));
            };
            rewrite_node_expressions(node, false, |e, _| Ok(ordered(e, &order)))
        })
        .map(|t| t.data)
    }
}

/// The order of `input`'s rows when it is a derived table (filtered or
/// not: a filter keeps the order) whose query ends in an ORDER BY of its
/// own columns, as sort keys over the derived table's columns.
fn input_order(input: &LogicalPlan) -> Option<Vec<SortExpr>> {
    if let LogicalPlan::Filter(filter) = input {
        return input_order(&filter.input);
    }
    let LogicalPlan::SubqueryAlias(alias) = input else {
        return None;
    };
    let LogicalPlan::Sort(sort) = alias.input.as_ref() else {
        return None;
    };
    sort.expr
        .iter()
        .map(|key| {
            let Expr::Column(column) = &key.expr else {
                return None;
            };
            // The alias renames the sorted rows' columns one for one.
            let at = sort.input.schema().index_of_column(column).ok()?;
            let (qualifier, field) = alias.schema.qualified_field(at);
            Some(SortExpr {
                expr: Expr::Column(Column::new(qualifier.cloned(), field.name())),
                ..key.clone()
            })
        })
        .collect()
}

/// `expr` with `order` as its ORDER BY if it is an order-sensitive
/// aggregate without one.
fn ordered(expr: Expr, order: &[SortExpr]) -> Transformed<Expr> {
    match expr {
        Expr::AggregateFunction(mut call)
            if matches!(
                call.func.name(),
                "array_agg" | "string_agg" | "first_value" | "last_value"
            ) && call.params.order_by.is_empty()
                && !call.params.distinct =>
        {
            call.params.order_by = order.to_vec();
            Transformed::yes(Expr::AggregateFunction(call))
        }
        expr => Transformed::no(expr),
    }
}
