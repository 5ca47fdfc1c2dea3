//! The SQL column types ShardForge stores, and how each maps to Arrow.
//!
//! `numeric(p, s)` is Decimal128 up to 38 digits and Decimal256 up to 76;
//! more digits are rejected when the table is created (PostgreSQL allows
//! 1000). An unconstrained `numeric` keeps each value's own digits and
//! scale, as PostgreSQL's does: `LargeBinary`, the value's sortable bytes
//! (`crate::numeric`, `sql::numeric::values`).
//! `timestamptz` is stored as UTC microseconds, a `uuid` as its 16 bytes.
//! An array column is an Arrow `List` of its element type,
//! one-dimensional.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

/// Largest precision Decimal128 holds; above it Decimal256 is used.
const DECIMAL128_MAX_PRECISION: u8 = 38;
/// Largest precision ShardForge stores at all (Decimal256).
pub const NUMERIC_MAX_PRECISION: u8 = 76;
/// Timezone of stored `timestamptz` values.
pub const UTC: &str = "+00:00";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Numeric {
        precision: u8,
        scale: i8,
    },
    /// `numeric` without precision and scale: each value keeps its own
    /// digits and scale (`2.50` stays `2.50`), as its sortable bytes in a
    /// `LargeBinary` (`sql::numeric::values`).
    UnconstrainedNumeric,
    Boolean,
    Text,
    /// `varchar(n)`; `None` is unbounded.
    Varchar(Option<u32>),
    /// `char(n)`: stored without trailing spaces, shown padded to `n`
    /// characters (`sql::bpchar`).
    Char(u32),
    Date,
    /// `time(p)` (without time zone): microseconds since midnight. The
    /// three time types hold microseconds and keep `p` fraction digits of
    /// their seconds, rounded as a value is written (`None`: no declared
    /// precision, 6 digits; see [`SqlType::fraction_digits`]).
    Time(Option<u8>),
    Timestamp(Option<u8>),
    TimestampTz(Option<u8>),
    Bytea,
    /// 16 bytes, FixedSizeBinary(16) (see `sql::uuid`).
    Uuid,
    /// JSON text as written (validated).
    Json,
    /// JSON in its canonical text (see `sql::json`).
    Jsonb,
    /// Months, days and microseconds (see `sql::interval`).
    Interval,
    /// A one-dimensional array of an element type that is not itself an
    /// array (`integer[]`; [`SqlType::array_of`] says which are), an Arrow
    /// `List`. PostgreSQL's `integer[][]` is the same type.
    Array(Box<SqlType>),
}

impl SqlType {
    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::SmallInt => DataType::Int16,
            SqlType::Integer => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Numeric { precision, scale } if *precision <= DECIMAL128_MAX_PRECISION => {
                DataType::Decimal128(*precision, *scale)
            }
            SqlType::Numeric { precision, scale } => DataType::Decimal256(*precision, *scale),
            SqlType::UnconstrainedNumeric => DataType::LargeBinary,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Text
            | SqlType::Varchar(_)
            | SqlType::Char(_)
            | SqlType::Json
            | SqlType::Jsonb => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Time(_) => DataType::Time64(TimeUnit::Microsecond),
            SqlType::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::TimestampTz(_) => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            SqlType::Bytea => DataType::Binary,
            SqlType::Uuid => DataType::FixedSizeBinary(16),
            SqlType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            // The elements of a `numeric[]` are `numeric(38, 10)`, as
            // DataFusion reads `numeric[]` (they do not keep their scale).
            SqlType::Array(element) if **element == SqlType::UnconstrainedNumeric => {
                DataType::List(Arc::new(Field::new_list_field(
                    DataType::Decimal128(38, 10),
                    true,
                )))
            }
            SqlType::Array(element) => {
                DataType::List(Arc::new(Field::new_list_field(element.to_arrow(), true)))
            }
        }
    }

    /// The stored type whose values are of Arrow type `data_type`, where
    /// one is (text for any string type; none for strings that are
    /// `varchar`, `json` or others, which the Arrow type does not tell).
    pub fn from_arrow(data_type: &DataType) -> Option<SqlType> {
        Some(match data_type {
            DataType::Int16 => SqlType::SmallInt,
            DataType::Int32 => SqlType::Integer,
            DataType::Int64 => SqlType::BigInt,
            DataType::Float32 => SqlType::Real,
            DataType::Float64 => SqlType::Double,
            DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
                SqlType::Numeric {
                    precision: *precision,
                    scale: *scale,
                }
            }
            DataType::Boolean => SqlType::Boolean,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => SqlType::Text,
            DataType::Date32 => SqlType::Date,
            DataType::Time64(_) => SqlType::Time(None),
            DataType::Timestamp(_, None) => SqlType::Timestamp(None),
            DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz(None),
            DataType::LargeBinary => SqlType::UnconstrainedNumeric,
            DataType::Binary | DataType::BinaryView => SqlType::Bytea,
            DataType::FixedSizeBinary(16) => SqlType::Uuid,
            DataType::Interval(IntervalUnit::MonthDayNano) => SqlType::Interval,
            DataType::List(element) => SqlType::array_of(Self::from_arrow(element.data_type())?)?,
            _ => return None,
        })
    }

    /// The type a table made from a query's result (CREATE TABLE AS)
    /// gives a column of `field`: the stored type of its values, and
    /// `json`, `jsonb`, `varchar` and `char(n)` where the field says so
    /// ([`Self::metadata`]); `text` for a column of NULLs, as PostgreSQL
    /// types an unknown one. `None` where no stored type holds them.
    pub fn of_result(field: &Field) -> Option<SqlType> {
        let named = field.metadata().get(super::PG_TYPE_METADATA);
        Some(match (named.map(String::as_str), field.data_type()) {
            (Some("json"), _) => SqlType::Json,
            (Some("jsonb"), _) => SqlType::Jsonb,
            (Some("varchar"), _) => SqlType::Varchar(None),
            (Some("bpchar"), _) => SqlType::Char(Self::char_width(field)? as u32),
            (_, DataType::Null) => SqlType::Text,
            (_, data_type) => Self::from_arrow(data_type)?,
        })
    }

    /// An array of `element`, for the element types whose values an array
    /// keeps exactly as a column does. `char(n)` and `varchar(n)` elements
    /// would need their lengths checked and `json`/`jsonb` ones their
    /// text read; they are refused rather than stored unchecked.
    pub fn array_of(element: SqlType) -> Option<SqlType> {
        match element {
            SqlType::Char(_)
            | SqlType::Varchar(Some(_))
            | SqlType::Json
            | SqlType::Jsonb
            | SqlType::Array(_) => None,
            element => Some(SqlType::Array(Box::new(element))),
        }
    }

    /// The type as SQL that DataFusion's planner reads back as
    /// [`SqlType::to_arrow`] (used to cast new values in UPDATE).
    pub fn cast_sql(&self) -> String {
        match self {
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Real => "REAL".into(),
            SqlType::Double => "DOUBLE PRECISION".into(),
            SqlType::Numeric { precision, scale } => format!("NUMERIC({precision}, {scale})"),
            SqlType::UnconstrainedNumeric => "NUMERIC".into(),
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::Text
            | SqlType::Varchar(_)
            | SqlType::Char(_)
            | SqlType::Json
            | SqlType::Jsonb => "TEXT".into(),
            SqlType::Date => "DATE".into(),
            SqlType::Time(_) => "TIME".into(),
            SqlType::Timestamp(_) => "TIMESTAMP".into(),
            SqlType::TimestampTz(_) => "TIMESTAMPTZ".into(),
            SqlType::Bytea => "BYTEA".into(),
            SqlType::Uuid => "UUID".into(),
            SqlType::Interval => "INTERVAL".into(),
            SqlType::Array(element) => format!("{}[]", element.cast_sql()),
        }
    }

    /// The type as PostgreSQL names it (`\d`, error messages).
    pub fn pg_name(&self) -> String {
        match self {
            SqlType::SmallInt => "smallint".into(),
            SqlType::Integer => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Real => "real".into(),
            SqlType::Double => "double precision".into(),
            SqlType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::UnconstrainedNumeric => "numeric".into(),
            SqlType::Boolean => "boolean".into(),
            SqlType::Text => "text".into(),
            SqlType::Varchar(None) => "character varying".into(),
            SqlType::Varchar(Some(n)) => format!("character varying({n})"),
            SqlType::Char(n) => format!("character({n})"),
            SqlType::Date => "date".into(),
            SqlType::Time(p) => format!("time{} without time zone", digits_suffix(*p)),
            SqlType::Timestamp(p) => format!("timestamp{} without time zone", digits_suffix(*p)),
            SqlType::TimestampTz(p) => format!("timestamp{} with time zone", digits_suffix(*p)),
            SqlType::Bytea => "bytea".into(),
            SqlType::Uuid => "uuid".into(),
            SqlType::Json => "json".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Interval => "interval".into(),
            SqlType::Array(element) => format!("{}[]", element.pg_name()),
        }
    }

    /// The PostgreSQL wire type name, for types whose Arrow type does not
    /// determine it (the string types, all Utf8).
    pub fn wire_name(&self) -> Option<&'static str> {
        match self {
            SqlType::Varchar(_) => Some("varchar"),
            SqlType::Char(_) => Some("bpchar"),
            SqlType::Json => Some("json"),
            SqlType::Jsonb => Some("jsonb"),
            _ => None,
        }
    }

    /// The Arrow field metadata of a column of this type: its wire name
    /// where the Arrow type does not tell it, and the `n` of `char(n)`.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut metadata = HashMap::new();
        if let Some(name) = self.wire_name() {
            metadata.insert(super::PG_TYPE_METADATA.to_string(), name.to_string());
        }
        if let SqlType::Char(n) = self {
            metadata.insert(super::CHAR_LENGTH_METADATA.to_string(), n.to_string());
        }
        metadata
    }

    /// The `n` of a `char(n)` value's field ([`Self::metadata`]).
    pub fn char_width(field: &Field) -> Option<usize> {
        field
            .metadata()
            .get(super::CHAR_LENGTH_METADATA)?
            .parse()
            .ok()
    }

    /// The declared fraction digits of a time type's seconds (the `3` of
    /// `timestamp(3)`, or of `timestamp(3)[]`), which its values are
    /// rounded to as they are written.
    pub fn fraction_digits(&self) -> Option<u8> {
        match self {
            SqlType::Time(p) | SqlType::Timestamp(p) | SqlType::TimestampTz(p) => *p,
            SqlType::Array(element) => element.fraction_digits(),
            _ => None,
        }
    }

    /// The maximum length in characters, for `varchar(n)` and `char(n)`.
    pub fn max_chars(&self) -> Option<u32> {
        match self {
            SqlType::Varchar(n) => *n,
            SqlType::Char(n) => Some(*n),
            _ => None,
        }
    }
}

/// The most fraction digits a time type keeps (microseconds), what a
/// greater declared precision means, as in PostgreSQL.
pub const MAX_FRACTION_DIGITS: u8 = 6;

/// `(p)`, or nothing without a declared precision.
fn digits_suffix(digits: Option<u8>) -> String {
    digits.map(|p| format!("({p})")).unwrap_or_default()
}

/// The `pg_type` names whose SQL spelling differs, with that spelling
/// (what `format_type` and a `regtype` print, and what `to_regtype` reads).
const SQL_SPELLINGS: [(&str, &str); 12] = [
    ("bool", "boolean"),
    ("int2", "smallint"),
    ("int4", "integer"),
    ("int8", "bigint"),
    ("float4", "real"),
    ("float8", "double precision"),
    ("varchar", "character varying"),
    ("bpchar", "character"),
    ("timestamp", "timestamp without time zone"),
    ("timestamptz", "timestamp with time zone"),
    ("time", "time without time zone"),
    ("timetz", "time with time zone"),
];

/// How PostgreSQL prints the type `typname` (`int4` is `integer`, `_text`
/// is `text[]`).
pub fn sql_type_name(typname: &str) -> String {
    if let Some(element) = typname.strip_prefix('_') {
        return format!("{}[]", sql_type_name(element));
    }
    let spelled = SQL_SPELLINGS.iter().find(|(name, _)| *name == typname);
    match spelled {
        Some((_, sql)) => sql.to_string(),
        // The one-byte type, not character(1).
        None if typname == "char" => "\"char\"".to_string(),
        None => typname.to_string(),
    }
}

/// The `pg_type` name of a type as SQL spells it, lower-cased and without
/// a modifier (`integer` and `int` are `int4`, `character varying` is
/// `varchar`); other names are their own.
pub fn typname_of(sql: &str) -> &str {
    match sql {
        "int" => "int4",
        "float" => "float8",
        "decimal" => "numeric",
        "char" => "bpchar",
        other => SQL_SPELLINGS
            .iter()
            .find(|(_, spelled)| *spelled == other)
            .map_or(other, |(name, _)| name),
    }
}
