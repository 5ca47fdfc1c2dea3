//! SQL-level `PREPARE name [(types)] AS statement` and `EXECUTE name
//! [(values)]`, as PostgreSQL runs them (psql scripts, ORMs' raw SQL).
//!
//! The statement is kept parsed, each parameter cast to its declared type,
//! with the parameter types planning it gives; EXECUTE evaluates its values (constant
//! expressions) as a one-row SELECT, converts them to those types, and
//! runs the statement with them as if they were bound by Bind. Statements
//! prepared by Parse and by PREPARE share one namespace in DEALLOCATE; an
//! EXECUTE of a statement prepared by Parse is 26000 here.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, Statement, VisitMut, VisitorMut};
use futures::TryStreamExt;

use super::{Output, Session};
use crate::error::{Error, InputError, Result};
use crate::sql::ddl::{ident_name, sql_type};
use crate::sql::errors::classify;

/// `$n` as `CAST($n AS type)` for each type PREPARE declared, so that the
/// declared type is the parameter's wherever it is used, as in PostgreSQL
/// (the statement's context would type it otherwise).
fn cast_declared_parameters(stmt: &mut Statement, types: &[ast::DataType]) {
    struct Casts<'t>(&'t [ast::DataType]);
    impl VisitorMut for Casts<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Value(value) = expr else {
                return ControlFlow::Continue(());
            };
            let ast::Value::Placeholder(name) = &value.value else {
                return ControlFlow::Continue(());
            };
            let declared = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| self.0.get(n.checked_sub(1)?));
            if let Some(data_type) = declared {
                *expr = Expr::Cast {
                    kind: ast::CastKind::Cast,
                    expr: Box::new(expr.clone()),
                    data_type: data_type.clone(),
                    array: false,
                    format: None,
                };
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Casts(types));
}

/// A statement PREPAREd in SQL.
pub(super) struct SqlPrepared {
    pub stmt: Statement,
    pub types: Vec<Option<DataType>>,
}

impl Session {
    /// `PREPARE name [(types)] AS statement`.
    pub(super) async fn prepare(
        &mut self,
        name: &ast::Ident,
        types: &[ast::DataType],
        stmt: &Statement,
    ) -> Result<Output> {
        let name = ident_name(name);
        if self.prepared.contains_key(&name) {
            return Err(Error::input(
                InputError::DuplicatePreparedStatement,
                format!("prepared statement \"{name}\" already exists"),
            ));
        }
        for t in types {
            sql_type(t)?;
        }
        let mut stmt = stmt.clone();
        cast_declared_parameters(&mut stmt, types);
        let (fields, _) = self.describe(&stmt, &[]).await?;
        let types = fields
            .into_iter()
            .map(|f| f.map(|f| f.data_type().clone()))
            .collect();
        self.prepared.insert(name, SqlPrepared { stmt, types });
        Ok(Output::Command("PREPARE".into()))
    }

    /// `EXECUTE name [(values)]`: the prepared statement's own output.
    pub(super) async fn execute_prepared(
        &mut self,
        name: &Option<ObjectName>,
        values: &[Expr],
    ) -> Result<Output> {
        let (stmt, params) = self.bound(name, values).await?;
        Box::pin(self.execute(&stmt, Some(params))).await
    }

    /// The statement an EXECUTE runs, and its values converted to its
    /// parameters' types.
    pub(super) async fn bound(
        &self,
        name: &Option<ObjectName>,
        values: &[Expr],
    ) -> Result<(Statement, ParamValues)> {
        let prepared = self.sql_prepared(name)?;
        if values.len() != prepared.types.len() {
            return Err(Error::input(
                InputError::Syntax,
                format!(
                    "wrong number of parameters for prepared statement: expected {}, got {}",
                    prepared.types.len(),
                    values.len()
                ),
            ));
        }
        let mut scalars = Vec::with_capacity(values.len());
        if !values.is_empty() {
            let list: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, value)| format!("{value} AS \"${}\"", i + 1))
                .collect();
            let plan = self
                .plan_sql(&format!("SELECT {}", list.join(", ")), None)
                .await?;
            let df = self
                .ctx
                .execute_logical_plan(plan)
                .await
                .map_err(classify)?;
            let batches: Vec<_> = self.run(df).await?.try_collect().await.map_err(classify)?;
            let row = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .ok_or_else(|| Error::Internal("EXECUTE's values gave no row".into()))?;
            for (i, column) in row.columns().iter().enumerate() {
                // A `numeric` of its own scale is converted as a cast to it.
                let column = match &prepared.types[i] {
                    Some(t) if crate::sql::numeric::is_numeric(t) => {
                        crate::sql::numeric::to_numerics(column.as_ref()).map_err(classify)?
                    }
                    _ => column.clone(),
                };
                let value = ScalarValue::try_from_array(&column, 0).map_err(classify)?;
                let value = match &prepared.types[i] {
                    Some(target) if value.data_type() != *target => {
                        value.cast_to(target).map_err(|e| {
                            Error::input(
                                InputError::InvalidText,
                                format!("invalid input for parameter ${}: {e}", i + 1),
                            )
                        })?
                    }
                    _ => value,
                };
                scalars.push(value.into());
            }
        }
        Ok((prepared.stmt.clone(), ParamValues::List(scalars)))
    }

    pub(super) fn sql_prepared(&self, name: &Option<ObjectName>) -> Result<&SqlPrepared> {
        let name = name
            .as_ref()
            .and_then(|n| n.0.last())
            .and_then(|part| part.as_ident())
            .map(ident_name)
            .unwrap_or_default();
        self.prepared.get(&name).ok_or_else(|| {
            Error::input(
                InputError::UndefinedPreparedStatement,
                format!("prepared statement \"{name}\" does not exist"),
            )
        })
    }
}
