//! `bytea` beside text, as PostgreSQL reads it. A `bytea` is an Arrow
//! Binary; DataFusion casts text to Binary as its UTF-8 bytes, so an
//! untyped literal beside a `bytea` (`data = '\x0102'`, `data || '\x03'`)
//! was the bytes of the characters `\`, `x`, `0`... : compared, it never
//! matched; concatenated, it was text. And
//! `length(data)` counted the characters of the bytes read as UTF-8.
//!
//! [`bytea_operands`], rewriting expressions before type coercion, reads
//! such a literal (or a text parameter) with `byteain` (`\x` hex or the
//! escape form: `functions::bytea_input`), concatenates `bytea` as bytes,
//! and counts a `bytea`'s length in bytes.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Operator, ScalarUDF};

use super::analyze::{array_udf, convert_compared, is_text};
use super::functions::bytea_input;

/// See the module's documentation.
pub fn bytea_operands(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let is_bytea = |e: &Expr| e.get_type(schema).is_ok_and(|t| is_binary(&t));
    // What PostgreSQL reads as `bytea` beside one: an untyped literal or a
    // text parameter.
    let as_bytea = |e: Expr| match &e {
        Expr::Literal(ScalarValue::Utf8(_), _) => bytea_in().call(vec![e]),
        Expr::Placeholder(p) if p.field.as_ref().is_some_and(|f| is_text(f.data_type())) => {
            bytea_in().call(vec![e])
        }
        _ => e,
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) if is_bytea(&left) || is_bytea(&right) => {
            let (left, right) = (as_bytea(*left), as_bytea(*right));
            match is_bytea(&left) && is_bytea(&right) {
                true => Transformed::yes(bytea_concat().call(vec![left, right])),
                false => Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(left),
                    Operator::StringConcat,
                    Box::new(right),
                ))),
            }
        }
        Expr::ScalarFunction(call)
            // `length` is DataFusion's `character_length`.
            if call.name() == "character_length"
                && call.args.len() == 1
                && is_bytea(&call.args[0]) =>
        {
            Transformed::yes(bytea_length().call(call.args))
        }
        other => convert_compared(other, is_bytea, as_bytea),
    }
}

fn is_binary(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Binary | DataType::BinaryView)
}

/// `byteain(text)`: text read as `bytea` input (22023 if it is none).
fn bytea_in() -> Arc<ScalarUDF> {
    array_udf(
        "byteain",
        vec![DataType::Utf8],
        DataType::Binary,
        |arrays| {
            let bytes = (arrays[0].as_string::<i32>().iter())
                .map(|text| text.map(bytea_input).transpose())
                .collect::<crate::error::Result<Vec<_>>>()
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(Arc::new(BinaryArray::from_iter(bytes)) as ArrayRef)
        },
    )
}

/// `byteacat(bytea, bytea)`: the bytes of both.
fn bytea_concat() -> Arc<ScalarUDF> {
    let types = vec![DataType::Binary, DataType::Binary];
    array_udf("byteacat", types, DataType::Binary, |arrays| {
        let (left, right) = (arrays[0].as_binary::<i32>(), arrays[1].as_binary::<i32>());
        let joined: BinaryArray = (left.iter().zip(right.iter()))
            .map(|(l, r)| Some([l?, r?].concat()))
            .collect();
        Ok(Arc::new(joined) as ArrayRef)
    })
}

/// `length(bytea)`: its bytes.
fn bytea_length() -> Arc<ScalarUDF> {
    array_udf(
        "byteaoctetlen",
        vec![DataType::Binary],
        DataType::Int32,
        |arrays| {
            let lengths: Int32Array = (arrays[0].as_binary::<i32>().iter())
                .map(|b| b.map(|b| b.len() as i32))
                .collect();
            Ok(Arc::new(lengths) as ArrayRef)
        },
    )
}
