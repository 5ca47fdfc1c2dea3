//! `format_type(oid, typmod)` as PostgreSQL's: datafusion-pg-catalog's, but
//! an array type with a modifier prints its element with that modifier
//! (`numeric(8,2)[]`; the library dropped it: `numeric[]`), since an array
//! column's `atttypmod` is its element's.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion_pg_catalog::pg_catalog::format_type::create_format_type_udf;
use pgwire::api::Type;
use postgres_types::Kind;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FormatType {
    inner: ScalarUDF,
}

impl FormatType {
    pub fn new() -> Self {
        Self {
            inner: create_format_type_udf(),
        }
    }
}

/// The element type's oid of the array type `oid`, if it is one.
fn element_oid(oid: i32) -> Option<i32> {
    match Type::from_oid(u32::try_from(oid).ok()?)?.kind() {
        Kind::Array(element) => Some(element.oid() as i32),
        _ => None,
    }
}

impl ScalarUDFImpl for FormatType {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        self.inner.return_type(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let as_int32 = |a| datafusion::arrow::compute::cast(a, &DataType::Int32);
        let (oids, typmods) = (as_int32(&arrays[0])?, as_int32(&arrays[1])?);
        let (oids, typmods) = (
            oids.as_primitive::<Int32Type>(),
            typmods.as_primitive::<Int32Type>(),
        );
        // The rows that name an array type with a modifier: formatted as
        // their element, `[]` added.
        let arrays_with_modifier: Vec<bool> = oids
            .iter()
            .zip(typmods.iter())
            .map(|(oid, typmod)| {
                typmod.is_some_and(|m| m >= 0) && oid.and_then(element_oid).is_some()
            })
            .collect();
        if !arrays_with_modifier.contains(&true) {
            return self.inner.invoke_with_args(args);
        }
        let oids: Int32Array = oids
            .iter()
            .zip(&arrays_with_modifier)
            .map(|(oid, array)| match array {
                true => oid.and_then(element_oid),
                false => oid,
            })
            .collect();
        args.args = vec![
            ColumnarValue::Array(Arc::new(oids)),
            ColumnarValue::Array(Arc::new(typmods.clone())),
        ];
        let rows = args.number_rows;
        let names = self.inner.invoke_with_args(args)?.into_array(rows)?;
        let names: StringArray = names
            .as_string::<i32>()
            .iter()
            .zip(&arrays_with_modifier)
            .map(|(name, array)| match array {
                true => name.map(|n| format!("{n}[]")),
                false => name.map(str::to_string),
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(names)))
    }
}
