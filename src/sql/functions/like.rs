//! `LIKE ... ESCAPE` with an escape character other than the backslash,
//! and `SIMILAR TO`.
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
//!
//! `x SIMILAR TO p [ESCAPE e]` is `x ~ similar_to_escape(p [, e])`, as
//! PostgreSQL runs it: the SQL pattern made a regular expression that must
//! match the whole text (`%` is `.*`, `_` is `.`, `.` `^` `$` and `\` are
//! literal, groups do not capture). DataFusion read the pattern itself as
//! an unanchored regular expression: `'axb' SIMILAR TO 'a_b'` was false and
//! `'abc' SIMILAR TO 'a'` true.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

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

/// The name SIMILAR TO's pattern is converted by.
pub const SIMILAR_TO_ESCAPE: &str = "similar_to_escape";

/// `similar_to_escape(pattern [, escape])`: [`similar_regex`].
pub fn similar_to_escape() -> ScalarUDF {
    ScalarUDF::new_from_impl(SimilarToEscape {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SimilarToEscape {
    signature: Signature,
}

impl ScalarUDFImpl for SimilarToEscape {
    fn name(&self) -> &str {
        SIMILAR_TO_ESCAPE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let patterns = arrays[0].as_string::<i32>();
        let escapes = arrays.get(1).map(|a| a.as_string::<i32>());
        let regexes = (0..patterns.len())
            .map(|row| {
                if patterns.is_null(row) || escapes.is_some_and(|e| e.is_null(row)) {
                    return Ok(None);
                }
                let escape = escapes.map_or("\\", |e| e.value(row));
                similar_regex(patterns.value(row), escape).map(Some)
            })
            .collect::<DFResult<StringArray>>()?;
        like_arguments(&args.args, Arc::new(regexes) as ArrayRef)
    }
}

/// PostgreSQL's `similar_escape`: the SQL regular expression `pattern`
/// (escape character `escape`, none if empty) as a regular expression that
/// matches whole texts (`.` matching newlines too, as PostgreSQL's does).
fn similar_regex(pattern: &str, escape: &str) -> DFResult<String> {
    let mut escape_chars = escape.chars();
    let escape = escape_chars.next();
    if escape_chars.next().is_some() {
        return Err(
            Error::input(InputError::InvalidEscapeCharacter, "invalid escape string").into(),
        );
    }
    let mut out = String::from("(?s)^(?:");
    let (mut after_escape, mut in_class) = (false, false);
    for c in pattern.chars() {
        if after_escape {
            out.push('\\');
            out.push(c);
            after_escape = false;
        } else if Some(c) == escape {
            after_escape = true;
        } else if in_class {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            in_class = c != ']';
        } else {
            match c {
                '[' => {
                    out.push(c);
                    in_class = true;
                }
                '%' => out.push_str(".*"),
                '_' => out.push('.'),
                '(' => out.push_str("(?:"),
                '\\' | '.' | '^' | '$' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    // (A trailing escape character escapes nothing, as in PostgreSQL.)
    out.push_str(")$");
    Ok(out)
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

    #[test]
    fn similar_to_patterns_become_anchored_regular_expressions() {
        // As PostgreSQL's similar_to_escape writes them (after its `^(?:`).
        assert_eq!(similar_regex("a_b%", "\\").unwrap(), "(?s)^(?:a.b.*)$");
        assert_eq!(
            similar_regex("(a|b).c\\%", "\\").unwrap(),
            "(?s)^(?:(?:a|b)\\.c\\%)$"
        );
        assert_eq!(similar_regex("#_[x_]", "#").unwrap(), "(?s)^(?:\\_[x_])$");
        assert_eq!(similar_regex("a\\b", "").unwrap(), "(?s)^(?:a\\\\b)$");
        assert_eq!(similar_regex("a#", "#").unwrap(), "(?s)^(?:a)$");
        assert!(similar_regex("a", "##").is_err());
    }
}
