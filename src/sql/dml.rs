//! UPDATE and DELETE, planned as SELECTs.
//!
//! DataFusion plans a SELECT over the target table with the statement's
//! own FROM / USING and WHERE clauses, so every WHERE that PostgreSQL
//! accepts (subqueries, joins, parameters) selects exactly the rows it
//! names, and a WHERE that cannot be planned is an error, never "all rows".
//!
//! ```text
//! UPDATE t SET b = b + 1 FROM u WHERE t.a = u.a
//!   => SELECT t."a" AS key_0, t."a" AS new_0, CAST((b + 1) AS INTEGER) AS new_1
//!      -- the old key, then the new row
//!      FROM shardforge_internal."t" AS "t", u WHERE t.a = u.a
//! DELETE FROM t WHERE a IN (SELECT ...)
//!   => SELECT t."a" AS key_0 FROM shardforge_internal."t" AS "t" WHERE a IN (SELECT ...)
//! ```
//!
//! The target is read through [`INTERNAL_SCHEMA`], which shows the hidden
//! row id too, so every row's full key comes back. The rows are collected
//! before any is written (the scan reads the transaction's snapshot plus
//! its earlier writes), then written through [`RowWriter`].

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Delete, DoUpdate, Expr, FromTable, Insert,
    ObjectName, OnConflict as OnConflictClause, OnConflictAction, OnInsert, TableFactor,
    TableObject, TableWithJoins, Update, UpdateTableFromKind,
};

use super::ddl::{ident_name, table_name};
use super::engine::SCRATCH_SCHEMA;
use super::provider::INTERNAL_SCHEMA;
use super::returning::Returning;
use super::rewrite;
use super::write::{statement_rows, OnConflict, RowWriter};
use crate::catalog::{SqlType, TableDef, Tables};
use crate::encoding::keys::{encode_key_value, row_key};
use crate::error::{Error, InputError, Result};
use crate::txn::Transaction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmlKind {
    Update,
    Delete,
}

/// An UPDATE or DELETE as the SELECT that finds its rows.
pub struct DmlPlan {
    pub kind: DmlKind,
    pub table: Arc<TableDef>,
    pub select_sql: String,
    /// Whether the SELECT joins other tables (`UPDATE ... FROM`, `DELETE
    /// ... USING`), so a row may come more than once.
    pub joined: bool,
    /// The statement's RETURNING (a DELETE's SELECT then also reads the
    /// rows it deletes).
    pub returning: Option<Returning>,
}

/// `name` as a quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The definition and normalised name of the table `name` refers to.
pub(super) fn existing_table(
    catalog: &dyn Tables,
    name: &ObjectName,
) -> Result<(Arc<TableDef>, String)> {
    let table = table_name(name)?;
    let def = catalog.table(&table).ok_or_else(|| {
        Error::input(
            InputError::UndefinedTable,
            format!("relation \"{table}\" does not exist"),
        )
    })?;
    Ok((def, table))
}

/// The target table and the name its columns are qualified with.
fn target(catalog: &dyn Tables, relation: &TableWithJoins) -> Result<(Arc<TableDef>, String)> {
    if !relation.joins.is_empty() {
        return Err(Error::unsupported("JOIN in the target of UPDATE or DELETE"));
    }
    let TableFactor::Table { name, alias, .. } = &relation.relation else {
        return Err(Error::unsupported(
            "UPDATE or DELETE of something other than a table",
        ));
    };
    let (def, table) = existing_table(catalog, name)?;
    let qualifier = match alias {
        Some(alias) => ident_name(&alias.name),
        None => table,
    };
    Ok((def, qualifier))
}

fn from_clause(def: &TableDef, qualifier: &str, others: &[TableWithJoins]) -> String {
    let mut from = format!(
        "{}.{} AS {}",
        INTERNAL_SCHEMA,
        quote(&def.name),
        quote(qualifier)
    );
    for other in others {
        from.push_str(", ");
        from.push_str(&other.to_string());
    }
    from
}

fn key_columns(def: &TableDef, qualifier: &str) -> Vec<String> {
    def.primary_key
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            format!(
                "{}.{} AS \"key_{k}\"",
                quote(qualifier),
                quote(&def.columns[i].name)
            )
        })
        .collect()
}

fn where_clause(selection: &Option<datafusion::sql::sqlparser::ast::Expr>) -> String {
    selection
        .as_ref()
        .map(|e| format!(" WHERE {e}"))
        .unwrap_or_default()
}

pub fn plan_update(catalog: &dyn Tables, update: &Update) -> Result<DmlPlan> {
    let (def, qualifier) = target(catalog, &update.table)?;
    let items = update_items(&def, &qualifier, &update.assignments)?;
    let others = match &update.from {
        Some(UpdateTableFromKind::BeforeSet(t) | UpdateTableFromKind::AfterSet(t)) => t.as_slice(),
        None => &[],
    };
    let select_sql = format!(
        "SELECT {} FROM {}{}",
        items.join(", "),
        from_clause(&def, &qualifier, others),
        where_clause(&update.selection)
    );
    Ok(DmlPlan {
        kind: DmlKind::Update,
        returning: Returning::of(&update.returning, def.clone(), qualifier),
        table: def,
        select_sql,
        joined: !others.is_empty(),
    })
}

pub fn plan_delete(catalog: &dyn Tables, delete: &Delete) -> Result<DmlPlan> {
    if !delete.tables.is_empty() || delete.limit.is_some() || !delete.order_by.is_empty() {
        return Err(Error::unsupported("this form of DELETE"));
    }
    let relations = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [relation] = relations.as_slice() else {
        return Err(Error::unsupported("DELETE from several tables"));
    };
    let (def, qualifier) = target(catalog, relation)?;
    let others = delete.using.as_deref().unwrap_or(&[]);
    let mut items = key_columns(&def, &qualifier);
    if delete.returning.is_some() {
        // The old row, for RETURNING.
        for (i, column) in def.columns[..def.visible_columns()].iter().enumerate() {
            items.push(format!(
                "{}.{} AS \"old_{i}\"",
                quote(&qualifier),
                quote(&column.name)
            ));
        }
    }
    let select_sql = format!(
        "SELECT {} FROM {}{}",
        items.join(", "),
        from_clause(&def, &qualifier, others),
        where_clause(&delete.selection)
    );
    Ok(DmlPlan {
        kind: DmlKind::Delete,
        returning: Returning::of(&delete.returning, def.clone(), qualifier),
        table: def,
        select_sql,
        joined: !others.is_empty(),
    })
}

/// The items of the SELECT an UPDATE of `def` (known as `qualifier`) is
/// planned as: the old key, then the new row, each assigned value cast to
/// its column's type and the others as they were.
fn update_items(
    def: &TableDef,
    qualifier: &str,
    assignments: &[Assignment],
) -> Result<Vec<String>> {
    let mut new_values: Vec<Option<String>> = vec![None; def.columns.len()];
    for assignment in column_assignments(assignments)? {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(Error::Internal("a tuple assignment left".into()));
        };
        let column = name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(ident_name)
            .unwrap_or_default();
        let index = def
            .column_index(&column)
            .filter(|&i| i < def.visible_columns())
            .ok_or_else(|| {
                Error::input(
                    InputError::UndefinedColumn,
                    format!(
                        "column \"{column}\" of relation \"{}\" does not exist",
                        def.name
                    ),
                )
            })?;
        if new_values[index].is_some() {
            return Err(Error::input(
                InputError::Syntax,
                format!("multiple assignments to same column \"{column}\""),
            ));
        }
        let sql_type = &def.columns[index].sql_type;
        let value = if rewrite::is_default(&assignment.value) {
            rewrite::default_value(def, index)?
        } else {
            match sql_type {
                SqlType::Bytea => rewrite::bytea_literal(&assignment.value)?,
                _ => None,
            }
            .unwrap_or_else(|| assignment.value.clone())
        };
        new_values[index] = Some(format!("CAST(({value}) AS {})", sql_type.cast_sql()));
    }
    let mut items = key_columns(def, qualifier);
    for (i, (column, value)) in def.columns.iter().zip(new_values).enumerate() {
        let value =
            value.unwrap_or_else(|| format!("{}.{}", quote(qualifier), quote(&column.name)));
        // Aliased: a new value may repeat a key column's expression.
        items.push(format!("{value} AS \"new_{i}\""));
    }
    Ok(items)
}

/// `assignments` with each `(a, b) = (x, y)` as `a = x, b = y`. A tuple
/// assigned from a subquery or `ROW(...)` is 0A000, as is one value in
/// parentheses (PostgreSQL's refusal).
fn column_assignments(assignments: &[Assignment]) -> Result<Vec<Assignment>> {
    let mut columns = Vec::with_capacity(assignments.len());
    for assignment in assignments {
        let names = match &assignment.target {
            AssignmentTarget::ColumnName(_) => {
                columns.push(assignment.clone());
                continue;
            }
            AssignmentTarget::Tuple(names) => names,
        };
        let values = match &assignment.value {
            Expr::Tuple(values) => values.clone(),
            Expr::Subquery(_) | Expr::Function(_) => {
                return Err(Error::unsupported(
                    "assigning a subquery or ROW() to a tuple of columns",
                ))
            }
            // PostgreSQL's own refusal, also 0A000.
            _ => return Err(Error::input(
                InputError::Unsupported,
                "source for a multiple-column UPDATE item must be a sub-SELECT or ROW() expression",
            )),
        };
        if values.len() != names.len() {
            return Err(Error::input(
                InputError::Syntax,
                "number of columns does not match number of values",
            ));
        }
        for (name, value) in names.iter().zip(values) {
            columns.push(Assignment {
                target: AssignmentTarget::ColumnName(name.clone()),
                value,
            });
        }
    }
    Ok(columns)
}

/// What an INSERT does besides writing its rows.
pub struct InsertClauses {
    pub returning: Option<Returning>,
    pub on_conflict: OnConflict,
    /// The update of `ON CONFLICT DO UPDATE`.
    pub upsert: Option<Upsert>,
}

/// The clauses of an INSERT.
pub fn insert_clauses(catalog: &dyn Tables, insert: &Insert) -> Result<InsertClauses> {
    let mut clauses = InsertClauses {
        returning: None,
        on_conflict: OnConflict::Fail,
        upsert: None,
    };
    let TableObject::TableName(name) = &insert.table else {
        return Ok(clauses);
    };
    if insert.returning.is_none() && insert.on.is_none() {
        return Ok(clauses);
    }
    let (def, table) = existing_table(catalog, name)?;
    let qualifier = match &insert.table_alias {
        Some(alias) => ident_name(&alias.alias),
        None => table,
    };
    if let Some(on) = &insert.on {
        let conflict = match on {
            OnInsert::OnConflict(conflict) => conflict,
            other => return Err(Error::unsupported(format!("{other}"))),
        };
        check_conflict_target(&def, conflict)?;
        clauses.on_conflict = match &conflict.action {
            OnConflictAction::DoNothing => OnConflict::Skip,
            OnConflictAction::DoUpdate(update) => {
                clauses.upsert = Some(Upsert::new(def.clone(), &qualifier, update)?);
                OnConflict::Update
            }
        };
    }
    clauses.returning = Returning::of(&insert.returning, def, qualifier);
    Ok(clauses)
}

/// Checks an ON CONFLICT target: it can only be the primary key (by its
/// columns, in any order, or by its constraint's name), as a table
/// has no other unique constraint yet. DO UPDATE needs one.
fn check_conflict_target(def: &TableDef, conflict: &OnConflictClause) -> Result<()> {
    match &conflict.conflict_target {
        None if matches!(conflict.action, OnConflictAction::DoUpdate(_)) => Err(Error::input(
            InputError::Syntax,
            "ON CONFLICT DO UPDATE requires inference specification or constraint name",
        )),
        None => Ok(()),
        Some(ConflictTarget::Columns(columns)) => {
            let mut named = Vec::with_capacity(columns.len());
            for column in columns {
                let name = ident_name(column);
                let index = def
                    .column_index(&name)
                    .filter(|&i| i < def.visible_columns());
                named.push(index.ok_or_else(|| {
                    Error::input(
                        InputError::UndefinedColumn,
                        format!("column \"{name}\" does not exist"),
                    )
                })?);
            }
            let mut key = def.primary_key.clone();
            named.sort();
            key.sort();
            named.dedup();
            if def.hidden_rowid || named != key {
                return Err(Error::input(
                    InputError::InvalidColumnReference,
                    "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                ));
            }
            Ok(())
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let name = table_name(name)?;
            if def.hidden_rowid || name != def.key_name() {
                return Err(Error::input(
                    InputError::UndefinedObject,
                    format!(
                        "constraint \"{name}\" for table \"{}\" does not exist",
                        def.name
                    ),
                ));
            }
            Ok(())
        }
    }
}

/// `ON CONFLICT DO UPDATE`, planned as an UPDATE: the SELECT that gives
/// the old key and the new row of each row to update, over the rows an
/// INSERT batch found under the keys it proposed (the scratch table
/// [`Upsert::TARGET`], named as the INSERT names its table) joined by key
/// to the rows it proposed ([`Upsert::EXCLUDED`], named `excluded`):
///
/// ```text
/// INSERT INTO t VALUES (1, 5) ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n WHERE t.n < 10
///   => SELECT "t"."k" AS key_0, "t"."k" AS new_0, CAST((t.n + excluded.n) AS INTEGER) AS new_1
///      FROM scratch."__target" AS "t" JOIN scratch."__excluded" AS excluded
///        ON "t"."k" = excluded."k" WHERE t.n < 10
/// ```
///
/// As in PostgreSQL, a bare column name in SET and WHERE is ambiguous
/// (42702): the existing row's is `t.n`, the proposed one's `excluded.n`.
pub struct Upsert {
    pub table: Arc<TableDef>,
    select_sql: String,
}

impl Upsert {
    /// Where the rows under the proposed keys are, in the session's
    /// scratch schema.
    pub const TARGET: &'static str = "__target";
    /// Where the proposed rows are.
    pub const EXCLUDED: &'static str = "__excluded";

    fn new(table: Arc<TableDef>, qualifier: &str, update: &DoUpdate) -> Result<Self> {
        let items = update_items(&table, qualifier, &update.assignments)?;
        let on: Vec<String> = table
            .primary_key
            .iter()
            .map(|&i| {
                let column = quote(&table.columns[i].name);
                format!("{}.{column} = excluded.{column}", quote(qualifier))
            })
            .collect();
        let select_sql = format!(
            "SELECT {} FROM {SCRATCH_SCHEMA}.{} AS {} JOIN {SCRATCH_SCHEMA}.{} AS excluded ON {}{}",
            items.join(", "),
            quote(Self::TARGET),
            quote(qualifier),
            quote(Self::EXCLUDED),
            on.join(" AND "),
            where_clause(&update.selection),
        );
        Ok(Self { table, select_sql })
    }

    /// The UPDATE of the rows the scratch tables hold.
    pub fn plan(&self) -> DmlPlan {
        DmlPlan {
            kind: DmlKind::Update,
            table: self.table.clone(),
            select_sql: self.select_sql.clone(),
            joined: false,
            returning: None,
        }
    }
}

/// TRUNCATE of one table: a DELETE of every row. Like PostgreSQL's, it is
/// transactional (undone by ROLLBACK); unlike it, it costs a tombstone per
/// row (space comes back when old versions are collected).
pub fn plan_truncate(catalog: &dyn Tables, name: &ObjectName) -> Result<DmlPlan> {
    let (def, table) = existing_table(catalog, name)?;
    let select_sql = format!(
        "SELECT {} FROM {}",
        key_columns(&def, &table).join(", "),
        from_clause(&def, &table, &[])
    );
    Ok(DmlPlan {
        kind: DmlKind::Delete,
        table: def,
        select_sql,
        joined: false,
        returning: None,
    })
}

/// Writes a batch of the rows the SELECT found; returns how many rows it
/// affected, and the rows as RETURNING sees them: an UPDATE's new rows, a
/// DELETE's old ones (when its SELECT read them). `seen` holds the keys of
/// the rows a joined statement wrote in earlier batches (a row that
/// matches again is written once, as in PostgreSQL); it stays empty
/// otherwise, where each row comes once.
pub fn apply(
    plan: &DmlPlan,
    writer: &RowWriter,
    txn: &mut Transaction,
    batch: &RecordBatch,
    seen: &mut HashSet<Vec<u8>>,
) -> Result<(u64, Option<RecordBatch>)> {
    let def = &plan.table;
    let key_len = def.primary_key.len();
    let mut affected = 0;
    let mut old_keys = Vec::with_capacity(batch.num_rows());
    let mut fresh = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut pk = Vec::new();
        for col in 0..key_len {
            encode_key_value(&mut pk, batch.column(col).as_ref(), row)?;
        }
        let key = row_key(def.id.0, &pk);
        // With UPDATE ... FROM a row may match several times; like
        // PostgreSQL, it is updated once.
        let first = !plan.joined || seen.insert(key.clone());
        affected += u64::from(first);
        fresh.push(first);
        old_keys.push(key);
    }
    // The rows the SELECT gave after their keys, each once.
    let once: BooleanArray = fresh.iter().map(|f| Some(*f)).collect();
    let values = |columns: Vec<ArrayRef>| -> Result<RecordBatch> {
        Ok(filter_record_batch(&statement_rows(def, columns)?, &once)?)
    };
    let rows = match plan.kind {
        DmlKind::Delete => {
            for key in old_keys {
                txn.delete(key);
            }
            let read_old_rows = batch.num_columns() > key_len;
            read_old_rows
                .then(|| values(batch.columns()[key_len..].to_vec()))
                .transpose()?
        }
        DmlKind::Update => {
            let options = CastOptions {
                safe: false,
                ..Default::default()
            };
            let columns = batch.columns()[key_len..]
                .iter()
                .zip(def.row_schema().fields())
                .map(|(array, field)| cast_with_options(array, field.data_type(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| super::errors::classify(e.into()))?;
            // NOT NULL is checked by the writer, with PostgreSQL's error.
            let new_rows = values(columns)?;
            let old_keys: Vec<Vec<u8>> = old_keys
                .into_iter()
                .zip(&fresh)
                .filter_map(|(k, f)| f.then_some(k))
                .collect();
            Some(writer.update(txn, &old_keys, &new_rows)?)
        }
    };
    Ok((affected, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{create_for_test, Catalog, ColumnDef, TableId};
    use crate::storage::Storage;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::load(&Storage::open(dir.path()).unwrap()).unwrap();
        let column = |name: &str, sql_type| ColumnDef {
            name: name.into(),
            sql_type,
            nullable: true,
            default: None,
        };
        let def = TableDef {
            id: TableId(0),
            name: "t".into(),
            columns: vec![column("a", SqlType::Integer), column("b", SqlType::Text)],
            primary_key: vec![0],
            hidden_rowid: false,
            primary_key_name: None,
            derived: Default::default(),
        };
        create_for_test(&catalog, def);
        (dir, catalog)
    }

    fn parse(sql: &str) -> datafusion::sql::sqlparser::ast::Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn update_selects_old_key_and_new_row_with_the_same_where() {
        let (_dir, catalog) = catalog();
        let datafusion::sql::sqlparser::ast::Statement::Update(update) =
            parse("UPDATE t SET b = upper(b) FROM u WHERE t.a = u.a AND u.x > $1")
        else {
            panic!("not an update")
        };
        let plan = plan_update(&catalog, &update).unwrap();
        assert_eq!(
            plan.select_sql,
            "SELECT \"t\".\"a\" AS \"key_0\", \"t\".\"a\" AS \"new_0\", \
             CAST((upper(b)) AS TEXT) AS \"new_1\" FROM shardforge_internal.\"t\" AS \"t\", u WHERE t.a = u.a AND u.x > $1"
        );
    }

    #[test]
    fn delete_selects_keys_under_its_alias() {
        let (_dir, catalog) = catalog();
        let datafusion::sql::sqlparser::ast::Statement::Delete(delete) =
            parse("DELETE FROM t AS x WHERE x.b IN (SELECT b FROM t WHERE a > 2)")
        else {
            panic!("not a delete")
        };
        let plan = plan_delete(&catalog, &delete).unwrap();
        assert_eq!(
            plan.select_sql,
            "SELECT \"x\".\"a\" AS \"key_0\" FROM shardforge_internal.\"t\" AS \"x\" \
             WHERE x.b IN (SELECT b FROM t WHERE a > 2)"
        );
    }

    #[test]
    fn unknown_targets_are_errors_not_all_rows() {
        let (_dir, catalog) = catalog();
        let datafusion::sql::sqlparser::ast::Statement::Update(update) =
            parse("UPDATE t SET nope = 1")
        else {
            panic!("not an update")
        };
        assert!(matches!(
            plan_update(&catalog, &update),
            Err(Error::Input(InputError::UndefinedColumn, _))
        ));
        let datafusion::sql::sqlparser::ast::Statement::Delete(delete) = parse("DELETE FROM nope")
        else {
            panic!("not a delete")
        };
        assert!(matches!(
            plan_delete(&catalog, &delete),
            Err(Error::Input(InputError::UndefinedTable, _))
        ));
    }
}
