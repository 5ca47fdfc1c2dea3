//! `quote_literal`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

use super::like_arguments;

/// `quote_literal(text)`: the text as a string literal, quotes doubled, and
/// written `E'...'` with backslashes doubled when it has any.
pub fn quote_literal() -> ScalarUDF {
    let quote = |text: &str| {
        let quoted = text.replace('\'', "''");
        match quoted.contains('\\') {
            true => format!("E'{}'", quoted.replace('\\', "\\\\")),
            false => format!("'{quoted}'"),
        }
    };
    create_udf(
        "quote_literal",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let texts = args[0].clone().into_array(1)?;
            let quoted: StringArray = texts
                .as_string::<i32>()
                .iter()
                .map(|t| t.map(quote))
                .collect();
            let quoted: ArrayRef = Arc::new(quoted);
            like_arguments(args, quoted)
        }),
    )
}
