//! The handlers of one client connection: startup, simple query and
//! extended query, all driving the connection's one [`Session`].
//!
//! pgwire asks the connection's handler set for each message; the set is
//! made per connection, so dropping it when the client goes away drops the
//! session and rolls back whatever transaction it had open.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use super::errors::{error_info, to_pgwire};
use super::results::{fields, response};
use crate::catalog::DATABASE;
use crate::error::{Error, InputError, Result};
use crate::sql::{Session, SqlEngine};

/// A statement prepared by Parse: the parsed statement (None for an empty
/// query) with its parameter types and result columns as planned.
#[derive(Clone, Default)]
pub struct Prepared {
    stmt: Option<Statement>,
    param_types: Vec<Option<DataType>>,
    result: Option<SchemaRef>,
}

/// Everything one connection uses; pgwire asks it for each handler.
pub struct ConnectionHandlers {
    handler: Arc<Connection>,
}

pub struct Connection {
    session: Arc<Mutex<Session>>,
    parser: Arc<StatementParser>,
}

pub struct StatementParser {
    session: Arc<Mutex<Session>>,
}

impl ConnectionHandlers {
    pub fn new(engine: Arc<SqlEngine>) -> Self {
        let session = Arc::new(Mutex::new(Session::new(engine)));
        let parser = Arc::new(StatementParser {
            session: session.clone(),
        });
        Self {
            handler: Arc::new(Connection { session, parser }),
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.handler.clone()
    }
}

/// The ParameterStatus values sent at startup, as PostgreSQL 15 sends them.
struct ServerParameters;

impl ServerParameterProvider for ServerParameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let application = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        let params = [
            ("server_version", crate::PG_SERVER_VERSION.to_string()),
            ("server_encoding", "UTF8".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO, MDY".into()),
            ("IntervalStyle", "postgres".into()),
            ("TimeZone", "UTC".into()),
            ("integer_datetimes", "on".into()),
            ("standard_conforming_strings", "on".into()),
            ("is_superuser", "on".into()),
            ("in_hot_standby", "off".into()),
            ("default_transaction_read_only", "off".into()),
            ("session_authorization", user),
            ("application_name", application),
        ];
        Some(
            params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        // Trust authentication: there is one database, and any user name is
        // accepted as the session user (roles come with authentication).
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let database = client.metadata().get("database").cloned().unwrap_or(user);
        if database != DATABASE {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "3D000".to_owned(),
                format!("database \"{database}\" does not exist"),
            ))));
        }
        finish_authentication(client, &ServerParameters).await?;
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let statements = match session.parse(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let responses = session
            .execute_all(&statements)
            .await
            .into_iter()
            .map(|output| {
                output
                    .and_then(|out| response(out, &Format::UnifiedText, session.time_zone()?))
                    .unwrap_or_else(|e| Response::Error(Box::new(error_info(&e))))
            })
            .collect();
        report_parameters(client, &mut session).await?;
        Ok(responses)
    }
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.session.lock().await;
        prepare(&session, sql).await.map_err(|e| to_pgwire(&e))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| {
                t.as_ref()
                    .and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok())
                    .unwrap_or(Type::TEXT)
            })
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.result {
            Some(schema) => {
                fields(schema, format.unwrap_or(&Format::UnifiedBinary)).map_err(|e| to_pgwire(&e))
            }
            None => Ok(vec![]),
        }
    }
}

/// Sends a ParameterStatus for each reported variable a statement changed,
/// as PostgreSQL does after `SET TimeZone` and the like.
async fn report_parameters<C>(client: &mut C, session: &mut Session) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in session.take_parameter_reports() {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    Ok(())
}

/// Parses and plans one statement for the extended protocol.
async fn prepare(session: &Session, sql: &str) -> Result<Option<Prepared>> {
    let mut statements = session.parse(sql)?;
    if statements.len() > 1 {
        return Err(Error::input(
            InputError::Syntax,
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    let Some(stmt) = statements.pop() else {
        return Ok(None);
    };
    let (param_types, result) = session.describe(&stmt).await?;
    Ok(Some(Prepared {
        stmt: Some(stmt),
        param_types,
        result,
    }))
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let Some(stmt) = &prepared.stmt else {
            return Ok(Response::EmptyQuery);
        };
        let params = bind_parameters(portal, &prepared.param_types).map_err(|e| to_pgwire(&e))?;
        let mut session = self.session.lock().await;
        let result = session
            .execute(stmt, Some(params))
            .await
            .and_then(|out| response(out, &portal.result_column_format, session.time_zone()?))
            .map_err(|e| to_pgwire(&e));
        report_parameters(client, &mut session).await?;
        result
    }
}

/// arrow-pg decodes parameters by the type the client declared, and drops a
/// NULL of a type it does not know, which shifts every later parameter. The
/// types it does not know but that are sent exactly like `text` (`bpchar`,
/// `name`) are declared as `text` here. `None` when nothing needs changing.
fn normalize_client_types(portal: &Portal<Prepared>) -> Option<Portal<Prepared>> {
    let like_text =
        |t: &Option<Type>| matches!(t, Some(t) if *t == Type::BPCHAR || *t == Type::NAME);
    let declared = &portal.statement.parameter_types;
    if !declared.iter().any(like_text) {
        return None;
    }
    let types = declared
        .iter()
        .map(|t| {
            if like_text(t) {
                Some(Type::TEXT)
            } else {
                t.clone()
            }
        })
        .collect();
    let mut normalized = Portal::default();
    normalized.statement = Arc::new(StoredStatement::new(
        portal.statement.id.clone(),
        portal.statement.statement.clone(),
        types,
    ));
    normalized.parameter_format = portal.parameter_format.clone();
    normalized.parameters = portal.parameters.clone();
    Some(normalized)
}

/// Decodes the portal's parameters (text or binary, typed by the client or
/// by what the planner inferred) and casts them to the inferred types.
fn bind_parameters(
    portal: &Portal<Prepared>,
    inferred: &[Option<DataType>],
) -> Result<ParamValues> {
    let hints: Vec<Option<&DataType>> = inferred.iter().map(Option::as_ref).collect();
    let normalized = normalize_client_types(portal);
    let values = arrow_pg::datatypes::df::deserialize_parameters(
        normalized.as_ref().unwrap_or(portal),
        &hints,
    )
    .map_err(|e| Error::input(InputError::InvalidText, format!("invalid parameter: {e}")))?;
    let ParamValues::List(values) = values else {
        return Ok(values);
    };
    let cast = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let Some(target) = inferred.get(i).and_then(Option::as_ref) else {
                return Ok(value);
            };
            if value.value.data_type() == *target {
                return Ok(value);
            }
            let cast = value.value.cast_to(target).map_err(|e| {
                Error::input(
                    InputError::InvalidText,
                    format!("invalid input for parameter ${}: {e}", i + 1),
                )
            })?;
            Ok(cast.into())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ParamValues::List(cast))
}
