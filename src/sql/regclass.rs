//! Casts to `regtype` and `regclass` as PostgreSQL reads them, and a
//! `regclass` result column shown as the relation's name.

use datafusion::sql::sqlparser::ast::{DataType, Expr, SelectItem, SetExpr, Statement, Value};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::rewrite::{parse_expr, rewrite_casts};

/// Casts to `regtype` and `regclass` as PostgreSQL reads them (the
/// compatibility rule looked a type up by `typname` alone, so
/// `'integer'::regtype` found nothing, and a relation in the current
/// schema alone, so `'pg_class'::regclass` found nothing either, and
/// nothing found was NULL instead of an error):
/// - `x::regtype` is `regtype_in(x)` (`pg_catalog`): a type's name in any
///   of its spellings (`integer`, `character varying`, `int4[]`), an
///   error (42704) for an unknown one, and a number taken as an oid;
///   the value prints as the type's name;
/// - `'name'::regclass` (or a parameter) looks the relation up along the
///   search path (`pg_catalog`, then the current schema) unless the name
///   is qualified, quoted parts keeping their case (`parse_ident`), and
///   is an error (42P01) when there is none;
///
/// `regproc` and `regnamespace` are left to the compatibility rule.
#[derive(Debug)]
pub struct RegCasts;

impl SqlStatementRewriteRule for RegCasts {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        rewrite_casts(&mut stmt, |inner, data_type| {
            let name = data_type.to_string().to_lowercase();
            match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
                "regtype" => Some(format!("{}({inner})", super::pg_catalog::REGTYPE_IN)),
                "regclass" => match inner {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s)
                            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            Some(format!("CAST({s} AS regclass)"))
                        }
                        Value::SingleQuotedString(_) | Value::Placeholder(_) => {
                            Some(relation_lookup(inner))
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }
        });
        stmt
    }
}

/// A result column that is a `regclass` (`'t'::regclass`, `x::regclass`,
/// also made text) shows the relation's name, as `regclassout` prints it
/// ([`relation_name`]); elsewhere (a comparison) it stays an oid. Run
/// before [`RegCasts`], on statements that read no system catalog (a
/// catalog query a tool sends keeps the form the compatibility parser
/// knows it in: its oid).
#[derive(Debug)]
pub struct RegclassNames;

impl SqlStatementRewriteRule for RegclassNames {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        relation_names(&mut stmt);
        stmt
    }
}

/// The items of `stmt`'s result that are a `regclass` (or one made text)
/// as [`relation_name`] of it; named first, as PostgreSQL names them.
fn relation_names(stmt: &mut Statement) {
    fn is_regclass(data_type: &DataType) -> bool {
        let name = data_type.to_string().to_lowercase();
        name.strip_prefix("pg_catalog.").unwrap_or(&name) == "regclass"
    }
    // The regclass cast an item is, itself or made text.
    fn regclass(expr: &Expr) -> Option<&Expr> {
        match expr {
            Expr::Cast { data_type, .. } if is_regclass(data_type) => Some(expr),
            Expr::Cast {
                expr: inner,
                data_type: DataType::Text | DataType::Varchar(_),
                ..
            } => regclass(inner),
            Expr::Nested(inner) => regclass(inner),
            _ => None,
        }
    }
    fn items(stmt: &mut Statement) -> Option<&mut Vec<SelectItem>> {
        let Statement::Query(query) = stmt else {
            return None;
        };
        match query.body.as_mut() {
            SetExpr::Select(select) => Some(&mut select.projection),
            _ => None,
        }
    }
    let any = items(stmt).is_some_and(|items| {
        items.iter().any(|item| {
            matches!(item, SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }
                if regclass(e).is_some())
        })
    });
    if !any {
        return;
    }
    super::names::alias_select_items(stmt);
    for item in items(stmt).into_iter().flatten() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            if let Some(named) = regclass(e).and_then(|oid| parse_expr(&relation_name(oid)).ok()) {
                *e = named;
            }
        }
    }
}

/// The name of the relation `oid` (a regclass) is, as `regclassout`
/// prints it: qualified unless its schema is on the search path, quoted
/// where it must be; the number for an oid that names none. (`max` of
/// the one row: DataFusion plans a correlated subquery that aggregates.
/// The aliases are not ones the outer query would use.)
fn relation_name(oid: &Expr) -> String {
    format!(
        "coalesce((SELECT max(CASE WHEN regclass_n.nspname IN ('pg_catalog', current_schema()) \
         THEN quote_ident(regclass_c.relname) \
         ELSE quote_ident(regclass_n.nspname) || '.' || quote_ident(regclass_c.relname) END) \
         FROM pg_catalog.pg_class regclass_c JOIN pg_catalog.pg_namespace regclass_n \
         ON regclass_c.relnamespace = regclass_n.oid \
         WHERE regclass_c.oid = ({oid})), CAST(({oid}) AS TEXT))"
    )
}

/// The oid of the relation `name` (text) names, as `regclassin` finds it;
/// see [`RegCasts`].
fn relation_lookup(name: &Expr) -> String {
    let missing = super::pg_catalog::REGCLASS_MISSING;
    format!(
        "coalesce((SELECT c.oid FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         CROSS JOIN (SELECT parse_ident(CAST({name} AS TEXT)) AS parts) AS p \
         WHERE c.relname = parts[array_length(parts, 1)] \
         AND ((array_length(parts, 1) = 1 AND n.nspname IN ('pg_catalog', current_schema())) \
         OR (array_length(parts, 1) = 2 AND n.nspname = parts[1])) \
         ORDER BY n.nspname = 'pg_catalog' DESC LIMIT 1), \
         {missing}(CAST({name} AS TEXT)))"
    )
}
