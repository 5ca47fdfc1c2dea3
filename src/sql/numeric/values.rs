//! `numeric` values with their own scale as Arrow arrays: a `LargeBinary`
//! array of each value's sortable bytes (`crate::numeric`), and the
//! conversions between it and the other Arrow types.
//!
//! The Arrow type alone says a column holds such values (ShardForge gives
//! `LargeBinary` to nothing else, `bytea` is `Binary`), so no field
//! metadata has to survive DataFusion's rewrites for a value to be shown
//! as a number.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Decimal256Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, LargeBinaryBuilder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    i256, DataType, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{exec_err, Result as DFResult};
use num_bigint::BigInt;

use crate::error::{Error, InputError, Result};
use crate::numeric::Numeric;

/// The Arrow type of `numeric` values that keep their own scale.
pub const NUMERIC: DataType = DataType::LargeBinary;

/// Whether `data_type` holds `numeric` values with their own scale.
pub fn is_numeric(data_type: &DataType) -> bool {
    *data_type == NUMERIC
}

/// The values of a [`NUMERIC`] array.
pub fn numerics(array: &dyn Array) -> impl Iterator<Item = Result<Option<Numeric>>> + '_ {
    array
        .as_binary::<i64>()
        .iter()
        .map(|bytes| bytes.map(Numeric::from_sortable).transpose())
}

/// A [`NUMERIC`] array of `values`.
pub fn numeric_array(values: impl IntoIterator<Item = Option<Numeric>>) -> ArrayRef {
    let mut builder = LargeBinaryBuilder::new();
    for value in values {
        match value {
            Some(v) => builder.append_value(v.to_sortable()),
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

/// A [`NUMERIC`] array computed value by value from `arrays` (all of one
/// length, every one a [`NUMERIC`] array), NULL where any input is.
pub fn map_numerics(
    arrays: &[ArrayRef],
    op: impl Fn(&[Numeric]) -> Result<Numeric>,
) -> DFResult<ArrayRef> {
    map_rows(arrays, |row| match row.iter().all(Option::is_some) {
        true => op(&row.iter().flatten().cloned().collect::<Vec<_>>()).map(Some),
        false => Ok(None),
    })
}

/// A [`NUMERIC`] array computed row by row from `arrays`' values, NULLs
/// included (`greatest` skips them).
pub fn map_rows(
    arrays: &[ArrayRef],
    op: impl Fn(&[Option<Numeric>]) -> Result<Option<Numeric>>,
) -> DFResult<ArrayRef> {
    let mut columns: Vec<_> = arrays.iter().map(|a| numerics(a.as_ref())).collect();
    let len = arrays.first().map_or(0, |a| a.len());
    let mut out = LargeBinaryBuilder::new();
    let mut row = Vec::with_capacity(arrays.len());
    for _ in 0..len {
        row.clear();
        for column in columns.iter_mut() {
            row.push(column.next().transpose()?.flatten());
        }
        match op(&row)? {
            Some(value) => out.append_value(value.to_sortable()),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `array`'s values as `numeric` ones, as PostgreSQL casts each type to
/// `numeric`: integers and decimals exactly (a decimal keeps its scale),
/// floats by their 15 (`real`: 6) significant digits, text as
/// `numeric_in` reads it.
pub fn to_numerics(array: &dyn Array) -> DFResult<ArrayRef> {
    fn each<T>(
        values: impl Iterator<Item = Option<T>>,
        convert: impl Fn(T) -> Result<Numeric>,
    ) -> DFResult<ArrayRef> {
        let values: Result<Vec<_>> = values.map(|v| v.map(&convert).transpose()).collect();
        Ok(numeric_array(values?))
    }
    let int = |v: i64| Ok(Numeric::from_i64(v));
    match array.data_type() {
        DataType::LargeBinary => Ok(Arc::new(array.as_binary::<i64>().clone())),
        DataType::Null => Ok(numeric_array(vec![None; array.len()])),
        DataType::Int8 => each(array.as_primitive::<Int8Type>().iter(), |v| int(v.into())),
        DataType::Int16 => each(array.as_primitive::<Int16Type>().iter(), |v| int(v.into())),
        DataType::Int32 => each(array.as_primitive::<Int32Type>().iter(), |v| int(v.into())),
        DataType::Int64 => each(array.as_primitive::<Int64Type>().iter(), int),
        DataType::UInt8 => each(array.as_primitive::<UInt8Type>().iter(), |v| int(v.into())),
        DataType::UInt16 => each(array.as_primitive::<UInt16Type>().iter(), |v| int(v.into())),
        DataType::UInt32 => each(array.as_primitive::<UInt32Type>().iter(), |v| int(v.into())),
        DataType::UInt64 => each(array.as_primitive::<UInt64Type>().iter(), |v| {
            Ok(Numeric::finite(BigInt::from(v), 0))
        }),
        DataType::Decimal128(_, scale) => {
            each(array.as_primitive::<Decimal128Type>().iter(), |v| {
                Ok(Numeric::from_scaled(v, *scale))
            })
        }
        DataType::Decimal256(_, scale) => {
            each(array.as_primitive::<Decimal256Type>().iter(), |v| {
                let unscaled = BigInt::from_signed_bytes_le(&v.to_le_bytes());
                Ok(Numeric::from_scaled(unscaled, *scale))
            })
        }
        DataType::Float64 => each(array.as_primitive::<Float64Type>().iter(), |v| {
            Ok(Numeric::from_float(v, 15))
        }),
        DataType::Float32 => each(array.as_primitive::<Float32Type>().iter(), |v| {
            Ok(Numeric::from_float(v.into(), 6))
        }),
        DataType::Utf8 => each(array.as_string::<i32>().iter(), Numeric::parse),
        DataType::LargeUtf8 => each(array.as_string::<i64>().iter(), Numeric::parse),
        DataType::Utf8View => each(array.as_string_view().iter(), Numeric::parse),
        other => exec_err!("cannot cast type {other} to numeric"),
    }
}

/// A [`NUMERIC`] array's values as `to`, as PostgreSQL casts `numeric`:
/// to an integer rounded half away from zero (22003 past its range), to
/// a float by the nearest (22003 past its range), to `numeric(p, s)` by
/// its typmod, to text as `numeric_out` writes it.
pub fn from_numerics(array: &dyn Array, to: &DataType) -> DFResult<ArrayRef> {
    let values = numerics(array);
    Ok(match to {
        DataType::LargeBinary => Arc::new(array.as_binary::<i64>().clone()),
        DataType::Int16 => integers(values, Int16Builder::new(), "smallint")?,
        DataType::Int32 => integers(values, Int32Builder::new(), "integer")?,
        DataType::Int64 => integers(values, Int64Builder::new(), "bigint")?,
        DataType::Float64 => {
            let mut out = Float64Builder::new();
            for value in values {
                out.append_option(value?.map(|v| float(&v, "double precision")).transpose()?);
            }
            Arc::new(out.finish())
        }
        DataType::Float32 => {
            let mut out = Float32Builder::new();
            for value in values {
                let value = value?
                    .map(|v| float(&v, "real").map(|f| f as f32))
                    .transpose()?;
                out.append_option(value);
            }
            Arc::new(out.finish())
        }
        DataType::Decimal128(precision, scale) => {
            let mut out = Decimal128Builder::new();
            for value in values {
                let unscaled = value?.map(|v| fitted(&v, *precision, *scale)).transpose()?;
                out.append_option(unscaled.map(|u| i128::try_from(u).unwrap_or(i128::MAX)));
            }
            Arc::new(out.finish().with_precision_and_scale(*precision, *scale)?)
        }
        DataType::Decimal256(precision, scale) => {
            let mut out = Decimal256Builder::new();
            for value in values {
                let unscaled = value?.map(|v| fitted(&v, *precision, *scale)).transpose()?;
                out.append_option(unscaled.map(|u| to_i256(&u)));
            }
            Arc::new(out.finish().with_precision_and_scale(*precision, *scale)?)
        }
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            let mut out = StringBuilder::new();
            for value in values {
                out.append_option(value?.map(|v| v.to_string()));
            }
            cast(&out.finish(), to)?
        }
        other => return exec_err!("cannot cast type numeric to {other}"),
    })
}

fn integers<B>(
    values: impl Iterator<Item = Result<Option<Numeric>>>,
    mut out: B,
    type_name: &str,
) -> DFResult<ArrayRef>
where
    B: datafusion::arrow::array::ArrayBuilder + IntegerBuilder,
{
    for value in values {
        let value = match value? {
            None => None,
            Some(v) => {
                let int = v.to_i64().map_err(|e| renamed(e, type_name))?;
                Some(
                    int.filter(|i| B::fits(*i))
                        .ok_or_else(|| out_of_range(type_name))?,
                )
            }
        };
        out.append(value);
    }
    Ok(out.finish_array())
}

/// The three integer builders, as one.
trait IntegerBuilder {
    fn fits(value: i64) -> bool;
    fn append(&mut self, value: Option<i64>);
    fn finish_array(&mut self) -> ArrayRef;
}

macro_rules! integer_builder {
    ($builder:ty, $native:ty) => {
        impl IntegerBuilder for $builder {
            fn fits(value: i64) -> bool {
                <$native>::try_from(value).is_ok()
            }
            fn append(&mut self, value: Option<i64>) {
                self.append_option(value.map(|v| v as $native));
            }
            fn finish_array(&mut self) -> ArrayRef {
                Arc::new(self.finish())
            }
        }
    };
}

integer_builder!(Int16Builder, i16);
integer_builder!(Int32Builder, i32);
integer_builder!(Int64Builder, i64);

/// `cannot convert NaN to integer` names the type cast to, as PostgreSQL's does.
fn renamed(error: Error, type_name: &str) -> Error {
    match error {
        Error::Input(kind, message) => {
            Error::Input(kind, message.replace(" integer", &format!(" {type_name}")))
        }
        other => other,
    }
}

fn out_of_range(type_name: &str) -> Error {
    Error::input(InputError::OutOfRange, format!("{type_name} out of range"))
}

/// The nearest float; 22003 for a finite value no float holds (one that
/// overflows, or a non-zero one that becomes 0).
fn float(value: &Numeric, type_name: &str) -> Result<f64> {
    let float = value.to_f64();
    let single = type_name == "real";
    let lost = match value {
        Numeric::Finite { .. } => {
            let narrowed = if single {
                f64::from(float as f32)
            } else {
                float
            };
            narrowed.is_infinite() || (narrowed == 0.0 && !value.is_zero())
        }
        _ => false,
    };
    match lost {
        true => Err(Error::input(
            InputError::OutOfRange,
            format!("\"{value}\" is out of range for type {type_name}"),
        )),
        false => Ok(float),
    }
}

/// The unscaled integer of `value` in `numeric(precision, scale)`, as
/// PostgreSQL's typmod fits it (22003 past the precision). NaN, which
/// PostgreSQL lets into a `numeric(p, s)`, is 0A000: a fixed-scale decimal
/// cannot hold it.
pub fn fitted(value: &Numeric, precision: u8, scale: i8) -> Result<BigInt> {
    let scale =
        u32::try_from(scale).map_err(|_| Error::unsupported("a numeric scale below zero"))?;
    let fitted = value.fit(precision.into(), scale)?;
    fitted.unscaled_at(scale).ok_or_else(|| {
        Error::unsupported(format!(
            "NaN in a numeric({precision},{scale}); an unconstrained numeric holds it"
        ))
    })
}

/// `value` as a 256-bit integer (the caller checked that it fits).
pub fn to_i256(value: &BigInt) -> i256 {
    let mut bytes = value.to_signed_bytes_le();
    let fill = if value.sign() == num_bigint::Sign::Minus {
        0xFF
    } else {
        0
    };
    bytes.resize(32, fill);
    i256::from_le_bytes(bytes.try_into().unwrap_or([0; 32]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Float64Array, Int32Array, StringArray};

    fn texts(array: &ArrayRef) -> Vec<String> {
        numerics(array.as_ref())
            .map(|v| v.unwrap().map_or("NULL".into(), |v| v.to_string()))
            .collect()
    }

    #[test]
    fn converts_as_postgresql_casts() {
        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(250), None, Some(-5)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        assert_eq!(
            texts(&to_numerics(&decimals).unwrap()),
            ["2.50", "NULL", "-0.05"]
        );
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![0.1, 1.0 / 3.0]));
        assert_eq!(
            texts(&to_numerics(&floats).unwrap()),
            ["0.1", "0.333333333333333"]
        );
        let text: ArrayRef = Arc::new(StringArray::from(vec!["1.50", " 1e3 "]));
        let values = to_numerics(&text).unwrap();
        assert_eq!(texts(&values), ["1.50", "1000"]);
        let ints = from_numerics(&values, &DataType::Int32).unwrap();
        assert_eq!(ints.as_primitive::<Int32Type>().values(), &[2, 1000]);
        let small = from_numerics(&values, &DataType::Decimal128(5, 1)).unwrap();
        assert_eq!(
            small.as_primitive::<Decimal128Type>().values(),
            &[15, 10000]
        );
        assert!(from_numerics(&values, &DataType::Decimal128(3, 1)).is_err());
        let big: ArrayRef = Arc::new(StringArray::from(vec!["1e40"]));
        let err = from_numerics(&to_numerics(&big).unwrap(), &DataType::Int16).unwrap_err();
        assert!(err.to_string().contains("smallint out of range"), "{err}");
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(7), None]));
        let back = from_numerics(&to_numerics(&ints).unwrap(), &DataType::Utf8).unwrap();
        assert_eq!(
            back.as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("7"), None]
        );
    }
}
