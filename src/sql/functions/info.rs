//! System information functions psql's and tools' catalog queries call
//! (`\dt+`, `\l+`, `\df`, `\dn+`, `\dT`):
//!
//! - `pg_size_pretty(bigint)`, as PostgreSQL formats a size;
//! - the size functions (`pg_table_size`, `pg_database_size`, ...) are
//!   NULL: ShardForge does not measure a table's share of its shard
//!   groups yet, and a guessed size would be a wrong answer;
//! - the comment functions (`obj_description`, `col_description`,
//!   `shobj_description`) are NULL: there is no COMMENT ON, so no object
//!   has one;
//! - `pg_function_is_visible`, `pg_type_is_visible`,
//!   `pg_collation_is_visible` and the other `*_is_visible` of objects
//!   only `pg_catalog` holds (operators, conversions, text search
//!   configurations, operator classes: psql's `\do`, `\dc`, `\dF`) are
//!   true: `pg_catalog` is always searched;
//! - `pg_tablespace_location` is empty, as PostgreSQL's for its two
//!   built-in tablespaces, the only ones (psql's `\db`);
//! - `pg_get_function_result` and `pg_get_function_arguments` are NULL:
//!   there are no user functions, and the built-in ones are not described;
//! - `pg_get_serial_sequence` is NULL: there are no sequences yet, so no
//!   column owns one (SQLAlchemy's reflection asks it of every column).

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::like_arguments;

/// The functions of this module.
pub fn udfs() -> Vec<ScalarUDF> {
    let mut udfs = vec![pg_size_pretty()];
    let sizes = [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_indexes_size",
        "pg_database_size",
    ];
    udfs.extend(sizes.iter().map(|n| constant(n, ScalarValue::Int64(None))));
    let texts = [
        "obj_description",
        "col_description",
        "shobj_description",
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_serial_sequence",
    ];
    udfs.push(constant(
        "pg_tablespace_location",
        ScalarValue::Utf8(Some(String::new())),
    ));
    udfs.extend(texts.iter().map(|n| constant(n, ScalarValue::Utf8(None))));
    let visible = [
        "pg_function_is_visible",
        "pg_type_is_visible",
        "pg_collation_is_visible",
        "pg_operator_is_visible",
        "pg_opclass_is_visible",
        "pg_opfamily_is_visible",
        "pg_conversion_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
        "pg_statistics_obj_is_visible",
    ];
    udfs.extend(
        visible
            .iter()
            .map(|n| constant(n, ScalarValue::Boolean(Some(true)))),
    );
    udfs
}

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes below 10 kB, then the
/// first of kB, MB, GB, TB and PB in which the size, kept to one more
/// bit, is below 20 units minus one, rounded half away from zero.
fn size_pretty(size: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if size.unsigned_abs() < LIMIT as u64 {
        return format!("{size} bytes");
    }
    // One bit more than the unit, for the rounding; divided, not shifted,
    // so negative sizes round as positive ones do.
    let mut size = size / (1 << 9);
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    for (i, unit) in UNITS.iter().enumerate() {
        if size.unsigned_abs() < (LIMIT * 2 - 1) as u64 || i == UNITS.len() - 1 {
            return format!("{} {unit}", half_rounded(size));
        }
        size /= 1 << 10;
    }
    unreachable!("the last unit takes any size")
}

fn pg_size_pretty() -> ScalarUDF {
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let sizes = args[0].clone().into_array(1)?;
            let texts: StringArray = sizes
                .as_primitive::<Int64Type>()
                .iter()
                .map(|s| s.map(size_pretty))
                .collect();
            like_arguments(args, Arc::new(texts))
        }),
    )
}

/// A function of any arguments whose value is `value`.
fn constant(name: &str, value: ScalarValue) -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant {
        name: name.to_string(),
        signature: Signature::variadic_any(Volatility::Stable),
        value,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: String,
    signature: Signature,
    value: ScalarValue,
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let array: ArrayRef = match &self.value {
            ScalarValue::Boolean(Some(b)) => {
                Arc::new(BooleanArray::from(vec![*b; args.number_rows]))
            }
            other => new_null_array(&other.data_type(), args.number_rows),
        };
        Ok(ColumnarValue::Array(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_in_postgresql() {
        for (size, text) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (-10240, "-10 kB"),
            (20 * 1024 - 1, "20 kB"),
            (20 * 1024 * 1024 - 1, "20 MB"),
            (10 * 1024 * 1024, "10 MB"),
            (1_000_000_000, "954 MB"),
            (1 << 40, "1024 GB"),
            (i64::MAX, "8192 PB"),
            (i64::MIN, "-8192 PB"),
        ] {
            assert_eq!(size_pretty(size), text, "{size}");
        }
    }
}
