//! Primary keys in `pg_catalog`, as PostgreSQL shows them. A table's key
//! is a unique btree index named as its constraint (`TableDef::key_name`:
//! the name given in CREATE TABLE, else `<table>_pkey`; a `pg_class` row of kind
//! `i` and a `pg_index` row) behind a constraint of type `p`
//! (`pg_constraint`). psql's `\d` prints it under "Indexes:", `\di`
//! lists it and `\d <table>_pkey` shows its columns (`pg_attribute` rows
//! of the index, [`index_attributes`]); SQLAlchemy's inspector reads the key's columns from
//! `pg_index.indkey` and `pg_constraint`; `pg_get_indexdef` and
//! `pg_get_constraintdef` give its definition.
//!
//! Object ids: datafusion-pg-catalog numbers tables from 16384 up with a
//! counter of its own. A key's index and constraint get ids derived from
//! the table's ShardForge id, above any the counter reaches
//! ([`DERIVED_OIDS`]), so the functions find the table from the id alone.
//!
//! `pg_index`'s `indkey` and `indoption` (PostgreSQL's int2vector) and
//! `indclass` and `indcollation` (oidvector) are arrays, as PostgreSQL's
//! are (SQLAlchemy unnests them), printed as PostgreSQL prints them
//! (`1 2`); so are `pg_constraint`'s `conkey` and `confkey` (int2[]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int16Array, Int32Array, ListBuilder, PrimitiveBuilder,
    StringArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Int16Type, Int32Type, Schema, SchemaRef,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::cast::{as_int16_array, as_int32_array};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use pgwire::api::Type;

use super::{column, UserTables};
use crate::catalog::{Catalog, SqlType, TableDef, TableId, PG_TYPE_METADATA, PUBLIC_SCHEMA};
use crate::sql::functions::quote::ident;
use crate::sql::wire_types::pg_type;

/// The first object id of keys' indexes and constraints: table `n`'s
/// index is `DERIVED_OIDS + 2n`, its constraint the next one.
const DERIVED_OIDS: i64 = 1 << 30;
/// PostgreSQL's heap and btree access methods (`pg_am`).
const HEAP: i32 = 2;
const BTREE: i32 = 403;
/// PostgreSQL's default collation (`pg_collation`).
const DEFAULT_COLLATION: i32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derived {
    Index = 0,
    Constraint = 1,
}

fn derived_oid(table: TableId, kind: Derived) -> Option<i32> {
    i32::try_from(DERIVED_OIDS + 2 * i64::from(table.0) + kind as i64).ok()
}

/// The table whose `kind` has the object id `oid`.
fn derived_table(oid: i64, kind: Derived) -> Option<TableId> {
    let offset = oid.checked_sub(DERIVED_OIDS).filter(|o| *o >= 0)?;
    (offset % 2 == kind as i64)
        .then(|| u32::try_from(offset / 2).ok().map(TableId))
        .flatten()
}

/// The tables with a primary key (not the hidden row id), by `pg_class`
/// oid, in oid order.
fn keyed(tables: &UserTables) -> Vec<(i32, &Arc<TableDef>)> {
    let mut keyed: Vec<_> = tables
        .by_oid
        .iter()
        .filter(|(_, def)| has_key(def))
        .map(|(oid, def)| (*oid, def))
        .collect();
    keyed.sort_by_key(|(oid, _)| *oid);
    keyed
}

pub(super) fn has_key(def: &TableDef) -> bool {
    !def.hidden_rowid && !def.primary_key.is_empty()
}

/// The key's columns as `attnum`s.
fn key_attnums(def: &TableDef) -> Vec<i32> {
    def.primary_key.iter().map(|i| *i as i32 + 1).collect()
}

/// A list of `values` of each keyed table.
fn per_key(keyed: &[(i32, &Arc<TableDef>)], values: &dyn Fn(&TableDef) -> Vec<i32>) -> ArrayRef {
    let mut lists = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new());
    for (_, def) in keyed {
        lists.values().extend(values(def).into_iter().map(Some));
        lists.append(true);
    }
    Arc::new(lists.finish())
}

/// `pg_class` in `schema` ([`class_schema`]) with tables' access method
/// (`heap`), the tables that have a key marked `relhasindex` and a row for
/// each key's index (the table's own row, changed where an index differs).
pub(super) fn classes(
    batch: &RecordBatch,
    schema: &SchemaRef,
    tables: &UserTables,
) -> DFResult<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for field in &schema.fields()[batch.num_columns()..] {
        columns.push(datafusion::arrow::array::new_null_array(
            field.data_type(),
            batch.num_rows(),
        ));
    }
    let batch = &RecordBatch::try_new(schema.clone(), columns)?;
    // Tables are stored by one access method, shown as PostgreSQL's `heap`.
    let kinds = column(batch, "relkind")?.as_string::<i32>();
    let methods: Int32Array = as_int32_array(column(batch, "relam")?)?
        .iter()
        .zip(kinds.iter())
        .map(|(method, kind)| match kind {
            Some("r" | "m") if method == Some(0) => Some(HEAP),
            _ => method,
        })
        .collect();
    let batch = &with_columns(batch, vec![("relam", Arc::new(methods))])?;
    let oids = as_int32_array(column(batch, "oid")?)?;
    let mut rows = Vec::new();
    let mut indexes = Vec::new();
    for row in 0..batch.num_rows() {
        let Some(def) = tables.by_oid.get(&oids.value(row)) else {
            continue;
        };
        if let (true, Some(oid)) = (has_key(def), derived_oid(def.id, Derived::Index)) {
            rows.push(row as u32);
            indexes.push((oid, def));
        }
    }
    if rows.is_empty() {
        return Ok(batch.clone());
    }
    let has_index: BooleanArray = column(batch, "relhasindex")?
        .as_boolean()
        .iter()
        .enumerate()
        .map(|(row, v)| Some(v.unwrap_or(false) || rows.contains(&(row as u32))))
        .collect();
    let tables_batch = with_columns(batch, vec![("relhasindex", Arc::new(has_index))])?;
    let taken = take_record_batch(&tables_batch, &UInt32Array::from(rows))?;
    let n = indexes.len();
    let index_oids = Int32Array::from_iter_values(indexes.iter().map(|(oid, _)| *oid));
    let index_rows = with_columns(
        &taken,
        vec![
            ("oid", Arc::new(index_oids.clone())),
            ("relfilenode", Arc::new(index_oids)),
            (
                "relname",
                Arc::new(StringArray::from_iter_values(
                    indexes.iter().map(|(_, def)| def.key_name()),
                )),
            ),
            ("relkind", Arc::new(StringArray::from(vec!["i"; n]))),
            ("relam", Arc::new(Int32Array::from(vec![BTREE; n]))),
            (
                "relnatts",
                Arc::new(Int16Array::from_iter_values(
                    indexes.iter().map(|(_, def)| def.primary_key.len() as i16),
                )),
            ),
            ("reltype", Arc::new(Int32Array::from(vec![0; n]))),
            ("relhasindex", Arc::new(BooleanArray::from(vec![false; n]))),
            ("relreplident", Arc::new(StringArray::from(vec!["n"; n]))),
        ],
    )?;
    Ok(concat_batches(schema, [&tables_batch, &index_rows])?)
}

/// `pg_attribute` rows of each key's index, made from its table's
/// `batch` rows: the key's columns in key order, numbered from 1, as
/// PostgreSQL lists an index's columns (psql's `\d INDEX` reads them).
pub(super) fn index_attributes(batch: &RecordBatch, tables: &UserTables) -> DFResult<RecordBatch> {
    let relids = as_int32_array(column(batch, "attrelid")?)?;
    let attnums = as_int16_array(column(batch, "attnum")?)?;
    let row_of: HashMap<(i32, i32), u32> = (0..batch.num_rows())
        .map(|row| {
            (
                (relids.value(row), i32::from(attnums.value(row))),
                row as u32,
            )
        })
        .collect();
    let (mut rows, mut index_oids, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    for (&oid, def) in &tables.by_oid {
        let Some(index) = derived_oid(def.id, Derived::Index).filter(|_| has_key(def)) else {
            continue;
        };
        for (position, attnum) in key_attnums(def).into_iter().enumerate() {
            if let Some(&row) = row_of.get(&(oid, attnum)) {
                rows.push(row);
                index_oids.push(index);
                numbers.push(position as i16 + 1);
            }
        }
    }
    let taken = take_record_batch(batch, &UInt32Array::from(rows))?;
    let n = taken.num_rows();
    with_columns(
        &taken,
        vec![
            ("attrelid", Arc::new(Int32Array::from(index_oids))),
            ("attnum", Arc::new(Int16Array::from(numbers))),
            ("atthasdef", Arc::new(BooleanArray::from(vec![false; n]))),
        ],
    )
}

/// `pg_class`'s columns datafusion-pg-catalog leaves out, all NULL here:
/// there are no privileges or storage options to show (SQLAlchemy's
/// reflection of indexes reads `reloptions`).
const MISSING_CLASS_COLUMNS: [&str; 2] = ["relacl", "reloptions"];

/// `base` (pg_class's schema) with [`MISSING_CLASS_COLUMNS`].
pub(super) fn class_schema(base: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    for name in MISSING_CLASS_COLUMNS {
        if base.field_with_name(name).is_err() {
            fields.push(Field::new(
                name,
                DataType::new_list(DataType::Utf8, true),
                true,
            ));
        }
    }
    Arc::new(Schema::new(fields))
}

/// How `pg_index`'s and `pg_constraint`'s array columns are typed: their
/// element type and the PostgreSQL type that prints them, if not an
/// array's.
fn array_column(name: &str) -> Option<(DataType, Option<&'static str>)> {
    Some(match name {
        "indkey" | "indoption" => (DataType::Int16, Some("int2vector")),
        "indclass" | "indcollation" => (DataType::Int32, Some("oidvector")),
        "conkey" | "confkey" => (DataType::Int16, None),
        _ => return None,
    })
}

/// `base` (pg_index's or pg_constraint's schema) with its array columns
/// as lists.
pub(super) fn array_schema(base: &Schema) -> SchemaRef {
    let fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|f| match array_column(f.name()) {
            Some((element, pg)) => {
                let list = Field::new(f.name(), DataType::new_list(element, true), f.is_nullable());
                match pg {
                    Some(pg) => list.with_metadata(HashMap::from([(
                        PG_TYPE_METADATA.to_string(),
                        pg.to_string(),
                    )])),
                    None => list,
                }
            }
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A datafusion-pg-catalog batch of `pg_index` or `pg_constraint` in
/// `schema` ([`array_schema`]): its arrays are text there (`1 2`, `[1]`).
pub(super) fn with_arrays(batch: &RecordBatch, schema: &SchemaRef) -> DFResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| match array_column(field.name()) {
            Some((DataType::Int16, _)) => Ok(text_lists::<Int16Type>(array)),
            Some(_) => Ok(text_lists::<Int32Type>(array)),
            None => Ok(array.clone()),
        })
        .collect::<DFResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Lists of the numbers in each text of `array` (`1 2`, `[2, 20, 3]`).
fn text_lists<T: ArrowPrimitiveType>(array: &ArrayRef) -> ArrayRef
where
    T::Native: std::str::FromStr,
{
    let Some(texts) = array.as_string_opt::<i32>() else {
        return array.clone();
    };
    let mut lists = ListBuilder::new(PrimitiveBuilder::<T>::new());
    for text in texts.iter() {
        match text {
            Some(text) => {
                let numbers = text
                    .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
                    .filter_map(|n| n.parse::<T::Native>().ok());
                lists.values().extend(numbers.map(Some));
                lists.append(true);
            }
            None => lists.append(false),
        }
    }
    Arc::new(lists.finish())
}

/// `pg_index` rows of the keys, in `schema` ([`array_schema`]).
/// `opclasses` maps a type's oid to its default btree operator class.
pub(super) fn indexes(
    schema: &SchemaRef,
    tables: &UserTables,
    opclasses: &HashMap<i32, i32>,
) -> DFResult<RecordBatch> {
    let keyed = keyed(tables);
    let n = keyed.len();
    let key_types = |def: &TableDef| -> Vec<SqlType> {
        def.primary_key
            .iter()
            .map(|i| def.columns[*i].sql_type.clone())
            .collect()
    };
    let lists = |values: &dyn Fn(&TableDef) -> Vec<i32>| per_key(&keyed, values);
    let attnums = lists(&key_attnums);
    let options = lists(&|def| vec![0; def.primary_key.len()]);
    let collations = lists(&|def| {
        key_types(def)
            .iter()
            .map(|t| match collatable(t) {
                true => DEFAULT_COLLATION,
                false => 0,
            })
            .collect()
    });
    let classes = lists(&|def| {
        key_types(def)
            .iter()
            .map(|t| opclass(t, opclasses))
            .collect()
    });
    let index_oids = keyed
        .iter()
        .map(|(_, def)| derived_oid(def.id, Derived::Index));
    let natts = keyed.iter().map(|(_, def)| def.primary_key.len() as i16);
    build(schema, n, |name| {
        Some(match name {
            "indexrelid" => Arc::new(index_oids.clone().collect::<Int32Array>()),
            "indrelid" => Arc::new(Int32Array::from_iter_values(keyed.iter().map(|(o, _)| *o))),
            "indnatts" | "indnkeyatts" => Arc::new(Int16Array::from_iter_values(natts.clone())),
            "indisunique" | "indisprimary" | "indimmediate" | "indisvalid" | "indisready"
            | "indislive" => Arc::new(BooleanArray::from(vec![true; n])),
            "indnullsnotdistinct"
            | "indisexclusion"
            | "indisclustered"
            | "indcheckxmin"
            | "indisreplident" => Arc::new(BooleanArray::from(vec![false; n])),
            "indkey" => attnums.clone(),
            "indoption" => options.clone(),
            "indcollation" => collations.clone(),
            "indclass" => classes.clone(),
            _ => return None,
        })
    })
}

/// `pg_constraint` rows of the keys, in `schema` ([`array_schema`]).
pub(super) fn constraints(schema: &SchemaRef, tables: &UserTables) -> DFResult<RecordBatch> {
    let keyed = keyed(tables);
    let n = keyed.len();
    let oids = |kind| -> ArrayRef {
        Arc::new(
            keyed
                .iter()
                .map(|(_, def)| derived_oid(def.id, kind))
                .collect::<Int32Array>(),
        )
    };
    let conkeys = per_key(&keyed, &key_attnums);
    let text = |value: &str| -> ArrayRef { Arc::new(StringArray::from(vec![value; n])) };
    build(schema, n, |name| {
        Some(match name {
            "oid" => oids(Derived::Constraint),
            "conindid" => oids(Derived::Index),
            "conname" => Arc::new(StringArray::from_iter_values(
                keyed.iter().map(|(_, def)| def.key_name()),
            )),
            "connamespace" => Arc::new(Int32Array::from(vec![tables.namespace; n])),
            "contype" => text("p"),
            "conrelid" => Arc::new(Int32Array::from_iter_values(keyed.iter().map(|(o, _)| *o))),
            "contypid" | "conparentid" | "confrelid" => Arc::new(Int32Array::from(vec![0; n])),
            "confupdtype" | "confdeltype" | "confmatchtype" => text(" "),
            "condeferrable" | "condeferred" => Arc::new(BooleanArray::from(vec![false; n])),
            "convalidated" | "conislocal" | "connoinherit" => {
                Arc::new(BooleanArray::from(vec![true; n]))
            }
            "coninhcount" => Arc::new(Int32Array::from(vec![0; n])),
            "conkey" => conkeys.clone(),
            _ => return None,
        })
    })
}

/// A batch of `rows` rows in `schema`: each column `value` gives (cast to
/// the column's type), the others NULL.
fn build(
    schema: &SchemaRef,
    rows: usize,
    value: impl Fn(&str) -> Option<ArrayRef>,
) -> DFResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match value(field.name()) {
            Some(array) => Ok(cast(&array, field.data_type())?),
            None => Ok(datafusion::arrow::array::new_null_array(
                field.data_type(),
                rows,
            )),
        })
        .collect::<DFResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `batch` with the named columns replaced (cast to their types).
pub(super) fn with_columns(
    batch: &RecordBatch,
    replaced: Vec<(&str, ArrayRef)>,
) -> DFResult<RecordBatch> {
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    for (name, array) in replaced {
        let i = schema.index_of(name)?;
        columns[i] = cast(&array, schema.field(i).data_type())?;
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The PostgreSQL type oid of a column of `sql_type`.
fn type_oid(sql_type: &SqlType) -> Option<i32> {
    let field = Field::new("", sql_type.to_arrow(), true).with_metadata(sql_type.metadata());
    pg_type(&field).ok().map(|t| t.oid() as i32)
}

fn collatable(sql_type: &SqlType) -> bool {
    matches!(
        sql_type,
        SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_)
    )
}

/// The default btree operator class of a key column (`varchar` is
/// compared as `text`, as in PostgreSQL); 0 if there is none.
fn opclass(sql_type: &SqlType, opclasses: &HashMap<i32, i32>) -> i32 {
    let oid = match sql_type {
        SqlType::Varchar(_) => Some(Type::TEXT.oid() as i32),
        other => type_oid(other),
    };
    oid.and_then(|oid| opclasses.get(&oid).copied())
        .unwrap_or(0)
}

/// The default btree operator classes of `pg_opclass` by input type.
pub(super) fn default_opclasses(batches: &[RecordBatch]) -> DFResult<HashMap<i32, i32>> {
    let mut classes = HashMap::new();
    for batch in batches {
        let int =
            |name| cast(column(batch, name)?, &DataType::Int32).map_err(DataFusionError::from);
        let (oids, methods, types) = (int("oid")?, int("opcmethod")?, int("opcintype")?);
        let defaults = cast(column(batch, "opcdefault")?, &DataType::Boolean)?;
        let (oids, methods, types) = (
            oids.as_primitive::<Int32Type>(),
            methods.as_primitive::<Int32Type>(),
            types.as_primitive::<Int32Type>(),
        );
        for row in 0..batch.num_rows() {
            if methods.value(row) == BTREE && defaults.as_boolean().value(row) {
                classes.insert(types.value(row), oids.value(row));
            }
        }
    }
    Ok(classes)
}

/// `pg_get_indexdef(index [, column, pretty])` and
/// `pg_get_constraintdef(constraint [, pretty])` of primary keys; NULL
/// for any other object.
pub(super) struct KeyDefinition {
    name: &'static str,
    kind: Derived,
    signature: Signature,
    catalog: Arc<Catalog>,
}

impl KeyDefinition {
    pub(super) fn index(catalog: Arc<Catalog>) -> Self {
        Self::new("pg_get_indexdef", Derived::Index, catalog)
    }

    pub(super) fn constraint(catalog: Arc<Catalog>) -> Self {
        Self::new("pg_get_constraintdef", Derived::Constraint, catalog)
    }

    fn new(name: &'static str, kind: Derived, catalog: Arc<Catalog>) -> Self {
        Self {
            name,
            kind,
            signature: Signature::variadic_any(Volatility::Stable),
            catalog,
        }
    }

    /// The definition of `oid`; `column` (pg_get_indexdef's) 1 and up
    /// asks for that key column's name alone, `pretty` for PostgreSQL's
    /// pretty form.
    fn definition(&self, oid: i64, column: i64, pretty: bool) -> Option<String> {
        let id = derived_table(oid, self.kind)?;
        let def = self.catalog.tables().into_iter().find(|t| t.id == id)?;
        if !has_key(&def) {
            return None;
        }
        let names: Vec<String> = def
            .primary_key
            .iter()
            .map(|i| ident(&def.columns[*i].name))
            .collect();
        Some(match (self.kind, column) {
            (Derived::Constraint, _) => format!("PRIMARY KEY ({})", names.join(", ")),
            // Pretty, the table is named as the search path finds it
            // (`public` is always on it), else qualified.
            (Derived::Index, 0) => format!(
                "CREATE UNIQUE INDEX {} ON {}{} USING btree ({})",
                ident(&def.key_name()),
                match pretty {
                    true => String::new(),
                    false => format!("{}.", ident(PUBLIC_SCHEMA)),
                },
                ident(&def.name),
                names.join(", ")
            ),
            (Derived::Index, column) => usize::try_from(column - 1)
                .ok()
                .and_then(|i| names.get(i).cloned())
                .unwrap_or_default(),
        })
    }
}

impl std::fmt::Debug for KeyDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for KeyDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for KeyDefinition {}

impl std::hash::Hash for KeyDefinition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for KeyDefinition {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let max_args = match self.kind {
            Derived::Index => 3,
            Derived::Constraint => 2,
        };
        if args.args.is_empty() || args.args.len() > max_args {
            return Err(DataFusionError::Plan(format!(
                "{} takes an object id and at most {} more arguments",
                self.name,
                max_args - 1
            )));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let oids = cast(&arrays[0], &DataType::Int64)?;
        let columns = match (self.kind, arrays.get(1)) {
            (Derived::Index, Some(column)) => Some(cast(column, &DataType::Int64)?),
            _ => None,
        };
        let pretty = match (self.kind, arrays.get(2)) {
            (Derived::Index, Some(flag)) => Some(cast(flag, &DataType::Boolean)?),
            _ => None,
        };
        // The functions are strict: a NULL argument gives NULL.
        let any_null = |row: usize| arrays.iter().any(|a| a.is_null(row));
        let oids = oids.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let definitions: StringArray = (0..oids.len())
            .map(|row| {
                let column = match &columns {
                    Some(c) if c.is_null(row) => return None,
                    Some(c) => c
                        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .value(row),
                    None => 0,
                };
                let pretty = pretty.as_ref().is_some_and(|p| p.as_boolean().value(row));
                match any_null(row) {
                    true => None,
                    false => self.definition(oids.value(row), column, pretty),
                }
            })
            .collect();
        let definitions: ArrayRef = Arc::new(definitions);
        crate::sql::analyze::like_arguments(&args.args, definitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_lead_back_to_their_table() {
        let table = TableId(1124);
        let index = derived_oid(table, Derived::Index).unwrap();
        let constraint = derived_oid(table, Derived::Constraint).unwrap();
        assert_eq!(constraint, index + 1);
        assert_eq!(derived_table(index.into(), Derived::Index), Some(table));
        assert_eq!(
            derived_table(constraint.into(), Derived::Constraint),
            Some(table)
        );
        assert_eq!(derived_table(index.into(), Derived::Constraint), None);
        assert_eq!(derived_table(16_456, Derived::Index), None);
    }
}
