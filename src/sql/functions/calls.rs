//! The calls PostgreSQL spells otherwise than DataFusion, rewritten on a
//! statement once its result columns are named (see the module header of
//! `functions`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement, UnaryOperator, Value, VisitMut, VisitorMut,
};

use super::TO_TIMESTAMP_TEMPLATE;
use crate::sql::rewrite::{is_string, parse_expr};

/// The calls of `statement` PostgreSQL spells otherwise, as DataFusion
/// spells them (see the module header).
pub fn rename_calls(statement: &mut Statement) {
    let _ = statement.visit(&mut FunctionNamesVisitor);
}

/// The calls of `expr` (a column's DEFAULT) PostgreSQL spells otherwise.
pub fn rename_calls_in(expr: &mut Expr) {
    let _ = expr.visit(&mut FunctionNamesVisitor);
}

struct FunctionNamesVisitor;

impl VisitorMut for FunctionNamesVisitor {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            // DataFusion refuses a negation of a type it does not know as
            // it plans it (a `numeric` of its own scale): `pg_negative`
            // negates any number (`sql::numeric::overloads`). A negative
            // number is a constant, planned as one.
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: operand,
            } if !matches!(operand.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..))) =>
            {
                *expr = parsed(&format!("pg_negative({operand})"));
            }
            // `ceil('1.2')` and `floor('1.2')` (parsed apart from calls).
            Expr::Ceil { expr: operand, .. } | Expr::Floor { expr: operand, .. }
                if is_string(operand) =>
            {
                **operand = parsed(&format!("CAST({operand} AS DOUBLE PRECISION)"));
            }
            Expr::Function(function) => {
                let [name] = function.name.0.as_slice() else {
                    return ControlFlow::Continue(());
                };
                let Some(name) = name.as_ident().map(|i| i.value.to_lowercase()) else {
                    return ControlFlow::Continue(());
                };
                typed_number_strings(&name, &mut function.args);
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
                    // PostgreSQL's is NULL for an empty array (and a
                    // dimension it does not have); DataFusion's 0.
                    ("array_length", Some([_, _])) => {
                        let length = expr.clone();
                        if let Ok(rewritten) = parse_expr(&format!("nullif({length}, 0)")) {
                            *expr = rewritten;
                        }
                        return ControlFlow::Continue(());
                    }
                    // In a statement they were replaced by the user's
                    // name already (`inline_settings`); this is for a
                    // DEFAULT, where a call with parentheses reads back.
                    ("current_user" | "user" | "session_user", None) => {
                        *expr = call("session_user");
                        return ControlFlow::Continue(());
                    }
                    ("current_catalog", _) => {
                        *expr = call("current_database");
                        return ControlFlow::Continue(());
                    }
                    ("ceiling", _) => "ceil",
                    ("sign", _) => "signum",
                    ("every", _) => "bool_and",
                    // A record's JSON (`sql::records`); pretty printing
                    // is not.
                    ("row_to_json", Some([_])) => "to_json",
                    // The session's wall-clock time (`datetime::SessionZone`).
                    ("localtimestamp", None) => {
                        *expr = parsed("CAST(now() AS TIMESTAMP)");
                        return ControlFlow::Continue(());
                    }
                    ("localtime", None) => {
                        *expr = parsed("CAST(now() AS TIME)");
                        return ControlFlow::Continue(());
                    }
                    ("variance", _) => "var_samp",
                    // PostgreSQL's is of `double precision` values (and
                    // intervals, which DataFusion's refuses either way):
                    // integers and numerics are cast to it, as PostgreSQL
                    // casts them implicitly.
                    ("percentile_cont", Some([_])) => {
                        if let [order] = function.within_group.as_mut_slice() {
                            if let Ok(double) =
                                parse_expr(&format!("CAST({} AS DOUBLE PRECISION)", order.expr))
                            {
                                order.expr = double;
                            }
                        }
                        return ControlFlow::Continue(());
                    }
                    ("percentile_disc", Some([fraction])) => {
                        if let Some(rewritten) = percentile_disc(fraction, function) {
                            *expr = rewritten;
                        }
                        return ControlFlow::Continue(());
                    }
                    ("num_nulls" | "num_nonnulls", Some(values)) if !values.is_empty() => {
                        let test = if name == "num_nulls" {
                            "IS NULL"
                        } else {
                            "IS NOT NULL"
                        };
                        let counts: Vec<String> = values
                            .iter()
                            .map(|v| format!("CASE WHEN ({v}) {test} THEN 1 ELSE 0 END"))
                            .collect();
                        if let Ok(count) =
                            parse_expr(&format!("CAST({} AS INTEGER)", counts.join(" + ")))
                        {
                            *expr = count;
                        }
                        return ControlFlow::Continue(());
                    }
                    ("make_interval", _) => {
                        if let Some(positional) = interval_fields(&function.args) {
                            function.args = positional;
                        }
                        return ControlFlow::Continue(());
                    }
                    ("generate_series", Some([start, stop, step])) => {
                        if let Some(typed) = series_of_times([start, stop, step]) {
                            function.args = FunctionArguments::List(FunctionArgumentList {
                                duplicate_treatment: None,
                                args: typed
                                    .into_iter()
                                    .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                                    .collect(),
                                clauses: Vec::new(),
                            });
                        }
                        return ControlFlow::Continue(());
                    }
                    ("quote_nullable", Some([value])) => {
                        *expr = parsed(&format!(
                            "CASE WHEN ({value}) IS NULL THEN 'NULL' \
                             ELSE quote_literal(CAST(({value}) AS TEXT)) END"
                        ));
                        return ControlFlow::Continue(());
                    }
                    // PostgreSQL's remove and replace every equal element;
                    // DataFusion's the first only.
                    ("array_remove", _) => "array_remove_all",
                    ("array_replace", _) => "array_replace_all",
                    ("to_timestamp", Some([_, _])) => TO_TIMESTAMP_TEMPLATE,
                    _ => return ControlFlow::Continue(()),
                };
                function.name = ObjectName::from(vec![Ident::new(renamed)]);
            }
            // A bare `current_schema` is a call.
            Expr::Identifier(ident)
                if ident.quote_style.is_none()
                    && ident.value.eq_ignore_ascii_case("current_schema") =>
            {
                *expr = call("current_schema");
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
                // DataFusion's LIKE escapes with the backslash only (see
                // `like`).
                let escape = escape_char
                    .as_ref()
                    .and_then(|c| c.value.clone().into_string());
                if let Some(escape) = escape.filter(|e| e != "\\") {
                    let escape = Value::SingleQuotedString(escape);
                    // (As text, so that a parameter is typed.)
                    let sql = format!(
                        "{}(CAST({pattern} AS TEXT), {escape})",
                        super::like::LIKE_ESCAPE
                    );
                    // (A pattern that does not read back stays, and
                    // DataFusion refuses its escape.)
                    if let Ok(rewritten) = parse_expr(&sql) {
                        **pattern = rewritten;
                        *escape_char = None;
                    }
                }
            }
            // As PostgreSQL runs it (see `like`).
            Expr::SimilarTo {
                negated,
                expr: text,
                pattern,
                escape_char,
            } => {
                let escape = match escape_char {
                    Some(escape) => format!(", {escape}"),
                    None => String::new(),
                };
                let operator = if *negated { "!~" } else { "~" };
                let sql = format!(
                    "({text}) {operator} {}(CAST({pattern} AS TEXT){escape})",
                    super::like::SIMILAR_TO_ESCAPE
                );
                if let Ok(rewritten) = parse_expr(&sql) {
                    *expr = Expr::Nested(Box::new(rewritten));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `percentile_disc(f) WITHIN GROUP (ORDER BY x)` as PostgreSQL computes
/// it, the first value (NULLs aside) at or past fraction `f` of the
/// ordered values: element `ceil(f * count(x))` (at least the first) of
/// `array_agg(x ORDER BY x NULLS LAST)` (its memory, as PostgreSQL's sort,
/// grows with the group). `None` for another form (a
/// window, an array of fractions: DataFusion reports them).
fn percentile_disc(
    fraction: &Expr,
    function: &datafusion::sql::sqlparser::ast::Function,
) -> Option<Expr> {
    let [order] = function.within_group.as_slice() else {
        return None;
    };
    if function.over.is_some() || matches!(fraction, Expr::Array(_)) {
        return None;
    }
    let x = &order.expr;
    let direction = match order.options.asc {
        Some(false) => "DESC",
        _ => "ASC",
    };
    let filter = match &function.filter {
        Some(filter) => format!(" FILTER (WHERE {filter})"),
        None => String::new(),
    };
    // `array_element`, not a subscript: DataFusion reads `array_agg(...)[i]`
    // as `nth_value(x, i)`, which takes a constant `i`.
    parse_expr(&format!(
        "array_element(array_agg({x} ORDER BY {x} {direction} NULLS LAST){filter}, \
         greatest(CAST(ceil(({fraction}) * count({x}){filter}) AS BIGINT), 1))"
    ))
    .ok()
}

/// The arguments of a series of times with those written as strings
/// typed as PostgreSQL resolves them (`None` if none is): a step is an
/// interval (a series of integers has an integer step); a bound has the
/// type the other is cast to, or is a `timestamptz` beside another string
/// (`generate_series('2024-01-01', '2024-01-02', '1 hour')`). A string
/// beside a date is left to the analyzer (`datetime::SessionZone`), which
/// makes both `timestamptz`, as the planner would refuse it here.
fn series_of_times(args: [&Expr; 3]) -> Option<[Expr; 3]> {
    let written_type = |e: &Expr| match e {
        Expr::Cast { data_type, .. } => Some(data_type.clone()),
        Expr::TypedString(typed) => Some(typed.data_type.clone()),
        _ => None,
    };
    let [start, stop, step] = args;
    let interval = is_string(step) || matches!(written_type(step), Some(DataType::Interval { .. }));
    if !interval || !args.into_iter().any(is_string) {
        return None;
    }
    let bound = |this: &Expr, other: &Expr| match (is_string(this), written_type(other)) {
        (true, Some(timestamp @ DataType::Timestamp(..))) => {
            parsed(&format!("CAST({this} AS {timestamp})"))
        }
        (true, None) if is_string(other) => parsed(&format!("CAST({this} AS TIMESTAMPTZ)")),
        _ => this.clone(),
    };
    let step = match is_string(step) {
        true => parsed(&format!("CAST({step} AS INTERVAL)")),
        false => step.clone(),
    };
    Some([bound(start, stop), bound(stop, start), step])
}

/// Math functions whose every form takes `double precision` (or, where
/// PostgreSQL also has one for `numeric`, prefers it for an argument of
/// unknown type).
const FLOAT_FUNCTIONS: &[&str] = &[
    "abs", "acos", "acosd", "asin", "asind", "atan", "atan2", "atan2d", "atand", "cbrt", "ceiling",
    "cos", "cosd", "cot", "cotd", "degrees", "exp", "ln", "power", "pow", "radians", "sign", "sin",
    "sind", "sqrt", "tan", "tand",
];

/// A string written as an argument of a math function, typed as
/// PostgreSQL types an argument of unknown type there: `sqrt('4')` and
/// `sind('infinity')` read `double precision`, `round('2.567', 1)`,
/// `trunc('2.5', 0)` and `log('2', '8')`, which only `numeric` has,
/// `numeric`. (DataFusion refused a string.) `trunc('2.5')` stays
/// refused, as in PostgreSQL (`trunc(macaddr)` makes it ambiguous).
fn typed_number_strings(name: &str, args: &mut FunctionArguments) {
    let FunctionArguments::List(list) = args else {
        return;
    };
    let numeric_only = matches!((name, list.args.len()), ("round" | "trunc" | "log", 2));
    let float = FLOAT_FUNCTIONS.contains(&name)
        || matches!(
            (name, list.args.len()),
            ("round" | "trunc" | "log" | "log10", 1)
        );
    let target = match (numeric_only, float) {
        (true, _) => "NUMERIC",
        (false, true) => "DOUBLE PRECISION",
        (false, false) => return,
    };
    for arg in &mut list.args {
        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
            if is_string(e) {
                *e = parsed(&format!("CAST({e} AS {target})"));
            }
        }
    }
}

/// `make_interval`'s arguments, named (`days => 3`) or not, as all seven
/// in order, 0 for those not given; `None` if one is neither a field nor
/// an expression.
fn interval_fields(args: &FunctionArguments) -> Option<FunctionArguments> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    let mut fields: Vec<Expr> = vec![Expr::value(Value::Number("0".into(), false)); 7];
    for (at, arg) in list.args.iter().enumerate() {
        let (at, value) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => (at, e),
            // (PostgreSQL's dialect names an argument by an expression.)
            FunctionArg::ExprNamed {
                name: Expr::Identifier(name),
                arg: FunctionArgExpr::Expr(e),
                ..
            }
            | FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } => {
                let name = name.value.to_ascii_lowercase();
                (
                    super::make::INTERVAL_FIELDS
                        .iter()
                        .position(|f| *f == name)?,
                    e,
                )
            }
            _ => return None,
        };
        *fields.get_mut(at)? = value.clone();
    }
    let mut list = list.clone();
    list.args = fields
        .into_iter()
        .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
        .collect();
    Some(FunctionArguments::List(list))
}

/// `name()`.
fn call(name: &str) -> Expr {
    parsed(&format!("{name}()"))
}

/// The expression `sql` (written here, so it parses; NULL if not).
fn parsed(sql: &str) -> Expr {
    parse_expr(sql).unwrap_or_else(|_| Expr::Nested(Box::new(Expr::Value(Value::Null.into()))))
}

/// A call's arguments when they are plain positional expressions.
pub(super) fn plain_args(args: &FunctionArguments) -> Option<Vec<Expr>> {
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

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn make_interval_arguments_are_positional() {
        let mut statement = Parser::new(&PostgreSqlDialect {})
            .try_with_sql("SELECT make_interval(days => 3, hours => 2), make_interval(1, 2)")
            .and_then(|mut p| p.parse_statement())
            .unwrap();
        rename_calls(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT make_interval(0, 0, 0, 3, 2, 0, 0), make_interval(1, 2, 0, 0, 0, 0, 0)"
        );
    }

    #[test]
    fn renamed_calls() {
        let mut statement = Parser::new(&PostgreSqlDialect {})
            .try_with_sql("SELECT mod(7, 3), ceiling(x), sign(x), to_timestamp('1', 'J')")
            .and_then(|mut p| p.parse_statement())
            .unwrap();
        rename_calls(&mut statement);
        let sql = statement.to_string();
        assert_eq!(
            sql,
            "SELECT (7 % 3), ceil(x), signum(x), to_timestamp_template('1', 'J')"
        );
    }
}
