//! The one table from ShardForge errors to PostgreSQL SQLSTATEs.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::{Error, ErrorFields, InputError};

/// The SQLSTATE a client sees for `error`.
pub fn sqlstate(error: &Error) -> &'static str {
    match error {
        Error::Input(kind, _) => match kind {
            InputError::Syntax => "42601",
            InputError::UndefinedTable => "42P01",
            InputError::UndefinedColumn => "42703",
            InputError::UndefinedDatabase => "3D000",
            InputError::UndefinedObject => "42704",
            InputError::DuplicateTable => "42P07",
            InputError::UniqueViolation => "23505",
            InputError::NotNullViolation => "23502",
            InputError::InvalidText => "22P02",
            InputError::OutOfRange => "22003",
            InputError::DivisionByZero => "22012",
            InputError::StringTooLong => "22001",
            InputError::DatatypeMismatch => "42804",
            InputError::InvalidParameterValue => "22023",
            InputError::NullValueNotAllowed => "22004",
            InputError::InvalidRegularExpression => "2201B",
            InputError::CardinalityViolation => "21000",
            InputError::InFailedTransaction => "25P02",
            InputError::Unsupported => "0A000",
            InputError::InvalidTransactionState => "25000",
            InputError::ProtocolViolation => "08P01",
            InputError::ProgramLimitExceeded => "54000",
            InputError::InvalidEncoding => "22021",
            InputError::UntranslatableCharacter => "22P05",
            InputError::SnapshotTooOld => "72000",
            InputError::UndefinedPreparedStatement => "26000",
            InputError::InvalidColumnReference => "42P10",
            InputError::AmbiguousColumn => "42702",
            InputError::InvalidSavepoint => "3B001",
            InputError::NoActiveTransaction => "25P01",
            InputError::BadCopyFormat => "22P04",
            InputError::InvalidDatetimeFormat => "22007",
            InputError::DatetimeFieldOverflow => "22008",
            InputError::InvalidBinaryRepresentation => "22P03",
            InputError::QueryCanceled => "57014",
            InputError::DuplicatePreparedStatement => "42P05",
            InputError::DuplicateCursor => "42P03",
            InputError::InvalidCursorName => "34000",
            InputError::ObjectNotInPrerequisiteState => "55000",
            InputError::UndefinedFunction => "42883",
            InputError::InvalidEscapeSequence => "22025",
            InputError::InvalidEscapeCharacter => "22019",
            InputError::InvalidArgumentForWidthBucket => "2201G",
            InputError::InvalidArgumentForPowerFunction => "2201F",
            InputError::InvalidArgumentForLogarithm => "2201E",
            InputError::GroupingError => "42803",
            InputError::ArraySubscriptError => "2202E",
            InputError::SubstringError => "22011",
            InputError::Other => "42000",
        },
        // A leader changed under the transaction: retrying it works.
        Error::Retry(_) | Error::NotLeader(_) => "40001",
        Error::Unavailable(_) => "58000",
        // connection_failure: the node a query needs is down.
        Error::NodeUnreachable(_) => "08006",
        // statement_completion_unknown.
        Error::OutcomeUnknown(_) => "40003",
        Error::Corrupt(_) => "XX001",
        Error::Internal(_) => "XX000",
    }
}

pub fn error_info(error: &Error) -> ErrorInfo {
    let mut info = ErrorInfo::new(
        "ERROR".to_owned(),
        sqlstate(error).to_owned(),
        error.to_string(),
    );
    if let Error::Input(_, message) = error {
        let (_, fields) = ErrorFields::split(message);
        info.detail = fields.detail;
        info.where_context = fields.context;
        info.schema = fields.schema;
        info.table = fields.table;
        info.column = fields.column;
        info.constraint = fields.constraint;
    }
    info
}

pub fn to_pgwire(error: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

/// `error` as a FATAL error: the client sees it, then the connection closes.
pub fn to_pgwire_fatal(error: &Error) -> PgWireError {
    let mut info = error_info(error);
    info.severity = "FATAL".to_owned();
    PgWireError::UserError(Box::new(info))
}
