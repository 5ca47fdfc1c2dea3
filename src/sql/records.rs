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
//!
//! [`record_null_tests`]: `r IS NULL` of a record is true when every field
//! is NULL, and `r IS NOT NULL` when none is, as PostgreSQL tests a row
//! (`ROW(NULL, NULL) IS NULL` is true); DataFusion tested the struct
//! itself.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{plan_err, DFSchema, Result as DFResult};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};
use datafusion::sql::sqlparser::ast::{
    visit_expressions, AccessExpr, Expr, Ident, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, VisitMut, VisitorMut,
};

use super::ddl::{ident_name, table_name};
use super::rewrite::parse_expr;
use super::using_joins::holds_subquery;
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
    let factors = || {
        select.from.iter().flat_map(|from| {
            std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation))
        })
    };
    // Most SELECTs name no relation bare: then nothing is looked up.
    let names: Vec<String> = factors().filter_map(relation_name).collect();
    if !names_any(select, &names) {
        return;
    }
    let Some(relations) = factors()
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
    let replace = |expr: &mut Expr| replace_records(expr, &record);
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

/// Replaces the bare names in `expr` that `record` gives a record for. A
/// name qualifying a column in a field access (`t.tags[1]`, which the
/// parser reads as field `tags` of `t`) is no whole row: it is hidden
/// while its access is visited. An expression holding a subquery is left
/// as it is (its own columns may have those names).
fn replace_records(expr: &mut Expr, record: &dyn Fn(&Ident) -> Option<Expr>) {
    /// Put in front of a hidden name; no identifier holds one.
    const HIDDEN: char = '\0';
    struct Replace<'a> {
        record: &'a dyn Fn(&Ident) -> Option<Expr>,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(qualifier) = qualifier(expr) {
                qualifier.value.insert(0, HIDDEN);
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(qualifier) = qualifier(expr) {
                qualifier.value.remove(0);
            } else if let Expr::Identifier(ident) = expr {
                if let Some(record) = (self.record)(ident) {
                    *expr = record;
                }
            }
            ControlFlow::Continue(())
        }
    }
    if !holds_subquery(expr) {
        let _ = expr.visit(&mut Replace { record });
    }
}

/// The name `expr` qualifies a column with, when it is `t.c...`.
fn qualifier(expr: &mut Expr) -> Option<&mut Ident> {
    match expr {
        Expr::CompoundFieldAccess { root, access_chain }
            if matches!(access_chain.first(), Some(AccessExpr::Dot(_))) =>
        {
            match root.as_mut() {
                Expr::Identifier(ident) => Some(ident),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The name a FROM item's columns are qualified with.
fn relation_name(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => Some(ident_name(&alias.name)),
        TableFactor::Table { name, .. } => name.0.last()?.as_ident().map(ident_name),
        _ => None,
    }
}

/// Whether the select list or HAVING of `select` holds a bare name among
/// `names`.
fn names_any(select: &Select, names: &[String]) -> bool {
    let named = |expr: &Expr| {
        visit_expressions(expr, |e| match e {
            Expr::Identifier(ident) if names.contains(&ident_name(ident)) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    };
    let items = select.projection.iter().filter_map(|item| match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
        _ => None,
    });
    items.chain(select.having.as_ref()).any(named)
}

/// The relation `factor` names, where its columns are known.
fn relation(factor: &TableFactor, catalog: &dyn Tables) -> Option<Relation> {
    let (alias, mut columns) = match factor {
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
            (alias.as_ref(), columns)
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
            (Some(alias), columns)
        }
        _ => return None,
    };
    // Column aliases rename the first columns (or name them all).
    let renamed = alias.iter().flat_map(|a| &a.columns);
    for (i, renamed) in renamed.enumerate() {
        let renamed = ident_name(&renamed.name);
        match columns.get_mut(i) {
            Some(column) => *column = renamed,
            None => columns.push(renamed),
        }
    }
    Some(Relation {
        name: relation_name(factor)?,
        columns,
    })
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

/// See the module's documentation. An expression rewrite run before type
/// coercion.
pub fn record_null_tests(expr: DfExpr, schema: &DFSchema) -> Transformed<DfExpr> {
    let (record, null) = match &expr {
        DfExpr::IsNull(e) => (e, true),
        DfExpr::IsNotNull(e) => (e, false),
        _ => return Transformed::no(expr),
    };
    let fields = match record.get_type(schema) {
        Ok(DataType::Struct(fields)) => fields,
        _ => return Transformed::no(expr),
    };
    let tests = fields.iter().map(|f| {
        let field = get_field((**record).clone(), f.name().as_str());
        match null {
            true => field.is_null(),
            false => field.is_not_null(),
        }
    });
    match tests.reduce(DfExpr::and) {
        Some(all) => Transformed::yes(all),
        None => Transformed::no(expr),
    }
}
