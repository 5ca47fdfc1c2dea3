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
        // A literal's text, or a bound parameter's.
        let literal = |e: &Expr| match (e, bound(e, params)) {
            (_, Some(ScalarValue::Utf8(s) | ScalarValue::Utf8View(s))) => s,
            (Expr::Value(v), _) => v.value.clone().into_string(),
            _ => None,
        };
        let (name, missing_ok) = match args.as_slice() {
            [name] => (literal(name), false),
            [name, ok] => match (ok, bound(ok, params)) {
                (_, Some(ScalarValue::Boolean(ok))) => (literal(name), ok.unwrap_or(false)),
                (Expr::Value(v), None) if placeholder(ok).is_none() => {
                    (literal(name), v.value == Value::Boolean(true))
                }
                // Described before it is bound (see below).
                (_, None) if params.is_none() => (literal(name), false),
                _ => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        let Some(name) = name else {
            // A parameter's setting, described before it is bound: a text,
            // with the parameter kept so that it is described too.
            if params.is_none() && placeholder(&args[0]).is_some() {
                if let Ok(text) =
                    crate::sql::rewrite::parse_expr(&format!("CAST({} AS TEXT)", args[0]))
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

/// The number of the parameter `expr` is (`$2`), maybe cast.
fn placeholder(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        },
        Expr::Cast { expr, .. } => placeholder(expr),
        _ => None,
    }
}

/// The value bound to the parameter `expr` is.
fn bound(expr: &Expr, params: Option<&ParamValues>) -> Option<ScalarValue> {
    let n = placeholder(expr)?;
    match params? {
        ParamValues::List(values) => Some(values.get(n.checked_sub(1)?)?.value.clone()),
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
