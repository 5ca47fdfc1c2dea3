//! The crate-wide error type.
//!
//! Variants are grouped by what the caller must do about them, not by where
//! they came from: fix the statement (`Input`), retry the transaction
//! (`Retry`), wait for the cluster (`Unavailable`), or report a bug
//! (`Corrupt`, `Internal`). The PostgreSQL SQLSTATE of each error is chosen in
//! one table in `pg::errors`; nothing below the pg front end knows SQLSTATEs.

use std::fmt;

/// What exactly was wrong with the client's input. Each kind has one
/// PostgreSQL SQLSTATE (see `pg::errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    Syntax,
    UndefinedTable,
    UndefinedColumn,
    UndefinedDatabase,
    UndefinedObject,
    DuplicateTable,
    UniqueViolation,
    NotNullViolation,
    InvalidText,
    OutOfRange,
    DivisionByZero,
    StringTooLong,
    DatatypeMismatch,
    InvalidParameterValue,
    /// A NULL where a function cannot take one (`format('%I', NULL)`).
    NullValueNotAllowed,
    InvalidRegularExpression,
    /// A subquery used as a value returned more than one row.
    CardinalityViolation,
    /// A statement other than ROLLBACK inside a transaction that already failed.
    InFailedTransaction,
    /// A statement that is valid SQL but not supported by ShardForge yet.
    Unsupported,
    /// A transaction-control statement in the wrong state (e.g. ROLLBACK outside a block).
    InvalidTransactionState,
    /// A frontend message that breaks the wire protocol (08P01).
    ProtocolViolation,
    /// A size or count above one of ShardForge's documented limits (54000).
    ProgramLimitExceeded,
    /// Bytes that are not valid UTF-8 where text is expected (22021).
    InvalidEncoding,
    /// A character that text cannot hold, such as `\u0000` in `jsonb`
    /// (22P05).
    UntranslatableCharacter,
    /// A read at a snapshot whose row versions were garbage-collected
    /// (72000).
    SnapshotTooOld,
    /// A prepared statement name the session does not hold (26000).
    UndefinedPreparedStatement,
    /// An ON CONFLICT target that is no unique constraint (42P10).
    InvalidColumnReference,
    /// A bare column name that two tables in scope have (42702).
    AmbiguousColumn,
    /// A savepoint name the transaction has not set (3B001).
    InvalidSavepoint,
    /// A statement that needs a transaction block outside one (25P01).
    NoActiveTransaction,
    /// COPY data that breaks its format: a wrong column count, an
    /// unterminated quote, a bad binary header (22P04).
    BadCopyFormat,
    /// A date or time that does not parse (22007).
    InvalidDatetimeFormat,
    /// A date or time field out of its range, such as month 13 (22008).
    DatetimeFieldOverflow,
    /// Binary data of the wrong length for its type (22P03).
    InvalidBinaryRepresentation,
    /// The client or a timeout stopped the statement (57014).
    QueryCanceled,
    /// A prepared statement name already in use (42P05).
    DuplicatePreparedStatement,
    /// A cursor name already in use (42P03).
    DuplicateCursor,
    /// A cursor name not in use (34000).
    InvalidCursorName,
    /// An object that cannot do what was asked in its state, such as a
    /// forward-only cursor asked to go back (55000).
    ObjectNotInPrerequisiteState,
    /// A function that does not exist, or not for these argument types
    /// (42883).
    UndefinedFunction,
    /// A LIKE pattern ending in its escape character (22025).
    InvalidEscapeSequence,
    /// A LIKE escape of more than one character (22019).
    InvalidEscapeCharacter,
    /// `width_bucket` bounds or a count no bucket can be made of (2201G).
    InvalidArgumentForWidthBucket,
    /// A root or power of a negative number with no real answer, a
    /// logarithm of zero or less (2201F, 2201E).
    InvalidArgumentForPowerFunction,
    InvalidArgumentForLogarithm,
    /// A selected column neither grouped nor aggregated (42803).
    GroupingError,
    /// A byte or bit index outside its `bytea` (2202E).
    ArraySubscriptError,
    /// A substring of negative length (22011).
    SubstringError,
    /// Anything else the planner rejected.
    Other,
}

impl InputError {
    /// Every kind, for finding one again by its name.
    const ALL: [InputError; 49] = [
        Self::Syntax,
        Self::UndefinedTable,
        Self::UndefinedColumn,
        Self::UndefinedDatabase,
        Self::UndefinedObject,
        Self::DuplicateTable,
        Self::UniqueViolation,
        Self::NotNullViolation,
        Self::InvalidText,
        Self::OutOfRange,
        Self::DivisionByZero,
        Self::StringTooLong,
        Self::DatatypeMismatch,
        Self::InvalidParameterValue,
        Self::NullValueNotAllowed,
        Self::InvalidRegularExpression,
        Self::CardinalityViolation,
        Self::InFailedTransaction,
        Self::Unsupported,
        Self::InvalidTransactionState,
        Self::ProtocolViolation,
        Self::ProgramLimitExceeded,
        Self::InvalidEncoding,
        Self::UntranslatableCharacter,
        Self::SnapshotTooOld,
        Self::UndefinedPreparedStatement,
        Self::InvalidColumnReference,
        Self::AmbiguousColumn,
        Self::InvalidSavepoint,
        Self::NoActiveTransaction,
        Self::BadCopyFormat,
        Self::InvalidDatetimeFormat,
        Self::DatetimeFieldOverflow,
        Self::InvalidBinaryRepresentation,
        Self::QueryCanceled,
        Self::DuplicatePreparedStatement,
        Self::DuplicateCursor,
        Self::InvalidCursorName,
        Self::ObjectNotInPrerequisiteState,
        Self::UndefinedFunction,
        Self::InvalidEscapeSequence,
        Self::InvalidEscapeCharacter,
        Self::InvalidArgumentForWidthBucket,
        Self::InvalidArgumentForPowerFunction,
        Self::InvalidArgumentForLogarithm,
        Self::GroupingError,
        Self::ArraySubscriptError,
        Self::SubstringError,
        Self::Other,
    ];

    fn name(self) -> String {
        format!("{self:?}")
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The gRPC metadata key that carries an input error's kind to the node
/// that made the call, so its client gets the same SQLSTATE.
const INPUT_KIND_HEADER: &str = "shardforge-input-kind";

/// The gRPC metadata key that marks an answer from a replica that does not
/// lead its group (`Error::NotLeader`).
const NOT_LEADER_HEADER: &str = "shardforge-not-leader";

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The statement or its data is wrong; retrying it unchanged fails again.
    /// The message may carry [`ErrorFields`]; it displays without them.
    #[error("{}", ErrorFields::split(.1).0)]
    Input(InputError, String),
    /// A concurrent transaction won a conflict; the client should retry the
    /// whole transaction.
    #[error("{0}")]
    Retry(String),
    /// The replica asked does not lead its shard group (any more): the
    /// caller may ask the new leader, and a client retries the
    /// transaction.
    #[error("{0}")]
    NotLeader(String),
    /// A resource the request needs is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// Another node of the cluster the request needs cannot be reached.
    #[error("{0}")]
    NodeUnreachable(String),
    /// A commit was sent and its outcome cannot be known now (its group
    /// lost its majority while committing it): the client must check
    /// whether it took effect before retrying it.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// Stored data could not be decoded: a bug or disk corruption.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A bug or an unexpected failure of a dependency.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The fields of a PostgreSQL error beyond its message, for the errors
/// that have them: a constraint violation's DETAIL (`Key (id)=(1) already
/// exists.`), table, column and constraint; the CONTEXT of a bad COPY line.
/// Drivers and ORMs read them (node-pg's `err.constraint`, pgjdbc's
/// `ServerErrorMessage`). They travel inside an input error's message,
/// each after a NUL byte (which no PostgreSQL text contains), so they
/// cross RPCs with it; the error displays its message alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub detail: Option<String>,
    /// CONTEXT (PostgreSQL's `W` field).
    pub context: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

impl ErrorFields {
    /// The tags of the fields, PostgreSQL's ErrorResponse field codes.
    fn tagged(&self) -> [(char, &Option<String>); 6] {
        [
            ('D', &self.detail),
            ('W', &self.context),
            ('s', &self.schema),
            ('t', &self.table),
            ('c', &self.column),
            ('n', &self.constraint),
        ]
    }

    /// `message` carrying these fields.
    pub fn attach(&self, message: &str) -> String {
        let mut out = message.to_string();
        for (tag, value) in self.tagged() {
            if let Some(value) = value {
                out.push('\0');
                out.push(tag);
                out.push_str(&value.replace('\0', ""));
            }
        }
        out
    }

    /// A message's own text and the fields it carries.
    pub fn split(message: &str) -> (&str, ErrorFields) {
        let mut parts = message.split('\0');
        let text = parts.next().unwrap_or_default();
        let mut fields = ErrorFields::default();
        for part in parts {
            let mut chars = part.chars();
            let tag = chars.next();
            let value = Some(chars.as_str().to_string());
            match tag {
                Some('D') => fields.detail = value,
                Some('W') => fields.context = value,
                Some('s') => fields.schema = value,
                Some('t') => fields.table = value,
                Some('c') => fields.column = value,
                Some('n') => fields.constraint = value,
                _ => {}
            }
        }
        (text, fields)
    }
}

impl Error {
    pub fn input(kind: InputError, message: impl fmt::Display) -> Self {
        Error::Input(kind, message.to_string())
    }

    /// An input error with PostgreSQL's fields beyond the message.
    pub fn input_with(kind: InputError, message: impl fmt::Display, fields: &ErrorFields) -> Self {
        Error::Input(kind, fields.attach(&message.to_string()))
    }

    pub fn unsupported(what: impl fmt::Display) -> Self {
        Error::Input(
            InputError::Unsupported,
            format!("{what} is not supported by ShardForge yet"),
        )
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Unavailable(format!("storage: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Unavailable(format!("I/O: {e}"))
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("background task failed: {e}"))
    }
}

impl Error {
    /// A failed call to `peer` (a description of the node: "node 3", "node
    /// at 127.0.0.1:7433"), as an error that names it.
    pub fn from_rpc(peer: &str, status: tonic::Status) -> Self {
        let message = format!("{peer}: {}", status.message());
        let kind = status
            .metadata()
            .get(INPUT_KIND_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(InputError::from_name);
        if let Some(kind) = kind {
            // The peer's own words: they describe the user's statement.
            return Error::input(kind, status.message());
        }
        if status.metadata().contains_key(NOT_LEADER_HEADER) {
            return Error::NotLeader(message);
        }
        // A status tonic made here from a failed connection (the peer died
        // mid-stream: an h2 or I/O error) carries that error as its source;
        // one the peer answered with does not.
        if std::error::Error::source(&status).is_some() {
            return Error::NodeUnreachable(message);
        }
        match status.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::PermissionDenied
            | tonic::Code::FailedPrecondition => Error::input(InputError::Other, message),
            tonic::Code::Aborted => Error::Retry(status.message().to_string()),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                Error::NodeUnreachable(message)
            }
            _ => Error::Unavailable(message),
        }
    }
}

/// An error as the gRPC status a peer can tell apart (see
/// [`Error::from_rpc`] for the way back).
impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Input(kind, m) => {
                let mut status = match kind {
                    InputError::Other => tonic::Status::failed_precondition(m),
                    _ => tonic::Status::invalid_argument(m),
                };
                if let Ok(value) = kind.name().parse() {
                    status.metadata_mut().insert(INPUT_KIND_HEADER, value);
                }
                status
            }
            Error::Retry(m) => tonic::Status::aborted(m),
            Error::NotLeader(m) => {
                let mut status = tonic::Status::aborted(m);
                status.metadata_mut().insert(
                    NOT_LEADER_HEADER,
                    tonic::metadata::MetadataValue::from_static("1"),
                );
                status
            }
            Error::Unavailable(m) | Error::NodeUnreachable(m) => tonic::Status::unavailable(m),
            other => tonic::Status::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_error_keeps_its_kind_across_an_rpc() {
        for kind in InputError::ALL {
            let status = tonic::Status::from(Error::input(kind, "why"));
            match Error::from_rpc("node 1", status) {
                Error::Input(back, message) => assert_eq!((back, message.as_str()), (kind, "why")),
                other => panic!("{kind:?} came back as {other:?}"),
            }
        }
        // A status without the kind (another program's) is classified by
        // its code, naming the peer.
        let moved = Error::from_rpc("node 1", Error::NotLeader("gone".into()).into());
        assert!(matches!(moved, Error::NotLeader(m) if m == "node 1: gone"));
        let plain = Error::from_rpc("node 1", tonic::Status::invalid_argument("bad"));
        assert!(matches!(plain, Error::Input(InputError::Other, m) if m == "node 1: bad"));
    }
}
