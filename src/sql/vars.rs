//! Session variables: what `SET`, `SHOW` and `RESET` read and write.
//!
//! Only the variables PostgreSQL drivers and tools actually send are known;
//! any other name is `42704 unrecognized configuration parameter`, as in
//! PostgreSQL. Values are kept as text. A value ShardForge would accept
//! but not honour (`DateStyle = 'German'`, `IntervalStyle = 'iso_8601'`,
//! `extra_float_digits = 0`) is 0A000. `statement_timeout` is enforced
//! (`sql::cancel`); `lock_timeout` and `idle_in_transaction_session_timeout`
//! are accepted and shown (nothing waits for a lock yet).

use std::collections::BTreeMap;

use datafusion::arrow::array::timezone::Tz;
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, Reset, ResetStatement, Statement};

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
    // Text compares and sorts by its bytes, which is code point order in
    // UTF-8: PostgreSQL's C.UTF-8 collation (`sql::pg_catalog` says the
    // same of the database).
    ("lc_collate", crate::sql::pg_catalog::COLLATION),
    ("lc_ctype", crate::sql::pg_catalog::COLLATION),
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
    "lc_collate",
    "lc_ctype",
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

/// A variable's name as SHOW's header spells it (`TimeZone`, `DateStyle`).
pub fn header(name: &str) -> String {
    let name = canonical(name);
    match REPORTED.iter().find(|(key, _)| *key == name) {
        Some((_, spelled)) => spelled.to_string(),
        None => name,
    }
}

/// The canonical name of a variable.
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
            "datestyle" => date_style(&value, self.values.get(key))?,
            "intervalstyle" => interval_style(&value)?,
            "extra_float_digits" => extra_float_digits(&value)?,
            "timezone" if is_utc(&value) => "UTC".to_string(),
            "timezone" => zone_setting(&value)?,
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
/// `RESET TIME ZONE`, which PostgreSQL takes as `RESET timezone` and the
/// SQL parser does not read.
pub fn parse_reset_time_zone(sql: &str) -> Option<Statement> {
    let words: Vec<&str> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    let spelled = |expected: &[&str]| {
        words.len() == expected.len()
            && words
                .iter()
                .zip(expected)
                .all(|(w, e)| w.eq_ignore_ascii_case(e))
    };
    spelled(&["reset", "time", "zone"]).then(|| {
        Statement::Reset(ResetStatement {
            reset: Reset::ConfigurationParameter(ObjectName::from(vec![Ident::new("timezone")])),
        })
    })
}

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
    let bad = || invalid_value(name, value);
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

/// The session time zone a `TimeZone` value names, as PostgreSQL reads
/// it: a zone name (`Europe/Paris`, `EST5EDT`), or a fixed offset in
/// POSIX's sign, hours *west* of UTC: `+05:30` and `UTC+3` are behind UTC,
/// and `<+05:30>-05:30` (how a number set is shown, see [`zone_setting`])
/// ahead of it.
pub fn time_zone(value: &str) -> Result<Tz> {
    let zone = match posix_offset_east(value) {
        Some(east) => offset_text(east).parse().ok(),
        None if is_utc(value) => UTC_OFFSET.parse().ok(),
        None => value.parse().ok(),
    };
    zone.ok_or_else(|| invalid_value("TimeZone", value))
}

/// The zone DataFusion reads timestamps in (`execution.time_zone`) for the
/// `TimeZone` value `value`: its offset east of UTC (`-03:00`), or its
/// name.
pub fn datafusion_zone(value: &str) -> String {
    match posix_offset_east(value) {
        Some(east) => offset_text(east),
        None if is_utc(value) => UTC_OFFSET.to_string(),
        None => value.to_string(),
    }
}

/// `value` (a `SET TIME ZONE` or `TimeZone` value) as the setting keeps
/// and shows it. A number is hours *east* of UTC, as PostgreSQL reads it
/// (`SET TIME ZONE -7`, `SET TimeZone = '5.5'`), kept in POSIX's spelling
/// (`<-07>+07`, `<+05:30>-05:30`); anything else is kept as written, once
/// [`time_zone`] reads it.
fn zone_setting(value: &str) -> Result<String> {
    let setting = match value.trim().parse::<f64>() {
        Ok(hours) if hours.abs() < 24.0 => {
            let east = (hours * 3600.0).round() as i32;
            // Without zero minutes (`+07`, `+05:30`).
            let short = |seconds: i32| offset_text(seconds).trim_end_matches(":00").to_string();
            format!("<{}>{}", short(east), short(-east))
        }
        _ => value.to_string(),
    };
    time_zone(&setting)?;
    Ok(setting)
}

/// Seconds east of UTC of a POSIX offset: `+05:30`, `-3`, `UTC+3`,
/// `GMT-02`, `<+05:30>-05:30` (the sign counts hours west).
fn posix_offset_east(value: &str) -> Option<i32> {
    let value = value.trim();
    let rest = match value.strip_prefix('<') {
        Some(bracketed) => bracketed.split_once('>')?.1,
        None => ["UTC", "GMT", "utc", "gmt"]
            .iter()
            .find_map(|p| value.strip_prefix(p))
            .unwrap_or(value),
    };
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let mut parts = digits.split(':');
    let mut field = |max: i32| -> Option<i32> {
        match parts.next() {
            None => Some(0),
            Some(p) if !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|v| *v <= max)
            }
            Some(_) => None,
        }
    };
    let (hours, minutes, seconds) = (field(24)?, field(59)?, field(59)?);
    if parts.next().is_some() {
        return None;
    }
    Some(-sign * (hours * 3600 + minutes * 60 + seconds))
}

/// `+HH:MM[:SS]` of an offset east of UTC.
fn offset_text(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let east = east.unsigned_abs();
    let (hours, minutes, seconds) = (east / 3600, east / 60 % 60, east % 60);
    match seconds {
        0 => format!("{sign}{hours:02}:{minutes:02}"),
        _ => format!("{sign}{hours:02}:{minutes:02}:{seconds:02}"),
    }
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

fn is_utc(zone: &str) -> bool {
    matches!(
        zone.to_ascii_uppercase().as_str(),
        "UTC" | "ETC/UTC" | "UCT" | "GMT" | "ETC/GMT" | "Z" | "ZULU" | "0" | "+00" | "+00:00"
    )
}

fn invalid_value(name: &str, value: &str) -> Error {
    Error::input(
        InputError::InvalidParameterValue,
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

/// `DateStyle`, as PostgreSQL spells it back (`ISO, DMY`); a value that
/// names no field order keeps the `current` one. Values are printed in the
/// ISO style only: another is 0A000, not a style accepted and ignored.
/// (The field order is kept and shown; date input reads no form it would
/// decide.)
fn date_style(value: &str, current: Option<&String>) -> Result<String> {
    let current = current.and_then(|c| c.split(", ").nth(1));
    let mut order = match current {
        Some("DMY") => "DMY",
        Some("YMD") => "YMD",
        _ => "MDY",
    };
    for part in value.split(',').map(|p| p.trim().to_lowercase()) {
        order = match part.as_str() {
            "iso" => order,
            "default" | "mdy" | "us" | "noneuropean" | "non-european" => "MDY",
            "dmy" | "euro" | "european" => "DMY",
            "ymd" => "YMD",
            "sql" | "postgres" | "german" => {
                return Err(Error::unsupported(format!(
                    "DateStyle {}",
                    part.to_uppercase()
                )))
            }
            _ => return Err(invalid_value("DateStyle", value)),
        };
    }
    Ok(format!("ISO, {order}"))
}

/// `IntervalStyle`: intervals are printed in the `postgres` style only.
fn interval_style(value: &str) -> Result<String> {
    match value.to_lowercase().as_str() {
        "postgres" => Ok("postgres".into()),
        "postgres_verbose" | "sql_standard" | "iso_8601" => {
            Err(Error::unsupported(format!("IntervalStyle {value}")))
        }
        _ => Err(invalid_value("IntervalStyle", value)),
    }
}

/// `extra_float_digits`: any value above 0 prints the shortest exact
/// digits, as in PostgreSQL; 0 and below (fewer, rounded digits) are not
/// printed that way yet.
fn extra_float_digits(value: &str) -> Result<String> {
    match value.trim().parse::<i32>() {
        Ok(digits @ 1..=3) => Ok(digits.to_string()),
        Ok(-15..=0) => Err(Error::unsupported(format!("extra_float_digits {value}"))),
        _ => Err(invalid_value("extra_float_digits", value)),
    }
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
        other => Err(invalid_value("transaction_isolation", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_are_the_ones_printed_or_refused() {
        let mut vars = SessionVars::default();
        vars.set("DateStyle", "iso, dmy".into()).unwrap();
        assert_eq!(vars.get("datestyle").unwrap(), "ISO, DMY");
        vars.set("DateStyle", "ISO".into()).unwrap();
        assert_eq!(vars.get("datestyle").unwrap(), "ISO, DMY");
        vars.set("DateStyle", "ISO, US".into()).unwrap();
        assert_eq!(vars.get("datestyle").unwrap(), "ISO, MDY");
        let refused =
            |vars: &mut SessionVars, name: &str, value: &str| match vars.set(name, value.into()) {
                Err(Error::Input(kind, _)) => kind,
                other => panic!("{name} = {value}: {other:?}"),
            };
        for (name, value) in [
            ("DateStyle", "German"),
            ("DateStyle", "SQL, DMY"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "0"),
        ] {
            assert_eq!(refused(&mut vars, name, value), InputError::Unsupported);
        }
        assert_eq!(
            refused(&mut vars, "extra_float_digits", "4"),
            InputError::InvalidParameterValue
        );
        vars.set("extra_float_digits", "2".into()).unwrap();
        vars.set("IntervalStyle", "Postgres".into()).unwrap();
        assert_eq!(vars.get("intervalstyle").unwrap(), "postgres");
    }

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
