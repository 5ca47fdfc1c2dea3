//! Rewrites of INSERT ... VALUES where DataFusion reads a PostgreSQL
//! statement differently:
//!
//! - `DEFAULT` as a value becomes the column's DEFAULT expression, or NULL;
//!   `DEFAULT VALUES` is a row of them.
//! - A string literal for a `bytea` column is PostgreSQL bytea input: hex
//!   (`'\x0001ff'`) or escape format (`'a\\000b'`), not the string's own
//!   bytes. It becomes `decode('<hex>', 'hex')`; bad input is 22P02.
//!
//! UPDATE uses [`is_default`], [`default_value`] and [`bytea_literal`] for
//! its assignments the same way.
//!
//! And in any statement, [`name_function_columns`]: a function in FROM with
//! a bare alias (`generate_series(1, 3) AS n`) names its column `n`, as in
//! PostgreSQL (DataFusion would call it `value`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Insert, SetExpr, Statement, TableAliasColumnDef, TableFactor, TableObject, Value,
    VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::ddl::{ident_name, table_name};
use crate::catalog::{Catalog, SqlType, TableDef};
use crate::error::{Error, InputError, Result};

pub fn rewrite_insert(insert: &mut Insert, catalog: &Catalog) -> Result<()> {
    let TableObject::TableName(name) = &insert.table else {
        return Ok(());
    };
    let Some(def) = catalog.table(&table_name(name)?) else {
        return Ok(()); // DataFusion reports the missing table.
    };
    if insert.source.is_none() && insert.columns.is_empty() && insert.assignments.is_empty() {
        // INSERT ... DEFAULT VALUES: one row of defaults.
        let row = vec!["DEFAULT"; def.visible_columns()].join(", ");
        let query = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("VALUES ({row})"))
            .and_then(|mut p| p.parse_query())
            .map_err(|e| Error::Internal(e.to_string()))?;
        insert.source = Some(query);
    }
    let Some(source) = insert.source.as_mut() else {
        return Ok(());
    };
    let SetExpr::Values(values) = source.body.as_mut() else {
        return Ok(());
    };
    let targets: Vec<Option<usize>> = if insert.columns.is_empty() {
        (0..def.visible_columns()).map(Some).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .and_then(|i| def.column_index(&ident_name(i)))
            })
            .collect()
    };
    for row in &mut values.rows {
        for (value, target) in row.content.iter_mut().zip(&targets) {
            let Some(index) = *target else { continue };
            if is_default(value) {
                *value = default_value(&def, index)?;
            } else if def.columns[index].sql_type == SqlType::Bytea {
                if let Some(decoded) = bytea_literal(value)? {
                    *value = decoded;
                }
            }
        }
    }
    Ok(())
}

/// Gives table functions aliased without a column list their alias as
/// column name (`FROM generate_series(1, 3) AS n` reads column `n`).
pub fn name_function_columns(stmt: &mut Statement) {
    struct Namer;
    impl VisitorMut for Namer {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                args: Some(_),
                alias: Some(alias),
                ..
            } = factor
            {
                if alias.columns.is_empty() {
                    let name = alias.name.clone();
                    alias.columns.push(TableAliasColumnDef {
                        name,
                        data_type: None,
                    });
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Namer);
}

pub fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(ident) if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default"))
}

pub fn default_value(def: &TableDef, index: usize) -> Result<Expr> {
    match &def.columns[index].default {
        Some(sql) => parse_expr(sql),
        None => Ok(Expr::value(Value::Null)),
    }
}

fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::input(InputError::Syntax, e.to_string()))
}

/// If `expr` is a string literal, the expression of the bytes it denotes as
/// bytea input.
pub fn bytea_literal(expr: &Expr) -> Result<Option<Expr>> {
    let Expr::Value(value) = expr else {
        return Ok(None);
    };
    let (Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text)) = &value.value else {
        return Ok(None);
    };
    let bytes = parse_bytea(text)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parse_expr(&format!("decode('{hex}', 'hex')")).map(Some)
}

/// PostgreSQL's bytea input: `\x` then hex digit pairs, or the escape
/// format where `\\` is a backslash and `\ooo` an octal byte.
fn parse_bytea(text: &str) -> Result<Vec<u8>> {
    let invalid = || {
        Error::input(
            InputError::InvalidText,
            "invalid input syntax for type bytea",
        )
    };
    if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if digits.len() % 2 != 0 {
            return Err(invalid());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(invalid)
            })
            .collect();
    }
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
        } else if raw.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = raw.get(i + 1..i + 4).ok_or_else(invalid)?;
            let value = std::str::from_utf8(octal)
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
                .ok_or_else(invalid)?;
            out.push(value);
            i += 4;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_input_formats() {
        assert_eq!(parse_bytea("\\x0001ff").unwrap(), vec![0, 1, 255]);
        assert_eq!(parse_bytea("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_bytea("a\\000b\\\\").unwrap(), b"a\0b\\".to_vec());
        assert!(parse_bytea("\\x0").is_err());
        assert!(parse_bytea("\\xzz").is_err());
        assert!(parse_bytea("\\9").is_err());
    }
}
