//! Point SELECTs by primary key, answered without DataFusion.
//!
//! `SELECT a, b FROM t WHERE k = 42` is the statement OLTP clients send
//! most, and planning and optimising it in DataFusion costs several times
//! the lookup itself. A statement of exactly this shape (plain columns or
//! `*` of one table, `key = value` for every primary-key column and no other
//! clause) is recognised on the AST and answered with one read of the row's
//! key at the shard group owning it (`ShardAccess::read_keys`).
//! Anything else, including a value PostgreSQL would have to convert (`k =
//! '42'`, `k = 4.0`, an integer out of the column's range), is left to the
//! planner, so both paths give the same answers and the same errors.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    TableWithJoins, UnaryOperator, Value,
};

use super::ddl::{ident_name, table_name};
use super::provider::point_key;
use crate::catalog::{SqlType, TableDef, Tables};
use crate::encoding::row::{is_tombstone, RowDecoder};
use crate::error::Result;
use crate::shard::access::ShardAccess;
use crate::shard::proto::ScanRequest;
use crate::txn::ReadAs;

/// A recognised point SELECT: which row of which table, and which columns.
#[derive(Clone)]
pub struct PointSelect {
    pub table: Arc<TableDef>,
    /// Indexes of the selected columns in the stored row (a column may be
    /// selected twice).
    pub projection: Vec<usize>,
    /// The row's user key.
    pub key: Vec<u8>,
}

impl PointSelect {
    /// The result columns, as the planned query would name and type them.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(Arc::new(self.table.row_schema().project(&self.projection)?))
    }

    /// Reads the row from the shard group that owns it as `read_as`
    /// reads, or as `own_write` has it (`Some(None)`: deleted) if the
    /// transaction holds a write of it: then there is nothing to read.
    pub async fn read(
        self,
        shard: ShardAccess,
        read_as: &ReadAs,
        own_write: Option<Option<Vec<u8>>>,
    ) -> Result<Vec<RecordBatch>> {
        // The row decoder reads each column once; `SELECT a, a` repeats it after.
        let mut read: Vec<usize> = Vec::with_capacity(self.projection.len());
        let positions: Vec<usize> = self
            .projection
            .iter()
            .map(|column| match read.iter().position(|c| c == column) {
                Some(position) => position,
                None => {
                    read.push(*column);
                    read.len() - 1
                }
            })
            .collect();
        let row = match own_write {
            Some(row) => row.filter(|r| !is_tombstone(r)),
            // Empty when no column is read: not a tombstone, which a read
            // never answers.
            None => {
                let request = ScanRequest {
                    table_id: self.table.id.0,
                    snapshot_ts: read_as.snapshot_ts,
                    txn_id: read_as.txn_id.clone(),
                    statement: read_as.statement,
                    projection: read.iter().map(|&i| i as u32).collect(),
                    keys: vec![self.key],
                    ..Default::default()
                };
                shard.read_keys(request).await?.pop().flatten()
            }
        };
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let mut decoder = RowDecoder::new(self.table.row_schema(), &read)?;
        decoder.push(&row)?;
        Ok(vec![decoder.finish()?.project(&positions)?])
    }
}

/// The point SELECT `stmt` is, if it is one (`params` bind its placeholders).
pub fn recognise(
    stmt: &Statement,
    catalog: &dyn Tables,
    params: Option<&ParamValues>,
) -> Option<PointSelect> {
    let Statement::Query(query) = stmt else {
        return None;
    };
    let select = plain_select(query)?;
    let [from] = select.from.as_slice() else {
        return None;
    };
    let table = plain_table(from, catalog)?;
    let projection = projection(&table, &select.projection)?;
    let key = pinned_key(&table, select.selection.as_ref()?, params)?;
    Some(PointSelect {
        table,
        projection,
        key,
    })
}

/// The table `from` names, if it is one table without alias, joins or hints.
pub(super) fn plain_table(from: &TableWithJoins, catalog: &dyn Tables) -> Option<Arc<TableDef>> {
    let TableFactor::Table {
        name,
        alias: None,
        args: None,
        with_hints,
        version: None,
        with_ordinality: false,
        partitions,
        json_path: None,
        sample: None,
        index_hints,
    } = &from.relation
    else {
        return None;
    };
    if !(from.joins.is_empty()
        && with_hints.is_empty()
        && partitions.is_empty()
        && index_hints.is_empty())
    {
        return None;
    }
    catalog.table(&table_name(name).ok()?)
}

/// The user key of the row a WHERE clause names, if it is nothing but
/// `column = value` for every primary-key column of `table`.
pub(super) fn pinned_key(
    table: &TableDef,
    selection: &Expr,
    params: Option<&ParamValues>,
) -> Option<Vec<u8>> {
    let mut pinned = HashMap::new();
    for (column, value) in equalities(selection)? {
        let index = visible_column(table, &column)?;
        if !table.primary_key.contains(&index) {
            return None;
        }
        let value = key_value(value, &table.columns[index].sql_type, params)?;
        if pinned.insert(index, value).is_some() {
            return None;
        }
    }
    if pinned.len() != table.primary_key.len() {
        return None;
    }
    let pinned = pinned.iter().map(|(&i, v)| (i, v)).collect();
    point_key(table, &pinned)
}

/// The SELECT of a query that is nothing but one SELECT with a FROM and a
/// WHERE (no WITH, ORDER BY, LIMIT, DISTINCT, grouping or locking).
fn plain_select(query: &Query) -> Option<&Select> {
    let plain_query = plain_query(query);
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let no_grouping =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    let plain_select = select.distinct.is_none()
        && select.top.is_none()
        && select.into.is_none()
        && select.exclude.is_none()
        && select.lateral_views.is_empty()
        && select.prewhere.is_none()
        && select.connect_by.is_empty()
        && no_grouping
        && select.cluster_by.is_empty()
        && select.distribute_by.is_empty()
        && select.sort_by.is_empty()
        && select.having.is_none()
        && select.named_window.is_empty()
        && select.qualify.is_none()
        && select.value_table_mode.is_none();
    (plain_query && plain_select).then_some(select.as_ref())
}

/// Whether a query has nothing around its body (no WITH, ORDER BY,
/// LIMIT, FETCH or locking).
pub(super) fn plain_query(query: &Query) -> bool {
    query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none()
        && query.locks.is_empty()
        && query.for_clause.is_none()
        && query.settings.is_none()
        && query.format_clause.is_none()
        && query.pipe_operators.is_empty()
}

/// The stored-column indexes of a select list of plain column names or `*`.
fn projection(table: &TableDef, items: &[SelectItem]) -> Option<Vec<usize>> {
    let mut projection = Vec::with_capacity(items.len());
    for item in items {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                projection.push(visible_column(table, &ident_name(ident))?);
            }
            SelectItem::Wildcard(options)
                if options.opt_ilike.is_none()
                    && options.opt_exclude.is_none()
                    && options.opt_except.is_none()
                    && options.opt_replace.is_none()
                    && options.opt_rename.is_none()
                    && options.opt_alias.is_none() =>
            {
                projection.extend(0..table.visible_columns());
            }
            _ => return None,
        }
    }
    Some(projection)
}

/// A column users can see (not the hidden row id).
pub(super) fn visible_column(table: &TableDef, name: &str) -> Option<usize> {
    table
        .column_index(name)
        .filter(|&i| i < table.visible_columns())
}

/// `(column, value)` of each `column = value` of a WHERE clause that is an
/// AND of such equalities and nothing else.
fn equalities(expr: &Expr) -> Option<Vec<(String, &Expr)>> {
    match expr {
        Expr::Nested(inner) => equalities(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut found = equalities(left)?;
            found.extend(equalities(right)?);
            Some(found)
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Identifier(column), value) | (value, Expr::Identifier(column)) => {
                Some(vec![(ident_name(column), value)])
            }
            _ => None,
        },
        _ => None,
    }
}

/// A value for a key column of type `sql_type` (see [`plain_value`]):
/// integer, text, varchar, `char(n)` (stored and looked up without
/// trailing spaces) and uuid keys.
fn key_value(
    value: &Expr,
    sql_type: &SqlType,
    params: Option<&ParamValues>,
) -> Option<ScalarValue> {
    match sql_type {
        SqlType::SmallInt
        | SqlType::Integer
        | SqlType::BigInt
        | SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Uuid => plain_value(value, sql_type, params).filter(|v| !v.is_null()),
        _ => None,
    }
}

/// The value of a literal or bound placeholder for a column of type
/// `sql_type`, when it needs no conversion PostgreSQL could refuse, round
/// or read differently: an integer literal (signed) for an integer column
/// that it fits, a string literal for a text or character column, `true` /
/// `false` for a boolean one, or a placeholder bound to a value of the
/// column's own kind. A bound NULL is NULL of the column's type.
pub(super) fn plain_value(
    value: &Expr,
    sql_type: &SqlType,
    params: Option<&ParamValues>,
) -> Option<ScalarValue> {
    let integer = matches!(
        sql_type,
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
    );
    let text = matches!(
        sql_type,
        SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_)
    );
    let boolean = *sql_type == SqlType::Boolean;
    let uuid = *sql_type == SqlType::Uuid;
    let numeric = *sql_type == SqlType::UnconstrainedNumeric;
    let numeric_value = |text: &str| {
        let value = crate::numeric::Numeric::parse(text).ok()?;
        Some(ScalarValue::LargeBinary(Some(value.to_sortable())))
    };
    let target = sql_type.to_arrow();
    let value = match value {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } if integer => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(digits, false) => {
                    ScalarValue::Int64(Some(format!("-{digits}").parse().ok()?))
                }
                _ => return None,
            },
            _ => return None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } if numeric => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(digits, false) => numeric_value(&format!("-{digits}"))?,
                _ => return None,
            },
            _ => return None,
        },
        Expr::Value(v) => match &v.value {
            Value::Number(digits, false) if integer => {
                ScalarValue::Int64(Some(digits.parse().ok()?))
            }
            Value::Number(digits, false) if numeric => numeric_value(digits)?,
            Value::SingleQuotedString(s) if text => ScalarValue::Utf8(Some(s.clone())),
            Value::SingleQuotedString(s) if uuid => {
                ScalarValue::FixedSizeBinary(16, Some(super::uuid::parse(s).ok()?.to_vec()))
            }
            Value::Boolean(b) if boolean => ScalarValue::Boolean(Some(*b)),
            Value::Placeholder(id) => {
                let bound = params?.get_placeholders_with_values(id).ok()?.value;
                if bound.is_null() {
                    return ScalarValue::try_from(&target).ok();
                }
                let same_kind = match bound.data_type() {
                    DataType::Int16 | DataType::Int32 | DataType::Int64 => integer,
                    DataType::Utf8 => text,
                    DataType::Boolean => boolean,
                    DataType::FixedSizeBinary(_) => uuid,
                    DataType::LargeBinary => numeric,
                    _ => false,
                };
                if !same_kind {
                    return None;
                }
                bound
            }
            _ => return None,
        },
        _ => return None,
    };
    // A char(n) value without its trailing spaces, as stored and compared
    // (`super::bpchar`).
    let value = match (sql_type, value) {
        (SqlType::Char(_), ScalarValue::Utf8(Some(s))) => {
            ScalarValue::Utf8(Some(s.trim_end_matches(' ').to_string()))
        }
        (_, value) => value,
    };
    // Fails, and so leaves the statement to the planner, when an integer
    // does not fit the column.
    value.cast_to(&target).ok()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::catalog::{create_for_test, Catalog, ColumnDef, TableId};
    use crate::storage::Storage;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn column(name: &str, sql_type: SqlType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            sql_type,
            nullable: true,
            default: None,
        }
    }

    /// A catalog with `t (a int, b text, v text, PRIMARY KEY (a, b))`,
    /// `c (c char(2) PRIMARY KEY)`, `h (v int)` with a hidden row id and
    /// `d (a int PRIMARY KEY, n int, z int DEFAULT 0)`.
    pub fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::load(&Storage::open(dir.path()).unwrap()).unwrap();
        let tables = [
            (
                "t",
                vec![
                    column("a", SqlType::Integer),
                    column("b", SqlType::Text),
                    column("v", SqlType::Text),
                ],
                vec![0, 1],
                false,
            ),
            ("c", vec![column("c", SqlType::Char(2))], vec![0], false),
            (
                "d",
                vec![
                    column("a", SqlType::Integer),
                    column("n", SqlType::Integer),
                    ColumnDef {
                        default: Some("0".into()),
                        ..column("z", SqlType::Integer)
                    },
                ],
                vec![0],
                false,
            ),
            (
                "h",
                vec![
                    column("v", SqlType::Integer),
                    column("rowid", SqlType::BigInt),
                ],
                vec![1],
                true,
            ),
        ];
        for (name, columns, primary_key, hidden_rowid) in tables {
            let def = TableDef {
                id: TableId(0),
                name: name.into(),
                columns,
                primary_key,
                hidden_rowid,
                primary_key_name: None,
                derived: Default::default(),
            };
            create_for_test(&catalog, def);
        }
        (dir, catalog)
    }

    /// The one statement `sql` is.
    pub fn statement(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    fn point(catalog: &dyn Tables, sql: &str, params: Option<&ParamValues>) -> Option<Vec<usize>> {
        recognise(&statement(sql), catalog, params).map(|p| p.projection)
    }

    #[test]
    fn recognises_every_key_column_pinned_by_a_plain_value() {
        let (_dir, catalog) = catalog();
        let found = |sql| point(&catalog, sql, None);
        assert_eq!(
            found("SELECT v, a FROM t WHERE a = 1 AND b = 'x'"),
            Some(vec![2, 0])
        );
        assert_eq!(
            found("select * from public.t where (b = 'x') and 7 = a"),
            Some(vec![0, 1, 2])
        );
        assert_eq!(
            found("SELECT v FROM h WHERE v = 1"),
            None,
            "v is not the key"
        );
        // A char(n) key, looked up without its trailing spaces.
        assert_eq!(found("SELECT c FROM c WHERE c = 'x  '"), Some(vec![0]));
        for planner_only in [
            "SELECT v FROM t WHERE a = 1",
            "SELECT v FROM t WHERE a = 1 AND b = 'x' AND v = 'y'",
            "SELECT v FROM t WHERE a = 1 OR b = 'x'",
            "SELECT v FROM t WHERE a = 1 AND a = 2 AND b = 'x'",
            "SELECT v FROM t WHERE a = '1' AND b = 'x'",
            "SELECT v FROM t WHERE a = 1.0 AND b = 'x'",
            "SELECT v FROM t WHERE a = 99999999999 AND b = 'x'",
            "SELECT v FROM t WHERE a = 1 AND b = 2",
            "SELECT v FROM t WHERE a = 1 AND b = NULL",
            "SELECT v FROM t WHERE a = - -1 AND b = 'x'",
            "SELECT v AS w FROM t WHERE a = 1 AND b = 'x'",
            "SELECT t.v FROM t WHERE a = 1 AND b = 'x'",
            "SELECT v, nope FROM t WHERE a = 1 AND b = 'x'",
            "SELECT DISTINCT v FROM t WHERE a = 1 AND b = 'x'",
            "SELECT v FROM t WHERE a = 1 AND b = 'x' LIMIT 1",
            "SELECT v FROM t WHERE a = 1 AND b = 'x' ORDER BY v",
            "SELECT v FROM t WHERE a = 1 AND b = 'x' FOR UPDATE",
            "SELECT v FROM t x WHERE a = 1 AND b = 'x'",
            "SELECT v FROM t, h WHERE a = 1 AND b = 'x'",
            "WITH w AS (SELECT 1) SELECT v FROM t WHERE a = 1 AND b = 'x'",
            "SELECT count(*) FROM t WHERE a = 1 AND b = 'x'",
            "SELECT rowid FROM h WHERE rowid = 1",
            "SELECT v FROM other.t WHERE a = 1 AND b = 'x'",
        ] {
            assert_eq!(found(planner_only), None, "{planner_only}");
        }
    }

    #[test]
    fn placeholders_take_their_bound_values_when_the_types_agree() {
        let (_dir, catalog) = catalog();
        let sql = "SELECT v FROM t WHERE a = $1 AND b = $2";
        let bound = |a: ScalarValue, b: ScalarValue| ParamValues::from(vec![a, b]);
        let text = || ScalarValue::Utf8(Some("x".into()));
        let ok = bound(ScalarValue::Int16(Some(4)), text());
        assert_eq!(point(&catalog, sql, Some(&ok)), Some(vec![2]));
        let null = bound(ScalarValue::Int32(None), text());
        assert_eq!(point(&catalog, sql, Some(&null)), None);
        let text_for_int = bound(text(), text());
        assert_eq!(point(&catalog, sql, Some(&text_for_int)), None);
        let too_big = bound(ScalarValue::Int64(Some(1 << 40)), text());
        assert_eq!(point(&catalog, sql, Some(&too_big)), None);
        assert_eq!(point(&catalog, sql, None), None, "unbound (Describe)");
    }
}
