//! Classifying DataFusion's errors into the crate's [`Error`] kinds.
//!
//! DataFusion reports most user mistakes as plan or execution errors with a
//! message; the kind (undefined table, bad cast, division by zero...) is
//! recovered here from the error's type where it has one and from its
//! message where it does not. Our own errors raised inside DataFusion
//! (from the insert sink or a scan) travel as `External` and come back
//! unchanged.

use datafusion::arrow::error::ArrowError;
use datafusion::common::{DataFusionError, SchemaError};

use crate::error::{Error, InputError};

pub fn classify(error: DataFusionError) -> Error {
    classify_ref(error.find_root())
}

/// Our errors raised inside DataFusion (a function's bad argument) travel
/// as `External`, and [`classify`] gives them back unchanged.
impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

fn classify_ref(error: &DataFusionError) -> Error {
    match error {
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(ours) => ours.clone(),
            None => match inner.downcast_ref::<DataFusionError>() {
                Some(df) => classify_ref(df.find_root()),
                None => Error::Internal(inner.to_string()),
            },
        },
        DataFusionError::Shared(inner) => classify_ref(inner.find_root()),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify_ref(inner.find_root())
        }
        DataFusionError::SQL(e, _) => Error::input(InputError::Syntax, strip(&e.to_string())),
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            SchemaError::FieldNotFound { field, .. } => Error::input(
                InputError::UndefinedColumn,
                format!("column \"{}\" does not exist", field.name),
            ),
            SchemaError::AmbiguousReference { field } => Error::input(
                InputError::AmbiguousColumn,
                format!("column reference \"{}\" is ambiguous", field.name),
            ),
            other => Error::input(InputError::Other, other.to_string()),
        },
        DataFusionError::ArrowError(e, _) => classify_arrow(e),
        // A subquery or set-returning function in FROM that reads a column
        // of a table before it (LATERAL), which DataFusion plans but
        // cannot run.
        DataFusionError::NotImplemented(msg) if msg.contains("OuterReferenceColumn") => {
            Error::unsupported(
                "a subquery or function in FROM that refers to an earlier FROM item (LATERAL)",
            )
        }
        DataFusionError::NotImplemented(msg) if msg.contains("not supported") => {
            Error::input(InputError::Unsupported, msg.clone())
        }
        DataFusionError::NotImplemented(msg) => {
            Error::input(InputError::Unsupported, format!("{msg} is not supported"))
        }
        DataFusionError::Plan(msg) => classify_message(msg, InputError::Other),
        DataFusionError::Execution(msg) => classify_message(msg, InputError::Other),
        DataFusionError::ResourcesExhausted(msg) => Error::Unavailable(msg.clone()),
        DataFusionError::Internal(msg) => classify_message(msg, InputError::Other),
        other => Error::Internal(other.to_string()),
    }
}

fn classify_arrow(error: &ArrowError) -> Error {
    match error {
        ArrowError::DivideByZero => Error::input(InputError::DivisionByZero, "division by zero"),
        ArrowError::ArithmeticOverflow(msg) => Error::input(InputError::OutOfRange, msg),
        ArrowError::CastError(msg) | ArrowError::ParseError(msg) => {
            classify_message(msg, InputError::InvalidText)
        }
        ArrowError::InvalidArgumentError(msg) => {
            decimal_overflow(msg).unwrap_or_else(|| classify_message(msg, InputError::OutOfRange))
        }
        // An integer kernel that overflowed (`abs(-32768::int2)`): PostgreSQL's
        // `smallint out of range`.
        ArrowError::ComputeError(msg) if msg.contains("Array overflow") => {
            let type_name = match msg.split("Array overflow").next() {
                Some("Int16") => "smallint",
                Some("Int32") => "integer",
                Some("Int64") => "bigint",
                _ => return Error::input(InputError::OutOfRange, msg),
            };
            crate::sql::checked::out_of_range(type_name)
        }
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(df) => classify_ref(df.find_root()),
            None => Error::Internal(inner.to_string()),
        },
        other => Error::Internal(other.to_string()),
    }
}

/// Arrow's refusal of a decimal too large for its precision (`12345.50
/// is too large to store in a Decimal128 of precision 5. Max is 999.99`)
/// as PostgreSQL words it: `numeric field overflow`, with the precision
/// and scale in its detail.
fn decimal_overflow(msg: &str) -> Option<Error> {
    let (_, rest) = msg.split_once(" is too large to store in a Decimal")?;
    let (_, rest) = rest.split_once(" of precision ")?;
    let (precision, max) = rest.split_once(". Max is ")?;
    let scale = max
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    Some(crate::numeric::too_large_for(
        precision.parse().ok()?,
        scale as u32,
    ))
}

/// Arrow's refusal of a string cast to a number or boolean (`Cannot cast
/// string 'x' to value of Int32 type`) as PostgreSQL words it: `invalid
/// input syntax for type integer: "x"` (22P02), or for an integer too
/// large for the type `value "x" is out of range for type integer`
/// (22003).
fn bad_text_cast(msg: &str) -> Option<Error> {
    let rest = msg
        .strip_prefix("Cannot cast string '")
        .or_else(|| msg.strip_prefix("Cannot cast value '"))?;
    let (value, target) = rest.rsplit_once("' to value of ")?;
    let target = target.strip_suffix(" type")?;
    let (type_name, integer) = match target {
        "Int16" => ("smallint", true),
        "Int32" => ("integer", true),
        "Int64" => ("bigint", true),
        "Float32" => ("real", false),
        "Float64" => ("double precision", false),
        "Boolean" => ("boolean", false),
        t if t.starts_with("Decimal") => ("numeric", false),
        _ => return None,
    };
    let digits = value.trim().trim_start_matches(['+', '-']);
    if integer && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Error::input(
            InputError::OutOfRange,
            format!("value \"{value}\" is out of range for type {type_name}"),
        ));
    }
    Some(Error::input(
        InputError::InvalidText,
        format!("invalid input syntax for type {type_name}: \"{value}\""),
    ))
}

/// DataFusion's refusal of a `numeric(p, s)` it cannot make: PostgreSQL's
/// 22023 where PostgreSQL refuses it too (a precision outside 1 to 1000,
/// a scale outside -1000 to 1000), else 0A000 (ShardForge's decimals hold
/// 76 digits, and no scale above the precision).
fn bad_numeric_typmod(msg: &str) -> Option<Error> {
    let rest = msg.split("Decimal(precision = ").nth(1)?;
    let (precision, rest) = rest.split_once(", scale = ")?;
    let (scale, _) = rest.split_once(')')?;
    let (precision, scale): (i64, i64) =
        (precision.trim().parse().ok()?, scale.trim().parse().ok()?);
    Some(if !(1..=1000).contains(&precision) {
        Error::input(
            InputError::InvalidParameterValue,
            format!("NUMERIC precision {precision} must be between 1 and 1000"),
        )
    } else if !(-1000..=1000).contains(&scale) {
        Error::input(
            InputError::InvalidParameterValue,
            format!("NUMERIC scale {scale} must be between -1000 and 1000"),
        )
    } else {
        Error::unsupported(format!(
            "numeric({precision},{scale}): a numeric(p,s) holds up to 76 digits, and a scale up to its precision"
        ))
    })
}

/// Picks the kind from the words of a message DataFusion gives no type.
fn classify_message(msg: &str, fallback: InputError) -> Error {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("non-nullable") || lower.contains("non nullable") {
        let column = msg.split('\'').nth(1).unwrap_or("?");
        return Error::input(
            InputError::NotNullViolation,
            format!("null value in column \"{column}\" violates not-null constraint"),
        );
    }
    if lower.contains("union queries have different number of columns") {
        return Error::input(
            InputError::Syntax,
            "each UNION query must have the same number of columns",
        );
    }
    if lower.contains("must appear in the group by clause") {
        // DataFusion names the column as PostgreSQL does, then explains.
        let column = msg.split('"').nth(1).unwrap_or("?");
        return Error::input(
            InputError::GroupingError,
            format!(
                "column \"{column}\" must appear in the GROUP BY clause or be used in an aggregate function"
            ),
        );
    }
    if lower.contains("negative count not allowed") {
        // DataFusion's `substr` with a negative count.
        return Error::input(
            InputError::SubstringError,
            "negative substring length not allowed",
        );
    }
    if let Some(function) = undefined_function(msg) {
        return function;
    }
    if let Some(typmod) = bad_numeric_typmod(msg) {
        return typmod;
    }
    if let Some(cast) = bad_text_cast(msg) {
        return cast;
    }
    let kind = if lower.contains("inconsistent data length across values list")
        || lower.contains("query must have the same number of columns")
    {
        InputError::Syntax
    } else if lower.contains("divide by zero") || lower.contains("division by zero") {
        InputError::DivisionByZero
    } else if lower.contains("table")
        && (lower.contains("not found") || lower.contains("doesn't exist"))
    {
        InputError::UndefinedTable
    } else if lower.contains("no field named")
        || lower.contains("column") && lower.contains("not found")
    {
        InputError::UndefinedColumn
    } else if lower.contains("overflow")
        || lower.contains("out of range")
        || lower.contains("too large")
        || lower.contains("can't be cast")
        || lower.contains("can't cast value")
    {
        InputError::OutOfRange
    } else if lower.contains("cannot cast string")
        || lower.contains("invalid input syntax")
        || lower.contains("error parsing")
        || lower.contains("cannot parse")
    {
        InputError::InvalidText
    } else if lower.contains("scalar subquery returned more than one row") {
        return Error::input(
            InputError::CardinalityViolation,
            "more than one row returned by a subquery used as an expression",
        );
    } else if lower.contains("unsupported")
        || lower.contains("not supported")
        || lower.contains("correlated scalar subquery must be aggregated")
    {
        InputError::Unsupported
    } else {
        fallback
    };
    let text = strip(msg);
    match kind {
        InputError::DivisionByZero => Error::input(kind, "division by zero"),
        InputError::UndefinedTable => undefined_table(&text),
        _ => Error::input(kind, text),
    }
}

/// PostgreSQL's error for a missing relation, with its name if we can tell:
/// a name qualified by another database is 0A000, as in PostgreSQL.
fn undefined_table(msg: &str) -> Error {
    let Some(name) = msg.split('\'').nth(1) else {
        return Error::input(InputError::UndefinedTable, msg);
    };
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [database, _, _] if *database != crate::catalog::DATABASE => Error::input(
            InputError::Unsupported,
            format!("cross-database references are not implemented: {name}"),
        ),
        [.., table] => Error::input(
            InputError::UndefinedTable,
            format!("relation \"{table}\" does not exist"),
        ),
        [] => Error::input(InputError::UndefinedTable, msg),
    }
}

/// PostgreSQL's error for a call of a function that does not exist, or
/// not for the argument types given: DataFusion says "Invalid function
/// 'f'" (with a guess of what was meant) or "No function matches the given
/// name and argument types 'f(Utf8, Int64)'" after a list of candidates.
fn undefined_function(msg: &str) -> Option<Error> {
    let missing = |name: &str| {
        Error::input(
            InputError::UndefinedFunction,
            format!("function {name} does not exist"),
        )
    };
    if let Some(rest) = msg.split("Invalid function '").nth(1) {
        return rest.split('\'').next().map(missing);
    }
    let call = msg
        .split("No function matches the given name and argument types '")
        .nth(1)?;
    let call = call.split('\'').next()?;
    Some(missing(call))
}

/// Drops DataFusion's "Error during planning:"-style prefixes.
fn strip(msg: &str) -> String {
    let mut text = msg.trim();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "sql parser error: ",
        "SQL error: ParserError(\"",
        "Arrow error: ",
        "Cast error: ",
        "Invalid argument error: ",
        "Parser error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    text.trim_end_matches("\")").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_errors_come_back_unchanged() {
        let ours = Error::input(InputError::UniqueViolation, "dup");
        let wrapped = DataFusionError::Context(
            "ctx".into(),
            Box::new(DataFusionError::External(Box::new(ours))),
        );
        assert!(matches!(
            classify(wrapped),
            Error::Input(InputError::UniqueViolation, m) if m == "dup"
        ));
    }

    #[test]
    fn a_decimal_too_large_is_postgresql_field_overflow() {
        let e = classify(DataFusionError::ArrowError(
            Box::new(ArrowError::InvalidArgumentError(
                "12345678901.50 is too large to store in a Decimal128 of precision 12. \
                 Max is 9999999999.99"
                    .into(),
            )),
            None,
        ));
        assert_eq!(e.to_string(), "numeric field overflow");
        assert!(
            format!("{e:?}").contains(
                "A field with precision 12, scale 2 must round to an absolute value less than 10^10."
            ),
            "{e:?}"
        );
    }

    #[test]
    fn messages_pick_the_kind() {
        let e = classify(DataFusionError::Plan(
            "table 'postgres.public.nope' not found".into(),
        ));
        assert!(
            matches!(e, Error::Input(InputError::UndefinedTable, m) if m == "relation \"nope\" does not exist")
        );
        let e = classify(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
        assert!(matches!(e, Error::Input(InputError::DivisionByZero, _)));
        let e = classify(DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Cannot cast string '12x' to value of Int32 type".into(),
            )),
            None,
        ));
        assert!(
            matches!(e, Error::Input(InputError::InvalidText, m) if m == "invalid input syntax for type integer: \"12x\"")
        );
        let e = classify(DataFusionError::ArrowError(
            Box::new(ArrowError::CastError(
                "Cannot cast string '99999999999' to value of Int32 type".into(),
            )),
            None,
        ));
        assert!(
            matches!(e, Error::Input(InputError::OutOfRange, m) if m == "value \"99999999999\" is out of range for type integer")
        );
        let e = classify(DataFusionError::Execution(
            "Invalid batch column at '1' has null but schema specifies non-nullable".into(),
        ));
        assert!(matches!(e, Error::Input(InputError::NotNullViolation, _)));
    }
}
