//! Set-returning functions in FROM whose arguments read an earlier FROM
//! item, which PostgreSQL runs once per row of it (a LATERAL reference,
//! implicit for a function): `FROM t, jsonb_array_elements(t.doc->'tags')
//! AS e`, `FROM t CROSS JOIN LATERAL unnest(t.arr) AS x`, `FROM t LEFT
//! JOIN LATERAL jsonb_each(t.doc) AS kv ON true`. DataFusion plans such a
//! reference but cannot run it.
//!
//! Each becomes a join with a derived table that expands the function
//! once per distinct value of the columns its arguments read:
//!
//! ```sql
//! FROM t, (SELECT unnest(...(k.lateral1_k1)) AS value, k.lateral1_k1
//!          FROM (SELECT DISTINCT t.doc AS lateral1_k1 FROM t) AS k) AS e
//! WHERE t.doc IS NOT DISTINCT FROM e.lateral1_k1
//! ```
//!
//! which is the same set of rows: each row of `t` meets the expansion of
//! its own argument values, and a NULL argument (no rows) none. The
//! earlier FROM item is read twice. The key columns are left out of `*`.
//! A `LEFT JOIN LATERAL ... ON cond` keeps its rows without expansion.
//! The function's one column is also named by its alias alone, as in
//! PostgreSQL (`SELECT e FROM t, jsonb_array_elements(...) AS e`).
//!
//! Handled: the functions planned as a select list (the JSON ones, by
//! `sql::json`'s rewrite into `LATERAL (SELECT ...)`, `unnest` of one
//! array and `generate_series`), and a LATERAL subquery with a LIMIT
//! that reads the outer row through equalities ([`ranked`]: the first
//! rows per outer row, as a window over all of them). Other LATERAL
//! subqueries with a FROM of their own are left to DataFusion (which
//! decorrelates some, and refuses others with 0A000), as is WITH
//! ORDINALITY.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, ExcludeSelectItem, Expr, GroupByExpr,
    Ident, JoinConstraint, JoinOperator, LimitClause, ObjectName, OrderByExpr, OrderByKind, Query,
    Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias,
    TableFactor, TableWithJoins, Value, Visit, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

use super::ddl::ident_name;
use super::rewrite::{parse_expr, parse_query};
use super::subqueries::split_conjunction;

/// Rewrites the set-returning functions in FROM of `stmt` that read an
/// earlier FROM item (see the module's documentation).
pub fn lateral_functions(stmt: &mut Statement, is_aggregate: &dyn Fn(&str) -> bool) {
    struct Visitor<'a>(usize, &'a dyn Fn(&str) -> bool);
    impl VisitorMut for Visitor<'_> {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let Query { body, order_by, .. } = query;
            if let SetExpr::Select(select) = body.as_mut() {
                let renamed = rewrite_select(select, &mut self.0, self.1);
                // The alias alone names the function's one column.
                name_single_columns(order_by, &renamed);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Visitor(0, is_aggregate));
}

/// A function in FROM planned as a select list: its items (each named)
/// and its alias.
struct Expansion {
    items: Vec<SelectItem>,
    alias: TableAlias,
}

/// Rewrites the lateral functions of `select`'s FROM; `count` numbers
/// them in the statement. Returns, by alias, the one column of each
/// rewritten function that has a single one (for [`name_single_columns`]).
fn rewrite_select(
    select: &mut Select,
    count: &mut usize,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let mut renamed = BTreeMap::new();
    // The key columns of each rewritten function, by its alias.
    let mut excluded: Vec<(String, Vec<Ident>)> = Vec::new();
    let mut conditions = Vec::new();
    for i in 0..select.from.len() {
        for j in 0..=select.from[i].joins.len() {
            let factor = match j {
                0 => &select.from[i].relation,
                _ => &select.from[i].joins[j - 1].relation,
            };
            if i + j > 0 && matches!(factor, TableFactor::Derived { lateral: true, .. }) {
                let earlier = earlier_names(&select.from, i, j);
                if let Some(ranked) = ranked(factor, &earlier, *count + 1, is_aggregate) {
                    *count += 1;
                    place(select, i, j, ranked, &mut excluded, &mut conditions);
                    continue;
                }
            }
            let factor = match j {
                0 => &mut select.from[i].relation,
                _ => &mut select.from[i].joins[j - 1].relation,
            };
            let Some(expansion) = expansion(factor) else {
                continue;
            };
            let refs = outer_references(&expansion.items);
            if refs.is_empty() {
                // DataFusion's own UNNEST in FROM does not name its column
                // by the alias (`SELECT t FROM unnest(a) AS t`), and knows
                // no WITH ORDINALITY.
                let ordinality = matches!(
                    factor,
                    TableFactor::Table {
                        with_ordinality: true,
                        ..
                    } | TableFactor::Function {
                        with_ordinality: true,
                        ..
                    }
                );
                if ordinality || matches!(factor, TableFactor::UNNEST { .. }) {
                    if let Some(derived) = derived(expansion) {
                        *factor = derived;
                    }
                }
                continue;
            }
            if i == 0 && j == 0 {
                // A reference to an enclosing query's row: DataFusion's.
                continue;
            }
            // The FROM items before this one, and this one's joins before.
            let mut earlier: Vec<TableWithJoins> = select.from[..i].to_vec();
            if j > 0 {
                earlier.push(TableWithJoins {
                    relation: select.from[i].relation.clone(),
                    joins: select.from[i].joins[..j - 1].to_vec(),
                });
            }
            *count += 1;
            let Some(mut joined) = joined(expansion, &refs, &earlier, *count) else {
                continue;
            };
            if let Some(column) = joined.single_column.take() {
                renamed.insert(joined.alias.clone(), column);
            }
            place(select, i, j, joined, &mut excluded, &mut conditions);
        }
    }
    if excluded.is_empty() {
        return renamed;
    }
    for condition in conditions {
        select.selection = Some(match select.selection.take() {
            Some(selection) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(selection))),
                op: BinaryOperator::And,
                right: Box::new(condition),
            },
            None => condition,
        });
    }
    for item in &mut select.projection {
        match item {
            SelectItem::Wildcard(options) => {
                exclude(options, excluded.iter().flat_map(|(_, keys)| keys));
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                options,
            ) => {
                let qualifier = name.0.last().and_then(|p| p.as_ident()).map(ident_name);
                let keys = excluded
                    .iter()
                    .filter(|(alias, _)| Some(alias) == qualifier.as_ref());
                exclude(options, keys.flat_map(|(_, keys)| keys));
            }
            // The column keeps the alias as its name.
            SelectItem::UnnamedExpr(Expr::Identifier(ident))
                if renamed.contains_key(&ident_name(ident)) =>
            {
                let alias = ident.clone();
                let mut expr = Expr::Identifier(ident.clone());
                name_single_columns(&mut expr, &renamed);
                *item = SelectItem::ExprWithAlias { expr, alias };
            }
            _ => {}
        }
    }
    name_single_columns(&mut select.projection, &renamed);
    name_single_columns(&mut select.selection, &renamed);
    name_single_columns(&mut select.having, &renamed);
    renamed
}

/// Puts `joined` in the place of FROM item `i`'s join `j` (0: the item
/// itself), its condition in the join's or (for an item) in `conditions`
/// for the WHERE clause, and its keys in `excluded`.
fn place(
    select: &mut Select,
    i: usize,
    j: usize,
    joined: Joined,
    excluded: &mut Vec<(String, Vec<Ident>)>,
    conditions: &mut Vec<Expr>,
) {
    excluded.push((joined.alias, joined.keys));
    match j {
        0 => {
            select.from[i].relation = joined.factor;
            conditions.push(joined.condition);
        }
        _ => {
            let join = &mut select.from[i].joins[j - 1];
            join.relation = joined.factor;
            join.join_operator = with_condition(&join.join_operator, joined.condition);
        }
    }
}

/// The names the FROM items before item `i`'s join `j` are referred to by.
fn earlier_names(from: &[TableWithJoins], i: usize, j: usize) -> Vec<String> {
    let mut earlier: Vec<String> = from[..i].iter().flat_map(names).collect();
    if j > 0 {
        let item = &from[i];
        let factors = std::iter::once(&item.relation);
        let factors = factors.chain(item.joins[..j - 1].iter().map(|join| &join.relation));
        earlier.extend(factors.filter_map(factor_name));
    }
    earlier
}

/// A LATERAL subquery with a LIMIT (the first rows of each outer row:
/// `LATERAL (SELECT ... FROM o WHERE o.uid = u.id ORDER BY o.at DESC
/// LIMIT 3)`), which DataFusion cannot plan, as a derived table of every
/// outer key's rows numbered in that order, joined on the key and the
/// number:
///
/// ```sql
/// JOIN (SELECT ..., o.uid AS __lateral1_k1, row_number() OVER (PARTITION
///       BY o.uid ORDER BY o.at DESC) AS __lateral1_rn FROM o) AS x
///   ON u.id = x.__lateral1_k1 AND x.__lateral1_rn <= 3
/// ```
///
/// Only where the subquery reads the outer row in equalities of its
/// WHERE clause's top-level ANDs (an inner expression = a qualified
/// column of an earlier FROM item), and selects rows, not groups (no
/// call `is_aggregate` names); others stay DataFusion's (0A000).
/// `earlier` names the earlier FROM items.
fn ranked(
    factor: &TableFactor,
    earlier: &[String],
    n: usize,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Option<Joined> {
    let TableFactor::Derived {
        lateral: true,
        subquery,
        alias: Some(alias),
        ..
    } = factor
    else {
        return None;
    };
    let (limit, offset) = match &subquery.limit_clause {
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() && subquery.fetch.is_none() && subquery.with.is_none() => {
            (limit.as_ref(), offset.as_ref().map(|o| &o.value))
        }
        _ => return None,
    };
    let inner = selected_rows(subquery, is_aggregate)?;
    let inner_names: Vec<String> = inner.from.iter().flat_map(names).collect();
    let is_outer = |e: &Expr| match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            let qualifier = ident_name(&parts[0]);
            earlier.contains(&qualifier) && !inner_names.contains(&qualifier)
        }
        _ => false,
    };
    let (keys, rest) = outer_keys(inner.selection.as_ref(), &is_outer)?;
    let order_by = window_order(subquery, inner)?;
    if reads(&inner.projection, &is_outer) || reads(&order_by, &is_outer) {
        return None;
    }
    let key = |k: usize| format!("__lateral{n}_k{k}");
    let number = format!("__lateral{n}_rn");
    let keyed = keys
        .iter()
        .enumerate()
        .map(|(k, (inner, _))| format!("{inner} AS {}", key(k + 1)));
    let items = comma_list(
        inner
            .projection
            .iter()
            .map(ToString::to_string)
            .chain(keyed),
    );
    let partition = comma_list(keys.iter().map(|(inner, _)| inner));
    let order = match order_by.is_empty() {
        true => String::new(),
        false => format!(" ORDER BY {}", comma_list(&order_by)),
    };
    let from = comma_list(&inner.from);
    let filter = match rest.is_empty() {
        true => String::new(),
        false => {
            let rest: Vec<String> = rest.iter().map(|c| format!("({c})")).collect();
            format!(" WHERE {}", rest.join(" AND "))
        }
    };
    let sql = format!(
        "SELECT {items}, row_number() OVER (PARTITION BY {partition}{order}) AS {number} \
         FROM {from}{filter}"
    );
    // Joined on the keys, and the numbers the LIMIT and OFFSET keep.
    let name = &alias.name;
    let mut condition: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(k, (_, outer))| format!("{outer} = {name}.{}", key(k + 1)))
        .collect();
    let skipped = offset.map_or("0".to_string(), |o| format!("({o})"));
    if offset.is_some() {
        condition.push(format!("{name}.{number} > {skipped}"));
    }
    if let Some(limit) = limit {
        condition.push(format!("{name}.{number} <= {skipped} + ({limit})"));
    }
    let mut excluded: Vec<Ident> = (1..=keys.len()).map(|k| Ident::new(key(k))).collect();
    excluded.push(Ident::new(number));
    Some(Joined {
        factor: TableFactor::Derived {
            lateral: false,
            subquery: parse_query(&sql).ok()?,
            alias: Some(alias.clone()),
            sample: None,
        },
        condition: parse_expr(&condition.join(" AND ")).ok()?,
        keys: excluded,
        alias: ident_name(name),
        single_column: None,
    })
}

/// `subquery`'s SELECT, if it selects rows of a FROM of its own, not
/// groups (no GROUP BY, HAVING, DISTINCT or call `is_aggregate` names).
fn selected_rows<'a>(
    subquery: &'a Query,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Option<&'a Select> {
    let SetExpr::Select(select) = subquery.body.as_ref() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let aggregates = visit_expressions(&select.projection, |e| match e {
        Expr::Function(f) if is_aggregate(&f.name.to_string().to_lowercase()) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    let rows = !select.from.is_empty()
        && !grouped
        && !aggregates.is_break()
        && select.having.is_none()
        && select.distinct.is_none();
    rows.then_some(select)
}

/// The conjuncts of `selection` that equal an inner expression to an
/// outer column (as `(inner, outer)`), and the others; `None` if none
/// does, or another reads the outer row.
type Keys = (Vec<(Expr, Expr)>, Vec<Expr>);

fn outer_keys(selection: Option<&Expr>, is_outer: &dyn Fn(&Expr) -> bool) -> Option<Keys> {
    let mut conjuncts = Vec::new();
    if let Some(selection) = selection {
        split_conjunction(selection.clone(), &mut conjuncts);
    }
    let (mut keys, mut rest) = (Vec::new(), Vec::new());
    for conjunct in conjuncts {
        let mut bare = &conjunct;
        while let Expr::Nested(inner) = bare {
            bare = inner;
        }
        let pair = match bare {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => match (is_outer(left), is_outer(right)) {
                (false, true) if !reads(left, is_outer) => Some((*left.clone(), *right.clone())),
                (true, false) if !reads(right, is_outer) => Some((*right.clone(), *left.clone())),
                _ => None,
            },
            _ => None,
        };
        match pair {
            Some(pair) => keys.push(pair),
            None if reads(&conjunct, is_outer) => return None,
            None => rest.push(conjunct),
        }
    }
    (!keys.is_empty()).then_some((keys, rest))
}

/// `subquery`'s ORDER BY as a window's: a select list alias or position
/// (`ORDER BY 2`) replaced by its expression, which a window would not
/// see (and would read `2` as a constant). `None` for a position of `*`.
fn window_order(subquery: &Query, select: &Select) -> Option<Vec<OrderByExpr>> {
    let mut order_by = match subquery.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs.clone(),
        Some(OrderByKind::All(_)) => return None,
        None => Vec::new(),
    };
    for item in &mut order_by {
        let selected = match &item.expr {
            Expr::Identifier(name) => select.projection.iter().find_map(|p| match p {
                SelectItem::ExprWithAlias { expr, alias } if alias == name => Some(expr),
                _ => None,
            }),
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    let position: usize = n.parse().ok()?;
                    match select.projection.get(position.checked_sub(1)?)? {
                        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                            Some(expr)
                        }
                        _ => return None,
                    }
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(expr) = selected {
            item.expr = expr.clone();
        }
    }
    Some(order_by)
}

/// `items` written out, separated by commas.
fn comma_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.join(", ")
}

/// Whether an expression of `node` is one `is_outer` picks.
fn reads<V: Visit>(node: &V, is_outer: &dyn Fn(&Expr) -> bool) -> bool {
    visit_expressions(node, |e| match is_outer(e) {
        true => ControlFlow::Break(()),
        false => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `factor` as a select list, if it is a function planned as one.
fn expansion(factor: &TableFactor) -> Option<Expansion> {
    match factor {
        // The JSON functions, as `sql::json` plans them in FROM.
        TableFactor::Derived {
            lateral: true,
            subquery,
            alias: Some(alias),
            ..
        } => match subquery.body.as_ref() {
            SetExpr::Select(inner) if inner.from.is_empty() && subquery.order_by.is_none() => {
                Some(Expansion {
                    items: inner.projection.clone(),
                    alias: alias.clone(),
                })
            }
            _ => None,
        },
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality,
            ..
        } => {
            let arrays = array_exprs.iter().map(ToString::to_string).collect();
            function_items("unnest", arrays, alias, *with_ordinality)
        }
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } => {
            let args = args.args.iter().map(ToString::to_string).collect();
            function_items(&name.to_string(), args, alias, *with_ordinality)
        }
        // `LATERAL f(...)`.
        TableFactor::Function {
            name,
            args,
            alias,
            with_ordinality,
            ..
        } => {
            let args = args.iter().map(ToString::to_string).collect();
            function_items(&name.to_string(), args, alias, *with_ordinality)
        }
        _ => None,
    }
}

/// `unnest(arrays...)` or `generate_series(args...)` in FROM as a select
/// list: one column per array (zipped, as PostgreSQL zips them), named by
/// the alias's column list, else (one array) by the alias, else by the
/// function; and `ordinality` after them.
fn function_items(
    name: &str,
    args: Vec<String>,
    alias: &Option<TableAlias>,
    with_ordinality: bool,
) -> Option<Expansion> {
    let function = name.to_ascii_lowercase();
    let function = function.strip_prefix("pg_catalog.").unwrap_or(&function);
    let mut alias = alias.clone().unwrap_or_else(|| table_alias(function));
    let (calls, count) = match (function, args.len()) {
        ("unnest", 1..) => {
            let calls = args.iter().map(|a| format!("unnest({a})")).collect();
            (calls, format!("cardinality({})", args[0]))
        }
        ("generate_series", 2 | 3) => {
            // Its values counted by the series itself.
            let series = format!("generate_series({})", args.join(", "));
            (vec![series.clone()], format!("cardinality({series})"))
        }
        _ => return None,
    };
    let single = calls.len() == 1 && alias.columns.is_empty();
    let mut names: Vec<String> = (0..calls.len())
        .map(|i| match (alias.columns.get(i), single) {
            (Some(column), _) => column.name.value.clone(),
            (None, true) => alias.name.value.clone(),
            (None, false) => function.to_string(),
        })
        .collect();
    let mut items = calls;
    if with_ordinality {
        if args.len() != 1 && function == "unnest" {
            return None;
        }
        let column = alias.columns.get(names.len());
        names.push(column.map_or("ordinality".into(), |c| c.name.value.clone()));
        items.push(format!("generate_series(1, {count})"));
    }
    let items: Vec<String> = items
        .iter()
        .zip(&names)
        .map(|(item, name)| format!("{item} AS {}", Ident::new(name)))
        .collect();
    let select = parse_query(&format!("SELECT {}", items.join(", "))).ok()?;
    let SetExpr::Select(select) = *select.body else {
        return None;
    };
    alias.columns.clear();
    Some(Expansion {
        items: select.projection,
        alias,
    })
}

/// `AS name`.
pub(super) fn table_alias(name: &str) -> TableAlias {
    TableAlias {
        explicit: true,
        name: Ident::new(name),
        columns: vec![],
        at: None,
    }
}

/// `expansion` as a derived table of its own (it reads no other FROM item).
fn derived(expansion: Expansion) -> Option<TableFactor> {
    let items: Vec<String> = expansion.items.iter().map(ToString::to_string).collect();
    Some(TableFactor::Derived {
        lateral: false,
        subquery: parse_query(&format!("SELECT {}", items.join(", "))).ok()?,
        alias: Some(expansion.alias),
        sample: None,
    })
}

/// The column references in `items` (all of them: a select list without
/// FROM reads only earlier FROM items), by their text.
fn outer_references(items: &Vec<SelectItem>) -> BTreeMap<String, Expr> {
    let mut refs = BTreeMap::new();
    let _ = visit_expressions(items, |e| {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            refs.insert(e.to_string(), e.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    refs
}

/// A lateral function rewritten as a derived table joined on its keys.
struct Joined {
    factor: TableFactor,
    /// The join condition: each reference not distinct from its key.
    condition: Expr,
    /// The key columns, left out of `*`.
    keys: Vec<Ident>,
    alias: String,
    single_column: Option<String>,
}

/// The derived table expanding `expansion` once per distinct value of
/// `refs` among the rows of `earlier` (the FROM items it may read; those
/// its qualified references name, or all of them), numbered `n`.
fn joined(
    mut expansion: Expansion,
    refs: &BTreeMap<String, Expr>,
    earlier: &[TableWithJoins],
    n: usize,
) -> Option<Joined> {
    let qualifiers: Vec<String> = refs
        .values()
        .map(|r| match r {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some(ident_name(&parts[0])),
            _ => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    let sources: Vec<&TableWithJoins> = match qualifiers.is_empty() {
        true => earlier.iter().collect(),
        false => earlier
            .iter()
            .filter(|t| names(t).iter().any(|name| qualifiers.contains(name)))
            .collect(),
    };
    if sources.is_empty() {
        return None;
    }
    let source = format!("__lateral{n}");
    let key = |k: usize| format!("__lateral{n}_k{k}");
    let mut keyed = BTreeMap::new();
    let mut distinct = Vec::new();
    for (k, (text, reference)) in refs.iter().enumerate() {
        distinct.push(format!("{reference} AS {}", key(k + 1)));
        keyed.insert(
            text.clone(),
            parse_expr(&format!("{source}.{}", key(k + 1))).ok()?,
        );
    }
    // The items read the keys; the alias's column names name them.
    let mut items = Vec::new();
    let mut columns = Vec::new();
    for (i, item) in expansion.items.iter().enumerate() {
        let (mut expr, name) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), alias.clone()),
            _ => return None,
        };
        let _ = visit_expressions_mut(&mut expr, |e| {
            if let Some(key) = keyed.get(&e.to_string()) {
                *e = key.clone();
            }
            ControlFlow::<()>::Continue(())
        });
        let name = expansion
            .alias
            .columns
            .get(i)
            .map_or(name, |c| c.name.clone());
        columns.push(ident_name(&name));
        items.push(format!("{expr} AS {name}"));
    }
    let keys: Vec<String> = (1..=refs.len()).map(key).collect();
    let sources: Vec<String> = sources.iter().map(ToString::to_string).collect();
    let sql = format!(
        "SELECT {}, {} FROM (SELECT DISTINCT {} FROM {}) AS {source}",
        items.join(", "),
        keys.iter()
            .map(|k| format!("{source}.{k} AS {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        distinct.join(", "),
        sources.join(", "),
    );
    let subquery = parse_query(&sql).ok()?;
    expansion.alias.columns.clear();
    let alias = expansion.alias.name.clone();
    let conditions: Vec<String> = refs
        .values()
        .zip(&keys)
        .map(|(reference, k)| format!("{reference} IS NOT DISTINCT FROM {alias}.{k}"))
        .collect();
    let alias_name = ident_name(&alias);
    Some(Joined {
        factor: TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(expansion.alias),
            sample: None,
        },
        condition: parse_expr(&conditions.join(" AND ")).ok()?,
        keys: keys.into_iter().map(Ident::new).collect(),
        single_column: match columns.as_slice() {
            [column] if *column != alias_name => Some(column.clone()),
            _ => None,
        },
        alias: alias_name,
    })
}

/// The names the relations of `table` are referred to by (alias, or
/// table name).
fn names(table: &TableWithJoins) -> Vec<String> {
    std::iter::once(&table.relation)
        .chain(table.joins.iter().map(|j| &j.relation))
        .filter_map(factor_name)
        .collect()
}

/// The name a FROM item is referred to by (alias, or table name).
fn factor_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        }
        | TableFactor::Function {
            alias: Some(alias), ..
        } => Some(ident_name(&alias.name)),
        TableFactor::Table { name, .. } => name.0.last().and_then(|p| p.as_ident()).map(ident_name),
        _ => None,
    }
}

/// `operator` of a LATERAL join, with `condition` added to its own.
fn with_condition(operator: &JoinOperator, condition: Expr) -> JoinOperator {
    let and = |constraint: &JoinConstraint| {
        JoinConstraint::On(match constraint {
            JoinConstraint::On(on) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(on.clone()))),
                op: BinaryOperator::And,
                right: Box::new(condition.clone()),
            },
            _ => condition.clone(),
        })
    };
    match operator {
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => JoinOperator::LeftOuter(and(c)),
        JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::CrossJoin(c) => {
            JoinOperator::Inner(and(c))
        }
        // Another kind keeps DataFusion's answer (0A000).
        other => other.clone(),
    }
}

/// Leaves `keys` out of a wildcard.
fn exclude<'a>(options: &mut WildcardAdditionalOptions, keys: impl Iterator<Item = &'a Ident>) {
    let mut names: Vec<ObjectName> = match options.opt_exclude.take() {
        Some(ExcludeSelectItem::Single(name)) => vec![name],
        Some(ExcludeSelectItem::Multiple(names)) => names,
        None => Vec::new(),
    };
    names.extend(keys.map(|k| ObjectName::from(vec![k.clone()])));
    options.opt_exclude = (!names.is_empty()).then_some(ExcludeSelectItem::Multiple(names));
}

/// `alias` alone in `node`'s expressions, for a rewritten function with
/// one column named otherwise, as that column (`e` for `e.value`).
fn name_single_columns<V: VisitMut>(node: &mut V, renamed: &BTreeMap<String, String>) {
    let _ = visit_expressions_mut(node, |expr| {
        if let Expr::Identifier(ident) = expr {
            if let Some(column) = renamed.get(&ident_name(ident)) {
                *expr = Expr::CompoundIdentifier(vec![ident.clone(), Ident::new(column)]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
