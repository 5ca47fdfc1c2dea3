//! The PostgreSQL type of an Arrow field: what a result column is described
//! as (RowDescription) and what `pg_typeof` answers; and the Arrow type of
//! a SQL type where DataFusion has none or another ([`PgTypePlanner`]).
//!
//! Most follow from the Arrow type (arrow-pg's mapping); where several
//! PostgreSQL types share one (`varchar`, `bpchar` and `text` are Utf8; a
//! `regtype` is an Int32 oid; an `int2vector` is a list, as `int2[]`) the
//! field's [`PG_TYPE_METADATA`] names it.
//! Numerics above 38 digits (Decimal256, which arrow-pg does not map) are
//! `numeric`; a FixedSizeBinary(16) is a `uuid`.

use std::sync::Arc;

use arrow_pg::datatypes::{field_into_pg_type, PG_OID_ALIAS_KEY};
use datafusion::arrow::array::Int32Array;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;
use pgwire::api::Type;

use super::json::Flavor;
use crate::catalog::{SqlType, PG_TYPE_METADATA};
use crate::error::{Error, Result};

/// The Arrow type of `uuid` values.
pub const UUID: DataType = DataType::FixedSizeBinary(16);

/// The PostgreSQL type of values of `field`.
pub fn pg_type(field: &Field) -> Result<Type> {
    let named = field.metadata().get(PG_TYPE_METADATA).map(String::as_str);
    // The name only where the Arrow type agrees: a cast keeps its source
    // column's metadata (`code::int` of a char(4) column is an integer).
    if let (None, DataType::List(element)) = (named, field.data_type()) {
        if let Some(array) = pg_type(element).ok().and_then(|t| array_type(&t)) {
            return Ok(array);
        }
    }
    Ok(match (named, field.data_type()) {
        (Some("varchar"), DataType::Utf8) => Type::VARCHAR,
        (Some("bpchar"), DataType::Utf8) => Type::BPCHAR,
        (Some("name"), DataType::Utf8) => Type::NAME,
        (Some("regtype"), DataType::Int32) => Type::REGTYPE,
        (Some("oid"), DataType::Int32) => Type::OID,
        (Some("json"), DataType::Utf8) => Type::JSON,
        (Some("jsonb"), DataType::Utf8) => Type::JSONB,
        (Some("int2vector"), DataType::List(_)) => Type::INT2_VECTOR,
        (Some("oidvector"), DataType::List(_)) => Type::OID_VECTOR,
        (_, DataType::List(element)) if is_oid(element) => Type::OID_ARRAY,
        // datafusion-pg-catalog marks catalog columns that hold object ids
        // as the alias types (`pg_attribute.atttypid` a regtype, `attrelid`
        // a regclass) to compare them with names; PostgreSQL's are `oid`s,
        // printed as numbers (pgjdbc reads `atttypid` as one).
        (None, DataType::Int32) if catalog_oid(field) => Type::OID,
        (_, DataType::Decimal256(..) | DataType::LargeBinary) => Type::NUMERIC,
        (_, t) if *t == UUID => Type::UUID,
        _ => field_into_pg_type(&Arc::new(field.clone()))
            .map_err(|e| Error::Internal(format!("cannot describe a {field}: {e}")))?,
    })
}

/// SQL types as ShardForge plans them where DataFusion does not: `uuid`
/// is FixedSizeBinary(16) (`sql::uuid`), `time` counts microseconds, as
/// PostgreSQL's and ShardForge's columns do (DataFusion's, nanoseconds).
/// The others go to datafusion-pg-catalog's planner (`regclass`,
/// `pg_catalog.int4`, ...), which this one replaces in the session.
#[derive(Debug)]
pub struct PgTypePlanner;

impl TypePlanner for PgTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> DFResult<Option<FieldRef>> {
        // Unnamed, nullable and without metadata: a cast to the type
        // alone, as DataFusion's own types are.
        let field = |data_type| Ok(Some(Arc::new(Field::new("", data_type, true))));
        match sql_type {
            ast::DataType::Uuid => field(UUID),
            ast::DataType::JSON => Ok(Some(Arc::new(Flavor::Json.field("")))),
            ast::DataType::JSONB => Ok(Some(Arc::new(Flavor::Jsonb.field("")))),
            ast::DataType::Time(
                None,
                ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone,
            ) => field(DataType::Time64(TimeUnit::Microsecond)),
            // A value of its own scale (`numeric::NumericValues`).
            ast::DataType::Numeric(ast::ExactNumberInfo::None)
            | ast::DataType::Decimal(ast::ExactNumberInfo::None)
            | ast::DataType::Dec(ast::ExactNumberInfo::None) => {
                field(SqlType::UnconstrainedNumeric.to_arrow())
            }
            // A cast to `oid` is an `oid` (not a `regtype` when its operand
            // was one: a cast without metadata keeps its operand's).
            // Casts to `regtype` are `regtype_in` calls (`regclass::RegCasts`).
            other if is_oid_type(other) => Ok(Some(Arc::new(oid_field("")))),
            // `oid[]`: asyncpg's type introspection takes one, and a
            // client that was told `int4[]` for it looks `int4[]` up with
            // the same query, without end.
            ast::DataType::Array(
                ast::ArrayElemTypeDef::SquareBracket(element, _)
                | ast::ArrayElemTypeDef::AngleBracket(element),
            ) if is_oid_type(element) => field(DataType::List(Arc::new(oid_field("item")))),
            // `numeric[]`: its elements are `numeric(38, 10)`, as a
            // `numeric[]` column's are (`SqlType::to_arrow`).
            ast::DataType::Array(
                ast::ArrayElemTypeDef::SquareBracket(element, _)
                | ast::ArrayElemTypeDef::AngleBracket(element),
            ) if matches!(
                element.as_ref(),
                ast::DataType::Numeric(ast::ExactNumberInfo::None)
                    | ast::DataType::Decimal(ast::ExactNumberInfo::None)
            ) =>
            {
                let element = Field::new_list_field(DataType::Decimal128(38, 10), true);
                field(DataType::List(Arc::new(element)))
            }
            // `name` (identifiers in the catalog) is text, typed `name`
            // (not cut to 63 bytes, as PostgreSQL cuts it).
            other if catalog_type_name(other) == "name" => {
                let name = [(PG_TYPE_METADATA.to_string(), "name".to_string())];
                Ok(Some(Arc::new(
                    Field::new("", DataType::Utf8, true).with_metadata(name.into()),
                )))
            }
            other => PgOidTypePlanner.plan_type_field(other),
        }
    }
}

/// The array type of `element` (`int4[]` of `int4`), for the element
/// types an array column or result may have.
pub fn array_type(element: &Type) -> Option<Type> {
    const ARRAYS: [(Type, Type); 21] = [
        (Type::BOOL, Type::BOOL_ARRAY),
        (Type::INT2, Type::INT2_ARRAY),
        (Type::INT4, Type::INT4_ARRAY),
        (Type::INT8, Type::INT8_ARRAY),
        (Type::FLOAT4, Type::FLOAT4_ARRAY),
        (Type::FLOAT8, Type::FLOAT8_ARRAY),
        (Type::NUMERIC, Type::NUMERIC_ARRAY),
        (Type::TEXT, Type::TEXT_ARRAY),
        (Type::VARCHAR, Type::VARCHAR_ARRAY),
        (Type::BPCHAR, Type::BPCHAR_ARRAY),
        (Type::NAME, Type::NAME_ARRAY),
        (Type::BYTEA, Type::BYTEA_ARRAY),
        (Type::DATE, Type::DATE_ARRAY),
        (Type::TIME, Type::TIME_ARRAY),
        (Type::TIMESTAMP, Type::TIMESTAMP_ARRAY),
        (Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY),
        (Type::INTERVAL, Type::INTERVAL_ARRAY),
        (Type::UUID, Type::UUID_ARRAY),
        (Type::JSON, Type::JSON_ARRAY),
        (Type::JSONB, Type::JSONB_ARRAY),
        (Type::OID, Type::OID_ARRAY),
    ];
    ARRAYS
        .iter()
        .find(|(e, _)| e == element)
        .map(|(_, array)| array.clone())
}

/// An `oid` field named `name`: an Int32 marked as one.
fn oid_field(name: &str) -> Field {
    let oid = [(PG_TYPE_METADATA.to_string(), "oid".to_string())];
    Field::new(name, DataType::Int32, true).with_metadata(oid.into())
}

fn is_oid(field: &Field) -> bool {
    field.data_type() == &DataType::Int32
        && field.metadata().get(PG_TYPE_METADATA).map(String::as_str) == Some("oid")
}

/// `oid` or `pg_catalog.oid`.
fn is_oid_type(sql_type: &ast::DataType) -> bool {
    catalog_type_name(sql_type) == "oid"
}

/// The name of `sql_type`, lower case, without `pg_catalog.`.
fn catalog_type_name(sql_type: &ast::DataType) -> String {
    let name = sql_type.to_string().to_lowercase();
    name.strip_prefix("pg_catalog.")
        .unwrap_or(&name)
        .to_string()
}

/// Whether `field` is a catalog column of object ids (see [`pg_type`]);
/// `regproc` columns (`pg_type.typinput`) are `regproc` in PostgreSQL too.
fn catalog_oid(field: &Field) -> bool {
    field
        .metadata()
        .get(PG_OID_ALIAS_KEY)
        .is_some_and(|alias| alias != "regproc")
}

/// `pg_typeof(any)`: the type of its argument, a `regtype` (its text is the
/// type's name, `integer`).
pub fn pg_typeof() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// A `regtype` result field named `name`.
pub fn regtype_field(name: &str) -> FieldRef {
    let regtype = [(PG_TYPE_METADATA.to_string(), "regtype".to_string())];
    Arc::new(Field::new(name, DataType::Int32, true).with_metadata(regtype.into()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DFResult<FieldRef> {
        Ok(regtype_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let field = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Plan("pg_typeof takes one argument".into()))?;
        let oid = match field.data_type() {
            // An untyped NULL: PostgreSQL's `unknown`. (An untyped string
            // literal is text here; PostgreSQL's is `unknown` too.)
            DataType::Null => Type::UNKNOWN.oid(),
            _ => pg_type(field)
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .oid(),
        } as i32;
        Ok(
            match args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                true => ColumnarValue::Scalar(ScalarValue::Int32(Some(oid))),
                false => {
                    ColumnarValue::Array(Arc::new(Int32Array::from(vec![oid; args.number_rows])))
                }
            },
        )
    }
}

/// PostgreSQL has no unsigned integers: DataFusion's functions that count
/// (`row_number()`, `rank()`, `cardinality`, `array_length`, ...) return
/// them, and a UInt64 is described as `numeric`, so psycopg read
/// `row_number()` as `Decimal('1')` and `pg_typeof` said numeric. Such a
/// function's value is cast to PostgreSQL's type: `integer` for the array
/// functions and `ntile()`, `bigint` for the others (a window function's
/// value where a projection reads its column).
#[derive(Debug)]
pub struct SignedIntegers;

impl AnalyzerRule for SignedIntegers {
    fn name(&self) -> &str {
        "postgresql_signed_integers"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let projection = matches!(node, LogicalPlan::Projection(_));
            super::analyze::rewrite_node_expressions(node, true, |expr, schema| {
                let unsigned = |e: &Expr| {
                    e.get_type(schema)
                        .is_ok_and(|t| matches!(t, DataType::UInt32 | DataType::UInt64))
                };
                Ok(match &expr {
                    Expr::ScalarFunction(call) if unsigned(&expr) => {
                        let to = match call.name() {
                            "cardinality" | "array_length" | "array_ndims" | "array_position" => {
                                DataType::Int32
                            }
                            _ => DataType::Int64,
                        };
                        Transformed::yes(cast(expr, to))
                    }
                    // `ntile()` is PostgreSQL's one `integer` window function.
                    Expr::Column(column) if projection && unsigned(&expr) => {
                        let to = match column.name.starts_with("ntile(") {
                            true => DataType::Int32,
                            false => DataType::Int64,
                        };
                        Transformed::yes(cast(expr, to))
                    }
                    _ => Transformed::no(expr),
                })
            })
        })
        .map(|t| t.data)
    }
}
