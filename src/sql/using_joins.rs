//! `FULL` and `RIGHT JOIN ... USING (k)` as PostgreSQL reads them: the
//! merged column `k` is `COALESCE(left.k, right.k)`, so a row only the
//! right side has keeps its key. DataFusion took `k` from the left side
//! alone: `SELECT *` showed a NULL key for those rows, and `k` in WHERE
//! was ambiguous.
//!
//! In a SELECT whose FROM is one such join of two named relations, an
//! unqualified `k` in the select list, WHERE, GROUP BY and HAVING becomes
//! the COALESCE (named `k` in the select list), and `*` becomes the merged
//! columns, then each side's other columns, as PostgreSQL orders them.
//! An expression holding a subquery is left as it is (its own columns may
//! be named `k`); so are other joins (INNER and LEFT ones already give the
//! left side's key, which is the merged one).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, ExcludeSelectItem, Expr, GroupByExpr, Ident, JoinConstraint,
    JoinOperator, ObjectName, Query, Select, SelectItem, SelectItemQualifiedWildcardKind,
    Statement, TableFactor, Visit, VisitMut, Visitor, VisitorMut, WildcardAdditionalOptions,
};

use super::catalog_queries::relation_ident;
use super::ddl::ident_name;
use super::rewrite::parse_expr;

/// Rewrites every SELECT of `stmt` joining two relations with `FULL` or
/// `RIGHT JOIN ... USING` (see the module header).
pub fn merged_using_columns(stmt: &mut Statement) {
    let _ = stmt.visit(&mut UsingVisitor);
}

struct UsingVisitor;

impl VisitorMut for UsingVisitor {
    type Break = ();

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        rewrite_select(select);
        ControlFlow::Continue(())
    }
}

fn rewrite_select(select: &mut Select) {
    let [from] = select.from.as_slice() else {
        return;
    };
    let [join] = from.joins.as_slice() else {
        return;
    };
    let (JoinOperator::FullOuter(JoinConstraint::Using(columns))
    | JoinOperator::RightOuter(JoinConstraint::Using(columns))
    | JoinOperator::Right(JoinConstraint::Using(columns))) = &join.join_operator
    else {
        return;
    };
    let (Some(left), Some(right)) = (relation_name(&from.relation), relation_name(&join.relation))
    else {
        return;
    };
    let Some(columns) = columns
        .iter()
        .map(|c| match c.0.as_slice() {
            [part] => part.as_ident().cloned(),
            _ => None,
        })
        .collect::<Option<Vec<Ident>>>()
    else {
        return;
    };
    let merged =
        |column: &Ident| parse_expr(&format!("COALESCE({left}.{column}, {right}.{column})"));
    let Ok(merged_columns) = columns.iter().map(merged).collect::<Result<Vec<Expr>, _>>() else {
        return;
    };
    let find = |ident: &Ident| {
        let name = ident_name(ident);
        columns
            .iter()
            .position(|c| ident_name(c) == name)
            .map(|i| merged_columns[i].clone())
    };
    let replace = |expr: &mut Expr| {
        if holds_subquery(expr) {
            return;
        }
        let _ = visit_expressions_mut(expr, |e| {
            if let Expr::Identifier(ident) = e {
                if let Some(merged) = find(ident) {
                    *e = Expr::Nested(Box::new(merged));
                }
            }
            ControlFlow::<()>::Continue(())
        });
    };
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(options) if options == WildcardAdditionalOptions::default() => {
                for (column, merged) in columns.iter().zip(&merged_columns) {
                    projection.push(SelectItem::ExprWithAlias {
                        expr: merged.clone(),
                        alias: column.clone(),
                    });
                }
                for side in [&left, &right] {
                    let exclude = columns.iter().map(|c| ObjectName::from(vec![c.clone()]));
                    projection.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![
                            side.clone()
                        ])),
                        WildcardAdditionalOptions {
                            opt_exclude: Some(ExcludeSelectItem::Multiple(exclude.collect())),
                            ..Default::default()
                        },
                    ));
                }
            }
            SelectItem::UnnamedExpr(mut expr) => {
                // A merged column keeps its name.
                let name = match &expr {
                    Expr::Identifier(ident) if find(ident).is_some() => Some(ident.clone()),
                    _ => None,
                };
                replace(&mut expr);
                projection.push(match name {
                    Some(alias) => SelectItem::ExprWithAlias { expr, alias },
                    None => SelectItem::UnnamedExpr(expr),
                });
            }
            SelectItem::ExprWithAlias { mut expr, alias } => {
                replace(&mut expr);
                projection.push(SelectItem::ExprWithAlias { expr, alias });
            }
            other => projection.push(other),
        }
    }
    select.projection = projection;
    if let Some(selection) = &mut select.selection {
        replace(selection);
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        exprs.iter_mut().for_each(&replace);
    }
    if let Some(having) = &mut select.having {
        replace(having);
    }
}

/// The name a relation's columns are qualified with: its alias, or its
/// table's name.
fn relation_name(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Derived {
            alias: Some(alias), ..
        } => Some(alias.name.clone()),
        table => relation_ident(table).cloned(),
    }
}

/// Whether `expr` holds a subquery.
pub(super) fn holds_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    expr.visit(&mut Finder).is_break()
}
