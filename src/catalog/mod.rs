//! The catalog: which tables exist, their columns, types and keys.
//!
//! There is one database (`postgres`) with one user schema (`public`).
//! Table definitions are persisted in the storage `meta` column family under
//! `catalog/table/<id>` as JSON and loaded at start-up; every change is
//! synced before it is acknowledged. Table ids are never reused, so the rows
//! of a dropped table can be purged without racing a new table.
//!
//! Every change bumps [`Catalog::version`], which the SQL layer uses to notice
//! that a prepared plan may refer to a table that changed.

pub mod types;

pub use types::SqlType;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, InputError, Result};
use crate::storage::Storage;

pub const DATABASE: &str = "postgres";
pub const PUBLIC_SCHEMA: &str = "public";
/// Name of the key column added to a table declared without a primary key.
pub const ROWID_COLUMN: &str = "rowid";
/// Arrow field metadata key holding a column's PostgreSQL type name where
/// its Arrow type is shared by several (`varchar`, `bpchar` are both Utf8).
pub const PG_TYPE_METADATA: &str = "shardforge.pg_type";

const TABLE_PREFIX: &[u8] = b"catalog/table/";
const NEXT_TABLE_ID: &[u8] = b"catalog/next_table_id";
/// Table ids below this are reserved for system use.
const FIRST_TABLE_ID: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId(pub u32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, planned when the table is used.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: TableId,
    pub name: String,
    /// Stored columns in order. With `hidden_rowid`, the last one is the
    /// generated [`ROWID_COLUMN`] and is not shown to users.
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
    pub hidden_rowid: bool,
}

impl TableDef {
    /// The schema of a stored row: every column, the hidden row id included.
    /// Columns whose PostgreSQL type Arrow cannot tell (varchar, char)
    /// carry it as field metadata under [`PG_TYPE_METADATA`].
    pub fn row_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| {
                    let field = Field::new(&c.name, c.sql_type.to_arrow(), c.nullable);
                    match c.sql_type.wire_name() {
                        Some(name) => field.with_metadata(
                            [(PG_TYPE_METADATA.to_string(), name.to_string())].into(),
                        ),
                        None => field,
                    }
                })
                .collect::<Vec<_>>(),
        ))
    }

    /// How many leading columns users see.
    pub fn visible_columns(&self) -> usize {
        self.columns.len() - usize::from(self.hidden_rowid)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

struct CatalogState {
    tables: BTreeMap<String, Arc<TableDef>>,
    next_table_id: u32,
    version: u64,
}

pub struct Catalog {
    storage: Arc<Storage>,
    state: RwLock<CatalogState>,
}

impl Catalog {
    /// Loads the persisted catalog.
    pub fn load(storage: Arc<Storage>) -> Result<Self> {
        let mut tables = BTreeMap::new();
        for (_, value) in storage.scan_meta(TABLE_PREFIX)? {
            let def: TableDef = serde_json::from_slice(&value)
                .map_err(|e| Error::Corrupt(format!("catalog entry: {e}")))?;
            tables.insert(def.name.clone(), Arc::new(def));
        }
        let next_table_id = match storage.get_meta(NEXT_TABLE_ID)? {
            Some(raw) => u32::from_be_bytes(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| Error::Corrupt("next table id".into()))?,
            ),
            None => FIRST_TABLE_ID,
        };
        Ok(Self {
            storage,
            state: RwLock::new(CatalogState {
                tables,
                next_table_id,
                version: 1,
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CatalogState> {
        // A poisoned lock means a panic mid-update of an in-memory map that is
        // only ever replaced whole; the data is still consistent.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CatalogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn version(&self) -> u64 {
        self.read().version
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.read().tables.get(name).cloned()
    }

    pub fn tables(&self) -> Vec<Arc<TableDef>> {
        self.read().tables.values().cloned().collect()
    }

    /// Creates a table from a definition whose id is assigned here. Returns
    /// `None` if it exists and `if_not_exists` is set.
    pub fn create_table(
        &self,
        mut def: TableDef,
        if_not_exists: bool,
    ) -> Result<Option<Arc<TableDef>>> {
        let mut state = self.write();
        if state.tables.contains_key(&def.name) {
            if if_not_exists {
                return Ok(None);
            }
            return Err(Error::input(
                InputError::DuplicateTable,
                format!("relation \"{}\" already exists", def.name),
            ));
        }
        def.id = TableId(state.next_table_id);
        let json = serde_json::to_vec(&def).map_err(|e| Error::Internal(e.to_string()))?;
        let mut batch = self.storage.batch();
        batch.put_meta(&table_key(def.id), &json);
        batch.put_meta(NEXT_TABLE_ID, &(def.id.0 + 1).to_be_bytes());
        self.storage.write(batch)?;
        state.next_table_id = def.id.0 + 1;
        state.version += 1;
        let def = Arc::new(def);
        state.tables.insert(def.name.clone(), def.clone());
        Ok(Some(def))
    }

    /// Removes a table from the catalog and returns it; its rows are purged
    /// by the caller. `None` if it does not exist and `if_exists` is set.
    pub fn drop_table(&self, name: &str, if_exists: bool) -> Result<Option<Arc<TableDef>>> {
        let mut state = self.write();
        let Some(def) = state.tables.get(name).cloned() else {
            if if_exists {
                return Ok(None);
            }
            return Err(Error::input(
                InputError::UndefinedTable,
                format!("table \"{name}\" does not exist"),
            ));
        };
        let mut batch = self.storage.batch();
        batch.delete_meta(&table_key(def.id));
        self.storage.write(batch)?;
        state.tables.remove(name);
        state.version += 1;
        Ok(Some(def))
    }
}

fn table_key(id: TableId) -> Vec<u8> {
    let mut key = TABLE_PREFIX.to_vec();
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> TableDef {
        TableDef {
            id: TableId(0),
            name: name.into(),
            columns: vec![ColumnDef {
                name: "id".into(),
                sql_type: SqlType::Integer,
                nullable: false,
                default: None,
            }],
            primary_key: vec![0],
            hidden_rowid: false,
        }
    }

    #[test]
    fn tables_persist_and_ids_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let catalog = Catalog::load(storage.clone()).unwrap();
        let a = catalog.create_table(def("a"), false).unwrap().unwrap();
        assert!(catalog.create_table(def("a"), true).unwrap().is_none());
        let err = catalog.create_table(def("a"), false).unwrap_err();
        assert!(matches!(err, Error::Input(InputError::DuplicateTable, _)));
        catalog.drop_table("a", false).unwrap();
        let b = catalog.create_table(def("b"), false).unwrap().unwrap();
        assert!(b.id > a.id);
        drop(catalog);

        let reloaded = Catalog::load(storage).unwrap();
        assert!(reloaded.table("a").is_none());
        assert_eq!(reloaded.table("b").unwrap().as_ref(), b.as_ref());
        let c = reloaded.create_table(def("c"), false).unwrap().unwrap();
        assert!(c.id > b.id);
    }
}
