//! `format(formatstr, args...)` as PostgreSQL's: `%s` (the text, NULL as
//! nothing), `%I` (an identifier, quoted as `quote_ident` quotes it; NULL
//! is 22004), `%L` (a literal, as `quote_nullable`), `%%`; an argument's
//! position (`%2$s`), the `-` flag and a width (`%-10s`, `%*s`, `%*3$s`).
//! Each value is as PostgreSQL prints it: the types whose text Arrow's
//! differs from are rendered before (`output::text_casts`), as for
//! `concat`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::quote::{ident, literal};
use super::{input_error, like_arguments};
use crate::error::InputError;

pub fn format() -> ScalarUDF {
    ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Stable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| cast(&a.clone().into_array(rows)?, &DataType::Utf8).map_err(Into::into))
            .collect::<DFResult<Vec<ArrayRef>>>()?;
        let texts: Vec<&StringArray> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
        let mut out = StringBuilder::new();
        let mut values: Vec<Option<&str>> = Vec::with_capacity(texts.len());
        for row in 0..rows {
            values.clear();
            values.extend(texts.iter().map(|t| t.is_valid(row).then(|| t.value(row))));
            match values.split_first() {
                Some((Some(template), values)) => out.append_value(formatted(template, values)?),
                _ => out.append_null(),
            }
        }
        like_arguments(&args.args, Arc::new(out.finish()))
    }
}

/// `template` with its specifiers replaced by `values`.
fn formatted(template: &str, values: &[Option<&str>]) -> DFResult<String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    // The argument a specifier without a position takes.
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[position$][-][width|*|*position$]type
        let mut position = None;
        let mut left = false;
        let mut width = None;
        let mut number = digits(&mut chars);
        if number.is_some() && chars.peek() == Some(&'$') {
            chars.next();
            position = number.take();
        }
        if number.is_none() {
            while chars.peek() == Some(&'-') {
                chars.next();
                left = true;
            }
            if chars.peek() == Some(&'*') {
                chars.next();
                let from = match digits(&mut chars) {
                    Some(at) if chars.next_if_eq(&'$').is_some() => argument(at)?,
                    Some(_) => return Err(unterminated()),
                    None => take(&mut next),
                };
                let given = values.get(from).ok_or_else(too_few)?;
                let given: i64 = match given {
                    Some(text) => text.trim().parse().map_err(|_| {
                        input_error(
                            InputError::InvalidText,
                            format!("invalid input syntax for type integer: \"{text}\""),
                        )
                    })?,
                    None => 0,
                };
                left |= given < 0;
                width = Some(given.unsigned_abs() as usize);
            } else {
                number = digits(&mut chars);
            }
        }
        if let Some(n) = number {
            width = Some(n);
        }
        let kind = chars.next().ok_or_else(unterminated)?;
        let at = match position {
            Some(at) => {
                let at = argument(at)?;
                next = at + 1;
                at
            }
            None => take(&mut next),
        };
        let value = *values.get(at).ok_or_else(too_few)?;
        let text = match kind {
            's' => value.unwrap_or_default().to_string(),
            'I' => ident(value.ok_or_else(|| {
                input_error(
                    InputError::NullValueNotAllowed,
                    "null values cannot be formatted as an SQL identifier",
                )
            })?),
            'L' => value.map_or_else(|| "NULL".to_string(), literal),
            other => {
                return Err(input_error(
                    InputError::InvalidParameterValue,
                    format!("unrecognized format() type specifier \"{other}\""),
                ))
            }
        };
        let pad = width.unwrap_or(0).saturating_sub(text.chars().count());
        if !left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&text);
        if left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
    Ok(out)
}

/// The number at `chars`, if any.
fn digits(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<usize> {
    let mut number: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        number = Some(
            number
                .unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(d as usize),
        );
    }
    number
}

/// The index of the argument at 1-based `position` (0 is 22023).
fn argument(position: usize) -> DFResult<usize> {
    position.checked_sub(1).ok_or_else(|| {
        input_error(
            InputError::InvalidParameterValue,
            "format specifies argument 0, but arguments are numbered from 1",
        )
    })
}

fn take(next: &mut usize) -> usize {
    *next += 1;
    *next - 1
}

fn too_few() -> DataFusionError {
    input_error(
        InputError::InvalidParameterValue,
        "too few arguments for format()",
    )
}

fn unterminated() -> DataFusionError {
    input_error(
        InputError::InvalidParameterValue,
        "unterminated format() type specifier",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_postgresql() {
        // PostgreSQL 15's answers.
        for (template, values, expected) in [
            ("Hello %s", vec![Some("world")], "Hello world"),
            ("%s|%s", vec![Some("a"), None], "a|"),
            (
                "%I.%I",
                vec![Some("public"), Some("My T")],
                "public.\"My T\"",
            ),
            ("%L %L", vec![Some("it's"), None], "'it''s' NULL"),
            ("%2$s %1$s %s", vec![Some("a"), Some("b")], "b a b"),
            (
                "[%5s][%-5s]",
                vec![Some("ab"), Some("cd")],
                "[   ab][cd   ]",
            ),
            ("[%*s]", vec![Some("-4"), Some("x")], "[x   ]"),
            ("100%%", vec![], "100%"),
        ] {
            assert_eq!(
                formatted(template, &values).unwrap(),
                expected,
                "{template}"
            );
        }
        assert!(formatted("%s %s", &[Some("a")]).is_err());
        assert!(formatted("%x", &[Some("a")]).is_err());
        assert!(formatted("%I", &[None]).is_err());
    }
}
