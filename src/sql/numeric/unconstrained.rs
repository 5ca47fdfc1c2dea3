//! `numeric` without precision and scale: a value keeps its own digits.
//!
//! - [`UnconstrainedCasts`]: a cast to `numeric` alone keeps the value's
//!   scale (a constant's by its digits: [`decimal_literal`]).
//! - An unconstrained numeric's value (a column's, or such a cast's) is
//!   marked in its field's metadata (`SqlType::UnconstrainedNumeric`) and
//!   shown without its column scale's trailing zeros (`sql::output`);
//!   [`unconstrained_arithmetic`] and the aggregates (`super::typed_results`)
//!   keep the mark on `+ - *`, `coalesce`, `CASE` and the like, `sum`,
//!   `min` and `max` of such values, the casts of `super` on text and
//!   floats cast to `numeric` alone.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    cast, BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::{constant, float_digits, MAX_PRECISION};
use crate::catalog::SqlType;

/// A cast to `numeric` without precision and scale keeps the value's own
/// scale, as PostgreSQL's does: `2.50::numeric` is `2.50`, `5::numeric`
/// `5`, `'1.5e-3'::numeric` `0.0015`, `0.1::float8::numeric` `0.1`.
/// DataFusion reads such a cast as `numeric(38, 10)`, so
/// `'1.25'::numeric * 2` showed `2.5000000000`. A decimal is left as it is, an integer
/// becomes a decimal of scale 0, and a constant text or float (a literal,
/// or a parameter once bound) the decimal of its own digits. A column of
/// text or floats still gets `numeric(38, 10)`: an Arrow decimal column
/// has one scale.
#[derive(Debug, Default)]
pub struct UnconstrainedCasts;

impl AnalyzerRule for UnconstrainedCasts {
    fn name(&self) -> &str {
        "postgresql_unconstrained_numeric_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DFResult<LogicalPlan> {
        crate::sql::analyze::rewrite_plan_expressions(plan, |expr, schema| {
            let expr = unconstrained_cast(expr, schema);
            Ok(match expr.transformed {
                true => expr,
                false => match unconstrained_arithmetic(&expr.data, schema) {
                    Some(marked) => Transformed::yes(marked),
                    None => expr,
                },
            })
        })
        .map(|t| t.data)
    }
}

/// An expression that computes a decimal from decimals one of which is an
/// unconstrained numeric's value (a column's, or a cast to `numeric`
/// alone) is one too, and is shown as its values are ([`unconstrained`]):
/// `price * 2` of a stored 19.99 is 39.98, not 39.9800000000, and
/// `coalesce(bonus, 0)` of none is 0. So are `+ - *`, a negation, `abs`,
/// `coalesce`, `nullif`, `greatest`, `least` and `CASE` (a branch of a
/// constrained numeric then loses its trailing zeros: each PostgreSQL
/// value has its own scale, an Arrow column one). Run before type
/// coercion (in [`UnconstrainedCasts`]), so that the aggregates and text
/// casts over such an expression see the mark, and again after it (in
/// `sql::checked`'s pass), where the results of `sum`, `min` and `max` are
/// marked too (`min(amount) * 2`); a quotient keeps PostgreSQL's scale
/// (`numeric_division`).
pub fn unconstrained_arithmetic(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    // Marked by both passes: once is enough.
    if let Some(inner) = marked_twice(expr) {
        return Some(inner.clone());
    }
    let marked = |e: &Expr| {
        e.to_field(schema)
            .is_ok_and(|(_, f)| SqlType::is_unconstrained_numeric(&f))
    };
    let decimal = || matches!(expr.get_type(schema), Ok(DataType::Decimal128(..)));
    let carries = match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && (marked(left) || marked(right))
                && decimal()
        }
        Expr::Negative(inner) => marked(inner),
        Expr::ScalarFunction(call) => {
            matches!(
                call.name(),
                "abs" | "coalesce" | "nullif" | "greatest" | "least"
            ) && call.args.iter().any(marked)
                && decimal()
        }
        // Before coercion a CASE has its first branch's type: it will be
        // a decimal if every branch is a number, none a float.
        Expr::Case(case) => {
            let branches = || {
                case.when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(case.else_expr.as_deref())
            };
            let exact = |e: &Expr| {
                e.get_type(schema).is_ok_and(|t| {
                    t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Null)
                })
            };
            branches().any(marked) && branches().all(exact)
        }
        _ => false,
    };
    carries.then(|| unconstrained().call(vec![expr.clone()]))
}

/// The inner call of `unconstrained_numeric(unconstrained_numeric(x))`.
fn marked_twice(expr: &Expr) -> Option<&Expr> {
    fn mark(e: &Expr) -> Option<&Expr> {
        match e {
            Expr::ScalarFunction(call) if call.name() == MARK => call.args.first(),
            _ => None,
        }
    }
    mark(expr).filter(|inner| mark(inner).is_some())
}

/// `unconstrained_numeric(x)`: the decimal `x`, its field marked as an
/// unconstrained numeric's, so that its values are shown without their
/// scale's trailing zeros (`SqlType::UnconstrainedNumeric`).
pub(super) fn unconstrained() -> ScalarUDF {
    ScalarUDF::new_from_impl(MarkUnconstrained {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MarkUnconstrained {
    signature: Signature,
}

/// The name of [`unconstrained`]'s function.
const MARK: &str = "unconstrained_numeric";

impl ScalarUDFImpl for MarkUnconstrained {
    fn name(&self) -> &str {
        MARK
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let numeric = SqlType::UnconstrainedNumeric;
        let data_type = args.arg_fields[0].data_type().clone();
        Ok(Arc::new(
            Field::new(self.name(), data_type, true).with_metadata(numeric.metadata()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

fn unconstrained_cast(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Transformed::no(expr);
    };
    let marked = SqlType::is_unconstrained_numeric(field);
    if !marked {
        return constrained_cast(expr, schema);
    }
    let Ok(from) = inner.get_type(schema) else {
        return Transformed::no(expr);
    };
    let own = match (&from, inner.as_ref()) {
        (DataType::Decimal128(..) | DataType::Decimal256(..), _) => Some(*inner.clone()),
        (t, _) if t.is_integer() => Some(cast(*inner.clone(), DataType::Decimal128(20, 0))),
        (_, inner) => constant(inner)
            .as_ref()
            .and_then(constant_text)
            .and_then(|text| decimal_literal(&text))
            .map(|value| Expr::Literal(value, None)),
    };
    match own {
        Some(own) => Transformed::yes(own),
        None => Transformed::no(expr),
    }
}

/// A cast to `numeric(p, s)` of an unconstrained numeric's value, with a
/// target field of its own: DataFusion carries a cast's source metadata
/// over when it names a type only, so `bonus::numeric(10, 2)` showed
/// 100.5 instead of 100.50.
fn constrained_cast(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Transformed::no(expr);
    };
    let type_only = field.name().is_empty() && field.metadata().is_empty();
    let from_marked = inner
        .to_field(schema)
        .is_ok_and(|(_, f)| SqlType::is_unconstrained_numeric(&f));
    if !(type_only && from_marked && matches!(field.data_type(), DataType::Decimal128(..))) {
        return Transformed::no(expr);
    }
    let own = Field::new("numeric", field.data_type().clone(), true);
    Transformed::yes(Expr::Cast(Cast::new_from_field(
        inner.clone(),
        Arc::new(own),
    )))
}

/// The digits a constant text or float stands for, as PostgreSQL reads it
/// into a numeric: a float by its 15 significant digits (`float8_numeric`).
fn constant_text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        ScalarValue::Float64(Some(f)) if f.is_finite() => Some(float_digits(*f, 15)),
        ScalarValue::Float32(Some(f)) if f.is_finite() => Some(float_digits(f64::from(*f), 6)),
        _ => None,
    }
}

/// `rewritten`, a cast to `field`'s type done another way, marked as an
/// unconstrained numeric's value where the cast was to `numeric` alone
/// (`f::numeric` of a float 1.5 is 1.5, not 1.5000000000).
pub(super) fn as_cast_to(field: &Field, rewritten: Expr) -> Expr {
    match SqlType::is_unconstrained_numeric(field) {
        true => unconstrained().call(vec![rewritten]),
        false => rewritten,
    }
}

/// The decimal `text` stands for, at the scale its digits give it (`2.50`
/// has scale 2, `1e3` scale 0, `1.5e-3` scale 4): Decimal128 up to 38
/// digits, then Decimal256. None for text that is no number or that
/// neither holds (the cast then reports it or rounds, as before).
pub fn decimal_literal(text: &str) -> Option<ScalarValue> {
    decimal_at(text, crate::sql::copy::numeric_scale(text)?)
}

/// The decimal `text` stands for at `scale` (a binary numeric's display
/// scale), as [`decimal_literal`].
pub fn decimal_at(text: &str, scale: i64) -> Option<ScalarValue> {
    for precision in [MAX_PRECISION, 76] {
        if scale > precision as i64 {
            continue;
        }
        let Ok(value) = crate::sql::copy::numeric(text, precision, scale as i8) else {
            continue;
        };
        let digits = value.to_string().trim_start_matches('-').len() as u8;
        let fitted = digits.max(scale as u8).max(1);
        return Some(match precision {
            MAX_PRECISION => ScalarValue::Decimal128(value.to_i128(), fitted, scale as i8),
            _ => ScalarValue::Decimal256(Some(value), fitted.max(MAX_PRECISION + 1), scale as i8),
        });
    }
    None
}
