//! The `uuid` type: its 16 bytes in an Arrow FixedSizeBinary(16), which
//! no other type uses, so the Arrow type alone says a value is a uuid
//! (`wire_types`). The bytes compare, sort, group and key (`encoding`) in
//! PostgreSQL's order.
//!
//! DataFusion has no conversion between text and FixedSizeBinary, so:
//! - `UUID` in SQL is planned as FixedSizeBinary(16)
//!   (`wire_types::PgTypePlanner`), so
//!   `'...'::uuid`, `CAST(x AS uuid)` and UPDATE's assignment casts are
//!   casts to it;
//! - [`uuid_text`], rewriting expressions before type coercion,
//!   reads those casts as `uuid_in` / `uuid_out` (PostgreSQL's text forms),
//!   and reads text compared with a uuid (`id = '...'`, `id IN ('...')`,
//!   `BETWEEN`) as a uuid, as PostgreSQL reads the untyped literal there;
//! - a string literal INSERTed into a uuid column is cast to it in the
//!   statement (`rewrite::rewrite_insert`): DataFusion would refuse the
//!   assignment.
//!
//! Text that is no uuid is 22P02, as in PostgreSQL. Other mixes of text
//! and uuid (a text column compared with a uuid one, a UNION of both)
//! are planning errors, where PostgreSQL too refuses most.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, FixedSizeBinaryArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TryCast, Volatility,
};

use super::analyze::{array_udf, as_string_type, convert_compared, is_text};
use super::wire_types::UUID;
use crate::error::{Error, InputError, Result};

/// Bytes in a uuid.
const BYTES: usize = 16;

/// A uuid as PostgreSQL's `uuid_in` reads it: 32 hex digits in either
/// case, optionally in braces, with a hyphen allowed after any group of
/// four digits but the last (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`,
/// `{A0EEBC999C0B4EF8BB6D6BB9BD380A11}`, `a0ee-bc99-9c0b-...`).
pub fn parse(text: &str) -> Result<[u8; BYTES]> {
    let invalid = || {
        Error::input(
            InputError::InvalidText,
            format!("invalid input syntax for type uuid: \"{text}\""),
        )
    };
    let mut rest = text.as_bytes();
    let braces = rest.first() == Some(&b'{');
    if braces {
        rest = &rest[1..];
    }
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; BYTES];
    for (i, byte) in out.iter_mut().enumerate() {
        let [high, low, ..] = rest else {
            return Err(invalid());
        };
        *byte = (hex(*high).ok_or_else(invalid)? << 4) | hex(*low).ok_or_else(invalid)?;
        rest = &rest[2..];
        if rest.first() == Some(&b'-') && i % 2 == 1 && i < BYTES - 1 {
            rest = &rest[1..];
        }
    }
    if braces {
        rest = rest.strip_prefix(b"}").ok_or_else(invalid)?;
    }
    match rest.is_empty() {
        true => Ok(out),
        false => Err(invalid()),
    }
}

/// A uuid as PostgreSQL prints it: lower-case hex, hyphenated 8-4-4-4-12.
pub fn format(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The text forms of a column of uuids.
pub fn texts(array: &ArrayRef) -> ArrayRef {
    let texts: StringArray = array
        .as_fixed_size_binary()
        .iter()
        .map(|v| v.map(format))
        .collect();
    Arc::new(texts)
}

/// `gen_random_uuid()`: a version 4 (random) uuid per row.
pub fn gen_random_uuid() -> ScalarUDF {
    ScalarUDF::new_from_impl(GenRandomUuid {
        signature: Signature::nullary(Volatility::Volatile),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GenRandomUuid {
    signature: Signature,
}

impl ScalarUDFImpl for GenRandomUuid {
    fn name(&self) -> &str {
        "gen_random_uuid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(UUID)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let uuids = (0..args.number_rows).map(|_| Some(uuid::Uuid::new_v4().into_bytes()));
        let array = FixedSizeBinaryArray::try_from_sparse_iter_with_size(uuids, BYTES as i32)?;
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

/// Text cast to or compared with a uuid, read as PostgreSQL reads it (see
/// the module's documentation): an expression rewrite run before type
/// coercion (`analyze::ExpressionRewrites`).
pub fn uuid_text(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let type_of = |e: &Expr| e.get_type(schema).ok();
    let is_uuid = |e: &Expr| type_of(e) == Some(UUID);
    match expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if *field.data_type() == UUID && type_of(&expr).is_some_and(|t| is_text(&t)) =>
        {
            Transformed::yes(uuid_in().call(vec![*expr]))
        }
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if is_text(field.data_type()) && is_uuid(&expr) =>
        {
            Transformed::yes(as_string_type(uuid_out().call(vec![*expr]), field))
        }
        // Text compared with a uuid is read as one.
        other => convert_compared(other, is_uuid, |e| match type_of(&e) {
            Some(t) if is_text(&t) => uuid_in().call(vec![e]),
            _ => e,
        }),
    }
}

/// `uuid_in(text)`: text read as a uuid (22P02 if it is none).
fn uuid_in() -> Arc<ScalarUDF> {
    array_udf("uuid_in", vec![DataType::Utf8], UUID, |arrays| {
        let uuids = arrays[0]
            .as_string::<i32>()
            .iter()
            .map(|text| text.map(parse).transpose())
            .collect::<Result<Vec<_>>>()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let array =
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(uuids.into_iter(), BYTES as i32)?;
        Ok(Arc::new(array) as ArrayRef)
    })
}

/// `uuid_out(uuid)`: a uuid's text.
fn uuid_out() -> Arc<ScalarUDF> {
    array_udf("uuid_out", vec![UUID], DataType::Utf8, |arrays| {
        Ok(texts(&arrays[0]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_input_forms_are_postgresqls() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let bytes = parse(canonical).unwrap();
        assert_eq!(format(&bytes), canonical);
        for same in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(parse(same).unwrap(), bytes, "{same}");
        }
        for bad in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(e, Error::Input(InputError::InvalidText, _)),
                "{bad}"
            );
        }
    }
}
