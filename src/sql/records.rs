//! Whole-row references: the `t` of `SELECT to_json(t) FROM t`,
//! `json_agg(t)`, `row_to_json(t)` or `SELECT t FROM t`, the row of
//! relation `t` as a record whose fields are named after its columns
//! (PostgreSQL's composite value). DataFusion has none ("column t does
//! not exist"), so in a SELECT whose FROM relations' columns are all
//! known here, a bare name that is one relation's name (its alias, or its
//! table's name) and none of their columns becomes
//! `pg_record('a', t.a, 'b', t.b, ...)` in the select list and HAVING.
//! Known: a table's visible columns; a derived table's, from its column
//! aliases or its select items' names (a `*` among them, or a VALUES list
//! without column aliases, leaves the SELECT as it is). An expression
//! holding a subquery is left as it is.
//!
//! A record is an Arrow struct; `pg_record` keeps each field's metadata
//! (a `jsonb` column stays JSON in `to_json(t)`), where DataFusion's
//! `named_struct` drops it. It prints as PostgreSQL's `(1,x)`
//! (`sql::output`) and as a JSON object in the JSON functions
//! (`sql::json::datum`).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Ident, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut,
};

use super::ddl::{ident_name, table_name};
use super::rewrite::parse_expr;
use crate::catalog::Tables;

/// Rewrites the whole-row references of every SELECT of `stmt` (see the
/// module header); `catalog` tells the tables' columns.
pub fn whole_row_references(stmt: &mut Statement, catalog: &dyn Tables) {
    let _ = stmt.visit(&mut Records { catalog });
}

struct Records<'a> {
    catalog: &'a dyn Tables,
}

impl VisitorMut for Records<'_> {
    type Break = ();

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        rewrite_select(select, self.catalog);
        ControlFlow::Continue(())
    }
}

/// A FROM relation: the name its columns are qualified with, and theirs.
struct Relation {
    name: String,
    columns: Vec<String>,
}

fn rewrite_select(select: &mut Select, catalog: &dyn Tables) {
    let factors = select.from.iter().flat_map(|from| {
        std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation))
    });
    let Some(relations) = factors
        .map(|factor| relation(factor, catalog))
        .collect::<Option<Vec<Relation>>>()
    else {
        return;
    };
    let record = |ident: &Ident| -> Option<Expr> {
        let name = ident_name(ident);
        if relations.iter().any(|r| r.columns.contains(&name)) {
            return None;
        }
        let relation = relations.iter().find(|r| r.name == name)?;
        let quoted = |s: &str| Ident::with_quote('"', s).to_string();
        let fields: Vec<String> = relation
            .columns
            .iter()
            .map(|c| {
                format!(
                    "'{}', {}.{}",
                    c.replace('\'', "''"),
                    quoted(&name),
                    quoted(c)
                )
            })
            .collect();
        parse_expr(&format!("{PG_RECORD}({})", fields.join(", "))).ok()
    };
    let replace = |expr: &mut Expr| {
        if holds_subquery(expr) {
            return;
        }
        let _ = visit_expressions_mut(expr, |e| {
            if let Expr::Identifier(ident) = e {
                if let Some(record) = record(ident) {
                    *e = record;
                }
            }
            ControlFlow::<()>::Continue(())
        });
    };
    for item in &mut select.projection {
        match item {
            // `SELECT t FROM t`: the column is named `t`.
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                if let Some(record) = record(ident) {
                    *item = SelectItem::ExprWithAlias {
                        expr: record,
                        alias: ident.clone(),
                    };
                }
            }
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => replace(expr),
            _ => {}
        }
    }
    if let Some(having) = &mut select.having {
        replace(having);
    }
}

/// The relation `factor` names, where its columns are known.
fn relation(factor: &TableFactor, catalog: &dyn Tables) -> Option<Relation> {
    let (name, alias, mut columns) = match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let def = catalog.table(&table_name(name).ok()?)?;
            let columns = def.columns[..def.visible_columns()]
                .iter()
                .map(|c| c.name.clone())
                .collect();
            let own = name.0.last()?.as_ident().map(ident_name)?;
            (own, alias.as_ref(), columns)
        }
        TableFactor::Derived {
            subquery,
            alias: Some(alias),
            ..
        } => {
            // A VALUES list's columns are all named by the alias, or not
            // known here.
            let columns = match output_names(subquery) {
                Some(columns) => columns,
                None if values_width(subquery) == Some(alias.columns.len()) => Vec::new(),
                None => return None,
            };
            (ident_name(&alias.name), Some(alias), columns)
        }
        _ => return None,
    };
    let name = match alias {
        Some(alias) => {
            // Column aliases rename the first columns (or name them all).
            for (i, renamed) in alias.columns.iter().enumerate() {
                let renamed = ident_name(&renamed.name);
                match columns.get_mut(i) {
                    Some(column) => *column = renamed,
                    None => columns.push(renamed),
                }
            }
            ident_name(&alias.name)
        }
        None => name,
    };
    Some(Relation { name, columns })
}

/// The names of a query's result columns, where its text tells them.
fn output_names(query: &Query) -> Option<Vec<String>> {
    let mut body = query.body.as_ref();
    let select = loop {
        match body {
            SetExpr::Select(select) => break select,
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            SelectItem::UnnamedExpr(expr) => Some(super::names::pg_name(expr)),
            _ => None,
        })
        .collect()
}

/// How many columns a VALUES query has.
fn values_width(query: &Query) -> Option<usize> {
    match query.body.as_ref() {
        SetExpr::Values(values) => Some(values.rows.first()?.content.len()),
        _ => None,
    }
}

fn holds_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    expr.visit(&mut Finder).is_break()
}

/// The name records are planned under.
pub const PG_RECORD: &str = "pg_record";

/// `pg_record(name, value, ...)`: a struct of the values, each field named
/// by the constant before it and keeping its value's metadata.
pub fn pg_record() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgRecord {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgRecord {
    signature: Signature,
}

impl ScalarUDFImpl for PgRecord {
    fn name(&self) -> &str {
        PG_RECORD
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        plan_err!("{PG_RECORD} is typed by its arguments' names")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        if !args.arg_fields.len().is_multiple_of(2) {
            return plan_err!("{PG_RECORD} takes names and values");
        }
        let fields = (0..args.arg_fields.len())
            .step_by(2)
            .map(|i| {
                let name = args.scalar_arguments[i].and_then(|s| s.try_as_str().flatten());
                let Some(name) = name else {
                    return plan_err!("{PG_RECORD}'s field names are constant text");
                };
                let value = &args.arg_fields[i + 1];
                Ok(Field::new(name, value.data_type().clone(), true)
                    .with_metadata(value.metadata().clone()))
            })
            .collect::<DFResult<Fields>>()?;
        Ok(Arc::new(Field::new(
            PG_RECORD,
            DataType::Struct(fields),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let DataType::Struct(fields) = args.return_field.data_type() else {
            return plan_err!("{PG_RECORD} returns a struct");
        };
        let values = args
            .args
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| v.to_array(args.number_rows))
            .collect::<DFResult<Vec<ArrayRef>>>()?;
        let record = StructArray::try_new(fields.clone(), values, None)?;
        super::analyze::like_arguments(&args.args, Arc::new(record) as Arc<dyn Array>)
    }
}
