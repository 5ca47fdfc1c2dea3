//! The parts of Bind and Execute that ShardForge does itself rather than
//! leave to pgwire: the checks PostgreSQL makes before binding, and
//! sending a portal's rows to the socket as they come, at most as many as
//! Execute asked for.

use std::fmt::Debug;

use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Portal, PortalExecutionState};
use pgwire::api::query::send_execution_response;
use pgwire::api::results::{Response, Tag};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientPortalStore, DEFAULT_NAME};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Bind, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::PgWireBackendMessage;

use super::handler::Prepared;
use crate::error::{Error, InputError, Result};

/// What PostgreSQL checks of a Bind against its statement: one value per
/// parameter, and none, one or one per column of result formats (pgwire
/// indexes the formats by column, so a short list would panic later).
/// `statement` is None for an empty statement, which has neither.
pub fn check_bind(bind: &Bind, statement: Option<&StoredStatement<Prepared>>) -> Result<()> {
    let (params, columns) = statement.map_or((0, 0), |s| {
        let declared = s.parameter_types.len();
        let (inferred, columns) = s.statement.shape();
        (declared.max(inferred), columns)
    });
    let name = bind.statement_name.as_deref().unwrap_or("");
    if bind.parameters.len() != params {
        return Err(Error::input(
            InputError::ProtocolViolation,
            format!(
                "bind message supplies {} parameters, but prepared statement \"{name}\" requires {params}",
                bind.parameters.len()
            ),
        ));
    }
    let formats = bind.result_column_format_codes.len();
    if formats > 1 && formats != columns {
        return Err(Error::input(
            InputError::ProtocolViolation,
            format!("bind message has {formats} result formats but query has {columns} columns"),
        ));
    }
    Ok(())
}

/// Sends the answer of a statement that returns no rows. (The transaction
/// status after it is the session's: see `Connection::status`.)
pub async fn send_outcome<C>(client: &mut C, outcome: Response) -> PgWireResult<()>
where
    C: ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match outcome {
        Response::EmptyQuery => {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        Response::Execution(tag) | Response::TransactionStart(tag) => {
            send_execution_response(client, tag).await?;
        }
        Response::TransactionEnd(tag) => {
            send_execution_response(client, tag).await?;
            // The unnamed portal does not outlive its transaction.
            client.portal_store().rm_portal(DEFAULT_NAME);
        }
        Response::Error(error) => {
            client
                .send(PgWireBackendMessage::ErrorResponse((*error).into()))
                .await?;
        }
        Response::Query(_) | Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
            return Err(PgWireError::ApiError(
                "a statement answered with rows or COPY where none were expected".into(),
            ))
        }
    }
    Ok(())
}

/// Sends the next rows of a started portal: up to `max_rows` (all when it
/// is 0 or negative), then PortalSuspended if the limit was reached, or
/// CommandComplete once the rows ran out. Each row goes to the socket as it
/// is produced; the socket's writer flushes as its buffer fills, so memory
/// follows the rows in flight, not the limit the client wrote.
pub async fn send_rows<C>(
    client: &mut C,
    portal: &Portal<Prepared>,
    max_rows: i32,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let limit = usize::try_from(max_rows).ok().filter(|&n| n > 0);
    let state = portal.state();
    let mut state = state.lock().await;
    let PortalExecutionState::Suspended(result) = &mut *state else {
        // Already run to its end: nothing more, as PostgreSQL answers.
        let tag = Tag::new("SELECT").with_rows(0);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        return Ok(());
    };
    let mut sent = 0;
    let suspended = loop {
        if limit.is_some_and(|limit| sent >= limit) {
            break true;
        }
        match result.data_rows().next().await {
            Some(Ok(row)) => {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            Some(Err(e)) => {
                *state = PortalExecutionState::Finished;
                return Err(e);
            }
            None => break false,
        }
    };
    if suspended {
        client
            .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
            .await?;
    } else {
        let tag = Tag::new(result.command_tag()).with_rows(sent);
        *state = PortalExecutionState::Finished;
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
    }
    Ok(())
}
