//! SQL values as JSON, as PostgreSQL's `to_json` writes them: numbers
//! and booleans bare, NaN and infinities quoted, dates and times in ISO
//! form quoted (`"2020-01-02T03:04:05+00:00"`), text quoted, `json` and
//! `jsonb` values as they are, arrays as JSON arrays without spaces
//! (`[1,2]`), records (a whole row, `to_json(t)`) as objects of their
//! fields (`{"a":1,"b":"x"}`).

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;

use super::value::quoted;
use super::Flavor;
use crate::error::{Error, Result};
use crate::sql::errors::classify;
use crate::sql::output::render;

/// The value at `row` of `array` (of `field`'s type) as JSON text.
pub fn to_json(array: &ArrayRef, row: usize, field: &Field, zone: &Tz) -> Result<String> {
    if array.is_null(row) {
        return Ok("null".into());
    }
    let data_type = array.data_type();
    Ok(match data_type {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => scalar_at(array, row)?.to_string(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = scalar_at(array, row)?.to_string();
            match Flavor::of(field) {
                Some(_) => text,
                None => quoted(&text),
            }
        }
        DataType::List(item) | DataType::LargeList(item) => {
            let ScalarValue::List(list) = scalar_at(array, row)? else {
                return Err(unsupported(data_type));
            };
            let items = list.value(0);
            let texts = (0..items.len())
                .map(|i| to_json(&items, i, item, zone))
                .collect::<Result<Vec<_>>>()?;
            format!("[{}]", texts.join(","))
        }
        DataType::Struct(fields) => {
            let record = array.as_struct();
            let members = fields
                .iter()
                .zip(record.columns())
                .map(|(f, column)| {
                    Ok(format!(
                        "{}:{}",
                        quoted(f.name()),
                        to_json(column, row, f, zone)?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            format!("{{{}}}", members.join(","))
        }
        // NaN and the infinities are strings in JSON.
        DataType::Float32 | DataType::Float64 | DataType::LargeBinary => {
            let text = rendered(array, row, zone)?;
            match text.parse::<f64>().is_ok_and(f64::is_finite) {
                true => text,
                false => quoted(&text),
            }
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => rendered(array, row, zone)?,
        DataType::Timestamp(_, zone_name) => {
            // ISO 8601: a `T` between date and time, an offset with its
            // minutes (`+00:00`).
            let text = rendered(array, row, zone)?.replacen(' ', "T", 1);
            quoted(&match zone_name {
                Some(_) => full_offset(text),
                None => text,
            })
        }
        DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Interval(_)
        | DataType::FixedSizeBinary(16) => quoted(&rendered(array, row, zone)?),
        DataType::Binary => {
            let bytes = scalar_at(array, row)?;
            let hex: String = match bytes {
                ScalarValue::Binary(Some(b)) => b.iter().map(|b| format!("{b:02x}")).collect(),
                _ => String::new(),
            };
            quoted(&format!("\\x{hex}"))
        }
        DataType::Null => "null".into(),
        other => return Err(unsupported(other)),
    })
}

/// The value's text as PostgreSQL prints it.
fn rendered(array: &ArrayRef, row: usize, zone: &Tz) -> Result<String> {
    let one = render(&array.slice(row, 1), zone)?;
    let text = match one.data_type() {
        DataType::Utf8 => one.as_string::<i32>().value(0).to_string(),
        _ => scalar_at(&one, 0)?.to_string(),
    };
    Ok(text)
}

/// `+09` as `+09:00` (PostgreSQL's JSON offsets always have minutes).
fn full_offset(text: String) -> String {
    let sign_at = text.rfind(['+', '-']).filter(|at| *at > 10);
    match sign_at {
        Some(at) if text.len() - at == 3 => format!("{text}:00"),
        _ => text,
    }
}

fn unsupported(data_type: &DataType) -> Error {
    Error::unsupported(format!("a JSON value of type {data_type}"))
}

/// The value at `row` of `array`.
pub fn scalar_at(array: &ArrayRef, row: usize) -> Result<ScalarValue> {
    ScalarValue::try_from_array(array, row).map_err(classify)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};

    fn utc() -> Tz {
        "+00:00".parse().unwrap()
    }

    #[test]
    fn values_as_postgresql_s_to_json() {
        let f = Arc::new(Float64Array::from(vec![1.5, 1e20, f64::NAN])) as ArrayRef;
        let field = Field::new("f", DataType::Float64, true);
        let texts: Vec<String> = (0..3)
            .map(|i| to_json(&f, i, &field, &utc()).unwrap())
            .collect();
        assert_eq!(texts, ["1.5", "1e+20", "\"NaN\""]);
        let ts = Arc::new(
            TimestampMicrosecondArray::from(vec![1_577_934_245_000_000]).with_timezone("+00:00"),
        ) as ArrayRef;
        let field = Field::new("t", ts.data_type().clone(), true);
        assert_eq!(
            to_json(&ts, 0, &field, &utc()).unwrap(),
            "\"2020-01-02T03:04:05+00:00\""
        );
        let s = Arc::new(StringArray::from(vec!["a\"b"])) as ArrayRef;
        let field = Field::new("s", DataType::Utf8, true);
        assert_eq!(to_json(&s, 0, &field, &utc()).unwrap(), r#""a\"b""#);
    }
}
