//! `interval` values: months, days and microseconds, as PostgreSQL keeps
//! them, in an Arrow IntervalMonthDayNano (nanoseconds a multiple of
//! 1000).
//!
//! - [`parse`] reads PostgreSQL's input forms (`1 day 02:03:04`, `1 year
//!   2 mons -3 days`, `@ 1 hour ago`, `1.5 days`, `1-2`, ISO 8601
//!   `P1Y2M3DT4H5M6S`): COPY, parameters, stored columns and text cast to
//!   an interval read with it (`datetime::text_input_cast`), and
//!   so do literals (`interval '1 day 02:00'`, a cast of the text once
//!   [`LiteralsAsCasts`] has run; DataFusion's reader refused
//!   PostgreSQL's own output form), with fields too (`interval '1:30'
//!   hour to minute`).
//! - PostgreSQL compares intervals by their length with a month of 30
//!   days and a day of 24 hours (`'1 mon' = '30 days'`, `'1 mon' < '40
//!   days'`); Arrow compares the three fields in turn. [`comparable`], an
//!   expression rewrite before type coercion, compares (and `ordered`
//!   sorts) intervals by that length instead; so do windows ordered or
//!   partitioned by intervals, `count(DISTINCT ...)` of them, and `min`
//!   and `max` (`functions::interval_aggregates`), GROUP BY and DISTINCT.
//! - `*` and `/` by a number are PostgreSQL's ([`multiply`], [`divide`]);
//!   so is `avg` (`functions::interval_aggregates`).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Column;
use datafusion::common::{DFSchema, Result as DFResult};
use datafusion::functions_aggregate::expr_fn::first_value;
use datafusion::logical_expr::{
    cast, Aggregate, Between, Distinct, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder,
    Projection, ScalarUDF, SortExpr,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::analyze::{array_udf, convert_compared};
use super::rewrite::parse_expr;
use crate::error::{Error, InputError, Result};

const MICROS_PER_SECOND: f64 = 1e6;
const MICROS_PER_MINUTE: f64 = 60.0 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: f64 = 60.0 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i128 = 86_400_000_000;
/// PostgreSQL's `DAYS_PER_MONTH` and hours of a day, for fractions and
/// comparisons.
const DAYS_PER_MONTH: f64 = 30.0;
const HOURS_PER_DAY: f64 = 24.0;

/// An interval being read: whole months and days, and microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Parts {
    months: f64,
    days: f64,
    micros: f64,
}

impl Parts {
    /// `n` of `unit` added, fractions carried down as PostgreSQL carries
    /// them (`1.5 months` is 1 month 15 days, `1.5 days` 1 day 12:00:00).
    fn add(&mut self, n: f64, unit: Unit) {
        match unit {
            Unit::Months(m) => {
                let months = n * m;
                let whole = months.trunc();
                self.months += whole;
                self.add(months - whole, Unit::Days(DAYS_PER_MONTH));
            }
            Unit::Days(d) => {
                let days = n * d;
                let whole = days.trunc();
                self.days += whole;
                self.micros += (days - whole) * HOURS_PER_DAY * MICROS_PER_HOUR;
            }
            Unit::Micros(u) => self.micros += n * u,
        }
    }

    fn negate(&mut self) {
        self.months = -self.months;
        self.days = -self.days;
        self.micros = -self.micros;
    }
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Months(f64),
    Days(f64),
    Micros(f64),
}

/// The unit a word names, as PostgreSQL spells them.
fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Unit::Micros(1.0),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Unit::Micros(1e3),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(MICROS_PER_SECOND),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(MICROS_PER_MINUTE),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(MICROS_PER_HOUR),
        "day" | "days" | "d" => Unit::Days(1.0),
        "week" | "weeks" | "w" => Unit::Days(7.0),
        "month" | "months" | "mon" | "mons" => Unit::Months(1.0),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12.0),
        "decade" | "decades" => Unit::Months(120.0),
        "century" | "centuries" => Unit::Months(1200.0),
        "millennium" | "millennia" | "millenniums" => Unit::Months(12000.0),
        _ => return None,
    })
}

/// Each `interval 'text'` literal as `CAST('text' AS interval)`, read by
/// [`parse`] (a parse-time rule, so column defaults and every kind of
/// statement get it). A literal with fields (`interval '1:30' hour to
/// minute`, `interval '1.5' hour`) is read here as PostgreSQL reads it
/// ([`with_fields`]) and cast from its value's text; DataFusion refused
/// a range of fields and kept the parts below the last field
/// (`interval '1.5' hour` was 01:30:00, PostgreSQL's 01:00:00).
#[derive(Debug)]
pub struct LiteralsAsCasts;

impl SqlStatementRewriteRule for LiteralsAsCasts {
    fn rewrite(&self, mut stmt: ast::Statement) -> ast::Statement {
        let _ = ast::visit_expressions_mut(&mut stmt, |expr| {
            let ast::Expr::Interval(ast::Interval {
                value,
                leading_field,
                leading_precision,
                last_field,
                fractional_seconds_precision,
            }) = expr
            else {
                return ControlFlow::<()>::Continue(());
            };
            // `second(p)` alone reads as a leading precision.
            let precision = match (&*leading_field, &*last_field, leading_precision) {
                (Some(ast::DateTimeField::Second), None, Some(p)) => Some(*p),
                (_, _, None) => *fractional_seconds_precision,
                _ => return ControlFlow::Continue(()),
            };
            let ast::Expr::Value(v) = value.as_ref() else {
                return ControlFlow::Continue(());
            };
            let ast::Value::SingleQuotedString(text) = &v.value else {
                return ControlFlow::Continue(());
            };
            let read = match (leading_field, last_field) {
                (None, None) => Some(text.clone()),
                (Some(leading), last) => {
                    let last = last.as_ref().unwrap_or(leading);
                    let range = (Field::of(leading), Field::of(last));
                    match range {
                        (Some(leading), Some(last)) => Some(
                            // A text it cannot read is left to the cast,
                            // which reports it.
                            with_fields(text, leading, last, precision)
                                .map_or_else(|_| text.clone(), super::output::interval_text),
                        ),
                        _ => None,
                    }
                }
                (None, Some(_)) => None,
            };
            let literal = read.map(|t| ast::Value::SingleQuotedString(t).to_string());
            if let Some(Ok(cast)) = literal.map(|l| parse_expr(&format!("CAST({l} AS INTERVAL)"))) {
                *expr = cast;
            }
            ControlFlow::Continue(())
        });
        stmt
    }
}

/// A field of an interval literal's qualifier (`YEAR TO MONTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    fn of(field: &ast::DateTimeField) -> Option<Field> {
        use ast::DateTimeField as F;
        Some(match field {
            F::Year | F::Years => Field::Year,
            F::Month | F::Months => Field::Month,
            F::Day | F::Days => Field::Day,
            F::Hour | F::Hours => Field::Hour,
            F::Minute | F::Minutes => Field::Minute,
            F::Second | F::Seconds => Field::Second,
            _ => return None,
        })
    }

    fn unit(self) -> &'static str {
        match self {
            Field::Year => "years",
            Field::Month => "months",
            Field::Day => "days",
            Field::Hour => "hours",
            Field::Minute => "minutes",
            Field::Second => "seconds",
        }
    }
}

/// `text` read as PostgreSQL reads an interval literal qualified with the
/// fields `leading` to `last`: a lone number counts `last`'s unit (`'90'
/// minute`, `'1' day to hour` is an hour), `a:b` is minutes and seconds
/// for `minute to second`, and the parts below `last` are dropped
/// (toward zero: `'1.5' hour` is an hour, `'1 day 2:03:04' hour to
/// minute` keeps the day); seconds are rounded to `precision` digits.
fn with_fields(
    text: &str,
    leading: Field,
    last: Field,
    precision: Option<u64>,
) -> Result<IntervalMonthDayNano> {
    let trimmed = text.trim();
    let lone_number = !trimmed.is_empty()
        && trimmed
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    let minutes_seconds =
        (leading, last) == (Field::Minute, Field::Second) && trimmed.matches(':').count() == 1;
    let read = if lone_number {
        parse(&format!("{trimmed} {}", last.unit()))?
    } else if minutes_seconds {
        let (negative, unsigned) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (minutes, seconds) = unsigned.split_once(':').unwrap_or((unsigned, "0"));
        let sign = if negative { "-" } else { "" };
        parse(&format!("{sign}{minutes} minutes {sign}{seconds} seconds"))
            .map_err(|_| invalid_interval(text))?
    } else {
        parse(text)?
    };
    let micros = read.nanoseconds / 1000;
    let (months, days, micros) = match last {
        Field::Year => (read.months / 12 * 12, 0, 0),
        Field::Month => (read.months, 0, 0),
        Field::Day => (read.months, read.days, 0),
        Field::Hour => (
            read.months,
            read.days,
            micros / 3_600_000_000 * 3_600_000_000,
        ),
        Field::Minute => (read.months, read.days, micros / 60_000_000 * 60_000_000),
        Field::Second => {
            let step = 10i64.pow(6 - precision.unwrap_or(6).min(6) as u32);
            // Half away from zero, as PostgreSQL rounds.
            let rounded = (micros.abs() + step / 2) / step * step;
            (read.months, read.days, rounded * micros.signum())
        }
    };
    Ok(IntervalMonthDayNano::new(months, days, micros * 1000))
}

fn invalid_interval(text: &str) -> Error {
    Error::input(
        InputError::InvalidDatetimeFormat,
        format!("invalid input syntax for type interval: \"{text}\""),
    )
}

/// An interval as PostgreSQL's `interval_in` reads it.
pub fn parse(text: &str) -> Result<IntervalMonthDayNano> {
    let invalid = || invalid_interval(text);
    let lower = text.trim().to_ascii_lowercase();
    let parts = match lower.strip_prefix('p') {
        Some(iso) => iso_8601(iso).ok_or_else(invalid)?,
        None => postgres(&lower).ok_or_else(invalid)?,
    };
    finish(parts).ok_or_else(|| {
        Error::input(
            InputError::DatetimeFieldOverflow,
            format!("interval field value out of range: \"{text}\""),
        )
    })
}

/// The parts as whole months and days and microseconds (rounded), if they
/// fit.
fn finish(parts: Parts) -> Option<IntervalMonthDayNano> {
    let months = parts.months.round();
    let days = parts.days.round();
    let micros = parts.micros.round();
    let fits32 = |v: f64| (i32::MIN as f64..=i32::MAX as f64).contains(&v);
    if !fits32(months) || !fits32(days) || micros.abs() > (i64::MAX / 1000) as f64 {
        return None;
    }
    Some(IntervalMonthDayNano::new(
        months as i32,
        days as i32,
        micros as i64 * 1000,
    ))
}

/// PostgreSQL's own forms: `[@] n unit [n unit ...] [hh:mm[:ss[.f]]]
/// [ago]`, a bare number (seconds), `y-m`.
fn postgres(text: &str) -> Option<Parts> {
    let text = text.strip_prefix('@').unwrap_or(text).trim();
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let ago = words.last() == Some(&"ago");
    if ago {
        words.pop();
    }
    let mut parts = Parts::default();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        if word.contains(':') {
            parts.micros += clock(word)?;
            continue;
        }
        if let Some((years, months)) = year_month(word) {
            parts.months += years * 12.0 + months;
            continue;
        }
        // A number and its unit, apart (`1 day`) or together (`1day`).
        let split = word
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(word.len());
        let (number, attached) = word.split_at(split);
        let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
        let name = match attached.is_empty() {
            false => attached,
            true if i < words.len() && unit(words[i]).is_some() => {
                i += 1;
                words[i - 1]
            }
            // A number alone is seconds (`'5'::interval`); before a
            // time of day, days (`3 04:05:06`, the SQL standard's form).
            true if i == words.len() => "seconds",
            true if words[i].contains(':') => "days",
            true => return None,
        };
        parts.add(n, unit(name)?);
    }
    if ago {
        parts.negate();
    }
    Some(parts)
}

/// `[-]hh:mm[:ss[.f]]` in microseconds.
fn clock(word: &str) -> Option<f64> {
    let (negative, unsigned) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let fields: Vec<&str> = unsigned.split(':').collect();
    let number = |s: &str| -> Option<f64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            .then(|| s.parse().ok())
            .flatten()
    };
    let micros = match fields.as_slice() {
        [h, m] => number(h)? * MICROS_PER_HOUR + number(m)? * MICROS_PER_MINUTE,
        [h, m, s] => {
            number(h)? * MICROS_PER_HOUR
                + number(m)? * MICROS_PER_MINUTE
                + number(s)? * MICROS_PER_SECOND
        }
        _ => return None,
    };
    Some(if negative { -micros } else { micros })
}

/// The SQL standard's `years-months` (`1-2`).
fn year_month(word: &str) -> Option<(f64, f64)> {
    let (negative, unsigned) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let (y, m) = unsigned.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(y) || !digits(m) {
        return None;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    Some((sign * y.parse::<f64>().ok()?, sign * m.parse::<f64>().ok()?))
}

/// ISO 8601's `P[nY][nM][nW][nD][T[nH][nM][nS]]` (after the `P`).
fn iso_8601(text: &str) -> Option<Parts> {
    let mut parts = Parts::default();
    let mut in_time = false;
    let mut number = String::new();
    let mut seen = false;
    for c in text.chars() {
        match c {
            't' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' | '.' | '-' | '+' => number.push(c),
            designator => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                let unit = match (designator, in_time) {
                    ('y', false) => Unit::Months(12.0),
                    ('m', false) => Unit::Months(1.0),
                    ('w', false) => Unit::Days(7.0),
                    ('d', false) => Unit::Days(1.0),
                    ('h', true) => Unit::Micros(MICROS_PER_HOUR),
                    ('m', true) => Unit::Micros(MICROS_PER_MINUTE),
                    ('s', true) => Unit::Micros(MICROS_PER_SECOND),
                    _ => return None,
                };
                parts.add(n, unit);
                seen = true;
            }
        }
    }
    (seen && number.is_empty()).then_some(parts)
}

/// An interval's length in microseconds, a month counted as 30 days and
/// a day as 24 hours: how PostgreSQL compares intervals.
pub fn length(value: IntervalMonthDayNano) -> i128 {
    (i128::from(value.months) * 30 + i128::from(value.days)) * MICROS_PER_DAY
        + i128::from(value.nanoseconds / 1000)
}

/// `interval_length(x)`: [`length`] as a numeric, for comparing and
/// sorting. One instance: windows whose keys are equal expressions share
/// a sort, and a function is equal to itself only.
fn length_udf() -> Arc<ScalarUDF> {
    static LENGTH: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    LENGTH.get_or_init(new_length_udf).clone()
}

fn new_length_udf() -> Arc<ScalarUDF> {
    array_udf(
        "interval_length",
        vec![DataType::Interval(IntervalUnit::MonthDayNano)],
        DataType::Decimal128(38, 0),
        |arrays| {
            let lengths: Decimal128Array = arrays[0]
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| v.map(length))
                .collect();
            Ok(Arc::new(lengths.with_precision_and_scale(38, 0)?) as ArrayRef)
        },
    )
}

fn is_interval(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).is_ok_and(|t| is_interval_type(&t))
}

/// Intervals compared by their length (see the module's documentation):
/// an expression rewrite before type coercion.
pub fn comparable(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let interval = |e: &Expr| is_interval(e, schema);
    // Either side's length; the other side (an untyped literal `'30
    // days'`) read as an interval.
    let length = |e: Expr| match is_interval(&e, schema) {
        true => length_udf().call(vec![e]),
        false => length_udf().call(vec![cast(
            e,
            DataType::Interval(IntervalUnit::MonthDayNano),
        )]),
    };
    match expr {
        // BETWEEN and IN, whose tested value convert_compared keeps.
        Expr::Between(between) if interval(&between.expr) => {
            Transformed::yes(Expr::Between(Between::new(
                Box::new(length(*between.expr)),
                between.negated,
                Box::new(length(*between.low)),
                Box::new(length(*between.high)),
            )))
        }
        Expr::InList(mut in_list) if interval(&in_list.expr) => {
            in_list.expr = Box::new(length(*in_list.expr));
            in_list.list = in_list.list.into_iter().map(length).collect();
            Transformed::yes(Expr::InList(in_list))
        }
        other => convert_compared(other, interval, length),
    }
}

/// A sort key that is an interval, as its length.
fn ordered(sort: SortExpr, schema: &DFSchema) -> SortExpr {
    SortExpr {
        expr: by_length(sort.expr, schema),
        ..sort
    }
}

/// Sorts by intervals as PostgreSQL orders them: by [`length`]; and
/// plans aggregates and windows of intervals to compare so too
/// ([`interval_aggregate`]).
#[derive(Debug, Default)]
pub struct IntervalOrder;

impl AnalyzerRule for IntervalOrder {
    fn name(&self) -> &str {
        "postgresql_interval_order"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Sort(mut sort) => {
                let schema = sort.input.schema().clone();
                if !sort.expr.iter().any(|s| is_interval(&s.expr, &schema)) {
                    return Ok(Transformed::no(LogicalPlan::Sort(sort)));
                }
                sort.expr = sort.expr.into_iter().map(|s| ordered(s, &schema)).collect();
                Ok(Transformed::yes(LogicalPlan::Sort(sort)))
            }
            node @ (LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)) => {
                let rewritten =
                    super::analyze::rewrite_node_expressions(node, false, |e, schema| {
                        Ok(interval_aggregate(e, schema))
                    })?;
                let transformed = rewritten.transformed;
                match rewritten.data {
                    LogicalPlan::Aggregate(aggregate) => {
                        let grouped = group_by_length(aggregate)?;
                        let transformed = grouped.transformed || transformed;
                        Ok(Transformed::new_transformed(grouped.data, transformed))
                    }
                    other => Ok(Transformed::new_transformed(other, transformed)),
                }
            }
            LogicalPlan::Distinct(Distinct::All(input))
                if input
                    .schema()
                    .fields()
                    .iter()
                    .any(|f| is_interval_type(f.data_type())) =>
            {
                // As DataFusion would plan it later, but grouping by lengths.
                let columns: Vec<Expr> = input
                    .schema()
                    .columns()
                    .into_iter()
                    .map(Expr::Column)
                    .collect();
                match LogicalPlanBuilder::from(input)
                    .aggregate(columns, Vec::<Expr>::new())?
                    .build()?
                {
                    LogicalPlan::Aggregate(aggregate) => {
                        Ok(Transformed::yes(group_by_length(aggregate)?.data))
                    }
                    other => Ok(Transformed::yes(other)),
                }
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// `min(x)` / `max(x)` of an interval `x` as `interval_min` /
/// `interval_max` (`functions::interval_aggregates`); `count(DISTINCT x)` counting
/// distinct lengths; a window ordered or partitioned by intervals, by
/// their lengths (its peers and partitions are PostgreSQL's, and
/// DataFusion's RANGE frames cannot order by an interval).
fn interval_aggregate(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    match interval_extreme(expr, schema) {
        Transformed {
            data: Expr::AggregateFunction(mut aggregate),
            ..
        } if aggregate.func.name() == "count"
            && aggregate.params.distinct
            && aggregate.params.args.iter().any(|a| is_interval(a, schema)) =>
        {
            aggregate.params.args = (aggregate.params.args.into_iter())
                .map(|arg| by_length(arg, schema))
                .collect();
            Transformed::yes(Expr::AggregateFunction(aggregate))
        }
        Transformed {
            data: Expr::WindowFunction(mut window),
            transformed,
            ..
        } => {
            let params = &mut window.params;
            let intervals = params.partition_by.iter().any(|e| is_interval(e, schema))
                || params.order_by.iter().any(|s| is_interval(&s.expr, schema));
            if intervals {
                params.partition_by = std::mem::take(&mut params.partition_by)
                    .into_iter()
                    .map(|e| by_length(e, schema))
                    .collect();
                params.order_by = std::mem::take(&mut params.order_by)
                    .into_iter()
                    .map(|s| ordered(s, schema))
                    .collect();
            }
            Transformed::new_transformed(Expr::WindowFunction(window), transformed || intervals)
        }
        other => other,
    }
}

/// `aggregate` grouping by its interval keys' lengths instead of their
/// fields, as PostgreSQL groups them (`'1 mon'` and `'30 days'` are one
/// group), under a projection that gives each group one of its intervals
/// (`first_value`: PostgreSQL shows the first it met, as unspecified) and
/// the aggregate's own output columns, so the nodes above still find them.
fn group_by_length(aggregate: Aggregate) -> DFResult<Transformed<LogicalPlan>> {
    let input = aggregate.input.schema().clone();
    let keyed = |e: &Expr| is_interval(e, &input);
    let grouping_sets = aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)));
    if grouping_sets || !aggregate.group_expr.iter().any(keyed) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let output = aggregate.schema.clone();
    let (keys, aggregates) = (aggregate.group_expr.len(), aggregate.aggr_expr.len());
    let mut shown = Vec::new();
    let mut group_expr = Vec::with_capacity(keys);
    for (i, key) in aggregate.group_expr.into_iter().enumerate() {
        match keyed(&key) {
            true => {
                group_expr.push(
                    length_udf()
                        .call(vec![key.clone()])
                        .alias(format!("__interval_length_{i}")),
                );
                shown.push((
                    i,
                    first_value(key, vec![]).alias(format!("__interval_shown_{i}")),
                ));
            }
            false => group_expr.push(key),
        }
    }
    let aggr_expr = (aggregate.aggr_expr.into_iter())
        .chain(shown.iter().map(|(_, e)| e.clone()))
        .collect();
    let grouped = Aggregate::try_new(aggregate.input, group_expr, aggr_expr)?;
    let columns = grouped.schema.clone();
    let column = |i: usize| Expr::Column(Column::from(columns.qualified_field(i)));
    let exprs = output.iter().enumerate().map(|(i, (qualifier, field))| {
        let source = match shown.iter().position(|(key, _)| *key == i) {
            Some(nth) => column(keys + aggregates + nth),
            None => column(i),
        };
        source.alias_qualified(qualifier.cloned(), field.name())
    });
    let projection =
        Projection::try_new(exprs.collect(), Arc::new(LogicalPlan::Aggregate(grouped)))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

fn is_interval_type(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Interval(_))
}

/// `expr` as its length if it is an interval.
fn by_length(expr: Expr, schema: &DFSchema) -> Expr {
    match is_interval(&expr, schema) {
        true => length_udf().call(vec![expr]),
        false => expr,
    }
}

fn interval_extreme(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    use datafusion::logical_expr::expr::{AggregateFunction, WindowFunctionDefinition};
    let extreme = |name: &str, args: &[Expr]| match (name, args) {
        ("min", [arg]) if is_interval(arg, schema) => Some(super::functions::interval_min()),
        ("max", [arg]) if is_interval(arg, schema) => Some(super::functions::interval_max()),
        _ => None,
    };
    match expr {
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            match extreme(func.name(), &params.args) {
                Some(udaf) => Transformed::yes(Expr::AggregateFunction(AggregateFunction {
                    func: Arc::new(udaf),
                    params,
                })),
                None => {
                    Transformed::no(Expr::AggregateFunction(AggregateFunction { func, params }))
                }
            }
        }
        Expr::WindowFunction(mut window) => {
            let udaf = match &window.fun {
                WindowFunctionDefinition::AggregateUDF(func) => {
                    extreme(func.name(), &window.params.args)
                }
                WindowFunctionDefinition::WindowUDF(_) => None,
            };
            match udaf {
                Some(udaf) => {
                    window.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(udaf));
                    Transformed::yes(Expr::WindowFunction(window))
                }
                None => Transformed::no(Expr::WindowFunction(window)),
            }
        }
        other => Transformed::no(other),
    }
}

/// `justify_days`, `justify_hours` and `justify_interval`, as PostgreSQL
/// computes them (30-day months, 24-hour days, the parts given one sign).
pub fn justify_functions() -> Vec<ScalarUDF> {
    vec![
        justify_udf("justify_days", justify_days),
        justify_udf("justify_hours", justify_hours),
        justify_udf("justify_interval", justify_interval),
    ]
}

/// `justify_hours(interval)`: what a timestamp minus a timestamp is in
/// PostgreSQL (`timestamp_mi`: 24-hour days, `9 days 01:30:00` rather
/// than `217:30:00`; `sql::datetime::date_arithmetic`).
pub fn justify_hours_of(interval: Expr) -> Expr {
    justify_udf("justify_hours", justify_hours).call(vec![interval])
}

fn justify_udf(name: &str, justify: fn(IntervalMonthDayNano) -> IntervalMonthDayNano) -> ScalarUDF {
    let interval = DataType::Interval(IntervalUnit::MonthDayNano);
    let udf = array_udf(name, vec![interval.clone()], interval, move |arrays| {
        let justified: IntervalMonthDayNanoArray = arrays[0]
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| v.map(justify))
            .collect();
        Ok(Arc::new(justified) as ArrayRef)
    });
    udf.as_ref().clone()
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn justify_days(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (mut months, mut days) = (v.months + v.days / 30, v.days % 30);
    if months > 0 && days < 0 {
        days += 30;
        months -= 1;
    } else if months < 0 && days > 0 {
        days -= 30;
        months += 1;
    }
    IntervalMonthDayNano::new(months, days, v.nanoseconds)
}

fn justify_hours(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (days, nanos) = whole_days(v);
    let (days, nanos) = same_sign(days, nanos);
    IntervalMonthDayNano::new(v.months, days, nanos)
}

fn justify_interval(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (day, nanos) = whole_days(v);
    let mut months = v.months.saturating_add(day / 30);
    let mut days = day % 30;
    if months > 0 && (days < 0 || (days == 0 && nanos < 0)) {
        days += 30;
        months -= 1;
    } else if months < 0 && (days > 0 || (days == 0 && nanos > 0)) {
        days -= 30;
        months += 1;
    }
    let (days, nanos) = same_sign(days, nanos);
    IntervalMonthDayNano::new(months, days, nanos)
}

/// The interval's days with its whole days of time added, and the time
/// left.
fn whole_days(v: IntervalMonthDayNano) -> (i32, i64) {
    let wholeday = v.nanoseconds / NANOS_PER_DAY;
    (
        v.days.saturating_add(wholeday as i32),
        v.nanoseconds % NANOS_PER_DAY,
    )
}

/// Days and time given one sign (a day borrowed or lent).
fn same_sign(days: i32, nanos: i64) -> (i32, i64) {
    match (days, nanos) {
        (d, n) if d > 0 && n < 0 => (d - 1, n + NANOS_PER_DAY),
        (d, n) if d < 0 && n > 0 => (d + 1, n - NANOS_PER_DAY),
        other => other,
    }
}

/// PostgreSQL's binary `interval`: microseconds (8 bytes), days, months
/// (4 each), big-endian.
pub fn to_binary(value: IntervalMonthDayNano) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(value.nanoseconds / 1000).to_be_bytes());
    out[8..12].copy_from_slice(&value.days.to_be_bytes());
    out[12..].copy_from_slice(&value.months.to_be_bytes());
    out
}

/// An interval from its binary form ([`to_binary`]). A time part past
/// what nanoseconds in 64 bits hold (about 2562047 hours; PostgreSQL's
/// microseconds reach 1000 times further) is 22008, never cut.
pub fn from_binary(bytes: [u8; 16]) -> Result<IntervalMonthDayNano> {
    let micros = i64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
    let days = i32::from_be_bytes(bytes[8..12].try_into().unwrap_or_default());
    let months = i32::from_be_bytes(bytes[12..].try_into().unwrap_or_default());
    let nanos = micros
        .checked_mul(1000)
        .ok_or_else(|| Error::input(InputError::DatetimeFieldOverflow, "interval out of range"))?;
    Ok(IntervalMonthDayNano::new(months, days, nanos))
}

/// `interval * factor`, as PostgreSQL's `interval_mul`.
pub fn multiply(value: IntervalMonthDayNano, factor: f64) -> Result<IntervalMonthDayNano> {
    scale(value, |field| field * factor)
}

/// `interval / divisor`, as PostgreSQL's `interval_div` (which divides
/// each field: not the product with the inverse, which rounds apart).
pub fn divide(value: IntervalMonthDayNano, divisor: f64) -> Result<IntervalMonthDayNano> {
    if divisor == 0.0 {
        return Err(Error::input(InputError::DivisionByZero, "division by zero"));
    }
    scale(value, |field| field / divisor)
}

/// Each field of `value` through `scaled`, as PostgreSQL's `interval_mul`
/// and `interval_div` do it: whole months and days kept, the fraction of
/// months carried into days and of days into the time (`interval '1 mon' *
/// 1.5` is `1 mon 15 days`), each fraction rounded to microseconds first
/// (`TSROUND`: `interval '1 mon' / 7` is `4 days 06:51:25.6896`, not the
/// exact `...25.714286`).
fn scale(value: IntervalMonthDayNano, scaled: impl Fn(f64) -> f64) -> Result<IntervalMonthDayNano> {
    const SECONDS_PER_DAY: f64 = 86_400.0;
    let out_of_range = || Error::input(InputError::DatetimeFieldOverflow, "interval out of range");
    let whole = |v: f64| match v.is_nan() || v > f64::from(i32::MAX) || v < f64::from(i32::MIN) {
        true => Err(out_of_range()),
        false => Ok(v as i32),
    };
    let tsround = |v: f64| (v * MICROS_PER_SECOND).round_ties_even() / MICROS_PER_SECOND;
    let (months, days) = (
        scaled(f64::from(value.months)),
        scaled(f64::from(value.days)),
    );
    let (result_months, mut result_days) = (whole(months)?, whole(days)?);
    let month_days = tsround((months - f64::from(result_months)) * DAYS_PER_MONTH);
    let mut seconds = tsround(
        (days - f64::from(result_days) + month_days - month_days.trunc()) * SECONDS_PER_DAY,
    );
    if seconds.abs() >= SECONDS_PER_DAY {
        let carried = (seconds / SECONDS_PER_DAY).trunc();
        result_days = result_days
            .checked_add(carried as i32)
            .ok_or_else(out_of_range)?;
        seconds -= carried * SECONDS_PER_DAY;
    }
    result_days = result_days
        .checked_add(month_days as i32)
        .ok_or_else(out_of_range)?;
    let micros =
        (scaled((value.nanoseconds / 1000) as f64) + seconds * MICROS_PER_SECOND).round_ties_even();
    if micros.is_nan() || micros.abs() >= (i64::MAX / 1000) as f64 {
        return Err(out_of_range());
    }
    Ok(IntervalMonthDayNano::new(
        result_months,
        result_days,
        micros as i64 * 1000,
    ))
}

/// `interval_mul(interval, float8)` and `interval_div(interval, float8)`:
/// [`multiply`] and [`divide`].
pub fn scale_udf(divides: bool) -> Arc<ScalarUDF> {
    let interval = DataType::Interval(IntervalUnit::MonthDayNano);
    let name = if divides {
        "interval_div"
    } else {
        "interval_mul"
    };
    array_udf(
        name,
        vec![interval.clone(), DataType::Float64],
        interval,
        move |arrays| {
            let intervals = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
            let factors = arrays[1].as_primitive::<Float64Type>();
            let results = intervals
                .iter()
                .zip(factors.iter())
                .map(|(i, f)| match (i, f) {
                    (Some(i), Some(f)) if divides => divide(i, f).map(Some),
                    (Some(i), Some(f)) => multiply(i, f).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<IntervalMonthDayNanoArray>>()?;
            Ok(Arc::new(results) as ArrayRef)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (i32, i32, i64) {
        let v = parse(text).unwrap();
        (v.months, v.days, v.nanoseconds / 1000)
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn postgresql_s_input_forms() {
        assert_eq!(read("1 day 02:03:04"), (0, 1, 2 * HOUR + 184_000_000));
        assert_eq!(
            read("1 year 2 mons -3 days +04:05:06.5"),
            (14, -3, 4 * HOUR + 306_500_000)
        );
        assert_eq!(read("@ 1 hour ago"), (0, 0, -HOUR));
        assert_eq!(read("1.5 days"), (0, 1, 12 * HOUR));
        assert_eq!(read("1.5 months"), (1, 15, 0));
        assert_eq!(read("1.5 years"), (18, 0, 0));
        assert_eq!(read("2 weeks"), (0, 14, 0));
        assert_eq!(read("1-2"), (14, 0, 0));
        assert_eq!(read("5"), (0, 0, 5_000_000));
        assert_eq!(read("-01:00:00"), (0, 0, -HOUR));
        assert_eq!(read("1day 10min"), (0, 1, 600_000_000));
        assert_eq!(read("P1Y2M3DT4H5M6S"), (14, 3, 4 * HOUR + 306_000_000));
        assert_eq!(read("PT0.5S"), (0, 0, 500_000));
        assert_eq!(read("00:00:00.000001"), (0, 0, 1));
        assert_eq!(read("1 day 2"), (0, 1, 2_000_000));
        assert_eq!(read("3 4:05:06"), (0, 3, 4 * HOUR + 306_000_000));
        let times = |t: &str, f: f64| {
            let v = multiply(parse(t).unwrap(), f).unwrap();
            (v.months, v.days, v.nanoseconds / 1000)
        };
        assert_eq!(times("1 mon", 1.5), (1, 15, 0));
        assert_eq!(times("1 hour", 2.0), (0, 0, 2 * HOUR));
        assert_eq!(times("1 day", 0.5), (0, 0, 12 * HOUR));
        for bad in ["", "1 fortnight", "day", "1:2:3:4", "P", "PT1X"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn length_counts_30_day_months() {
        let month = parse("1 mon").unwrap();
        assert_eq!(length(month), length(parse("30 days").unwrap()));
        assert!(length(month) < length(parse("40 days").unwrap()));
    }

    #[test]
    fn justify_as_postgresql() {
        let j = |f: fn(IntervalMonthDayNano) -> IntervalMonthDayNano, t: &str| {
            let v = f(parse(t).unwrap());
            (v.months, v.days, v.nanoseconds / 1000)
        };
        assert_eq!(j(justify_days, "35 days"), (1, 5, 0));
        assert_eq!(j(justify_days, "1 mon -1 day"), (0, 29, 0));
        assert_eq!(j(justify_hours, "27 hours"), (0, 1, 3 * HOUR));
        assert_eq!(j(justify_hours, "1 day -1 hour"), (0, 0, 23 * HOUR));
        assert_eq!(j(justify_interval, "1 mon -1 hour"), (0, 29, 23 * HOUR));
        assert_eq!(
            j(justify_interval, "-35 days 25 hours"),
            (-1, -3, -23 * HOUR)
        );
    }

    #[test]
    fn binary_round_trips() {
        let v = parse("-1 year 2 days 03:04:05.000006").unwrap();
        assert_eq!(from_binary(to_binary(v)).unwrap(), v);
        let mut huge = to_binary(v);
        huge[..8].copy_from_slice(&i64::MAX.to_be_bytes());
        assert!(from_binary(huge).is_err());
    }
}
