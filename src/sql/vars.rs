//! Session variables: what `SET`, `SHOW` and `RESET` read and write.
//!
//! Only the variables PostgreSQL drivers and tools actually send are known;
//! any other name is `42704 unrecognized configuration parameter`, as in
//! PostgreSQL. Values are kept as text. `statement_timeout` is enforced
//! (`sql::cancel`); `lock_timeout` and `idle_in_transaction_session_timeout`
//! are accepted and shown (nothing waits for a lock yet).

use std::collections::BTreeMap;

use datafusion::arrow::array::timezone::Tz;

use crate::error::{Error, InputError, Result};

/// `(name, default)` of every known variable; names are lower case.
const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("block_size", "8192"),
    ("datestyle", "ISO, MDY"),
    // The only one there is (SQLAlchemy's reflection compares with it).
    ("default_table_access_method", "heap"),
    ("default_transaction_isolation", "repeatable read"),
    ("default_transaction_read_only", "off"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("lc_messages", "C"),
    ("lock_timeout", "0"),
    // Limits clients read (pgjdbc's `getImportedKeys` asks
    // `max_index_keys`), with PostgreSQL's values.
    ("max_function_args", "100"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("search_path", "\"$user\", public"),
    // The user the client connected as (`Session::set_user`).
    ("session_authorization", "postgres"),
    ("server_encoding", "UTF8"),
    ("server_version", crate::PG_SERVER_VERSION),
    ("server_version_num", crate::PG_SERVER_VERSION_NUM),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "repeatable read"),
    ("transaction_read_only", "off"),
];

/// Variables a client may read but not change.
const READ_ONLY: &[&str] = &[
    "block_size",
    "integer_datetimes",
    "is_superuser",
    "max_function_args",
    "max_identifier_length",
    "max_index_keys",
    "server_encoding",
    "server_version",
    "server_version_num",
    "session_authorization",
];

pub struct SessionVars {
    values: BTreeMap<&'static str, String>,
    /// Reported variables changed since the last [`SessionVars::take_reports`].
    changed: Vec<&'static str>,
}

/// Variables whose changes PostgreSQL reports to the client (ParameterStatus),
/// with the spelling it reports them in.
const REPORTED: &[(&str, &str)] = &[
    ("application_name", "application_name"),
    ("client_encoding", "client_encoding"),
    ("datestyle", "DateStyle"),
    ("intervalstyle", "IntervalStyle"),
    ("standard_conforming_strings", "standard_conforming_strings"),
    ("timezone", "TimeZone"),
];

/// The settings no session can change, as `pg_settings` lists them: the
/// read-only variables that are the same for every session.
pub fn server_settings() -> Vec<(&'static str, &'static str)> {
    let per_session = ["session_authorization", "is_superuser"];
    DEFAULTS
        .iter()
        .filter(|(name, _)| READ_ONLY.contains(name) && !per_session.contains(name))
        .copied()
        .collect()
}

impl Default for SessionVars {
    fn default() -> Self {
        Self {
            values: DEFAULTS.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            changed: Vec::new(),
        }
    }
}

/// The canonical name of a variable, and its spelling in SHOW's header.
pub fn canonical(name: &str) -> String {
    match name.to_lowercase().as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        other => other.to_string(),
    }
}

impl SessionVars {
    fn known(&self, name: &str) -> Result<&'static str> {
        self.values
            .keys()
            .find(|k| **k == name)
            .copied()
            .ok_or_else(|| {
                Error::input(
                    InputError::UndefinedObject,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })
    }

    pub fn get(&self, name: &str) -> Result<String> {
        let key = self.known(&canonical(name))?;
        Ok(self.values[key].clone())
    }

    /// The user the client connected as: what `current_user`,
    /// `session_user` and `user` answer (authentication, and so roles,
    /// are to come: any user name is accepted).
    pub fn set_session_user(&mut self, user: String) {
        self.values.insert("session_authorization", user);
    }

    pub fn set(&mut self, name: &str, value: String) -> Result<()> {
        let key = self.known(&canonical(name))?;
        if READ_ONLY.contains(&key) {
            return Err(Error::input(
                InputError::InvalidTransactionState,
                format!("parameter \"{key}\" cannot be changed"),
            ));
        }
        let value = match key {
            "client_encoding"
                if !value.eq_ignore_ascii_case("utf8")
                    && !value.eq_ignore_ascii_case("unicode") =>
            {
                return Err(Error::unsupported(format!("client_encoding {value}")));
            }
            "client_encoding" => "UTF8".to_string(),
            "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
                milliseconds(timeout_ms(key, &value)?)
            }
            "transaction_isolation" | "default_transaction_isolation" => isolation(&value)?,
            "timezone" if is_utc(&value) => "UTC".to_string(),
            "timezone" => {
                time_zone(&value)?;
                value
            }
            _ => value,
        };
        self.store(key, value);
        Ok(())
    }

    fn store(&mut self, key: &'static str, value: String) {
        if self.values.get(key) != Some(&value) && !self.changed.contains(&key) {
            self.changed.push(key);
        }
        self.values.insert(key, value);
    }

    /// `(name, value)` of the reported variables changed since the last call,
    /// for ParameterStatus messages.
    pub fn take_reports(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|key| {
                let (_, reported) = REPORTED.iter().find(|(k, _)| *k == key)?;
                Some((reported.to_string(), self.values[key].clone()))
            })
            .collect()
    }

    pub fn reset(&mut self, name: &str) -> Result<()> {
        let key = self.known(&canonical(name))?;
        if let Some((_, default)) = DEFAULTS.iter().find(|(k, _)| *k == key) {
            self.store(key, default.to_string());
        }
        Ok(())
    }

    /// The session's statement_timeout; None when it is 0 (no limit).
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        let ms = timeout_ms("statement_timeout", &self.values["statement_timeout"]).ok()?;
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    pub fn reset_all(&mut self) {
        for (key, default) in DEFAULTS {
            self.store(key, default.to_string());
        }
    }
}

/// A timeout as PostgreSQL shows it: a bare number is milliseconds, shown
/// in whole seconds when it is one (`5000` is `5s`).
fn milliseconds(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        ms if ms % (60 * 60 * 1000) == 0 => format!("{}h", ms / (60 * 60 * 1000)),
        ms if ms % (60 * 1000) == 0 => format!("{}min", ms / (60 * 1000)),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// A timeout setting in milliseconds, read as PostgreSQL reads it: a
/// number, in milliseconds unless a unit follows (`us`, `ms`, `s`, `min`,
/// `h`, `d`), rounded to a whole millisecond; 22023 otherwise.
fn timeout_ms(name: &str, value: &str) -> Result<u64> {
    let bad = || {
        Error::input(
            InputError::InvalidParameterValue,
            format!("invalid value for parameter \"{name}\": \"{value}\""),
        )
    };
    let text = value.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(bad()),
    };
    let ms = (number * scale).round();
    if !(0.0..=i32::MAX as f64).contains(&ms) {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            format!("{value} is outside the valid range for parameter \"{name}\""),
        ));
    }
    Ok(ms as u64)
}

/// The session time zone a `TimeZone` value names: an IANA name or a
/// fixed offset such as `+05:30`.
pub fn time_zone(value: &str) -> Result<Tz> {
    if is_utc(value) {
        return UTC_OFFSET
            .parse()
            .map_err(|_| Error::Internal("UTC".into()));
    }
    value.parse().map_err(|_| {
        Error::input(
            InputError::InvalidParameterValue,
            format!("invalid value for parameter \"TimeZone\": \"{value}\""),
        )
    })
}

/// The session time zone a function call runs in (`SET TIME ZONE`), from
/// DataFusion's `execution.time_zone`.
pub fn session_zone(config: &datafusion::common::config::ConfigOptions) -> Tz {
    config
        .execution
        .time_zone
        .as_deref()
        .and_then(|zone| zone.parse().ok())
        .unwrap_or_else(|| UTC_OFFSET.parse().expect("UTC parses"))
}

/// How DataFusion's `execution.time_zone` spells UTC.
pub const UTC_OFFSET: &str = "+00:00";

pub(super) fn is_utc(zone: &str) -> bool {
    matches!(
        zone.to_ascii_uppercase().as_str(),
        "UTC" | "ETC/UTC" | "UCT" | "GMT" | "ETC/GMT" | "Z" | "ZULU" | "0" | "+00" | "+00:00"
    )
}

/// ShardForge runs every transaction with snapshot isolation, which is what
/// PostgreSQL calls REPEATABLE READ. READ COMMITTED is accepted and gets the
/// stronger snapshot isolation; SERIALIZABLE would be a weaker guarantee
/// than asked for, so it is refused.
pub fn isolation(level: &str) -> Result<String> {
    match level.to_lowercase().replace('_', " ").as_str() {
        "read uncommitted" | "read committed" | "repeatable read" => {
            Ok("repeatable read".to_string())
        }
        "serializable" => Err(Error::unsupported(
            "SERIALIZABLE isolation (transactions run with snapshot isolation, REPEATABLE READ)",
        )),
        other => Err(Error::input(
            InputError::InvalidParameterValue,
            format!("invalid value for parameter \"transaction_isolation\": \"{other}\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_reset() {
        let mut vars = SessionVars::default();
        vars.set("application_name", "psql".into()).unwrap();
        assert_eq!(vars.get("APPLICATION_NAME").unwrap(), "psql");
        vars.reset("application_name").unwrap();
        assert_eq!(vars.get("application_name").unwrap(), "");
        assert!(matches!(
            vars.get("no_such_thing"),
            Err(Error::Input(InputError::UndefinedObject, _))
        ));
        assert!(vars.set("server_version", "16".into()).is_err());
        vars.set("application_name", "x".into()).unwrap();
        vars.set("extra_float_digits", "3".into()).unwrap();
        assert_eq!(
            vars.take_reports(),
            vec![("application_name".to_string(), "x".to_string())]
        );
        assert!(vars.take_reports().is_empty());
        assert_eq!(
            vars.get("transaction isolation level").unwrap(),
            "repeatable read"
        );
        assert!(vars
            .set("transaction_isolation", "serializable".into())
            .is_err());
    }
}
