//! The Arrow IPC form of a row schema, as a `ScanRequest` carries it to a
//! shard replica (in-process or over Flight): the layout the replica
//! decodes the table's rows with.
//!
//! Both directions are on the path of every read, and a schema changes
//! only with its table's definition: the encoded form is kept with the
//! definition (`catalog::TableDef::row_schema_ipc`), and decoded schemas
//! are kept here, by their bytes, for the few tables in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::convert::{fb_to_schema, IpcSchemaEncoder};
use datafusion::arrow::ipc::root_as_schema;

use crate::error::{Error, InputError, Result};

/// How many decoded schemas are kept; past it the cache starts over (a
/// schema decodes in microseconds, so a miss costs little).
const DECODED_KEPT: usize = 256;

static DECODED: Mutex<Option<HashMap<Vec<u8>, SchemaRef>>> = Mutex::new(None);

pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    IpcSchemaEncoder::new()
        .schema_to_fb(schema)
        .finished_data()
        .to_vec()
}

pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef> {
    let mut decoded = DECODED.lock().unwrap_or_else(|e| e.into_inner());
    let decoded = decoded.get_or_insert_with(HashMap::new);
    if let Some(schema) = decoded.get(bytes) {
        return Ok(schema.clone());
    }
    let schema = root_as_schema(bytes)
        .map(fb_to_schema)
        .map_err(|e| Error::Input(InputError::Other, format!("bad row schema: {e}")))?;
    let schema = Arc::new(schema);
    if decoded.len() >= DECODED_KEPT {
        decoded.clear();
    }
    decoded.insert(bytes.to_vec(), schema.clone());
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn a_schema_decodes_to_itself_and_bad_bytes_are_an_error() {
        let schema = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]);
        let bytes = encode_schema(&schema);
        assert_eq!(*decode_schema(&bytes).unwrap(), schema);
        assert_eq!(*decode_schema(&bytes).unwrap(), schema, "and again, kept");
        assert!(decode_schema(b"not a schema").is_err());
    }
}
