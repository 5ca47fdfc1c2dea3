//! Array literals in PostgreSQL's text form (`'{a,"b c",NULL}'::text[]`),
//! read as `array_in` reads them, into an `ARRAY[...]` of the elements
//! each cast to the element type.
//!
//! The compatibility rule this replaces split the text on commas: quotes
//! stayed in the values (`"b c"`), `NULL` was the string `NULL` and a
//! comma inside quotes split an element: wrong values without an error.
//!
//! What is read: elements separated by commas, each either quoted
//! (`"..."`, where a backslash takes the next character as it is) or
//! bare (surrounding spaces dropped, a backslash escaping the next
//! character), a bare `NULL` in any case being a null. Text that is not
//! such a literal is left to the cast, which refuses it: arrays of more
//! than one dimension (`{{1,2},{3,4}}`, not supported) and PostgreSQL's
//! `[1:2]={...}` bounds among it.
//!
//! The same reading serves array columns' input ([`elements`], used by
//! `copy::ColumnInput`), and a string literal beside an array in an
//! operator is read as one ([`array_operator`]), and beside typed values
//! in an `ARRAY[...]` as one of their type ([`array_elements`]).

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::planner::{PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{cast, Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::{
    self, visit_expressions_mut, ArrayElemTypeDef, CastKind, Statement, Value,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use super::rewrite::parse_expr;

/// `'{...}'::type[]` (or `CAST('{...}' AS type[])`) as an `ARRAY[...]` of
/// the elements, each cast to `type` (so each is read as a literal of
/// that type is). An array with no element that is not NULL is cast to
/// `type[]` as a whole to have a type; others are left as bare `ARRAY`s,
/// which `x = ANY(...)` reads as a list (`parse_rules::QuantifiedSubqueries`).
#[derive(Debug)]
pub struct ArrayLiterals;

impl SqlStatementRewriteRule for ArrayLiterals {
    fn rewrite(&self, mut stmt: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut stmt, |expr| {
            if let Some(rewritten) = array_literal(expr) {
                *expr = rewritten;
            }
            ControlFlow::<()>::Continue(())
        });
        stmt
    }
}

fn array_literal(expr: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::Cast {
        kind: CastKind::Cast | CastKind::DoubleColon,
        expr: inner,
        data_type: data_type @ ast::DataType::Array(element),
        format: None,
        ..
    } = expr
    else {
        return None;
    };
    let element_type = match element {
        ArrayElemTypeDef::SquareBracket(t, _)
        | ArrayElemTypeDef::AngleBracket(t)
        | ArrayElemTypeDef::Parenthesis(t) => t,
        ArrayElemTypeDef::None => return None,
    };
    let ast::Expr::Value(value) = inner.as_ref() else {
        return None;
    };
    let Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    let elements = elements(text)?;
    let typed = elements.iter().any(Option::is_some);
    let elements: Vec<String> = elements
        .into_iter()
        .map(|element| match element {
            None => "NULL".into(),
            Some(text) => format!("CAST('{}' AS {element_type})", text.replace('\'', "''")),
        })
        .collect();
    let array = format!("ARRAY[{}]", elements.join(", "));
    parse_expr(&match typed {
        true => array,
        false => format!("CAST({array} AS {data_type})"),
    })
    .ok()
}

/// A string literal compared with an array, or beside one in `@>`, `<@`,
/// `&&` or `||`, is read as an array of its type (`tags = '{a,b}'`;
/// `tags || '{c,d}'` appends two elements, not the string), as
/// PostgreSQL reads an untyped literal; the cast is the array's input
/// function (`datetime::text_input_cast`). Planned with the operator, so
/// that a comparison in a select list has a type. `&&` of arrays (which
/// DataFusion does not plan) is `array_has_any`.
pub fn array_operator(mut expr: RawBinaryExpr, schema: &DFSchema) -> PlannerResult<RawBinaryExpr> {
    use ast::BinaryOperator as Op;
    if !matches!(
        expr.op,
        Op::Eq
            | Op::NotEq
            | Op::Lt
            | Op::LtEq
            | Op::Gt
            | Op::GtEq
            | Op::AtArrow
            | Op::ArrowAt
            | Op::PGOverlap
            | Op::StringConcat
    ) {
        return PlannerResult::Original(expr);
    }
    let list_type = |e: &Expr| match e.get_type(schema) {
        Ok(t @ DataType::List(_)) => Some(t),
        _ => None,
    };
    if let (Some(target), true) = (list_type(&expr.left), is_text(&expr.right)) {
        expr.right = cast(expr.right, target);
    } else if let (true, Some(target)) = (is_text(&expr.left), list_type(&expr.right)) {
        expr.left = cast(expr.left, target);
    }
    match expr.op {
        Op::PGOverlap if list_type(&expr.left).is_some() && list_type(&expr.right).is_some() => {
            PlannerResult::Planned(datafusion::functions_nested::expr_fn::array_has_any(
                expr.left, expr.right,
            ))
        }
        _ => PlannerResult::Original(expr),
    }
}

/// Whether `e` is a string literal, which PostgreSQL reads as a value of
/// the type its context wants.
fn is_text(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::Utf8View(_), _)
    )
}

/// The elements of an `ARRAY[...]` whose other elements are all of one
/// type, with its string literals cast to that type, as PostgreSQL
/// resolves an untyped literal among them (`ARRAY[d, '2024-01-02']` of a
/// date `d` is a `date[]`; DataFusion could not unify a date with a
/// string). The cast is the type's input function where it has one
/// (`datetime::text_input_cast`).
pub fn array_elements(mut exprs: Vec<Expr>, schema: &DFSchema) -> Vec<Expr> {
    let mut types = exprs
        .iter()
        .filter(|e| !is_text(e) && !matches!(e, Expr::Literal(ScalarValue::Null, _)))
        .filter_map(|e| e.get_type(schema).ok());
    let Some(target) = types.next() else {
        return exprs;
    };
    if matches!(target, DataType::Utf8 | DataType::Utf8View) || types.any(|t| t != target) {
        return exprs;
    }
    for e in exprs.iter_mut().filter(|e| is_text(e)) {
        *e = cast(e.clone(), target.clone());
    }
    exprs
}

/// An element read: `None` for a null.
type Element = Option<String>;

/// The elements of `text`, an array in PostgreSQL's text form of one
/// dimension; `None` if it is not one.
pub fn elements(text: &str) -> Option<Vec<Element>> {
    Parser::new(text).literal()
}

struct Parser<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text.chars().peekable(),
        }
    }

    fn skip_spaces(&mut self) {
        while self.rest.next_if(|c| c.is_whitespace()).is_some() {}
    }

    /// The elements of the whole text as one array literal, else `None`.
    fn literal(mut self) -> Option<Vec<Element>> {
        self.skip_spaces();
        if self.rest.next()? != '{' {
            return None;
        }
        let mut elements = Vec::new();
        self.skip_spaces();
        if self.rest.next_if_eq(&'}').is_none() {
            loop {
                self.skip_spaces();
                elements.push(match self.rest.peek()? {
                    '"' => self.quoted()?,
                    _ => self.bare()?,
                });
                self.skip_spaces();
                match self.rest.next()? {
                    ',' => continue,
                    '}' => break,
                    _ => return None,
                }
            }
        }
        self.skip_spaces();
        self.rest.next().is_none().then_some(elements)
    }

    fn quoted(&mut self) -> Option<Element> {
        self.rest.next();
        let mut text = String::new();
        loop {
            match self.rest.next()? {
                '"' => return Some(Some(text)),
                '\\' => text.push(self.rest.next()?),
                c => text.push(c),
            }
        }
    }

    fn bare(&mut self) -> Option<Element> {
        let mut text = String::new();
        // Spaces after the last character that is not one (or that is
        // escaped) are not the element's.
        let mut kept = 0;
        let mut escaped = false;
        while let Some(&c) = self.rest.peek() {
            match c {
                ',' | '}' => break,
                // A sub-array, or a quote inside a bare element.
                '{' | '"' => return None,
                '\\' => {
                    self.rest.next();
                    text.push(self.rest.next()?);
                    kept = text.len();
                    escaped = true;
                    continue;
                }
                _ => {}
            }
            self.rest.next();
            text.push(c);
            if !c.is_whitespace() {
                kept = text.len();
            }
        }
        text.truncate(kept);
        if text.is_empty() {
            return None;
        }
        Some(match !escaped && text.eq_ignore_ascii_case("null") {
            true => None,
            false => Some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<Vec<Element>> {
        elements(text)
    }

    #[test]
    fn elements_are_read_as_array_in_reads_them() {
        let elements = read(r#"{a,"b c",NULL,"",  d e  ,"NULL",nUll,"x\"y",\,z,\null}"#);
        let expected = [
            Some("a"),
            Some("b c"),
            None,
            Some(""),
            Some("d e"),
            Some("NULL"),
            None,
            Some("x\"y"),
            Some(",z"),
            Some("null"),
        ];
        let expected: Vec<Element> = expected.iter().map(|e| e.map(String::from)).collect();
        assert_eq!(elements, Some(expected));
        assert_eq!(read(" { } "), Some(Vec::new()));
    }

    #[test]
    fn text_that_is_not_a_one_dimensional_array_literal_is_left_alone() {
        for bad in [
            "",
            "{",
            "}",
            "{a",
            "{a,}",
            "{,a}",
            "{a b\"c}",
            "{{1,2},{3,4}}",
            "{1,{2}}",
            "{a}x",
            "[1:2]={1,2}",
            "{\"a}",
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }
}
