//! UPDATE of one row by primary key, without DataFusion.
//!
//! `UPDATE accounts SET balance = balance - 10 WHERE id = 42` is half of
//! every transfer an OLTP application runs, and planning its SELECT (see
//! [`super::dml`]) in DataFusion costs several times reading and writing
//! the row. A statement of exactly this shape (one table, `key = value`
//! for every primary-key column as the whole WHERE, no FROM or RETURNING)
//! whose every assignment is one of
//!
//! - a value [`plain_value`] accepts for the column, or NULL;
//! - `column + n`, `n + column` or `column - n` for an `integer` or
//!   `bigint` column, another column of the same type and an integer
//!   literal `n` that fits it,
//!
//! reads the row with the point read of [`super::point`] and writes it
//! back through [`super::write::RowWriter`], as the planned UPDATE would.
//! The arithmetic fails on overflow with PostgreSQL's error, as the
//! planner's [`super::checked`] arithmetic does. Anything else is left to
//! the planner.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{AssignmentTarget, BinaryOperator, Expr, Update, Value};

use super::checked::out_of_range;
use super::ddl::ident_name;
use super::errors::classify;
use super::point::{pinned_key, plain_table, plain_value, visible_column, PointSelect};
use super::rewrite::is_default;
use crate::catalog::{SqlType, Tables};
use crate::error::{Error, Result};

/// A recognised point UPDATE: the row (all its columns) and what the
/// assignments make of it.
pub struct PointUpdate {
    pub row: PointSelect,
    assignments: Vec<(usize, NewValue)>,
}

enum NewValue {
    Value(ScalarValue),
    /// `column` plus or minus a constant, checked.
    Shifted {
        column: usize,
        by: Shift,
    },
}

#[derive(Clone, Copy)]
enum Shift {
    Add(i64),
    Subtract(i64),
}

impl PointUpdate {
    /// The row as the update leaves it, from `old`, the row as read (one
    /// row of every visible column).
    pub fn new_row(&self, old: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let mut values = (0..old.num_columns())
            .map(|c| ScalarValue::try_from_array(old.column(c), 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(classify)?;
        let read = values.clone();
        for (index, new) in &self.assignments {
            values[*index] = match new {
                NewValue::Value(value) => value.clone(),
                NewValue::Shifted { column, by } => shifted(&read[*column], *by)?,
            };
        }
        values
            .into_iter()
            .map(|v| v.to_array().map_err(classify))
            .collect()
    }
}

/// `value + by` in `value`'s own integer type, failing as PostgreSQL does
/// when the sum does not fit.
fn shifted(value: &ScalarValue, by: Shift) -> Result<ScalarValue> {
    let apply = |v: i64| match by {
        Shift::Add(n) => v.checked_add(n),
        Shift::Subtract(n) => v.checked_sub(n),
    };
    Ok(match value {
        ScalarValue::Int32(Some(v)) => ScalarValue::Int32(Some(
            apply(i64::from(*v))
                .and_then(|sum| i32::try_from(sum).ok())
                .ok_or_else(|| out_of_range("integer"))?,
        )),
        ScalarValue::Int64(Some(v)) => {
            ScalarValue::Int64(Some(apply(*v).ok_or_else(|| out_of_range("bigint"))?))
        }
        // NULL plus anything is NULL.
        other if other.is_null() => other.clone(),
        other => {
            return Err(Error::Internal(format!(
                "a shifted value of type {}",
                other.data_type()
            )))
        }
    })
}

/// The point UPDATE `update` is, if it is one (`params` bind its
/// placeholders).
pub fn recognise(
    update: &Update,
    catalog: &dyn Tables,
    params: Option<&ParamValues>,
) -> Option<PointUpdate> {
    let plain = update.optimizer_hints.is_empty()
        && update.from.is_none()
        && update.returning.is_none()
        && update.output.is_none()
        && update.or.is_none()
        && update.order_by.is_empty()
        && update.limit.is_none();
    if !plain {
        return None;
    }
    let table = plain_table(&update.table, catalog)?;
    let key = pinned_key(&table, update.selection.as_ref()?, params)?;
    let mut assignments: Vec<(usize, NewValue)> = Vec::with_capacity(update.assignments.len());
    for assignment in &update.assignments {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return None;
        };
        let [part] = name.0.as_slice() else {
            return None;
        };
        let index = visible_column(&table, &ident_name(part.as_ident()?))?;
        if assignments.iter().any(|(i, _)| *i == index) {
            return None;
        }
        let sql_type = &table.columns[index].sql_type;
        let value = &assignment.value;
        let new = if is_default(value) {
            return None;
        } else if matches!(value, Expr::Value(v) if v.value == Value::Null) {
            NewValue::Value(ScalarValue::try_from(&sql_type.to_arrow()).ok()?)
        } else if let Some(value) = plain_value(value, sql_type, params) {
            NewValue::Value(value)
        } else {
            shift(&table, value, sql_type)?
        };
        assignments.push((index, new));
    }
    let row = PointSelect {
        projection: (0..table.visible_columns()).collect(),
        table,
        key,
    };
    Some(PointUpdate { row, assignments })
}

/// `column + n`, `n + column` or `column - n` for a column of type
/// `sql_type` (integer or bigint) and an integer literal that fits it.
fn shift(table: &crate::catalog::TableDef, value: &Expr, sql_type: &SqlType) -> Option<NewValue> {
    if !matches!(sql_type, SqlType::Integer | SqlType::BigInt) {
        return None;
    }
    let Expr::BinaryOp { left, op, right } = value else {
        return None;
    };
    let (column, literal) = match (op, left.as_ref(), right.as_ref()) {
        (BinaryOperator::Plus | BinaryOperator::Minus, Expr::Identifier(c), n) => (c, n),
        (BinaryOperator::Plus, n, Expr::Identifier(c)) => (c, n),
        _ => return None,
    };
    let column = visible_column(table, &ident_name(column))?;
    if table.columns[column].sql_type != *sql_type {
        return None;
    }
    // A literal only: a placeholder's type comes from the client.
    let literal_number = match literal {
        Expr::Value(v) => matches!(v.value, Value::Number(..)),
        Expr::UnaryOp { expr, .. } => {
            matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..)))
        }
        _ => false,
    };
    if !literal_number {
        return None;
    }
    let n = match plain_value(literal, sql_type, None)? {
        ScalarValue::Int32(Some(n)) => i64::from(n),
        ScalarValue::Int64(Some(n)) => n,
        _ => return None,
    };
    let by = match op {
        BinaryOperator::Minus => Shift::Subtract(n),
        _ => Shift::Add(n),
    };
    Some(NewValue::Shifted { column, by })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::point::tests::{catalog, statement};
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::sql::sqlparser::ast::Statement;
    use std::sync::Arc;

    fn update(
        catalog: &dyn Tables,
        sql: &str,
        params: Option<&ParamValues>,
    ) -> Option<PointUpdate> {
        let Statement::Update(update) = statement(sql) else {
            panic!("not an update: {sql}")
        };
        recognise(&update, catalog, params)
    }

    /// A row of `d (a int, n int, z int)`.
    fn row_of_d(a: i32, n: Option<i32>, z: i32) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("n", DataType::Int32, true),
            Field::new("z", DataType::Int32, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![a])),
            Arc::new(Int32Array::from(vec![n])),
            Arc::new(Int32Array::from(vec![z])),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn assignments_apply_to_the_row_as_read() {
        let (_dir, catalog) = catalog();
        let point = update(
            &catalog,
            "UPDATE d SET n = z - 3, z = 1 + a WHERE a = 5",
            None,
        )
        .unwrap();
        let new = point.new_row(&row_of_d(5, Some(1), 10)).unwrap();
        let ints = |i: usize| {
            new[i]
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap()
                .value(0)
        };
        assert_eq!((ints(0), ints(1), ints(2)), (5, 7, 6));
        // NULL stays NULL; overflow is PostgreSQL's 22003.
        let point = update(
            &catalog,
            "UPDATE d SET n = n + 1, z = z + 1 WHERE a = 5",
            None,
        )
        .unwrap();
        let err = point.new_row(&row_of_d(5, None, i32::MAX)).unwrap_err();
        assert_eq!(err.to_string(), out_of_range("integer").to_string());
        let new = point.new_row(&row_of_d(5, None, 0)).unwrap();
        assert!(new[1].is_null(0));
        let point = update(
            &catalog,
            "UPDATE t SET v = 'w' WHERE a = 1 AND b = 'x'",
            None,
        )
        .unwrap();
        assert_eq!(point.row.projection, vec![0, 1, 2]);
        let bound = ParamValues::from(vec![ScalarValue::Utf8(None), ScalarValue::Int64(Some(2))]);
        let point = update(
            &catalog,
            "UPDATE t SET v = $1 WHERE a = $2 AND b = 'x'",
            Some(&bound),
        );
        let Some(NewValue::Value(v)) = point.map(|p| p.assignments.into_iter().next().unwrap().1)
        else {
            panic!("not a plain value")
        };
        assert_eq!(v, ScalarValue::Utf8(None));
    }

    #[test]
    fn anything_else_is_left_to_the_planner() {
        let (_dir, catalog) = catalog();
        for planner_only in [
            "UPDATE d SET n = 1 WHERE a = 5 AND n = 1",
            "UPDATE d SET n = 1 WHERE a > 5",
            "UPDATE d SET n = 1",
            "UPDATE d SET n = DEFAULT WHERE a = 5",
            "UPDATE d SET n = 1, n = 2 WHERE a = 5",
            "UPDATE d SET d.n = 1 WHERE a = 5",
            "UPDATE d SET nope = 1 WHERE a = 5",
            "UPDATE d SET n = n * 2 WHERE a = 5",
            "UPDATE d SET n = 3 - n WHERE a = 5",
            "UPDATE d SET n = n + 3000000000 WHERE a = 5",
            "UPDATE d SET n = n + 1.5 WHERE a = 5",
            "UPDATE d SET n = n + '1' WHERE a = 5",
            "UPDATE d SET n = (n + 1) WHERE a = 5",
            "UPDATE d SET n = '1' WHERE a = 5",
            "UPDATE d SET n = 1 WHERE a = 5 RETURNING n",
            "UPDATE d SET n = 1 FROM t WHERE d.a = 5",
            "UPDATE d AS x SET n = 1 WHERE a = 5",
            "UPDATE t SET v = a + 1 WHERE a = 1 AND b = 'x'",
            "UPDATE h SET v = 1 WHERE rowid = 1",
        ] {
            assert!(
                update(&catalog, planner_only, None).is_none(),
                "{planner_only}"
            );
        }
    }
}
