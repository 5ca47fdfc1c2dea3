//! `to_hex(integer)` as PostgreSQL's: the two's complement of the
//! argument's own width, `to_hex(-1)` of an `integer` being `ffffffff`
//! (of a `bigint`, sixteen digits). DataFusion's widened every integer to
//! 64 bits first, so a negative `integer` or `smallint` (a column of one
//! too) came out with sixteen digits.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::{plan_err, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::like_arguments;

pub fn to_hex() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToHex {
        // A smallint is taken as an integer (PostgreSQL finds the call
        // ambiguous, 42725).
        signature: Signature::uniform(
            1,
            vec![DataType::Int32, DataType::Int64],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToHex {
    signature: Signature,
}

impl ScalarUDFImpl for ToHex {
    fn name(&self) -> &str {
        "to_hex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let hex: StringArray = match input.data_type() {
            DataType::Int32 => input
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(|v| format!("{:x}", v as u32)))
                .collect(),
            DataType::Int64 => input
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| format!("{:x}", v as u64)))
                .collect(),
            other => return plan_err!("to_hex takes an integer, not {other}"),
        };
        like_arguments(&args.args, Arc::new(hex) as ArrayRef)
    }
}
