//! `regexp_replace(text, pattern, replacement [, start [, n]] [, flags])`,
//! `regexp_split_to_array(text, pattern [, flags])`,
//! `regexp_matches(text, pattern [, flags])` and `regexp_substr(text,
//! pattern [, start [, n [, flags [, subexpr]]]])` as PostgreSQL's, over
//! Rust's regular expressions (as DataFusion's `~`).
//! `regexp_matches` returns a set: in a select list it is planned as
//! `unnest(regexp_matches_list(...))` (`rewrite::expand_set_returning_items`),
//! as `regexp_split_to_table` is `unnest(regexp_split_to_array(...))`.
//!
//! Flags as PostgreSQL reads them: `i` ignores case, `c` does not, `n` (or
//! `m`) makes `.` and bracket expressions stop at a newline and `^`/`$`
//! match at one, `s` undoes it, `x` allows spaces and comments, `g`
//! (matches and replace only) finds every match; another is 22023.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::Result as DFResult;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{
    binary_expr, lit, BinaryExpr, ColumnarValue, Expr, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use regex::{Regex, RegexBuilder};

use super::{input_error, like_arguments};
use crate::error::InputError;

/// The name `regexp_matches` is planned under (a list of its rows).
pub const REGEXP_MATCHES_LIST: &str = "regexp_matches_list";

pub fn regexp_split_to_array() -> ScalarUDF {
    ScalarUDF::new_from_impl(Regexp {
        kind: Kind::Split,
        signature: signature(),
    })
}

/// `regexp_match(text, pattern [, flags])`: the groups of the first match
/// (a group that took no part is NULL, where DataFusion's dropped it and
/// shifted the next), or the whole match when there is no group; NULL when
/// nothing matches.
pub fn regexp_match() -> ScalarUDF {
    ScalarUDF::new_from_impl(Regexp {
        kind: Kind::Match,
        signature: signature(),
    })
}

pub fn regexp_matches_list() -> ScalarUDF {
    ScalarUDF::new_from_impl(Regexp {
        kind: Kind::Matches,
        signature: signature(),
    })
}

fn signature() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]),
        ],
        Volatility::Immutable,
    )
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Split,
    Match,
    Matches,
}

impl Kind {
    /// The SQL function's name (`compile`'s errors name it).
    fn function(self) -> &'static str {
        match self {
            Kind::Split => "regexp_split_to_array",
            Kind::Match => "regexp_match",
            Kind::Matches => "regexp_matches",
        }
    }
}

pub fn regexp_substr() -> ScalarUDF {
    let (text, int) = (DataType::Utf8, DataType::Int64);
    let arguments = [
        text.clone(),
        text.clone(),
        int.clone(),
        int.clone(),
        text.clone(),
        int,
    ];
    ScalarUDF::new_from_impl(RegexpSubstr {
        signature: Signature::one_of(
            (2..=arguments.len())
                .map(|n| TypeSignature::Exact(arguments[..n].to_vec()))
                .collect(),
            Volatility::Immutable,
        ),
    })
}

/// `regexp_substr`: the `n`th match (1: the first) at or after character
/// `start` (1: the first), or its `subexpr`th parenthesized group; NULL
/// where there is none.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpSubstr {
    signature: Signature,
}

impl ScalarUDFImpl for RegexpSubstr {
    fn name(&self) -> &str {
        "regexp_substr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = |column: usize, row: usize| match arrays.get(column) {
            Some(a) => a.is_valid(row).then(|| a.as_string::<i32>().value(row)),
            None => Some(""),
        };
        let int = |column: usize, row: usize, absent: i64| match arrays.get(column) {
            Some(a) => a
                .is_valid(row)
                .then(|| a.as_primitive::<Int64Type>().value(row)),
            None => Some(absent),
        };
        let mut compiled = Compiled::default();
        let mut found = StringBuilder::new();
        for row in 0..args.number_rows {
            let (Some(subject), Some(pattern), Some(start), Some(n), Some(flags), Some(group)) = (
                text(0, row),
                text(1, row),
                int(2, row, 1),
                int(3, row, 1),
                text(4, row),
                int(5, row, 0),
            ) else {
                found.append_null();
                continue;
            };
            for (name, value, least) in [("start", start, 1), ("n", n, 1), ("subexpr", group, 0)] {
                if value < least {
                    return Err(input_error(
                        InputError::InvalidParameterValue,
                        format!("invalid value for parameter \"{name}\": {value}"),
                    ));
                }
            }
            let regex = compiled.get(pattern, flags, "regexp_substr")?;
            let from = byte_at(subject, start);
            let nth = regex.captures_iter(&subject[from..]).nth(n as usize - 1);
            let value = nth.and_then(|c| c.get(group as usize).map(|m| m.as_str()));
            found.append_option(value);
        }
        like_arguments(&args.args, Arc::new(found.finish()))
    }
}

pub fn regexp_replace() -> ScalarUDF {
    let (text, int) = (DataType::Utf8, DataType::Int64);
    let three = vec![text.clone(), text.clone(), text.clone()];
    let with = |more: &[DataType]| TypeSignature::Exact([three.clone(), more.to_vec()].concat());
    ScalarUDF::new_from_impl(RegexpReplace {
        signature: Signature::one_of(
            vec![
                with(&[]),
                // Before the flags: an integer literal would become text.
                with(std::slice::from_ref(&int)),
                with(std::slice::from_ref(&text)),
                with(&[int.clone(), int.clone()]),
                with(&[int.clone(), int, text]),
            ],
            Volatility::Immutable,
        ),
    })
}

/// `regexp_replace`: the first match at or after character `start` (1:
/// the first) replaced, or every one with the flag `g` or `n` = 0, or the
/// `n`th. In the replacement `\1` .. `\9` is a group, `\&` the whole
/// match, `\\` one backslash; anything else (`$1` too) is itself.
/// DataFusion's function read `$1` as a group and `\&` as text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpReplace {
    signature: Signature,
}

impl ScalarUDFImpl for RegexpReplace {
    fn name(&self) -> &str {
        "regexp_replace"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // The fourth argument is the flags, or `start` and then `n`, flags.
        let flags_at = match arrays.get(3) {
            Some(a) if a.data_type() == &DataType::Utf8 => 3,
            _ => 5,
        };
        let text = |column: usize, row: usize| match arrays.get(column) {
            Some(a) => a.is_valid(row).then(|| a.as_string::<i32>().value(row)),
            None => Some(""),
        };
        let int = |column: usize, row: usize| match arrays.get(column) {
            Some(a) if column != flags_at => a
                .is_valid(row)
                .then(|| Some(a.as_primitive::<Int64Type>().value(row))),
            _ => Some(None),
        };
        let mut compiled = Compiled::default();
        let mut replaced = StringBuilder::new();
        for row in 0..args.number_rows {
            let (
                Some(subject),
                Some(pattern),
                Some(replacement),
                Some(start),
                Some(n),
                Some(flags),
            ) = (
                text(0, row),
                text(1, row),
                text(2, row),
                int(3, row),
                int(4, row),
                text(flags_at, row),
            )
            else {
                replaced.append_null();
                continue;
            };
            for (name, value, least) in [("start", start, 1), ("n", n, 0)] {
                if let Some(value) = value.filter(|v| *v < least) {
                    return Err(input_error(
                        InputError::InvalidParameterValue,
                        format!("invalid value for parameter \"{name}\": {value}"),
                    ));
                }
            }
            let global = flags.contains('g');
            let flags: String = flags.chars().filter(|f| *f != 'g').collect();
            let regex = compiled.get(pattern, &flags, "regexp_replace")?;
            // Which matches: all (0), or the nth (the g flag is ignored
            // when n is given).
            let which = n.unwrap_or(if global { 0 } else { 1 }) as usize;
            let from = byte_at(subject, start.unwrap_or(1));
            let mut out = String::with_capacity(subject.len());
            let mut copied = 0;
            for (i, found) in regex.captures_iter(&subject[from..]).enumerate() {
                if which != 0 && i + 1 < which {
                    continue;
                }
                let Some(whole) = found.get(0) else { continue };
                out.push_str(&subject[copied..from + whole.start()]);
                substitute(replacement, &found, &mut out);
                copied = from + whole.end();
                if which != 0 {
                    break;
                }
            }
            out.push_str(&subject[copied..]);
            replaced.append_value(out);
        }
        like_arguments(&args.args, Arc::new(replaced.finish()))
    }
}

/// `replacement` with PostgreSQL's escapes expanded (see [`RegexpReplace`]).
fn substitute(replacement: &str, found: &regex::Captures, out: &mut String) {
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(digit @ '1'..='9') => {
                chars.next();
                let group = digit as usize - '0' as usize;
                out.push_str(found.get(group).map_or("", |g| g.as_str()));
            }
            Some('&') => {
                chars.next();
                out.push_str(&found[0]);
            }
            Some('\\') => {
                chars.next();
                out.push('\\');
            }
            // Not an escape: the backslash is text.
            _ => out.push('\\'),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Regexp {
    kind: Kind,
    signature: Signature,
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

impl ScalarUDFImpl for Regexp {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Split | Kind::Match => self.kind.function(),
            Kind::Matches => REGEXP_MATCHES_LIST,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(match self.kind {
            Kind::Split | Kind::Match => text_list(),
            Kind::Matches => DataType::List(Arc::new(Field::new("item", text_list(), true))),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.clone().into_array(rows))
            .collect::<DFResult<Vec<ArrayRef>>>()?;
        let texts: Vec<&StringArray> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
        let value = |column: usize, row: usize| {
            let t = texts.get(column)?;
            t.is_valid(row).then(|| t.value(row))
        };
        let mut compiled = Compiled::default();
        let mut split = ListBuilder::new(StringBuilder::new());
        let mut matches = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
        for row in 0..rows {
            let flags = match texts.len() {
                3 => value(2, row),
                _ => Some(""),
            };
            let (Some(text), Some(pattern), Some(flags)) = (value(0, row), value(1, row), flags)
            else {
                match self.kind {
                    Kind::Split | Kind::Match => split.append_null(),
                    Kind::Matches => matches.append(true),
                }
                continue;
            };
            let regex = compiled.get(pattern, flags, self.kind.function())?;
            match self.kind {
                Kind::Split => {
                    for piece in split_pieces(regex, text) {
                        split.values().append_value(piece);
                    }
                    split.append(true);
                }
                Kind::Match => match regex.captures(text) {
                    Some(found) => {
                        push_groups(split.values(), &found);
                        split.append(true);
                    }
                    None => split.append_null(),
                },
                Kind::Matches => {
                    let every = flags.contains('g');
                    for found in regex
                        .captures_iter(text)
                        .take(if every { usize::MAX } else { 1 })
                    {
                        let groups = matches.values();
                        push_groups(groups.values(), &found);
                        groups.append(true);
                    }
                    matches.append(true);
                }
            }
        }
        let array: ArrayRef = match self.kind {
            Kind::Split | Kind::Match => Arc::new(split.finish()),
            Kind::Matches => Arc::new(matches.finish()),
        };
        like_arguments(&args.args, array)
    }
}

/// A match's groups (NULL for one that took no part), or the whole match
/// when the pattern has no group.
fn push_groups(values: &mut StringBuilder, found: &regex::Captures) {
    match found.len() {
        1 => values.append_value(&found[0]),
        _ => (found.iter().skip(1)).for_each(|g| values.append_option(g.map(|g| g.as_str()))),
    }
}

/// `text` cut at the matches of `regex`, skipping empty matches at its
/// start, at its end and right after another match, as PostgreSQL does.
fn split_pieces<'t>(regex: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for found in regex.find_iter(text) {
        if found.start() < text.len() && found.end() > start {
            pieces.push(&text[start..found.start()]);
            start = found.end();
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// `text ~ pattern` and its kin (`~*`, `!~`, `!~*`) with `.` matching a
/// newline, as in PostgreSQL's regular expressions (and in [`compile`]'s);
/// DataFusion's operators leave Rust's default, so `E'a\nb' ~ 'a.b'` was
/// false. An expression rewrite run before type coercion.
pub fn dot_matches_newline(expr: Expr, _schema: &DFSchema) -> Transformed<Expr> {
    use Operator::{RegexIMatch, RegexMatch, RegexNotIMatch, RegexNotMatch};
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                RegexMatch | RegexIMatch | RegexNotMatch | RegexNotIMatch
            ) =>
        {
            let pattern = match *right {
                Expr::Literal(ScalarValue::Utf8(Some(p)), meta) => {
                    Expr::Literal(ScalarValue::Utf8(Some(format!("(?s){p}"))), meta)
                }
                literal @ Expr::Literal(..) => literal,
                // `||`, not `concat`: a NULL pattern stays NULL.
                other => binary_expr(lit("(?s)"), Operator::StringConcat, other),
            };
            Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                left,
                op,
                Box::new(pattern),
            )))
        }
        other => Transformed::no(other),
    }
}

/// The patterns of one call, each compiled once.
#[derive(Default)]
struct Compiled(HashMap<(String, String), Regex>);

impl Compiled {
    /// `pattern` with `flags`, compiled for `function` ([`compile`]).
    fn get(&mut self, pattern: &str, flags: &str, function: &str) -> DFResult<&Regex> {
        let key = (pattern.to_string(), flags.to_string());
        if !self.0.contains_key(&key) {
            let regex = compile(pattern, flags, function)?;
            self.0.insert(key.clone(), regex);
        }
        Ok(&self.0[&key])
    }
}

/// The byte offset of character `start` (1: the first) of `text`, or its
/// end.
fn byte_at(text: &str, start: i64) -> usize {
    let skipped = usize::try_from(start - 1).unwrap_or(0);
    text.char_indices()
        .nth(skipped)
        .map_or(text.len(), |(at, _)| at)
}

/// `pattern` with PostgreSQL's `flags` (see the module header), for the
/// SQL function `function` (only `regexp_matches` takes `g`;
/// `regexp_replace` reads it itself).
fn compile(pattern: &str, flags: &str, function: &str) -> DFResult<Regex> {
    let mut builder = RegexBuilder::new(pattern);
    builder.dot_matches_new_line(true);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'c' => builder.case_insensitive(false),
            'n' | 'm' => builder.dot_matches_new_line(false).multi_line(true),
            's' => builder.dot_matches_new_line(true).multi_line(false),
            'x' => builder.ignore_whitespace(true),
            'g' if function == Kind::Matches.function() => &mut builder,
            'g' => {
                return Err(input_error(
                    InputError::InvalidParameterValue,
                    format!("{function}() does not support the \"global\" option"),
                ));
            }
            other => {
                return Err(input_error(
                    InputError::InvalidParameterValue,
                    format!("invalid regular expression option: \"{other}\""),
                ))
            }
        };
    }
    builder.build().map_err(|e| {
        // A syntax error is drawn over several lines: its last says what.
        let e = e.to_string();
        let what = e.lines().last().unwrap_or_default();
        let what = what.strip_prefix("error: ").unwrap_or(what);
        input_error(
            InputError::InvalidRegularExpression,
            format!("invalid regular expression: {what}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_postgresql() {
        // PostgreSQL 15's answers.
        for (text, pattern, pieces) in [
            ("a,b,,c", ",", vec!["a", "b", "", "c"]),
            ("abc", "", vec!["a", "b", "c"]),
            (
                "hello world",
                "\\s*",
                vec!["h", "e", "l", "l", "o", "w", "o", "r", "l", "d"],
            ),
            (",a,", ",", vec!["", "a", ""]),
            ("", ",", vec![""]),
        ] {
            let regex = compile(pattern, "", Kind::Split.function()).unwrap();
            assert_eq!(split_pieces(&regex, text), pieces, "{text} {pattern}");
        }
    }
}
