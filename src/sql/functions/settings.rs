//! `current_setting(name [, missing_ok])`, read from the session's
//! variables before planning.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, Statement, Value};

use super::calls::plain_args;
use crate::error::Result;
use crate::sql::vars::SessionVars;

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
