//! `char(n)` (PostgreSQL's `bpchar`), whose trailing spaces PostgreSQL
//! treats as insignificant: `'ab'::char(4) = 'ab  '`, `code || '|'` is
//! `ab|`, `length(code)` is 2, yet the value is shown padded, `ab  `.
//!
//! So a `char(n)` value is stored cut to `n` characters and without its
//! trailing spaces ([`unpadded`]; `sql::write`), and is padded to `n` only
//! when a result column of the type is sent (`pg::text::pad_chars`, which
//! finds `n` in the field's `CHAR_LENGTH_METADATA`). Everything computed
//! from it (concatenation, functions, casts to text) sees the unpadded
//! text, as in PostgreSQL. Besides:
//! - `x::char(n)` is [`bpchar`]`(x::text, n)` (`parse_rules::SizedStringCasts`),
//!   a value of the type;
//! - [`char_semantics`], rewriting expressions before type coercion, drops
//!   the trailing spaces of a literal, parameter or varchar compared with a
//!   `char(n)` value (`code = 'ab  '` finds `ab`, as PostgreSQL reads the
//!   untyped literal as `char(n)`; a `text` value is compared as text,
//!   spaces and all, as in PostgreSQL), makes a cast of one to text a plain
//!   text value (not shown padded), and gives LIKE and `octet_length` the
//!   padded value, which they see in PostgreSQL (`octet_length(code)` is
//!   `n` for ASCII text).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult, ScalarValue};
use datafusion::functions::string::expr_fn::rtrim;
use datafusion::functions::unicode::expr_fn::rpad;
use datafusion::logical_expr::{
    lit, Cast, ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TryCast, Volatility,
};

use super::analyze::{as_string_type, convert_compared, is_text, like_arguments, plain_text};
use crate::catalog::{SqlType, PG_TYPE_METADATA};

/// A `char(n)` value as it is stored and computed with: cut to `n`
/// characters, trailing spaces dropped.
pub fn unpadded(text: &str, n: usize) -> &str {
    let cut = text
        .char_indices()
        .nth(n)
        .map_or(text, |(at, _)| &text[..at]);
    cut.trim_end_matches(' ')
}

/// The unpadded `char(n)` values of a text column.
pub fn unpadded_column(array: &ArrayRef, n: usize) -> ArrayRef {
    let values: StringArray = array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(|s| unpadded(s, n)))
        .collect();
    Arc::new(values)
}

/// `bpchar(text, n)`: the text as a `char(n)` value (an explicit cast:
/// longer text is cut, as in PostgreSQL).
pub fn bpchar() -> ScalarUDF {
    ScalarUDF::new_from_impl(Bpchar {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bpchar {
    signature: Signature,
}

/// The `n` of `bpchar(text, n)`, which must be a constant.
fn length(n: Option<&ScalarValue>) -> DFResult<usize> {
    let n = match n {
        Some(ScalarValue::Int64(Some(n))) => usize::try_from(*n).ok(),
        Some(ScalarValue::Int32(Some(n))) => usize::try_from(*n).ok(),
        _ => None,
    };
    n.filter(|n| *n > 0)
        .ok_or_else(|| DataFusionError::Plan("bpchar takes a positive constant length".into()))
}

impl ScalarUDFImpl for Bpchar {
    fn name(&self) -> &str {
        "bpchar"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let n = length(args.scalar_arguments.get(1).copied().flatten())?;
        let metadata = SqlType::Char(n as u32).metadata();
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(metadata),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let n = match args.args.get(1) {
            Some(ColumnarValue::Scalar(n)) => length(Some(n))?,
            _ => length(None)?,
        };
        let texts = args.args[0].to_array(args.number_rows)?;
        let values = unpadded_column(&cast(&texts, &DataType::Utf8)?, n);
        like_arguments(&args.args, values)
    }
}

/// Functions that show their arguments as the types' output functions
/// print them.
/// `make_array` (`ARRAY[code]`) too: an array of `char(n)` values is an
/// array of text here, shown as it holds them.
const SHOWN_PADDED: [&str; 6] = [
    "concat",
    "concat_ws",
    "format",
    "to_json",
    "to_jsonb",
    "make_array",
];

/// How many leading arguments of a [`SHOWN_PADDED`] function are text.
fn text_arguments(function: &str) -> usize {
    usize::from(matches!(function, "concat_ws" | "format"))
}

/// Literals and parameters compared with `char(n)` values, and casts of
/// them to text, read as PostgreSQL reads them (see the module's
/// documentation): an expression rewrite run before type coercion
/// (`analyze::ExpressionRewrites`).
pub fn char_semantics(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    // The `n` of a `char(n)` expression.
    let width = |e: &Expr| {
        let (_, field) = e.to_field(schema).ok()?;
        SqlType::char_width(&field)
    };
    let is_char = |e: &Expr| width(e).is_some();
    let is_varchar = |e: &Expr| {
        e.to_field(schema).is_ok_and(|(_, f)| {
            f.metadata().get(PG_TYPE_METADATA).map(String::as_str) == Some("varchar")
        })
    };
    // The padded value, which PostgreSQL's LIKE and octet_length see.
    let padded = |e: Expr| match width(&e) {
        Some(n) => rpad(vec![e, lit(n as i64)]),
        None => e,
    };
    match expr {
        Expr::Like(mut like) if is_char(&like.expr) => {
            like.expr = Box::new(padded(*like.expr));
            Transformed::yes(Expr::Like(like))
        }
        Expr::ScalarFunction(mut call)
            if call.name() == "octet_length" && call.args.first().is_some_and(is_char) =>
        {
            call.args = call.args.into_iter().map(padded).collect();
            Transformed::yes(Expr::ScalarFunction(call))
        }
        // Functions of "any" arguments print them with the type's output
        // function, padded (`concat(code, '|')` is `ab  |`); the separator
        // of concat_ws and the format string are text.
        Expr::ScalarFunction(mut call)
            if SHOWN_PADDED.contains(&call.name())
                && call
                    .args
                    .iter()
                    .skip(text_arguments(call.name()))
                    .any(is_char) =>
        {
            let skip = text_arguments(call.name());
            call.args = (call.args.into_iter().enumerate())
                .map(|(i, arg)| if i < skip { arg } else { padded(arg) })
                .collect();
            Transformed::yes(Expr::ScalarFunction(call))
        }
        // An array of them holds them padded, as PostgreSQL's `char(n)[]`
        // shows them (here it is an array of text).
        // (The first rewrite of a pass that changes an expression is its
        // last: the order DISTINCT adds is added here.)
        Expr::AggregateFunction(mut call)
            if call.func.name() == "array_agg" && call.params.args.first().is_some_and(is_char) =>
        {
            call.params.args = call.params.args.into_iter().map(padded).collect();
            let call =
                super::distinct_values::distinct_in_order(Expr::AggregateFunction(call), schema);
            Transformed::yes(call.data)
        }
        Expr::WindowFunction(mut call)
            if call.fun.name() == "array_agg" && call.params.args.first().is_some_and(is_char) =>
        {
            call.params.args = call.params.args.into_iter().map(padded).collect();
            Transformed::yes(Expr::WindowFunction(call))
        }
        // Cast to text: the value itself, no longer shown padded.
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if is_text(field.data_type()) && is_char(&expr) =>
        {
            Transformed::yes(as_string_type(plain_text().call(vec![*expr]), field))
        }
        // What PostgreSQL reads as char(n) beside one: an untyped literal
        // or parameter, a varchar (a text value is compared as text).
        other => convert_compared(other, is_char, |e| match &e {
            Expr::Literal(ScalarValue::Utf8(Some(_)), _) => rtrim(vec![e]),
            Expr::Placeholder(p) if p.field.as_ref().is_some_and(|f| is_text(f.data_type())) => {
                rtrim(vec![e])
            }
            _ if is_varchar(&e) => rtrim(vec![e]),
            _ => e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_values_are_cut_and_lose_trailing_spaces() {
        assert_eq!(unpadded("ab  ", 4), "ab");
        assert_eq!(unpadded("abcdef", 4), "abcd");
        assert_eq!(unpadded("ab c  x", 5), "ab c");
        assert_eq!(unpadded("  ", 1), "");
        assert_eq!(unpadded("é☃ ", 2), "é☃");
        assert_eq!(unpadded(" a", 2), " a");
    }
}
