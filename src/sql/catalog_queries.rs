//! Catalog queries of tools (psql's `\d`, drivers, BI tools) in a form
//! DataFusion plans.
//!
//! These queries look up one value per row with a correlated subquery in
//! the select list: psql's `\d` reads a column's default as
//! `(SELECT pg_get_expr(d.adbin, d.adrelid, true) FROM pg_attrdef d WHERE
//! d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)`.
//! DataFusion cannot plan such a subquery unless it aggregates, and
//! datafusion-pg-catalog's compatibility parser replaces it with NULL, so
//! psql showed no defaults. [`lookups_as_joins`] turns each such lookup
//! into a LEFT JOIN of its table on its WHERE clause, which yields the same
//! value when the lookup finds at most one row: it does in the catalog
//! queries this runs on (`SqlEngine::parse` applies it to statements that
//! read `pg_catalog` only), which look rows up by their key.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArguments, Ident, Join, JoinConstraint, JoinOperator,
    Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};

use super::ddl::ident_name;
use super::parse_rules::plain_select;
use super::rewrite::parse_expr;

/// Rewrites every lookup subquery in the select lists of `statements` (see
/// the module docs); returns whether it changed anything.
pub fn lookups_as_joins(statements: &mut [Statement]) -> bool {
    struct Joiner {
        changed: bool,
    }
    impl VisitorMut for Joiner {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = query.body.as_mut() {
                self.changed |= join_lookups(select);
            }
            ControlFlow::Continue(())
        }
    }
    let mut joiner = Joiner { changed: false };
    for stmt in statements {
        let _ = stmt.visit(&mut joiner);
    }
    joiner.changed
}

/// Replaces each `ARRAY(SELECT ... FROM unnest(<x>.reloptions) ...)` of
/// `statements` by a NULL `text[]`; returns whether it found one. psql's
/// `\d+` adds a table's TOAST table's storage options to its own that way,
/// a subquery over a table function of an outer column, which DataFusion
/// cannot plan; ShardForge has no storage options (`reloptions` is NULL
/// for every relation), so the array has no element either way.
pub fn storage_option_arrays(statements: &mut [Statement]) -> bool {
    let mut found = false;
    for stmt in statements {
        let _ = visit_expressions_mut(stmt, |expr| {
            if unnests_storage_options(expr) {
                if let Ok(null) = parse_expr("CAST(NULL AS TEXT[])") {
                    *expr = null;
                    found = true;
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

/// asyncpg's type introspection, in a form DataFusion plans and with
/// PostgreSQL's types; returns whether it changed anything:
///
/// - A domain's base type is looked up by a recursive CTE correlated with
///   the outer `pg_type` row (`(WITH RECURSIVE typebases(oid, depth) AS
///   (... t2.typbasetype ...) SELECT oid FROM typebases ...)`), which
///   DataFusion cannot plan. ShardForge has no domains, so it is NULL for
///   every type (asyncpg asks only when `typtype = 'd'`).
/// - `array_agg` of object ids (`array_agg(ia.atttypid ORDER BY
///   ia.attnum)`) is an `oid[]`, as in PostgreSQL: described as `int4[]`,
///   asyncpg looked `int4[]` up with the same query, whose result has an
///   `int4[]` column, without end.
pub fn type_introspection(statements: &mut [Statement]) -> bool {
    let mut changed = false;
    for stmt in statements {
        let _ = visit_expressions_mut(stmt, |expr| {
            let rewritten = match expr {
                Expr::Subquery(query) if looks_up_base_types(query) => {
                    parse_expr("CAST(NULL AS oid)").ok()
                }
                Expr::Function(function) if aggregates_object_ids(function) => {
                    parse_expr(&format!("CAST({function} AS oid[])")).ok()
                }
                _ => None,
            };
            if let Some(rewritten) = rewritten {
                *expr = rewritten;
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    changed
}

/// A recursive CTE over `typbasetype` (see [`type_introspection`]).
fn looks_up_base_types(query: &Query) -> bool {
    query.with.as_ref().is_some_and(|with| {
        with.recursive
            && with.cte_tables.iter().any(|cte| {
                cte.query
                    .to_string()
                    .to_ascii_lowercase()
                    .contains("typbasetype")
            })
    })
}

/// `array_agg(x.atttypid ...)`, `array_agg(x.oid ...)`: of a column of
/// object ids.
fn aggregates_object_ids(function: &datafusion::sql::sqlparser::ast::Function) -> bool {
    let FunctionArguments::List(list) = &function.args else {
        return false;
    };
    let [arg] = list.args.as_slice() else {
        return false;
    };
    let column = arg.to_string().to_ascii_lowercase();
    let column = column.rsplit('.').next().unwrap_or_default();
    function.name.to_string().eq_ignore_ascii_case("array_agg")
        && (column == "oid" || column.ends_with("typid"))
}

fn unnests_storage_options(expr: &Expr) -> bool {
    let Expr::Function(function) = expr else {
        return false;
    };
    let FunctionArguments::Subquery(query) = &function.args else {
        return false;
    };
    let Some(select) = plain_select(query) else {
        return false;
    };
    let array = function.name.to_string().eq_ignore_ascii_case("array");
    array
        && select.from.iter().any(|from| match &from.relation {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => {
                let unnest = name
                    .0
                    .last()
                    .and_then(|part| part.as_ident())
                    .is_some_and(|ident| ident.value.eq_ignore_ascii_case("unnest"));
                let options = args
                    .args
                    .iter()
                    .any(|arg| arg.to_string().to_ascii_lowercase().ends_with("reloptions"));
                unnest && options
            }
            _ => false,
        })
}

fn join_lookups(select: &mut Select) -> bool {
    // With several FROM items, a join would attach to the last one only,
    // and its condition could not name the others.
    let [from] = select.from.as_mut_slice() else {
        return false;
    };
    let mut names: HashSet<String> = std::iter::once(&from.relation)
        .chain(from.joins.iter().map(|j| &j.relation))
        .filter_map(relation_name)
        .collect();
    let mut changed = false;
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let Expr::Subquery(subquery) = expr else {
            continue;
        };
        let Some((value, relation, condition)) = lookup(subquery) else {
            continue;
        };
        let Some(name) = relation_name(&relation) else {
            continue;
        };
        if !names.insert(name) {
            continue; // its alias is taken in the outer query
        }
        let condition = condition.unwrap_or(Expr::Value(Value::Boolean(true).into()));
        from.joins.push(Join {
            relation,
            global: false,
            join_operator: JoinOperator::LeftOuter(JoinConstraint::On(condition)),
        });
        *expr = value;
        changed = true;
    }
    changed
}

/// `(value, table, WHERE)` of `SELECT value FROM table alias WHERE ...`
/// with nothing else: no aggregate, grouping, DISTINCT, ORDER BY or LIMIT.
fn lookup(query: &Query) -> Option<(Expr, TableFactor, Option<Expr>)> {
    let select = plain_select(query)?;
    let ([from], [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }]) =
        (select.from.as_slice(), select.projection.as_slice())
    else {
        return None;
    };
    let single_table = from.joins.is_empty()
        && matches!(
            &from.relation,
            TableFactor::Table {
                alias: Some(_),
                args: None,
                ..
            }
        );
    if !single_table || super::subqueries::aggregates(value, &super::subqueries::common_aggregate) {
        return None;
    }
    Some((
        value.clone(),
        from.relation.clone(),
        select.selection.clone(),
    ))
}

/// The name a relation is referred to by: its alias, or its table name.
pub(super) fn relation_name(relation: &TableFactor) -> Option<String> {
    relation_ident(relation).map(ident_name)
}

/// The identifier a table's columns are qualified with, as written: its
/// alias, or its name's last part.
pub(super) fn relation_ident(relation: &TableFactor) -> Option<&Ident> {
    match relation {
        TableFactor::Table {
            alias: Some(alias), ..
        } => Some(&alias.name),
        TableFactor::Table { name, .. } => name.0.last().and_then(|p| p.as_ident()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> Option<String> {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        lookups_as_joins(&mut statements).then(|| statements[0].to_string())
    }

    #[test]
    fn the_toast_options_array_of_psql_describe_is_null() {
        let sql = "SELECT array_to_string(c.reloptions || array(select 'toast.' || x \
                   from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_class c";
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        assert!(storage_option_arrays(&mut statements));
        assert_eq!(
            statements[0].to_string(),
            "SELECT array_to_string(c.reloptions || CAST(NULL AS TEXT[]), ', ') FROM pg_class c"
        );
        let mut other = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT array(SELECT 1)").unwrap();
        assert!(!storage_option_arrays(&mut other));
    }

    #[test]
    fn a_key_lookup_in_the_select_list_becomes_a_left_join() {
        assert_eq!(
            rewrite(
                "SELECT a.attname, (SELECT pg_get_expr(d.adbin, d.adrelid, true) \
                 FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND a.atthasdef) \
                 FROM pg_attribute a WHERE a.attnum > 0"
            )
            .as_deref(),
            Some(
                "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid, true) \
                 FROM pg_attribute a LEFT OUTER JOIN pg_attrdef d \
                 ON d.adrelid = a.attrelid AND a.atthasdef WHERE a.attnum > 0"
            )
        );
    }

    #[test]
    fn other_subqueries_are_left_alone() {
        for sql in [
            // An aggregate, several tables, a LIMIT, no alias, an alias taken.
            "SELECT (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) FROM pg_class c",
            "SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.x) FROM pg_attribute a",
            "SELECT (SELECT d.adbin FROM pg_attrdef d LIMIT 1) FROM pg_attribute a",
            "SELECT (SELECT adbin FROM pg_attrdef) FROM pg_attribute a",
            "SELECT (SELECT a.x FROM pg_attrdef a) FROM pg_attribute a",
            "SELECT (SELECT d.x FROM t d) FROM pg_attribute a, pg_class c",
        ] {
            assert_eq!(rewrite(sql), None, "{sql}");
        }
    }
}
