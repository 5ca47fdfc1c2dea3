//! `EXCEPT ALL` and `INTERSECT ALL` with PostgreSQL's multiplicities.
//!
//! DataFusion plans `a EXCEPT ALL b` as an anti join of `a` with `b` on all
//! columns, which removes every copy of a row that `b` has once (PostgreSQL
//! keeps `m - n` of `m` copies), and `INTERSECT ALL` as a semi join, which
//! keeps all `m` copies (PostgreSQL keeps `min(m, n)`). This analyzer rule
//! numbers the copies of each distinct row on both sides (`row_number()`
//! partitioned by every column) and adds the number to the join keys: the
//! `i`-th copy on the left then meets only the `i`-th copy on the right,
//! which gives exactly PostgreSQL's counts.
//!
//! Such a join is recognised by what only the set-operation planner builds
//! (a semi or anti join on all columns with NULLs equal and no filter); the
//! `DISTINCT` forms, whose left side is already distinct, need no numbers.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result as DFResult};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    col, Expr, ExprFunctionExt, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
};
use datafusion::optimizer::AnalyzerRule;

const LEFT_COPY: &str = "__sf_left_copy";
const RIGHT_COPY: &str = "__sf_right_copy";

#[derive(Debug, Default)]
pub struct SetOperationMultiplicity;

impl AnalyzerRule for SetOperationMultiplicity {
    fn name(&self) -> &str {
        "set_operation_multiplicity"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Join(join) if is_all_set_operation(&join) => {
                Ok(Transformed::yes(count_copies(join)?))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

fn is_all_set_operation(join: &Join) -> bool {
    matches!(join.join_type, JoinType::LeftAnti | JoinType::LeftSemi)
        && join.null_equality == NullEquality::NullEqualsNull
        && join.filter.is_none()
        && join.on.len() == join.left.schema().fields().len()
        && !matches!(join.left.as_ref(), LogicalPlan::Distinct(_))
}

/// The join on the copy numbers too, projected back to the left's columns.
fn count_copies(join: Join) -> DFResult<LogicalPlan> {
    let output: Vec<Expr> = join
        .schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let left = numbered(&join.left, LEFT_COPY)?;
    let right = numbered(&join.right, RIGHT_COPY)?;
    let mut on = join.on;
    on.push((
        col(Column::from_name(LEFT_COPY)),
        col(Column::from_name(RIGHT_COPY)),
    ));
    let numbered_join = Join::try_new(
        Arc::new(left),
        Arc::new(right),
        on,
        None,
        join.join_type,
        join.join_constraint,
        NullEquality::NullEqualsNull,
        false,
    )?;
    Ok(LogicalPlan::Projection(Projection::try_new(
        output,
        Arc::new(LogicalPlan::Join(numbered_join)),
    )?))
}

/// `plan` with a column `name` numbering the copies of each distinct row.
fn numbered(plan: &Arc<LogicalPlan>, name: &str) -> DFResult<LogicalPlan> {
    let columns: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let copy = row_number().partition_by(columns).build()?.alias(name);
    LogicalPlanBuilder::from(plan.clone())
        .window(vec![copy])?
        .build()
}
