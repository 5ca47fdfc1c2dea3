//! PostgreSQL's functions where DataFusion has none, or one that answers
//! differently.
//!
//! - [`rename_calls`], run on a statement once its result columns are
//!   named (`names`: `ceiling(x)` is a column `ceiling`), reads the calls
//!   PostgreSQL spells otherwise: `mod(a, b)` is `a % b`, `div(a, b)` the truncated quotient
//!   as numeric, `ceiling` is `ceil`, `sign` is `signum`, `every` is
//!   `bool_and`; `to_timestamp(text, template)` is [`template`]'s, and
//!   `LIKE ... ESCAPE 'c'` with a literal pattern is rewritten to the
//!   backslash escapes DataFusion knows.
//! - [`extract`]: `EXTRACT` returns numeric and `date_part` double
//!   precision, with the seconds' fraction (DataFusion gives whole seconds
//!   as an integer); `substring(text FROM pattern)` is a regular
//!   expression match.
//! - [`age`]: PostgreSQL's years, months and days between two timestamps.
//! - `quote_literal`, and `current_setting(name [, missing_ok])`, which
//!   [`inline_settings`] replaces by the session's value before planning
//!   (42704 for a setting that does not exist, which asyncpg's first
//!   `current_setting('jit')` expects of a server without it).
//! - [`template`]: `to_char`, `to_date` and `to_timestamp` with
//!   PostgreSQL's templates (`YYYY-MM-DD HH24:MI:SS`, `FM9990.00`);
//!   DataFusion's take chrono's `%Y-%m-%d`, and would print a PostgreSQL
//!   template back as it is.

mod age;
mod extract;
mod number_template;
mod parse_template;
mod template;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, ObjectName, Statement, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::ops::ControlFlow;

pub use extract::PgExprPlanner;

use super::vars::SessionVars;
use crate::error::Result;

/// The name `to_timestamp(text, template)` is planned under.
const TO_TIMESTAMP_TEMPLATE: &str = "to_timestamp_template";

/// Registers the functions of this module, replacing DataFusion's of the
/// same names.
pub fn register(ctx: &SessionContext) {
    replace(
        ctx,
        ScalarUDF::new_from_impl(extract::DatePart::date_part()),
    );
    replace(ctx, ScalarUDF::new_from_impl(template::ToChar::default()));
    replace(
        ctx,
        ScalarUDF::new_from_impl(parse_template::ParseTemplate::to_date()),
    );
    replace(
        ctx,
        ScalarUDF::new_from_impl(parse_template::ParseTemplate::to_timestamp(
            TO_TIMESTAMP_TEMPLATE,
        )),
    );
    replace(ctx, quote_literal());
    replace(ctx, ScalarUDF::new_from_impl(age::Age::default()));
}

/// `quote_literal(text)`: the text as a string literal, quotes doubled, and
/// written `E'...'` with backslashes doubled when it has any.
fn quote_literal() -> ScalarUDF {
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
            let scalar = matches!(args[0], ColumnarValue::Scalar(_));
            let texts = args[0].clone().into_array(1)?;
            let quoted: StringArray = texts
                .as_string::<i32>()
                .iter()
                .map(|t| t.map(quote))
                .collect();
            let quoted: ArrayRef = Arc::new(quoted);
            Ok(match scalar {
                true => ColumnarValue::Scalar(ScalarValue::try_from_array(&quoted, 0)?),
                false => ColumnarValue::Array(quoted),
            })
        }),
    )
}

/// Replaces each `current_setting('name' [, missing_ok])` of `statement`
/// by the session's value of the setting (NULL for one that does not
/// exist when `missing_ok` is true).
pub fn inline_settings(statement: &mut Statement, vars: &SessionVars) -> Result<()> {
    let mut failed = None;
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let is_current_setting = function
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("current_setting"));
        if !is_current_setting {
            return ControlFlow::Continue(());
        }
        let args = plain_args(&function.args).unwrap_or_default();
        let literal = |e: &Expr| match e {
            Expr::Value(v) => v.value.clone().into_string(),
            _ => None,
        };
        let (name, missing_ok) = match args.as_slice() {
            [name] => (literal(name), false),
            [name, Expr::Value(ok)] => (literal(name), ok.value == Value::Boolean(true)),
            _ => return ControlFlow::Continue(()),
        };
        let Some(name) = name else {
            return ControlFlow::Continue(());
        };
        *expr = match (vars.get(&name), missing_ok) {
            (Ok(value), _) => Expr::Value(Value::SingleQuotedString(value).into()),
            (Err(_), true) => Expr::Value(Value::Null.into()),
            (Err(e), false) => {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        };
        ControlFlow::Continue(())
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Registers `udf` in place of DataFusion's function of its name, aliases
/// included: a session state copied from this one registers its functions
/// again in no set order, and an alias left behind (`datepart`) would
/// bring DataFusion's back under the name.
fn replace(ctx: &SessionContext, udf: ScalarUDF) {
    ctx.deregister_udf(udf.name());
    ctx.register_udf(udf);
}

/// The calls of `statement` PostgreSQL spells otherwise, as DataFusion
/// spells them (see the module header).
pub fn rename_calls(statement: &mut Statement) {
    let _ = statement.visit(&mut FunctionNamesVisitor);
}

struct FunctionNamesVisitor;

impl VisitorMut for FunctionNamesVisitor {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(function) => {
                let [name] = function.name.0.as_slice() else {
                    return ControlFlow::Continue(());
                };
                let Some(name) = name.as_ident().map(|i| i.value.to_lowercase()) else {
                    return ControlFlow::Continue(());
                };
                let args = plain_args(&function.args);
                let renamed = match (name.as_str(), args.as_deref()) {
                    ("mod", Some([a, b])) => {
                        *expr = Expr::Nested(Box::new(Expr::BinaryOp {
                            left: Box::new(a.clone()),
                            op: BinaryOperator::Modulo,
                            right: Box::new(b.clone()),
                        }));
                        return ControlFlow::Continue(());
                    }
                    ("div", Some([a, b])) => {
                        *expr = integral_quotient(a, b);
                        return ControlFlow::Continue(());
                    }
                    ("ceiling", _) => "ceil",
                    ("sign", _) => "signum",
                    ("every", _) => "bool_and",
                    ("to_timestamp", Some([_, _])) => TO_TIMESTAMP_TEMPLATE,
                    _ => return ControlFlow::Continue(()),
                };
                function.name = ObjectName::from(vec![Ident::new(renamed)]);
            }
            Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } => {
                let escape = escape_char
                    .as_ref()
                    .and_then(|c| c.value.clone().into_string());
                if let (Some(escape), Expr::Value(value)) = (escape, pattern.as_mut()) {
                    if let Value::SingleQuotedString(text) = &mut value.value {
                        if let Some(rewritten) = backslash_escapes(text, &escape) {
                            *text = rewritten;
                            *escape_char = None;
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A call's arguments when they are plain positional expressions.
fn plain_args(args: &FunctionArguments) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// `div(a, b)`: the quotient truncated toward zero, as a numeric of scale
/// 0 (PostgreSQL's `div` is numeric whatever its arguments).
fn integral_quotient(a: &Expr, b: &Expr) -> Expr {
    let sql =
        format!("CAST(trunc(CAST(({a}) AS numeric) / CAST(({b}) AS numeric)) AS numeric(38, 0))");
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|_| Expr::Nested(Box::new(Expr::Value(Value::Null.into()))))
}

/// A LIKE pattern whose escape character is `escape` rewritten to use
/// backslash, the only one DataFusion takes: `a#_c` with `#` is `a\_c`, and
/// a backslash of the pattern is then a literal one (`\\`). An empty escape
/// means none. `None` for a pattern ending in its escape character, which
/// PostgreSQL refuses (DataFusion then reports it).
fn backslash_escapes(pattern: &str, escape: &str) -> Option<String> {
    let escape = escape.chars().next();
    if escape == Some('\\') {
        return None; // DataFusion's own
    }
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            out.push('\\');
            out.push(chars.next()?);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes_become_backslashes() {
        assert_eq!(backslash_escapes("a#_c", "#").as_deref(), Some("a\\_c"));
        assert_eq!(
            backslash_escapes("a\\b##", "#").as_deref(),
            Some("a\\\\b\\#")
        );
        assert_eq!(backslash_escapes("a_\\", "").as_deref(), Some("a_\\\\"));
        assert_eq!(backslash_escapes("a#", "#"), None);
    }

    #[test]
    fn renamed_calls() {
        let mut statement = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(
                "SELECT mod(7, 3), ceiling(x), sign(x), div(7, 2), to_timestamp('1', 'J')",
            )
            .and_then(|mut p| p.parse_statement())
            .unwrap();
        rename_calls(&mut statement);
        let sql = statement.to_string();
        assert_eq!(
            sql,
            "SELECT (7 % 3), ceil(x), signum(x), CAST(trunc(CAST((7) AS NUMERIC) / CAST((2) AS NUMERIC)) AS NUMERIC(38,0)), to_timestamp_template('1', 'J')"
        );
    }
}
