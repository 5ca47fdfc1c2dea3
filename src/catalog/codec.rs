//! The catalog's records in their binary form, the messages of
//! `proto/catalog.proto`: a table's definition in the `meta` column family,
//! a transaction's schema change in the meta group's `Decide`, and the
//! whole catalog the oracle hands to other nodes.

use std::sync::Arc;

use prost::Message;

use super::types::MAX_FRACTION_DIGITS;
use super::{ColumnDef, SchemaChange, SqlType, TableDef, TableId};
use crate::error::{Error, Result};

pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/shardforge.catalog.rs"));
}

use proto::sql_type::Kind;

impl TableDef {
    /// The definition as its `meta` record keeps it.
    pub fn to_bytes(&self) -> Vec<u8> {
        table_to(self).encode_to_vec()
    }

    /// The definition a record (or a message) holds.
    pub fn from_bytes(bytes: &[u8]) -> Result<TableDef> {
        let table = proto::Table::decode(bytes).map_err(|e| corrupt("a table definition", e))?;
        table_from(table)
    }
}

impl SchemaChange {
    /// The change as the meta group's `Decide` carries it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let tables = |defs: &std::collections::BTreeMap<String, Arc<TableDef>>| {
            defs.values().map(|d| table_to(d)).collect()
        };
        proto::SchemaChange {
            created: tables(&self.created),
            dropped: tables(&self.dropped),
        }
        .encode_to_vec()
    }

    /// The change `bytes` describe, as it was made (the commit checks that
    /// it still fits the catalog: `Catalog::validate`).
    pub fn from_bytes(bytes: &[u8]) -> Result<SchemaChange> {
        let change =
            proto::SchemaChange::decode(bytes).map_err(|e| corrupt("a schema change", e))?;
        let by_name = |tables: Vec<proto::Table>| {
            tables
                .into_iter()
                .map(|t| table_from(t).map(|def| (def.name.clone(), Arc::new(def))))
                .collect::<Result<_>>()
        };
        Ok(SchemaChange {
            created: by_name(change.created)?,
            dropped: by_name(change.dropped)?,
        })
    }
}

/// Every table of `tables` in one message.
pub fn tables_to_bytes(tables: &[Arc<TableDef>]) -> Vec<u8> {
    proto::Tables {
        tables: tables.iter().map(|t| table_to(t)).collect(),
    }
    .encode_to_vec()
}

/// The tables a message of [`tables_to_bytes`] holds.
pub fn tables_from_bytes(bytes: &[u8]) -> Result<Vec<TableDef>> {
    let tables = proto::Tables::decode(bytes).map_err(|e| corrupt("a catalog", e))?;
    tables.tables.into_iter().map(table_from).collect()
}

fn corrupt(what: &str, e: prost::DecodeError) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

fn table_to(def: &TableDef) -> proto::Table {
    proto::Table {
        id: def.id.0,
        name: def.name.clone(),
        columns: def
            .columns
            .iter()
            .map(|c| proto::Column {
                name: c.name.clone(),
                sql_type: Some(type_to(&c.sql_type)),
                nullable: c.nullable,
                default: c.default.clone(),
            })
            .collect(),
        primary_key: def.primary_key.iter().map(|&i| i as u32).collect(),
        hidden_rowid: def.hidden_rowid,
        primary_key_name: def.primary_key_name.clone(),
    }
}

fn table_from(table: proto::Table) -> Result<TableDef> {
    let columns = table
        .columns
        .into_iter()
        .map(|c| {
            let sql_type = c
                .sql_type
                .ok_or_else(|| Error::Corrupt(format!("column {} without a type", c.name)))?;
            Ok(ColumnDef {
                name: c.name,
                sql_type: type_from(&sql_type)?,
                nullable: c.nullable,
                default: c.default,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let primary_key: Vec<usize> = table.primary_key.iter().map(|&i| i as usize).collect();
    if primary_key.iter().any(|&i| i >= columns.len()) {
        return Err(Error::Corrupt(format!(
            "table {}: a key column out of range",
            table.name
        )));
    }
    Ok(TableDef {
        id: TableId(table.id),
        name: table.name,
        columns,
        primary_key,
        hidden_rowid: table.hidden_rowid,
        primary_key_name: table.primary_key_name,
        derived: Default::default(),
    })
}

fn type_to(sql_type: &SqlType) -> proto::SqlType {
    let of = |kind: Kind| proto::SqlType {
        kind: kind as i32,
        ..Default::default()
    };
    let with_digits = |kind: Kind, digits: Option<u8>| proto::SqlType {
        fraction_digits: digits.map(u32::from),
        ..of(kind)
    };
    match *sql_type {
        SqlType::SmallInt => of(Kind::Smallint),
        SqlType::Integer => of(Kind::Integer),
        SqlType::BigInt => of(Kind::Bigint),
        SqlType::Real => of(Kind::Real),
        SqlType::Double => of(Kind::Double),
        SqlType::Numeric { precision, scale } => proto::SqlType {
            precision: u32::from(precision),
            scale: i32::from(scale),
            ..of(Kind::Numeric)
        },
        // No precision: PostgreSQL's numeric precision is at least 1.
        SqlType::UnconstrainedNumeric => of(Kind::Numeric),
        SqlType::Boolean => of(Kind::Boolean),
        SqlType::Text => of(Kind::Text),
        SqlType::Varchar(length) => proto::SqlType {
            length,
            ..of(Kind::Varchar)
        },
        SqlType::Char(length) => proto::SqlType {
            length: Some(length),
            ..of(Kind::Char)
        },
        SqlType::Date => of(Kind::Date),
        SqlType::Timestamp(digits) => with_digits(Kind::Timestamp, digits),
        SqlType::TimestampTz(digits) => with_digits(Kind::Timestamptz, digits),
        SqlType::Bytea => of(Kind::Bytea),
        SqlType::Uuid => of(Kind::Uuid),
        SqlType::Time(digits) => with_digits(Kind::Time, digits),
        SqlType::Json => of(Kind::Json),
        SqlType::Jsonb => of(Kind::Jsonb),
        SqlType::Interval => of(Kind::Interval),
        SqlType::Array(ref element) => proto::SqlType {
            array: true,
            ..type_to(element)
        },
    }
}

fn type_from(sql_type: &proto::SqlType) -> Result<SqlType> {
    let bad = || Error::Corrupt(format!("a column type: {sql_type:?}"));
    let kind = Kind::try_from(sql_type.kind).map_err(|_| bad())?;
    let digits = || match sql_type.fraction_digits {
        Some(p) if p <= u32::from(MAX_FRACTION_DIGITS) => Ok(Some(p as u8)),
        Some(_) => Err(bad()),
        None => Ok(None),
    };
    if sql_type.array {
        let element = type_from(&proto::SqlType {
            array: false,
            ..*sql_type
        })?;
        return SqlType::array_of(element).ok_or_else(bad);
    }
    Ok(match kind {
        Kind::Smallint => SqlType::SmallInt,
        Kind::Integer => SqlType::Integer,
        Kind::Bigint => SqlType::BigInt,
        Kind::Real => SqlType::Real,
        Kind::Double => SqlType::Double,
        Kind::Numeric if sql_type.precision == 0 => SqlType::UnconstrainedNumeric,
        Kind::Numeric => SqlType::Numeric {
            precision: u8::try_from(sql_type.precision).map_err(|_| bad())?,
            scale: i8::try_from(sql_type.scale).map_err(|_| bad())?,
        },
        Kind::Boolean => SqlType::Boolean,
        Kind::Text => SqlType::Text,
        Kind::Varchar => SqlType::Varchar(sql_type.length),
        Kind::Char => SqlType::Char(sql_type.length.ok_or_else(bad)?),
        Kind::Date => SqlType::Date,
        Kind::Timestamp => SqlType::Timestamp(digits()?),
        Kind::Timestamptz => SqlType::TimestampTz(digits()?),
        Kind::Bytea => SqlType::Bytea,
        Kind::Uuid => SqlType::Uuid,
        Kind::Time => SqlType::Time(digits()?),
        Kind::Json => SqlType::Json,
        Kind::Jsonb => SqlType::Jsonb,
        Kind::Interval => SqlType::Interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_a_schema_change_round_trip() {
        let types = [
            SqlType::SmallInt,
            SqlType::Integer,
            SqlType::BigInt,
            SqlType::Real,
            SqlType::Double,
            SqlType::Numeric {
                precision: 76,
                scale: -3,
            },
            SqlType::UnconstrainedNumeric,
            SqlType::Boolean,
            SqlType::Text,
            SqlType::Varchar(None),
            SqlType::Varchar(Some(12)),
            SqlType::Char(1),
            SqlType::Date,
            SqlType::Timestamp(None),
            SqlType::TimestampTz(Some(3)),
            SqlType::Bytea,
            SqlType::Uuid,
            SqlType::Json,
            SqlType::Jsonb,
            SqlType::Interval,
            SqlType::Time(Some(0)),
            SqlType::Timestamp(Some(6)),
            SqlType::Array(Box::new(SqlType::Timestamp(Some(2)))),
            SqlType::Array(Box::new(SqlType::Integer)),
            SqlType::Array(Box::new(SqlType::UnconstrainedNumeric)),
            SqlType::Array(Box::new(SqlType::Numeric {
                precision: 12,
                scale: 2,
            })),
        ];
        let def = TableDef {
            id: TableId(1025),
            name: "t".into(),
            columns: types
                .iter()
                .enumerate()
                .map(|(i, t)| ColumnDef {
                    name: format!("c{i}"),
                    sql_type: t.clone(),
                    nullable: i % 2 == 0,
                    default: (i == 3).then(|| "42".into()),
                })
                .collect(),
            primary_key: vec![2, 0],
            hidden_rowid: true,
            primary_key_name: Some("t_key".into()),
            derived: Default::default(),
        };
        assert_eq!(TableDef::from_bytes(&def.to_bytes()).unwrap(), def);
        let tables = [Arc::new(def.clone())];
        assert_eq!(
            tables_from_bytes(&tables_to_bytes(&tables)).unwrap(),
            std::slice::from_ref(&def)
        );
        let mut change = SchemaChange::default();
        change.created.insert("t".into(), Arc::new(def.clone()));
        let dropped = TableDef {
            id: TableId(7),
            name: "old".into(),
            ..def
        };
        change.dropped.insert("old".into(), Arc::new(dropped));
        let back = SchemaChange::from_bytes(&change.to_bytes()).unwrap();
        assert_eq!(back.created, change.created);
        assert_eq!(back.dropped, change.dropped);
        assert!(matches!(
            TableDef::from_bytes(b"\xff\xff"),
            Err(Error::Corrupt(_))
        ));
    }
}
