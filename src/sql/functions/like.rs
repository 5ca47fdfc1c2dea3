//! `LIKE ... ESCAPE` with an escape character other than the backslash.
//!
//! DataFusion's LIKE takes only the backslash, PostgreSQL's default. So
//! `x LIKE p ESCAPE '#'` is planned as `x LIKE like_escape(p, '#')`, as
//! PostgreSQL itself defines `like_escape`: the pattern rewritten to use
//! the backslash. A constant pattern is rewritten once, when constants
//! are folded; a pattern from a parameter or a column (SQLAlchemy's
//! `nspname NOT LIKE $1 || '%' ESCAPE '/'`) row by row.
//!
//! A pattern ending in its escape character is an error (22025) whatever
//! the text; PostgreSQL reports it only when matching gets that far, and
//! answers false when the text differs before.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

use crate::error::{Error, InputError};
use crate::sql::analyze::like_arguments;

/// The name the rewritten pattern is computed by.
pub const LIKE_ESCAPE: &str = "like_escape";

/// `like_escape(pattern, escape)`.
pub fn like_escape() -> ScalarUDF {
    create_udf(
        LIKE_ESCAPE,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (patterns, escapes) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
            let rewritten = patterns
                .iter()
                .zip(escapes.iter())
                .map(|(pattern, escape)| match (pattern, escape) {
                    (Some(pattern), Some(escape)) => backslash_escapes(pattern, escape).map(Some),
                    _ => Ok(None),
                })
                .collect::<DFResult<StringArray>>()?;
            like_arguments(args, Arc::new(rewritten) as ArrayRef)
        }),
    )
}

/// `pattern`, whose escape character is `escape`, rewritten to use the
/// backslash: `a#_c` with `#` is `a\_c`, and a backslash of the pattern is
/// then a literal one (`\\`). An empty escape means none. PostgreSQL's
/// errors for an escape of more than one character and for a pattern
/// ending in its escape character.
fn backslash_escapes(pattern: &str, escape: &str) -> DFResult<String> {
    let mut escape_chars = escape.chars();
    let escape = escape_chars.next();
    if escape_chars.next().is_some() {
        return Err(
            Error::input(InputError::InvalidEscapeCharacter, "invalid escape string").into(),
        );
    }
    if escape == Some('\\') {
        return Ok(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let Some(escaped) = chars.next() else {
                return Err(Error::input(
                    InputError::InvalidEscapeSequence,
                    "LIKE pattern must not end with escape character",
                )
                .into());
            };
            out.push('\\');
            out.push(escaped);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes_become_backslashes() {
        assert_eq!(backslash_escapes("a#_c", "#").unwrap(), "a\\_c");
        assert_eq!(backslash_escapes("a\\b##", "#").unwrap(), "a\\\\b\\#");
        assert_eq!(backslash_escapes("a_\\", "").unwrap(), "a_\\\\");
        assert_eq!(backslash_escapes("a\\_", "\\").unwrap(), "a\\_");
        assert!(backslash_escapes("a#", "#").is_err());
        assert!(backslash_escapes("a", "##").is_err());
    }
}
