//! Text cast to `date`, `timestamp` or `timestamptz`, read by PostgreSQL's
//! input rules (the input functions COPY reads with,
//! [`super::copy::ColumnInput`]) rather than by Arrow's cast, which reads
//! some forms differently: it applies an offset written after a
//! `timestamp` (`'10:00:00+02'::timestamp` was 08:00; PostgreSQL ignores
//! the offset) and refuses `10:00` without seconds. `infinity` is 0A000:
//! ShardForge cannot store it.
//!
//! [`MicrosecondTimestamps`]: timestamps in SQL text count microseconds,
//! and a cast to `time(p)` or `timestamp(p)` rounds to `p` digits
//! ([`round_fraction`], which a column of such a type is written with
//! too).
//!
//! And [`date_arithmetic`]: a date plus or minus an interval is a
//! `timestamp`, and a date minus a date an `integer`, as in PostgreSQL
//! (DataFusion kept a date, dropping the interval's hours: `date
//! '2024-01-31' + interval '1 hour'` was `2024-01-31`).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{plan_err, DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::planner::{PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::{
    binary_expr, cast, BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, VisitMut, VisitorMut};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::analyze::{array_udf, like_arguments};
use super::copy::ColumnInput;
use super::rewrite::parse_expr;
use super::vars::session_zone;
use crate::catalog::types::MAX_FRACTION_DIGITS;
use crate::catalog::SqlType;

/// `CAST(text AS date | time | timestamp | timestamptz | interval |
/// type[])` as a call of the type's input function (`copy::ColumnInput`);
/// `config` gives the session time zone a `timestamptz` without an offset
/// is read in.
pub fn text_input_cast(expr: &Expr, schema: &DFSchema, config: &ConfigOptions) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let target = field.data_type().clone();
    let sql_type = match &target {
        DataType::Date32 => SqlType::Date,
        DataType::Time64(_) => SqlType::Time(None),
        DataType::Timestamp(_, None) => SqlType::Timestamp(None),
        DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz(None),
        DataType::Interval(_) => SqlType::Interval,
        // Arrow casts a string to a list as a list of that one string, so
        // `'{1,2}'` would be read as the integer `{1,2}`.
        DataType::List(_) => SqlType::from_arrow(&target)?,
        _ => return None,
    };
    if !matches!(
        inner.get_type(schema).ok()?,
        DataType::Utf8 | DataType::Utf8View
    ) {
        return None;
    }
    let zone = session_zone(config);
    // `now`, `today`, ... are read at the transaction's start of the
    // statement being planned (a prepared one is planned at each
    // execution: README).
    let now = (config.extensions)
        .get::<super::functions::RunningStatement>()
        .map(|running| running.transaction_began);
    let read_type = match sql_type {
        SqlType::Date => DataType::Date32,
        _ => sql_type.to_arrow(),
    };
    let udf = array_udf(
        &format!("pg_{}_in", sql_type.pg_name()),
        vec![DataType::Utf8],
        read_type.clone(),
        move |arrays| {
            let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let mut input = ColumnInput::new(&sql_type, zone)?;
            if let Some(now) = now {
                input = input.at(now);
            }
            for value in text.as_string::<i32>() {
                input.push_text(value)?;
            }
            Ok(input.finish())
        },
    );
    let read = udf.call(vec![inner.as_ref().clone()]);
    Some(match read_type == target {
        true => read,
        false => cast(read, target),
    })
}

/// `interval * number`, `number * interval` and `interval / number`, which
/// DataFusion does not plan, as PostgreSQL computes them
/// (`interval::multiply`, `interval::divide`).
fn interval_product(expr: &RawBinaryExpr, left: &DataType, right: &DataType) -> Option<Expr> {
    let is_interval = |t: &DataType| matches!(t, DataType::Interval(_));
    let is_number = |t: &DataType| t.is_numeric();
    let factor = |e: &Expr| cast(e.clone(), DataType::Float64);
    let scale = |divides: bool, i: &Expr, f: &Expr| {
        super::interval::scale_udf(divides).call(vec![i.clone(), factor(f)])
    };
    match expr.op {
        BinaryOperator::Multiply if is_interval(left) && is_number(right) => {
            Some(scale(false, &expr.left, &expr.right))
        }
        BinaryOperator::Multiply if is_number(left) && is_interval(right) => {
            Some(scale(false, &expr.right, &expr.left))
        }
        BinaryOperator::Divide if is_interval(left) && is_number(right) => {
            Some(scale(true, &expr.left, &expr.right))
        }
        _ => None,
    }
}

/// `date ± interval` (either side) as `timestamp ± interval`, `date -
/// date` as an integer number of days, and `timestamp - timestamp` in
/// 24-hour days, as PostgreSQL types them; any other
/// operation as it is.
pub fn date_arithmetic(expr: RawBinaryExpr, schema: &DFSchema) -> PlannerResult<RawBinaryExpr> {
    let (Ok(left), Ok(right)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
        return PlannerResult::Original(expr);
    };
    if let Some(product) = interval_product(&expr, &left, &right) {
        return PlannerResult::Planned(product);
    }
    let op = match expr.op {
        BinaryOperator::Plus => Operator::Plus,
        BinaryOperator::Minus => Operator::Minus,
        _ => return PlannerResult::Original(expr),
    };
    let is_date = |t: &DataType| matches!(t, DataType::Date32 | DataType::Date64);
    let is_interval = |t: &DataType| matches!(t, DataType::Interval(_));
    let is_timestamp = |t: &DataType| matches!(t, DataType::Timestamp(..));
    let timestamp = |e: Expr| cast(e, DataType::Timestamp(TimeUnit::Microsecond, None));
    let RawBinaryExpr {
        left: l, right: r, ..
    } = expr;
    let planned = if is_date(&left) && is_interval(&right) {
        binary_expr(timestamp(l), op, r)
    } else if is_interval(&left) && is_date(&right) && op == Operator::Plus {
        binary_expr(l, op, timestamp(r))
    } else if is_date(&left) && is_date(&right) && op == Operator::Minus {
        cast(binary_expr(l, op, r), DataType::Int32)
    } else if is_timestamp(&left) && is_timestamp(&right) && op == Operator::Minus {
        let interval = DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano);
        super::interval::justify_hours_of(cast(binary_expr(l, op, r), interval))
    } else {
        return PlannerResult::Original(RawBinaryExpr {
            op: expr.op,
            left: l,
            right: r,
        });
    };
    PlannerResult::Planned(planned)
}

/// A `timestamptz` read as a date, a time of day or a `timestamp`, or
/// taken apart (`EXTRACT`, `date_part`, `date_trunc`), in the session's
/// time zone, as PostgreSQL reads it: a column's values and `now()` carry
/// UTC (their Arrow type's zone), so with `SET TimeZone = 'America/
/// Los_Angeles'` a `t::date` of 03:00 UTC was the next day, `extract(hour
/// ...)` 3 instead of 19 and `date_trunc('day', t)` UTC's midnight. The
/// value is first relabelled with the session's zone (the same instant),
/// which those casts and functions read. So it is for `age`, for an
/// interval added or subtracted (a day is a calendar day there: across
/// the change to summer time it is 23 hours, as in PostgreSQL) and for a
/// comparison with a `date` or its `date_trunc` (its midnight there).
#[derive(Debug)]
pub struct SessionZone;

impl AnalyzerRule for SessionZone {
    fn name(&self) -> &str {
        "postgresql_session_zone"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DFResult<LogicalPlan> {
        let Some(zone) = config.execution.time_zone.as_deref() else {
            return Ok(plan);
        };
        let zone: Arc<str> = zone.into();
        super::analyze::rewrite_plan_expressions(plan, |expr, schema| {
            Ok(in_session_zone(expr, schema, &zone))
        })
        .map(|t| t.data)
    }
}

fn in_session_zone(expr: Expr, schema: &DFSchema, zone: &Arc<str>) -> Transformed<Expr> {
    // `e` relabelled with the session's zone, if it is a timestamp with
    // another.
    let local = |e: &Expr| match e.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(tz))) if *tz != **zone => Some(cast(
            e.clone(),
            DataType::Timestamp(unit, Some(zone.clone())),
        )),
        _ => None,
    };
    match expr {
        Expr::Cast(Cast { expr: inner, field })
            if matches!(
                field.data_type(),
                DataType::Date32
                    | DataType::Date64
                    | DataType::Time32(_)
                    | DataType::Time64(_)
                    | DataType::Timestamp(_, None)
            ) =>
        {
            let zoned = matches!(inner.get_type(schema), Ok(DataType::Timestamp(_, Some(_))));
            match (local(&inner), field.data_type()) {
                // Arrow's cast to a timestamp without a zone keeps the UTC
                // clock, whatever the zone (a `timestamptz '...'` literal
                // is labelled with the session's already); `to_local_time`
                // reads the zone's.
                (relabelled, DataType::Timestamp(_, None)) if zoned => {
                    let relabelled = relabelled.unwrap_or_else(|| *inner.clone());
                    let local_time =
                        datafusion::functions::datetime::to_local_time().call(vec![relabelled]);
                    Transformed::yes(Expr::Cast(Cast {
                        expr: Box::new(local_time),
                        field,
                    }))
                }
                (Some(relabelled), _) => Transformed::yes(Expr::Cast(Cast {
                    expr: Box::new(relabelled),
                    field,
                })),
                (None, _) => Transformed::no(Expr::Cast(Cast { expr: inner, field })),
            }
        }
        // `date_trunc` of a date truncates its midnight there (a
        // timestamptz, as in PostgreSQL).
        Expr::ScalarFunction(mut call)
            if call.name() == "date_trunc"
                && call.args.len() == 2
                && matches!(call.args[1].get_type(schema), Ok(DataType::Date32)) =>
        {
            call.args[1] = midnight(call.args[1].clone(), zone);
            Transformed::yes(Expr::ScalarFunction(call))
        }
        Expr::ScalarFunction(mut call)
            if matches!(call.name(), "date_part" | "extract" | "date_trunc")
                && call.args.len() == 2 =>
        {
            match local(&call.args[1]) {
                Some(relabelled) => {
                    call.args[1] = relabelled;
                    Transformed::yes(Expr::ScalarFunction(call))
                }
                None => Transformed::no(Expr::ScalarFunction(call)),
            }
        }
        // A series of dates is one of their midnights there (PostgreSQL
        // has no series of dates: it reads them as timestamptz). A bound
        // written as a string has the other's type, or is a timestamptz
        // beside a date or another string, as PostgreSQL resolves it
        // (`generate_series('2024-01-01'::date, '2024-01-31', '1 day')`);
        // `text_input_cast` reads it later. (A step written as a string is
        // cast to an interval by `calls`.)
        Expr::ScalarFunction(mut call)
            if call.name() == "generate_series"
                && call.args.len() == 3
                && matches!(call.args[2].get_type(schema), Ok(DataType::Interval(_))) =>
        {
            let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone()));
            let types: Vec<_> = call.args[..2]
                .iter()
                .map(|arg| arg.get_type(schema).ok())
                .collect();
            let mut changed = false;
            for (at, arg) in call.args[..2].iter_mut().enumerate() {
                *arg = match &types[at] {
                    Some(DataType::Date32) => midnight(arg.clone(), zone),
                    Some(DataType::Utf8) if matches!(arg, Expr::Literal(..)) => {
                        let other = match &types[1 - at] {
                            Some(other @ DataType::Timestamp(..)) => other.clone(),
                            _ => zoned.clone(),
                        };
                        cast(arg.clone(), other)
                    }
                    _ => continue,
                };
                changed = true;
            }
            Transformed::new_transformed(Expr::ScalarFunction(call), changed)
        }
        // `age` reads wall-clock times.
        Expr::ScalarFunction(mut call) if call.name() == "age" => {
            let mut changed = false;
            for arg in &mut call.args {
                let in_zone = match arg.get_type(schema) {
                    Ok(DataType::Timestamp(_, Some(_))) => local(arg).unwrap_or(arg.clone()),
                    _ => continue,
                };
                *arg = datafusion::functions::datetime::to_local_time().call(vec![in_zone]);
                changed = true;
            }
            Transformed::new_transformed(Expr::ScalarFunction(call), changed)
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let is = |e: &Expr, wanted: fn(&DataType) -> bool| {
                e.get_type(schema).is_ok_and(|t| wanted(&t))
            };
            let interval = |t: &DataType| matches!(t, DataType::Interval(_));
            let date = |t: &DataType| matches!(t, DataType::Date32);
            let zoned = |t: &DataType| matches!(t, DataType::Timestamp(_, Some(_)));
            let compared = op.supports_propagation();
            let shifted = matches!(op, Operator::Plus | Operator::Minus);
            let side = |this: &Expr, other: &Expr| {
                if (shifted && is(other, interval)) || (compared && is(other, date)) {
                    local(this)
                } else if compared && is(this, date) && is(other, zoned) {
                    Some(midnight(this.clone(), zone))
                } else {
                    None
                }
            };
            let (l, r) = (side(&left, &right), side(&right, &left));
            let changed = l.is_some() || r.is_some();
            let expr = Expr::BinaryExpr(BinaryExpr {
                left: Box::new(l.unwrap_or(*left)),
                op,
                right: Box::new(r.unwrap_or(*right)),
            });
            Transformed::new_transformed(expr, changed)
        }
        other => Transformed::no(other),
    }
}

/// A `timestamp` made a `timestamptz` is read as a wall-clock time in the
/// session's time zone, as PostgreSQL reads it, wherever type coercion
/// converts one: compared with or subtracted from a `timestamptz`,
/// assigned to a `timestamptz` column, beside one in `coalesce` or a CASE.
/// Arrow's cast reads a timestamp as a time in the zone of the type it is
/// cast to, and a column's `timestamptz` carries UTC: with `SET TimeZone =
/// 'America/New_York'`, `INSERT ... VALUES (timestamp '2024-01-15 10:30')`
/// stored 10:30 UTC (PostgreSQL: 15:30 UTC) and `ts = tz` compared the
/// wrong instants. Such a cast becomes one to the session's zone (read
/// there), then to the zone wanted (the same instant); so does the
/// `timestamp` of a difference with a `timestamptz`. Runs after type
/// coercion; an explicit `ts::timestamptz` is typed in the session's zone
/// already.
#[derive(Debug)]
pub struct NaiveInSessionZone;

impl AnalyzerRule for NaiveInSessionZone {
    fn name(&self) -> &str {
        "postgresql_naive_in_session_zone"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DFResult<LogicalPlan> {
        let Some(zone) = config.execution.time_zone.as_deref() else {
            return Ok(plan);
        };
        let zone: Arc<str> = zone.into();
        super::analyze::rewrite_plan_expressions(plan, |expr, schema| {
            let naive = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Timestamp(_, None)));
            let zoned =
                |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Timestamp(_, Some(_))));
            let in_zone = |e: Expr| {
                cast(
                    e,
                    DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone())),
                )
            };
            let Expr::Cast(Cast { expr: inner, field }) = expr else {
                // Arrow subtracts the two as they are: the `timestamp`
                // read as UTC.
                return Ok(match expr {
                    Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Minus,
                        right,
                    }) if naive(&left) && zoned(&right) || zoned(&left) && naive(&right) => {
                        let side = |e: Expr| if naive(&e) { in_zone(e) } else { e };
                        Transformed::yes(binary_expr(side(*left), Operator::Minus, side(*right)))
                    }
                    other => Transformed::no(other),
                });
            };
            let naive = naive(&inner);
            match field.data_type() {
                DataType::Timestamp(unit, Some(target)) if naive && **target != *zone => {
                    let local = cast(*inner, DataType::Timestamp(*unit, Some(zone.clone())));
                    Ok(Transformed::yes(Expr::Cast(Cast {
                        expr: Box::new(local),
                        field,
                    })))
                }
                _ => Ok(Transformed::no(Expr::Cast(Cast { expr: inner, field }))),
            }
        })
        .map(|t| t.data)
    }
}

/// Date `e` as the timestamptz of its midnight in `zone` (Arrow's cast
/// would take UTC's).
fn midnight(e: Expr, zone: &Arc<str>) -> Expr {
    let naive = cast(e, DataType::Timestamp(TimeUnit::Microsecond, None));
    cast(
        naive,
        DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone())),
    )
}

/// `timestamp` and `timestamptz` count microseconds, as PostgreSQL's (and
/// ShardForge's columns) do, whatever precision is written: DataFusion's
/// default, nanoseconds, holds only the years 1677 to 2262, so
/// `'1600-01-01'::timestamp` failed and a parameter of year 1600 became
/// NULL; its seconds and milliseconds cut the fraction off, and other
/// precisions it refused (`time(0)` too). A cast (or literal) to a time
/// type of a precision below 6 rounds the microseconds to it as
/// PostgreSQL does ([`ROUND_TIME`]); one above 6 is 6, as in PostgreSQL.
#[derive(Debug)]
pub struct MicrosecondTimestamps;

impl SqlStatementRewriteRule for MicrosecondTimestamps {
    fn rewrite(&self, mut stmt: ast::Statement) -> ast::Statement {
        struct Visitor;
        impl VisitorMut for Visitor {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
                let data_type = match expr {
                    ast::Expr::Cast { data_type, .. } => data_type,
                    ast::Expr::TypedString(typed) => &mut typed.data_type,
                    _ => return ControlFlow::Continue(()),
                };
                let digits = match data_type {
                    ast::DataType::Timestamp(precision, _) => {
                        let digits = precision.take();
                        *precision = Some(u64::from(MAX_FRACTION_DIGITS));
                        digits
                    }
                    // DataFusion's `time` is microseconds already.
                    ast::DataType::Time(precision, _) => precision.take(),
                    _ => return ControlFlow::Continue(()),
                };
                let digits = digits.map_or(MAX_FRACTION_DIGITS, |p| {
                    p.min(u64::from(MAX_FRACTION_DIGITS)) as u8
                });
                if digits < MAX_FRACTION_DIGITS {
                    // Printed by the parser itself, so it parses.
                    if let Ok(rounded) = parse_expr(&format!("{ROUND_TIME}({expr}, {digits})")) {
                        *expr = rounded;
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = stmt.visit(&mut Visitor);
        stmt
    }
}

/// The function a cast to `time(p)`, `timestamp(p)` or `timestamptz(p)`
/// with `p` below 6 becomes ([`MicrosecondTimestamps`]): `pg_round_time(t,
/// p)`, `t` rounded by [`round_fraction`] (DataFusion's second and
/// millisecond timestamps cut the fraction off: `'10:00:00.6'::
/// timestamp(0)` was 10:00:00, PostgreSQL's 10:00:01).
pub const ROUND_TIME: &str = "pg_round_time";

pub fn round_time_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(RoundTime {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundTime {
    signature: Signature,
}

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01, which
/// its rounding of timestamps is symmetric about.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl ScalarUDFImpl for RoundTime {
    fn name(&self) -> &str {
        ROUND_TIME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        match &args[0] {
            t @ (DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Time64(TimeUnit::Microsecond)) => Ok(t.clone()),
            other => plan_err!("{ROUND_TIME} takes a time or timestamp, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let digits = match &args.args[1] {
            ColumnarValue::Scalar(s) => s.clone().cast_to(&DataType::Int64)?,
            _ => return plan_err!("{ROUND_TIME}: a constant precision"),
        };
        let ScalarValue::Int64(Some(digits @ 0..=5)) = digits else {
            return plan_err!("{ROUND_TIME}: a precision of 0 to 5");
        };
        let input = args.args[0].to_array(args.number_rows)?;
        like_arguments(&args.args[..1], round_fraction(&input, digits as u8)?)
    }
}

/// `array`'s times rounded to `digits` fraction digits of their seconds
/// as PostgreSQL rounds them for a `time(p)` or `timestamp(p)` (half a
/// unit away from 2000-01-01, as `AdjustTimestampForTypmod`; a time of day
/// up, so `23:59:59.6` is `24:00:00` in `time(0)`), and a list's
/// elements; other arrays as they are.
pub fn round_fraction(array: &ArrayRef, digits: u8) -> Result<ArrayRef, ArrowError> {
    use datafusion::arrow::array::{Array, Int64Array, ListArray};
    use datafusion::arrow::compute::cast;
    let origin = match array.data_type() {
        _ if digits >= MAX_FRACTION_DIGITS => return Ok(array.clone()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => PG_EPOCH_MICROS,
        DataType::Time64(TimeUnit::Microsecond) => 0,
        DataType::List(field) => {
            let list = array.as_list::<i32>();
            let values = round_fraction(list.values(), digits)?;
            let nulls = list.nulls().cloned();
            let list = ListArray::try_new(field.clone(), list.offsets().clone(), values, nulls)?;
            return Ok(Arc::new(list));
        }
        _ => return Ok(array.clone()),
    };
    let unit = 10i64.pow(u32::from(MAX_FRACTION_DIGITS - digits));
    let micros = cast(array, &DataType::Int64)?;
    let rounded: Int64Array = micros.as_primitive::<Int64Type>().unary(|m| {
        let since = m - origin;
        let rounded = match since >= 0 {
            true => (since + unit / 2) / unit * unit,
            false => -((-since + unit / 2) / unit * unit),
        };
        rounded + origin
    });
    cast(&rounded, array.data_type())
}

/// `isfinite(date | timestamp | timestamptz | interval)`: true for every
/// value ShardForge stores (it has no infinite dates and times: their
/// input is refused), NULL for NULL.
pub fn isfinite_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(IsFinite {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsFinite {
    signature: Signature,
}

impl ScalarUDFImpl for IsFinite {
    fn name(&self) -> &str {
        "isfinite"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        match &arg_types[0] {
            DataType::Date32 | DataType::Timestamp(..) | DataType::Interval(_) | DataType::Null => {
                Ok(DataType::Boolean)
            }
            other => Err(crate::error::Error::input(
                crate::error::InputError::UndefinedFunction,
                format!("function isfinite({other}) does not exist"),
            )
            .into()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let finite: BooleanArray = (0..values.len())
            .map(|i| values.is_valid(i).then_some(true))
            .collect();
        like_arguments(&args.args, Arc::new(finite))
    }
}
