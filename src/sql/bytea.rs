//! `bytea` beside text, as PostgreSQL reads it. A `bytea` is an Arrow
//! Binary; DataFusion casts text to Binary as its UTF-8 bytes, so an
//! untyped literal beside a `bytea` (`data = '\x0102'`, `data || '\x03'`)
//! was the bytes of the characters `\`, `x`, `0`... : compared, it never
//! matched; concatenated, it was text. And
//! `length(data)` counted the characters of the bytes read as UTF-8.
//!
//! [`bytea_operands`], rewriting expressions before type coercion, reads
//! such a literal (or a text parameter) with `byteain` (`\x` hex or the
//! escape form: `functions::bytea_input`), concatenates `bytea` as bytes,
//! and counts a `bytea`'s length in bytes; `substring`, `position` and
//! the trims of a `bytea` are of its bytes ([`ByteaOverload`]). Also
//! here: `get_byte`, `set_byte`, `get_bit`, `set_bit`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::plan_err;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::analyze::{array_udf, coerced_types, convert_compared, is_text};
use super::functions::{bytea_input, input_error};
use crate::error::InputError;

/// See the module's documentation.
pub fn bytea_operands(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let is_bytea = |e: &Expr| e.get_type(schema).is_ok_and(|t| is_binary(&t));
    // What PostgreSQL reads as `bytea` beside one: an untyped literal or a
    // text parameter.
    let as_bytea = |e: Expr| match &e {
        Expr::Literal(ScalarValue::Utf8(_), _) => bytea_in().call(vec![e]),
        Expr::Placeholder(p) if p.field.as_ref().is_some_and(|f| is_text(f.data_type())) => {
            bytea_in().call(vec![e])
        }
        _ => e,
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) if is_bytea(&left) || is_bytea(&right) => {
            let (left, right) = (as_bytea(*left), as_bytea(*right));
            match is_bytea(&left) && is_bytea(&right) {
                true => Transformed::yes(bytea_concat().call(vec![left, right])),
                false => Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(left),
                    Operator::StringConcat,
                    Box::new(right),
                ))),
            }
        }
        Expr::ScalarFunction(call)
            // `length` is DataFusion's `character_length`.
            if call.name() == "character_length"
                && call.args.len() == 1
                && is_bytea(&call.args[0]) =>
        {
            Transformed::yes(bytea_length().call(call.args))
        }
        // An untyped literal in a call of a `bytea` is one (`btrim(data,
        // '\x00')`, `position('\x01' IN data)`).
        Expr::ScalarFunction(mut call)
            if OVERLOADED.iter().any(|(name, ..)| *name == call.name())
                && call.args.iter().any(is_bytea) =>
        {
            call.args = call.args.into_iter().map(as_bytea).collect();
            Transformed::yes(Expr::ScalarFunction(call))
        }
        other => convert_compared(other, is_bytea, as_bytea),
    }
}

fn is_binary(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Binary | DataType::BinaryView)
}

/// `byteain(text)`: text read as `bytea` input (22023 if it is none).
fn bytea_in() -> Arc<ScalarUDF> {
    array_udf(
        "byteain",
        vec![DataType::Utf8],
        DataType::Binary,
        |arrays| {
            let bytes = (arrays[0].as_string::<i32>().iter())
                .map(|text| text.map(bytea_input).transpose())
                .collect::<crate::error::Result<Vec<_>>>()
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(Arc::new(BinaryArray::from_iter(bytes)) as ArrayRef)
        },
    )
}

/// `byteacat(bytea, bytea)`: the bytes of both.
fn bytea_concat() -> Arc<ScalarUDF> {
    let types = vec![DataType::Binary, DataType::Binary];
    array_udf("byteacat", types, DataType::Binary, |arrays| {
        let (left, right) = (arrays[0].as_binary::<i32>(), arrays[1].as_binary::<i32>());
        let joined: BinaryArray = (left.iter().zip(right.iter()))
            .map(|(l, r)| Some([l?, r?].concat()))
            .collect();
        Ok(Arc::new(joined) as ArrayRef)
    })
}

/// `length(bytea)`: its bytes.
fn bytea_length() -> Arc<ScalarUDF> {
    array_udf(
        "byteaoctetlen",
        vec![DataType::Binary],
        DataType::Int32,
        |arrays| {
            let lengths: Int32Array = (arrays[0].as_binary::<i32>().iter())
                .map(|b| b.map(|b| b.len() as i32))
                .collect();
            Ok(Arc::new(lengths) as ArrayRef)
        },
    )
}

/// `substring(bytea FROM s [FOR c])` (`bytea_substr`): the bytes from
/// position `s` (counted from 1; positions before the first count toward
/// `c`) for `c` bytes, or to the end; 22011 for a negative `c`.
fn bytea_substr() -> Arc<ScalarUDF> {
    let types = vec![DataType::Binary, DataType::Int64, DataType::Int64];
    array_udf("bytea_substr", types, DataType::Binary, |arrays| {
        let (bytes, starts, counts) = (
            arrays[0].as_binary::<i32>(),
            arrays[1].as_primitive::<Int64Type>(),
            arrays.get(2).map(|a| a.as_primitive::<Int64Type>()),
        );
        let substrings = (0..bytes.len()).map(|i| {
            if bytes.is_null(i) || starts.is_null(i) || counts.is_some_and(|c| c.is_null(i)) {
                return Ok(None);
            }
            let (bytes, start) = (bytes.value(i), starts.value(i));
            let count = counts.map_or(i64::MAX, |c| c.value(i));
            if count < 0 {
                return Err(input_error(
                    InputError::SubstringError,
                    "negative substring length not allowed",
                ));
            }
            let position = |p: i64| (p.max(1) - 1).min(bytes.len() as i64) as usize;
            let (first, end) = (position(start), position(start.saturating_add(count)));
            Ok(Some(bytes[first..end.max(first)].to_vec()))
        });
        Ok(Arc::new(substrings.collect::<DFResult<BinaryArray>>()?) as ArrayRef)
    })
}

/// `position(needle IN bytea)`: where the needle first starts, from 1 (0
/// if nowhere, 1 for an empty needle).
fn bytea_position() -> Arc<ScalarUDF> {
    let types = vec![DataType::Binary, DataType::Binary];
    array_udf("byteapos", types, DataType::Int32, |arrays| {
        let (bytes, needles) = (arrays[0].as_binary::<i32>(), arrays[1].as_binary::<i32>());
        let positions: Int32Array = (bytes.iter().zip(needles.iter()))
            .map(|(bytes, needle)| {
                let (bytes, needle) = (bytes?, needle?);
                let found = match needle.is_empty() {
                    true => Some(0),
                    false => bytes.windows(needle.len()).position(|w| w == needle),
                };
                Some(found.map_or(0, |p| p as i32 + 1))
            })
            .collect();
        Ok(Arc::new(positions) as ArrayRef)
    })
}

/// `btrim` / `ltrim` / `rtrim(bytea, set)`: the bytes without the set's
/// bytes at the start (`start`) and the end (`end`).
fn bytea_trim(name: &str, start: bool, end: bool) -> Arc<ScalarUDF> {
    let types = vec![DataType::Binary, DataType::Binary];
    array_udf(name, types, DataType::Binary, move |arrays| {
        let (bytes, sets) = (arrays[0].as_binary::<i32>(), arrays[1].as_binary::<i32>());
        let trimmed: BinaryArray = (bytes.iter().zip(sets.iter()))
            .map(|(bytes, set)| {
                let (mut bytes, set) = (bytes?, set?);
                while start && bytes.first().is_some_and(|b| set.contains(b)) {
                    bytes = &bytes[1..];
                }
                while end && bytes.last().is_some_and(|b| set.contains(b)) {
                    bytes = &bytes[..bytes.len() - 1];
                }
                Some(bytes.to_vec())
            })
            .collect();
        Ok(Arc::new(trimmed) as ArrayRef)
    })
}

/// Makes the `bytea` version of a function.
type BytesVersion = fn() -> Arc<ScalarUDF>;

/// DataFusion's functions of text that PostgreSQL also has for `bytea`,
/// the `bytea` versions [`ByteaOverload`] runs in their place, and the
/// fewest arguments those take (`substring` may leave out its count).
const OVERLOADED: &[(&str, BytesVersion, usize)] = &[
    ("octet_length", bytea_length, 1),
    ("substr", bytea_substr, 2),
    ("strpos", bytea_position, 2),
    ("btrim", || bytea_trim("byteatrim", true, true), 2),
    ("ltrim", || bytea_trim("bytealtrim", true, false), 2),
    ("rtrim", || bytea_trim("byteartrim", false, true), 2),
];

/// Registers the functions of `bytea` alone, and wraps the functions of
/// [`OVERLOADED`] registered in `ctx` (DataFusion checks a call against
/// their text signatures as it plans it, before any rewrite could see it).
pub fn register(ctx: &SessionContext) {
    for udf in [
        bit_or_byte("get_byte", Unit::Byte, false),
        bit_or_byte("set_byte", Unit::Byte, true),
        bit_or_byte("get_bit", Unit::Bit, false),
        bit_or_byte("set_bit", Unit::Bit, true),
    ] {
        ctx.register_udf(Arc::unwrap_or_clone(udf));
    }
    let state = ctx.state();
    for (name, ..) in OVERLOADED {
        if let Some(inner) = state.scalar_functions().get(*name) {
            ctx.register_udf(overloaded(inner.clone()));
        }
    }
}

/// `inner`, a function of [`OVERLOADED`], wrapped in its [`ByteaOverload`]
/// (`substring(x FROM s)` and `position(x IN y)` are planned as calls of
/// DataFusion's `substr` and `strpos` without the registry: the planner
/// wraps them with this).
pub fn overloaded(inner: Arc<ScalarUDF>) -> ScalarUDF {
    let Some((_, own, fewest)) = OVERLOADED.iter().find(|(name, ..)| *name == inner.name()) else {
        return Arc::unwrap_or_clone(inner);
    };
    ScalarUDF::new_from_impl(ByteaOverload {
        inner,
        own: own(),
        fewest: *fewest,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// A function of text that runs its `bytea` version (`own`, taking at
/// least `fewest` arguments) for a call with a `bytea` argument.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteaOverload {
    inner: Arc<ScalarUDF>,
    own: Arc<ScalarUDF>,
    fewest: usize,
    signature: Signature,
}

impl ByteaOverload {
    fn own_call(&self, types: &[DataType]) -> bool {
        types.iter().any(is_binary)
    }

    /// The own version's argument types, as many as the call has.
    fn own_types(&self, count: usize) -> DFResult<Vec<DataType>> {
        match &self.own.signature().type_signature {
            TypeSignature::Exact(types) if (self.fewest..=types.len()).contains(&count) => {
                Ok(types[..count].to_vec())
            }
            _ => plan_err!("function {}(bytea, ...) takes other arguments", self.name()),
        }
    }
}

impl ScalarUDFImpl for ByteaOverload {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        match self.own_call(arg_types) {
            true => self.own_types(arg_types.len()),
            false => coerced_types(arg_types, self.inner.as_ref()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        match self.own_call(arg_types) {
            true => self.own.return_type(arg_types),
            false => self.inner.return_type(arg_types),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types: Vec<DataType> = (args.arg_fields.iter())
            .map(|f| f.data_type().clone())
            .collect();
        match self.own_call(&types) {
            true => Ok(Arc::new(Field::new(
                self.name(),
                self.own.return_type(&types)?,
                true,
            ))),
            false => self.inner.return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let types: Vec<DataType> = (args.arg_fields.iter())
            .map(|f| f.data_type().clone())
            .collect();
        match self.own_call(&types) {
            true => self.own.invoke_with_args(args),
            false => self.inner.invoke_with_args(args),
        }
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Byte,
    Bit,
}

impl Unit {
    /// How many of these a `bytea` of `len` bytes holds.
    fn count(self, len: usize) -> i64 {
        match self {
            Unit::Byte => len as i64,
            Unit::Bit => len as i64 * 8,
        }
    }

    /// The unit at `index` (checked against [`Unit::count`]); a bit
    /// numbered from the lowest of its byte, as PostgreSQL numbers them.
    fn get(self, bytes: &[u8], index: usize) -> i32 {
        match self {
            Unit::Byte => i32::from(bytes[index]),
            Unit::Bit => i32::from((bytes[index / 8] >> (index % 8)) & 1),
        }
    }

    /// `bytes` with the unit at `index` set to `value`: a byte to the low 8
    /// bits of it, a bit to 0 or 1 (22023 for any other value).
    fn set(self, bytes: &mut [u8], index: usize, value: i64) -> DFResult<()> {
        match self {
            Unit::Byte => bytes[index] = value as u8,
            Unit::Bit if value == 0 || value == 1 => {
                let mask = 1 << (index % 8);
                bytes[index / 8] = (bytes[index / 8] & !mask) | (value as u8 * mask);
            }
            Unit::Bit => {
                return Err(input_error(
                    InputError::InvalidParameterValue,
                    "new bit must be 0 or 1",
                ))
            }
        }
        Ok(())
    }
}

/// `get_byte(bytea, n)` / `get_bit(bytea, n)`, or (`sets`)
/// `set_byte(bytea, n, value)` / `set_bit(...)`; 2202E for an index past
/// the bytes.
fn bit_or_byte(name: &'static str, unit: Unit, sets: bool) -> Arc<ScalarUDF> {
    let (types, result) = match sets {
        true => (
            vec![DataType::Binary, DataType::Int64, DataType::Int64],
            DataType::Binary,
        ),
        false => (vec![DataType::Binary, DataType::Int64], DataType::Int32),
    };
    array_udf(name, types, result, move |arrays| {
        let (bytes, indexes) = (
            arrays[0].as_binary::<i32>(),
            arrays[1].as_primitive::<Int64Type>(),
        );
        let values = arrays.get(2).map(|a| a.as_primitive::<Int64Type>());
        let checked = |i: usize| -> DFResult<Option<(&[u8], usize)>> {
            if bytes.is_null(i) || indexes.is_null(i) || values.is_some_and(|v| v.is_null(i)) {
                return Ok(None);
            }
            let (bytes, index) = (bytes.value(i), indexes.value(i));
            let count = unit.count(bytes.len());
            if !(0..count).contains(&index) {
                return Err(input_error(
                    InputError::ArraySubscriptError,
                    format!("index {index} out of valid range, 0..{}", count - 1),
                ));
            }
            Ok(Some((bytes, index as usize)))
        };
        let rows = 0..bytes.len();
        Ok(match values {
            None => Arc::new(
                rows.map(|i| Ok(checked(i)?.map(|(bytes, index)| unit.get(bytes, index))))
                    .collect::<DFResult<Int32Array>>()?,
            ) as ArrayRef,
            Some(values) => Arc::new(
                rows.map(|i| {
                    let Some((bytes, index)) = checked(i)? else {
                        return Ok(None);
                    };
                    let mut bytes = bytes.to_vec();
                    unit.set(&mut bytes, index, values.value(i))?;
                    Ok(Some(bytes))
                })
                .collect::<DFResult<BinaryArray>>()?,
            ),
        })
    })
}
