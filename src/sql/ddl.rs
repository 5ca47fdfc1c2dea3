//! CREATE TABLE and DROP TABLE, executed by ShardForge itself: this module
//! turns the statements into table definitions; the transaction carries
//! them to the catalog when it commits (see `catalog::SchemaChange`).

use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{
    self, ArrayElemTypeDef, CharacterLength, ColumnOption, CreateTable, ExactNumberInfo, Expr,
    ObjectName, ObjectNamePart, TableConstraint, TimezoneInfo,
};

use crate::catalog::{
    types::{MAX_FRACTION_DIGITS, NUMERIC_MAX_PRECISION},
    ColumnDef, SqlType, TableDef, TableId, PUBLIC_SCHEMA, ROWID_COLUMN,
};
use crate::error::{Error, InputError, Result};

/// `CREATE TABLE name (a, b) AS query`, which sqlparser does not read (a
/// column list there must have types): the statement parsed without the
/// list, the names put back as its columns, of no type (`CREATE TABLE AS`
/// names the query's columns by them). `None` for any other text.
pub fn parse_create_as_with_names(sql: &str) -> Option<ast::Statement> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let significant: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize| match significant.get(i) {
        Some((_, Token::Word(w))) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    // CREATE TABLE [IF NOT EXISTS] name [. name ...] (
    let mut at = match (keyword(0), keyword(1)) {
        (Some(Keyword::CREATE), Some(Keyword::TABLE)) => 2,
        _ => return None,
    };
    if keyword(at) == Some(Keyword::IF) {
        at += 3;
    }
    at += 1;
    while matches!(significant.get(at), Some((_, Token::Period))) {
        at += 2;
    }
    let (open, Token::LParen) = *significant.get(at)? else {
        return None;
    };
    // name [, name ...] ) AS
    let mut names = Vec::new();
    at += 1;
    loop {
        let (_, Token::Word(word)) = significant.get(at)? else {
            return None;
        };
        names.push(word.to_ident(datafusion::sql::sqlparser::tokenizer::Span::empty()));
        match significant.get(at + 1)? {
            (_, Token::Comma) => at += 2,
            (_, Token::RParen) => break,
            _ => return None,
        }
    }
    let close = significant.get(at + 1)?.0;
    if keyword(at + 2) != Some(Keyword::AS) {
        return None;
    }
    let without: String = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| !(open..=close).contains(i))
        .map(|(_, t)| t.to_string())
        .collect();
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &without).ok()?;
    let [ast::Statement::CreateTable(create)] = statements.as_mut_slice() else {
        return None;
    };
    create.query.as_ref()?;
    create.columns = names
        .into_iter()
        .map(|name| ast::ColumnDef {
            name,
            data_type: ast::DataType::Unspecified,
            options: Vec::new(),
        })
        .collect();
    statements.pop()
}

/// Normalises an identifier as PostgreSQL does: unquoted names fold to
/// lower case.
pub fn ident_name(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The table name of `name`, which may be qualified by `public` (and the
/// database name).
pub fn table_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(ident_name(ident)),
            ObjectNamePart::Function(_) => Err(Error::input(
                InputError::Syntax,
                format!("invalid table name {name}"),
            )),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == PUBLIC_SCHEMA => Ok(table.clone()),
        [db, schema, table] if db == crate::catalog::DATABASE && schema == PUBLIC_SCHEMA => {
            Ok(table.clone())
        }
        [schema, _] => Err(Error::input(
            InputError::UndefinedObject,
            format!("schema \"{schema}\" does not exist"),
        )),
        _ => Err(Error::input(
            InputError::Syntax,
            format!("improper qualified name: {name}"),
        )),
    }
}

/// Builds the definition of a new table from `CREATE TABLE`. `planner`
/// checks DEFAULT expressions so a bad one fails now, not at first insert.
pub fn table_def(create: &CreateTable, planner: &SessionState) -> Result<TableDef> {
    if create.query.is_some() {
        // `Session::create_table_as` makes the table from the query's columns.
        return Err(Error::Internal(
            "CREATE TABLE ... AS planned as CREATE TABLE".into(),
        ));
    }
    if create.temporary {
        return Err(Error::unsupported("CREATE TEMPORARY TABLE"));
    }
    if create.columns.is_empty() {
        return Err(Error::unsupported("a table without columns"));
    }
    let name = table_name(&create.name)?;
    let mut columns = Vec::with_capacity(create.columns.len() + 1);
    let mut primary_key: Vec<usize> = Vec::new();
    let mut primary_key_name = None;
    for (index, column) in create.columns.iter().enumerate() {
        let column_name = ident_name(&column.name);
        if columns.iter().any(|c: &ColumnDef| c.name == column_name) {
            return Err(Error::input(
                InputError::Other,
                format!("column \"{column_name}\" specified more than once"),
            ));
        }
        let mut def = ColumnDef {
            name: column_name,
            sql_type: sql_type(&column.data_type)?,
            nullable: true,
            default: None,
        };
        for option in &column.options {
            match &option.option {
                ColumnOption::Null => def.nullable = true,
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::Default(expr) => def.default = Some(checked_default(expr, planner)?),
                ColumnOption::PrimaryKey(_) => {
                    if !primary_key.is_empty() {
                        return Err(multiple_primary_keys(&name));
                    }
                    primary_key.push(index);
                    primary_key_name = option.name.as_ref().map(ident_name);
                }
                other => {
                    return Err(Error::unsupported(format!("column constraint {other}")));
                }
            }
        }
        columns.push(def);
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                if !primary_key.is_empty() {
                    return Err(multiple_primary_keys(&name));
                }
                primary_key_name = pk.name.as_ref().map(ident_name);
                for key_column in &pk.columns {
                    let Expr::Identifier(ident) = &key_column.column.expr else {
                        return Err(Error::unsupported("a primary key on an expression"));
                    };
                    let column = ident_name(ident);
                    let index = columns
                        .iter()
                        .position(|c| c.name == column)
                        .ok_or_else(|| {
                            Error::input(
                                InputError::UndefinedColumn,
                                format!("column \"{column}\" named in key does not exist"),
                            )
                        })?;
                    primary_key.push(index);
                }
            }
            other => return Err(Error::unsupported(format!("table constraint {other}"))),
        }
    }
    let hidden_rowid = primary_key.is_empty();
    if hidden_rowid {
        if columns.iter().any(|c| c.name == ROWID_COLUMN) {
            return Err(Error::unsupported(format!(
                "a column named \"{ROWID_COLUMN}\" in a table without a primary key"
            )));
        }
        primary_key.push(columns.len());
        columns.push(ColumnDef {
            name: ROWID_COLUMN.into(),
            sql_type: SqlType::BigInt,
            nullable: false,
            default: None,
        });
    }
    for &index in &primary_key {
        columns[index].nullable = false;
        // Keys compare their stored form; these types compare otherwise
        // (`'1 mon' = '30 days'`, jsonb `1.0 = 1`; json has no equality).
        if matches!(
            columns[index].sql_type,
            SqlType::Interval | SqlType::Json | SqlType::Jsonb | SqlType::Array(_)
        ) {
            return Err(Error::unsupported(format!(
                "a primary key column of type {}",
                columns[index].sql_type.pg_name()
            )));
        }
    }
    Ok(TableDef {
        id: TableId(0),
        name,
        columns,
        primary_key,
        hidden_rowid,
        primary_key_name,
        derived: Default::default(),
    })
}

fn multiple_primary_keys(table: &str) -> Error {
    Error::input(
        InputError::Other,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}

/// A column's default as PostgreSQL shows it (`pg_get_expr`,
/// `information_schema.columns`), where that differs from its text as
/// stored: a string is a constant of the column's type (`'x'::text`,
/// `'{}'::jsonb`), a negative number is quoted (`'-1'::integer`), an
/// operation is parenthesized (`(1 + 2)`), and `DEFAULT NULL` is none.
/// Rails and other ORMs read a default's value out of this form.
pub fn shown_default(column: &ColumnDef) -> Option<String> {
    let stored = column.default.as_ref()?;
    let Ok(expr) = super::rewrite::parse_expr(stored) else {
        return Some(stored.clone());
    };
    let typed =
        |text: &str, type_name: &str| Some(format!("'{}'::{type_name}", text.replace('\'', "''")));
    match &expr {
        Expr::Value(v) if v.value == ast::Value::Null => None,
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(text) => typed(text, &constant_type(&column.sql_type)),
            _ => Some(stored.clone()),
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr: inner,
        } => match inner.as_ref() {
            Expr::Value(v) => match &v.value {
                ast::Value::Number(digits, _) => {
                    let negative = format!("-{digits}");
                    let type_name = match negative.parse::<i64>() {
                        Ok(n) if i32::try_from(n).is_ok() => "integer",
                        Ok(_) => "bigint",
                        Err(_) => "numeric",
                    };
                    typed(&negative, type_name)
                }
                _ => Some(stored.clone()),
            },
            _ => Some(stored.clone()),
        },
        Expr::BinaryOp { .. } => Some(format!("({stored})")),
        _ => Some(stored.clone()),
    }
}

/// The name `pg_get_expr` casts a constant of `sql_type` to: the type
/// without its modifier (`character varying`, `bpchar`, `numeric`).
fn constant_type(sql_type: &SqlType) -> String {
    match sql_type {
        SqlType::Varchar(_) => "character varying".into(),
        SqlType::Char(_) => "bpchar".into(),
        SqlType::Numeric { .. } | SqlType::UnconstrainedNumeric => "numeric".into(),
        SqlType::Array(element) => format!("{}[]", constant_type(element)),
        other => other.pg_name(),
    }
}

fn checked_default(expr: &Expr, planner: &SessionState) -> Result<String> {
    // Stored as DataFusion spells it (`current_user` is `session_user`).
    let mut expr = expr.clone();
    super::functions::rename_calls_in(&mut expr);
    let sql = expr.to_string();
    planner
        .create_logical_expr(&sql, &DFSchema::empty())
        .map_err(super::errors::classify)?;
    Ok(sql)
}

/// The stored type of a declared SQL type.
pub fn sql_type(data_type: &ast::DataType) -> Result<SqlType> {
    use ast::DataType as D;
    Ok(match data_type {
        D::SmallInt(_) | D::Int2(_) => SqlType::SmallInt,
        D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Integer,
        D::BigInt(_) | D::Int8(_) => SqlType::BigInt,
        D::Real | D::Float4 => SqlType::Real,
        D::DoublePrecision | D::Float8 | D::Double(ExactNumberInfo::None) => SqlType::Double,
        D::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => SqlType::Real,
        D::Float(_) => SqlType::Double,
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => numeric(info)?,
        D::Bool | D::Boolean => SqlType::Boolean,
        D::Text | D::String(None) => SqlType::Text,
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) => {
            SqlType::Varchar(char_length(len)?)
        }
        D::Char(len) | D::Character(len) => SqlType::Char(char_length(len)?.unwrap_or(1)),
        D::Date => SqlType::Date,
        D::Time(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            SqlType::Time(fraction_digits(p))
        }
        D::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            SqlType::Timestamp(fraction_digits(p))
        }
        D::Timestamp(p, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            SqlType::TimestampTz(fraction_digits(p))
        }
        D::Bytea => SqlType::Bytea,
        D::Uuid => SqlType::Uuid,
        D::JSON => SqlType::Json,
        D::JSONB => SqlType::Jsonb,
        // Without a field list (`interval day to second` keeps fewer
        // fields in PostgreSQL).
        D::Interval {
            fields: None,
            precision: None,
        } => SqlType::Interval,
        // `integer[][]` is `integer[]` in PostgreSQL too: an array column
        // does not fix its dimensions.
        D::Array(
            ArrayElemTypeDef::SquareBracket(element, _) | ArrayElemTypeDef::AngleBracket(element),
        ) => {
            let element = match sql_type(element)? {
                SqlType::Array(element) => *element,
                element => element,
            };
            SqlType::array_of(element.clone())
                .ok_or_else(|| Error::unsupported(format!("an array of {}", element.pg_name())))?
        }
        other => return Err(Error::unsupported(format!("type {other}"))),
    })
}

/// A time type's declared precision; above 6 it is 6, as PostgreSQL
/// takes it (with a warning).
fn fraction_digits(precision: &Option<u64>) -> Option<u8> {
    precision.map(|p| p.min(u64::from(MAX_FRACTION_DIGITS)) as u8)
}

fn numeric(info: &ExactNumberInfo) -> Result<SqlType> {
    let (precision, scale) = match info {
        ExactNumberInfo::None => return Ok(SqlType::UnconstrainedNumeric),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if precision == 0 || scale < 0 || scale as u64 > precision {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            format!("NUMERIC precision {precision} and scale {scale} are not valid"),
        ));
    }
    if precision > u64::from(NUMERIC_MAX_PRECISION) {
        return Err(Error::unsupported(format!(
            "NUMERIC precision {precision} (the limit is {NUMERIC_MAX_PRECISION})"
        )));
    }
    Ok(SqlType::Numeric {
        precision: precision as u8,
        scale: scale as i8,
    })
}

/// PostgreSQL's largest `varchar(n)` / `char(n)`.
const MAX_CHAR_LENGTH: u64 = 10_485_760;

fn char_length(len: &Option<CharacterLength>) -> Result<Option<u32>> {
    match len {
        None => Ok(None),
        Some(CharacterLength::IntegerLength { length, .. }) if *length > MAX_CHAR_LENGTH => {
            Err(Error::input(
                InputError::InvalidParameterValue,
                format!("length for type varchar cannot exceed {MAX_CHAR_LENGTH}"),
            ))
        }
        Some(CharacterLength::IntegerLength { length, .. }) if *length >= 1 => {
            Ok(Some(*length as u32))
        }
        Some(CharacterLength::IntegerLength { .. }) => Err(Error::input(
            InputError::InvalidParameterValue,
            "length for type varchar must be at least 1",
        )),
        Some(CharacterLength::Max) => Ok(None),
    }
}
