//! `jsonb` in PostgreSQL's order of JSON values: `ORDER BY` a `jsonb` and
//! `<`, `<=`, `>`, `>=` between two compare [`sort_key`]s, bytes whose
//! order is PostgreSQL's `compareJsonbContainers`:
//!
//! - an object is above an array, an array above a boolean, a boolean
//!   above a number, a number above a string, a string above `null`;
//! - objects and arrays with more members are above those with fewer,
//!   and among equal counts their members decide in order (an object's
//!   keys in `jsonb`'s order of them: shorter keys first), key before
//!   value;
//! - a scalar at the top is a one-element array that sorts below a real
//!   one, so the empty array `[]` sorts below every scalar (`null`
//!   included), as PostgreSQL's does;
//! - numbers by value (`2` and `2.0` are equal), strings by their bytes
//!   (PostgreSQL's C collation), `false` below `true`.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, ScalarUDF};
use datafusion::optimizer::AnalyzerRule;

use super::planning::is_jsonb;
use super::value::{parse_jsonb, Jsonb};
use crate::sql::analyze::{array_udf, rewrite_node_expressions};
use crate::sql::window_frames::peer_frames;

const NULL: u8 = 0x00;
const STRING: u8 = 0x01;
const NUMBER: u8 = 0x02;
const BOOLEAN: u8 = 0x03;
const ARRAY: u8 = 0x10;
const OBJECT: u8 = 0x11;
/// After an array's count: a scalar at the top (below a real array of
/// one element) or a real array.
const SCALAR_AT_TOP: u8 = 0x00;
const REAL_ARRAY: u8 = 0x01;

/// The bytes of `value` (stored `jsonb` text) that sort as PostgreSQL
/// sorts the value.
pub fn sort_key(value: &Jsonb) -> Vec<u8> {
    let mut key = Vec::new();
    match value {
        Jsonb::Array(_) | Jsonb::Object(_) => push(&mut key, value),
        scalar => {
            key.push(ARRAY);
            key.extend_from_slice(&1u32.to_be_bytes());
            key.push(SCALAR_AT_TOP);
            push(&mut key, scalar);
        }
    }
    key
}

fn push(key: &mut Vec<u8>, value: &Jsonb) {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    match value {
        Jsonb::Null => key.push(NULL),
        Jsonb::String(s) => {
            key.push(STRING);
            push_bytes(key, s.as_bytes());
        }
        Jsonb::Number(n) => {
            key.push(NUMBER);
            // Stored numbers are `numeric` text: one that is not would be
            // a stored value no input made.
            let sortable = crate::numeric::Numeric::parse(n)
                .map(|v| v.to_sortable())
                .unwrap_or_default();
            push_bytes(key, crate::numeric::value_part(&sortable));
        }
        Jsonb::Bool(b) => key.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Jsonb::Array(elements) => {
            key.push(ARRAY);
            key.extend_from_slice(&count(elements.len()));
            key.push(REAL_ARRAY);
            elements.iter().for_each(|e| push(key, e));
        }
        Jsonb::Object(members) => {
            key.push(OBJECT);
            key.extend_from_slice(&count(members.len()));
            for (name, value) in members {
                push_bytes(key, name.as_bytes());
                push(key, value);
            }
        }
    }
}

/// `bytes` so that no key is a prefix of another that sorts otherwise: a
/// zero byte doubled as `00 FF`, then `00 00` at the end.
fn push_bytes(key: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        key.push(b);
        if b == 0 {
            key.push(0xFF);
        }
    }
    key.extend_from_slice(&[0, 0]);
}

/// `jsonb_sort_key(jsonb)`: [`sort_key`] of each value.
pub fn jsonb_sort_key() -> Arc<ScalarUDF> {
    static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    UDF.get_or_init(|| {
        array_udf(
            "jsonb_sort_key",
            vec![DataType::Utf8],
            DataType::Binary,
            |arrays| {
                let texts = cast(&arrays[0], &DataType::Utf8)?;
                let keys = (texts.as_string::<i32>().iter())
                    .map(|text| {
                        text.map(|t| parse_jsonb(t).map(|v| sort_key(&v)))
                            .transpose()
                    })
                    .collect::<crate::error::Result<BinaryArray>>()
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok(Arc::new(keys) as ArrayRef)
            },
        )
    })
    .clone()
}

/// Whether `expr` is `a < b` (`<=`, `>`, `>=`) with a `jsonb` operand.
pub fn ordered_comparison_of(expr: &Expr, is_jsonb: impl Fn(&Expr) -> bool) -> bool {
    matches!(
        expr,
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq, right })
            if is_jsonb(left) || is_jsonb(right)
    )
}

/// Such a comparison ([`ordered_comparison_of`]) as the operands' sort
/// keys compare (`as_jsonb` reads an untyped literal as `jsonb`).
pub fn ordered_comparison(expr: Expr, as_jsonb: impl Fn(Expr) -> Expr) -> Transformed<Expr> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let key = |e: Expr| Box::new(jsonb_sort_key().call(vec![as_jsonb(e)]));
            Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: key(*left),
                op,
                right: key(*right),
            }))
        }
        other => Transformed::no(other),
    }
}

/// Sorts by `jsonb` values in PostgreSQL's order ([`sort_key`]).
#[derive(Debug, Default)]
pub struct JsonbOrder;

impl AnalyzerRule for JsonbOrder {
    fn name(&self) -> &str {
        "postgresql_jsonb_order"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Sort(mut sort) => {
                let schema: &DFSchema = sort.input.schema();
                let mut changed = false;
                for key in sort.expr.iter_mut() {
                    if is_jsonb(&key.expr, schema) {
                        key.expr = jsonb_sort_key().call(vec![key.expr.clone()]);
                        changed = true;
                    }
                }
                Ok(Transformed::new_transformed(
                    LogicalPlan::Sort(sort),
                    changed,
                ))
            }
            // A window's ORDER BY (its functions keep their names).
            node @ LogicalPlan::Window(_) => rewrite_node_expressions(node, false, |e, schema| {
                Ok(match e {
                    Expr::WindowFunction(mut call)
                        if call
                            .params
                            .order_by
                            .iter()
                            .any(|key| is_jsonb(&key.expr, schema)) =>
                    {
                        for key in call.params.order_by.iter_mut() {
                            if is_jsonb(&key.expr, schema) {
                                key.expr = jsonb_sort_key().call(vec![key.expr.clone()]);
                            }
                        }
                        // A frame of peers, as for any binary order.
                        let call = peer_frames(Expr::WindowFunction(call), schema);
                        Transformed::yes(call.data)
                    }
                    other => Transformed::no(other),
                })
            }),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sort_as_postgresql_sorts_them() {
        // PostgreSQL 15's ORDER BY of these jsonb values.
        let ordered = [
            "[]",
            "null",
            "\"B\"",
            "\"ab\"",
            "\"abc\"",
            "\"x\"",
            "-3",
            "1.5",
            "2",
            "10",
            "false",
            "true",
            "[null]",
            "[1]",
            "[[1]]",
            "[0, 5]",
            "[1, 2]",
            "{}",
            "{\"a\": \"1\"}",
            "{\"a\": 1}",
            "{\"a\": [1]}",
            "{\"aa\": 1}",
            "{\"b\": 1}",
            "{\"a\": 0, \"b\": 1}",
        ];
        let keys: Vec<Vec<u8>> = (ordered.iter())
            .map(|t| sort_key(&parse_jsonb(t).unwrap()))
            .collect();
        for (i, pair) in keys.windows(2).enumerate() {
            assert!(pair[0] < pair[1], "{} < {}", ordered[i], ordered[i + 1]);
        }
        let key = |t: &str| sort_key(&parse_jsonb(t).unwrap());
        assert_eq!(key("2"), key("2.0"));
        assert_eq!(key("{\"b\": 1, \"a\": 2}"), key("{\"a\": 2, \"b\": 1.00}"));
        let numbers = [
            "-1e10", "-3", "-2.5", "-0.001", "0", "0.001", "0.0011", "0.01", "1", "1e10",
        ];
        for pair in numbers.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{} < {}", pair[0], pair[1]);
            let (a, b) = (format!("[{}, 1]", pair[0]), format!("[{}, 0]", pair[1]));
            assert!(key(&a) < key(&b), "{a} < {b}");
        }
    }
}
