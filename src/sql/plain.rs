//! Statements the parse-time rewrite rules leave as they are.
//!
//! Each rule `SqlEngine::parse` runs walks the whole statement for what it
//! rewrites: a cast, a function call, a subquery, `ANY`/`ALL`, a
//! qualified wildcard, a table function, `FETCH FIRST`, `COLLATE`, a PostgreSQL
//! `OPERATOR(...)`, an array. The statements OLTP clients send most
//! (`SELECT v FROM t WHERE k = 1`, `INSERT INTO t VALUES (1, 'x')`,
//! `UPDATE t SET v = v + 1 WHERE k = 2`) hold none of these, and walking
//! them fifteen times took a sixth of a busy server's CPU. [`is_plain`]
//! recognises them in one walk, and they are not rewritten.
//!
//! The walk admits only what no rule touches (identifiers, literals,
//! placeholders, ordinary operators), so a rule added later keeps working
//! unless it rewrites one of those; the unit test runs every rule over
//! plain statements and checks they come out unchanged.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, ObjectName, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    UnaryOperator, Value, Visit, Visitor,
};

/// Whether `stmt` is a query, INSERT, UPDATE or DELETE of user tables
/// whose expressions are only columns, literals, placeholders and
/// ordinary operators: no rewrite rule changes it.
pub fn is_plain(stmt: &Statement) -> bool {
    let dml = matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    );
    dml && stmt.visit(&mut PlainVisitor).is_continue()
}

struct PlainVisitor;

impl Visitor for PlainVisitor {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // A write under a WITH (`parse_rules::InsertUnderWith`).
        let write = matches!(
            query.body.as_ref(),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
        );
        match query.fetch.is_some() || write {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // A qualified wildcard qualifies WHERE's columns.
        let qualified = select
            .projection
            .iter()
            .any(|item| matches!(item, SelectItem::QualifiedWildcard(..)));
        match qualified {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        // A table function's schema is stripped (`public.generate_series`).
        match factor {
            TableFactor::Table { args: Some(_), .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        // The catalog's tables take the compatibility parser's path.
        match super::engine::is_system_relation(relation) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::UnaryOp {
                op: UnaryOperator::Minus | UnaryOperator::Plus | UnaryOperator::Not,
                ..
            }
            | Expr::Nested(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::InList { .. }
            | Expr::Between { .. } => ControlFlow::Continue(()),
            // (`parse_rules::UnicodeStrings` spells `U&'...'` otherwise.)
            Expr::Value(value) if !matches!(value.value, Value::UnicodeStringLiteral(_)) => {
                ControlFlow::Continue(())
            }
            // `^`: a unary minus before it is rewritten (`operators::PgOperators`).
            Expr::BinaryOp { op, .. }
                if !matches!(
                    op,
                    BinaryOperator::PGCustomBinaryOperator(_) | BinaryOperator::PGExp
                ) =>
            {
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Break(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::is_plain;

    fn statement(sql: &str) -> datafusion::sql::sqlparser::ast::Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn what_oltp_clients_send_is_plain_and_no_rule_changes_it() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 42",
            "SELECT * FROM t WHERE k = $1",
            "SELECT *, a FROM t WHERE k = 1",
            "SELECT current_schema",
            "SELECT a, b AS c FROM t WHERE k = 1 AND (v > 2 OR v IS NULL) ORDER BY a LIMIT 5",
            "SELECT a FROM t WHERE k IN (1, 2, 3) AND v BETWEEN -1 AND 10",
            "INSERT INTO t VALUES (1, 'x', NULL), ($1, $2, true)",
            "INSERT INTO t (a, b) VALUES (1, 2) RETURNING a",
            "UPDATE pgbench_accounts SET abalance = abalance + -42 WHERE aid = 7",
            "DELETE FROM t WHERE k = 3",
        ] {
            let stmt = statement(sql);
            assert!(is_plain(&stmt), "{sql}");
            let rewritten = super::super::engine::user_rules()
                .iter()
                .fold(stmt.clone(), |stmt, rule| rule.rewrite(stmt));
            assert_eq!(rewritten, stmt, "{sql}");
        }
    }

    #[test]
    fn what_a_rule_rewrites_is_not_plain() {
        for sql in [
            "SELECT '2024-01-01'::timestamp",
            "SELECT timestamp '2024-01-01 10:00'",
            "SELECT a FROM t WHERE k = ANY($1)",
            "SELECT a FROM t WHERE k > ALL (SELECT k FROM u)",
            "SELECT EXISTS (SELECT 1 FROM t)",
            "SELECT t.* FROM t WHERE k = 1",
            "SELECT a FROM t FETCH FIRST 2 ROWS ONLY",
            "SELECT current_user",
            "SELECT * FROM public.generate_series(1, 3)",
            "SELECT version()",
            "SELECT a COLLATE \"C\" FROM t",
            "SELECT ARRAY[1, 2]",
            "SELECT a OPERATOR(pg_catalog.~) 'x' FROM t",
            "SELECT relname FROM pg_class WHERE oid = 1",
            "SELECT 't'::regclass",
            "INSERT INTO t VALUES (now())",
            "SELECT |/ v FROM t WHERE k = 1",
            "CREATE TABLE t (k int PRIMARY KEY)",
        ] {
            assert!(!is_plain(&statement(sql)), "{sql}");
        }
    }
}
