//! The current time as PostgreSQL's functions give it: `now()`,
//! `current_timestamp`, `current_date` and `current_time` are the time the
//! transaction began, the same for every statement in it
//! (DataFusion's are the statement's own start); `statement_timestamp()`
//! is the statement's and `clock_timestamp()` the moment it is called.
//!
//! The session writes when its transaction and statement began into its
//! DataFusion configuration ([`RunningStatement`], `Session::execute`);
//! [`TransactionTime`] plans DataFusion's function with that time in
//! place of the statement's start.
//!
//! And `pg_sleep(seconds)`, which a cancel or `statement_timeout` stops
//! (57014) as it stops any statement.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type};
use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::{plan_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::catalog::types::UTC;
use crate::catalog::SqlType;
use crate::sql::cancel::Running;

/// The session's running statement, in its DataFusion configuration
/// (`Session::execute` writes it as a statement starts): when its
/// transaction and it began, and its cancellation.
#[derive(Debug, Clone)]
pub struct RunningStatement {
    /// Microseconds since 1970 (UTC).
    pub transaction_began: i64,
    pub statement_began: i64,
    pub running: Arc<Running>,
}

impl ConfigExtension for RunningStatement {
    const PREFIX: &'static str = "shardforge_statement";
}

// Not a setting: only the session writes it. A clone shares the
// statement's cancellation on purpose (a cancel must reach every copy of
// the configuration the statement runs with).
impl ExtensionOptions for RunningStatement {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> DFResult<()> {
        plan_err!("{key} cannot be set")
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
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
        let statement = info.config_options().extensions.get::<RunningStatement>();
        let micros = statement.map(|s| match self.began {
            Began::Transaction => s.transaction_began,
            Began::Statement => s.statement_began,
        });
        let Some(began) = micros.and_then(DateTime::<Utc>::from_timestamp_micros) else {
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

/// `pg_sleep(seconds)`: waits, and is stopped by a cancel of its
/// statement (57014) within [`SLEEP_CHECK`].
pub fn pg_sleep() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgSleep {
        signature: Signature::exact(vec![DataType::Float64], Volatility::Volatile),
    })
}

/// How often a sleep looks whether its statement was cancelled.
const SLEEP_CHECK: Duration = Duration::from_millis(10);

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgSleep {
    signature: Signature,
}

impl ScalarUDFImpl for PgSleep {
    fn name(&self) -> &str {
        "pg_sleep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    // PostgreSQL's is `void`, shown as an empty value.
    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let statement = args.config_options.extensions.get::<RunningStatement>();
        let running = statement.map(|s| s.running.clone());
        let seconds = args.args[0].to_array(args.number_rows.max(1))?;
        let seconds = seconds.as_primitive::<Float64Type>();
        let total: f64 = seconds.iter().flatten().filter(|s| *s > 0.0).sum();
        let deadline = Instant::now() + Duration::from_secs_f64(total.min(1e9));
        let sleep = || -> DFResult<()> {
            loop {
                if let Some(running) = &running {
                    running.check()?;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                std::thread::sleep(left.min(SLEEP_CHECK));
            }
        };
        // Off the runtime's worker, which other sessions' tasks need.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        match multi_thread {
            true => tokio::task::block_in_place(sleep)?,
            false => sleep()?,
        }
        let empty = ScalarValue::Utf8(Some(String::new()));
        match args.number_rows {
            0 | 1 => Ok(ColumnarValue::Scalar(empty)),
            n => Ok(ColumnarValue::Array(empty.to_array_of_size(n)?)),
        }
    }
}
