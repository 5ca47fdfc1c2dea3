//! Bind parameters: what the client sent (text or binary, typed by the
//! client in Parse or left for the planner to infer) decoded into
//! DataFusion values of the types the statement was planned with.
//!
//! arrow-pg decodes most types. Numerics, dates, timestamps and uuids are
//! decoded here, by the input functions COPY reads them with
//! ([`crate::sql::copy::ColumnInput`]): arrow-pg reads a numeric through
//! rust_decimal, which holds 28 digits and silently rescales a value that
//! does not fit (`-12345678901234567890.0123456789` became a tenth of
//! itself), and it turns a timestamp outside 1677..2262 into NULL when the
//! planned type counts nanoseconds. Infinite dates and timestamps are
//! refused (0A000): ShardForge cannot store them. Arrays are decoded here
//! too, element by element ([`array_type`]).

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, FieldRef, IntervalUnit, TimeUnit};
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::portal::Portal;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::Type;
use postgres_types::Kind;

use super::handler::Prepared;
use crate::catalog::SqlType;
use crate::error::{Error, InputError, Result};
use crate::numeric::Numeric;
use crate::sql::copy::{utf8, ColumnInput};
use crate::sql::errors::classify;
use crate::sql::json::Flavor;
use crate::sql::time_zones::local_to_utc;
use crate::sql::wire_types::UUID;

/// The Arrow type arrow-pg decodes a parameter of PostgreSQL type `pg`
/// into, for the types ShardForge stores; None for the others, which are
/// then typed from context as if undeclared.
pub fn arrow_type(pg: &Type) -> Option<DataType> {
    Some(match pg.clone() {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => SqlType::UnconstrainedNumeric.to_arrow(),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::UUID => UUID,
        Type::JSON | Type::JSONB => DataType::Utf8,
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => return None,
    })
}

/// Decodes the portal's parameters and casts them to the inferred types;
/// `zone` is the session time zone, in which a `timestamptz` written
/// without an offset is read.
pub fn bind_parameters(
    portal: &Portal<Prepared>,
    inferred: &[Option<FieldRef>],
    zone: &Tz,
) -> Result<ParamValues> {
    let fields = inferred;
    let inferred: Vec<Option<DataType>> = fields
        .iter()
        .map(|f| f.as_ref().map(|f| f.data_type().clone()))
        .collect();
    let declared = &portal.statement.parameter_types;
    let ours: Vec<Option<SqlType>> = (0..portal.parameters.len())
        .map(|i| {
            let field = fields.get(i).and_then(Option::as_ref);
            let (declared, inferred) = (
                declared.get(i).and_then(Option::as_ref),
                inferred.get(i).and_then(Option::as_ref),
            );
            json_type(field)
                .or_else(|| own_type(declared, inferred))
                .or_else(|| array_type(declared, inferred))
        })
        .collect();
    // arrow-pg converts a number the client sent as an integer or a float
    // to the inferred type itself, and knows no numeric: such a value is
    // decoded as sent and cast below (an ORM's `0` for a numeric(10,2)
    // column is 0.00, as in PostgreSQL).
    let hints: Vec<Option<&DataType>> = inferred
        .iter()
        .enumerate()
        .map(|(i, inferred)| {
            let sent_as_number = matches!(
                declared.get(i).cloned().flatten(),
                Some(Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8)
            );
            let numeric = matches!(
                inferred,
                Some(DataType::Decimal128(..) | DataType::Decimal256(..))
            );
            inferred.as_ref().filter(|_| !(sent_as_number && numeric))
        })
        .collect();
    // A numeric the client declared, or one cast to `numeric` without
    // precision and scale, keeps its own digits (`own_scale_numeric`).
    let own_scale: Vec<Option<ScalarValue>> = (0..portal.parameters.len())
        .map(|i| {
            let declared = declared.get(i).and_then(Option::as_ref);
            let field = fields.get(i).and_then(Option::as_ref);
            own_scale_numeric(portal, i, declared, field)
        })
        .collect::<Result<_>>()?;
    let ours: Vec<Option<SqlType>> = ours
        .into_iter()
        .zip(&own_scale)
        .map(|(ours, own)| match own {
            Some(_) => Some(SqlType::UnconstrainedNumeric),
            None => ours,
        })
        .collect();
    let for_arrow_pg = arrow_pg_portal(portal, &ours);
    let values = arrow_pg::datatypes::df::deserialize_parameters(
        for_arrow_pg.as_ref().unwrap_or(portal),
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
            if let Some(own) = &own_scale[i] {
                return Ok(own.clone().into());
            }
            let value = match &ours[i] {
                Some(sql_type) => decode(portal, i, sql_type, zone)?.into(),
                None => value,
            };
            let declared = declared
                .get(i)
                .cloned()
                .flatten()
                .as_ref()
                .and_then(arrow_type);
            let Some(target) = crate::sql::literals::parameter_type(
                declared.as_ref(),
                inferred.get(i).and_then(Option::as_ref),
            ) else {
                return Ok(value);
            };
            let target = &target;
            let value: ScalarAndMetadata = wall_clock_in(zone, value.value, target).into();
            if value.value.data_type() == *target {
                return Ok(value);
            }
            let cast = value.value.cast_to(target).map_err(|e| {
                // A number too large for its numeric is 22003, as in
                // PostgreSQL; text that does not parse is 22P02.
                let message = format!("invalid input for parameter ${}: {e}", i + 1);
                let kind = match classify(e) {
                    Error::Input(InputError::OutOfRange, _) => InputError::OutOfRange,
                    _ => InputError::InvalidText,
                };
                Error::input(kind, message)
            })?;
            Ok(cast.into())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ParamValues::List(cast))
}

/// A `timestamp` bound where a `timestamptz` is wanted, as a wall-clock
/// time in the session's `zone`, and a `timestamptz` bound where a
/// `timestamp` is wanted, as the wall-clock time there: PostgreSQL's
/// casts. (Arrow's cast reads a timestamp in the target type's zone, UTC
/// for a column: psycopg's naive `datetime` into a `timestamptz` column
/// under `SET TimeZone = 'America/New_York'` was stored five hours early.)
fn wall_clock_in(zone: &Tz, value: ScalarValue, target: &DataType) -> ScalarValue {
    let (DataType::Timestamp(_, from), DataType::Timestamp(_, to)) = (value.data_type(), target)
    else {
        return value;
    };
    if from.is_some() == to.is_some() {
        return value;
    }
    let micros = match value.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None)) {
        Ok(ScalarValue::TimestampMicrosecond(Some(micros), None)) => micros,
        _ => return value,
    };
    let Some(instant) = chrono::DateTime::from_timestamp_micros(micros) else {
        return value;
    };
    match (value.data_type(), target) {
        (DataType::Timestamp(_, None), DataType::Timestamp(_, Some(_))) => {
            let utc = local_to_utc(zone, &instant.naive_utc()).and_utc();
            ScalarValue::TimestampMicrosecond(Some(utc.timestamp_micros()), Some("UTC".into()))
        }
        (DataType::Timestamp(_, Some(_)), DataType::Timestamp(_, None)) => {
            let local = instant.with_timezone(zone).naive_local().and_utc();
            ScalarValue::TimestampMicrosecond(Some(local.timestamp_micros()), None)
        }
        _ => value,
    }
}

/// Parameter `i` as a `numeric` of its own scale, when it is a numeric the
/// client declared (psycopg's `Decimal`: `$1 * 2` is planned with an
/// integer `$1`, and PostgreSQL multiplies the numeric) or one cast to
/// `numeric` without precision and scale (node-pg's `$1::numeric`): its
/// value exactly, not cut to a scale the plan guessed. The plan's types
/// are coerced to it once it is bound. None for a NULL.
fn own_scale_numeric(
    portal: &Portal<Prepared>,
    i: usize,
    declared: Option<&Type>,
    field: Option<&FieldRef>,
) -> Result<Option<ScalarValue>> {
    let undeclared = declared.is_none_or(|t| *t == Type::UNKNOWN);
    let unconstrained = field.is_some_and(|f| crate::sql::numeric::is_numeric(f.data_type()));
    if declared != Some(&Type::NUMERIC) && !(undeclared && unconstrained) {
        return Ok(None);
    }
    let Some(bytes) = portal.parameters.get(i).cloned().flatten() else {
        return Ok(None);
    };
    let value = match portal.parameter_format.is_binary(i) {
        true => Numeric::from_pg_binary(&bytes)?,
        false => Numeric::parse(utf8(&bytes)?)?,
    };
    Ok(Some(ScalarValue::LargeBinary(Some(value.to_sortable()))))
}

/// A parameter whose planned field is `json` or `jsonb` (compared with or
/// stored in such a column, or cast to one): decoded here, as the client
/// was told it is (jsonb in binary has a version byte).
fn json_type(field: Option<&FieldRef>) -> Option<SqlType> {
    match Flavor::of(field?)? {
        Flavor::Json => Some(SqlType::Json),
        Flavor::Jsonb => Some(SqlType::Jsonb),
    }
}

/// The type a parameter is decoded as here rather than by arrow-pg: the
/// type the client declared, or, when it declared none, the one the
/// planner inferred (the client then sends it in that type's format, as
/// ParameterDescription told it). A numeric declared by the client but
/// planned as an integer or a float is left to arrow-pg, which converts.
fn own_type(declared: Option<&Type>, inferred: Option<&DataType>) -> Option<SqlType> {
    let planned = || match inferred? {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => Some(SqlType::Numeric {
            precision: *p,
            scale: *s,
        }),
        DataType::Date32 => Some(SqlType::Date),
        DataType::Time64(_) => Some(SqlType::Time(None)),
        DataType::Timestamp(_, None) => Some(SqlType::Timestamp(None)),
        DataType::Timestamp(_, Some(_)) => Some(SqlType::TimestampTz(None)),
        t if *t == UUID => Some(SqlType::Uuid),
        DataType::Interval(_) => Some(SqlType::Interval),
        DataType::LargeBinary => Some(SqlType::UnconstrainedNumeric),
        _ => None,
    };
    match declared {
        None => planned(),
        Some(t) if *t == Type::UNKNOWN => planned(),
        Some(t) if *t == Type::NUMERIC => match (planned(), inferred) {
            (Some(numeric @ (SqlType::Numeric { .. } | SqlType::UnconstrainedNumeric)), _) => {
                Some(numeric)
            }
            (_, None) => Some(SqlType::UnconstrainedNumeric),
            _ => None,
        },
        Some(t) if *t == Type::DATE => Some(SqlType::Date),
        Some(t) if *t == Type::TIME => Some(SqlType::Time(None)),
        Some(t) if *t == Type::TIMESTAMP => Some(SqlType::Timestamp(None)),
        Some(t) if *t == Type::TIMESTAMPTZ => Some(SqlType::TimestampTz(None)),
        Some(t) if *t == Type::UUID => Some(SqlType::Uuid),
        Some(t) if *t == Type::JSON => Some(SqlType::Json),
        Some(t) if *t == Type::JSONB => Some(SqlType::Jsonb),
        Some(t) if *t == Type::INTERVAL => Some(SqlType::Interval),
        Some(_) => None,
    }
}

/// The array type a parameter is decoded as here (arrow-pg read an empty
/// string element of a text array as NULL, and knows no arrays of dates
/// or timestamps): the declared type, whose elements the client sent, or
/// the inferred one when it declared none. A declared `numeric[]` takes
/// the inferred element's precision and scale; an `oid[]` is arrow-pg's.
fn array_type(declared: Option<&Type>, inferred: Option<&DataType>) -> Option<SqlType> {
    let inferred = inferred
        .and_then(SqlType::from_arrow)
        .filter(|t| matches!(t, SqlType::Array(_)));
    let declared = declared.filter(|t| **t != Type::UNKNOWN);
    let Some(declared) = declared else {
        return inferred;
    };
    let Kind::Array(element) = declared.kind() else {
        return None;
    };
    let numeric_inferred = matches!(
        &inferred,
        Some(SqlType::Array(e)) if matches!(**e, SqlType::Numeric { .. })
    );
    match *declared {
        Type::OID_ARRAY => None,
        Type::NUMERIC_ARRAY if numeric_inferred => inferred,
        _ => SqlType::array_of(SqlType::from_arrow(&arrow_type(element)?)?),
    }
}

/// Parameter `i` read as `sql_type`, from its text or binary form.
fn decode(
    portal: &Portal<Prepared>,
    i: usize,
    sql_type: &SqlType,
    zone: &Tz,
) -> Result<ScalarValue> {
    let mut input = ColumnInput::new(sql_type, *zone)?;
    let bytes = portal.parameters.get(i).cloned().flatten();
    match portal.parameter_format.is_binary(i) {
        true => input.push_binary(bytes.as_deref())?,
        false => input.push_text(bytes.as_deref().map(utf8).transpose()?)?,
    }
    ScalarValue::try_from_array(&input.finish(), 0).map_err(classify)
}

/// The portal as arrow-pg is given it, when it needs changing: the
/// parameters decoded here are NULL `text` in it (arrow-pg would refuse a
/// `uuid` even as NULL), and the types it does not know but that are sent
/// exactly like another it knows are declared as that one: `bpchar` and
/// `name` as `text`, `oid[]` as `int4[]` (arrow-pg drops a NULL of a type
/// it does not know, which shifts every later parameter).
fn arrow_pg_portal(
    portal: &Portal<Prepared>,
    ours: &[Option<SqlType>],
) -> Option<Portal<Prepared>> {
    let sent_like = |t: &Option<Type>| match t {
        Some(t) if *t == Type::BPCHAR || *t == Type::NAME => Some(Type::TEXT),
        Some(t) if *t == Type::OID_ARRAY => Some(Type::INT4_ARRAY),
        _ => None,
    };
    let declared = &portal.statement.parameter_types;
    if declared.iter().all(|t| sent_like(t).is_none()) && ours.iter().all(Option::is_none) {
        return None;
    }
    // One type per parameter (a client may declare fewer): a parameter
    // decoded here is a NULL `text` whatever was inferred for it (arrow-pg
    // refuses even a NULL of an array type it does not know).
    let types = ours
        .iter()
        .enumerate()
        .map(|(i, ours)| {
            let t = declared.get(i).cloned().flatten();
            match (sent_like(&t), ours.is_some()) {
                (_, true) => Some(Type::TEXT),
                (Some(like), false) => Some(like),
                (None, false) => t,
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
    normalized.parameters = portal
        .parameters
        .iter()
        .zip(ours)
        .map(|(value, ours)| match ours {
            Some(_) => None,
            None => value.clone(),
        })
        .collect();
    Some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_dates_and_timestamps_are_decoded_here() {
        let numeric_30_10 = DataType::Decimal128(30, 10);
        assert_eq!(
            own_type(None, Some(&numeric_30_10)),
            Some(SqlType::Numeric {
                precision: 30,
                scale: 10
            })
        );
        assert_eq!(
            own_type(Some(&Type::NUMERIC), Some(&numeric_30_10)),
            Some(SqlType::Numeric {
                precision: 30,
                scale: 10
            })
        );
        // A numeric sent where an integer is planned: arrow-pg converts it.
        assert_eq!(own_type(Some(&Type::NUMERIC), Some(&DataType::Int32)), None);
        // An integer sent where a numeric is planned: decoded as sent.
        assert_eq!(own_type(Some(&Type::INT8), Some(&numeric_30_10)), None);
        let nanos = DataType::Timestamp(TimeUnit::Nanosecond, None);
        assert_eq!(own_type(None, Some(&nanos)), Some(SqlType::Timestamp(None)));
        assert_eq!(
            own_type(Some(&Type::TIMESTAMPTZ), Some(&nanos)),
            Some(SqlType::TimestampTz(None))
        );
        assert_eq!(own_type(Some(&Type::TEXT), Some(&DataType::Date32)), None);
    }
}
