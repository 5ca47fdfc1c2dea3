//! What the analyzer rules that make DataFusion read SQL as PostgreSQL
//! does (`literals`, `numeric`, `checked`) share: rewriting one plan node's
//! expressions under their old output names, and array functions standing
//! in for an operator.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, Expr, LogicalPlan, ScalarUDF, Volatility,
};

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
        rewritten.map_data(LogicalPlan::recompute_schema)
    } else {
        Ok(rewritten)
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
        let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let result = compute(&arrays)?;
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        })
    };
    Arc::new(create_udf(
        name,
        arg_types,
        return_type,
        Volatility::Immutable,
        Arc::new(fun),
    ))
}
