//! SET, SHOW and RESET of the session's variables (`sql::vars`), and the
//! session time zone they keep DataFusion's in step with.

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{Expr, Ident, Reset, Set, Value};

use super::checks::check_modes;
use super::{rows_of, Output, Session};
use crate::error::{Error, Result};
use crate::sql::vars;

impl Session {
    /// The session time zone, in which `timestamptz` values are shown.
    pub fn time_zone(&self) -> Result<Tz> {
        vars::time_zone(&self.vars.get("timezone")?)
    }

    /// Hands the session time zone to DataFusion, which uses it to read
    /// timestamps written without an offset.
    pub(super) fn apply_time_zone(&mut self) -> Result<()> {
        let zone = vars::datafusion_zone(&self.vars.get("timezone")?);
        let state = self.ctx.state_ref();
        state.write().config_mut().options_mut().execution.time_zone = Some(zone);
        Ok(())
    }

    pub(super) fn set(&mut self, set: &Set) -> Result<Output> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
                let name = variable.to_string();
                if value.eq_ignore_ascii_case("default") {
                    self.vars.reset(&name)
                } else {
                    self.vars.set(&name, value)
                }
            }
            // `SET TIME ZONE DEFAULT` and `LOCAL` go back to the default.
            Set::SetTimeZone { value, .. } => match expr_text(value) {
                value
                    if ["default", "local"]
                        .iter()
                        .any(|w| value.eq_ignore_ascii_case(w)) =>
                {
                    self.vars.reset("timezone")
                }
                value => self.vars.set("timezone", value),
            },
            Set::SetNames { charset_name, .. } => {
                self.vars.set("client_encoding", charset_name.value.clone())
            }
            Set::SetTransaction { modes, .. } => check_modes(modes),
            other => Err(Error::unsupported(format!("{other}"))),
        }?;
        self.apply_time_zone()?;
        Ok(Output::Command("SET".into()))
    }

    pub(super) fn show(&self, variable: &[Ident]) -> Result<Output> {
        let name = show_name(variable)?;
        let value = self.vars.get(&name)?;
        let schema = show_schema(variable)?;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value]))],
        )?;
        Ok(rows_of(schema, vec![batch], "SELECT"))
    }

    pub(super) fn reset(&mut self, reset: &Reset) -> Result<Output> {
        match reset {
            Reset::ALL => self.vars.reset_all(),
            Reset::ConfigurationParameter(name) => self.vars.reset(&name.to_string())?,
        }
        self.apply_time_zone()?;
        Ok(Output::Command("RESET".into()))
    }
}

/// The text of a SET value: strings unquoted, identifiers and numbers as written.
fn expr_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// The variable a SHOW names (`SHOW transaction isolation level` has several words).
fn show_name(variable: &[Ident]) -> Result<String> {
    let name = variable
        .iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if name.eq_ignore_ascii_case("all") {
        return Err(Error::unsupported("SHOW ALL"));
    }
    Ok(name)
}

/// SHOW's result: one text column named after the variable.
pub(super) fn show_schema(variable: &[Ident]) -> Result<SchemaRef> {
    let column = Field::new(vars::header(&show_name(variable)?), DataType::Utf8, true);
    Ok(Arc::new(Schema::new(vec![column])))
}
