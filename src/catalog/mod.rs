//! The catalog: which tables exist, their columns, types and keys.
//!
//! There is one database (`postgres`) with one user schema (`public`).
//! Table definitions are persisted in the storage `meta` column family under
//! `catalog/table/<id>` (a `Table` message of `proto/catalog.proto`, see
//! [`codec`]) and loaded at start-up. DDL is transactional,
//! as in PostgreSQL: CREATE and DROP TABLE go into the transaction's
//! [`SchemaChange`] and reach the catalog in its commit. Table ids are never
//! reused, so the rows of a dropped table can be purged without racing a new
//! table. In a cluster, the node running CREATE TABLE picks the id itself
//! (ids `≡ node id (mod ID_STRIDE)`), unique without asking anyone, so a
//! transaction can create a table and write its rows on several nodes
//! before the meta node commits the change.

pub mod codec;
pub mod types;

pub use types::SqlType;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};

use crate::encoding::schema::encode_schema;
use crate::error::{Error, InputError, Result};
use crate::storage::{Storage, StorageBatch};

pub const DATABASE: &str = "postgres";
pub const PUBLIC_SCHEMA: &str = "public";
/// The longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
pub const MAX_NAME_BYTES: usize = 63;
/// Name of the key column added to a table declared without a primary key.
pub const ROWID_COLUMN: &str = "rowid";
/// Arrow field metadata key holding a column's PostgreSQL type name where
/// its Arrow type is shared by several (`varchar`, `bpchar` are both Utf8).
pub const PG_TYPE_METADATA: &str = "shardforge.pg_type";
/// Arrow field metadata key holding the `n` of a `char(n)` value, which is
/// stored without its trailing spaces and shown padded to `n`.
pub const CHAR_LENGTH_METADATA: &str = "shardforge.char_length";

/// The read-only system tables (see `sql::system_tables`); no user table
/// may take their names.
pub const SYSTEM_NODES: &str = "shardforge_nodes";
pub const SYSTEM_SHARDS: &str = "shardforge_shards";
pub const SYSTEM_REPLICAS: &str = "shardforge_replicas";
pub const SYSTEM_TABLES: [&str; 3] = [SYSTEM_NODES, SYSTEM_SHARDS, SYSTEM_REPLICAS];

pub(crate) const TABLE_PREFIX: &[u8] = b"catalog/table/";
pub(crate) const NEXT_TABLE_ID: &[u8] = b"catalog/next_table_id";
/// Table ids below this are reserved for system use.
const FIRST_TABLE_ID: u32 = 100;
/// In a cluster, node `n` gives new tables the ids `≡ n (mod ID_STRIDE)`:
/// ids are unique for node ids below this, and each node has 4 million.
pub const ID_STRIDE: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u32);

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, planned when the table is used.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub id: TableId,
    pub name: String,
    /// Stored columns in order. With `hidden_rowid`, the last one is the
    /// generated [`ROWID_COLUMN`] and is not shown to users.
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
    pub hidden_rowid: bool,
    /// The primary key's name as given in CREATE TABLE (`CONSTRAINT name
    /// PRIMARY KEY`); `None`: PostgreSQL's `<table>_pkey`
    /// ([`TableDef::key_name`]).
    pub primary_key_name: Option<String>,
    /// What every read of the table asks of it, worked out once.
    pub derived: Derived,
}

/// The row schema of a [`TableDef`] and its encoded form, made on first
/// use and kept with that definition. A definition is not changed once
/// shared (DDL makes a new one); a clone, which may be changed, starts
/// without them.
#[derive(Default)]
pub struct Derived {
    row_schema: OnceLock<SchemaRef>,
    row_schema_ipc: OnceLock<Vec<u8>>,
}

impl Clone for Derived {
    fn clone(&self) -> Self {
        Derived::default()
    }
}

/// Derived from the rest of the definition: no part of what it is.
impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl TableDef {
    /// The schema of a stored row: every column, the hidden row id included.
    /// Columns whose PostgreSQL type Arrow cannot tell (varchar, char)
    /// carry it as field metadata ([`SqlType::metadata`]).
    pub fn row_schema(&self) -> SchemaRef {
        let schema = self.derived.row_schema.get_or_init(|| {
            let fields = self.columns.iter().map(|c| {
                Field::new(&c.name, c.sql_type.to_arrow(), c.nullable)
                    .with_metadata(c.sql_type.metadata())
            });
            Arc::new(Schema::new(fields.collect::<Vec<_>>()))
        });
        schema.clone()
    }

    /// [`Self::row_schema`] in the form a scan request carries it.
    pub fn row_schema_ipc(&self) -> &[u8] {
        self.derived
            .row_schema_ipc
            .get_or_init(|| encode_schema(&self.row_schema()))
    }

    /// How many leading columns users see.
    /// The primary key's name (of its constraint and of its index): the
    /// one given in CREATE TABLE, else PostgreSQL's (`makeObjectName`):
    /// the table's name, cut to fit 63 bytes with the suffix, then `_pkey`.
    pub fn key_name(&self) -> String {
        if let Some(name) = &self.primary_key_name {
            return name.clone();
        }
        let mut end = self.name.len().min(MAX_NAME_BYTES - "_pkey".len());
        while !self.name.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}_pkey", &self.name[..end])
    }

    pub fn visible_columns(&self) -> usize {
        self.columns.len() - usize::from(self.hidden_rowid)
    }

    /// [`Self::row_schema`] without a hidden row id: the columns users see.
    pub fn visible_schema(&self) -> SchemaRef {
        let schema = self.row_schema();
        match self.hidden_rowid {
            false => schema,
            true => {
                let fields = schema.fields()[..self.visible_columns()].to_vec();
                Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
            }
        }
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Where SQL looks tables up by name: the committed [`Catalog`], or one
/// session's view of it, which adds the DDL of its open transaction.
pub trait Tables {
    fn table(&self, name: &str) -> Option<Arc<TableDef>>;
    fn tables(&self) -> Vec<Arc<TableDef>>;
}

/// The tables one transaction created and dropped. Only that transaction
/// sees them until it commits; then [`Catalog::stage`] writes them in the
/// same storage batch as its rows, so a rolled-back CREATE TABLE leaves
/// nothing behind and a committed one is there with all of its rows.
#[derive(Debug, Default, Clone)]
pub struct SchemaChange {
    created: BTreeMap<String, Arc<TableDef>>,
    /// Committed tables this transaction dropped.
    dropped: BTreeMap<String, Arc<TableDef>>,
}

impl SchemaChange {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.dropped.is_empty()
    }

    pub fn dropped(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.dropped.values()
    }

    /// `name` as this transaction sees it, on top of `committed`.
    pub fn table(&self, committed: &Catalog, name: &str) -> Option<Arc<TableDef>> {
        if let Some(def) = self.created.get(name) {
            return Some(def.clone());
        }
        if self.dropped.contains_key(name) {
            return None;
        }
        committed.table(name)
    }

    /// Every table this transaction sees, by name.
    pub fn tables(&self, committed: &Catalog) -> Vec<Arc<TableDef>> {
        let mut tables = committed.read().tables.clone();
        tables.retain(|name, _| !self.dropped.contains_key(name));
        tables.extend(self.created.iter().map(|(n, d)| (n.clone(), d.clone())));
        tables.into_values().collect()
    }

    /// Adds a table whose id is assigned here. `Ok(false)` if the name is
    /// taken and `if_not_exists` is set.
    pub fn create_table(
        &mut self,
        committed: &Catalog,
        mut def: TableDef,
        if_not_exists: bool,
    ) -> Result<bool> {
        if self.table(committed, &def.name).is_some() || SYSTEM_TABLES.contains(&def.name.as_str())
        {
            if if_not_exists {
                return Ok(false);
            }
            return Err(duplicate_table(&def.name));
        }
        def.id = committed.new_table_id();
        self.created.insert(def.name.clone(), Arc::new(def));
        Ok(true)
    }

    /// Removes a table and returns it (the caller drops the rows it wrote
    /// there). `Ok(None)` if it does not exist and `if_exists` is set.
    pub fn drop_table(
        &mut self,
        committed: &Catalog,
        name: &str,
        if_exists: bool,
    ) -> Result<Option<Arc<TableDef>>> {
        let Some(def) = self.table(committed, name) else {
            if if_exists {
                return Ok(None);
            }
            return Err(Error::input(
                InputError::UndefinedTable,
                format!("table \"{name}\" does not exist"),
            ));
        };
        // A table created in this transaction just disappears.
        if self.created.remove(name).is_none() {
            self.dropped.insert(name.to_string(), def.clone());
        }
        Ok(Some(def))
    }
}

fn duplicate_table(name: &str) -> Error {
    Error::input(
        InputError::DuplicateTable,
        format!("relation \"{name}\" already exists"),
    )
}

struct CatalogState {
    tables: BTreeMap<String, Arc<TableDef>>,
    /// No table id below this is handed out: it is above every id this node
    /// gave or saw. Ids given to transactions that never commit are
    /// skipped; only committed ones are persisted.
    next_table_id: u32,
    /// This node's id in a cluster (0 before it joins one), which picks the
    /// ids it hands out.
    node: u32,
}

impl CatalogState {
    /// Nothing below `id` is handed out any more.
    fn seen(&mut self, id: TableId) {
        self.next_table_id = self.next_table_id.max(id.0 + 1);
    }
}

/// The committed catalog. It changes only when a transaction with a
/// [`SchemaChange`] commits: the coordinator calls [`Catalog::validate`],
/// [`Catalog::stage`] and [`Catalog::apply`] under its commit lock.
pub struct Catalog {
    state: RwLock<CatalogState>,
}

impl Catalog {
    /// Loads the persisted catalog.
    pub fn load(storage: &Storage) -> Result<Self> {
        Ok(Self {
            state: RwLock::new(load_state(storage, 0)?),
        })
    }

    /// Reads the persisted catalog again (a snapshot of the meta group
    /// replaced it).
    pub fn reload(&self, storage: &Storage) -> Result<()> {
        let mut state = self.write();
        *state = load_state(storage, state.node)?;
        Ok(())
    }

    /// Makes this node, `node` of a cluster, hand out the table ids that
    /// are its own (see [`ID_STRIDE`]).
    pub fn set_node(&self, node: u32) {
        self.write().node = node;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CatalogState> {
        // A poisoned lock means a panic mid-update of an in-memory map that is
        // only ever replaced whole; the data is still consistent.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CatalogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.read().tables.get(name).cloned()
    }

    pub fn tables(&self) -> Vec<Arc<TableDef>> {
        self.read().tables.values().cloned().collect()
    }

    /// Makes the catalog exactly `tables` (a node taking the meta node's
    /// catalog), persisted in one batch. Returns the tables that are gone,
    /// whose rows the caller purges. Blocks on disk.
    pub fn replace(&self, storage: &Storage, tables: Vec<TableDef>) -> Result<Vec<Arc<TableDef>>> {
        let mut state = self.write();
        let mut batch = storage.batch();
        let incoming: BTreeMap<String, Arc<TableDef>> = tables
            .into_iter()
            .map(|def| (def.name.clone(), Arc::new(def)))
            .collect();
        let mut gone = Vec::new();
        for (name, def) in &state.tables {
            if incoming.get(name).map(|d| d.id) != Some(def.id) {
                batch.delete_meta(&table_key(def.id));
                gone.push(def.clone());
            }
        }
        let mut tables = BTreeMap::new();
        for def in incoming.values() {
            state.seen(def.id);
        }
        batch.put_meta(NEXT_TABLE_ID, &state.next_table_id.to_be_bytes());
        for (name, def) in incoming {
            // Keep the definition this node has, if it is the same table, so
            // that providers made for it stay valid.
            match state.tables.get(&name).filter(|d| **d == def) {
                Some(same) => {
                    tables.insert(name, same.clone());
                }
                None => {
                    batch.put_meta(&table_key(def.id), &def.to_bytes());
                    tables.insert(name, def);
                }
            }
        }
        storage.write(batch)?;
        state.tables = tables;
        Ok(gone)
    }

    fn new_table_id(&self) -> TableId {
        let mut state = self.write();
        let mut id = state.next_table_id;
        if state.node > 0 {
            // The first id at or above `next` that is this node's.
            let wanted = state.node % ID_STRIDE;
            id += (wanted + ID_STRIDE - id % ID_STRIDE) % ID_STRIDE;
        }
        state.seen(TableId(id));
        TableId(id)
    }

    /// Whether `change` can commit on top of the catalog as it is now, and
    /// whether every table in `written` (ids of tables with rows in the
    /// transaction) still exists. A name another transaction took first is
    /// 42P07; a table another transaction dropped first is a serialization
    /// failure.
    pub fn validate(&self, change: &SchemaChange, written: &[TableId]) -> Result<()> {
        let state = self.read();
        for (name, def) in &change.dropped {
            if state.tables.get(name).map(|t| t.id) != Some(def.id) {
                return Err(dropped_concurrently(name));
            }
        }
        for (name, def) in &change.created {
            if state.tables.contains_key(name) && !change.dropped.contains_key(name) {
                return Err(duplicate_table(name));
            }
            if state.tables.values().any(|t| t.id == def.id) {
                return Err(Error::Internal(format!(
                    "table id {} of \"{name}\" is taken",
                    def.id.0
                )));
            }
        }
        for id in written {
            let created = change.created.values().any(|t| t.id == *id);
            if !created && !state.tables.values().any(|t| t.id == *id) {
                return Err(Error::Retry(
                    "could not serialize access: a table written was dropped concurrently".into(),
                ));
            }
        }
        Ok(())
    }

    /// Adds `change`'s catalog records to the commit's storage batch.
    pub fn stage(&self, change: &SchemaChange, batch: &mut StorageBatch) -> Result<()> {
        for def in change.dropped.values() {
            batch.delete_meta(&table_key(def.id));
        }
        for def in change.created.values() {
            batch.put_meta(&table_key(def.id), &def.to_bytes());
        }
        if !change.created.is_empty() {
            let mut state = self.write();
            for def in change.created.values() {
                state.seen(def.id);
            }
            batch.put_meta(NEXT_TABLE_ID, &state.next_table_id.to_be_bytes());
        }
        Ok(())
    }

    /// Makes a committed `change` visible to everyone.
    pub fn apply(&self, change: SchemaChange) {
        let mut state = self.write();
        for name in change.dropped.keys() {
            state.tables.remove(name);
        }
        state.tables.extend(change.created);
    }
}

/// The catalog persisted in `storage`, for node `node`.
fn load_state(storage: &Storage, node: u32) -> Result<CatalogState> {
    let mut tables = BTreeMap::new();
    for (_, value) in storage.scan_meta(TABLE_PREFIX)? {
        let def = TableDef::from_bytes(&value)?;
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
    Ok(CatalogState {
        tables,
        next_table_id,
        node,
    })
}

fn dropped_concurrently(name: &str) -> Error {
    Error::Retry(format!(
        "could not serialize access: table \"{name}\" was dropped concurrently"
    ))
}

impl Tables for Catalog {
    fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        Catalog::table(self, name)
    }

    fn tables(&self) -> Vec<Arc<TableDef>> {
        Catalog::tables(self)
    }
}

fn table_key(id: TableId) -> Vec<u8> {
    let mut key = TABLE_PREFIX.to_vec();
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// A table `name (id integer PRIMARY KEY)`, for tests.
#[cfg(test)]
pub fn int_table(name: &str) -> TableDef {
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
        primary_key_name: None,
        derived: Default::default(),
    }
}

/// Commits `def` straight into `catalog`, as a transaction would, for
/// tests of code that reads the catalog.
#[cfg(test)]
pub fn create_for_test(catalog: &Catalog, def: TableDef) -> Arc<TableDef> {
    let mut change = SchemaChange::default();
    change.create_table(catalog, def.clone(), false).unwrap();
    catalog.apply(change);
    catalog.table(&def.name).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_given_or_fit_postgresqls_limit() {
        let key_name = |name: &str| int_table(name).key_name();
        assert_eq!(key_name("orders"), "orders_pkey");
        let long = "t".repeat(70);
        assert_eq!(key_name(&long), format!("{}_pkey", "t".repeat(58)));
        // Cut on a character boundary.
        let accented = "é".repeat(40);
        assert_eq!(key_name(&accented).len(), 58 + 5);
        let named = TableDef {
            primary_key_name: Some("orders_pk".into()),
            ..int_table("orders")
        };
        assert_eq!(named.key_name(), "orders_pk");
    }

    fn commit(storage: &Storage, catalog: &Catalog, change: SchemaChange) -> Result<()> {
        catalog.validate(&change, &[])?;
        let mut batch = storage.batch();
        catalog.stage(&change, &mut batch)?;
        storage.write(batch)?;
        catalog.apply(change);
        Ok(())
    }

    #[test]
    fn changes_are_private_until_commit_persist_and_never_reuse_ids() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let catalog = Catalog::load(&storage).unwrap();
        let mut change = SchemaChange::default();
        assert!(change
            .create_table(&catalog, int_table("a"), false)
            .unwrap());
        assert!(!change.create_table(&catalog, int_table("a"), true).unwrap());
        let err = change
            .create_table(&catalog, int_table("a"), false)
            .unwrap_err();
        assert!(matches!(err, Error::Input(InputError::DuplicateTable, _)));
        assert!(catalog.table("a").is_none(), "uncommitted");
        let a = change.table(&catalog, "a").unwrap();
        commit(&storage, &catalog, change).unwrap();
        assert_eq!(catalog.table("a").unwrap(), a);

        // Drop and create again in one transaction: a new id.
        let mut change = SchemaChange::default();
        change.drop_table(&catalog, "a", false).unwrap();
        assert!(change.table(&catalog, "a").is_none());
        change
            .create_table(&catalog, int_table("a"), false)
            .unwrap();
        change
            .create_table(&catalog, int_table("b"), false)
            .unwrap();
        let b = change.table(&catalog, "b").unwrap();
        assert!(b.id > a.id);
        commit(&storage, &catalog, change).unwrap();

        let reloaded = Catalog::load(&storage).unwrap();
        assert_eq!(reloaded.table("b").unwrap(), b);
        assert!(reloaded.table("a").unwrap().id > a.id);
        let mut change = SchemaChange::default();
        change
            .create_table(&reloaded, int_table("c"), false)
            .unwrap();
        assert!(change.table(&reloaded, "c").unwrap().id > b.id);
    }

    #[test]
    fn the_first_committer_of_a_name_or_a_drop_wins() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let catalog = Catalog::load(&storage).unwrap();
        let mut first = SchemaChange::default();
        let mut second = SchemaChange::default();
        first.create_table(&catalog, int_table("t"), false).unwrap();
        second
            .create_table(&catalog, int_table("t"), false)
            .unwrap();
        let second_id = second.table(&catalog, "t").unwrap().id;
        commit(&storage, &catalog, first).unwrap();
        let err = commit(&storage, &catalog, second).unwrap_err();
        assert!(matches!(err, Error::Input(InputError::DuplicateTable, _)));

        let t = catalog.table("t").unwrap();
        let mut drop_one = SchemaChange::default();
        let mut drop_two = SchemaChange::default();
        drop_one.drop_table(&catalog, "t", false).unwrap();
        drop_two.drop_table(&catalog, "t", false).unwrap();
        commit(&storage, &catalog, drop_one).unwrap();
        assert!(matches!(
            commit(&storage, &catalog, drop_two),
            Err(Error::Retry(_))
        ));
        // Rows written to a table dropped meanwhile cannot commit.
        let none = SchemaChange::default();
        assert!(matches!(
            catalog.validate(&none, &[t.id]),
            Err(Error::Retry(_))
        ));
        assert!(matches!(
            catalog.validate(&none, &[second_id]),
            Err(Error::Retry(_))
        ));
    }

    #[test]
    fn a_node_takes_the_meta_nodes_catalog_and_a_change_travels_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let meta = Catalog::load(&storage).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other_storage = Storage::open(other_dir.path()).unwrap();
        let other = Catalog::load(&other_storage).unwrap();
        meta.set_node(1);
        other.set_node(2);
        let kept = create_for_test(&other, int_table("kept"));
        create_for_test(&other, int_table("gone"));
        let on_meta = create_for_test(&meta, int_table("meta's"));
        // Each node hands out ids of its own.
        assert_eq!(on_meta.id.0 % ID_STRIDE, 1);
        assert_eq!(kept.id.0 % ID_STRIDE, 2);

        // A change made on another node commits on the meta node as it was
        // made, with the id the other node gave.
        let mut change = SchemaChange::default();
        change
            .create_table(&other, int_table("new"), false)
            .unwrap();
        let new_id = change.created["new"].id;
        let travelled = SchemaChange::from_bytes(&change.to_bytes()).unwrap();
        commit(&storage, &meta, travelled).unwrap();
        assert_eq!(meta.table("new").unwrap().id, new_id);
        let mut tables: Vec<TableDef> = meta.tables().iter().map(|t| (**t).clone()).collect();
        tables.push((*kept).clone());

        let gone = other.replace(&other_storage, tables).unwrap();
        assert_eq!(
            gone.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["gone"]
        );
        assert!(
            Arc::ptr_eq(&other.table("kept").unwrap(), &kept),
            "same table, same definition"
        );
        assert_eq!(other.table("new").unwrap(), meta.table("new").unwrap());
        // (`create_for_test` tables are not on disk; what `replace` wrote is.)
        let reloaded = Catalog::load(&other_storage).unwrap();
        assert_eq!(reloaded.table("new"), meta.table("new"));
        assert!(reloaded.table("gone").is_none());
        // Ids it saw are never handed out again, after a restart too.
        reloaded.set_node(1);
        assert!(reloaded.new_table_id() > on_meta.id);
    }
}
