//! `EXTRACT(field FROM x)` and `date_part('field', x)` as PostgreSQL
//! answers them: EXTRACT is numeric (`extract(second ...)` is `1.500000`,
//! `extract(epoch ...)` of a timestamp has six decimals), `date_part` the
//! same value as double precision. DataFusion's `date_part` is an integer
//! for every field but epoch, and cuts the fraction of a second off.
//!
//! The fields are DataFusion's (which reads PostgreSQL's names and
//! plurals); the seconds come from its microseconds within the minute, to
//! which the scale gives the unit: `second` is that count with scale 6,
//! `milliseconds` with scale 3, `microseconds` with scale 0. PostgreSQL's
//! `year` (which has no year 0: 1 BC is -1, where DataFusion's is 0),
//! `century`, `decade` and `millennium` are computed from the year.

use std::sync::Arc;

use super::like_arguments;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{exec_err, plan_err, DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The scale of a numeric EXTRACT of seconds.
const MICROS_SCALE: i8 = 6;
const NUMERIC_PRECISION: u8 = 38;

/// `date_part` (double precision) or PostgreSQL's EXTRACT (numeric).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DatePart {
    name: &'static str,
    numeric: bool,
    signature: Signature,
}

impl DatePart {
    /// `date_part`, double precision.
    pub fn double_precision() -> Self {
        Self::new("date_part", false)
    }

    fn extract() -> Self {
        Self::new("extract", true)
    }

    fn new(name: &'static str, numeric: bool) -> Self {
        Self {
            name,
            numeric,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// How a field is read from DataFusion's `date_part`, and the scale of
/// the numeric it becomes.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// DataFusion's integer for this field name.
    Field,
    /// Seconds within the minute, in microseconds, shown at this scale.
    Micros(i8),
    /// Seconds since 1970: microseconds of a timestamp or time, days of a
    /// date, DataFusion's float for an interval.
    Epoch,
    /// Computed from the year: (divisor, whether it rounds up).
    Year(i32, bool),
    /// The year, BC ones negative from -1.
    YearAd,
}

fn source(part: &str) -> Source {
    match part.to_lowercase().as_str() {
        "second" | "seconds" | "s" | "sec" | "secs" => Source::Micros(MICROS_SCALE),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Source::Micros(3),
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Source::Micros(0),
        "epoch" => Source::Epoch,
        "year" | "years" | "y" | "yr" | "yrs" => Source::YearAd,
        "century" | "centuries" => Source::Year(100, true),
        "decade" | "decades" => Source::Year(10, false),
        "millennium" | "millennia" => Source::Year(1000, true),
        _ => Source::Field,
    }
}

/// The scale of the numeric EXTRACT of `part` from a value of `input`.
fn scale(part: &str, input: &DataType) -> i8 {
    match (source(part), input) {
        (Source::Micros(scale), _) => scale,
        (Source::Epoch, DataType::Date32 | DataType::Date64) => 0,
        (Source::Epoch, _) => MICROS_SCALE,
        _ => 0,
    }
}

fn part_of(args: &[Option<&ScalarValue>]) -> DFResult<String> {
    match args
        .first()
        .copied()
        .flatten()
        .and_then(|v| v.try_as_str().flatten())
    {
        Some(part) if !part.is_empty() => Ok(part.to_string()),
        _ => plan_err!("the field of EXTRACT / date_part must be a constant text"),
    }
}

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        let [_, input] = arg_types else {
            return plan_err!("{} takes a field and a value", self.name);
        };
        // An untyped literal is a timestamp, as PostgreSQL reads it.
        let input = match input {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            other => other.clone(),
        };
        Ok(vec![DataType::Utf8, input])
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        exec_err!("return_field_from_args is called instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let part = part_of(args.scalar_arguments)?;
        let data_type = match self.numeric {
            true => {
                let input = args.arg_fields[1].data_type();
                DataType::Decimal128(NUMERIC_PRECISION, scale(&part, input))
            }
            false => DataType::Float64,
        };
        Ok(Arc::new(Field::new(self.name, data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let part = match &args.args[0] {
            ColumnarValue::Scalar(value) => part_of(&[Some(value)])?,
            ColumnarValue::Array(_) => part_of(&[])?,
        };
        let input = args.args[1].clone().into_array(args.number_rows)?;
        let scale = scale(&part, input.data_type());
        let digits = digits(&part, &input, &args)?;
        let result: ArrayRef = match self.numeric {
            true => Arc::new(
                Decimal128Array::from(digits).with_precision_and_scale(NUMERIC_PRECISION, scale)?,
            ),
            false => {
                let unit = 10f64.powi(i32::from(scale));
                Arc::new(
                    digits
                        .iter()
                        .map(|d| d.map(|d| d as f64 / unit))
                        .collect::<datafusion::arrow::array::Float64Array>(),
                )
            }
        };
        like_arguments(&args.args, result)
    }
}

/// The field of each value as the digits of a numeric of the field's
/// scale.
fn digits(part: &str, input: &ArrayRef, args: &ScalarFunctionArgs) -> DFResult<Vec<Option<i128>>> {
    let is_date = matches!(input.data_type(), DataType::Date32 | DataType::Date64);
    let source = source(part);
    if is_date && (matches!(source, Source::Micros(_)) || is_time_of_day(part)) {
        return Err(crate::error::Error::input(
            crate::error::InputError::Unsupported,
            format!(
                "unit \"{}\" not supported for type date",
                part.to_lowercase()
            ),
        )
        .into());
    }
    let integers = |field: &str| -> DFResult<Vec<Option<i128>>> {
        let values = datafusion_date_part(field, input, args)?;
        let values = cast(&values, &DataType::Int64)?;
        Ok(values
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect())
    };
    if let (DataType::Interval(_), Source::Micros(_) | Source::Epoch) = (input.data_type(), &source)
    {
        return interval_micros(input, matches!(source, Source::Epoch));
    }
    Ok(match source {
        Source::Field => integers(part)?,
        Source::Micros(_) => integers("microsecond")?,
        Source::YearAd => integers("year")?
            .into_iter()
            .map(|year| year.map(|y| if y > 0 { y } else { y - 1 }))
            .collect(),
        Source::Year(divisor, up) => integers("year")?
            .into_iter()
            .map(|year| {
                year.map(|y| match (up, y > 0) {
                    (true, true) => (y + i128::from(divisor) - 1) / i128::from(divisor),
                    (true, false) => -((-y) / i128::from(divisor)) - 1,
                    (false, _) => y.div_euclid(i128::from(divisor)),
                })
            })
            .collect(),
        Source::Epoch => match input.data_type() {
            DataType::Date32 | DataType::Date64 => {
                let days = cast(input, &DataType::Date32)?;
                days.as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                    .iter()
                    .map(|d| d.map(|d| i128::from(d) * 86_400))
                    .collect()
            }
            DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_) => {
                // Microseconds since 1970, or since midnight.
                let unit = match input.data_type() {
                    DataType::Timestamp(_, tz) => {
                        DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                    }
                    _ => DataType::Time64(TimeUnit::Microsecond),
                };
                let micros = cast(&cast(input, &unit)?, &DataType::Int64)?;
                micros
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.map(i128::from))
                    .collect()
            }
            _ => {
                let seconds = datafusion_date_part("epoch", input, args)?;
                let seconds = cast(&seconds, &DataType::Float64)?;
                seconds
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| (v * 1e6).round() as i128))
                    .collect()
            }
        },
    })
}

/// An interval's seconds within its minute, in microseconds, or (`epoch`)
/// its whole length: PostgreSQL counts a year of months as 365.25 days and
/// other months as 30. (DataFusion cut the fraction of a second off and
/// counted every month as 30 days.)
fn interval_micros(input: &ArrayRef, epoch: bool) -> DFResult<Vec<Option<i128>>> {
    use datafusion::arrow::datatypes::{IntervalMonthDayNanoType, IntervalUnit};
    const DAY: i128 = 86_400_000_000;
    let intervals = cast(input, &DataType::Interval(IntervalUnit::MonthDayNano))?;
    Ok(intervals
        .as_primitive::<IntervalMonthDayNanoType>()
        .iter()
        .map(|value| {
            value.map(|v| {
                let time = i128::from(v.nanoseconds) / 1000;
                match epoch {
                    false => time % 60_000_000,
                    true => {
                        let months = i128::from(v.months);
                        // A year is 365.25 days: 1461 quarter days.
                        let years = months / 12 * 1461 * DAY / 4;
                        years + months % 12 * 30 * DAY + i128::from(v.days) * DAY + time
                    }
                }
            })
        })
        .collect())
}

fn is_time_of_day(part: &str) -> bool {
    matches!(
        part.to_lowercase().as_str(),
        "hour" | "hours" | "h" | "minute" | "minutes" | "m" | "min" | "mins"
    )
}

/// DataFusion's `date_part(field, input)`.
fn datafusion_date_part(
    field: &str,
    input: &ArrayRef,
    args: &ScalarFunctionArgs,
) -> DFResult<ArrayRef> {
    let inner = datafusion::functions::datetime::date_part();
    let field_value = ScalarValue::Utf8(Some(field.to_string()));
    let return_field = inner.return_field_from_args(ReturnFieldArgs {
        arg_fields: &[
            Arc::new(Field::new("field", DataType::Utf8, false)),
            Arc::new(Field::new("input", input.data_type().clone(), true)),
        ],
        scalar_arguments: &[Some(&field_value), None],
    })?;
    let out = inner.invoke_with_args(ScalarFunctionArgs {
        args: vec![
            ColumnarValue::Scalar(field_value),
            ColumnarValue::Array(input.clone()),
        ],
        arg_fields: args.arg_fields.clone(),
        number_rows: input.len(),
        return_field,
        config_options: args.config_options.clone(),
    })?;
    let out = out.into_array(input.len())?;
    // Int32 for fields, Int64 for nanoseconds, Float64 for epoch.
    debug_assert!(matches!(
        out.data_type(),
        DataType::Int32 | DataType::Int64 | DataType::Float64
    ));
    Ok(out)
}

/// Plans the SQL forms whose meaning differs from DataFusion's: EXTRACT
/// (numeric, see above), `substring(text FROM pattern)`, a regular
/// expression match (the first parenthesised group's text, or the whole
/// match), where DataFusion only knows `FROM start`, and date arithmetic
/// typed as PostgreSQL types it (`super::super::datetime::date_arithmetic`).
#[derive(Debug)]
pub struct PgExprPlanner;

impl ExprPlanner for PgExprPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DFResult<PlannerResult<RawBinaryExpr>> {
        let expr = super::super::literals::literal_operands(expr, schema);
        let expr = match super::super::numeric::numeric_operator(expr, schema) {
            PlannerResult::Original(expr) => expr,
            planned => return Ok(planned),
        };
        let expr = match super::super::array_literal::array_operator(expr, schema) {
            PlannerResult::Original(expr) => expr,
            planned => return Ok(planned),
        };
        match super::super::json::json_operator(expr, schema)? {
            PlannerResult::Original(expr) => {
                Ok(super::super::datetime::date_arithmetic(expr, schema))
            }
            planned => Ok(planned),
        }
    }

    fn plan_array_literal(
        &self,
        exprs: Vec<Expr>,
        schema: &DFSchema,
    ) -> DFResult<PlannerResult<Vec<Expr>>> {
        let exprs = super::super::array_literal::array_elements(exprs, schema);
        let exprs = super::super::numeric::numeric_elements(exprs, schema);
        Ok(PlannerResult::Original(exprs))
    }

    fn plan_extract(&self, args: Vec<Expr>) -> DFResult<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(
            ScalarUDF::new_from_impl(DatePart::extract()).call(args),
        ))
    }

    fn plan_substring(&self, args: Vec<Expr>) -> DFResult<PlannerResult<Vec<Expr>>> {
        match args.as_slice() {
            [text, Expr::Literal(ScalarValue::Utf8(Some(pattern)), _)] => {
                let matched = super::regexp::regexp_match().call(vec![
                    text.clone(),
                    Expr::Literal(ScalarValue::Utf8(Some(pattern.clone())), None),
                ]);
                let first = datafusion::functions_nested::extract::array_element(
                    matched,
                    Expr::Literal(ScalarValue::Int64(Some(1)), None),
                );
                Ok(PlannerResult::Planned(first))
            }
            _ => Ok(PlannerResult::Planned(
                super::super::bytea::overloaded(datafusion::functions::unicode::substr())
                    .call(args),
            )),
        }
    }

    fn plan_position(&self, args: Vec<Expr>) -> DFResult<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(
            super::super::bytea::overloaded(datafusion::functions::unicode::strpos()).call(args),
        ))
    }
}
