//! `json` and `jsonb`: PostgreSQL's two JSON types, their operators and
//! their everyday functions.
//!
//! Both are stored and computed as Arrow Utf8 text, marked by the field
//! metadata `PG_TYPE_METADATA` (`json` / `jsonb`) as `varchar` is, which
//! is how a result column is described to the client (`wire_types`) and
//! how an operator knows its operand is JSON. A `json` value is the text
//! as written (validated); a `jsonb` value is its canonical text
//! (`value::Jsonb`: keys sorted and unique, numbers as `numeric` prints
//! them), written by [`stored_text`] wherever a value enters: casts
//! (`jsonb_in`), stored columns (`sql::write`), parameters and COPY
//! (`sql::copy::ColumnInput`). Equal `jsonb` values then have equal text,
//! so `=`, GROUP BY and DISTINCT compare them as PostgreSQL does, but for
//! numbers that differ only in trailing zeros (`1.0` and `1`, equal in
//! PostgreSQL; `=` compares numbers by value). Sorting by a `jsonb` value
//! and `<`, `>` between two sort in PostgreSQL's order of JSON values
//! ([`order`]).
//!
//! How a statement reaches the functions (`planning`):
//! - `x::json` / `x::jsonb` become `json_in(x)` / `jsonb_in(x)`;
//! - the operators (`->`, `->>`, `#>`, `#>>`, `@>`, `<@`, `?`, `?|`, `?&`,
//!   `||`, `-`, `#-`) are planned as calls when an operand is JSON;
//! - `json_agg`, `jsonb_agg`, `json_object_agg` and `jsonb_object_agg`
//!   are `array_agg` (which brings ORDER BY, FILTER and DISTINCT) of each
//!   value's JSON, finished by a function that writes the array or object;
//! - the set-returning functions (`jsonb_array_elements`, `_text`,
//!   `jsonb_object_keys`) in a select list are `unnest` of a function that
//!   returns the list, as `generate_series` is.

mod datum;
mod functions;
mod ops;
mod order;
mod planning;
mod value;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::prelude::SessionContext;

pub use order::JsonbOrder;
pub use planning::{json_operator, json_semantics, rewrite_statement, set_returning_item};

use crate::catalog::PG_TYPE_METADATA;
use crate::error::{Error, InputError, Result};

/// Which of the two types a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    Json,
    Jsonb,
}

impl Flavor {
    /// The JSON type of values of `field`, if it is one.
    pub fn of(field: &Field) -> Option<Flavor> {
        if *field.data_type() != DataType::Utf8 {
            return None;
        }
        match field.metadata().get(PG_TYPE_METADATA).map(String::as_str) {
            Some("json") => Some(Flavor::Json),
            Some("jsonb") => Some(Flavor::Jsonb),
            _ => None,
        }
    }

    /// The type's name, also its `PG_TYPE_METADATA`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Json => "json",
            Flavor::Jsonb => "jsonb",
        }
    }

    /// A nullable field `name` of this type.
    pub fn field(self, name: &str) -> Field {
        let metadata = [(PG_TYPE_METADATA.to_string(), self.name().to_string())];
        Field::new(name, DataType::Utf8, true).with_metadata(metadata.into())
    }
}

/// A value of `flavor` as it is stored: `json` text checked, `jsonb` text
/// in its canonical form. Text that is no JSON is 22P02.
pub fn stored_text(text: &str, flavor: Flavor) -> Result<String> {
    match flavor {
        Flavor::Json => {
            value::parse(text)?;
            Ok(text.to_string())
        }
        Flavor::Jsonb => Ok(value::parse_jsonb(text)?.to_string()),
    }
}

/// A column of text as stored values of `flavor` ([`stored_text`]).
pub fn stored_column(array: &ArrayRef, flavor: Flavor) -> Result<ArrayRef> {
    let texts = array.as_string_opt::<i32>().ok_or_else(|| {
        Error::Internal(format!(
            "a {} column of {}",
            flavor.name(),
            array.data_type()
        ))
    })?;
    let stored = texts
        .iter()
        .map(|v| v.map(|t| stored_text(t, flavor)).transpose())
        .collect::<Result<StringArray>>()?;
    Ok(Arc::new(stored))
}

/// `jsonb`'s binary form: a version byte, 1, before the text.
pub const JSONB_VERSION: u8 = 1;

/// A `jsonb` value sent in binary: its text after the version byte.
pub fn jsonb_binary_text(bytes: &[u8]) -> Result<&[u8]> {
    match bytes.split_first() {
        Some((&JSONB_VERSION, text)) => Ok(text),
        Some((version, _)) => Err(Error::input(
            InputError::InvalidBinaryRepresentation,
            format!("unsupported jsonb version number {version}"),
        )),
        None => Err(Error::input(
            InputError::InvalidBinaryRepresentation,
            "insufficient data left in message",
        )),
    }
}

/// Registers the JSON functions.
pub fn register(ctx: &SessionContext) {
    for udf in functions::all() {
        ctx.register_udf(udf);
    }
}
