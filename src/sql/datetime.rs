//! Text cast to `date`, `timestamp` or `timestamptz`, read by PostgreSQL's
//! input rules (the input functions COPY reads with,
//! [`super::copy::ColumnInput`]) rather than by Arrow's cast, which reads
//! some forms differently: it applies an offset written after a
//! `timestamp` (`'10:00:00+02'::timestamp` was 08:00; PostgreSQL ignores
//! the offset) and refuses `10:00` without seconds. `infinity` is 0A000:
//! ShardForge cannot store it.

use std::str::FromStr;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::DFSchema;
use datafusion::logical_expr::{cast, Cast, Expr, ExprSchemable};

use super::analyze::array_udf;
use super::copy::ColumnInput;
use super::vars::UTC_OFFSET;
use crate::catalog::SqlType;

/// `CAST(text AS date | timestamp | timestamptz)` as a call of the input
/// function; `config` gives the session time zone a `timestamptz` without
/// an offset is read in.
pub fn text_to_datetime_cast(
    expr: &Expr,
    schema: &DFSchema,
    config: &ConfigOptions,
) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let target = field.data_type().clone();
    let sql_type = match &target {
        DataType::Date32 => SqlType::Date,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
        _ => return None,
    };
    if !matches!(
        inner.get_type(schema).ok()?,
        DataType::Utf8 | DataType::Utf8View
    ) {
        return None;
    }
    let zone = config
        .execution
        .time_zone
        .as_deref()
        .and_then(|z| Tz::from_str(z).ok())
        .or_else(|| Tz::from_str(UTC_OFFSET).ok())?;
    let read_type = match sql_type {
        SqlType::Date => DataType::Date32,
        _ => sql_type.to_arrow(),
    };
    let udf = array_udf(
        &format!("pg_{}_in", sql_type.pg_name()),
        vec![DataType::Utf8],
        read_type.clone(),
        move |arrays| {
            let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let mut input = ColumnInput::new(&sql_type, zone)?;
            for value in text.as_string::<i32>() {
                input.push_text(value)?;
            }
            Ok(input.finish())
        },
    );
    let read = udf.call(vec![inner.as_ref().clone()]);
    Some(match read_type == target {
        true => read,
        false => cast(read, target),
    })
}
