//! Rewrites of INSERT ... VALUES where DataFusion reads a PostgreSQL
//! statement differently:
//!
//! - `DEFAULT` as a value becomes the column's DEFAULT expression, or NULL;
//!   `DEFAULT VALUES` is a row of them.
//! - A string literal for a `bytea` column is PostgreSQL bytea input: hex
//!   (`'\x0001ff'`) or escape format (`'a\\000b'`), not the string's own
//!   bytes. It becomes `decode('<hex>', 'hex')`; bad hex is 22023, a bad
//!   escape 22P02, as in PostgreSQL. [`bytea_casts`] reads `'...'::bytea`
//!   the same way in any statement.
//! - A string literal for a `uuid` column is cast to uuid (see
//!   `sql::uuid`).
//!
//! In INSERT ... SELECT, an item that repeats an earlier one (`SELECT g,
//! g`) gets a name of its own ([`name_repeated_items`]).
//!
//! UPDATE uses [`is_default`], [`default_value`] and [`bytea_literal`] for
//! its assignments the same way.
//!
//! And in any statement, [`name_function_columns`]: a function in FROM with
//! a bare alias (`generate_series(1, 3) AS n`) names its column `n`, as in
//! PostgreSQL (DataFusion would call it `value`), and a series of
//! timestamps in FROM is planned as in a select list; and
//! [`expand_set_returning_items`]: `SELECT generate_series(1, 3)` gives
//! three rows, not one list.
//!
//! The rules that run with datafusion-pg-catalog's at parse time are in
//! `sql::parse_rules`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, CastKind, DataType, ExactNumberInfo, Expr, FunctionArg,
    FunctionArgExpr, FunctionArguments, Ident, Insert, ObjectName, Query, Select, SelectItem,
    SetExpr, Statement, Subscript, TableAliasColumnDef, TableFactor, TableObject, UnaryOperator,
    Value, Values, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::ddl::{ident_name, table_name};
use super::lateral::table_alias;
use crate::catalog::{SqlType, TableDef, Tables};
use crate::error::{Error, InputError, Result};

pub fn rewrite_insert(insert: &mut Insert, catalog: &dyn Tables) -> Result<()> {
    let TableObject::TableName(name) = &insert.table else {
        return Ok(());
    };
    let Some(def) = catalog.table(&table_name(name)?) else {
        return Ok(()); // DataFusion reports the missing table.
    };
    if insert.source.is_none() && insert.columns.is_empty() && insert.assignments.is_empty() {
        // INSERT ... DEFAULT VALUES: one row of defaults.
        let row = vec!["DEFAULT"; def.visible_columns()].join(", ");
        let query =
            parse_query(&format!("VALUES ({row})")).map_err(|e| Error::Internal(e.to_string()))?;
        insert.source = Some(query);
    }
    let Some(source) = insert.source.as_mut() else {
        return Ok(());
    };
    if insert.columns.is_empty() {
        // Without a column list, PostgreSQL fills the first columns and
        // gives the rest their defaults; DataFusion wants every column.
        if let Some(width) = select_width(&source.body).filter(|&w| w < def.visible_columns()) {
            insert.columns = def.columns[..width]
                .iter()
                .map(|c| ObjectName::from(vec![Ident::with_quote('"', &c.name)]))
                .collect();
        }
    }
    if !matches!(source.body.as_ref(), SetExpr::Values(_)) {
        values_as_selects(source);
    }
    let targets: Vec<Option<usize>> = if insert.columns.is_empty() {
        (0..def.visible_columns()).map(Some).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .and_then(|i| def.column_index(&ident_name(i)))
            })
            .collect()
    };
    let values = match source.body.as_mut() {
        SetExpr::Values(values) => values,
        SetExpr::Select(select) => {
            name_repeated_items(select);
            // DataFusion casts a SELECT's items to the columns' types as
            // it plans them, and knows no cast between a `numeric` of
            // its own scale and the other number types.
            for (item, target) in select.projection.iter_mut().zip(&targets) {
                let (SelectItem::UnnamedExpr(value)
                | SelectItem::ExprWithAlias { expr: value, .. }) = item
                else {
                    continue;
                };
                if let Some(index) = *target {
                    assigned_number(value, &def.columns[index].sql_type);
                }
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    // The type a string literal is cast to for its column, where the
    // planner would not assign text (PostgreSQL reads the untyped literal
    // as the column's type): a uuid, and an array (whose input function
    // the cast reaches; the planner refuses text for `uuid[]` as it stands).
    let literal_types = targets
        .iter()
        .map(|target| match target.map(|i| &def.columns[i].sql_type) {
            Some(SqlType::Uuid) => Ok(Some(DataType::Uuid)),
            Some(array @ SqlType::Array(_)) => {
                match parse_expr(&format!("CAST(NULL AS {})", array.cast_sql()))? {
                    Expr::Cast { data_type, .. } => Ok(Some(data_type)),
                    _ => Ok(None),
                }
            }
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    for row in &mut values.rows {
        for (at, (value, target)) in row.content.iter_mut().zip(&targets).enumerate() {
            let Some(index) = *target else { continue };
            if is_default(value) {
                *value = default_value(&def, index)?;
            } else if def.columns[index].sql_type == SqlType::Bytea {
                if let Some(decoded) = bytea_literal(value)? {
                    *value = decoded;
                }
            } else if matches!(def.columns[index].sql_type, SqlType::Real | SqlType::Double) {
                float_literal(value);
            } else if let Some(data_type) = &literal_types[at] {
                typed_literal(value, data_type.clone());
            }
            let column = &def.columns[index];
            assigned_number(value, &column.sql_type);
            // DataFusion types a VALUES list by its target columns, and
            // fails on a NULL under a NOT NULL one naming the list's
            // column (`column2`): PostgreSQL's error names the table's.
            if !column.nullable && matches!(value, Expr::Value(v) if v.value == Value::Null) {
                return Err(super::write::not_null_violation(&def.name, &column.name));
            }
        }
    }
    Ok(())
}

/// A value for a column of a number type, cast to it where DataFusion
/// would not (it checks the values against the columns' types before any
/// cast, and knows no cast between a `numeric` of its own scale and the
/// other number types): a number for an unconstrained `numeric` column,
/// and a computed value for one of another number type (`-1.0 / 3` for a
/// float column, `$1::numeric` for a `numeric(8,2)`), cast as PostgreSQL
/// assigns it.
fn assigned_number(value: &mut Expr, sql_type: &SqlType) {
    if set_returning(value) {
        return; // (its rows are cast where it is expanded)
    }
    match sql_type {
        SqlType::UnconstrainedNumeric if !is_untyped(value) => {
            *value = numeric_cast(value.clone());
        }
        t if number_column(t) && computed(value) => {
            if let Ok(Expr::Cast { data_type, .. }) =
                parse_expr(&format!("CAST(NULL AS {})", t.cast_sql()))
            {
                *value = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(value.clone()),
                    data_type,
                    array: false,
                    format: None,
                };
            }
        }
        _ => {}
    }
}

/// A call of a function that returns rows (`generate_series(1, 3)` in a
/// select list), which a cast around it would break.
fn set_returning(value: &Expr) -> bool {
    let Expr::Function(function) = value else {
        return false;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    let name = name
        .strip_prefix("pg_catalog.")
        .unwrap_or(&name)
        .to_string();
    matches!(
        name.as_str(),
        "generate_series"
            | "generate_subscripts"
            | "unnest"
            | "regexp_matches"
            | "regexp_split_to_table"
            | "string_to_table"
            | "json_array_elements"
            | "json_array_elements_text"
            | "jsonb_array_elements"
            | "jsonb_array_elements_text"
            | "json_each"
            | "json_each_text"
            | "jsonb_each"
            | "jsonb_each_text"
            | "json_object_keys"
            | "jsonb_object_keys"
    )
}

/// The number types other than an unconstrained `numeric`.
fn number_column(sql_type: &SqlType) -> bool {
    matches!(
        sql_type,
        SqlType::SmallInt
            | SqlType::Integer
            | SqlType::BigInt
            | SqlType::Real
            | SqlType::Double
            | SqlType::Numeric { .. }
    )
}

/// A value computed by an operator, a function or a cast (not a literal,
/// a parameter, NULL or DEFAULT).
fn computed(value: &Expr) -> bool {
    match value {
        Expr::UnaryOp { expr, .. } => !matches!(expr.as_ref(), Expr::Value(_)),
        Expr::BinaryOp { .. } | Expr::Nested(_) | Expr::Function(_) | Expr::Cast { .. } => true,
        _ => false,
    }
}

/// `CAST(value AS numeric)`.
fn numeric_cast(value: Expr) -> Expr {
    cast_to(value, DataType::Numeric(ExactNumberInfo::None))
}

/// A NULL or a parameter, which take their column's type.
fn is_untyped(value: &Expr) -> bool {
    matches!(value, Expr::Value(v) if matches!(v.value, Value::Null | Value::Placeholder(_)))
}

/// The VALUES lists inside an INSERT's query (`INSERT INTO t SELECT x
/// FROM (VALUES (1), (2)) v(x)`, or in its WITH) as `SELECT ... UNION ALL
/// SELECT ...`: DataFusion types every VALUES list it plans for an INSERT
/// by the target table's columns, position by position, which is right
/// only for the INSERT's own list (a nested one of another width failed,
/// one of the same width was typed by the wrong columns).
fn values_as_selects(source: &mut Query) {
    struct Nested;
    impl VisitorMut for Nested {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let SetExpr::Values(values) = query.body.as_ref() else {
                return ControlFlow::Continue(());
            };
            // PostgreSQL names a VALUES list's columns column1, column2, ...
            let rows: Vec<String> = values
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let items: Vec<String> = row
                        .content
                        .iter()
                        .enumerate()
                        .map(|(j, e)| match i {
                            0 => format!("{e} AS column{}", j + 1),
                            _ => e.to_string(),
                        })
                        .collect();
                    format!("SELECT {}", items.join(", "))
                })
                .collect();
            if let Ok(union) = parse_query(&rows.join(" UNION ALL ")) {
                query.body = union.body;
            }
            ControlFlow::Continue(())
        }
    }
    // The INSERT's own query is not a VALUES list (the caller checks); its
    // subqueries are visited with it.
    let _ = source.visit(&mut Nested);
}

/// Names each item of an INSERT's SELECT that repeats an earlier one
/// (`SELECT g, g`): PostgreSQL matches the items to the columns by
/// position, so their names do not matter, but DataFusion refuses a
/// projection whose names repeat. (The first keeps its name, which an
/// ORDER BY may use.)
fn name_repeated_items(select: &mut Select) {
    let mut seen = std::collections::HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if !seen.insert(expr.to_string()) {
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::with_quote('"', format!("?column{}?", i + 1)),
            };
        }
    }
}

/// How many columns a query body yields, where the text says (no `*`).
fn select_width(body: &SetExpr) -> Option<usize> {
    match body {
        SetExpr::Values(values) => {
            let width = values.rows.first()?.content.len();
            values
                .rows
                .iter()
                .all(|r| r.content.len() == width)
                .then_some(width)
        }
        SetExpr::Select(select) => select
            .projection
            .iter()
            .all(|item| {
                matches!(
                    item,
                    SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
                )
            })
            .then_some(select.projection.len()),
        SetExpr::Query(query) => select_width(&query.body),
        SetExpr::SetOperation { left, .. } => select_width(left),
        _ => None,
    }
}

/// Gives table functions aliased without a column list their alias as
/// column name (`FROM generate_series(1, 3) AS n` reads column `n`), and
/// an unaliased `generate_series` its own name (PostgreSQL's column
/// `generate_series`, DataFusion's `value`). A series of timestamps or
/// dates becomes a derived table ([`time_series`]).
pub fn name_function_columns(stmt: &mut Statement) {
    struct Namer;
    impl VisitorMut for Namer {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = time_series(factor) {
                *factor = derived;
                return ControlFlow::Continue(());
            }
            if let TableFactor::Table {
                name,
                args: Some(_),
                alias,
                ..
            } = factor
            {
                if alias.is_none() && is_series(name) {
                    *alias = Some(table_alias(SERIES));
                }
                if let Some(alias) = alias.as_mut().filter(|a| a.columns.is_empty()) {
                    let name = alias.name.clone();
                    alias.columns.push(TableAliasColumnDef {
                        name,
                        data_type: None,
                    });
                }
            }
            ControlFlow::Continue(())
        }
        // After the walk has been inside it: the derived table made of it
        // holds the same series, which must not be rewritten again.
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = integer_series(factor) {
                *factor = derived;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Namer);
}

const SERIES: &str = "generate_series";

fn is_series(name: &ObjectName) -> bool {
    let name = name.to_string().to_ascii_lowercase();
    name.strip_prefix("pg_catalog.").unwrap_or(&name) == SERIES
}

/// `FROM generate_series(start, stop, step) [AS a[(c)]]` whose step is
/// not an integer constant (a series of timestamps or dates) as `FROM
/// LATERAL (SELECT unnest(generate_series(start, stop, step)) AS c) AS
/// a`: planned as in a select list, where the session's zone reads the
/// bounds and a date is its midnight there (a `timestamptz`, as in
/// PostgreSQL); DataFusion's table function read them as Arrow does, and
/// refused most. A series of integers keeps the table function, which
/// streams its rows.
fn time_series(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        with_ordinality: false,
        ..
    } = factor
    else {
        return None;
    };
    let [_, _, FunctionArg::Unnamed(FunctionArgExpr::Expr(step))] = args.args.as_slice() else {
        return None;
    };
    if !is_series(name) || is_integer_constant(step) {
        return None;
    }
    let alias = alias.clone().unwrap_or_else(|| table_alias(SERIES));
    let column = alias
        .columns
        .first()
        .map_or_else(|| alias.name.clone(), |c| c.name.clone());
    let args: Vec<String> = args.args.iter().map(ToString::to_string).collect();
    let subquery = parse_query(&format!(
        "SELECT unnest({SERIES}({})) AS {column}",
        args.join(", ")
    ))
    .ok()?;
    Some(TableFactor::Derived {
        lateral: true,
        subquery,
        alias: Some(alias),
        sample: None,
    })
}

/// `FROM generate_series(a, b[, c]) AS s(x)` whose bounds and step are all
/// `integer` literals as `FROM (SELECT CAST(x AS integer) AS x FROM
/// generate_series(a, b[, c]) AS s(x)) AS s(x)`: PostgreSQL's series of
/// integers is `integer` (node-pg reads a number, pgjdbc an `Integer`),
/// DataFusion's `bigint`. (Run once the factor's alias names its column.)
fn integer_series(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias: Some(alias),
        with_ordinality: false,
        ..
    } = factor
    else {
        return None;
    };
    if !is_series(name) || !args.args.iter().all(is_int4_argument) || alias.columns.len() != 1 {
        return None;
    }
    let column = &alias.columns[0].name;
    let subquery = parse_query(&format!(
        "SELECT CAST({column} AS integer) AS {column} FROM {factor}"
    ))
    .ok()?;
    Some(TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias.clone()),
        sample: None,
    })
}

/// An argument that is an `integer` literal ([`is_int4_literal`]).
fn is_int4_argument(arg: &FunctionArg) -> bool {
    matches!(arg, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if is_int4_literal(e))
}

/// An integer literal, signed or not, that fits in 32 bits: PostgreSQL's
/// `integer` constant.
fn is_int4_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n.parse::<i32>().is_ok()),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_int4_literal(expr),
        _ => false,
    }
}

/// An integer literal, signed or not, or a parameter (bound to one).
fn is_integer_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.bytes().all(|b| b.is_ascii_digit()),
            Value::Placeholder(_) => true,
            _ => false,
        },
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_integer_constant(expr),
        _ => false,
    }
}

/// PostgreSQL's access to a field of a composite value, `(expr).name`, as
/// DataFusion's `get_field(expr, 'name')` (DataFusion reads the dot as
/// a map lookup and refuses it); and `information_schema._pg_expandarray(a)`,
/// the set of `(x, n)` records pgjdbc's `getPrimaryKeys` and `getIndexInfo`
/// read `pg_index.indkey` with (`(_pg_expandarray(i.indkey)).n`), as
/// `unnest(pg_expandarray_list(a))`, wherever it is in a select list; and
/// a slice's omitted bounds.
pub fn composite_fields(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |expr| {
        match expr {
            Expr::Function(function) if is_expandarray(function) => {
                let FunctionArguments::List(args) = &function.args else {
                    return ControlFlow::<()>::Continue(());
                };
                let args: Vec<String> = args.args.iter().map(ToString::to_string).collect();
                let list = super::functions::PG_EXPANDARRAY_LIST;
                if let Ok(unnested) = parse_expr(&format!("unnest({list}({}))", args.join(", "))) {
                    *expr = unnested;
                }
            }
            // An omitted bound of a slice is the array's end (`a[2:]`), which
            // DataFusion's planner refuses: the widest subscript, cut to the
            // array's own bounds as any other (`functions::pg_subscripts`).
            Expr::CompoundFieldAccess { access_chain, .. }
                if access_chain.iter().any(omits_a_bound) =>
            {
                let widest = |n: i64| Expr::value(Value::Number(n.to_string(), false));
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Subscript(Subscript::Slice {
                        lower_bound,
                        upper_bound,
                        ..
                    }) = access
                    {
                        lower_bound.get_or_insert_with(|| widest(i64::from(i32::MIN)));
                        upper_bound.get_or_insert_with(|| widest(i64::from(i32::MAX)));
                    }
                }
            }
            Expr::CompoundFieldAccess { root, access_chain }
                if matches!(root.as_ref(), Expr::Nested(_))
                    && access_chain
                        .iter()
                        .all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_)))) =>
            {
                let mut sql = root.to_string();
                for access in access_chain.iter() {
                    if let AccessExpr::Dot(Expr::Identifier(name)) = access {
                        let name = ident_name(name).replace('\'', "''");
                        sql = format!("get_field({sql}, '{name}')");
                    }
                }
                if let Ok(fields) = parse_expr(&sql) {
                    *expr = fields;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
}

/// Whether `access` is a slice without one of its bounds.
fn omits_a_bound(access: &AccessExpr) -> bool {
    matches!(
        access,
        AccessExpr::Subscript(Subscript::Slice { lower_bound, upper_bound, .. })
            if lower_bound.is_none() || upper_bound.is_none()
    )
}

fn is_expandarray(function: &datafusion::sql::sqlparser::ast::Function) -> bool {
    function
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"))
}

/// `generate_series(...)` as an item of a select list is a set-returning
/// function in PostgreSQL: one row per value. DataFusion's scalar
/// `generate_series` returns one list instead, so it becomes
/// `unnest(generate_series(...))`, which yields the rows (the JSON
/// set-returning functions likewise, `sql::json::set_returning_list`, and
/// `generate_subscripts`, `regexp_matches`, `regexp_split_to_table`) (several such
/// items are zipped, the shorter padded with NULLs, as in PostgreSQL 10+).
/// The item keeps the function's name as its column name.
pub fn expand_set_returning_items(stmt: &mut Statement) {
    struct Expander;
    impl VisitorMut for Expander {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            expand_in(&mut query.body);
            ControlFlow::Continue(())
        }
    }
    fn expand_in(body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for item in &mut select.projection {
                    let (expr, alias) = match item {
                        SelectItem::UnnamedExpr(expr) => (expr, None),
                        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
                        _ => continue,
                    };
                    let Expr::Function(function) = &*expr else {
                        continue;
                    };
                    let name = function.name.to_string().to_ascii_lowercase();
                    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                    let FunctionArguments::List(args) = &function.args else {
                        continue;
                    };
                    let integers = args.args.iter().all(is_int4_argument);
                    let args: Vec<String> = args.args.iter().map(ToString::to_string).collect();
                    let args = args.join(", ");
                    let unnested = match name {
                        // A series of `integer` literals is `integer`
                        // (see `integer_series`).
                        "generate_series" if integers => {
                            format!("CAST(unnest({expr}) AS integer)")
                        }
                        "generate_series" => format!("unnest({expr})"),
                        "generate_subscripts" => format!(
                            "unnest({}({args}))",
                            super::functions::GENERATE_SUBSCRIPTS_LIST
                        ),
                        "regexp_matches" => {
                            format!("unnest({}({args}))", super::functions::REGEXP_MATCHES_LIST)
                        }
                        "regexp_split_to_table" => {
                            format!("unnest(regexp_split_to_array({args}))")
                        }
                        _ => match super::json::set_returning_item(name, &args) {
                            Some(item) => item,
                            None => continue,
                        },
                    };
                    let Ok(unnested) = parse_expr(&unnested) else {
                        continue;
                    };
                    *item = SelectItem::ExprWithAlias {
                        expr: unnested,
                        alias: alias.unwrap_or_else(|| Ident::new(name)),
                    };
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                expand_in(left);
                expand_in(right);
            }
            _ => {}
        }
    }
    let _ = stmt.visit(&mut Expander);
}

/// Each explicit cast `CAST(inner AS data_type)` or `inner::data_type` in
/// `stmt` for which `rewrite` gives SQL text, replaced by that text.
pub(super) fn rewrite_casts(
    stmt: &mut Statement,
    rewrite: impl Fn(&Expr, &DataType) -> Option<String>,
) {
    let _ = visit_expressions_mut(stmt, |expr| {
        if let Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr: inner,
            data_type,
            format: None,
            ..
        } = expr
        {
            // Printed by the parser itself, so it parses.
            if let Some(Ok(rewritten)) = rewrite(inner, data_type).map(|sql| parse_expr(&sql)) {
                *expr = rewritten;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `'\x0102'::bytea`: a string literal cast to bytea is bytea input, as
/// in a bytea column (see [`bytea_literal`]); DataFusion would take the
/// string's own bytes. Bad input fails as it does for a column.
pub fn bytea_casts(stmt: &mut Statement) -> Result<()> {
    struct Visitor;
    impl VisitorMut for Visitor {
        type Break = Error;
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Error> {
            let Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr: inner,
                data_type: DataType::Bytea,
                format: None,
                ..
            } = expr
            else {
                return ControlFlow::Continue(());
            };
            match bytea_literal(inner) {
                Ok(Some(bytes)) => *expr = bytes,
                Ok(None) => {}
                Err(e) => return ControlFlow::Break(e),
            }
            ControlFlow::Continue(())
        }
    }
    match stmt.visit(&mut Visitor) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The columns of a VALUES list typed as PostgreSQL types them, where
/// DataFusion, typing a list by its first rows, finds another type or none:
/// - a column with a row cast to `numeric` alone: the other values are
///   cast to it too (DataFusion found no common type for a `numeric` of its
///   own scale and a decimal or an integer: `VALUES (1.5::numeric), (2)`);
/// - a column of number literals of different scales, or of decimals and
///   integers: `numeric` too, each value keeping its scale (`VALUES (1.5),
///   (2.25), (3)` shows `1.5`, `2.25`, `3`, not `1.50`, `2.25`, `3.00`);
/// - a column with a row cast to a float type: its decimal literals are of
///   that type (`VALUES (1.5::float8), (2.5)` is `double precision`, not
///   `numeric(30, 15)` showing fifteen decimals).
///
/// The INSERT's own list is typed by its target's columns and is left as it
/// is.
///
/// Also: a number literal no decimal holds (more than 76 digits, with its
/// scale: `2.5e-310`) is a `numeric` of its own scale, as in PostgreSQL.
pub fn numeric_values_lists(stmt: &mut Statement) -> Result<()> {
    struct Visitor {
        /// The INSERT's own VALUES list.
        inserted: Option<*const Values>,
    }
    impl VisitorMut for Visitor {
        type Break = Error;
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
            if let SetExpr::Values(values) = query.body.as_mut() {
                if self.inserted != Some(values as *const Values) {
                    numeric_columns(&mut values.rows);
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Error> {
            match expr {
                Expr::Value(v) => {
                    if let Value::Number(digits, false) = &v.value {
                        if beyond_decimals(digits) {
                            let text = Value::SingleQuotedString(digits.clone());
                            *expr = numeric_cast(Expr::Value(text.into()));
                        }
                    }
                }
                Expr::Cast { data_type, .. } => {
                    if let Err(e) = numeric_typmod(data_type) {
                        return ControlFlow::Break(e);
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let inserted = match &*stmt {
        Statement::Insert(insert) => match insert.source.as_deref().map(|q| q.body.as_ref()) {
            Some(SetExpr::Values(values)) => Some(values as *const Values),
            _ => None,
        },
        _ => None,
    };
    match stmt.visit(&mut Visitor { inserted }) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// PostgreSQL's bounds of a `numeric(p, s)` (22023), which DataFusion
/// reads into a byte (`numeric(1001)` would be `numeric(233)`).
fn numeric_typmod(data_type: &DataType) -> Result<()> {
    let (DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info)) = data_type
    else {
        return Ok(());
    };
    let (precision, scale) = match info {
        ExactNumberInfo::None => return Ok(()),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=1000).contains(&precision) {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            format!("NUMERIC precision {precision} must be between 1 and 1000"),
        ));
    }
    if !(-1000..=1000).contains(&scale) {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            format!("NUMERIC scale {scale} must be between -1000 and 1000"),
        ));
    }
    Ok(())
}

/// Whether a number literal has more digits, with its scale, than a
/// Decimal256 holds.
fn beyond_decimals(digits: &str) -> bool {
    const MAX: u64 = crate::catalog::types::NUMERIC_MAX_PRECISION as u64;
    match crate::numeric::Numeric::parse(digits) {
        Ok(value @ crate::numeric::Numeric::Finite { .. }) => {
            let scale = u64::from(value.scale());
            value.integer_digits() + scale > MAX || scale > MAX
        }
        _ => false,
    }
}

fn numeric_columns(rows: &mut [datafusion::sql::sqlparser::ast::Parens<Vec<Expr>>]) {
    let width = rows.first().map_or(0, |r| r.content.len());
    for column in 0..width {
        let values: Vec<&Expr> = rows.iter().filter_map(|r| r.content.get(column)).collect();
        let float = values
            .iter()
            .filter_map(|v| cast_type(v))
            .fold(None, |found, t| match (found, t) {
                (_, DataType::DoublePrecision | DataType::Float8) => {
                    Some(DataType::DoublePrecision)
                }
                (None, DataType::Real | DataType::Float4) => Some(DataType::Real),
                (found, _) => found,
            });
        if let Some(float) = float {
            for row in rows.iter_mut() {
                if let Some(value) = row.content.get_mut(column) {
                    if literal_scale(value).is_some_and(|(decimal, _)| decimal) {
                        *value = cast_to(value.clone(), float.clone());
                    }
                }
            }
            continue;
        }
        let numeric = |v: &Expr| {
            matches!(
                cast_type(v),
                Some(
                    DataType::Numeric(ExactNumberInfo::None)
                        | DataType::Decimal(ExactNumberInfo::None)
                )
            )
        };
        let cast = values.iter().any(|v| numeric(v));
        let literals: Vec<(bool, u64)> = values.iter().filter_map(|v| literal_scale(v)).collect();
        let scales = literals.iter().map(|(_, scale)| scale);
        let mixed =
            literals.iter().any(|(decimal, _)| *decimal) && scales.clone().min() != scales.max();
        // A string literal beside decimals is read as one (`VALUES (1.5),
        // ('2.25')`: DataFusion read it as the first row's decimal(2, 1),
        // 2.3).
        let decimals = literals.iter().any(|(decimal, _)| *decimal);
        let mixed = mixed || decimals && values.iter().any(|v| is_string(v));
        let only_numbers =
            (values.iter()).all(|v| is_untyped(v) || is_string(v) || literal_scale(v).is_some());
        if !(cast || mixed && only_numbers) {
            continue;
        }
        for row in rows.iter_mut() {
            let Some(value) = row.content.get_mut(column) else {
                continue;
            };
            if !numeric(value) && !is_untyped(value) {
                *value = numeric_cast(value.clone());
            }
        }
    }
}

/// The type an expression is explicitly cast to.
fn cast_type(value: &Expr) -> Option<&DataType> {
    match value {
        Expr::Cast { data_type, .. } => Some(data_type),
        _ => None,
    }
}

/// Of a number literal (`-` before it or not): whether it is a decimal
/// (has a point or an exponent), and its scale.
fn literal_scale(value: &Expr) -> Option<(bool, u64)> {
    let value = match value {
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => expr,
        other => other,
    };
    let Expr::Value(v) = value else {
        return None;
    };
    let Value::Number(digits, false) = &v.value else {
        return None;
    };
    let decimal = digits.contains(['.', 'e', 'E']);
    let scale = match crate::numeric::Numeric::parse(digits) {
        Ok(n) => u64::from(n.scale()),
        Err(_) => 0,
    };
    Some((decimal, scale))
}

fn cast_to(value: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(value),
        data_type,
        array: false,
        format: None,
    }
}

/// A string literal as a cast to `data_type`.
fn typed_literal(value: &mut Expr, data_type: DataType) {
    if is_string(value) {
        *value = Expr::Cast {
            kind: CastKind::DoubleColon,
            expr: Box::new(value.clone()),
            data_type,
            array: false,
            format: None,
        };
    }
}

pub fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(ident) if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default"))
}

pub fn default_value(def: &TableDef, index: usize) -> Result<Expr> {
    match &def.columns[index].default {
        Some(sql) => parse_expr(sql),
        None => Ok(Expr::value(Value::Null)),
    }
}

pub(super) fn parse_query(sql: &str) -> Result<Box<Query>> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| Error::input(InputError::Syntax, e.to_string()))
}

pub(super) fn parse_statement(sql: &str) -> Result<Statement> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statement())
        .map_err(|e| Error::input(InputError::Syntax, e.to_string()))
}

/// Whether `e` is a string written as it is (`'...'`), whose type
/// PostgreSQL takes from where it stands.
pub(super) fn is_string(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
}

pub(super) fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::input(InputError::Syntax, e.to_string()))
}

/// If `expr` is a string literal, the expression of the bytes it denotes as
/// bytea input.
pub fn bytea_literal(expr: &Expr) -> Result<Option<Expr>> {
    let Expr::Value(value) = expr else {
        return Ok(None);
    };
    let (Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text)) = &value.value else {
        return Ok(None);
    };
    let bytes = super::functions::bytea_input(text)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parse_expr(&format!("decode('{hex}', 'hex')")).map(Some)
}

/// A number literal for a float column, as `double precision` when its
/// exponent is past what a decimal holds (`1e300`, which psycopg2 writes
/// for a large float parameter): DataFusion reads a literal with a point
/// or exponent as a decimal, as PostgreSQL reads it as numeric, and fails
/// past a scale of 76. (Elsewhere such a literal stays an error, not a
/// float shown where PostgreSQL shows its numeric digits.)
fn float_literal(value: &mut Expr) {
    let number = match value {
        Expr::UnaryOp {
            op:
                datafusion::sql::sqlparser::ast::UnaryOperator::Minus
                | datafusion::sql::sqlparser::ast::UnaryOperator::Plus,
            expr,
        } => return float_literal(expr),
        Expr::Value(v) => match &v.value {
            Value::Number(number, _) => number.clone(),
            _ => return,
        },
        _ => return,
    };
    let Some((mantissa, exponent)) = number.split_once(['e', 'E']) else {
        return;
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    let scale = fraction - exponent.parse::<i64>().unwrap_or(0);
    if scale.abs() > 76 {
        *value = Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(Expr::value(Value::SingleQuotedString(number))),
            data_type: DataType::DoublePrecision,
            array: false,
            format: None,
        };
    }
}
