//! Statement outputs as pgwire responses: rows are encoded from Arrow by
//! arrow-pg in PostgreSQL's text or binary format.

use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::binary::binary_numerics;
use super::errors::to_pgwire;
use super::text::to_pg_text;
use crate::catalog::PG_TYPE_METADATA;
use crate::error::{Error, Result};
use crate::sql::errors::classify;
use crate::sql::Output;

/// The RowDescription of a result. Numerics above 38 digits (Decimal256,
/// which arrow-pg does not map) are described as `numeric`.
pub fn fields(schema: &Schema, format: &Format) -> Result<Vec<FieldInfo>> {
    let mapped: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Decimal256(_, _) => Field::new(f.name(), DataType::Decimal128(38, 0), true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let fields = arrow_schema_to_pg_fields(&Schema::new(mapped), format, None)
        .map_err(|e| Error::Internal(format!("cannot describe result: {e}")))?;
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .map(
            |(info, field)| match field.metadata().get(PG_TYPE_METADATA).map(String::as_str) {
                Some("varchar") => with_type(info, Type::VARCHAR),
                Some("bpchar") => with_type(info, Type::BPCHAR),
                Some("regtype") => with_type(info, Type::REGTYPE),
                _ => info,
            },
        )
        .collect())
}

fn with_type(info: FieldInfo, pg_type: Type) -> FieldInfo {
    FieldInfo::new(info.name().to_string(), None, None, pg_type, info.format())
}

/// The DataRows of a batch in each field's format (`fields`), as
/// PostgreSQL sends them: arrow-pg encodes them, after `to_pg_text` gave
/// the text forms PostgreSQL uses and `binary_numerics` the binary form of
/// numerics.
pub fn data_rows(
    batch: RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
    zone: &Tz,
) -> Result<Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send>> {
    let batch = binary_numerics(to_pg_text(batch, fields, zone)?, fields)?;
    Ok(encode_recordbatch(fields.clone(), batch))
}

/// The pgwire response for a statement's output; `zone` is the session time
/// zone `timestamptz` text is shown in.
pub fn response(output: Output, format: &Format, zone: Tz) -> Result<Response> {
    Ok(match output {
        Output::Rows {
            schema,
            stream,
            command,
        } => {
            let fields = Arc::new(fields(&schema, format)?);
            let encode_with = fields.clone();
            let rows = stream
                .map(
                    move |batch| -> Box<dyn Iterator<Item = PgWireResult<_>> + Send> {
                        match batch
                            .map_err(classify)
                            .and_then(|b| data_rows(b, &encode_with, &zone))
                        {
                            Ok(rows) => rows,
                            Err(e) => Box::new(std::iter::once(Err(to_pgwire(&e)))),
                        }
                    },
                )
                .flat_map(stream::iter);
            let mut response = QueryResponse::new(fields, rows);
            response.set_command_tag(command);
            Response::Query(response)
        }
        Output::Command(tag) => Response::Execution(Tag::new(&tag)),
        Output::TxnStart(tag) => Response::TransactionStart(Tag::new(&tag)),
        Output::TxnEnd(tag) => Response::TransactionEnd(Tag::new(&tag)),
        // Only the format and the columns are used (see `pg::copy`).
        Output::CopyIn { columns, binary } => Response::CopyIn(CopyResponse::new(
            i8::from(binary),
            columns,
            stream::empty(),
        )),
        Output::Deallocate(_) | Output::DiscardAll | Output::CopyOut { .. } => {
            return Err(Error::Internal(
                "DEALLOCATE, DISCARD and COPY TO are carried out by the connection".into(),
            ))
        }
    })
}
