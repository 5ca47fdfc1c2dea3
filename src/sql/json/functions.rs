//! The `json` and `jsonb` functions, and the operators planned as calls
//! of them (`super::planning`), as DataFusion scalar functions.
//!
//! One [`JsonFunction`] per name; [`Op`] says what it computes. Each works
//! a row at a time on the values' text, which it parses: `jsonb` text is
//! its canonical form (written by `jsonb_in` or by the write path), so
//! parsing it again gives the same value. Operators answer in the flavor
//! of their left operand (`json -> 'a'` is `json`, the member's text as
//! written).

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::datum::{scalar_at, to_json};
use super::ops::{self, Step};
use super::value::{parse, quoted, sql_text, Jsonb, Node, Value};
use super::Flavor;
use crate::error::{Error, InputError, Result};
use crate::sql::analyze::like_arguments;
use crate::sql::vars::session_zone;

/// The mark of a record's or an array's JSON in `json_agg` ([`Op::AggItem`]):
/// no JSON text holds a NUL.
const STRUCTURED: char = '\0';

/// What a [`JsonFunction`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `x::json`, `x::jsonb`: text read as the flavor's value.
    Input,
    /// `->`, `->>`, `#>`, `#>>`.
    Get,
    GetText,
    Path,
    PathText,
    /// `jsonb_extract_path(value, VARIADIC path)`, `..._text`.
    ExtractPath,
    ExtractPathText,
    /// `@>`, `?`, `?|`, `?&`.
    Contains,
    Exists,
    ExistsAny,
    ExistsAll,
    /// `||`, `-`, `#-`.
    Concat,
    Delete,
    DeletePath,
    Set,
    /// `jsonb = jsonb`: numbers by value.
    Equal,
    /// `IS NOT DISTINCT FROM`: [`Op::Equal`] with NULL equal to NULL.
    NotDistinct,
    /// Its argument, typed as the function's JSON type (a value COALESCE
    /// or `unnest` passed on, whose type DataFusion lost).
    Typed,
    /// A JSON number's or boolean's text, for a cast to the type its
    /// second argument names (anything else is 22023).
    Scalar,
    StripNulls,
    Pretty,
    TypeOf,
    ArrayLength,
    BuildObject,
    BuildArray,
    ToJson,
    /// An element of `json_agg`: its `to_json`, marked with
    /// [`STRUCTURED`] in front when it is a record or an array, which
    /// PostgreSQL's `json_agg` puts on lines of their own.
    AggItem,
    /// The end of `json_agg`: a list of elements' JSON text as an array.
    ArrayOf,
    /// The end of `json_object_agg`: a list of (key, value text) pairs.
    ObjectOf,
    /// What `json_array_elements`, `..._text` and `json_object_keys`
    /// return, as a list for `unnest`.
    Elements,
    ElementsText,
    Keys,
    /// The values of an object's members, in its keys' order (with
    /// `Keys`, what `json_each` and `json_each_text` return).
    EachKeys,
    EachValues,
    EachValuesText,
}

/// What a call returns.
enum Out {
    Null,
    Text(String),
    Bool(bool),
    Int(i32),
    List(Vec<Option<String>>),
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonFunction {
    name: &'static str,
    op: Op,
    /// The flavor of a named function (`jsonb_typeof`); None for the
    /// operators, which take their left operand's.
    flavor: Option<Flavor>,
    signature: Signature,
}

/// The function `name` computing `op`.
pub fn function(name: &'static str, op: Op, flavor: Option<Flavor>) -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonFunction {
        name,
        op,
        flavor,
        // Any arguments, none included (`json_build_object()`); each
        // call checks its own.
        signature: Signature::one_of(
            vec![TypeSignature::VariadicAny, TypeSignature::Nullary],
            Volatility::Immutable,
        ),
    })
}

/// Every function of this module by its PostgreSQL name (the operators'
/// under the names PostgreSQL gives their functions).
pub fn all() -> Vec<ScalarUDF> {
    use Flavor::{Json as J, Jsonb as B};
    let mut udfs = vec![
        function("json_in", Op::Input, Some(J)),
        function("jsonb_in", Op::Input, Some(B)),
        function("json_get", Op::Get, None),
        function("json_get_text", Op::GetText, None),
        function("json_extract_path", Op::ExtractPath, Some(J)),
        function("jsonb_extract_path", Op::ExtractPath, Some(B)),
        function("json_extract_path_text", Op::ExtractPathText, Some(J)),
        function("jsonb_extract_path_text", Op::ExtractPathText, Some(B)),
        function("json_path_op", Op::Path, None),
        function("json_path_text_op", Op::PathText, None),
        function("jsonb_contains", Op::Contains, Some(B)),
        function("jsonb_exists", Op::Exists, Some(B)),
        function("jsonb_exists_any", Op::ExistsAny, Some(B)),
        function("jsonb_exists_all", Op::ExistsAll, Some(B)),
        function("jsonb_concat", Op::Concat, Some(B)),
        function("jsonb_delete", Op::Delete, Some(B)),
        function("jsonb_delete_path", Op::DeletePath, Some(B)),
        function("jsonb_set", Op::Set, Some(B)),
        function("jsonb_strip_nulls", Op::StripNulls, Some(B)),
        function("json_strip_nulls", Op::StripNulls, Some(J)),
        function("jsonb_pretty", Op::Pretty, Some(B)),
        function("json_typed", Op::Typed, Some(J)),
        function("jsonb_typed", Op::Typed, Some(B)),
        function("json_array_of", Op::ArrayOf, Some(J)),
        function("jsonb_array_of", Op::ArrayOf, Some(B)),
        function("json_object_of", Op::ObjectOf, Some(J)),
        function("jsonb_object_of", Op::ObjectOf, Some(B)),
    ];
    // The functions both types have, by their json and jsonb names.
    let pairs = [
        ("json_typeof", "jsonb_typeof", Op::TypeOf),
        ("json_array_length", "jsonb_array_length", Op::ArrayLength),
        ("json_build_object", "jsonb_build_object", Op::BuildObject),
        ("json_build_array", "jsonb_build_array", Op::BuildArray),
        ("to_json", "to_jsonb", Op::ToJson),
        ("json_agg_item", "jsonb_agg_item", Op::AggItem),
        (
            "json_array_elements_list",
            "jsonb_array_elements_list",
            Op::Elements,
        ),
        (
            "json_array_elements_text_list",
            "jsonb_array_elements_text_list",
            Op::ElementsText,
        ),
        ("json_object_keys_list", "jsonb_object_keys_list", Op::Keys),
        ("json_each_keys_list", "jsonb_each_keys_list", Op::EachKeys),
        (
            "json_each_values_list",
            "jsonb_each_values_list",
            Op::EachValues,
        ),
        (
            "json_each_text_values_list",
            "jsonb_each_text_values_list",
            Op::EachValuesText,
        ),
    ];
    for (json, jsonb, op) in pairs {
        udfs.push(function(json, op, Some(J)));
        udfs.push(function(jsonb, op, Some(B)));
    }
    udfs
}

impl JsonFunction {
    /// The flavor the call works in: the function's own, else its first
    /// argument's (`jsonb` for text).
    fn flavor_of(&self, first: Option<&Field>) -> Flavor {
        self.flavor
            .or_else(|| first.and_then(Flavor::of))
            .unwrap_or(Flavor::Jsonb)
    }

    fn result_type(&self) -> DataType {
        match self.op {
            Op::Contains
            | Op::Exists
            | Op::ExistsAny
            | Op::ExistsAll
            | Op::Equal
            | Op::NotDistinct => DataType::Boolean,
            Op::ArrayLength => DataType::Int32,
            Op::Elements
            | Op::ElementsText
            | Op::Keys
            | Op::EachKeys
            | Op::EachValues
            | Op::EachValuesText => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            _ => DataType::Utf8,
        }
    }

    /// The flavor of the result, for those that are JSON.
    fn result_flavor(&self, first: Option<&Field>) -> Option<Flavor> {
        match self.op {
            Op::Input
            | Op::Typed
            | Op::Get
            | Op::Path
            | Op::ExtractPath
            | Op::BuildObject
            | Op::BuildArray
            | Op::ToJson
            | Op::AggItem
            | Op::ArrayOf
            | Op::ObjectOf
            | Op::StripNulls => Some(self.flavor_of(first)),
            Op::Concat | Op::Delete | Op::DeletePath | Op::Set => Some(Flavor::Jsonb),
            _ => None,
        }
    }

    /// Whether the call is NULL when an argument is.
    fn strict(&self) -> bool {
        !matches!(self.op, Op::BuildObject | Op::BuildArray | Op::NotDistinct)
    }
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(self.result_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let first = args.arg_fields.first().map(|f| f.as_ref());
        let field = match (self.result_flavor(first), self.op) {
            (Some(flavor), _) => flavor.field(self.name),
            (None, Op::Elements | Op::EachValues) => {
                let item = self.flavor_of(first).field("item");
                Field::new(self.name, DataType::List(item.into()), true)
            }
            (None, _) => Field::new(self.name, self.result_type(), true),
        };
        Ok(Arc::new(field))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let zone = session_zone(&args.config_options);
        let call = Call {
            function: self,
            arrays: &arrays,
            fields: &args.arg_fields,
            zone,
        };
        let rows = match arrays.first() {
            Some(a) => a.len(),
            None => args.number_rows,
        };
        let outs = (0..rows)
            .map(|row| call.row(row))
            .collect::<Result<Vec<Out>>>()
            .map_err(DataFusionError::from)?;
        let result = column(args.return_field.data_type(), outs);
        let constant = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        match (result.data_type(), constant) {
            // A list value built from this one keeps its item field (and
            // so the item's JSON type), which a list taken from the column
            // by `like_arguments` would lose.
            (DataType::List(_), true) => Ok(ColumnarValue::Scalar(ScalarValue::List(Arc::new(
                result.as_list::<i32>().clone(),
            )))),
            _ => like_arguments(&args.args, result),
        }
    }
}

/// The results of a call as a column of `data_type`.
fn column(data_type: &DataType, outs: Vec<Out>) -> ArrayRef {
    match data_type {
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            for out in outs {
                b.append_option(match out {
                    Out::Bool(v) => Some(v),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::new();
            for out in outs {
                b.append_option(match out {
                    Out::Int(v) => Some(v),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::List(item) => {
            let mut b = ListBuilder::new(StringBuilder::new()).with_field(item.clone());
            for out in outs {
                match out {
                    Out::List(items) => {
                        for item in items {
                            b.values().append_option(item);
                        }
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            for out in outs {
                match out {
                    Out::Text(t) => b.append_value(t),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// One call's arguments.
struct Call<'a> {
    function: &'a JsonFunction,
    arrays: &'a [ArrayRef],
    fields: &'a [FieldRef],
    zone: Tz,
}

impl Call<'_> {
    fn row(&self, row: usize) -> Result<Out> {
        let f = self.function;
        // (An untyped NULL is a NullArray, whose values are not marked
        // null one by one.)
        let null = |a: &ArrayRef| a.is_null(row) || *a.data_type() == DataType::Null;
        if f.strict() && self.arrays.iter().any(null) {
            return Ok(Out::Null);
        }
        let flavor = f.flavor_of(self.fields.first().map(|f| f.as_ref()));
        let value = |i: usize| -> Result<ScalarValue> { scalar_at(self.arg(i)?, row) };
        let text = |i: usize| -> Result<String> { Ok(value(i)?.to_string()) };
        let jsonb = |i: usize| -> Result<Jsonb> { super::value::parse_jsonb(&text(i)?) };
        let json_out = |v: &Jsonb| Out::Text(v.to_string());
        Ok(match f.op {
            Op::Input => {
                let source = match value(0)? {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => s,
                    other => {
                        return Err(Error::input(
                            InputError::DatatypeMismatch,
                            format!(
                                "cannot cast type {} to {}",
                                other.data_type(),
                                flavor.name()
                            ),
                        ))
                    }
                };
                match flavor {
                    Flavor::Json => {
                        parse(&source)?;
                        Out::Text(source)
                    }
                    Flavor::Jsonb => json_out(&super::value::parse_jsonb(&source)?),
                }
            }
            Op::Get
            | Op::GetText
            | Op::Path
            | Op::PathText
            | Op::ExtractPath
            | Op::ExtractPathText => {
                let path = match f.op {
                    Op::Get | Op::GetText => vec![step(&value(1)?)?],
                    Op::Path | Op::PathText => match self.path(row, 1) {
                        Ok(path) => path,
                        // `#> '{a,NULL}'` finds nothing.
                        Err(_) if self.text_list(row, 1)?.contains(&None) => return Ok(Out::Null),
                        Err(e) => return Err(e),
                    },
                    _ => (1..self.arrays.len())
                        .map(|i| Ok(Step::Key(text(i)?)))
                        .collect::<Result<_>>()?,
                };
                let as_text = matches!(f.op, Op::GetText | Op::PathText | Op::ExtractPathText);
                let source = text(0)?;
                match flavor {
                    Flavor::Json => {
                        let by_path = !matches!(f.op, Op::Get | Op::GetText);
                        json_get(&parse(&source)?, &path, by_path, as_text)?
                    }
                    Flavor::Jsonb => {
                        let value = super::value::parse_jsonb(&source)?;
                        let found = match f.op {
                            Op::Get | Op::GetText => ops::get(&value, &path[0]),
                            _ => ops::get_path(&value, &path),
                        };
                        match (found, as_text) {
                            (None, _) => Out::Null,
                            (Some(v), true) => v.to_text().map_or(Out::Null, Out::Text),
                            (Some(v), false) => json_out(v),
                        }
                    }
                }
            }
            Op::Contains => Out::Bool(ops::contains(&jsonb(0)?, &jsonb(1)?)),
            Op::Equal => Out::Bool(jsonb(0)?.same(&jsonb(1)?)),
            Op::NotDistinct => match (null(&self.arrays[0]), null(&self.arrays[1])) {
                (true, true) => Out::Bool(true),
                (false, false) => Out::Bool(jsonb(0)?.same(&jsonb(1)?)),
                _ => Out::Bool(false),
            },
            Op::Typed => Out::Text(text(0)?),
            Op::Scalar => {
                let value = jsonb(0)?;
                let target = text(1)?;
                let finite = |n: &str| match target.as_str() {
                    "real" => n
                        .parse::<f32>()
                        .is_ok_and(|v| v.is_finite() && (v != 0.0 || zero(n))),
                    "double precision" => n
                        .parse::<f64>()
                        .is_ok_and(|v| v.is_finite() && (v != 0.0 || zero(n))),
                    _ => true,
                };
                match (&value, target == "boolean") {
                    (Jsonb::Number(n), false) if !finite(n) => {
                        return Err(Error::input(
                            InputError::OutOfRange,
                            format!("\"{n}\" is out of range for type {target}"),
                        ))
                    }
                    (Jsonb::Number(n), false) => Out::Text(n.clone()),
                    (Jsonb::Bool(b), true) => Out::Text(b.to_string()),
                    _ => {
                        return Err(ops::invalid(&format!(
                            "cannot cast jsonb {} to type {target}",
                            value.type_name()
                        )))
                    }
                }
            }
            Op::Exists => Out::Bool(ops::exists(&jsonb(0)?, &text(1)?)),
            Op::ExistsAny | Op::ExistsAll => {
                let value = jsonb(0)?;
                let keys = self.text_list(row, 1)?;
                let mut found = keys.iter().flatten().map(|k| ops::exists(&value, k));
                Out::Bool(match f.op {
                    Op::ExistsAny => found.any(|b| b),
                    _ => found.all(|b| b),
                })
            }
            Op::Concat => json_out(&ops::concat(jsonb(0)?, jsonb(1)?)),
            Op::Delete => {
                let target = jsonb(0)?;
                let deleted = match value(1)? {
                    ScalarValue::List(_) | ScalarValue::LargeList(_) => self
                        .text_list(row, 1)?
                        .iter()
                        .flatten()
                        .try_fold(target, |v, key| ops::delete_key(v, key))?,
                    other => match step(&other)? {
                        Step::Key(key) => ops::delete_key(target, &key)?,
                        Step::Index(i) => ops::delete_index(target, i)?,
                    },
                };
                json_out(&deleted)
            }
            Op::DeletePath => json_out(&ops::delete_path(jsonb(0)?, &self.path(row, 1)?)?),
            Op::Set => {
                let create = match self.arrays.len() > 3 {
                    true => matches!(value(3)?, ScalarValue::Boolean(Some(true))),
                    false => true,
                };
                json_out(&ops::set(
                    jsonb(0)?,
                    &self.path(row, 1)?,
                    jsonb(2)?,
                    create,
                )?)
            }
            Op::StripNulls => match flavor {
                Flavor::Json => Out::Text(without_nulls(&parse(&text(0)?)?)),
                Flavor::Jsonb => json_out(&ops::strip_nulls(jsonb(0)?)),
            },
            Op::Pretty => Out::Text(jsonb(0)?.pretty()),
            Op::TypeOf => Out::Text(jsonb(0)?.type_name().to_string()),
            Op::ArrayLength => match jsonb(0)? {
                Jsonb::Array(items) => Out::Int(items.len() as i32),
                Jsonb::Object(_) => {
                    return Err(ops::invalid("cannot get array length of a non-array"))
                }
                _ => return Err(ops::invalid("cannot get array length of a scalar")),
            },
            Op::BuildObject => self.build_object(row, flavor)?,
            Op::BuildArray => {
                let items = (0..self.arrays.len())
                    .map(|i| self.to_json(row, i))
                    .collect::<Result<Vec<_>>>()?;
                self.in_flavor(format!("[{}]", items.join(", ")), flavor)?
            }
            Op::ToJson => self.in_flavor(self.to_json(row, 0)?, flavor)?,
            Op::AggItem => {
                let structured = matches!(
                    self.fields[0].data_type(),
                    DataType::Struct(_) | DataType::List(_)
                );
                match (structured, self.in_flavor(self.to_json(row, 0)?, flavor)?) {
                    (true, Out::Text(json)) => Out::Text(format!("{STRUCTURED}{json}")),
                    (_, out) => out,
                }
            }
            Op::ArrayOf => {
                let items = self.text_list(row, 0)?;
                let mut array = String::from("[");
                for (i, item) in items.iter().enumerate() {
                    let item = item.as_deref().unwrap_or("null");
                    if i > 0 {
                        array.push_str(", ");
                    }
                    match item.strip_prefix(STRUCTURED) {
                        Some(item) if i > 0 => array.extend(["\n ", item]),
                        Some(item) => array.push_str(item),
                        None => array.push_str(item),
                    }
                }
                array.push(']');
                self.in_flavor(array, flavor)?
            }
            Op::ObjectOf => self.object_of(row, flavor)?,
            Op::Elements | Op::ElementsText => {
                let source = text(0)?;
                let node = parse(&source)?;
                let Value::Array(items) = &node.value else {
                    return Err(ops::invalid(match node.value {
                        Value::Object(_) => "cannot extract elements from an object",
                        _ => "cannot extract elements from a scalar",
                    }));
                };
                let as_text = f.op == Op::ElementsText;
                let items = items
                    .iter()
                    .map(|item| element(item, flavor, as_text))
                    .collect::<Result<Vec<_>>>()?;
                Out::List(items)
            }
            Op::Keys | Op::EachKeys | Op::EachValues | Op::EachValuesText => {
                let source = text(0)?;
                let node = parse(&source)?;
                let keys = matches!(f.op, Op::Keys | Op::EachKeys);
                let non_object = |what: &str| {
                    Err(ops::invalid(&match f.op {
                        Op::Keys => format!("cannot call {}_object_keys on {what}", flavor.name()),
                        _ => format!("cannot call {}_each on a non-object", flavor.name()),
                    }))
                };
                let members = match (&node.value, flavor) {
                    (Value::Object(members), Flavor::Json) => members.clone(),
                    // jsonb's members: sorted, the last of a repeated key.
                    (Value::Object(_), Flavor::Jsonb) => {
                        let Jsonb::Object(sorted) = node.to_jsonb()? else {
                            return Ok(Out::Null);
                        };
                        let items = sorted.into_iter().map(|(k, v)| match f.op {
                            _ if keys => Some(k),
                            Op::EachValuesText => v.to_text(),
                            _ => Some(v.to_string()),
                        });
                        return Ok(Out::List(items.collect()));
                    }
                    (Value::Array(_), _) => return non_object("an array"),
                    _ => return non_object("a scalar"),
                };
                Out::List(
                    members
                        .iter()
                        .map(|(k, v)| match f.op {
                            _ if keys => Ok(Some(k.clone())),
                            Op::EachValuesText => element(v, flavor, true),
                            _ => element(v, flavor, false),
                        })
                        .collect::<Result<_>>()?,
                )
            }
        })
    }

    fn arg(&self, i: usize) -> Result<&ArrayRef> {
        self.arrays.get(i).ok_or_else(|| {
            Error::input(
                InputError::UndefinedFunction,
                format!("function {} needs more arguments", self.function.name),
            )
        })
    }

    /// Argument `i` as JSON text.
    fn to_json(&self, row: usize, i: usize) -> Result<String> {
        to_json(self.arg(i)?, row, &self.fields[i], &self.zone)
    }

    /// JSON text built by a function, as the flavor's value.
    fn in_flavor(&self, text: String, flavor: Flavor) -> Result<Out> {
        Ok(Out::Text(match flavor {
            Flavor::Json => text,
            Flavor::Jsonb => super::value::parse_jsonb(&text)?.to_string(),
        }))
    }

    /// `json_build_object(k1, v1, ...)`: `{"k1" : v1, ...}` (json writes
    /// ` : ` between key and value).
    fn build_object(&self, row: usize, flavor: Flavor) -> Result<Out> {
        if self.arrays.len() % 2 == 1 {
            return Err(ops::invalid(
                "argument list must have even number of elements",
            ));
        }
        let mut members = Vec::new();
        for pair in (0..self.arrays.len()).step_by(2) {
            let key = scalar_at(&self.arrays[pair], row)?;
            if key.is_null() {
                return Err(ops::invalid("null value not allowed for object key"));
            }
            let key = self.key_text(&key, pair, row)?;
            members.push(format!(
                "{} : {}",
                quoted(&key),
                self.to_json(row, pair + 1)?
            ));
        }
        self.in_flavor(format!("{{{}}}", members.join(", ")), flavor)
    }

    /// An object key's text (a value's text as PostgreSQL prints it).
    fn key_text(&self, key: &ScalarValue, i: usize, row: usize) -> Result<String> {
        Ok(match key {
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
            _ => {
                let json = self.to_json(row, i)?;
                match parse(&json)?.value {
                    Value::String(s) => s,
                    _ => json,
                }
            }
        })
    }

    /// `json_object_agg`'s end: `{ "k" : v, ... }` from a list of
    /// two-item lists.
    fn object_of(&self, row: usize, flavor: Flavor) -> Result<Out> {
        let pairs = self.text_list(row, 0)?;
        let mut members = Vec::new();
        for pair in pairs.chunks(2) {
            let (Some(Some(key)), Some(value)) = (pair.first(), pair.get(1)) else {
                return Err(ops::invalid("field name must not be null"));
            };
            // The key's JSON (`to_json`): a string's contents, else the
            // JSON text (a number's digits).
            let key = match parse(key)?.value {
                Value::String(s) => s,
                _ => key.clone(),
            };
            let value = value.as_deref().unwrap_or("null");
            members.push(format!("{} : {value}", quoted(&key)));
        }
        match members.is_empty() {
            true => self.in_flavor("{}".into(), flavor),
            false => self.in_flavor(format!("{{ {} }}", members.join(", ")), flavor),
        }
    }

    /// Argument `i` as a path: a text array, or its text (`'{a,0}'`).
    fn path(&self, row: usize, i: usize) -> Result<Vec<Step>> {
        self.text_list(row, i)?
            .into_iter()
            .enumerate()
            .map(|(at, s)| {
                s.map(Step::Key).ok_or_else(|| {
                    ops::invalid(&format!("path element at position {} is null", at + 1))
                })
            })
            .collect()
    }

    /// Argument `i` as a list of texts: an array, or an array's text.
    fn text_list(&self, row: usize, i: usize) -> Result<Vec<Option<String>>> {
        match scalar_at(self.arg(i)?, row)? {
            ScalarValue::List(list) => {
                let items = list.value(0);
                (0..items.len())
                    .map(|j| {
                        Ok(match items.is_null(j) {
                            true => None,
                            false => Some(scalar_at(&items, j)?.to_string()),
                        })
                    })
                    .collect()
            }
            other => text_array(&other.to_string()),
        }
    }
}

/// Whether a number's text is zero (`0.000`), not a value too small for a
/// float.
fn zero(n: &str) -> bool {
    n.bytes().all(|b| matches!(b, b'0' | b'.' | b'-'))
}

/// A path step from `->`'s right operand: text is a key, an integer a
/// position.
fn step(value: &ScalarValue) -> Result<Step> {
    Ok(match value {
        ScalarValue::Int8(Some(i)) => Step::Index(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Step::Index(i64::from(*i)),
        ScalarValue::Int32(Some(i)) => Step::Index(i64::from(*i)),
        ScalarValue::Int64(Some(i)) => Step::Index(*i),
        other => Step::Key(other.to_string()),
    })
}

/// `json -> step` (`by_path` false) and `#>` (true) on `json`: the
/// member's text as written. `#>` reads a text step as a position in an
/// array; `->` finds nothing in an array by text.
fn json_get(node: &Node<'_>, path: &[Step], by_path: bool, as_text: bool) -> Result<Out> {
    let mut at = node;
    for step in path {
        let next = match (&at.value, step) {
            // `json -> 1` finds no member; `#>` reads every step as text.
            (Value::Object(_), Step::Index(_)) if !by_path => None,
            // The last of repeated keys, as PostgreSQL finds it.
            (Value::Object(members), step) => {
                let key = match step {
                    Step::Key(k) => k.clone(),
                    Step::Index(i) => i.to_string(),
                };
                members
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v)
            }
            (Value::Array(items), step) => {
                let index = match step {
                    Step::Index(i) => Some(*i),
                    Step::Key(k) if by_path => k.parse::<i32>().ok().map(i64::from),
                    Step::Key(_) => None,
                };
                index.and_then(|i: i64| {
                    let at = if i < 0 { items.len() as i64 + i } else { i };
                    usize::try_from(at).ok().and_then(|at| items.get(at))
                })
            }
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return Ok(Out::Null),
        }
    }
    Ok(match (&at.value, as_text) {
        (Value::Null, true) => Out::Null,
        (Value::String(s), true) => Out::Text(sql_text(s)?),
        _ => Out::Text(at.text.to_string()),
    })
}

/// An array item for `json_array_elements` (`_text`: a string's
/// contents, null as NULL).
fn element(item: &Node<'_>, flavor: Flavor, as_text: bool) -> Result<Option<String>> {
    Ok(match (&item.value, as_text) {
        (Value::Null, true) => None,
        (Value::String(s), true) => Some(sql_text(s)?),
        _ => Some(match flavor {
            Flavor::Json => item.text.to_string(),
            Flavor::Jsonb => item.to_jsonb()?.to_string(),
        }),
    })
}

/// `json_strip_nulls`: the value written again without spaces (as
/// PostgreSQL writes it), its members in their order, null members left
/// out at every depth.
fn without_nulls(node: &Node<'_>) -> String {
    match &node.value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(without_nulls).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .filter(|(_, v)| !matches!(v.value, Value::Null))
                .map(|(k, v)| format!("{}:{}", quoted(k), without_nulls(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        // Strings written again, escaped as PostgreSQL escapes them.
        Value::String(s) => quoted(s),
        _ => node.text.to_string(),
    }
}

/// A PostgreSQL array's text (`{a,"b c",NULL}`) as its items: the
/// one-dimensional arrays paths and key lists are given as.
pub fn text_array(text: &str) -> Result<Vec<Option<String>>> {
    let malformed = || {
        Error::input(
            InputError::InvalidText,
            format!("malformed array literal: \"{text}\""),
        )
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(malformed)?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.push(chars.next().ok_or_else(malformed)?),
                    Some(c) => item.push(c),
                    None => return Err(malformed()),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                match c {
                    '\\' => {
                        chars.next();
                        item.push(chars.next().ok_or_else(malformed)?);
                    }
                    '{' | '}' | '"' => return Err(malformed()),
                    c => {
                        item.push(c);
                        chars.next();
                    }
                }
            }
            item = item.trim_end().to_string();
            if item.is_empty() {
                return Err(malformed());
            }
        }
        let null = !quoted && item.eq_ignore_ascii_case("NULL");
        items.push((!null).then_some(item));
        match chars.next() {
            Some(',') => continue,
            None => return Ok(items),
            Some(_) => return Err(malformed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_text_as_postgresql_reads_it() {
        let items = |t: &str| text_array(t).unwrap();
        assert_eq!(items("{a,b}"), [Some("a".into()), Some("b".into())]);
        assert_eq!(
            items("{ a , \"b c\" ,NULL}"),
            [Some("a".into()), Some("b c".into()), None]
        );
        assert_eq!(items("{}"), Vec::<Option<String>>::new());
        assert_eq!(items("{\"a\\\"\"}"), [Some("a\"".into())]);
        assert!(text_array("a,b").is_err());
        assert!(text_array("{a,}").is_err());
    }
}
