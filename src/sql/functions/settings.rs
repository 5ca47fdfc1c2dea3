//! `current_setting(name [, missing_ok])`, and `current_user`,
//! `session_user` and `user` (the user the client connected as), read
//! from the session's variables before planning; and `session_user()`,
//! which a column DEFAULT calls, read from the executing session's
//! configuration.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigExtension;
use datafusion::common::{extensions_options, ParamValues, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArguments, Statement, Value,
};

use super::calls::plain_args;
use crate::error::Result;
use crate::sql::vars::SessionVars;

/// Replaces each `current_setting('name' [, missing_ok])` of `statement`
/// by the session's value of the setting (NULL for one that does not
/// exist when `missing_ok` is true), and each `current_user`,
/// `session_user` and `user` by the connected user's name. The name may be
/// a parameter (`current_setting($1::VARCHAR)`, as SQLAlchemy sends it),
/// read from `params`.
pub fn inline_settings(
    statement: &mut Statement,
    vars: &SessionVars,
    params: Option<&ParamValues>,
) -> Result<()> {
    let mut failed = None;
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let name = function.name.0.last().and_then(|p| p.as_ident());
        let name = name.map(|i| i.value.to_lowercase()).unwrap_or_default();
        // The SQL-standard spellings of the connected user (no parentheses).
        let user_call = matches!(name.as_str(), "current_user" | "session_user" | "user")
            && matches!(function.args, FunctionArguments::None);
        if user_call {
            let user = vars.get("session_authorization").unwrap_or_default();
            *expr = Expr::Value(Value::SingleQuotedString(user).into());
            return ControlFlow::Continue(());
        }
        if name != "current_setting" {
            return ControlFlow::Continue(());
        }
        let args = plain_args(&function.args).unwrap_or_default();
        let literal = |e: &Expr| match e {
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => parameter(p, params),
                other => other.clone().into_string(),
            },
            Expr::Cast { expr, .. } => match expr.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Placeholder(p) => parameter(p, params),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let (name, missing_ok) = match args.as_slice() {
            [name] => (literal(name), false),
            [name, Expr::Value(ok)] if !matches!(ok.value, Value::Placeholder(_)) => {
                (literal(name), ok.value == Value::Boolean(true))
            }
            [name, ok] => match flag(ok, params) {
                Some(ok) => (literal(name), ok),
                None => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        let Some(name) = name else {
            // A parameter's setting, described before it is bound: a text,
            // with the parameter kept so that it is described too.
            if params.is_none() && is_parameter(&args[0]) {
                if let Ok(text) =
                    super::super::rewrite::parse_expr(&format!("CAST({} AS TEXT)", args[0]))
                {
                    *expr = text;
                }
            }
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

/// The value of a boolean parameter (`current_setting($1, $2)`).
fn flag(expr: &Expr, params: Option<&ParamValues>) -> Option<bool> {
    let placeholder = match expr {
        Expr::Value(v) => v.value.clone(),
        Expr::Cast { expr, .. } => match expr.as_ref() {
            Expr::Value(v) => v.value.clone(),
            _ => return None,
        },
        _ => return None,
    };
    let Value::Placeholder(p) = placeholder else {
        return None;
    };
    let n: usize = p.strip_prefix('$')?.parse().ok()?;
    match params? {
        ParamValues::List(values) => match &values.get(n.checked_sub(1)?)?.value {
            ScalarValue::Boolean(b) => Some(b.unwrap_or(false)),
            ScalarValue::Utf8(Some(s)) => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "t" | "true" | "on" | "1" | "yes"
            )),
            _ => None,
        },
        ParamValues::Map(_) => None,
    }
}

fn is_parameter(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(v.value, Value::Placeholder(_)),
        Expr::Cast { expr, .. } => is_parameter(expr),
        _ => false,
    }
}

/// The text of the parameter `$n`.
fn parameter(placeholder: &str, params: Option<&ParamValues>) -> Option<String> {
    let n: usize = placeholder.strip_prefix('$')?.parse().ok()?;
    match params? {
        ParamValues::List(values) => match values.get(n.checked_sub(1)?)?.value.clone() {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => Some(s),
            _ => None,
        },
        ParamValues::Map(_) => None,
    }
}

extensions_options! {
    /// The user a session's client connected as, in its DataFusion
    /// configuration (`Session::set_user`): a table's DEFAULT expressions
    /// are planned once for every session, so `DEFAULT current_user`
    /// (stored as `session_user()`) learns the user when it runs.
    pub struct SessionUser {
        pub name: String, default = DEFAULT_USER.to_string()
    }
}

impl ConfigExtension for SessionUser {
    const PREFIX: &'static str = "shardforge_session";
}

/// The user of a session that did not say (an internal one).
const DEFAULT_USER: &str = "postgres";

/// `session_user()`: the [`SessionUser`] of the session running it.
pub fn session_user() -> ScalarUDF {
    ScalarUDF::new_from_impl(SessionUserFn {
        signature: Signature::nullary(Volatility::Stable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionUserFn {
    signature: Signature,
}

impl ScalarUDFImpl for SessionUserFn {
    fn name(&self) -> &str {
        "session_user"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let user = args.config_options.extensions.get::<SessionUser>();
        let user = user.map_or(DEFAULT_USER, |u| u.name.as_str());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            user.to_string(),
        ))))
    }
}
