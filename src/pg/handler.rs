//! The handlers of one client connection: startup, simple query and
//! extended query, all driving the connection's one [`Session`].
//!
//! [`super::connection`] hands each message to these handlers through
//! pgwire's dispatcher; a `Connection` is made per client, so dropping it
//! when the client goes away drops the session and rolls back whatever
//! transaction it had open.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, FieldRef, SchemaRef};

use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    send_describe_response, send_query_response, send_ready_for_query, ExtendedQueryHandler,
    SimpleQueryHandler,
};
use pgwire::api::results::{DescribePortalResponse, FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, Type, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{ParameterStatus, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use super::cancel::{Registration, Sessions};
use super::copy;
use super::errors::{error_info, to_pgwire};
use super::params::{arrow_type, bind_parameters};
use super::portal;
use super::results::{fields, response};
use crate::catalog::DATABASE;
use crate::error::{Error, InputError, Result};
use crate::sql::wire_types::pg_type;

use crate::sql::{Output, Session, SqlEngine, TxnState};

/// A statement prepared by Parse: the parsed statement (None for an empty
/// query) with its parameter types and result columns as planned.
#[derive(Clone, Default)]
pub struct Prepared {
    stmt: Option<Statement>,
    param_types: Vec<Option<FieldRef>>,
    result: Option<SchemaRef>,
}

impl Prepared {
    /// How many parameters the planner found, and how many columns the
    /// result has.
    pub fn shape(&self) -> (usize, usize) {
        let columns = self.result.as_ref().map_or(0, |r| r.fields().len());
        (self.param_types.len(), columns)
    }
}

/// The most named prepared statements, and the most named portals, one
/// session may hold at once. PostgreSQL's only bound is memory; this one
/// keeps a client that never closes what it prepares from taking the
/// node's (drivers cache a few hundred statements per connection).
const MAX_NAMED_STATEMENTS: usize = 10_000;
const MAX_NAMED_PORTALS: usize = 10_000;

/// One client connection's handlers (startup, simple and extended query),
/// all driving its one session.
pub struct Connection {
    session: Arc<Mutex<Session>>,
    parser: Arc<StatementParser>,
    /// The names of the named statements pgwire's store holds (for
    /// DEALLOCATE ALL), and how many named portals it holds.
    statement_names: std::sync::Mutex<HashSet<String>>,
    named_portals: AtomicUsize,
    /// The process id and key a CancelRequest names this session by.
    registration: Registration,
}

pub struct StatementParser {
    session: Arc<Mutex<Session>>,
}

impl Connection {
    pub fn new(engine: Arc<SqlEngine>, sessions: &Arc<Sessions>) -> Self {
        let session = Session::new(engine);
        let registration = sessions.register(&session.canceller());
        let session = Arc::new(Mutex::new(session));
        let parser = Arc::new(StatementParser {
            session: session.clone(),
        });
        Connection {
            session,
            parser,
            statement_names: Default::default(),
            named_portals: AtomicUsize::new(0),
            registration,
        }
    }
}

impl Connection {
    pub(super) fn session(&self) -> &Mutex<Session> {
        &self.session
    }

    /// The transaction status ReadyForQuery reports: the session's.
    pub(super) async fn status(&self) -> TransactionStatus {
        match self.session.lock().await.txn_state() {
            TxnState::Idle => TransactionStatus::Idle,
            TxnState::InBlock => TransactionStatus::Transaction,
            TxnState::Failed => TransactionStatus::Error,
        }
    }

    /// Carries out what an output asks of the connection rather than the
    /// session: DEALLOCATE and DISCARD ALL remove prepared statements from
    /// pgwire's store (statements prepared by Parse: one namespace, as in
    /// PostgreSQL).
    fn settle<S: PortalStore + ?Sized>(&self, store: &S, output: Output) -> Result<Output> {
        let (target, tag) = match output {
            Output::Deallocate(target) => (target, "DEALLOCATE ALL"),
            Output::DiscardAll => (None, "DISCARD ALL"),
            output => return Ok(output),
        };
        let mut names = self.statement_names.lock().unwrap();
        match target {
            None => {
                for name in names.drain() {
                    store.rm_statement(&name);
                }
                Ok(Output::Command(tag.into()))
            }
            Some(name) if names.remove(&name) => {
                store.rm_statement(&name);
                Ok(Output::Command("DEALLOCATE".into()))
            }
            Some(name) => Err(Error::input(
                InputError::UndefinedPreparedStatement,
                format!("prepared statement \"{name}\" does not exist"),
            )),
        }
    }

    /// The response to a statement's output. The rows of a COPY TO are
    /// sent from here (a COPY answers with its own messages, which end
    /// before the statement's CommandComplete).
    async fn respond<C>(
        &self,
        client: &mut C,
        output: Output,
        format: &Format,
        zone: Tz,
    ) -> PgWireResult<Response>
    where
        C: ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let output = self
            .settle(client.portal_store(), output)
            .map_err(|e| to_pgwire(&e))?;
        if matches!(output, Output::CopyOut { .. }) {
            let tag = copy::send_copy_out(client, output, zone).await?;
            return Ok(Response::Execution(tag));
        }
        response(output, format, zone).map_err(|e| to_pgwire(&e))
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
        self.session.lock().await.set_user(user.clone());
        let database = client.metadata().get("database").cloned().unwrap_or(user);
        if database != DATABASE {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "3D000".to_owned(),
                format!("database \"{database}\" does not exist"),
            ))));
        }
        let key = SecretKey::I32(self.registration.secret);
        client.set_pid_and_secret_key(self.registration.pid, key);
        finish_authentication(client, &ServerParameters).await?;
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// pgwire's simple query, with the ReadyForQuery status taken from the
    /// session (pgwire's own reckoning from the responses cannot take a
    /// failed block back to work, as ROLLBACK TO SAVEPOINT does).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let responses = SimpleQueryHandler::do_query(self, client, &query.query).await?;
        for response in responses {
            match response {
                Response::Query(rows) => send_query_response(client, rows, true).await?,
                // The client sends the data next; ReadyForQuery follows its end.
                Response::CopyIn(copy) => {
                    copy::send_copy_in(client, copy.columns, copy.format == 1).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    return Ok(());
                }
                other => portal::send_outcome(client, other).await?,
            }
        }
        let status = self.status().await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

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
        let mut responses = Vec::with_capacity(statements.len());
        for output in session.execute_all(&statements).await {
            let responded = match output.and_then(|out| Ok((out, session.time_zone()?))) {
                Ok((out, zone)) => self
                    .respond(client, out, &Format::UnifiedText, zone)
                    .await
                    .map_err(ErrorInfo::from),
                Err(e) => Err(error_info(&e)),
            };
            responses.push(responded.unwrap_or_else(|e| Response::Error(Box::new(e))));
        }
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
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.session.lock().await;
        prepare(&session, sql, types)
            .await
            .map_err(|e| to_pgwire(&e))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| {
                t.as_ref()
                    .and_then(|field| pg_type(field).ok())
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
                // Describe of a statement (no format yet): text, as
                // PostgreSQL reports it. pgjdbc reads the columns of a
                // statement it described in the format said here.
                fields(schema, format.unwrap_or(&Format::UnifiedText)).map_err(|e| to_pgwire(&e))
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

/// Parses and plans one statement for the extended protocol; `declared`
/// are the parameter types the client gave in Parse (None: unspecified).
async fn prepare(
    session: &Session,
    sql: &str,
    declared: &[Option<Type>],
) -> Result<Option<Prepared>> {
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
    let declared: Vec<Option<DataType>> = declared
        .iter()
        .map(|t| t.as_ref().and_then(arrow_type))
        .collect();
    let (param_types, result) = session.describe(&stmt, &declared).await?;
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

    /// pgwire's Parse, with a bound on how many named statements a session
    /// holds.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let stored = StoredStatement::parse(client, &message, self.query_parser()).await?;
        if message.name.is_some() {
            let mut names = self.statement_names.lock().unwrap();
            if !names.contains(name) {
                if names.len() >= MAX_NAMED_STATEMENTS {
                    return Err(too_many("prepared statements", MAX_NAMED_STATEMENTS));
                }
                names.insert(name.to_string());
            }
        }
        match stored {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// pgwire's Bind, checking first what PostgreSQL checks (the number
    /// of parameters and of result formats, which pgwire would later index
    /// by column and panic on) and bounding the named portals.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        let statement = match client.portal_store().get_statement(statement_name) {
            Some(entry) => entry,
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        };
        portal::check_bind(&message, statement.value().map(|s| s.as_ref()))
            .map_err(|e| to_pgwire(&e))?;
        if message.portal_name.is_some() && client.portal_store().get_portal(portal_name).is_none()
        {
            reserve(&self.named_portals, MAX_NAMED_PORTALS, "portals")?;
        }
        match statement {
            Entry::Value(statement) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Entry::Empty => client.portal_store().put_empty_portal(portal_name),
        }
        client
            .send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// Execute, streaming: at most `max_rows` rows (all when it is 0 or
    /// negative, as in PostgreSQL) go from the statement's row stream to
    /// the socket one at a time. pgwire's own Execute reserved room for
    /// `max_rows` rows before the first existed (2^31-1 of them aborted the
    /// process) and gathered a whole result before sending it.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(name.to_owned())),
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let fresh = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        let rows = if fresh {
            match ExtendedQueryHandler::do_query(self, client, &portal, 0).await? {
                Response::Query(rows) => {
                    portal.start(rows).await;
                    true
                }
                // The client sends the data next, then Sync.
                Response::CopyIn(copy) => {
                    copy::send_copy_in(client, copy.columns, copy.format == 1).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    return Ok(());
                }
                other => {
                    portal::send_outcome(client, other).await?;
                    false
                }
            }
        } else {
            true
        };
        if rows {
            portal::send_rows(client, &portal, message.max_rows).await?;
        }
        // The session's (see `on_query`).
        let status = self.status().await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        Ok(())
    }

    /// pgwire's Describe; a portal it does not hold may be a cursor
    /// DECLAREd in SQL, which is a portal of that name in PostgreSQL
    /// (psycopg describes its named cursors so), described in text format.
    /// A statement that returns no rows is described with NoData, as
    /// PostgreSQL does (pgwire sends an empty RowDescription when it has
    /// parameters, and pgjdbc's executeUpdate then fails: "a result was
    /// returned when none was expected").
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                if stmt.statement.result.is_none() {
                    let response = self.do_describe_statement(client, &stmt).await?;
                    let oids = response.parameters.iter().map(Type::oid).collect();
                    client
                        .feed(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(oids),
                        ))
                        .await?;
                    client
                        .send(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                    return Ok(());
                }
            }
        }
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && client.portal_store().get_portal(name).is_none()
        {
            let cursor = self.session.lock().await.cursor_schema(name);
            if let Some(schema) = cursor {
                let fields = fields(&schema, &Format::UnifiedText).map_err(|e| to_pgwire(&e))?;
                let response = DescribePortalResponse::new(fields);
                return send_describe_response(client, &response).await;
            }
        }
        self._on_describe(client, message).await
    }

    /// pgwire's Close, keeping the count of named statements and portals.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let store = client.portal_store();
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                self.statement_names.lock().unwrap().remove(name);
                store.rm_statement(name);
            }
            TARGET_TYPE_BYTE_PORTAL => {
                if message.name.is_some() && store.get_portal(name).is_some() {
                    self.named_portals.fetch_sub(1, Ordering::Relaxed);
                }
                store.rm_portal(name);
            }
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
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
        let mut session = self.session.lock().await;
        let params = session
            .time_zone()
            .and_then(|zone| bind_parameters(portal, &prepared.param_types, &zone))
            .map_err(|e| to_pgwire(&e))?;
        let output = session
            .execute(stmt, Some(params))
            .await
            .and_then(|out| Ok((out, session.time_zone()?)));
        let result = match output {
            Ok((out, zone)) => {
                self.respond(client, out, &portal.result_column_format, zone)
                    .await
            }
            Err(e) => Err(to_pgwire(&e)),
        };
        report_parameters(client, &mut session).await?;
        result
    }
}

/// Counts one more named statement or portal, or refuses it (54000) when
/// the session holds `max` already.
fn reserve(count: &AtomicUsize, max: usize, what: &str) -> PgWireResult<()> {
    if count.fetch_add(1, Ordering::Relaxed) >= max {
        count.fetch_sub(1, Ordering::Relaxed);
        return Err(too_many(what, max));
    }
    Ok(())
}

fn too_many(what: &str, max: usize) -> PgWireError {
    to_pgwire(&Error::input(
        InputError::ProgramLimitExceeded,
        format!("too many {what} in this session (the limit is {max}): close some first"),
    ))
}
