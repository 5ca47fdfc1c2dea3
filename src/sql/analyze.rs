//! What the analyzer rules that make DataFusion read SQL as PostgreSQL
//! does (`literals`, `numeric`, `checked`) share: rewriting one plan node's
//! expressions under their old output names, and array functions standing
//! in for an operator.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::type_coercion::functions::{fields_with_udf, UDFCoercionExt};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    create_udf, Between, BinaryExpr, Cast, ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder,
    Operator, ScalarUDF, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Rewrites every expression of `node` bottom-up with `rewrite`, which sees
/// the node's input schema. Output column names stay as they were, so the
/// nodes above still find them; the node's schema is recomputed when
/// `recompute` is set (the rewrite changed result types).
pub fn rewrite_node_expressions(
    node: LogicalPlan,
    recompute: bool,
    mut rewrite: impl FnMut(Expr, &DFSchema) -> DFResult<Transformed<Expr>>,
) -> DFResult<Transformed<LogicalPlan>> {
    let schema = merge_schema(&node.inputs());
    let names = NamePreserver::new(&node);
    let rewritten = node.map_expressions(|expr| {
        let saved = names.save(&expr);
        let changed = expr.transform_up(|e| rewrite(e, &schema))?;
        Ok(changed.update_data(|e| saved.restore(e)))
    })?;
    if recompute && rewritten.transformed {
        rewritten.map_data(|node| match node {
            // A VALUES list keeps the schema it was planned with (its
            // rows' types then): read it from its rows again.
            LogicalPlan::Values(values) => LogicalPlanBuilder::values(values.values)?.build(),
            node => node.recompute_schema(),
        })
    } else {
        Ok(rewritten)
    }
}

/// `plan` with `rewrite` applied to every expression of every node,
/// subqueries included, bottom up; a changed node's schema is recomputed.
pub fn rewrite_plan_expressions(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> DFResult<Transformed<Expr>>,
) -> DFResult<Transformed<LogicalPlan>> {
    plan.transform_up_with_subqueries(|node| rewrite_node_expressions(node, true, &rewrite))
}

/// A rewrite of one expression, given its node's input schema.
pub type ExpressionRewrite = fn(Expr, &DFSchema) -> Transformed<Expr>;

/// An analyzer rule made of expression rewrites, applied in one pass over
/// every node's expressions: the first that changes an expression wins
/// (`sql::uuid`'s and `sql::bpchar`'s, which see different types).
#[derive(Debug)]
pub struct ExpressionRewrites {
    name: &'static str,
    rewrites: Vec<ExpressionRewrite>,
}

impl ExpressionRewrites {
    pub fn new(name: &'static str, rewrites: Vec<ExpressionRewrite>) -> Self {
        Self { name, rewrites }
    }
}

impl AnalyzerRule for ExpressionRewrites {
    fn name(&self) -> &str {
        self.name
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            rewrite_node_expressions(node, false, |e, schema| {
                let mut e = Transformed::no(e);
                for rewrite in &self.rewrites {
                    if e.transformed {
                        break;
                    }
                    e = rewrite(e.data, schema);
                }
                Ok(e)
            })
        })
        .map(|t| t.data)
    }
}

/// `expr` with `convert` applied to every operand compared with one that
/// `special` picks: both sides of a comparison operator, the list of an IN,
/// the bounds of a BETWEEN (for types that read an untyped literal
/// compared with them their own way: `uuid`, `char(n)`). `convert` sees
/// the special operand too, and leaves it as it is.
pub fn convert_compared(
    expr: Expr,
    special: impl Fn(&Expr) -> bool,
    convert: impl Fn(Expr) -> Expr,
) -> Transformed<Expr> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if is_comparison(op) && (special(&left) || special(&right)) =>
        {
            Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(convert(*left)),
                op,
                Box::new(convert(*right)),
            )))
        }
        Expr::InList(mut in_list) if special(&in_list.expr) => {
            in_list.list = in_list.list.into_iter().map(convert).collect();
            Transformed::yes(Expr::InList(in_list))
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) if special(&expr) => Transformed::yes(Expr::Between(Between::new(
            expr,
            negated,
            Box::new(convert(*low)),
            Box::new(convert(*high)),
        ))),
        other => Transformed::no(other),
    }
}

/// `text` (a Utf8 expression) as the string type `field` of the cast it
/// stands for.
pub fn as_string_type(text: Expr, field: FieldRef) -> Expr {
    match field.data_type() {
        DataType::Utf8 => text,
        _ => Expr::Cast(Cast::new_from_field(Box::new(text), field)),
    }
}

/// `plain_text(x)`: the text of `x` as a plain `text` value, for a cast
/// to text of a value whose field marks another type (`char(n)`, `json`):
/// DataFusion's cast from Utf8 to Utf8 keeps the field's metadata.
pub fn plain_text() -> Arc<ScalarUDF> {
    array_udf("text", vec![DataType::Utf8], DataType::Utf8, |arrays| {
        Ok(arrays[0].clone())
    })
}

/// Arrow's string types.
pub fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// A function's result as DataFusion expects it: one value when every
/// argument was one (a constant, folded at planning), else the column.
pub fn like_arguments(args: &[ColumnarValue], result: ArrayRef) -> DFResult<ColumnarValue> {
    match args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        true => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?)),
        false => Ok(ColumnarValue::Array(result)),
    }
}

/// An immutable scalar function computed on whole arrays by `compute`;
/// scalar arguments give a scalar result (so constants still fold).
pub fn array_udf(
    name: &str,
    arg_types: Vec<DataType>,
    return_type: DataType,
    compute: impl Fn(&[ArrayRef]) -> DFResult<ArrayRef> + Send + Sync + 'static,
) -> Arc<ScalarUDF> {
    let fun = move |args: &[ColumnarValue]| -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        like_arguments(args, compute(&arrays)?)
    };
    Arc::new(create_udf(
        name,
        arg_types,
        return_type,
        Volatility::Immutable,
        Arc::new(fun),
    ))
}

/// The types the function `inner` coerces `arg_types` to (what a wrapper
/// of it answers for the calls it leaves to it).
pub fn coerced_types<F: UDFCoercionExt>(
    arg_types: &[DataType],
    inner: &F,
) -> DFResult<Vec<DataType>> {
    let fields: Vec<FieldRef> = arg_types
        .iter()
        .map(|t| Arc::new(Field::new("", t.clone(), true)))
        .collect();
    let coerced = fields_with_udf(&fields, inner)?;
    Ok(coerced.iter().map(|f| f.data_type().clone()).collect())
}
