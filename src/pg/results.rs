//! Statement outputs as pgwire responses: rows are encoded from Arrow by
//! arrow-pg in PostgreSQL's text or binary format.

use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

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
/// the text forms PostgreSQL uses, and a binary numeric zero gets back the
/// display scale arrow-pg's encoder drops (`0.00`, not `0`).
pub fn data_rows(
    batch: RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
    zone: &Tz,
) -> Result<Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send>> {
    let batch = to_pg_text(batch, fields, zone)?;
    let scales: Vec<Option<i16>> = fields
        .iter()
        .zip(batch.schema().fields())
        .map(|(info, field)| match field.data_type() {
            DataType::Decimal128(_, s) | DataType::Decimal256(_, s)
                if *s > 0 && info.format() == FieldFormat::Binary =>
            {
                Some(*s as i16)
            }
            _ => None,
        })
        .collect();
    let rows = encode_recordbatch(fields.clone(), batch);
    if scales.iter().all(Option::is_none) {
        return Ok(rows);
    }
    Ok(Box::new(rows.map(move |row| {
        row.map(|mut row| {
            zero_scales(&mut row, &scales);
            row
        })
    })))
}

/// Sets the display scale of each binary numeric zero in `row` (a zero has
/// no digits: its 8 bytes are ndigits, weight, sign and dscale).
fn zero_scales(row: &mut DataRow, scales: &[Option<i16>]) {
    let data = &mut row.data;
    let mut at = 0;
    for scale in scales {
        let Some(len) = data.get(at..at + 4) else {
            return;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if let (Some(scale), 8) = (scale, len) {
            if data[at..at + 2] == [0, 0] {
                data[at + 6..at + 8].copy_from_slice(&scale.to_be_bytes());
            }
        }
        at += len.max(0) as usize;
    }
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
