//! The current time as PostgreSQL's functions give it: `now()`,
//! `current_timestamp`, `current_date` and `current_time` are the time the
//! transaction began, the same for every statement in it
//! (DataFusion's are the statement's own start); `statement_timestamp()`
//! is the statement's and `clock_timestamp()` the moment it is called.
//!
//! The session writes when its transaction and statement began into its
//! DataFusion configuration ([`SessionClock`], `Session::execute`);
//! [`TransactionTime`] plans DataFusion's function with that time in
//! place of the statement's start.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::{ConfigExtension, ConfigOptions};
use datafusion::common::{extensions_options, Result as DFResult, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::catalog::types::UTC;
use crate::catalog::SqlType;

extensions_options! {
    /// When the session's transaction and its running statement began, in
    /// microseconds since 1970 (UTC); 0 where not known, which leaves a
    /// function the statement's start.
    pub struct SessionClock {
        pub transaction_micros: u64, default = 0
        pub statement_micros: u64, default = 0
    }
}

impl ConfigExtension for SessionClock {
    const PREFIX: &'static str = "shardforge_clock";
}

/// Which of the session's times a [`TransactionTime`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Began {
    Transaction,
    Statement,
}

/// DataFusion's `inner` (`now`, `current_date`, `current_time`), under
/// `name`, taking the time the session's transaction (or statement)
/// began for the time its statement began.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TransactionTime {
    name: String,
    inner: Arc<ScalarUDF>,
    began: Began,
}

impl TransactionTime {
    /// DataFusion's `inner` at the transaction's start, under its name.
    pub fn of_transaction(inner: Arc<ScalarUDF>) -> ScalarUDF {
        let name = inner.name().to_string();
        Self::named(&name, inner, Began::Transaction)
    }

    /// `transaction_timestamp()`: `now` under that name.
    pub fn transaction_timestamp(now: Arc<ScalarUDF>) -> ScalarUDF {
        Self::named("transaction_timestamp", now, Began::Transaction)
    }

    /// `statement_timestamp()`: `now` at the statement's start.
    pub fn statement_timestamp(now: Arc<ScalarUDF>) -> ScalarUDF {
        Self::named("statement_timestamp", now, Began::Statement)
    }

    fn named(name: &str, inner: Arc<ScalarUDF>, began: Began) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            name: name.to_string(),
            inner,
            began,
        })
    }
}

impl ScalarUDFImpl for TransactionTime {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> DFResult<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn aliases(&self) -> &[String] {
        match self.name == self.inner.name() {
            true => self.inner.aliases(),
            false => &[],
        }
    }

    // `now`'s type has the session's time zone.
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(Self::named(&self.name, Arc::new(inner), self.began))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DFResult<ExprSimplifyResult> {
        let clock = info.config_options().extensions.get::<SessionClock>();
        let micros = clock.map_or(0, |c| match self.began {
            Began::Transaction => c.transaction_micros,
            Began::Statement => c.statement_micros,
        });
        let began = i64::try_from(micros).ok().filter(|&m| m != 0);
        let Some(began) = began.and_then(DateTime::<Utc>::from_timestamp_micros) else {
            return self.inner.simplify(args, info);
        };
        let info = SimplifyContext::builder()
            .with_schema(info.schema().clone())
            .with_config_options(info.config_options().clone())
            .with_query_execution_start_time(Some(began))
            .build();
        self.inner.simplify(args, &info)
    }
}

/// `clock_timestamp()`: the moment of the call, a `timestamptz`.
pub fn clock_timestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(ClockTimestamp {
        signature: Signature::nullary(Volatility::Volatile),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ClockTimestamp {
    signature: Signature,
}

impl ScalarUDFImpl for ClockTimestamp {
    fn name(&self) -> &str {
        "clock_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(SqlType::TimestampTz(None).to_arrow())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        // A reading per row, as PostgreSQL's advances within a statement.
        let values: Vec<ScalarValue> = (0..args.number_rows.max(1))
            .map(|_| {
                let now = Some(Utc::now().timestamp_micros());
                ScalarValue::TimestampMicrosecond(now, Some(UTC.into()))
            })
            .collect();
        match args.number_rows {
            0 | 1 => Ok(ColumnarValue::Scalar(values[0].clone())),
            _ => Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?)),
        }
    }
}
