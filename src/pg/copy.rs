//! COPY on the wire: CopyInResponse and the CopyData, CopyDone and CopyFail
//! of a COPY FROM handed to the session, and the rows of a COPY TO sent in
//! the COPY format asked for.
//!
//! A COPY TO's values are the ones a SELECT would send (the same text and
//! binary encoders): a text or CSV line is the DataRow's text fields,
//! escaped or quoted; a binary tuple is the DataRow's body itself, which
//! has the PGCOPY tuple layout (a field count, then each field's length
//! and bytes).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::Format as ResultFormat;
use pgwire::api::results::{FieldInfo, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::DataRow;
use pgwire::messages::PgWireBackendMessage;

use super::errors::to_pgwire;
use super::handler::Connection;
use super::results::{data_rows, fields};
use crate::sql::copy::format::{self, Format, Layout, BINARY_SIGNATURE};
use crate::sql::errors::classify;
use crate::sql::Output;

/// Sends CopyInResponse: the client sends its data next.
pub async fn send_copy_in<C>(client: &mut C, columns: usize, binary: bool) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let format = i8::from(binary);
    let response = CopyInResponse::new(format, columns as i16, vec![format as i16; columns]);
    client
        .send(PgWireBackendMessage::CopyInResponse(response))
        .await?;
    Ok(())
}

/// Sends the rows of a COPY TO (an [`Output::CopyOut`]) from
/// CopyOutResponse to CopyDone, one CopyData per row as the rows come;
/// returns the tag `COPY n` to complete it with.
pub async fn send_copy_out<C>(client: &mut C, output: Output, zone: Tz) -> PgWireResult<Tag>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let Output::CopyOut {
        schema,
        stream,
        layout,
        force_quote,
    } = output
    else {
        return Err(PgWireError::ApiError("not a COPY TO".into()));
    };
    let binary = layout.format == Format::Binary;
    let columns = schema.fields().len();
    let code = layout.format.code();
    let response = CopyOutResponse::new(code, columns as i16, vec![code as i16; columns]);
    client
        .feed(PgWireBackendMessage::CopyOutResponse(response))
        .await?;
    let mut lines = Lines {
        layout,
        force_quote,
        line: Vec::new(),
        prefix: Vec::new(),
    };
    if binary {
        // The header goes out with the first tuple (or the trailer), as
        // PostgreSQL sends it: psycopg reads it so.
        lines.prefix.extend_from_slice(BINARY_SIGNATURE);
        lines.prefix.extend_from_slice(&[0; 8]);
    } else if lines.layout.header {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let header = lines.header(&names);
        feed(client, header).await?;
    }
    let rows = send_rows(client, schema, stream, &mut lines, zone).await?;
    if binary {
        let trailer = lines.tuple_bytes(&[0xff, 0xff]);
        feed(client, trailer).await?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(Tag::new("COPY").with_rows(rows))
}

async fn send_rows<C>(
    client: &mut C,
    schema: SchemaRef,
    mut stream: SendableRecordBatchStream,
    lines: &mut Lines,
    zone: Tz,
) -> PgWireResult<usize>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let result_format = match lines.layout.format {
        Format::Binary => ResultFormat::UnifiedBinary,
        Format::Text | Format::Csv => ResultFormat::UnifiedText,
    };
    let fields: Arc<Vec<FieldInfo>> =
        Arc::new(fields(&schema, &result_format).map_err(|e| to_pgwire(&e))?);
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let encoded = batch
            .map_err(classify)
            .and_then(|b| data_rows(b, &schema, &fields, &zone))
            .map_err(|e| to_pgwire(&e))?;
        for row in encoded {
            let data = match lines.layout.format {
                Format::Binary => lines.tuple(row?),
                Format::Text | Format::Csv => lines.row(row?),
            };
            feed(client, data).await?;
            rows += 1;
        }
    }
    Ok(rows)
}

async fn feed<C>(client: &mut C, data: Bytes) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .feed(PgWireBackendMessage::CopyData(CopyData::new(data)))
        .await?;
    Ok(())
}

/// Writes the rows of a COPY TO in its format.
struct Lines {
    layout: Layout,
    force_quote: Vec<bool>,
    line: Vec<u8>,
    /// What goes out before the next binary tuple: the file header.
    prefix: Vec<u8>,
}

impl Lines {
    /// A binary COPY tuple: the DataRow's field count and fields.
    fn tuple(&mut self, row: DataRow) -> Bytes {
        let mut data = BytesMut::with_capacity(2 + row.data.len());
        data.put_i16(row.field_count);
        data.extend_from_slice(&row.data);
        self.tuple_bytes(&data)
    }

    fn tuple_bytes(&mut self, tuple: &[u8]) -> Bytes {
        let mut data = std::mem::take(&mut self.prefix);
        data.extend_from_slice(tuple);
        data.into()
    }

    /// The HEADER line: the column names (FORCE_QUOTE is for values).
    fn header(&mut self, names: &[&str]) -> Bytes {
        let force_quote = std::mem::take(&mut self.force_quote);
        let line = self.line(names.iter().map(|n| Some(n.as_bytes())));
        self.force_quote = force_quote;
        line
    }

    /// The line of a DataRow whose fields are in text format.
    fn row(&mut self, row: DataRow) -> Bytes {
        let mut data = row.data.freeze();
        let values = (0..row.field_count).map(move |_| {
            let len = data.get_i32();
            (len >= 0).then(|| data.split_to(len as usize))
        });
        let values: Vec<Option<Bytes>> = values.collect();
        self.line(values.iter().map(Option::as_deref))
    }

    fn line<'v>(&mut self, values: impl Iterator<Item = Option<&'v [u8]>>) -> Bytes {
        self.line.clear();
        for (i, value) in values.enumerate() {
            if i > 0 {
                self.line.push(self.layout.delimiter);
            }
            match self.layout.format {
                Format::Csv => {
                    let force = self.force_quote.get(i).copied().unwrap_or(false);
                    format::write_csv(&mut self.line, value, &self.layout, force)
                }
                _ => format::write_text(&mut self.line, value, &self.layout),
            }
        }
        self.line.push(b'\n');
        Bytes::copy_from_slice(&self.line)
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session().lock().await;
        session
            .copy_data(&data.data)
            .await
            .map_err(|e| to_pgwire(&e))
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let done = self.session().lock().await.copy_done().await;
        // pgwire's ReadyForQuery after it reports this status.
        client.set_transaction_status(self.status().await);
        match done.map_err(|e| to_pgwire(&e))? {
            Output::Command(tag) => {
                client
                    .send(PgWireBackendMessage::CommandComplete(
                        pgwire::messages::response::CommandComplete::new(tag),
                    ))
                    .await?;
                Ok(())
            }
            _ => Err(PgWireError::ApiError("COPY ended without its tag".into())),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let error = self.session().lock().await.copy_fail(&fail.message);
        client.set_transaction_status(self.status().await);
        to_pgwire(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_data_row_becomes_an_escaped_line() {
        let mut data = BytesMut::new();
        data.put_i32(3);
        data.put_slice(b"a\tb");
        data.put_i32(-1);
        let row = DataRow::new(data, 2);
        let mut lines = Lines {
            layout: Layout {
                format: Format::Text,
                delimiter: b'\t',
                null: "\\N".into(),
                header: false,
                quote: b'"',
                escape: b'"',
            },
            force_quote: vec![],
            line: Vec::new(),
            prefix: Vec::new(),
        };
        assert_eq!(&lines.row(row)[..], b"a\\tb\t\\N\n");
    }
}
