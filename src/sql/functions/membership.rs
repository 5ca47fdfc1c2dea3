//! `pg_any_equal(array, x)`: whether `x = ANY (array)`, with PostgreSQL's
//! NULLs: NULL when the array is, false when it is empty, NULL when `x` is
//! NULL or when no element equals `x` and one is NULL, else whether one
//! equals `x`. `pg_in_array(array, x)`: the same but false for a NULL
//! array, `x IN (subquery)` of the array of the subquery's values (NULL
//! without rows). `sql::parse_rules` writes `x = ANY (array)` and, in a
//! select list, `x IN (subquery)` so: DataFusion's `array_has` says false
//! where PostgreSQL says NULL, and DataFusion plans `IN (subquery)` only in
//! WHERE. The array is named once, so a subquery's array is computed once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, Scalar};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::like_arguments;

pub const ANY_EQUAL: &str = "pg_any_equal";
pub const IN_ARRAY: &str = "pg_in_array";

/// `pg_any_equal` and `pg_in_array`.
pub fn membership_functions() -> [ScalarUDF; 2] {
    [(ANY_EQUAL, false), (IN_ARRAY, true)].map(|(name, null_is_empty)| {
        ScalarUDF::new_from_impl(AnyEqual {
            name,
            null_is_empty,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AnyEqual {
    name: &'static str,
    /// Whether a NULL array is read as an empty one.
    null_is_empty: bool,
    signature: Signature,
}

impl ScalarUDFImpl for AnyEqual {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The elements and `x` brought to the type they compare in.
    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let [array, value] = arg_types else {
            return plan_err!("{} takes an array and a value", self.name);
        };
        let element = match array {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type()
            }
            DataType::Null => &DataType::Null,
            other => {
                return plan_err!("op ANY/ALL (array) requires array on right side, not {other}")
            }
        };
        let Some(common) = comparison_coercion(element, value) else {
            return plan_err!("operator does not exist: {value} = {element}");
        };
        let list = DataType::List(Arc::new(Field::new_list_field(common.clone(), true)));
        Ok(vec![list, common])
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (lists, values) = (arrays[0].as_list::<i32>(), &arrays[1]);
        let mut result = BooleanBuilder::with_capacity(lists.len());
        for row in 0..lists.len() {
            let elements = lists.value(row);
            let answer = match () {
                _ if lists.is_null(row) => self.null_is_empty.then_some(false),
                _ if elements.is_empty() => Some(false),
                _ if values.is_null(row) => None,
                _ if eq(&elements, &Scalar::new(values.slice(row, 1)))?.true_count() > 0 => {
                    Some(true)
                }
                _ if elements.null_count() > 0 => None,
                _ => Some(false),
            };
            result.append_option(answer);
        }
        like_arguments(&args.args, Arc::new(result.finish()) as ArrayRef)
    }
}
