//! The `pg_catalog` schema that psql, drivers and BI tools read.
//!
//! datafusion-pg-catalog builds it from DataFusion's catalog, which knows
//! only Arrow types. ShardForge's catalog knows more, so it is layered on
//! top: the [`INTERNAL_SCHEMA`] is not listed, `pg_attribute` carries each
//! column's declared type and modifier (`varchar(20)` is `1043` with typmod
//! 24, not `text`) and whether it has a default, and `pg_attrdef` holds the
//! defaults. Everything else is datafusion-pg-catalog's, so object ids
//! agree across the tables.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int16Array, Int32Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::common::cast::{as_int16_array, as_int32_array, as_string_array};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use pgwire::api::Type;

use super::ddl::shown_default;
use super::provider::INTERNAL_SCHEMA;
use crate::catalog::types::typname_of;
use crate::catalog::{Catalog, SqlType, TableDef, DATABASE, PUBLIC_SCHEMA};
use crate::error::{Error, InputError, Result};

mod format_type;
mod information_schema;
mod keys;

const PG_CATALOG: &str = "pg_catalog";

/// The function a cast to `regtype` is planned as (`regclass::RegCasts`).
pub const REGTYPE_IN: &str = "regtype_in";

/// Sets up `pg_catalog` (its tables and functions) in `ctx`'s database.
pub fn register(ctx: &SessionContext, catalog: Arc<Catalog>) -> Result<()> {
    // The functions; the schema it registers is replaced below.
    datafusion_pg_catalog::setup_pg_catalog(ctx, DATABASE, EmptyContextProvider)
        .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
    let visible = VisibleCatalogs(ctx.state().catalog_list().clone());
    let static_tables = PgCatalogStaticTables::try_new()
        .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
    let to_regtype = ToRegtype::new(static_tables.pg_type.data(), false)?;
    let regtype_in = ToRegtype::new(static_tables.pg_type.data(), true)?;
    let inner =
        PgCatalogSchemaProvider::try_new(visible, Arc::new(static_tables), EmptyContextProvider)
            .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
    let schema = PgCatalog {
        inner: Arc::new(inner),
        catalog: catalog.clone(),
    };
    let database = ctx
        .catalog(DATABASE)
        .ok_or_else(|| Error::Internal("no database catalog".into()))?;
    database
        .register_schema(PG_CATALOG, Arc::new(schema))
        .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
    // A schema of the catalog, not DataFusion's built-in one (which its
    // `information_schema` setting would put in front of it).
    let information_schema =
        information_schema::InformationSchema::new(ctx.state().catalog_list().clone());
    database
        .register_schema("information_schema", Arc::new(information_schema))
        .map_err(|e| Error::Internal(format!("information_schema: {e}")))?;
    ctx.register_udf(ScalarUDF::new_from_impl(PgGetExpr::default()));
    ctx.register_udf(pg_encoding_to_char().as_ref().clone());
    ctx.register_udf(ScalarUDF::new_from_impl(keys::KeyDefinition::index(
        catalog.clone(),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(keys::KeyDefinition::constraint(
        catalog.clone(),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(to_regtype));
    ctx.register_udf(ScalarUDF::new_from_impl(regtype_in));
    ctx.register_udf(ScalarUDF::new_from_impl(NoRelation {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
    }));
    ctx.register_udf(super::wire_types::pg_typeof());
    ctx.register_udf(ScalarUDF::new_from_impl(format_type::FormatType::new()));
    Ok(())
}

/// `to_regtype(name)`: the type `name` names in `pg_type`, or NULL if
/// there is none (psycopg's `TypeInfo.fetch` asks it, for `hstore` when
/// SQLAlchemy connects). Names are read as PostgreSQL reads them:
/// case-insensitive unless quoted, with an optional `pg_catalog.`, SQL's
/// spellings (`integer`, `character varying(20)`, `timestamp with time
/// zone`...) and `[]` for the array type. The result is the type's oid,
/// which compares with `pg_type.oid`, marked as a `regtype`: the client
/// sees it as one, and its text is the type's name (`integer`), as in
/// PostgreSQL.
///
/// `regtype_in(x)` is the cast `x::regtype` (`regclass::RegCasts`): a name
/// is read the same way, but one that names no type is an error (42704)
/// as in PostgreSQL, and a number (an oid) is taken as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToRegtype {
    signature: Signature,
    /// `pg_type`'s oids by `typname`.
    oids: Vec<(String, i32)>,
    /// `regtype_in`.
    cast: bool,
}

impl ToRegtype {
    fn new(pg_type: &[RecordBatch], cast: bool) -> Result<Self> {
        let mut oids = Vec::new();
        for batch in pg_type {
            let (Some(names), Some(ids)) =
                (batch.column_by_name("typname"), batch.column_by_name("oid"))
            else {
                return Err(Error::Internal("pg_type without typname or oid".into()));
            };
            let ids = datafusion::arrow::compute::cast(ids, &DataType::Int32)?;
            let names = datafusion::arrow::compute::cast(names, &DataType::Utf8)?;
            let (names, ids) = (names.as_string::<i32>(), ids.as_primitive::<Int32Type>());
            for (name, id) in names.iter().zip(ids.iter()) {
                if let (Some(name), Some(id)) = (name, id) {
                    oids.push((name.to_string(), id));
                }
            }
        }
        let signature = match cast {
            true => Signature::any(1, Volatility::Stable),
            false => Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        };
        Ok(Self {
            signature,
            oids,
            cast,
        })
    }

    fn oid(&self, name: &str) -> Option<i32> {
        let name = name.trim();
        let (name, array) = match name.strip_suffix("[]") {
            Some(element) => (element.trim_end(), true),
            None => (name, false),
        };
        let typname = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => quoted.to_string(),
            None => {
                let lower = name.to_lowercase();
                let lower = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
                // A modifier does not change the type: varchar(20) is varchar.
                let bare = lower.split('(').next().unwrap_or_default().trim();
                typname_of(bare).to_string()
            }
        };
        let typname = if array {
            format!("_{typname}")
        } else {
            typname
        };
        self.oids
            .iter()
            .find(|(n, _)| *n == typname)
            .map(|(_, oid)| *oid)
    }

    /// `name`'s oid: for `to_regtype`, NULL when no type has that name;
    /// for `regtype_in`, a number is an oid and an unknown name an error.
    fn resolve(&self, name: &str) -> DFResult<Option<i32>> {
        if !self.cast {
            return Ok(self.oid(name));
        }
        let digits = name.trim();
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            // An oid is unsigned; ShardForge carries it as an int4.
            return match digits.parse::<u32>() {
                Ok(oid) => Ok(Some(oid as i32)),
                Err(_) => Err(Error::input(
                    InputError::OutOfRange,
                    format!("value \"{digits}\" is out of range for type oid"),
                )
                .into()),
            };
        }
        match self.oid(name) {
            Some(oid) => Ok(Some(oid)),
            None => Err(Error::input(
                InputError::UndefinedObject,
                format!("type \"{}\" does not exist", name.trim()),
            )
            .into()),
        }
    }
}

impl ScalarUDFImpl for ToRegtype {
    fn name(&self) -> &str {
        match self.cast {
            true => REGTYPE_IN,
            false => "to_regtype",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DFResult<FieldRef> {
        Ok(super::wire_types::regtype_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let values = args.args[0].clone().into_array(args.number_rows)?;
        if !super::analyze::is_text(values.data_type()) {
            // An oid (or NULL): the cast keeps it.
            let oids = datafusion::arrow::compute::cast(&values, &DataType::Int32)?;
            return Ok(ColumnarValue::Array(oids));
        }
        let names = datafusion::arrow::compute::cast(&values, &DataType::Utf8)?;
        let oids: Int32Array = names
            .as_string::<i32>()
            .iter()
            .map(|name| {
                name.map(|n| self.resolve(n))
                    .transpose()
                    .map(Option::flatten)
            })
            .collect::<DFResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(oids)))
    }
}

/// `regclass_missing(name)`: the error of a cast of `name` to `regclass`
/// that found no relation (42P01), raised when it is evaluated: the cast
/// is `coalesce((lookup), regclass_missing(name))` (`regclass::RegCasts`).
/// Volatile, so that planning does not evaluate it ahead.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NoRelation {
    signature: Signature,
}

/// The name of [`NoRelation`].
pub const REGCLASS_MISSING: &str = "regclass_missing";

impl ScalarUDFImpl for NoRelation {
    fn name(&self) -> &str {
        REGCLASS_MISSING
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let names = args.args[0].clone().into_array(args.number_rows)?;
        match names.as_string::<i32>().iter().flatten().next() {
            Some(name) => Err(Error::input(
                InputError::UndefinedTable,
                format!("relation \"{name}\" does not exist"),
            )
            .into()),
            None => Ok(ColumnarValue::Array(Arc::new(Int32Array::new_null(
                args.number_rows,
            )))),
        }
    }
}

/// `pg_get_expr(adbin, relid [, pretty])`: ShardForge keeps expressions
/// (`pg_attrdef.adbin`) as SQL text, so they are their own source.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgGetExpr {
    signature: Signature,
}

impl Default for PgGetExpr {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for PgGetExpr {
    fn name(&self) -> &str {
        "pg_get_expr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        match args.args.first() {
            Some(expr) if (2..=3).contains(&args.args.len()) => expr.cast_to(&DataType::Utf8, None),
            _ => Err(DataFusionError::Plan(
                "pg_get_expr takes an expression, a relation and an optional pretty flag".into(),
            )),
        }
    }
}

/// DataFusion's catalogs without the internal schema.
#[derive(Debug, Clone)]
struct VisibleCatalogs(Arc<dyn CatalogProviderList>);

#[async_trait]
impl CatalogInfo for VisibleCatalogs {
    async fn catalog_names(&self) -> DFResult<Vec<String>> {
        CatalogInfo::catalog_names(&self.0).await
    }

    async fn schema_names(&self, catalog: &str) -> DFResult<Option<Vec<String>>> {
        let names = CatalogInfo::schema_names(&self.0, catalog).await?;
        Ok(names.map(|names| names.into_iter().filter(|n| n != INTERNAL_SCHEMA).collect()))
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> DFResult<Option<Vec<String>>> {
        if schema == INTERNAL_SCHEMA {
            return Ok(None);
        }
        CatalogInfo::table_names(&self.0, catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DFResult<Option<SchemaRef>> {
        CatalogInfo::table_schema(&self.0, catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DFResult<Option<TableType>> {
        CatalogInfo::table_type(&self.0, catalog, schema, table).await
    }
}

type Inner = PgCatalogSchemaProvider<VisibleCatalogs, EmptyContextProvider>;

struct PgCatalog {
    inner: Arc<Inner>,
    catalog: Arc<Catalog>,
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgCatalog")
    }
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let kind = match name.to_ascii_lowercase().as_str() {
            "pg_attribute" => Patched::Attribute,
            "pg_attrdef" => Patched::Attrdef,
            "pg_class" => Patched::Class,
            "pg_index" => Patched::Index,
            "pg_constraint" => Patched::Constraint,
            "pg_settings" => Patched::Settings,
            "pg_namespace" => Patched::Namespace,
            "pg_roles" => Patched::Roles,
            "pg_database" => Patched::Database,
            _ => return self.inner.table(name).await,
        };
        let Some(base) = self.inner.table(name).await? else {
            return Ok(None);
        };
        let schema = match kind {
            Patched::Index | Patched::Constraint => keys::array_schema(&base.schema()),
            Patched::Class => keys::class_schema(&base.schema()),
            _ => base.schema(),
        };
        Ok(Some(Arc::new(PatchedTable {
            kind,
            base,
            schema,
            inner: self.inner.clone(),
            catalog: self.catalog.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

#[derive(Debug, Clone, Copy)]
enum Patched {
    Attribute,
    Attrdef,
    Class,
    Index,
    Constraint,
    Settings,
    Namespace,
    Roles,
    Database,
}

/// A datafusion-pg-catalog table with ShardForge's column facts filled in.
struct PatchedTable {
    kind: Patched,
    base: Arc<dyn TableProvider>,
    /// The base's, with array columns as lists (`keys::array_schema`).
    schema: SchemaRef,
    inner: Arc<Inner>,
    catalog: Arc<Catalog>,
}

impl std::fmt::Debug for PatchedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PatchedTable({:?})", self.kind)
    }
}

#[async_trait]
impl TableProvider for PatchedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
        let tables = self.user_tables(state).await?;
        let base = read(&self.base, state).await?;
        let batches = match self.kind {
            Patched::Attribute => {
                let mut batches = base
                    .iter()
                    .map(|batch| patch_attributes(batch, &tables.by_oid))
                    .collect::<DFResult<Vec<_>>>()?;
                let indexes = batches
                    .iter()
                    .map(|batch| keys::index_attributes(batch, &tables))
                    .collect::<DFResult<Vec<_>>>()?;
                batches.extend(indexes);
                batches
            }
            Patched::Attrdef => vec![attrdefs(&self.schema, &tables.by_oid)?],
            Patched::Namespace => base
                .iter()
                .map(with_information_schema)
                .collect::<DFResult<Vec<_>>>()?,
            Patched::Roles => vec![session_role(&self.schema, state)?],
            Patched::Database => base
                .iter()
                .map(with_collation)
                .collect::<DFResult<Vec<_>>>()?,
            Patched::Settings => {
                let mut batches = base;
                batches.push(server_settings(&self.schema, &batches)?);
                batches
            }
            Patched::Class => base
                .iter()
                .map(|batch| keys::classes(batch, &self.schema, &tables))
                .collect::<DFResult<Vec<_>>>()?,
            Patched::Index | Patched::Constraint => {
                let mut batches = base
                    .iter()
                    .map(|batch| keys::with_arrays(batch, &self.schema))
                    .collect::<DFResult<Vec<_>>>()?;
                batches.push(match self.kind {
                    Patched::Index => {
                        let opclasses = match self.inner.table("pg_opclass").await? {
                            Some(table) => keys::default_opclasses(&read(&table, state).await?)?,
                            None => HashMap::new(),
                        };
                        keys::indexes(&self.schema, &tables, &opclasses)?
                    }
                    _ => keys::constraints(&self.schema, &tables)?,
                });
                batches
            }
        };
        MemTable::try_new(self.schema(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

impl PatchedTable {
    /// The user tables by the object id `pg_class` gives them.
    async fn user_tables(&self, state: &dyn Session) -> DFResult<UserTables> {
        let mut tables = UserTables::default();
        let Some(namespaces) = self.inner.table("pg_namespace").await? else {
            return Ok(tables);
        };
        let mut public = None;
        for batch in read(&namespaces, state).await? {
            let oids = as_int32_array(column(&batch, "oid")?)?;
            let names = as_string_array(column(&batch, "nspname")?)?;
            for row in 0..batch.num_rows() {
                if names.value(row) == PUBLIC_SCHEMA {
                    public = Some(oids.value(row));
                }
            }
        }
        let (Some(public), Some(classes)) = (public, self.inner.table("pg_class").await?) else {
            return Ok(tables);
        };
        tables.namespace = public;
        for batch in read(&classes, state).await? {
            let oids = as_int32_array(column(&batch, "oid")?)?;
            let names = as_string_array(column(&batch, "relname")?)?;
            let namespaces = as_int32_array(column(&batch, "relnamespace")?)?;
            for row in 0..batch.num_rows() {
                if namespaces.value(row) == public {
                    if let Some(def) = self.catalog.table(names.value(row)) {
                        tables.by_oid.insert(oids.value(row), def);
                    }
                }
            }
        }
        Ok(tables)
    }
}

/// The user tables and their namespace, as `pg_class` numbers them.
#[derive(Default)]
struct UserTables {
    /// `public`'s object id.
    namespace: i32,
    by_oid: HashMap<i32, Arc<TableDef>>,
}

async fn read(table: &Arc<dyn TableProvider>, state: &dyn Session) -> DFResult<Vec<RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    collect(plan, state.task_ctx()).await
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> DFResult<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog table without {name}")))
}

/// `pg_attribute` rows of user tables with their declared type, modifier
/// and default flag.
fn patch_attributes(
    batch: &RecordBatch,
    tables: &HashMap<i32, Arc<TableDef>>,
) -> DFResult<RecordBatch> {
    let relids = as_int32_array(column(batch, "attrelid")?)?;
    let attnums = as_int16_array(column(batch, "attnum")?)?;
    let mut type_ids = as_int32_array(column(batch, "atttypid")?)?
        .clone()
        .into_parts()
        .1
        .to_vec();
    let mut typmods = as_int32_array(column(batch, "atttypmod")?)?
        .clone()
        .into_parts()
        .1
        .to_vec();
    let mut has_defaults: Vec<bool> = column(batch, "atthasdef")?
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| DataFusionError::Internal("atthasdef is not boolean".into()))?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    for row in 0..batch.num_rows() {
        let Some(def) = tables.get(&relids.value(row)) else {
            continue;
        };
        let Some(column) = usize::try_from(attnums.value(row) - 1)
            .ok()
            .and_then(|i| def.columns.get(i))
        else {
            continue;
        };
        if let Some(oid) = declared_type_oid(&column.sql_type) {
            type_ids[row] = oid;
        }
        typmods[row] = typmod(&column.sql_type);
        has_defaults[row] = shown_default(column).is_some();
    }
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    for (name, array) in [
        ("atttypid", Arc::new(Int32Array::from(type_ids)) as ArrayRef),
        ("atttypmod", Arc::new(Int32Array::from(typmods))),
        ("atthasdef", Arc::new(BooleanArray::from(has_defaults))),
    ] {
        columns[schema.index_of(name)?] = array;
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// One `pg_attrdef` row per column default: its text as PostgreSQL shows
/// it (`ddl::shown_default`).
fn attrdefs(schema: &SchemaRef, tables: &HashMap<i32, Arc<TableDef>>) -> DFResult<RecordBatch> {
    let mut relids = Vec::new();
    let mut attnums = Vec::new();
    let mut exprs = Vec::new();
    for (&relid, def) in tables {
        for (i, column) in def.columns.iter().enumerate() {
            if let Some(default) = shown_default(column) {
                relids.push(relid);
                attnums.push(i as i16 + 1);
                exprs.push(default);
            }
        }
    }
    let rows = relids.len();
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match (field.name().as_str(), field.data_type()) {
                ("adrelid", DataType::Int32) => Arc::new(Int32Array::from(relids.clone())),
                ("adnum", DataType::Int16) => Arc::new(Int16Array::from(attnums.clone())),
                ("adbin", DataType::Utf8) => Arc::new(StringArray::from(exprs.clone())),
                // Unique within the table; clients do not join on them.
                ("oid", DataType::Int32) => Arc::new(Int32Array::from_iter_values(1..=rows as i32)),
                _ => new_null_array(field.data_type(), rows),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The object id PostgreSQL 15 gives `information_schema` (`initdb`'s).
const INFORMATION_SCHEMA_OID: i32 = 13207;

/// `pg_namespace` with `information_schema`, whose views ShardForge has
/// (DataFusion's) but datafusion-pg-catalog does not list: pgjdbc's
/// `getSchemas` and SQLAlchemy's `get_schema_names` name it, as with
/// PostgreSQL. Its row is `pg_catalog`'s with its own name and id.
fn with_information_schema(batch: &RecordBatch) -> DFResult<RecordBatch> {
    let names = as_string_array(column(batch, "nspname")?)?;
    let mut catalog_row = None;
    for row in 0..batch.num_rows() {
        match names.value(row) {
            "information_schema" => return Ok(batch.clone()),
            PG_CATALOG => catalog_row = Some(row),
            _ => {}
        }
    }
    let Some(row) = catalog_row else {
        return Ok(batch.clone());
    };
    let added = keys::with_columns(
        &batch.slice(row, 1),
        vec![
            (
                "oid",
                Arc::new(Int32Array::from(vec![INFORMATION_SCHEMA_OID])),
            ),
            (
                "nspname",
                Arc::new(StringArray::from(vec!["information_schema"])),
            ),
        ],
    )?;
    Ok(datafusion::arrow::compute::concat_batches(
        &batch.schema(),
        [batch, &added],
    )?)
}

/// `pg_settings` rows of the settings no session changes
/// (`vars::server_settings`) that `listed` does not have yet.
/// `pg_encoding_to_char(encoding)`: the one encoding's name as PostgreSQL
/// spells it (`UTF8`; datafusion-pg-catalog's said `UTF-8`, which psql's
/// `\l` showed), empty for another number.
fn pg_encoding_to_char() -> Arc<ScalarUDF> {
    crate::sql::analyze::array_udf(
        "pg_encoding_to_char",
        vec![DataType::Int32],
        DataType::Utf8,
        |arrays| {
            let names: StringArray = arrays[0]
                .as_primitive::<Int32Type>()
                .iter()
                .map(|e| e.map(|e| if e == UTF8_ENCODING { "UTF8" } else { "" }))
                .collect();
            Ok(Arc::new(names) as ArrayRef)
        },
    )
}

/// PostgreSQL's number of the UTF8 encoding (`pg_database.encoding`).
const UTF8_ENCODING: i32 = 6;

/// The collation text has here ([`with_collation`]).
pub const COLLATION: &str = "C.UTF-8";

/// `pg_database` with the collation text has here: bytewise, which
/// datafusion-pg-catalog's `en_US.UTF-8` (a locale's order, where `a < B`)
/// is not.
fn with_collation(batch: &RecordBatch) -> DFResult<RecordBatch> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| -> ArrayRef {
            let rows = column.len();
            match field.name().as_str() {
                "datcollate" | "datctype" => Arc::new(StringArray::from(vec![COLLATION; rows])),
                "datlocprovider" if *field.data_type() == DataType::Utf8 => {
                    Arc::new(StringArray::from(vec!["c"; rows]))
                }
                _ => column.clone(),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// PostgreSQL's object id of its bootstrap superuser, which owns every
/// object (`relowner`, `nspowner`).
const SUPERUSER_OID: i32 = 10;

/// `pg_roles`: ShardForge has no roles of its own and lets any user name
/// connect with every right, so the one role is the session's user, a
/// superuser with the bootstrap superuser's id (psql's `\du` listed none).
fn session_role(schema: &SchemaRef, state: &dyn Session) -> DFResult<RecordBatch> {
    let user = state
        .config_options()
        .extensions
        .get::<crate::sql::functions::SessionUser>()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| "postgres".into());
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match (field.name().as_str(), field.data_type()) {
                ("rolname", _) => Arc::new(StringArray::from(vec![user.clone()])),
                ("oid", _) => Arc::new(Int32Array::from(vec![SUPERUSER_OID])),
                ("rolconnlimit", _) => Arc::new(Int32Array::from(vec![-1])),
                (_, DataType::Boolean) => Arc::new(BooleanArray::from(vec![true])),
                _ => new_null_array(field.data_type(), 1),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn server_settings(schema: &SchemaRef, listed: &[RecordBatch]) -> DFResult<RecordBatch> {
    let mut known = Vec::new();
    for batch in listed {
        known.extend(
            as_string_array(column(batch, "name")?)?
                .iter()
                .flatten()
                .map(String::from),
        );
    }
    let rows: Vec<(&str, &str)> = crate::sql::vars::server_settings()
        .into_iter()
        .filter(|(name, _)| !known.iter().any(|k| k == name))
        .collect();
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "name" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                "setting" | "reset_val" | "boot_val" => {
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))
                }
                "context" => Arc::new(StringArray::from(vec!["internal"; rows.len()])),
                _ => new_null_array(field.data_type(), rows.len()),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The type id of a column whose Arrow type does not tell it (or that
/// pg-catalog's mapping of Arrow types does not know).
fn declared_type_oid(sql_type: &SqlType) -> Option<i32> {
    match sql_type {
        SqlType::Varchar(_) => Some(Type::VARCHAR.oid() as i32),
        SqlType::Char(_) => Some(Type::BPCHAR.oid() as i32),
        SqlType::Uuid => Some(Type::UUID.oid() as i32),
        SqlType::Json => Some(Type::JSON.oid() as i32),
        SqlType::Jsonb => Some(Type::JSONB.oid() as i32),
        // (datafusion-pg-catalog does not map Arrow intervals.)
        SqlType::Interval => Some(Type::INTERVAL.oid() as i32),
        SqlType::UnconstrainedNumeric => Some(Type::NUMERIC.oid() as i32),
        SqlType::Array(element) => {
            let element = match declared_type_oid(element) {
                Some(oid) => Type::from_oid(oid as u32)?,
                None => crate::sql::wire_types::pg_type(&Field::new("", element.to_arrow(), true))
                    .ok()?,
            };
            crate::sql::wire_types::array_type(&element).map(|t| t.oid() as i32)
        }
        _ => None,
    }
}

/// PostgreSQL's type modifier: the length plus 4 for `varchar(n)` and
/// `char(n)`, `(precision << 16 | scale) + 4` for `numeric`, the
/// fraction digits of `time(p)` and `timestamp(p)`, an array's element's
/// for an array, else -1.
fn typmod(sql_type: &SqlType) -> i32 {
    match sql_type {
        SqlType::Varchar(Some(n)) | SqlType::Char(n) => *n as i32 + 4,
        SqlType::Numeric { precision, scale } => {
            ((i32::from(*precision) << 16) | i32::from(*scale as u8)) + 4
        }
        // An array column's is its element's (`numeric(8,2)[]`).
        SqlType::Array(element) => typmod(element),
        _ => sql_type.fraction_digits().map_or(-1, i32::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_regtype_reads_names_as_postgresql_does() {
        let tables = PgCatalogStaticTables::try_new().unwrap();
        let to_regtype = ToRegtype::new(tables.pg_type.data(), false).unwrap();
        // The oids PostgreSQL 15 gives them.
        for (name, oid) in [
            ("int4", 23),
            ("integer", 23),
            ("pg_catalog.int8", 20),
            ("Character Varying(20)", 1043),
            ("timestamp with time zone", 1184),
            ("text[]", 1009),
            ("\"bool\"", 16),
        ] {
            assert_eq!(to_regtype.oid(name), Some(oid), "{name}");
        }
        for unknown in ["hstore", "\"INT4\"", "nope[]"] {
            assert_eq!(to_regtype.oid(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn type_modifiers_are_postgresqls() {
        // As PostgreSQL 15 stores them in pg_attribute.atttypmod.
        assert_eq!(typmod(&SqlType::Varchar(Some(20))), 24);
        assert_eq!(typmod(&SqlType::Char(3)), 7);
        let numeric = SqlType::Numeric {
            precision: 10,
            scale: 2,
        };
        assert_eq!(typmod(&numeric), 655_366);
        assert_eq!(typmod(&SqlType::Varchar(None)), -1);
        assert_eq!(typmod(&SqlType::TimestampTz(Some(3))), 3);
        assert_eq!(typmod(&SqlType::Time(Some(0))), 0);
        assert_eq!(typmod(&SqlType::Timestamp(None)), -1);
        assert_eq!(typmod(&SqlType::Text), -1);
        assert_eq!(declared_type_oid(&SqlType::Varchar(None)), Some(1043));
        assert_eq!(declared_type_oid(&SqlType::Char(1)), Some(1042));
        assert_eq!(declared_type_oid(&SqlType::Integer), None);
        let array = |element| SqlType::Array(Box::new(element));
        assert_eq!(declared_type_oid(&array(SqlType::Integer)), Some(1007));
        assert_eq!(declared_type_oid(&array(SqlType::Uuid)), Some(2951));
        assert_eq!(declared_type_oid(&array(SqlType::Interval)), Some(1187));
        assert_eq!(declared_type_oid(&array(SqlType::Text)), Some(1009));
    }
}
