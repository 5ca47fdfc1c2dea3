//! Rules that run with datafusion-pg-catalog's at parse time (see
//! `SqlEngine::parse`): [`QuantifiedSubqueries`] keeps `x > ALL (SELECT
//! ...)` from confusing the subquery's columns with the outer query's,
//! [`SubqueryTestsInSelectList`] counts rows for an EXISTS and lists them
//! for an `IN (subquery)` DataFusion cannot plan,
//! [`RegprocComparisons`] compares a `regproc` with a catalog column by
//! name, [`InsertUnderWith`] moves a WITH into the INSERT under it,
//! [`FetchFirstAsLimit`] reads `FETCH FIRST` as `LIMIT`, [`UnicodeStrings`]
//! reads `U&'...'` strings,
//! [`WindowReferences`] copies a window named in another's definition,
//! [`SizedStringCasts`] cuts explicit `varchar(n)` / `char(n)` casts, and
//! `datetime::MicrosecondTimestamps` gives `timestamp` PostgreSQL's range.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CharacterLength, DataType, Expr, Function, GroupByExpr,
    Ident, LimitClause, NamedWindowDefinition, NamedWindowExpr, Query, Select, SelectItem, SetExpr,
    Statement, Value, VisitMut, VisitorMut, WindowSpec, WindowType,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::functions::{ANY_EQUAL, IN_ARRAY};
use super::rewrite::{is_string, parse_expr, parse_query, rewrite_casts};

/// Quantified comparisons with a subquery, in forms DataFusion plans right:
///
/// - `x = ANY (SELECT ...)` is `x IN (SELECT ...)` and `x <> ALL (SELECT
///   ...)` is `x NOT IN (SELECT ...)`, NULLs included. (The compatibility
///   rules would read the subquery as an array and fail.) The same for an
///   `ARRAY[...]` of elements.
/// - Other operators keep their form, with the subquery wrapped in a
///   derived table named on its own. DataFusion turns the comparison into a
///   condition between the two queries' columns; when both read the same
///   table without aliases (`WHERE price > ALL (SELECT price FROM products
///   ...)`) the two sides had the same qualified name, and the subquery's
///   column was silently compared with itself.
///
/// Runs before datafusion-pg-catalog's rules, as one of them.
#[derive(Debug)]
pub struct QuantifiedSubqueries;

impl SqlStatementRewriteRule for QuantifiedSubqueries {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        let _ = stmt.visit(&mut QuantifiedVisitor { count: 0 });
        stmt
    }
}

struct QuantifiedVisitor {
    count: usize,
}

impl VisitorMut for QuantifiedVisitor {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let (negated, is_membership) = match expr {
            Expr::AnyOp { compare_op, .. } => (false, *compare_op == BinaryOperator::Eq),
            Expr::AllOp { compare_op, .. } => (true, *compare_op == BinaryOperator::NotEq),
            _ => return ControlFlow::Continue(()),
        };
        let (Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. }) = expr else {
            return ControlFlow::Continue(());
        };
        // `x = ANY (ARRAY[a, b])` is `x IN (a, b)`, which gives NULL, as
        // PostgreSQL does, when no element equals x and one is NULL
        // (membership in the array gave false); `ARRAY[]` none.
        if let (true, Expr::Array(array)) = (is_membership, right.as_ref()) {
            *expr = match array.elem.is_empty() {
                true => Expr::Value(Value::Boolean(negated).with_empty_span()),
                false => Expr::InList {
                    expr: left.clone(),
                    list: array.elem.clone(),
                    negated,
                },
            };
            return ControlFlow::Continue(());
        }
        let Expr::Subquery(query) = right.as_mut() else {
            // A string literal (`x = ANY ('{1,2}')`) is read as a list of
            // its elements later, by datafusion-pg-catalog's rule.
            if is_membership && !is_string(right) {
                if let Some(membership) = array_membership(left, right, negated) {
                    *expr = membership;
                }
            }
            return ControlFlow::Continue(());
        };
        if is_membership {
            *expr = Expr::InSubquery {
                expr: left.clone(),
                subquery: query.clone(),
                negated,
            };
            return ControlFlow::Continue(());
        }
        self.count += 1;
        let sql = format!("SELECT * FROM ({query}) AS __sf_quantified_{}", self.count);
        // The text is a query printed by the parser itself, so it parses.
        if let Ok(wrapped) = parse_query(&sql) {
            *query = wrapped;
        }
        ControlFlow::Continue(())
    }
}

/// `x = ANY (array)` (or, `negated`, `x <> ALL (array)`) of an array
/// value (a column, a parameter) with PostgreSQL's NULLs
/// (`functions::membership`): DataFusion's `array_has` said false where
/// PostgreSQL says NULL, so `NOT (5 = ANY (a))` kept rows PostgreSQL drops.
fn array_membership(left: &Expr, array: &Expr, negated: bool) -> Option<Expr> {
    membership(ANY_EQUAL, array, left, negated)
}

/// `[NOT] function(array, left)`, a function of `functions::membership`.
fn membership(
    function: &str,
    array: impl std::fmt::Display,
    left: &Expr,
    negated: bool,
) -> Option<Expr> {
    let call = format!("{function}({array}, {left})");
    // Printed by the parser itself, so it parses.
    parse_expr(&match negated {
        true => format!("NOT {call}"),
        false => call,
    })
    .ok()
}

/// `EXISTS (subquery)` and `x [NOT] IN (subquery)` in a select list, which
/// DataFusion plans only in WHERE, as subqueries it plans anywhere:
/// - EXISTS (`SELECT EXISTS (SELECT 1 FROM t WHERE ...)`, as ORMs ask
///   whether rows exist) as a count compared with zero;
/// - `x IN (SELECT v ...)` as the membership of `x` in the array of the
///   `v`s (`functions::membership`, PostgreSQL's NULLs; an empty array
///   without rows): like PostgreSQL's hashed subplan, the subquery's values
///   are held in memory.
///
/// A plain `SELECT ... FROM ... WHERE ...` counts or lists its own rows,
/// so a correlation in its WHERE still works; anything else (grouping,
/// LIMIT, set operations) is read as a derived table.
#[derive(Debug)]
pub struct SubqueryTestsInSelectList;

impl SqlStatementRewriteRule for SubqueryTestsInSelectList {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        struct Visitor;
        impl VisitorMut for Visitor {
            type Break = ();
            fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
                let SetExpr::Select(select) = query.body.as_mut() else {
                    return ControlFlow::Continue(());
                };
                for item in &mut select.projection {
                    // PostgreSQL names the column of a bare EXISTS `exists`.
                    if let SelectItem::UnnamedExpr(expr @ Expr::Exists { negated: false, .. }) =
                        item
                    {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: Ident::with_quote('"', "exists"),
                        };
                    }
                    if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } =
                        item
                    {
                        let _ = visit_expressions_mut(expr, |e| {
                            let rewritten = match e {
                                Expr::Exists { subquery, negated } => {
                                    exists_as_count(subquery, *negated)
                                }
                                Expr::InSubquery {
                                    expr,
                                    subquery,
                                    negated,
                                } => in_as_membership(expr, subquery, *negated),
                                _ => None,
                            };
                            if let Some(rewritten) = rewritten {
                                *e = rewritten;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = stmt.visit(&mut Visitor);
        stmt
    }
}

fn exists_as_count(subquery: &Query, negated: bool) -> Option<Expr> {
    let counted = match plain_select(subquery) {
        Some(select) => {
            let mut select = select.clone();
            select.projection = vec![SelectItem::UnnamedExpr(parse_expr("count(*)").ok()?)];
            format!("({select})")
        }
        None => format!("(SELECT count(*) FROM ({subquery}) AS __sf_exists)"),
    };
    let comparison = if negated { "=" } else { ">" };
    // Printed by the parser itself, so it parses.
    parse_expr(&format!("({counted} {comparison} 0)")).ok()
}

fn in_as_membership(left: &Expr, subquery: &Query, negated: bool) -> Option<Expr> {
    let listed = match plain_select(subquery) {
        Some(select) if select.projection.len() == 1 => {
            let value = match &select.projection[0] {
                SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. } => {
                    value.clone()
                }
                _ => return None,
            };
            let mut select = select.clone();
            select.projection = vec![SelectItem::UnnamedExpr(
                parse_expr(&format!("array_agg({value})")).ok()?,
            )];
            format!("({select})")
        }
        _ => format!("(SELECT array_agg(__sf_in.v) FROM ({subquery}) AS __sf_in(v))"),
    };
    membership(IN_ARRAY, listed, left, negated)
}

/// The SELECT of `query` if it yields a row per row of its FROM and WHERE:
/// no grouping, DISTINCT, ORDER BY, LIMIT or WITH around it.
pub(super) fn plain_select(query: &Query) -> Option<&Select> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let plain = query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none()
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    plain.then_some(select.as_ref())
}

/// `'pg_catalog.array_in'::regproc` compared with a catalog column that
/// names a function (`pg_type.typinput`, whose values here are the
/// function's name): the name, unqualified, compared as text. pgjdbc asks
/// `typinput = 'pg_catalog.array_in'::regproc` of every type it does not
/// know (json, jsonb); the compatibility rules would look the name up in
/// `pg_proc` by its qualified form and find nothing.
#[derive(Debug)]
pub struct RegprocComparisons;

impl SqlStatementRewriteRule for RegprocComparisons {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        struct Visitor;
        impl VisitorMut for Visitor {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
                let Expr::BinaryOp { left, right, .. } = expr else {
                    return ControlFlow::Continue(());
                };
                if names_function(left) {
                    if let Some(name) = regproc_literal(right) {
                        **right = Expr::value(Value::SingleQuotedString(name));
                    }
                } else if names_function(right) {
                    if let Some(name) = regproc_literal(left) {
                        **left = Expr::value(Value::SingleQuotedString(name));
                    }
                }
                ControlFlow::Continue(())
            }
        }
        // A `pg_type` column holding a function's name.
        fn names_function(expr: &Expr) -> bool {
            let name = match expr {
                Expr::Identifier(ident) => &ident.value,
                Expr::CompoundIdentifier(parts) => match parts.last() {
                    Some(last) => &last.value,
                    None => return false,
                },
                _ => return false,
            };
            matches!(
                name.to_ascii_lowercase().as_str(),
                "typinput" | "typoutput" | "typreceive" | "typsend" | "typmodin" | "typmodout"
            )
        }
        // The unqualified name of `'schema.name'::regproc`.
        fn regproc_literal(expr: &Expr) -> Option<String> {
            let Expr::Cast {
                expr, data_type, ..
            } = expr
            else {
                return None;
            };
            let type_name = data_type.to_string().to_ascii_lowercase();
            if type_name.trim_start_matches("pg_catalog.") != "regproc" {
                return None;
            }
            match &**expr {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(name) => {
                        Some(name.rsplit('.').next().unwrap_or(name).to_string())
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        let _ = stmt.visit(&mut Visitor);
        stmt
    }
}

/// `WITH c AS (SELECT ...) INSERT INTO t SELECT ... FROM c` as `INSERT
/// INTO t WITH c AS (...) SELECT ... FROM c`, which DataFusion plans (it
/// refused an INSERT under a WITH). Not where a CTE itself writes
/// (`WITH d AS (DELETE ... RETURNING ...)`), which stays 0A000.
#[derive(Debug)]
pub struct InsertUnderWith;

impl SqlStatementRewriteRule for InsertUnderWith {
    fn rewrite(&self, stmt: Statement) -> Statement {
        let Statement::Query(mut query) = stmt else {
            return stmt;
        };
        let reads_only = query.with.as_ref().is_some_and(|with| {
            with.cte_tables.iter().all(|cte| {
                !matches!(
                    cte.query.body.as_ref(),
                    SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
                )
            })
        });
        let plain =
            query.order_by.is_none() && query.limit_clause.is_none() && query.fetch.is_none();
        let SetExpr::Insert(Statement::Insert(insert)) = query.body.as_mut() else {
            return Statement::Query(query);
        };
        let Some(source) = insert.source.as_mut().filter(|_| reads_only && plain) else {
            return Statement::Query(query);
        };
        let Some(mut with) = query.with.take() else {
            return Statement::Query(query);
        };
        if let Some(own) = source.with.take() {
            with.recursive |= own.recursive;
            with.cte_tables.extend(own.cte_tables);
        }
        source.with = Some(with);
        match *query.body {
            SetExpr::Insert(insert) => insert,
            other => {
                query.body = Box::new(other);
                Statement::Query(query)
            }
        }
    }
}

/// A window defined on another (`WINDOW w2 AS (w1 ORDER BY x)`, `OVER (w1
/// ORDER BY x)`) is the other's PARTITION BY and ORDER BY with its own
/// ORDER BY and frame added, as PostgreSQL copies them. DataFusion dropped
/// the reference, and with it the PARTITION BY: the sums ran across
/// partitions. (What PostgreSQL refuses, a PARTITION BY of its own, an
/// ORDER BY where the other has one, or copying a window with a frame, is
/// not refused here: the window's own clause wins.)
#[derive(Debug)]
pub struct WindowReferences;

impl SqlStatementRewriteRule for WindowReferences {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        struct Visitor;
        impl VisitorMut for Visitor {
            type Break = ();
            fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
                copy_window_references(&mut query.body);
                ControlFlow::Continue(())
            }
        }
        let _ = stmt.visit(&mut Visitor);
        stmt
    }
}

fn copy_window_references(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { left, right, .. } => {
            copy_window_references(left);
            copy_window_references(right);
            return;
        }
        _ => return,
    };
    let mut named: Vec<(Ident, WindowSpec)> = Vec::new();
    for NamedWindowDefinition(name, definition) in &mut select.named_window {
        if let NamedWindowExpr::WindowSpec(spec) = definition {
            inherit(spec, &named);
            named.push((name.clone(), spec.clone()));
        }
    }
    let _ = visit_expressions_mut(&mut select.projection, |expr| {
        if let Expr::Function(Function {
            over: Some(WindowType::WindowSpec(spec)),
            ..
        }) = expr
        {
            inherit(spec, &named);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `spec` with what the window it names (one of `named`) defines.
fn inherit(spec: &mut WindowSpec, named: &[(Ident, WindowSpec)]) {
    let Some(name) = &spec.window_name else {
        return;
    };
    let Some((_, base)) = named.iter().find(|(n, _)| n.value == name.value) else {
        return;
    };
    spec.window_name = None;
    if spec.partition_by.is_empty() {
        spec.partition_by = base.partition_by.clone();
    }
    if spec.order_by.is_empty() {
        spec.order_by = base.order_by.clone();
    }
}

/// `U&'d\0061t\+000061'`, a string with Unicode escapes, as the string it
/// spells (the parser decoded it; DataFusion refused the literal).
#[derive(Debug)]
pub struct UnicodeStrings;

impl SqlStatementRewriteRule for UnicodeStrings {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut stmt, |expr| {
            if let Expr::Value(value) = expr {
                if let Value::UnicodeStringLiteral(text) = &mut value.value {
                    value.value = Value::SingleQuotedString(std::mem::take(text));
                }
            }
            ControlFlow::<()>::Continue(())
        });
        stmt
    }
}

/// `FETCH FIRST n ROWS ONLY` (the SQL standard's LIMIT) as `LIMIT n`;
/// `FETCH FIRST ROW ONLY` is one row. `WITH TIES` and `PERCENT` are left
/// for DataFusion to refuse (0A000).
#[derive(Debug)]
pub struct FetchFirstAsLimit;

impl SqlStatementRewriteRule for FetchFirstAsLimit {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        struct Visitor;
        impl VisitorMut for Visitor {
            type Break = ();
            fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
                let plain = query
                    .fetch
                    .as_ref()
                    .is_some_and(|fetch| !fetch.with_ties && !fetch.percent);
                if !plain {
                    return ControlFlow::Continue(());
                }
                let offset = match query.limit_clause.take() {
                    None => None,
                    Some(LimitClause::LimitOffset {
                        limit: None,
                        offset,
                        limit_by,
                    }) if limit_by.is_empty() => offset,
                    // LIMIT and FETCH together is a syntax error in PostgreSQL;
                    // DataFusion reports it.
                    Some(other) => {
                        query.limit_clause = Some(other);
                        return ControlFlow::Continue(());
                    }
                };
                let count = query
                    .fetch
                    .take()
                    .and_then(|fetch| fetch.quantity)
                    .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(count),
                    offset,
                    limit_by: Vec::new(),
                });
                ControlFlow::Continue(())
            }
        }
        let _ = stmt.visit(&mut Visitor);
        stmt
    }
}

/// An explicit cast to `varchar(n)` or `char(n)` cuts the string to `n`
/// characters, as in PostgreSQL (DataFusion ignores the length); a
/// `char(n)` is a value of that type (`sql::bpchar`). `char` alone is
/// `char(1)`.
#[derive(Debug)]
pub struct SizedStringCasts;

impl SqlStatementRewriteRule for SizedStringCasts {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        rewrite_casts(&mut stmt, |inner, data_type| {
            let length = |l: &Option<CharacterLength>| match l {
                Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
                _ => None,
            };
            let (n, is_char) = match data_type {
                DataType::Varchar(l) | DataType::CharacterVarying(l) | DataType::CharVarying(l) => {
                    (length(l)?, false)
                }
                DataType::Char(l) | DataType::Character(l) => (length(l).unwrap_or(1), true),
                _ => return None,
            };
            Some(match is_char {
                true => format!("bpchar(CAST(({inner}) AS TEXT), {n})"),
                false => format!("left(CAST(({inner}) AS TEXT), {n})"),
            })
        });
        stmt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(rule: &dyn SqlStatementRewriteRule, sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rule.rewrite(statements.remove(0)).to_string()
    }

    #[test]
    fn quantified_subqueries_become_in_or_get_their_own_name() {
        let rule = QuantifiedSubqueries;
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t WHERE a = ANY (SELECT b FROM u)"),
            "SELECT a FROM t WHERE a IN (SELECT b FROM u)"
        );
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t WHERE a <> ALL (SELECT b FROM u)"),
            "SELECT a FROM t WHERE a NOT IN (SELECT b FROM u)"
        );
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t WHERE a > ALL (SELECT a FROM t)"),
            "SELECT a FROM t WHERE a > ALL(SELECT * FROM (SELECT a FROM t) AS __sf_quantified_1)"
        );
        // An array is not a subquery: left alone.
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t WHERE a > ALL (ARRAY[1, 2])"),
            "SELECT a FROM t WHERE a > ALL(ARRAY[1, 2])"
        );
    }

    #[test]
    fn exists_in_a_select_list_counts() {
        let rule = SubqueryTestsInSelectList;
        assert_eq!(
            rewritten(
                &rule,
                "SELECT EXISTS (SELECT 1 FROM t WHERE t.a = u.a) FROM u"
            ),
            "SELECT ((SELECT count(*) FROM t WHERE t.a = u.a) > 0) AS \"exists\" FROM u"
        );
        assert_eq!(
            rewritten(&rule, "SELECT NOT EXISTS (SELECT a FROM t LIMIT 1) AS e"),
            "SELECT ((SELECT count(*) FROM (SELECT a FROM t LIMIT 1) AS __sf_exists) = 0) AS e"
        );
        // In WHERE, DataFusion plans EXISTS itself.
        let sql = "SELECT a FROM u WHERE EXISTS (SELECT 1 FROM t)";
        assert_eq!(rewritten(&rule, sql), sql);
    }

    #[test]
    fn in_a_select_list_lists() {
        let rule = SubqueryTestsInSelectList;
        assert_eq!(
            rewritten(
                &rule,
                "SELECT u.a IN (SELECT b FROM t WHERE t.c = u.c) FROM u"
            ),
            "SELECT pg_in_array((SELECT array_agg(b) FROM t WHERE t.c = u.c), u.a) FROM u"
        );
        assert_eq!(
            rewritten(&rule, "SELECT a NOT IN (SELECT 1 UNION SELECT 2)"),
            "SELECT NOT pg_in_array((SELECT array_agg(__sf_in.v) FROM (SELECT 1 UNION SELECT 2) AS __sf_in (v)), a)"
        );
        // In WHERE, DataFusion plans IN itself.
        let sql = "SELECT a FROM u WHERE a IN (SELECT b FROM t)";
        assert_eq!(rewritten(&rule, sql), sql);
    }

    #[test]
    fn fetch_first_is_limit() {
        let rule = FetchFirstAsLimit;
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t ORDER BY a FETCH FIRST 2 ROWS ONLY"),
            "SELECT a FROM t ORDER BY a LIMIT 2"
        );
        assert_eq!(
            rewritten(&rule, "SELECT a FROM t OFFSET 1 ROWS FETCH NEXT ROW ONLY"),
            "SELECT a FROM t LIMIT 1 OFFSET 1 ROWS"
        );
        let ties = "SELECT a FROM t ORDER BY a FETCH FIRST 2 ROWS WITH TIES";
        assert_eq!(rewritten(&rule, ties), ties);
    }

    #[test]
    fn sized_string_casts_cut_and_pad() {
        let rule = SizedStringCasts;
        assert_eq!(
            rewritten(&rule, "SELECT x::varchar(3)"),
            "SELECT left(CAST((x) AS TEXT), 3)"
        );
        assert_eq!(
            rewritten(&rule, "SELECT CAST(x AS char)"),
            "SELECT bpchar(CAST((x) AS TEXT), 1)"
        );
        assert_eq!(rewritten(&rule, "SELECT x::varchar"), "SELECT x::VARCHAR");
    }
}
