//! How statements reach the JSON functions (see the module above): the
//! statement rewrite before planning ([`rewrite_statement`]), the
//! operators as the SQL planner meets them ([`json_operator`]), and the
//! expression rewrite before type coercion ([`json_semantics`]).

use std::ops::ControlFlow;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::planner::{PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast, lit, BinaryExpr, Cast, Expr, ExprSchemable, Operator, TryCast,
};
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, CastKind, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    ObjectName, Query, SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};

use super::functions::{function, Op};
use super::Flavor;
use crate::catalog::types::sql_type_name;
use crate::error::{Error, InputError};
use crate::sql::analyze::{as_string_type, convert_compared, is_text, plain_text};
use crate::sql::lateral::table_alias;
use crate::sql::rewrite::{parse_expr, parse_query};
use crate::sql::wire_types::pg_type;

/// Rewrites `stmt` before planning: casts to `json` / `jsonb` as calls of
/// their input functions, the JSON aggregates as `array_agg` of each
/// value's JSON finished by a function that writes the array or object,
/// and the set-returning functions in FROM as derived tables that
/// `unnest` their lists.
pub fn rewrite_statement(stmt: &mut Statement) {
    struct Visitor;
    impl VisitorMut for Visitor {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            if let Some(rewritten) = cast_call(expr).or_else(|| aggregate(expr)) {
                *expr = rewritten;
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = table_function(factor) {
                *factor = derived;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Values(values) = query.body.as_mut() {
                same_type_in_columns(&mut values.rows);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Visitor);
}

/// In a VALUES list, a column with a JSON value in one row has JSON
/// values in all (`VALUES ('{}'::jsonb), ('[1]')`): DataFusion refuses
/// rows whose types differ in their marks.
fn same_type_in_columns(rows: &mut [ast::Parens<Vec<ast::Expr>>]) {
    let input = |e: &ast::Expr| match e {
        ast::Expr::Function(call) => {
            let name = call.name.to_string().to_ascii_lowercase();
            matches!(name.as_str(), "json_in" | "jsonb_in").then_some(name)
        }
        _ => None,
    };
    let width = rows.first().map_or(0, |row| row.content.len());
    for column in 0..width {
        let Some(name) = rows
            .iter()
            .find_map(|row| row.content.get(column).and_then(input))
        else {
            continue;
        };
        for row in rows.iter_mut() {
            if let Some(cell) = row.content.get_mut(column) {
                if input(cell).is_none() {
                    if let Ok(typed) = parse_expr(&format!("{name}({cell})")) {
                        *cell = typed;
                    }
                }
            }
        }
    }
}

/// `FROM jsonb_array_elements(x) [WITH ORDINALITY] [AS a]` as `FROM
/// (SELECT unnest(jsonb_array_elements_list(x)) AS value) AS a`, with
/// PostgreSQL's column names (`value`; `key, value` for `jsonb_each`,
/// zipped as several `unnest`s in one select list are; `ordinality`, the
/// unnest of the positions 1 to the list's length beside them). An
/// argument that names a table before it is joined to it by
/// `sql::lateral`.
fn table_function(factor: &TableFactor) -> Option<TableFactor> {
    let (name, args, alias, ordinality) = match factor {
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } => (name, &args.args, alias, *with_ordinality),
        TableFactor::Function {
            name, args, alias, ..
        } => (name, args, alias, false),
        _ => return None,
    };
    let function = name.to_string().to_ascii_lowercase();
    let function = function.strip_prefix("pg_catalog.").unwrap_or(&function);
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    let args = args.join(", ");
    // The list whose elements are the rows.
    let rows = match function {
        "json_each" | "jsonb_each" | "json_each_text" | "jsonb_each_text" => {
            let flavor = function.split('_').next()?;
            format!("{flavor}_each_keys_list({args})")
        }
        other => format!("{}({args})", set_returning_list(other)?),
    };
    let items = match function {
        "json_each" | "jsonb_each" | "json_each_text" | "jsonb_each_text" => {
            let prefix = function.strip_suffix("_text").unwrap_or(function);
            let flavor = prefix.strip_suffix("_each")?;
            let values = match function.ends_with("_text") {
                true => format!("{flavor}_each_text_values_list"),
                false => format!("{flavor}_each_values_list"),
            };
            let value = format!("unnest({values}({args}))");
            let value = match function.ends_with("_text") {
                true => value,
                false => format!("{flavor}_typed({value})"),
            };
            format!("unnest({rows}) AS key, {value} AS value")
        }
        "json_object_keys" | "jsonb_object_keys" => format!("unnest({rows}) AS {function}"),
        other => format!("{} AS value", set_returning_item(other, &args)?),
    };
    let items = match ordinality {
        true => format!("{items}, unnest(generate_series(1, cardinality({rows}))) AS ordinality"),
        false => items,
    };
    let subquery = parse_query(&format!("SELECT {items}")).ok()?;
    let alias = alias.clone().unwrap_or_else(|| table_alias(function));
    // LATERAL, as PostgreSQL reads a function in FROM.
    Some(TableFactor::Derived {
        lateral: true,
        subquery,
        alias: Some(alias),
        sample: None,
    })
}

/// The flavor a SQL type names.
fn sql_flavor(data_type: &ast::DataType) -> Option<Flavor> {
    match data_type {
        ast::DataType::JSON => Some(Flavor::Json),
        ast::DataType::JSONB => Some(Flavor::Jsonb),
        _ => None,
    }
}

/// `x::jsonb` as `jsonb_in(x)`, `jsonb '...'` too. A parameter keeps its
/// cast, which types it: it is described to the client as `jsonb` and
/// read as one when bound (`pg::params`).
fn cast_call(expr: &ast::Expr) -> Option<ast::Expr> {
    let (inner, flavor) = match expr {
        ast::Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
            ..
        } => match expr.as_ref() {
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Placeholder(_)) => return None,
            _ => (expr.to_string(), sql_flavor(data_type)?),
        },
        ast::Expr::TypedString(typed) => (typed.value.to_string(), sql_flavor(&typed.data_type)?),
        _ => return None,
    };
    // Printed by the parser itself, so it parses.
    parse_expr(&format!("{}_in({inner})", flavor.name())).ok()
}

/// `json_agg(x ...)` as `json_array_of(array_agg(json_agg_item(x) ...))`,
/// `json_object_agg(k, v ...)` as `json_object_of(flatten(array_agg(
/// make_array(to_json(k), to_json(v)) ...)))` (a key is named by its
/// JSON, as PostgreSQL names it), and the same for
/// `jsonb`; ORDER BY, FILTER, DISTINCT and OVER stay with `array_agg`.
fn aggregate(expr: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::Function(call) = expr else {
        return None;
    };
    let name = call.name.to_string().to_ascii_lowercase();
    let (flavor, object) = match name.as_str() {
        "json_agg" => (Flavor::Json, false),
        "jsonb_agg" => (Flavor::Jsonb, false),
        "json_object_agg" => (Flavor::Json, true),
        "jsonb_object_agg" => (Flavor::Jsonb, true),
        _ => return None,
    };
    let to_json = match flavor {
        Flavor::Json => "to_json",
        Flavor::Jsonb => "to_jsonb",
    };
    let mut call = call.clone();
    let FunctionArguments::List(list) = &mut call.args else {
        return None;
    };
    let exprs: Vec<String> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let item = match (object, exprs.as_slice()) {
        (false, [value]) => format!("{}_agg_item({value})", flavor.name()),
        (true, [key, value]) => format!("make_array(to_json({key}), {to_json}({value}))"),
        _ => return None,
    };
    list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(
        parse_expr(&item).ok()?,
    ))];
    call.name = ObjectName::from(vec![Ident::new("array_agg")]);
    let aggregated = ast::Expr::Function(call);
    let finished = match object {
        false => format!("{}_array_of({aggregated})", flavor.name()),
        true => format!("{}_object_of(flatten({aggregated}))", flavor.name()),
    };
    parse_expr(&finished).ok()
}

/// The set-returning JSON function `name` called with `args` as an
/// expression of a select list: `unnest` of the function returning its
/// rows as a list, its values typed as JSON (`unnest` drops the list
/// item's type).
pub fn set_returning_item(name: &str, args: &str) -> Option<String> {
    let unnested = format!("unnest({}({args}))", set_returning_list(name)?);
    let flavor = match name {
        "json_array_elements" => "json",
        "jsonb_array_elements" => "jsonb",
        _ => return Some(unnested),
    };
    Some(format!("{flavor}_typed({unnested})"))
}

/// The name of the function returning as a list what the set-returning
/// JSON function `name` returns as rows (`unnest` of it gives the rows).
fn set_returning_list(name: &str) -> Option<&'static str> {
    Some(match name {
        "json_array_elements" => "json_array_elements_list",
        "jsonb_array_elements" => "jsonb_array_elements_list",
        "json_array_elements_text" => "json_array_elements_text_list",
        "jsonb_array_elements_text" => "jsonb_array_elements_text_list",
        "json_object_keys" => "json_object_keys_list",
        "jsonb_object_keys" => "jsonb_object_keys_list",
        _ => return None,
    })
}

/// The JSON flavor of `expr`'s values, if they are JSON: its field's, or
/// that of a JSON value it passes on (COALESCE, NULLIF, GREATEST, LEAST,
/// CASE, whose results DataFusion does not mark).
fn flavor_of(expr: &Expr, schema: &DFSchema) -> Option<Flavor> {
    let (_, field) = expr.to_field(schema).ok()?;
    Flavor::of(&field).or_else(|| passed_on(expr).iter().find_map(|e| flavor_of(e, schema)))
}

/// The operands an expression returns one of.
fn passed_on(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::ScalarFunction(call)
            if matches!(call.name(), "coalesce" | "nullif" | "greatest" | "least") =>
        {
            call.args.iter().collect()
        }
        Expr::Case(case) => case
            .when_then_expr
            .iter()
            .map(|(_, then)| then.as_ref())
            .chain(case.else_expr.as_deref())
            .collect(),
        _ => vec![],
    }
}

/// The JSON operators, as calls of the functions that compute them, when
/// their operand is JSON. `->`, `->>`, `#>`, `#>>`, `?`, `?|`, `?&` and
/// `#-` exist for nothing else: text on their left is read as `jsonb`
/// (PostgreSQL would ask for a cast), other types are 42883. `@>`, `<@`,
/// `||` and `-` are JSON operators only beside a JSON value.
pub fn json_operator(
    expr: RawBinaryExpr,
    schema: &DFSchema,
) -> DFResult<PlannerResult<RawBinaryExpr>> {
    let RawBinaryExpr { op, left, right } = expr;
    let left_flavor = flavor_of(&left, schema);
    let either = left_flavor.or_else(|| flavor_of(&right, schema));
    // A parameter beside a JSON operand of `@>`, `<@` or `||` is typed as
    // that operand, as PostgreSQL types it. (A key's is left to the
    // client: `-> $1` takes text or an integer.)
    let (left, right) = match (&op, either) {
        (
            BinaryOperator::AtArrow | BinaryOperator::ArrowAt | BinaryOperator::StringConcat,
            Some(flavor),
        ) => (
            typed(left, flavor.field("")),
            typed(right, flavor.field("")),
        ),
        _ => (left, right),
    };
    let only_json = matches!(
        op,
        BinaryOperator::Arrow
            | BinaryOperator::LongArrow
            | BinaryOperator::HashArrow
            | BinaryOperator::HashLongArrow
            | BinaryOperator::Question
            | BinaryOperator::QuestionPipe
            | BinaryOperator::QuestionAnd
            | BinaryOperator::HashMinus
    );
    if only_json && left_flavor.is_none() {
        let text_like = left
            .get_type(schema)
            .is_ok_and(|t| is_text(&t) || t == DataType::Null);
        if !text_like {
            let (_, field) = left.to_field(schema)?;
            let left_type = pg_type(&field).map_or_else(
                |_| field.data_type().to_string(),
                |t| sql_type_name(t.name()),
            );
            return Err(Error::input(
                InputError::UndefinedFunction,
                format!("operator does not exist: {left_type} {op} unknown"),
            )
            .into());
        }
    }
    let jsonb_only = |flavor: Option<Flavor>| -> DFResult<()> {
        match flavor {
            Some(Flavor::Json) => Err(Error::input(
                InputError::UndefinedFunction,
                format!("operator does not exist: json {op} unknown"),
            )
            .into()),
            _ => Ok(()),
        }
    };
    let call = |name: &'static str, op: Op, args: Vec<Expr>| {
        Ok(PlannerResult::Planned(function(name, op, None).call(args)))
    };
    match op {
        BinaryOperator::Arrow => call("json_get", Op::Get, vec![left, right]),
        BinaryOperator::LongArrow => call("json_get_text", Op::GetText, vec![left, right]),
        BinaryOperator::HashArrow => call("json_path_op", Op::Path, vec![left, right]),
        BinaryOperator::HashLongArrow => call("json_path_text_op", Op::PathText, vec![left, right]),
        BinaryOperator::Question => {
            jsonb_only(left_flavor)?;
            call("jsonb_exists", Op::Exists, vec![left, right])
        }
        BinaryOperator::QuestionPipe => {
            jsonb_only(left_flavor)?;
            call("jsonb_exists_any", Op::ExistsAny, vec![left, right])
        }
        BinaryOperator::QuestionAnd => {
            jsonb_only(left_flavor)?;
            call("jsonb_exists_all", Op::ExistsAll, vec![left, right])
        }
        BinaryOperator::HashMinus => {
            jsonb_only(left_flavor)?;
            call("jsonb_delete_path", Op::DeletePath, vec![left, right])
        }
        BinaryOperator::AtArrow if either.is_some() => {
            jsonb_only(either)?;
            call("jsonb_contains", Op::Contains, vec![left, right])
        }
        BinaryOperator::ArrowAt if either.is_some() => {
            jsonb_only(either)?;
            call("jsonb_contains", Op::Contains, vec![right, left])
        }
        // `jsonb || text` of a typed text value is text concatenation
        // in PostgreSQL; an untyped literal is read as jsonb.
        BinaryOperator::StringConcat
            if either.is_some() && json_or_untyped(&left, &right, schema) =>
        {
            jsonb_only(either)?;
            call("jsonb_concat", Op::Concat, vec![left, right])
        }
        BinaryOperator::Minus if left_flavor.is_some() => {
            jsonb_only(left_flavor)?;
            call("jsonb_delete", Op::Delete, vec![left, right])
        }
        op => Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
    }
}

/// Whether both operands of `||` are JSON or untyped (a string literal, a
/// parameter, NULL).
fn json_or_untyped(left: &Expr, right: &Expr, schema: &DFSchema) -> bool {
    let ok = |e: &Expr| {
        flavor_of(e, schema).is_some()
            || matches!(
                e,
                Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::Null, _) | Expr::Placeholder(_)
            )
    };
    ok(left) && ok(right)
}

/// `expr` with the type `field` if it is a parameter without one.
fn typed(expr: Expr, field: Field) -> Expr {
    match expr {
        Expr::Placeholder(Placeholder { id, field: None }) => Expr::Placeholder(Placeholder {
            id,
            field: Some(Arc::new(field)),
        }),
        other => other,
    }
}

/// JSON values in expressions as PostgreSQL reads them, before type
/// coercion (`analyze::ExpressionRewrites`):
/// - a cast of one to text is plain text (no longer described as JSON);
/// - a cast of a `jsonb` value to a number or a boolean takes a JSON
///   number or boolean (`(data->'n')::int`; a string is 22023 as in
///   PostgreSQL), and to an integer through `numeric`, so `1.5` rounds;
/// - an untyped literal or parameter compared with a `jsonb` value is
///   read as `jsonb` (`data = '{"b":1, "a":2}'` compares canonical texts),
///   and `=` / `<>` between `jsonb` values compare numbers by value.
pub fn json_semantics(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let is_jsonb = |e: &Expr| is_jsonb(e, schema);
    match expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if Flavor::of(&field).is_none() && flavor_of(&expr, schema).is_some() =>
        {
            let target = field.data_type();
            if is_text(target) {
                return Transformed::yes(as_string_type(plain_text().call(vec![*expr]), field));
            }
            let Some(kind) = scalar_kind(target) else {
                return Transformed::no(Expr::Cast(Cast::new_from_field(expr, field)));
            };
            let text = function("jsonb_scalar", Op::Scalar, Some(Flavor::Jsonb))
                .call(vec![*expr, lit(kind)]);
            let via_numeric = match target.is_integer() {
                true => cast(text, DataType::Decimal128(38, 10)),
                false => text,
            };
            Transformed::yes(Expr::Cast(Cast::new_from_field(
                Box::new(via_numeric),
                field,
            )))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) && (is_jsonb(&left) || is_jsonb(&right)) =>
        {
            let (name, compare) = match op {
                Operator::Eq | Operator::NotEq => ("jsonb_eq", Op::Equal),
                _ => ("jsonb_not_distinct", Op::NotDistinct),
            };
            let equal = function(name, compare, Some(Flavor::Jsonb))
                .call(vec![as_jsonb(*left), as_jsonb(*right)]);
            Transformed::yes(match op {
                Operator::Eq | Operator::IsNotDistinctFrom => equal,
                _ => Expr::Not(Box::new(equal)),
            })
        }
        // `x IN (...)` as `x = a OR x = b ...`, each `=` by value.
        Expr::InList(in_list) if is_jsonb(&in_list.expr) => {
            let equal = |item: Expr| {
                function("jsonb_eq", Op::Equal, Some(Flavor::Jsonb))
                    .call(vec![(*in_list.expr).clone(), as_jsonb(item)])
            };
            let any = in_list
                .list
                .into_iter()
                .map(equal)
                .reduce(Expr::or)
                .unwrap_or_else(|| lit(false));
            Transformed::yes(match in_list.negated {
                true => Expr::Not(Box::new(any)),
                false => any,
            })
        }
        // A JSON value passed on by COALESCE, CASE, ...: described as
        // JSON (DataFusion's field would say text).
        expr @ (Expr::ScalarFunction(_) | Expr::Case(_))
            if !passed_on(&expr).is_empty()
                && flavor_of(&expr, schema).is_some()
                && expr.to_field(schema).is_ok_and(|(_, f)| {
                    Flavor::of(&f).is_none() && *f.data_type() == DataType::Utf8
                }) =>
        {
            let flavor = flavor_of(&expr, schema).unwrap_or(Flavor::Jsonb);
            let name = match flavor {
                Flavor::Json => "json_typed",
                Flavor::Jsonb => "jsonb_typed",
            };
            Transformed::yes(function(name, Op::Typed, Some(flavor)).call(vec![expr]))
        }
        expr @ Expr::BinaryExpr(_) if super::order::ordered_comparison_of(&expr, is_jsonb) => {
            super::order::ordered_comparison(expr, as_jsonb)
        }
        other => convert_compared(other, is_jsonb, as_jsonb),
    }
}

/// Whether `expr` is a `jsonb` value.
pub(super) fn is_jsonb(expr: &Expr, schema: &DFSchema) -> bool {
    flavor_of(expr, schema) == Some(Flavor::Jsonb)
}

/// An untyped literal read as `jsonb`; anything else as it is (a
/// parameter is typed when the statement is planned).
fn as_jsonb(e: Expr) -> Expr {
    match &e {
        Expr::Literal(ScalarValue::Utf8(Some(_)), _) => {
            function("jsonb_in", Op::Input, Some(Flavor::Jsonb)).call(vec![e])
        }
        _ => e,
    }
}

/// The PostgreSQL name of a type `jsonb` casts to from a JSON number
/// (`integer`) or boolean, as its errors name it.
fn scalar_kind(target: &DataType) -> Option<&'static str> {
    Some(match target {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric",
        DataType::Boolean => "boolean",
        _ => return None,
    })
}
