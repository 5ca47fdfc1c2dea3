//! INSERT ... VALUES of plain values, written without DataFusion.
//!
//! `INSERT INTO t (a, b) VALUES (1, 'x')` is what OLTP clients and ORMs
//! send most, and planning and optimising it in DataFusion costs several
//! times writing the row. A statement of exactly this shape (one table,
//! an optional list of distinct columns, rows of literals or bound
//! placeholders, no ON CONFLICT or RETURNING) whose every value is one
//! [`plain_value`] accepts for its column, and whose omitted columns have
//! no DEFAULT, becomes the batch of rows the planned INSERT would write;
//! it is written by the same
//! [`super::write::RowWriter`], so NOT NULL, length and duplicate-key
//! checks give the same errors. Anything else (a value PostgreSQL would
//! convert, such as `'42'` for an integer or `1.5` for a numeric, an
//! expression, a DEFAULT, an unknown column) is left to the planner.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{Expr, Insert, SetExpr, Statement, TableObject, Value};

use super::ddl::{ident_name, table_name};
use super::point::{plain_query, plain_value};
use super::write::statement_rows;
use crate::catalog::{TableDef, Tables};

/// A recognised INSERT: the table, and its rows as the first
/// `visible_columns()` stored columns.
pub struct PointInsert {
    pub table: Arc<TableDef>,
    pub rows: RecordBatch,
}

/// The plain INSERT `stmt` is, if it is one (`params` bind its placeholders).
pub fn recognise(
    stmt: &Statement,
    catalog: &dyn Tables,
    params: Option<&ParamValues>,
) -> Option<PointInsert> {
    let Statement::Insert(insert) = stmt else {
        return None;
    };
    let rows = plain_values(insert)?;
    let TableObject::TableName(name) = &insert.table else {
        return None;
    };
    let table = catalog.table(&table_name(name).ok()?)?;
    let visible = table.visible_columns();
    // Which stored column each value of a row goes to.
    let targets: Vec<usize> = if insert.columns.is_empty() {
        (0..visible).collect()
    } else {
        let mut targets = Vec::with_capacity(insert.columns.len());
        for column in &insert.columns {
            let [part] = column.0.as_slice() else {
                return None;
            };
            let index = table
                .column_index(&ident_name(part.as_ident()?))
                .filter(|&i| i < visible)?;
            if targets.contains(&index) {
                return None;
            }
            targets.push(index);
        }
        targets
    };
    // Without a column list, fewer values than columns fill the first
    // columns (the rest get their defaults). Rows of other lengths are
    // errors the planner reports.
    let width = rows.first()?.len();
    let fits = width == targets.len() || (insert.columns.is_empty() && width < targets.len());
    if !fits || rows.iter().any(|row| row.len() != width) {
        return None;
    }
    let targets = &targets[..width];
    // An omitted column gets NULL here: one with a DEFAULT is planned.
    let omitted_have_defaults = (0..visible)
        .filter(|i| !targets.contains(i))
        .any(|i| table.columns[i].default.is_some());
    if omitted_have_defaults {
        return None;
    }
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(rows.len()); visible];
    for row in rows {
        for (index, column) in columns.iter_mut().enumerate() {
            let sql_type = &table.columns[index].sql_type;
            let value = match targets.iter().position(|&t| t == index) {
                Some(position) => {
                    let value = &row[position];
                    if matches!(value, Expr::Value(v) if v.value == Value::Null) {
                        ScalarValue::try_from(&sql_type.to_arrow()).ok()?
                    } else {
                        plain_value(value, sql_type, params)?
                    }
                }
                _ => ScalarValue::try_from(&sql_type.to_arrow()).ok()?,
            };
            column.push(value);
        }
    }
    let arrays = columns
        .into_iter()
        .map(ScalarValue::iter_to_array)
        .collect::<Result<Vec<ArrayRef>, _>>()
        .ok()?;
    let rows = statement_rows(&table, arrays).ok()?;
    Some(PointInsert { table, rows })
}

/// The rows of an INSERT that is nothing but `INSERT INTO name [(columns)]
/// VALUES (...), ...`.
fn plain_values(insert: &Insert) -> Option<Vec<&[Expr]>> {
    let plain_insert = insert.optimizer_hints.is_empty()
        && insert.or.is_none()
        && !insert.ignore
        && insert.into
        && insert.table_alias.is_none()
        && !insert.overwrite
        && insert.assignments.is_empty()
        && insert.partitioned.is_none()
        && insert.after_columns.is_empty()
        && !insert.has_table_keyword
        && insert.on.is_none()
        && insert.returning.is_none()
        && insert.output.is_none()
        && !insert.replace_into
        && insert.priority.is_none()
        && insert.insert_alias.is_none()
        && insert.settings.is_none()
        && insert.format_clause.is_none()
        && insert.multi_table_insert_type.is_none()
        && insert.multi_table_into_clauses.is_empty()
        && insert.multi_table_when_clauses.is_empty()
        && insert.multi_table_else_clause.is_none();
    let source = insert.source.as_ref().filter(|_| plain_insert)?;
    let plain_query = plain_query(source);
    match source.body.as_ref() {
        SetExpr::Values(values) if plain_query && !values.explicit_row && !values.value_keyword => {
            Some(
                values
                    .rows
                    .iter()
                    .map(|row| row.content.as_slice())
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::point::tests::{catalog, statement};
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int32Type;

    fn insert(
        catalog: &dyn Tables,
        sql: &str,
        params: Option<&ParamValues>,
    ) -> Option<RecordBatch> {
        recognise(&statement(sql), catalog, params).map(|p| p.rows)
    }

    #[test]
    fn plain_rows_become_the_batch_the_planner_would_write() {
        let (_dir, catalog) = catalog();
        let rows = insert(
            &catalog,
            "INSERT INTO t (v, a, b) VALUES ('p', -3, 'x'), (NULL, 4, 'y')",
            None,
        )
        .unwrap();
        assert_eq!(rows.num_columns(), 3);
        let a = rows.column(0).as_primitive::<Int32Type>();
        assert_eq!((a.value(0), a.value(1)), (-3, 4));
        assert_eq!(rows.column(1).as_string::<i32>().value(1), "y");
        let v = rows.column(2).as_string::<i32>();
        assert_eq!((v.value(0), v.is_null(1)), ("p", true));
        // Without a column list, the first columns; the hidden row id is
        // left to the writer.
        let rows = insert(&catalog, "insert into h values (7)", None).unwrap();
        assert_eq!(rows.num_columns(), 1);
        let rows = insert(&catalog, "INSERT INTO t VALUES (1)", None).unwrap();
        assert_eq!(rows.column(1).null_count(), 1);
    }

    #[test]
    fn anything_needing_conversion_or_a_default_is_left_to_the_planner() {
        let (_dir, catalog) = catalog();
        for planner_only in [
            "INSERT INTO t VALUES ('1', 'x', 'v')",
            "INSERT INTO t VALUES (1.0, 'x', 'v')",
            "INSERT INTO t VALUES (99999999999, 'x', 'v')",
            "INSERT INTO t VALUES (1 + 1, 'x', 'v')",
            "INSERT INTO t VALUES (1, 2, 'v')",
            "INSERT INTO t VALUES (1, 'x', DEFAULT)",
            "INSERT INTO t VALUES (1, 'x', 'v', 'extra')",
            "INSERT INTO t VALUES (1, 'x'), (2, 'y', 'z')",
            "INSERT INTO t (a, b) VALUES (1)",
            "INSERT INTO t (a, a) VALUES (1, 2)",
            "INSERT INTO t (a, nope) VALUES (1, 2)",
            "INSERT INTO t (a, b) VALUES (1, 'x') RETURNING a",
            "INSERT INTO t (a, b) VALUES (1, 'x') ON CONFLICT DO NOTHING",
            "INSERT INTO t (a, b) SELECT 1, 'x'",
            "INSERT INTO t AS x (a, b) VALUES (1, 'x')",
            "INSERT INTO d (a) VALUES (1)",
            "INSERT INTO d VALUES (1, 2)",
            "INSERT INTO nope VALUES (1)",
            "INSERT INTO t DEFAULT VALUES",
        ] {
            assert!(
                insert(&catalog, planner_only, None).is_none(),
                "{planner_only}"
            );
        }
        assert!(insert(&catalog, "INSERT INTO d (z, a) VALUES (1, 2)", None).is_some());
    }

    #[test]
    fn placeholders_take_their_bound_values_when_the_types_agree() {
        let (_dir, catalog) = catalog();
        let sql = "INSERT INTO t (a, b) VALUES ($1, $2)";
        let bound = |a: ScalarValue, b: ScalarValue| ParamValues::from(vec![a, b]);
        let text = || ScalarValue::Utf8(Some("x".into()));
        let ok = bound(ScalarValue::Int64(Some(4)), text());
        assert!(insert(&catalog, sql, Some(&ok)).is_some());
        let null = bound(ScalarValue::Int32(Some(1)), ScalarValue::Int64(None));
        let rows = insert(&catalog, sql, Some(&null)).unwrap();
        assert_eq!(rows.column(1).null_count(), 1);
        let text_for_int = bound(text(), text());
        assert!(insert(&catalog, sql, Some(&text_for_int)).is_none());
        let too_big = bound(ScalarValue::Int64(Some(1 << 40)), text());
        assert!(insert(&catalog, sql, Some(&too_big)).is_none());
        assert!(insert(&catalog, sql, None).is_none(), "unbound");
    }
}
