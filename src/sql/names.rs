//! PostgreSQL's names for result columns.
//!
//! PostgreSQL names an unaliased select item after the column it reads, the
//! function it calls or the type it casts to, and `?column?` otherwise;
//! DataFusion names it after the whole expression (`Int64(1)`) and refuses two
//! items with the same name. So every unaliased item of the top-level
//! SELECT (or RETURNING) that is not a plain column gets a unique alias
//! that carries its PostgreSQL name, `__pg_col<i>:<name>`, named from the
//! statement as written (before the rewrites respell it), and the schema
//! sent to the client renames those columns to that name (duplicates
//! allowed, as in PostgreSQL). A plain column is left as it is, unless it
//! was already selected: `SELECT a, a` is fine in PostgreSQL.
//!
//! Calls DataFusion would name alike inside one SELECT (`avg(x)`,
//! `avg(x::float8)`) are told apart too ([`distinguish_cast_calls`]).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    self, visit_expressions, visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, Query, SelectItem, SetExpr, Statement, VisitMut, VisitorMut,
};

use super::ddl::ident_name;

const PREFIX: &str = "__pg_col";

/// Aliases the unaliased items of `stmt`'s top-level SELECT (or of a
/// write's RETURNING) with their PostgreSQL names in the alias
/// (`__pg_col<i>:<name>`, see [`rename`]). Run on a statement as parsed,
/// before the rewrites that change how an item is spelled
/// (`x::varchar(3)` becomes a call of `left`), and again before planning
/// (a no-op for the items already aliased).
pub fn alias_select_items(stmt: &mut Statement) {
    let items = match stmt {
        Statement::Query(query) => leftmost_select(query).map(|s| &mut s.projection),
        Statement::Insert(insert) => insert.returning.as_mut(),
        Statement::Update(update) => update.returning.as_mut(),
        Statement::Delete(delete) => delete.returning.as_mut(),
        _ => None,
    };
    let Some(items) = items else {
        return;
    };
    // A column named beside a wildcard (`SELECT *, v`) repeats one of its
    // columns: DataFusion needs it aliased.
    let wildcard = items.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let mut columns = std::collections::HashSet::new();
    for (i, item) in items.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        // (A bare `current_schema` is a call: `functions::rename_calls`.)
        let column = match expr {
            Expr::Identifier(ident) => !ident.value.eq_ignore_ascii_case("current_schema"),
            Expr::CompoundIdentifier(_) => true,
            _ => false,
        };
        if !wildcard && column && columns.insert(pg_name(expr)) {
            continue;
        }
        let alias = Ident::with_quote('"', format!("{PREFIX}{i}:{}", pg_name(expr)));
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias,
        };
    }
}

fn leftmost_select(query: &mut Query) -> Option<&mut ast::Select> {
    let mut body = query.body.as_mut();
    loop {
        match body {
            SetExpr::Select(select) => return Some(select),
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => return None,
        }
    }
}

/// The result schema with the aliased columns renamed to their PostgreSQL
/// names.
pub fn rename(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f
                .name()
                .strip_prefix(PREFIX)
                .and_then(|named| Some(named.split_once(':')?.1));
            match name {
                Some(name) => f.as_ref().clone().with_name(name),
                None => f.as_ref().clone(),
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// PostgreSQL's `FigureColname`: the name an unaliased expression gets.
pub(super) fn pg_name(expr: &Expr) -> String {
    figure(expr).map_or_else(|| "?column?".to_string(), |(name, _)| name)
}

/// The name and whether it is strong: a cast names its column after its
/// type only when its operand gives no strong name (`x::text` is `x`,
/// `'a'::jsonb::text` is `text`), as PostgreSQL decides.
fn figure(expr: &Expr) -> Option<(String, bool)> {
    let strong = |name: String| Some((name, true));
    match expr {
        Expr::Identifier(ident) => strong(ident_name(ident)),
        Expr::CompoundIdentifier(parts) => strong(ident_name(parts.last()?)),
        Expr::Function(f) => strong(f.name.0.last()?.as_ident()?.value.to_lowercase()),
        Expr::Cast {
            expr, data_type, ..
        } => match figure(expr) {
            Some((name, true)) => strong(name),
            _ => Some((type_name(data_type), false)),
        },
        Expr::Nested(inner) => figure(inner),
        // `tags[1]` and `t.tags[1]` are named after `tags`; `(r).f` after `f`.
        Expr::CompoundFieldAccess { root, access_chain } => {
            let field = access_chain.iter().rev().find_map(|access| match access {
                ast::AccessExpr::Dot(field) => Some(field),
                ast::AccessExpr::Subscript(_) => None,
            });
            figure(field.unwrap_or(root))
        }
        // A CASE is named after its ELSE when that gives a strong name
        // (`CASE WHEN ... THEN 0 ELSE total END` is `total`), else `case`,
        // weakly (`CASE ... END::text` is `text`).
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figure) {
            Some((name, true)) => strong(name),
            _ => Some(("case".into(), false)),
        },
        Expr::Array(_) => strong("array".into()),
        Expr::Exists { .. } => strong("exists".into()),
        // A scalar subquery is named after its one item.
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.as_slice() {
                [SelectItem::ExprWithAlias { alias, .. }] => strong(ident_name(alias)),
                [SelectItem::UnnamedExpr(item)] => figure(item),
                _ => None,
            },
            _ => None,
        },
        Expr::Extract { .. } => strong("extract".into()),
        Expr::Ceil { .. } => strong("ceil".into()),
        Expr::Floor { .. } => strong("floor".into()),
        Expr::Overlay { .. } => strong("overlay".into()),
        Expr::AtTimeZone { .. } => strong("timezone".into()),
        Expr::Interval(_) => Some(("interval".into(), false)),
        Expr::TypedString(typed) => Some((type_name(&typed.data_type), false)),
        Expr::Substring {
            shorthand: true, ..
        } => strong("substr".into()),
        Expr::Substring { .. } => strong("substring".into()),
        Expr::Position { .. } => strong("position".into()),
        Expr::Trim { trim_where, .. } => strong(
            match trim_where {
                Some(ast::TrimWhereField::Leading) => "ltrim",
                Some(ast::TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            }
            .into(),
        ),
        _ => None,
    }
}

/// PostgreSQL's internal name of a type, as a cast names its column.
fn type_name(data_type: &ast::DataType) -> String {
    use ast::DataType as D;
    match data_type {
        D::SmallInt(_) | D::Int2(_) => "int2",
        D::Int(_) | D::Integer(_) | D::Int4(_) => "int4",
        D::BigInt(_) | D::Int8(_) => "int8",
        D::Real | D::Float4 => "float4",
        D::DoublePrecision | D::Float8 | D::Double(_) | D::Float(_) => "float8",
        D::Numeric(_) | D::Decimal(_) | D::Dec(_) => "numeric",
        D::Bool | D::Boolean => "bool",
        D::Text | D::String(_) => "text",
        D::Varchar(_) | D::CharacterVarying(_) | D::CharVarying(_) => "varchar",
        D::Char(_) | D::Character(_) => "bpchar",
        D::Date => "date",
        D::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => "timestamptz",
        D::Timestamp(_, _) => "timestamp",
        D::Bytea => "bytea",
        D::Time(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => "timetz",
        D::Time(_, _) => "time",
        D::Interval { .. } => "interval",
        D::Uuid => "uuid",
        // An array type is named after its elements.
        D::Array(
            ast::ArrayElemTypeDef::SquareBracket(element, _)
            | ast::ArrayElemTypeDef::AngleBracket(element)
            | ast::ArrayElemTypeDef::Parenthesis(element),
        ) => return type_name(element),
        other => return other.to_string().to_lowercase(),
    }
    .to_string()
}

/// Calls in one SELECT that differ only in casts of their arguments
/// (`avg(x)` and `avg(x::float8)`, `sum(y)` and `sum(y::bigint)`) have
/// one name in DataFusion, whose names do not show casts, and an
/// aggregate or window refuses two expressions of one name ("duplicate
/// unqualified field name"); PostgreSQL computes both. The n-th such
/// variant of a call has each argument wrapped n times in `coalesce(...)`,
/// which changes its name and not its value. Their result columns keep
/// their PostgreSQL names ([`alias_select_items`] ran before).
pub fn distinguish_cast_calls(stmt: &mut Statement) {
    struct Visitor;
    impl VisitorMut for Visitor {
        type Break = ();
        fn post_visit_select(&mut self, select: &mut ast::Select) -> ControlFlow<()> {
            distinguish_in_select(select);
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Visitor);
}

fn distinguish_in_select(select: &mut ast::Select) {
    // Without a cast there are no such variants (the common case: no
    // call is written out).
    let is_cast = |e: &Expr| match e {
        Expr::Cast { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    };
    let casts = visit_expressions(&select.projection, is_cast).is_break()
        || visit_expressions(&select.having, is_cast).is_break();
    if !casts {
        return;
    }
    // The calls' texts in order, by their text without casts.
    let mut variants: HashMap<String, Vec<String>> = HashMap::new();
    let mut collect = |e: &Expr| {
        if let Expr::Function(_) = e {
            let text = e.to_string();
            let texts = variants.entry(without_casts(e).to_string()).or_default();
            if !texts.contains(&text) {
                texts.push(text);
            }
        }
        ControlFlow::<()>::Continue(())
    };
    let _ = visit_expressions(&select.projection, &mut collect);
    let _ = visit_expressions(&select.having, &mut collect);
    let wraps: HashMap<String, usize> = variants
        .into_values()
        .flat_map(|texts| texts.into_iter().enumerate().skip(1))
        .map(|(n, text)| (text, n))
        .collect();
    if wraps.is_empty() {
        return;
    }
    let mut wrap = |e: &mut Expr| {
        let Some(&n) = wraps.get(&e.to_string()) else {
            return ControlFlow::<()>::Continue(());
        };
        if let Expr::Function(ast::Function {
            args: FunctionArguments::List(list),
            ..
        }) = e
        {
            for arg in &mut list.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = arg {
                    for _ in 0..n {
                        let text = format!("coalesce({arg})");
                        if let Ok(wrapped) = super::rewrite::parse_expr(&text) {
                            *arg = wrapped;
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    };
    let _ = visit_expressions_mut(&mut select.projection, &mut wrap);
    let _ = visit_expressions_mut(&mut select.having, &mut wrap);
}

/// `expr` with its casts left out (the cast expression in their place).
fn without_casts(expr: &Expr) -> Expr {
    let mut bare = expr.clone();
    let _ = visit_expressions_mut(&mut bare, |e| {
        while let Expr::Cast { expr: inner, .. } = e {
            *e = inner.as_ref().clone();
        }
        ControlFlow::<()>::Continue(())
    });
    bare
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    /// The statement aliased, and the names of its aliased items.
    fn names_of(sql: &str) -> (String, Vec<String>) {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        alias_select_items(&mut stmt);
        let text = stmt.to_string();
        let names = text
            .split(&format!("\"{PREFIX}"))
            .skip(1)
            .map(|alias| {
                alias
                    .split_once(':')
                    .unwrap()
                    .1
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        (text, names)
    }

    #[test]
    fn unaliased_items_get_postgresql_names() {
        let (sql, names) = names_of(
            "SELECT a, t.b, 1, count(*), '1'::int, a::text, x AS y, (SELECT 1), t.a, \
             (SELECT v FROM u), (SELECT v AS w FROM u) FROM t",
        );
        assert_eq!(
            names,
            vec!["?column?", "count", "int4", "a", "?column?", "a", "v", "w"]
        );
        assert!(sql.contains(r#"1 AS "__pg_col2:?column?""#), "{sql}");
        assert!(sql.starts_with("SELECT a, t.b, "), "{sql}");
        assert!(sql.contains("x AS y"), "{sql}");
        // Named before their calls are renamed for DataFusion
        // (`functions::rename_calls`).
        let (_, names) = names_of("SELECT ceiling(x), mod(7, 3), ARRAY[1, 2]");
        assert_eq!(names, vec!["ceiling", "mod", "array"]);
        // Special syntax, typed literals and array casts as PostgreSQL
        // names them.
        let (_, names) = names_of(
            "SELECT ceil(x), floor(x), interval '1 day', date '2024-01-01', \
             ts AT TIME ZONE 'UTC', trim(leading 'a' from s), '{1}'::int[], x::varchar(3), \
             'x'::varchar(3)",
        );
        let expected = [
            "ceil", "floor", "interval", "date", "timezone", "ltrim", "int4", "x", "varchar",
        ];
        assert_eq!(names, expected);
        // Subscripts keep the array's name, a field access is the field's.
        let (_, names) = names_of("SELECT tags[1], t.tags[1:2], ('{1}'::int[])[1], (r).f");
        assert_eq!(names, vec!["tags", "tags", "int4", "f"]);
        // A CASE after its ELSE if that names it strongly.
        let (_, names) = names_of(
            "SELECT CASE WHEN a THEN 0 ELSE total END, CASE WHEN a THEN 1 END::text, \
             CASE WHEN a THEN 1 ELSE 2 END",
        );
        assert_eq!(names, vec!["total", "text", "case"]);
        // A write's RETURNING too.
        let (_, names) = names_of("INSERT INTO t VALUES (1) RETURNING id + 1, id::text");
        assert_eq!(names, vec!["?column?", "id"]);
    }

    #[test]
    fn set_operations_take_the_first_branch_names() {
        let (_, names) = names_of("SELECT 1 UNION SELECT 2");
        assert_eq!(names, vec!["?column?"]);
    }
}
