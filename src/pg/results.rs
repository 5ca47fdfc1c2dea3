//! Statement outputs as pgwire responses: rows are encoded from Arrow by
//! arrow-pg in PostgreSQL's text or binary format.

use std::sync::Arc;

use arrow_pg::datatypes::encode_recordbatch;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use postgres_types::Kind;

use super::binary::binary_values;
use super::errors::to_pgwire;
use super::text::{pad_chars, to_pg_text};
use crate::catalog::SqlType;
use crate::error::{Error, Result};
use crate::sql::errors::classify;
use crate::sql::wire_types::pg_type;
use crate::sql::Output;

/// The RowDescription of a result.
pub fn fields(schema: &Schema, format: &Format) -> Result<Vec<FieldInfo>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let pg_type = match field.data_type() {
                DataType::List(_) => text_vector(pg_type(field)?, format.format_for(i)),
                _ => pg_type(field)?,
            };
            let type_size = type_size(&pg_type);
            // A char(n)'s n, as PostgreSQL's modifier (psycopg's
            // display_size); other modifiers are not known here.
            let modifier = SqlType::char_width(field).map_or(-1, |n| n as i32 + 4);
            Ok(FieldInfo::new(
                field.name().to_string(),
                None,
                None,
                pg_type,
                format.format_for(i),
            )
            .with_type_size(type_size)
            .with_type_modifier(modifier))
        })
        .collect()
}

/// An array (a List; also an `int2vector` or `oidvector`) sent as text is
/// written whole by `pg::text` (`{1,2}`, `1 2`): described with the same
/// oid as a type of no elements, so that pgwire does not quote it as it
/// quotes an array's elements.
fn text_vector(pg_type: Type, format: FieldFormat) -> Type {
    let array = matches!(pg_type.kind(), Kind::Array(_));
    match (array, format) {
        (true, FieldFormat::Text) => Type::new(
            pg_type.name().to_string(),
            pg_type.oid(),
            Kind::Simple,
            pg_type.schema().to_string(),
        ),
        _ => pg_type,
    }
}

/// PostgreSQL's `pg_type.typlen` of `pg_type`: the width of a fixed-size
/// type, -1 for the others (text, numeric, arrays, json, ...).
fn type_size(pg_type: &Type) -> i16 {
    match *pg_type {
        Type::BOOL | Type::CHAR => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE | Type::OID | Type::REGTYPE | Type::REGCLASS => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::TIMETZ => 12,
        Type::INTERVAL | Type::UUID => 16,
        _ => -1,
    }
}

/// The DataRows of a batch of a result of `schema` in each field's format
/// (`fields`), as PostgreSQL sends them: arrow-pg encodes them, after
/// `pad_chars` padded `char(n)` values, `to_pg_text` gave the text forms
/// PostgreSQL uses and `binary_values` the binary form of numerics, uuids
/// and times.
pub fn data_rows(
    batch: RecordBatch,
    schema: &Schema,
    fields: &Arc<Vec<FieldInfo>>,
    zone: &Tz,
) -> Result<Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send>> {
    let batch = pad_chars(batch, schema)?;
    let batch = binary_values(to_pg_text(batch, fields, zone)?, fields)?;
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
            let result_schema = schema.clone();
            let rows = stream
                .map(
                    move |batch| -> Box<dyn Iterator<Item = PgWireResult<_>> + Send> {
                        match batch
                            .map_err(classify)
                            .and_then(|b| data_rows(b, &result_schema, &encode_with, &zone))
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
