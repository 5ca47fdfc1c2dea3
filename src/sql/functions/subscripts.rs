//! `generate_subscripts(array, dim [, reverse])`, PostgreSQL's set of an
//! array's subscripts, and `information_schema._pg_expandarray(array)`, its
//! elements with their positions as `(x, n)` records (planned as
//! `unnest(pg_expandarray_list(array))`, `rewrite::composite_fields`).
//!
//! `generate_subscripts` In a select list it is planned as
//! `unnest(generate_subscripts_list(...))` (`rewrite::expand_set_returning_items`),
//! beside the `unnest` of the same array it usually goes with (SQLAlchemy's
//! reflection reads `pg_index.indkey` so).
//!
//! `array_fill(value, dims [, lower_bounds])` makes an array of `dims[1]`
//! copies of `value`.
//!
//! ShardForge's arrays have one dimension, numbered from 1 (`array_fill`
//! of more dimensions, or from another lower bound, is 0A000); an
//! `int2vector` or `oidvector` (`pg_index.indkey`) is numbered from 0, as
//! in PostgreSQL, in `generate_subscripts` and in subscripts
//! (`indkey[0]`, [`pg_subscripts`]). Another dimension has no subscripts, and a NULL array
//! none either.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, ListArray, ListBuilder, PrimitiveBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int32Type, Int64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::common::{exec_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    cast as cast_expr, lit, Case, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::catalog::PG_TYPE_METADATA;
use crate::sql::analyze::like_arguments;

/// The name `_pg_expandarray` is planned under.
pub const PG_EXPANDARRAY_LIST: &str = "pg_expandarray_list";

pub fn array_fill() -> ScalarUDF {
    ScalarUDF::new_from_impl(ArrayFill {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayFill {
    signature: Signature,
}

/// PostgreSQL's largest array (`MaxArraySize`).
const MAX_ARRAY_SIZE: i64 = 134_217_727;

impl ScalarUDFImpl for ArrayFill {
    fn name(&self) -> &str {
        "array_fill"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The value as it is, the dimensions and lower bounds as lists of
    /// bigints.
    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let integers = DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)));
        match arg_types {
            [value, rest @ ..] if (1..=2).contains(&rest.len()) => Ok([value.clone()]
                .into_iter()
                .chain(rest.iter().map(|_| integers.clone()))
                .collect()),
            _ => exec_err!("array_fill takes a value, dimensions and lower bounds"),
        }
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            args[0].clone(),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let value = &arrays[0];
        let bounds: Vec<&ListArray> = arrays[1..].iter().map(|a| a.as_list::<i32>()).collect();
        let mut lengths = Vec::with_capacity(value.len());
        let mut copies = Vec::new();
        for row in 0..value.len() {
            let mut rows = bounds.iter().map(|list| {
                if list.is_null(row) {
                    return Err(super::input_error(
                        crate::error::InputError::NullValueNotAllowed,
                        "dimension array or low bound array cannot be null",
                    ));
                }
                let items = list.value(row);
                let items = items.as_primitive::<Int64Type>();
                Ok(items.iter().collect::<Vec<Option<i64>>>())
            });
            let dims = rows.next().transpose()?.unwrap_or_default();
            let lower = rows.next().transpose()?;
            let length = match (dims.as_slice(), lower.as_deref()) {
                ([], None | Some([])) => 0,
                ([_], Some([bound])) if *bound != Some(1) => {
                    return Err(crate::error::Error::unsupported(
                        "arrays numbered from another lower bound than 1 (array_fill)",
                    )
                    .into())
                }
                ([None], _) => {
                    return Err(super::input_error(
                        crate::error::InputError::NullValueNotAllowed,
                        "dimension values cannot be null",
                    ))
                }
                ([Some(n)], _) if !(0..=MAX_ARRAY_SIZE).contains(n) => {
                    return Err(super::input_error(
                        crate::error::InputError::ProgramLimitExceeded,
                        format!("array size exceeds the maximum allowed ({MAX_ARRAY_SIZE})"),
                    ))
                }
                ([Some(n)], None | Some([_])) => *n,
                _ => {
                    return Err(crate::error::Error::unsupported(
                        "arrays of more than one dimension (array_fill)",
                    )
                    .into())
                }
            };
            lengths.push(length as usize);
            copies.extend(std::iter::repeat_n(row as u64, length as usize));
        }
        let indices = datafusion::arrow::array::UInt64Array::from(copies);
        let values = datafusion::arrow::compute::take(value.as_ref(), &indices, None)?;
        let field = Arc::new(Field::new_list_field(value.data_type().clone(), true));
        let list = ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), values, None)?;
        like_arguments(&args.args, Arc::new(list))
    }
}

/// `pg_expandarray_list(array)`: a list of `{x: element, n: position}`.
pub fn pg_expandarray_list() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn expanded_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element.clone(), true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        PG_EXPANDARRAY_LIST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        match &args[0] {
            DataType::List(element) => Ok(DataType::new_list(
                DataType::Struct(expanded_fields(element.data_type())),
                true,
            )),
            other => exec_err!("_pg_expandarray takes an array, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(lists) = arrays[0].as_list_opt::<i32>() else {
            return exec_err!("_pg_expandarray takes an array");
        };
        // The same offsets and elements, each paired with its position.
        let offsets = lists.offsets();
        let positions: Int32Array = (0..lists.len())
            .flat_map(|row| {
                let len = offsets[row + 1] - offsets[row];
                1..=len
            })
            .collect();
        let first = offsets[0] as usize;
        let elements = lists
            .values()
            .slice(first, offsets[lists.len()] as usize - first);
        let fields = expanded_fields(elements.data_type());
        let records = StructArray::try_new(
            fields.clone(),
            vec![elements, Arc::new(positions) as ArrayRef],
            None,
        )?;
        let rebased = OffsetBuffer::new(offsets.iter().map(|o| o - offsets[0]).collect());
        let list = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(fields), true)),
            rebased,
            Arc::new(records),
            lists.nulls().cloned(),
        )?;
        like_arguments(&args.args, Arc::new(list) as ArrayRef)
    }
}

/// The name `generate_subscripts` is planned under.
pub const GENERATE_SUBSCRIPTS_LIST: &str = "generate_subscripts_list";

pub fn generate_subscripts_list() -> ScalarUDF {
    ScalarUDF::new_from_impl(GenerateSubscripts {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GenerateSubscripts {
    signature: Signature,
}

impl ScalarUDFImpl for GenerateSubscripts {
    fn name(&self) -> &str {
        GENERATE_SUBSCRIPTS_LIST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::new_list(DataType::Int32, true))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        if !(2..=3).contains(&args.args.len()) {
            return exec_err!(
                "generate_subscripts takes an array, a dimension and an optional reverse flag"
            );
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if !matches!(arrays[0].data_type(), DataType::List(_) | DataType::Null) {
            return exec_err!(
                "generate_subscripts takes an array, not {}",
                arrays[0].data_type()
            );
        }
        let from_zero = args.arg_fields[0]
            .metadata()
            .get(PG_TYPE_METADATA)
            .is_some_and(|t| t == "int2vector" || t == "oidvector");
        let dims = cast(&arrays[1], &DataType::Int64)?;
        let dims = dims.as_primitive::<Int64Type>();
        let reverse = match arrays.get(2) {
            Some(flags) => Some(cast(flags, &DataType::Boolean)?),
            None => None,
        };
        let lists = arrays[0].as_list_opt::<i32>();
        let mut out = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new());
        for row in 0..arrays[0].len() {
            let len = match &lists {
                Some(lists) if lists.is_valid(row) && dims.is_valid(row) => lists.value_length(row),
                _ => {
                    out.append(false);
                    continue;
                }
            };
            let first = if from_zero { 0 } else { 1 };
            let mut subscripts: Vec<i32> = match dims.value(row) {
                1 => (first..first + len).collect(),
                _ => Vec::new(),
            };
            if reverse
                .as_ref()
                .is_some_and(|r| r.is_valid(row) && r.as_boolean().value(row))
            {
                subscripts.reverse();
            }
            out.values().extend(subscripts.into_iter().map(Some));
            out.append(true);
        }
        like_arguments(&args.args, Arc::new(out.finish()) as ArrayRef)
    }
}

/// Subscripts as PostgreSQL reads them, where DataFusion counts a
/// negative one from the array's end (`a[-1]` its last element, `a[-2:3]`
/// its last two): an array's subscripts run from 1 (from 0 in an
/// `int2vector` or `oidvector`: `indkey[0]` is the key's first column),
/// an element outside them is NULL and a slice takes the part of its
/// bounds inside them (`a[-5:2]` is `a[1:2]`, `a[2:-1]` is empty). An
/// expression rewrite before type coercion (`analyze::ExpressionRewrites`).
pub fn pg_subscripts(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::ScalarFunction(mut call) = expr else {
        return Transformed::no(expr);
    };
    let arity = match call.name() {
        "array_element" => 2,
        "array_slice" => 3,
        _ => 0,
    };
    if arity == 0 || call.args.len() < arity {
        return Transformed::no(Expr::ScalarFunction(call));
    }
    let from_zero = call.args[0]
        .to_field(schema)
        .is_ok_and(|(_, f)| crate::sql::output::is_vector(&f));
    // Numbered from 1 as DataFusion numbers them.
    let numbered = |subscript: Expr| match from_zero {
        true => subscript + lit(1i64),
        false => subscript,
    };
    // Below the first subscript: NULL for an element, the first one for
    // a slice's lower bound; for its upper bound 0, which DataFusion reads
    // as "before the first" (an empty slice).
    let at_least = |subscript: Expr, floor: i64, below: Expr| {
        // As a bigint: DataFusion's `array_length` is unsigned, and the
        // common type of that and the bounds here a decimal.
        let subscript = cast_expr(numbered(subscript), DataType::Int64);
        Expr::Case(Case::new(
            None,
            vec![(Box::new(subscript.clone().lt(lit(floor))), Box::new(below))],
            Some(Box::new(subscript)),
        ))
    };
    if call.name() == "array_element" {
        let index = call.args.remove(1);
        call.args
            .insert(1, at_least(index, 1, lit(ScalarValue::Int64(None))));
    } else {
        let lower = call.args.remove(1);
        call.args.insert(1, at_least(lower, 1, lit(1i64)));
        let upper = call.args.remove(2);
        call.args.insert(2, at_least(upper, 0, lit(0i64)));
    }
    Transformed::yes(Expr::ScalarFunction(call))
}
