//! Operators as PostgreSQL reads them where sqlparser or DataFusion
//! reads them otherwise ([`PgOperators`], a parse-time rewrite rule).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, Statement, UnaryOperator,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::rewrite::parse_expr;

/// Operators as PostgreSQL reads them where the parser or DataFusion
/// differs:
/// - row comparisons (`(a, b) = (1, 2)`, `(a, b) < (c, d)`) and `(a, b)
///   IS [NOT] NULL`, element by element with NULLs unknown: DataFusion
///   compared the two rows as values, so `(1, NULL) = (1, 2)` was false
///   (PostgreSQL: NULL, and `NOT` of it is not true) and `(NULL, NULL) IS
///   NULL` false. `=` is every pair equal, `<>` some pair different, `<`
///   (and the others) the first pair that differs decides,
///   lexicographically;
/// - a unary minus binds tighter than `^` (`-2 ^ 2` is 4, the parser read
///   `-(2 ^ 2)`), and `-interval '1 day 2 hours'` negates the whole
///   interval (DataFusion negated the literal's first part only);
/// - the prefix operators DataFusion lacks, as the functions they are:
///   `|/ x` is `sqrt(x)`, `||/ x` `cbrt(x)`, `@ x` `abs(x)`, and `~ x`
///   (bitwise not) `-1 - x`.
#[derive(Debug)]
pub struct PgOperators;

impl SqlStatementRewriteRule for PgOperators {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut stmt, |expr| {
            let rewritten = row_comparison(expr)
                .or_else(|| unary_minus(expr))
                .or_else(|| prefix_function(expr));
            if let Some(rewritten) = rewritten {
                *expr = rewritten;
            }
            ControlFlow::<()>::Continue(())
        });
        stmt
    }
}

/// A prefix operator DataFusion lacks, as its function.
fn prefix_function(expr: &Expr) -> Option<Expr> {
    let Expr::UnaryOp { op, expr: operand } = expr else {
        return None;
    };
    let sql = match op {
        // PostgreSQL's `|/` is of double precision only.
        UnaryOperator::PGSquareRoot => format!("sqrt(CAST({operand} AS DOUBLE PRECISION))"),
        UnaryOperator::PGCubeRoot => format!("cbrt({operand})"),
        UnaryOperator::PGAbs => format!("abs({operand})"),
        UnaryOperator::BitwiseNot => format!("(-1 - ({operand}))"),
        _ => return None,
    };
    // Printed by the parser itself, so it parses.
    parse_expr(&sql).ok()
}

/// `-x ^ y` as `(-x) ^ y` (down the left of a chain of `^`), `-interval
/// '...'` as `-(interval '...')`.
fn unary_minus(expr: &Expr) -> Option<Expr> {
    let Expr::UnaryOp {
        op: UnaryOperator::Minus,
        expr: operand,
    } = expr
    else {
        return None;
    };
    fn negate_leftmost(expr: &Expr) -> Expr {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGExp,
                right,
            } => Expr::BinaryOp {
                left: Box::new(negate_leftmost(left)),
                op: BinaryOperator::PGExp,
                right: right.clone(),
            },
            other => Expr::Nested(Box::new(Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: Box::new(other.clone()),
            })),
        }
    }
    match operand.as_ref() {
        Expr::BinaryOp {
            op: BinaryOperator::PGExp,
            ..
        } => Some(negate_leftmost(operand)),
        Expr::Interval(_) => Some(Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(Expr::Nested(operand.clone())),
        }),
        _ => None,
    }
}

fn row_comparison(expr: &Expr) -> Option<Expr> {
    let and_or = |parts: Vec<String>, op: &str| format!("({})", parts.join(op));
    let sql = match expr {
        Expr::IsNull(row) | Expr::IsNotNull(row) => {
            let Expr::Tuple(items) = row.as_ref() else {
                return None;
            };
            let test = match expr {
                Expr::IsNull(_) => "IS NULL",
                _ => "IS NOT NULL",
            };
            and_or(
                items.iter().map(|i| format!("({i}) {test}")).collect(),
                " AND ",
            )
        }
        Expr::BinaryOp { left, op, right } => {
            let (Expr::Tuple(l), Expr::Tuple(r)) = (left.as_ref(), right.as_ref()) else {
                return None;
            };
            if l.len() != r.len() || l.is_empty() {
                return None;
            }
            let pairs = |op: &str| -> Vec<String> {
                l.iter()
                    .zip(r)
                    .map(|(a, b)| format!("({a}) {op} ({b})"))
                    .collect()
            };
            match op {
                BinaryOperator::Eq => and_or(pairs("="), " AND "),
                BinaryOperator::NotEq => and_or(pairs("<>"), " OR "),
                BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq => {
                    // a1 < b1 OR (a1 = b1 AND (a2 < b2 OR (... an <= bn)))
                    let strict = match op {
                        BinaryOperator::Lt | BinaryOperator::LtEq => "<",
                        _ => ">",
                    };
                    let (last_l, last_r) = (&l[l.len() - 1], &r[r.len() - 1]);
                    let mut sql = format!("({last_l}) {op} ({last_r})");
                    for (a, b) in l.iter().zip(r).rev().skip(1) {
                        sql = format!("(({a}) {strict} ({b}) OR (({a}) = ({b}) AND {sql}))");
                    }
                    sql
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    parse_expr(&sql).ok()
}
