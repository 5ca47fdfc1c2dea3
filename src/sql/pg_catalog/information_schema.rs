//! `information_schema`: DataFusion's views, but `columns`, `tables` and
//! `schemata` as PostgreSQL's, and `table_constraints` and
//! `key_column_usage` (which DataFusion has not; Sequelize finds primary
//! keys with them) with the primary keys. DataFusion's `columns` named each column's
//! type after its Arrow type (`Int32`, `Utf8`, `Decimal128(10, 2)`) and had
//! 15 of PostgreSQL's 44 columns (no `udt_name`): BI tools and ORMs
//! (TypeORM, Knex, Metabase, ...) learn a schema from `data_type`,
//! `udt_name` and the lengths and precisions. Its `tables` had 4 of 12
//! columns, and its `schemata` listed ShardForge's internal schema and not
//! `information_schema`.
//!
//! A user table's columns are described from its definition (the declared
//! `varchar(20)`, `numeric(10,2)`, `text[]`, the DEFAULT as written); the
//! catalogs' own from their Arrow fields, as RowDescription describes them
//! (`sql::wire_types::pg_type`).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::common::Result as DFResult;
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use postgres_types::Kind;

use super::keys::has_key;
use crate::catalog::types::sql_type_name;
use crate::catalog::{SqlType, DATABASE, PUBLIC_SCHEMA};
use crate::sql::ddl::shown_default;
use crate::sql::provider::{ShardedTableProvider, INTERNAL_SCHEMA};
use crate::sql::wire_types::pg_type;

/// `information_schema`: [`InformationSchemaProvider`]'s tables, `columns`,
/// `tables` and `schemata` replaced by [`ViewTable`]s.
#[derive(Debug)]
pub struct InformationSchema {
    inner: InformationSchemaProvider,
    catalogs: Arc<dyn CatalogProviderList>,
}

impl InformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        Self {
            inner: InformationSchemaProvider::new(catalogs.clone()),
            catalogs,
        }
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(["table_constraints".into(), "key_column_usage".into()]);
        names
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let view = match name {
            "columns" => View::Columns,
            "tables" => View::Tables,
            "schemata" => View::Schemata,
            "table_constraints" => View::TableConstraints,
            "key_column_usage" => View::KeyColumnUsage,
            _ => return self.inner.table(name).await,
        };
        Ok(Some(Arc::new(ViewTable {
            view,
            catalogs: self.catalogs.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) || matches!(name, "table_constraints" | "key_column_usage")
    }
}

/// A view ShardForge answers itself.
#[derive(Debug, Clone, Copy)]
enum View {
    Columns,
    Tables,
    Schemata,
    TableConstraints,
    KeyColumnUsage,
}

/// PostgreSQL's columns of `information_schema.tables`, in its order; true
/// for the `cardinal_number` (integer) ones.
const TABLES: [(&str, bool); 12] = [
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("table_type", false),
    ("self_referencing_column_name", false),
    ("reference_generation", false),
    ("user_defined_type_catalog", false),
    ("user_defined_type_schema", false),
    ("user_defined_type_name", false),
    ("is_insertable_into", false),
    ("is_typed", false),
    ("commit_action", false),
];

/// PostgreSQL's columns of `information_schema.schemata`.
const SCHEMATA: [(&str, bool); 7] = [
    ("catalog_name", false),
    ("schema_name", false),
    ("schema_owner", false),
    ("default_character_set_catalog", false),
    ("default_character_set_schema", false),
    ("default_character_set_name", false),
    ("sql_path", false),
];

/// PostgreSQL's columns of `information_schema.table_constraints`. Its
/// rows for NOT NULL (CHECK constraints named after object ids) are not
/// listed.
const TABLE_CONSTRAINTS: [(&str, bool); 11] = [
    ("constraint_catalog", false),
    ("constraint_schema", false),
    ("constraint_name", false),
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("constraint_type", false),
    ("is_deferrable", false),
    ("initially_deferred", false),
    ("enforced", false),
    ("nulls_distinct", false),
];

/// PostgreSQL's columns of `information_schema.key_column_usage`.
const KEY_COLUMN_USAGE: [(&str, bool); 9] = [
    ("constraint_catalog", false),
    ("constraint_schema", false),
    ("constraint_name", false),
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("column_name", false),
    ("ordinal_position", true),
    ("position_in_unique_constraint", true),
];

/// PostgreSQL's columns of `information_schema.columns`.
const COLUMNS: [(&str, bool); 44] = [
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("column_name", false),
    ("ordinal_position", true),
    ("column_default", false),
    ("is_nullable", false),
    ("data_type", false),
    ("character_maximum_length", true),
    ("character_octet_length", true),
    ("numeric_precision", true),
    ("numeric_precision_radix", true),
    ("numeric_scale", true),
    ("datetime_precision", true),
    ("interval_type", false),
    ("interval_precision", true),
    ("character_set_catalog", false),
    ("character_set_schema", false),
    ("character_set_name", false),
    ("collation_catalog", false),
    ("collation_schema", false),
    ("collation_name", false),
    ("domain_catalog", false),
    ("domain_schema", false),
    ("domain_name", false),
    ("udt_catalog", false),
    ("udt_schema", false),
    ("udt_name", false),
    ("scope_catalog", false),
    ("scope_schema", false),
    ("scope_name", false),
    ("maximum_cardinality", true),
    ("dtd_identifier", false),
    ("is_self_referencing", false),
    ("is_identity", false),
    ("identity_generation", false),
    ("identity_start", false),
    ("identity_increment", false),
    ("identity_maximum", false),
    ("identity_minimum", false),
    ("identity_cycle", false),
    ("is_generated", false),
    ("generation_expression", false),
    ("is_updatable", false),
];

/// The largest value of a `text` or unbounded `varchar`, in bytes.
const MAX_TEXT_OCTETS: i32 = 1 << 30;

#[derive(Debug)]
struct ViewTable {
    view: View,
    catalogs: Arc<dyn CatalogProviderList>,
}

/// One row of `columns`: its values by column name (absent: NULL).
#[derive(Default, Clone)]
struct Row {
    texts: Vec<(&'static str, String)>,
    numbers: Vec<(&'static str, i32)>,
}

impl Row {
    fn text(&mut self, column: &'static str, value: impl Into<String>) {
        self.texts.push((column, value.into()));
    }

    fn number(&mut self, column: &'static str, value: Option<i32>) {
        if let Some(value) = value {
            self.numbers.push((column, value));
        }
    }
}

/// The type columns of a column of `field`'s type (`sql_type`, for a
/// user table's, as declared).
fn describe_type(row: &mut Row, field: &Field, sql_type: Option<&SqlType>) {
    let Ok(pg) = pg_type(field) else {
        return;
    };
    let typname = pg.name().to_string();
    let array = matches!(pg.kind(), Kind::Array(_));
    row.text(
        "data_type",
        match array {
            true => "ARRAY".to_string(),
            false => sql_type_name(&typname),
        },
    );
    row.text("udt_catalog", DATABASE);
    row.text("udt_schema", "pg_catalog");
    row.text("udt_name", typname.clone());
    let length = sql_type.and_then(SqlType::max_chars).map(|n| n as i32);
    row.number("character_maximum_length", length);
    if matches!(typname.as_str(), "text" | "varchar" | "bpchar") {
        // UTF-8: at most four bytes a character.
        let octets = length.map_or(MAX_TEXT_OCTETS, |n| n.saturating_mul(4));
        row.number("character_octet_length", Some(octets));
    }
    let (precision, radix, scale) = match (typname.as_str(), field.data_type()) {
        ("int2", _) => (Some(16), Some(2), Some(0)),
        ("int4", _) => (Some(32), Some(2), Some(0)),
        ("int8", _) => (Some(64), Some(2), Some(0)),
        ("float4", _) => (Some(24), Some(2), None),
        ("float8", _) => (Some(53), Some(2), None),
        ("numeric", _) if sql_type == Some(&SqlType::UnconstrainedNumeric) => {
            (None, Some(10), None)
        }
        ("numeric", DataType::Decimal128(p, s) | DataType::Decimal256(p, s)) => {
            (Some(i32::from(*p)), Some(10), Some(i32::from(*s)))
        }
        ("numeric", _) => (None, Some(10), None),
        _ => (None, None, None),
    };
    row.number("numeric_precision", precision);
    row.number("numeric_precision_radix", radix);
    row.number("numeric_scale", scale);
    let datetime = match typname.as_str() {
        "date" => Some(0),
        "time" | "timetz" | "timestamp" | "timestamptz" | "interval" => {
            let declared = sql_type.and_then(SqlType::fraction_digits);
            Some(declared.map_or(6, i32::from))
        }
        _ => None,
    };
    row.number("datetime_precision", datetime);
}

impl ViewTable {
    fn columns(&self) -> &'static [(&'static str, bool)] {
        match self.view {
            View::Columns => &COLUMNS,
            View::Tables => &TABLES,
            View::Schemata => &SCHEMATA,
            View::TableConstraints => &TABLE_CONSTRAINTS,
            View::KeyColumnUsage => &KEY_COLUMN_USAGE,
        }
    }

    /// The view's rows, in catalog, schema and table order: a row per
    /// schema, per table, or per column of every table.
    async fn rows(&self) -> DFResult<Vec<Row>> {
        let mut rows = Vec::new();
        for catalog_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else {
                continue;
            };
            let mut schema_names = catalog.schema_names();
            schema_names.retain(|name| name != INTERNAL_SCHEMA);
            for schema_name in schema_names {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                if let View::Schemata = self.view {
                    rows.push(schemata_row(&catalog_name, &schema_name));
                    continue;
                }
                let mut in_schema = Row::default();
                in_schema.text("table_catalog", catalog_name.clone());
                in_schema.text("table_schema", schema_name.clone());
                for table_name in schema.table_names() {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    let mut row = in_schema.clone();
                    row.text("table_name", table_name);
                    let base = matches!(table.table_type(), TableType::Base);
                    match self.view {
                        View::Tables => {
                            row.text("table_type", if base { "BASE TABLE" } else { "VIEW" });
                            row.text("is_insertable_into", yes_or_no(base));
                            row.text("is_typed", "NO");
                            rows.push(row);
                        }
                        View::Columns => column_rows(&row, table.as_ref(), base, &mut rows),
                        View::TableConstraints | View::KeyColumnUsage => {
                            key_rows(self.view, &row, table.as_ref(), &mut rows)
                        }
                        View::Schemata => {}
                    }
                }
            }
        }
        Ok(rows)
    }
}

fn yes_or_no(yes: bool) -> &'static str {
    match yes {
        true => "YES",
        false => "NO",
    }
}

/// `schemata`'s row of a schema.
fn schemata_row(catalog: &str, schema: &str) -> Row {
    let mut row = Row::default();
    row.text("catalog_name", catalog);
    row.text("schema_name", schema);
    // PostgreSQL 15's owners.
    let owner = match schema {
        PUBLIC_SCHEMA => "pg_database_owner",
        _ => "postgres",
    };
    row.text("schema_owner", owner);
    row
}

/// `table_constraints`' row or `key_column_usage`'s rows of `table`'s
/// primary key, if it has one (`row` holds its catalog, schema and name).
fn key_rows(view: View, row: &Row, table: &dyn TableProvider, rows: &mut Vec<Row>) {
    let Some(def) = (table as &dyn Any)
        .downcast_ref::<ShardedTableProvider>()
        .map(ShardedTableProvider::def)
        .filter(|def| has_key(def))
    else {
        return;
    };
    let mut row = row.clone();
    for (from, to) in [
        ("table_catalog", "constraint_catalog"),
        ("table_schema", "constraint_schema"),
    ] {
        if let Some((_, value)) = row.texts.iter().find(|(name, _)| *name == from) {
            let value = value.clone();
            row.text(to, value);
        }
    }
    row.text("constraint_name", def.key_name());
    if let View::TableConstraints = view {
        row.text("constraint_type", "PRIMARY KEY");
        row.text("is_deferrable", "NO");
        row.text("initially_deferred", "NO");
        row.text("enforced", "YES");
        rows.push(row);
        return;
    }
    // In the table's column order, each with its place in the key.
    let mut key: Vec<(usize, usize)> = def.primary_key.iter().copied().zip(1..).collect();
    key.sort();
    for (column, place) in key {
        let mut row = row.clone();
        row.text("column_name", def.columns[column].name.clone());
        row.number("ordinal_position", i32::try_from(place).ok());
        rows.push(row);
    }
}

/// `columns`' rows of `table` (`row` holds its catalog, schema and name).
fn column_rows(row: &Row, table: &dyn TableProvider, base: bool, rows: &mut Vec<Row>) {
    let def = (table as &dyn Any)
        .downcast_ref::<ShardedTableProvider>()
        .map(ShardedTableProvider::def);
    for (i, field) in table.schema().fields().iter().enumerate() {
        let column = def.and_then(|d| d.columns.get(i));
        let mut row = row.clone();
        row.text("column_name", field.name().clone());
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        row.number("ordinal_position", Some(position));
        if let Some(default) = column.and_then(shown_default) {
            row.text("column_default", default);
        }
        let nullable = column.map_or(field.is_nullable(), |c| c.nullable);
        row.text("is_nullable", yes_or_no(nullable));
        match column.map(|c| &c.sql_type) {
            Some(t) => {
                let declared = Field::new("", t.to_arrow(), true).with_metadata(t.metadata());
                describe_type(&mut row, &declared, Some(t));
            }
            None => describe_type(&mut row, field, None),
        }
        row.text("dtd_identifier", position.to_string());
        row.text("is_self_referencing", "NO");
        row.text("is_identity", "NO");
        row.text("identity_cycle", "NO");
        row.text("is_generated", "NEVER");
        row.text("is_updatable", yes_or_no(base));
        rows.push(row);
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|(name, number)| match number {
                true => Field::new(*name, DataType::Int32, true),
                false => Field::new(*name, DataType::Utf8, true),
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let rows = self.rows().await?;
        let columns: Vec<ArrayRef> = self
            .columns()
            .iter()
            .map(|(name, number)| -> ArrayRef {
                match number {
                    true => Arc::new(
                        rows.iter()
                            .map(|r| r.numbers.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                            .collect::<Int32Array>(),
                    ),
                    false => Arc::new(
                        rows.iter()
                            .map(|r| {
                                r.texts
                                    .iter()
                                    .find(|(n, _)| n == name)
                                    .map(|(_, v)| v.as_str())
                            })
                            .collect::<StringArray>(),
                    ),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema(), columns)?;
        MemTable::try_new(self.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
