//! Planning `numeric` values with their own scale: [`NumericValues`] puts
//! `super::functions` in place of what DataFusion would do with them.
//!
//! DataFusion checks an operator's types as it plans it, so `+ - * / %`
//! and comparisons with such a value are planned here already
//! ([`numeric_operator`], from the session's expression planner), and
//! DataFusion's functions are wrapped to accept them (`super::overloads`).
//! The rule then runs before type coercion, on every node's expressions
//! bottom up:
//!
//! - a cast to `numeric` alone makes such values (`to_numeric`), and a cast
//!   of such values to another type converts them (`from_numeric`);
//! - `+ - * / %`, a negation, and PostgreSQL's numeric functions (`round`,
//!   `trunc`, `abs`, `mod`, `div`, `sqrt`, `scale`, ...) on them compute
//!   with `crate::numeric`; so does `/` of two decimals (or a decimal and
//!   an integer), whose scale PostgreSQL picks per value;
//! - a comparison, `IN` and `BETWEEN` compare their values without the
//!   display scale (`1.5 = 1.50`);
//! - `coalesce`, `nullif`, `greatest`, `least` and `CASE` bring their
//!   operands to one type as PostgreSQL resolves it: a float among them
//!   makes it `double precision`, else integers and decimals become
//!   `numeric`;
//! - text functions (`||`, `concat`, `format`) get the value's text;
//! - `avg` and the variances of integers and decimals read `numeric`
//!   values (`super::overloads` computes them with PostgreSQL's scales);
//!
//! and on nodes: a sort, GROUP BY and DISTINCT by such values (and a
//! window's PARTITION BY and ORDER BY) sort and group by value (`1.5` with
//! `1.50`), and a UNION of numbers of different types is `numeric`.
//!
//! Whatever else meets such a value is left for type coercion, which finds
//! no implicit conversion and fails: an error, never bytes taken for a number.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result as DFResult, ScalarValue};
use datafusion::functions_aggregate::first_last::first_value;
use datafusion::logical_expr::expr::{Case, Placeholder, ScalarFunction, WindowFunctionDefinition};
use datafusion::logical_expr::planner::{PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast, Aggregate, AggregateUDF, BinaryExpr, Cast, Distinct, Expr, ExprSchemable, LogicalPlan,
    Operator, Projection, TryCast, Union,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;

use super::functions::{
    compared, from_numeric, numeric_call, numeric_choice, numeric_function, to_numeric, Operation,
};
use super::values::{is_numeric, NUMERIC};
use crate::sql::analyze::{convert_compared, is_text, rewrite_plan_expressions};

#[derive(Debug, Default)]
pub struct NumericValues;

impl AnalyzerRule for NumericValues {
    fn name(&self) -> &str {
        "postgresql_numeric_values"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        let plan = rewrite_plan_expressions(plan, |expr, schema| Ok(numeric_values(expr, schema)))?;
        plan.data
            .transform_up_with_subqueries(|node| match node {
                LogicalPlan::Sort(_) => sorted_by_value(node),
                LogicalPlan::Aggregate(_) => grouped_by_value(node),
                LogicalPlan::Union(_) => union_columns(node),
                LogicalPlan::Distinct(Distinct::All(input))
                    if input
                        .schema()
                        .fields()
                        .iter()
                        .any(|f| is_numeric(f.data_type())) =>
                {
                    // DISTINCT is a GROUP BY of every column.
                    let columns = input
                        .schema()
                        .columns()
                        .into_iter()
                        .map(Expr::Column)
                        .collect();
                    let grouped = Aggregate::try_new(input, columns, vec![])?;
                    grouped_by_value(LogicalPlan::Aggregate(grouped))
                }
                node => Ok(Transformed::no(node)),
            })
            .map(|t| t.data)
    }
}

/// A UNION's columns of numbers of different types are `numeric`, as
/// PostgreSQL resolves them (`SELECT 1 UNION SELECT 2.5` shows 1, where a
/// decimal column would show 1.0): a column with a `numeric` value, or
/// with decimals of different scales or decimals and integers, is made
/// one in every branch. A column with floats is made the floats' type
/// (`SELECT f8 UNION SELECT 0.5` is `double precision`).
fn union_columns(node: LogicalPlan) -> DFResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Union(union) = &node else {
        return Ok(Transformed::no(node));
    };
    let width = union.schema.fields().len();
    let numeric_column = |i: usize| {
        let types: Vec<DataType> = union
            .inputs
            .iter()
            .map(|input| input.schema().field(i).data_type().clone())
            .collect();
        let decimal = types.iter().any(is_decimal_type);
        let exact = |t: &DataType| {
            is_numeric(t) || t.is_integer() || is_decimal_type(t) || *t == DataType::Null
        };
        let mixed = types.windows(2).any(|w| w[0] != w[1]);
        let float = types.iter().any(DataType::is_floating);
        let exact_or_float = |t: &DataType| exact(t) || t.is_floating();
        match float {
            // Floats and exact numbers: all floats.
            true => (types.iter().all(exact_or_float) && mixed).then(|| float_type(&types)),
            false => {
                (types.iter().all(exact) && mixed && (decimal || types.iter().any(is_numeric)))
                    .then_some(NUMERIC)
            }
        }
    };
    let converted: Vec<(usize, DataType)> = (0..width)
        .filter_map(|i| numeric_column(i).map(|t| (i, t)))
        .collect();
    if converted.is_empty() {
        return Ok(Transformed::no(node));
    }
    let inputs = union
        .inputs
        .iter()
        .map(|input| {
            let schema = input.schema();
            let columns = (0..width)
                .map(|i| {
                    let (qualifier, field) = schema.qualified_field(i);
                    let column = Expr::Column(Column::from((qualifier, field)));
                    let target = converted.iter().find(|(c, _)| *c == i).map(|(_, t)| t);
                    let converted = match target {
                        Some(t) if t.is_floating() => as_float_type(column, t, schema),
                        Some(_) => as_numeric(column, schema),
                        None => return column,
                    };
                    converted.alias_qualified(qualifier.cloned(), field.name())
                })
                .collect();
            Ok(Arc::new(LogicalPlan::Projection(Projection::try_new(
                columns,
                input.clone(),
            )?)))
        })
        .collect::<DFResult<Vec<_>>>()?;
    Ok(Transformed::yes(LogicalPlan::Union(
        Union::try_new_with_loose_types(inputs)?,
    )))
}

/// A GROUP BY of `numeric` values groups by their values alone (`1.5` and
/// `1.50` are one group, as in PostgreSQL), and shows each group's first
/// value, as PostgreSQL does:
///
/// ```text
/// Aggregate: groupBy=[n], aggr=[count(*)]
///   => Projection: first AS n, count(*)
///        Aggregate: groupBy=[compared(n)], aggr=[count(*), first_value(n) AS first]
/// ```
fn grouped_by_value(node: LogicalPlan) -> DFResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Aggregate(aggregate) = &node else {
        return Ok(Transformed::no(node));
    };
    let input = aggregate.input.schema();
    let numeric: Vec<bool> = aggregate
        .group_expr
        .iter()
        .map(|e| !matches!(e, Expr::GroupingSet(_)) && kind(e, input) == Kind::Numeric)
        .collect();
    if !numeric.contains(&true) {
        return Ok(Transformed::no(node));
    }
    let mut group_expr = Vec::with_capacity(numeric.len());
    let mut aggr_expr = aggregate.aggr_expr.clone();
    let mut shown = Vec::new();
    for (i, (expr, numeric)) in aggregate.group_expr.iter().zip(&numeric).enumerate() {
        match numeric {
            true => {
                group_expr.push(compared(expr.clone()).alias(format!("numeric_group_{i}")));
                let first = format!("numeric_first_{i}");
                aggr_expr.push(first_value(expr.clone(), vec![]).alias(&first));
                shown.push(Some(first));
            }
            false => {
                group_expr.push(expr.clone());
                shown.push(None);
            }
        }
    }
    let output = node.schema().clone();
    let grouped = LogicalPlan::Aggregate(Aggregate::try_new(
        aggregate.input.clone(),
        group_expr,
        aggr_expr,
    )?);
    let inner = grouped.schema().clone();
    let columns = output
        .iter()
        .enumerate()
        .map(|(at, (qualifier, field))| {
            // The groups come first, then the aggregates, in both.
            let source = match shown.get(at).and_then(Option::as_ref) {
                Some(first) => Column::new_unqualified(first),
                None => Column::from(inner.qualified_field(at)),
            };
            let source = Expr::Column(source);
            source.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok(Transformed::yes(LogicalPlan::Projection(
        Projection::try_new(columns, Arc::new(grouped))?,
    )))
}

/// A sort by `numeric` values sorts by their values alone: their bytes
/// end with the display scale, which would order `2.5` before an equal
/// `2.50` ahead of the next sort key.
fn sorted_by_value(node: LogicalPlan) -> DFResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Sort(mut sort) = node else {
        return Ok(Transformed::no(node));
    };
    let schema = sort.input.schema().clone();
    let mut changed = false;
    for key in sort.expr.iter_mut() {
        if kind(&key.expr, &schema) == Kind::Numeric {
            key.expr = compared(key.expr.clone());
            changed = true;
        }
    }
    Ok(Transformed::new_transformed(
        LogicalPlan::Sort(sort),
        changed,
    ))
}

/// How an operand takes part beside a `numeric` value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A `numeric` value with its own scale.
    Numeric,
    /// An integer, a decimal or a NULL: becomes `numeric`.
    Exact,
    /// A float: makes the whole `double precision`.
    Float,
    /// A text constant (PostgreSQL's unknown type): read as a number.
    Text,
    /// Anything else: left for type coercion to refuse.
    Other,
}

fn kind(expr: &Expr, schema: &DFSchema) -> Kind {
    let Ok(data_type) = expr.get_type(schema) else {
        return Kind::Other;
    };
    match data_type {
        t if is_numeric(&t) => Kind::Numeric,
        t if t.is_integer() => Kind::Exact,
        DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Null => Kind::Exact,
        DataType::Float32 | DataType::Float64 => Kind::Float,
        t if is_text(&t) && matches!(expr, Expr::Literal(..)) => Kind::Text,
        _ => Kind::Other,
    }
}

fn is_decimal(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).is_ok_and(|t| is_decimal_type(&t))
}

fn is_decimal_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Decimal128(..) | DataType::Decimal256(..)
    )
}

fn numeric_values(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let numeric = |e: &Expr| kind(e, schema) == Kind::Numeric;
    match expr {
        Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field })
            if is_numeric(field.data_type()) =>
        {
            Transformed::yes(as_numeric(*inner, schema))
        }
        Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field })
            if numeric(&inner) =>
        {
            Transformed::yes(from_numeric(*inner, field.data_type()))
        }
        // Text and floats become `numeric(p, s)` as PostgreSQL reads them:
        // by `numeric_in`, a float by its 15 digits, then the typmod.
        Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field })
            if is_decimal_type(field.data_type())
                && inner
                    .get_type(schema)
                    .is_ok_and(|t| is_text(&t) || t.is_floating()) =>
        {
            let value = as_numeric(*inner, schema);
            Transformed::yes(from_numeric(value, field.data_type()))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => binary(*left, op, *right, schema),
        Expr::ScalarFunction(call) if on_numerics(&call, schema) => function(call, schema),
        Expr::Case(case) => case_branches(case, schema),
        Expr::AggregateFunction(mut aggregate) => {
            let func = aggregate.func.clone();
            let params = &mut aggregate.params;
            let changed = aggregate_arguments(&func, params.distinct, &mut params.args, schema);
            Transformed::new_transformed(Expr::AggregateFunction(aggregate), changed)
        }
        Expr::WindowFunction(mut window) => {
            let changed = match &window.fun {
                WindowFunctionDefinition::AggregateUDF(func) => {
                    let func = func.clone();
                    let params = &mut window.params;
                    aggregate_arguments(&func, params.distinct, &mut params.args, schema)
                }
                // `lag(n, 1, 0)`: the default is of the value's type (cast
                // by DataFusion, an integer's bytes were no `numeric`).
                WindowFunctionDefinition::WindowUDF(func)
                    if matches!(func.name(), "lag" | "lead") =>
                {
                    match window.params.args.as_mut_slice() {
                        [value, _, default] if numeric(value) && !numeric(default) => {
                            *default = as_numeric(default.clone(), schema);
                            true
                        }
                        _ => false,
                    }
                }
                WindowFunctionDefinition::WindowUDF(_) => false,
            };
            // Partitioned and ordered by value (`1.5` and `1.50` in one
            // partition, peers), as a GROUP BY and a sort are.
            let params = &mut window.params;
            let keys = (params.partition_by.iter_mut())
                .chain(params.order_by.iter_mut().map(|sort| &mut sort.expr));
            let mut keyed = false;
            for key in keys.filter(|key| numeric(key)) {
                *key = compared(key.clone());
                keyed = true;
            }
            Transformed::new_transformed(Expr::WindowFunction(window), changed || keyed)
        }
        Expr::InList(mut in_list) if numeric(&in_list.expr) || in_list.list.iter().any(numeric) => {
            let key = |e: Expr| compared(as_numeric(e, schema));
            in_list.expr = Box::new(key(*in_list.expr));
            in_list.list = in_list.list.into_iter().map(key).collect();
            Transformed::yes(Expr::InList(in_list))
        }
        Expr::Between(mut between)
            if [&between.expr, &between.low, &between.high]
                .into_iter()
                .any(|e| numeric(e)) =>
        {
            let key = |e: Box<Expr>| Box::new(compared(as_numeric(*e, schema)));
            between.expr = key(between.expr);
            between.low = key(between.low);
            between.high = key(between.high);
            Transformed::yes(Expr::Between(between))
        }
        other => Transformed::no(other),
    }
}

/// Whether a function call computes on `numeric` values: one of its
/// arguments is one, it is one of PostgreSQL's functions of `numeric`
/// alone, its arguments are numbers that are `numeric` together
/// (`coalesce(price, 0)`), or it has a `numeric` version that PostgreSQL
/// picks for a decimal argument (`sqrt(2.0)`; `sqrt(2)` is the float's).
fn on_numerics(call: &ScalarFunction, schema: &DFSchema) -> bool {
    let args = &call.args;
    args.iter().any(|a| kind(a, schema) == Kind::Numeric)
        || match call.name() {
            "scale" | "min_scale" | "trim_scale" | "div" => true,
            "coalesce" | "nullif" | "greatest" | "least" => numeric_together(args, schema),
            // `log(b, x)` is `numeric` only, integers too (`log(2, 8)` is
            // 3.0000000000000000).
            "log" if args.len() == 2 => args.iter().all(|a| kind(a, schema) == Kind::Exact),
            "exp" | "ln" | "log" | "log10" | "power" | "sqrt" => {
                args.iter().any(|a| is_decimal(a, schema))
            }
            // A decimal rounded to more digits than its scale shows them
            // (`round(1.55, 4)` is 1.5500; DataFusion kept the scale).
            "round" | "trunc" if args.len() == 2 => is_decimal(&args[0], schema),
            "generate_series" => args.iter().any(|a| is_decimal(a, schema)),
            _ => false,
        }
}

/// The arguments of an aggregate as PostgreSQL reads them: the variances
/// of integers and decimals are of `numeric` values (computed by
/// `super::overloads`), and `count(DISTINCT x)` counts values, not their
/// scales (`1.5` and `1.50` are one). Whether any changed.
fn aggregate_arguments(
    func: &AggregateUDF,
    distinct: bool,
    args: &mut [Expr],
    schema: &DFSchema,
) -> bool {
    let [arg] = args else {
        return false;
    };
    let named = |names: &[&str]| {
        std::iter::once(func.name())
            .chain(func.aliases().iter().map(String::as_str))
            .any(|n| names.contains(&n))
    };
    // (`avg` sums integers and decimals as they are: `overloads`.)
    let numeric_result = named(&["var_samp", "var_pop", "stddev_samp", "stddev_pop"]);
    let converted = match kind(arg, schema) {
        Kind::Exact if numeric_result && !matches!(arg.get_type(schema), Ok(DataType::Null)) => {
            as_numeric(arg.clone(), schema)
        }
        Kind::Numeric if distinct && named(&["count"]) => compared(arg.clone()),
        _ => return false,
    };
    *arg = converted;
    true
}

/// `expr` as a `numeric` value: itself if it is one, converted if it is an
/// integer, decimal, float or text; a parameter without a type becomes a
/// `numeric` parameter.
fn as_numeric(expr: Expr, schema: &DFSchema) -> Expr {
    match expr {
        Expr::Placeholder(Placeholder { id, field: None }) => {
            Expr::Placeholder(Placeholder::new_with_field(
                id,
                Some(std::sync::Arc::new(
                    datafusion::arrow::datatypes::Field::new("", NUMERIC, true),
                )),
            ))
        }
        expr => match expr.get_type(schema) {
            Ok(from) => to_numeric(expr, &from),
            Err(_) => expr,
        },
    }
}

/// `expr`, a `numeric` value, as a float (PostgreSQL computes `numeric op
/// float8` in `float8`).
fn as_float(expr: Expr, schema: &DFSchema) -> Expr {
    as_float_type(expr, &DataType::Float64, schema)
}

/// A `numeric` value or a decimal as the float type `target`. (Beside a
/// float DataFusion would make both `numeric(30, 15)`: `f8 > 0.0` was
/// false for 1e-20, and 1e16 failed.)
fn as_float_type(expr: Expr, target: &DataType, schema: &DFSchema) -> Expr {
    match kind(&expr, schema) {
        Kind::Numeric => from_numeric(expr, target),
        Kind::Exact if is_decimal(&expr, schema) => cast(expr, target.clone()),
        _ => expr,
    }
}

/// The float type numbers of `types` take together: `real` when every
/// float among them is one, else `double precision`, as PostgreSQL
/// resolves a CASE, `coalesce` or UNION of them.
fn float_type<'a>(types: impl IntoIterator<Item = &'a DataType>) -> DataType {
    match types.into_iter().all(|t| *t != DataType::Float64) {
        true => DataType::Float32,
        false => DataType::Float64,
    }
}

/// `a op b` planned with a `numeric` operand (or as a quotient of
/// decimals): DataFusion would refuse the types as it plans the
/// operator, before [`NumericValues`] sees it.
pub fn numeric_operator(expr: RawBinaryExpr, schema: &DFSchema) -> PlannerResult<RawBinaryExpr> {
    let op = match expr.op {
        ast::BinaryOperator::Plus => Operator::Plus,
        ast::BinaryOperator::Minus => Operator::Minus,
        ast::BinaryOperator::Multiply => Operator::Multiply,
        ast::BinaryOperator::Divide => Operator::Divide,
        ast::BinaryOperator::Modulo => Operator::Modulo,
        ast::BinaryOperator::Eq => Operator::Eq,
        ast::BinaryOperator::NotEq => Operator::NotEq,
        ast::BinaryOperator::Lt => Operator::Lt,
        ast::BinaryOperator::LtEq => Operator::LtEq,
        ast::BinaryOperator::Gt => Operator::Gt,
        ast::BinaryOperator::GtEq => Operator::GtEq,
        ast::BinaryOperator::StringConcat => Operator::StringConcat,
        _ => return PlannerResult::Original(expr),
    };
    let kinds = [kind(&expr.left, schema), kind(&expr.right, schema)];
    let quotient = op == Operator::Divide
        && kinds == [Kind::Exact, Kind::Exact]
        && (is_decimal(&expr.left, schema) || is_decimal(&expr.right, schema));
    if !kinds.contains(&Kind::Numeric) && !quotient {
        return PlannerResult::Original(expr);
    }
    let planned = binary(expr.left.clone(), op, expr.right.clone(), schema);
    match planned.transformed {
        true => PlannerResult::Planned(planned.data),
        false => PlannerResult::Original(expr),
    }
}

fn binary(left: Expr, op: Operator, right: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let (lk, rk) = (kind(&left, schema), kind(&right, schema));
    let involved = lk == Kind::Numeric || rk == Kind::Numeric;
    let (name, operation): (&str, Operation) = match op {
        Operator::Plus => ("numeric_add", |v| v[0].add(&v[1])),
        Operator::Minus => ("numeric_sub", |v| v[0].sub(&v[1])),
        Operator::Multiply => ("numeric_mul", |v| v[0].mul(&v[1])),
        Operator::Divide => ("numeric_div", |v| v[0].div(&v[1])),
        Operator::Modulo => ("numeric_mod", |v| v[0].modulo(&v[1])),
        Operator::StringConcat if involved => {
            let text = |e: Expr| match kind(&e, schema) {
                Kind::Numeric => from_numeric(e, &DataType::Utf8),
                _ => e,
            };
            return Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(text(left)),
                op,
                Box::new(text(right)),
            )));
        }
        _ => {
            let expr = Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)));
            return compared_operands(expr, schema);
        }
    };
    // PostgreSQL's quotient of two decimals has a scale per value.
    let decimal_quotient = op == Operator::Divide
        && (is_decimal(&left, schema) || is_decimal(&right, schema))
        && lk == Kind::Exact
        && rk == Kind::Exact;
    if !(involved || decimal_quotient) {
        return Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(left),
            op,
            Box::new(right),
        )));
    }
    match (lk, rk) {
        (Kind::Float, _) | (_, Kind::Float) => Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(as_float(left, schema)),
            op,
            Box::new(as_float(right, schema)),
        ))),
        (Kind::Other, _) | (_, Kind::Other) => Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(left),
            op,
            Box::new(right),
        ))),
        _ => {
            let args = vec![as_numeric(left, schema), as_numeric(right, schema)];
            Transformed::yes(numeric_call(name, operation, args))
        }
    }
}

/// A comparison with a `numeric` value: beside a float both are compared
/// as floats, else both as `numeric` values without their scale.
fn compared_operands(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr {
        let kinds = [kind(left, schema), kind(right, schema)];
        if kinds.contains(&Kind::Numeric) && kinds.contains(&Kind::Float) {
            return Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(as_float(*left.clone(), schema)),
                *op,
                Box::new(as_float(*right.clone(), schema)),
            )));
        }
    }
    let numeric = |e: &Expr| kind(e, schema) == Kind::Numeric;
    convert_compared(expr, numeric, |e| compared(as_numeric(e, schema)))
}

/// A function with a `numeric` argument.
fn function(call_: ScalarFunction, schema: &DFSchema) -> Transformed<Expr> {
    let name = call_.name().to_string();
    let args = call_.args.clone();
    match name.as_str() {
        "coalesce" | "nullif" | "greatest" | "least" => {
            let args = unified(args, schema);
            let all_numeric = args.iter().all(|a| kind(a, schema) == Kind::Numeric);
            match all_numeric
                .then(|| numeric_choice(&name, args.clone()))
                .flatten()
            {
                Some(call) => Transformed::yes(call),
                None => Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    call_.func, args,
                ))),
            }
        }
        "concat" | "concat_ws" | "format" => {
            let args = args
                .into_iter()
                .map(|a| match kind(&a, schema) {
                    Kind::Numeric => from_numeric(a, &DataType::Utf8),
                    _ => a,
                })
                .collect();
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                call_.func, args,
            )))
        }
        "cbrt" | "to_char" => {
            // Computed in float8 until they have numeric versions.
            let args = args.into_iter().map(|a| as_float(a, schema)).collect();
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                call_.func, args,
            )))
        }
        "generate_series" => {
            let args = args.into_iter().map(|a| as_numeric(a, schema)).collect();
            Transformed::yes(super::functions::numeric_series(args))
        }
        "width_bucket" => {
            // Bucketed exactly as a wide decimal (`functions::numbers`).
            let args = args
                .into_iter()
                .map(|a| match kind(&a, schema) {
                    Kind::Numeric => from_numeric(a, &DataType::Decimal256(76, 38)),
                    _ => a,
                })
                .collect();
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                call_.func, args,
            )))
        }
        _ => {
            let exact = args
                .iter()
                .all(|a| matches!(kind(a, schema), Kind::Numeric | Kind::Exact | Kind::Text));
            let numeric_args: Vec<Expr> = args
                .iter()
                .cloned()
                .map(|a| as_numeric(a, schema))
                .collect();
            match exact
                .then(|| numeric_function(&name, numeric_args))
                .flatten()
            {
                Some(call) => Transformed::yes(call),
                None => Transformed::no(Expr::ScalarFunction(call_)),
            }
        }
    }
}

/// Whether operands that must be of one type (a CASE's branches,
/// `coalesce`'s arguments) are `numeric` as PostgreSQL resolves them: one
/// is, or they are decimals of different scales or decimals and integers
/// (`coalesce(price, 0)` of a `numeric(10,2)` is `numeric`: its 0 is `0`,
/// not `0.00`), and all are numbers.
fn numeric_together(args: &[Expr], schema: &DFSchema) -> bool {
    let kinds: Vec<Kind> = args.iter().map(|a| kind(a, schema)).collect();
    if kinds.contains(&Kind::Other) || kinds.contains(&Kind::Text) {
        return false;
    }
    let types: Vec<DataType> = args
        .iter()
        .filter_map(|a| a.get_type(schema).ok())
        .filter(|t| *t != DataType::Null)
        .collect();
    let decimal = types
        .iter()
        .any(|t| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)));
    kinds.contains(&Kind::Numeric) || (decimal && types.windows(2).any(|w| w[0] != w[1]))
}

/// An array literal's `numeric` elements as a `numeric[]` holds them:
/// `numeric(38, 10)` (`SqlType::to_arrow`), which DataFusion can then
/// type together with the others as it plans the literal.
pub fn numeric_elements(exprs: Vec<Expr>, schema: &DFSchema) -> Vec<Expr> {
    exprs
        .into_iter()
        .map(|e| match kind(&e, schema) {
            Kind::Numeric => from_numeric(e, &DataType::Decimal128(38, 10)),
            _ => e,
        })
        .collect()
}

/// Operands brought to one type beside a `numeric` value (module docs).
fn unified(args: Vec<Expr>, schema: &DFSchema) -> Vec<Expr> {
    if !numeric_together(&args, schema) {
        return args;
    }
    let types: Vec<DataType> = args
        .iter()
        .filter_map(|a| a.get_type(schema).ok())
        .collect();
    let float = types.iter().any(DataType::is_floating);
    let target = float_type(&types);
    args.into_iter()
        .map(|a| match float {
            true => as_float_type(a, &target, schema),
            false => as_numeric(a, schema),
        })
        .collect()
}

/// A CASE with a `numeric` branch: its branches brought to one type.
fn case_branches(case: Case, schema: &DFSchema) -> Transformed<Expr> {
    let branches: Vec<Expr> = case
        .when_then_expr
        .iter()
        .map(|(_, then)| *then.clone())
        .chain(case.else_expr.as_deref().cloned())
        .collect();
    let together = numeric_together(&branches, schema);
    let case = compared_case(case, schema);
    if !together {
        return case;
    }
    let case = match case.data {
        Expr::Case(case) => case,
        other => return Transformed::yes(other),
    };
    let mut unified = unified(branches, schema).into_iter();
    let when_then_expr = case
        .when_then_expr
        .into_iter()
        .map(|(when, _)| (when, Box::new(unified.next().unwrap_or_else(null))))
        .collect();
    let else_expr = case
        .else_expr
        .map(|_| Box::new(unified.next().unwrap_or_else(null)));
    Transformed::yes(Expr::Case(Case::new(case.expr, when_then_expr, else_expr)))
}

fn null() -> Expr {
    Expr::Literal(ScalarValue::Null, None)
}

/// A simple CASE (`CASE x WHEN ...`) of a `numeric` value compares the
/// values without their scale.
fn compared_case(mut case: Case, schema: &DFSchema) -> Transformed<Expr> {
    let Some(operand) = case.expr.take() else {
        return Transformed::no(Expr::Case(case));
    };
    let numeric = |e: &Expr| kind(e, schema) == Kind::Numeric;
    if !numeric(&operand) && !case.when_then_expr.iter().any(|(when, _)| numeric(when)) {
        case.expr = Some(operand);
        return Transformed::no(Expr::Case(case));
    }
    let key = |e: Expr| Box::new(compared(as_numeric(e, schema)));
    case.expr = Some(key(*operand));
    case.when_then_expr = case
        .when_then_expr
        .into_iter()
        .map(|(when, then)| (key(*when), then))
        .collect();
    Transformed::yes(Expr::Case(case))
}
