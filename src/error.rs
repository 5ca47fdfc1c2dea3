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
    /// A subquery used as a value returned more than one row.
    CardinalityViolation,
    /// A statement other than ROLLBACK inside a transaction that already failed.
    InFailedTransaction,
    /// A statement that is valid SQL but not supported by ShardForge yet.
    Unsupported,
    /// A transaction-control statement in the wrong state (e.g. ROLLBACK outside a block).
    InvalidTransactionState,
    /// Anything else the planner rejected.
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The statement or its data is wrong; retrying it unchanged fails again.
    #[error("{1}")]
    Input(InputError, String),
    /// A concurrent transaction won a conflict; the client should retry the
    /// whole transaction.
    #[error("{0}")]
    Retry(String),
    /// A resource the request needs is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// Another node of the cluster the request needs cannot be reached.
    #[error("{0}")]
    NodeUnreachable(String),
    /// Stored data could not be decoded: a bug or disk corruption.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A bug or an unexpected failure of a dependency.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(kind: InputError, message: impl fmt::Display) -> Self {
        Error::Input(kind, message.to_string())
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
            Error::Input(InputError::Other, m) => tonic::Status::failed_precondition(m),
            Error::Input(_, m) => tonic::Status::invalid_argument(m),
            Error::Retry(m) => tonic::Status::aborted(m),
            Error::Unavailable(m) | Error::NodeUnreachable(m) => tonic::Status::unavailable(m),
            other => tonic::Status::internal(other.to_string()),
        }
    }
}
