//! Dates, times and timestamps as PostgreSQL's input functions read
//! them (`date_in`, `time_in`, `timestamp_in`, `timestamptz_in`), with
//! the words it reads relative to the transaction's start ([`Clock`]).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::timezone::Tz;

use super::invalid;
use crate::error::{Error, InputError, Result};

/// What the words `now`, `today`, `tomorrow` and `yesterday` are read at:
/// the transaction's start (microseconds since 1970, UTC; None where it is
/// not known, and the words are refused) in the session's time zone.
#[derive(Clone, Copy)]
pub(super) struct Clock {
    pub(super) now: Option<i64>,
    pub(super) zone: Tz,
}

/// A word PostgreSQL reads as a date or time: `epoch`, or one relative to
/// the transaction's start (`Day`: the midnight that many days from its
/// day).
enum Word {
    Epoch,
    Now,
    Day(i64),
}

impl Word {
    fn read(text: &str) -> Option<Word> {
        let word = text.trim().to_ascii_lowercase();
        Some(match word.as_str() {
            "epoch" => Word::Epoch,
            "now" => Word::Now,
            "today" => Word::Day(0),
            "tomorrow" => Word::Day(1),
            "yesterday" => Word::Day(-1),
            _ => return None,
        })
    }
}

impl Clock {
    /// The wall-clock date and time the transaction began at, in the
    /// session's zone; `bad` if it is not known.
    fn local_now(&self, bad: impl Fn() -> Error) -> Result<NaiveDateTime> {
        let now = self.now.ok_or_else(&bad)?;
        let utc = chrono::DateTime::from_timestamp_micros(now).ok_or_else(bad)?;
        Ok(utc.with_timezone(&self.zone).naive_local())
    }

    /// The day a word stands for, in days since 1970.
    fn date(&self, word: Word, bad: impl Fn() -> Error) -> Result<i32> {
        let offset = match word {
            Word::Epoch => return Ok(0),
            Word::Now => 0,
            Word::Day(offset) => offset,
        };
        let day = self.local_now(bad)?.date() + chrono::Duration::days(offset);
        Ok((day - NaiveDate::default()).num_days() as i32)
    }

    /// The timestamp a word stands for, in microseconds since 1970 (UTC
    /// if `zoned`, a `timestamptz`).
    fn timestamp(&self, word: Word, zoned: bool, bad: impl Fn() -> Error) -> Result<i64> {
        Ok(match word {
            Word::Epoch => 0,
            Word::Now if zoned => self.now.ok_or_else(bad)?,
            Word::Now => micros(self.local_now(bad)?),
            Word::Day(offset) => {
                let day = self.local_now(bad)?.date() + chrono::Duration::days(offset);
                let midnight = day.and_time(NaiveTime::MIN);
                match zoned {
                    true => micros(crate::sql::time_zones::local_to_utc(&self.zone, &midnight)),
                    false => micros(midnight),
                }
            }
        })
    }
}

/// Microseconds since 1970 of a date and time (UTC, or a wall clock).
fn micros(at: NaiveDateTime) -> i64 {
    let utc = at.and_utc();
    let nanos = utc.timestamp_subsec_nanos() as i64;
    utc.timestamp() * 1_000_000 + (nanos + 500) / 1_000
}

/// A date as `date_in` reads it, as days since 1970-01-01: ISO
/// (`2024-02-29`, a time after it read and dropped), `2024/02/29`,
/// `20240229`, with the month's name (`Feb 29 2024`, `29 Feb 2024`,
/// `February 29, 2024`), a [`Word`]; `BC` after it counts years before 1
/// AD.
pub(super) fn date(text: &str, clock: Clock) -> Result<i32> {
    refuse_infinity(text)?;
    if let Some(word) = Word::read(text) {
        return clock.date(word, || {
            invalid(InputError::InvalidDatetimeFormat, "date", text)
        });
    }
    let (trimmed, bc) = split_era(text.trim());
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    const NAMED: [&str; 6] = [
        "%b %d %Y",
        "%b %d, %Y",
        "%B %d %Y",
        "%B %d, %Y",
        "%d %b %Y",
        "%d %B %Y",
    ];
    let named = NAMED
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(trimmed, f).ok());
    let day_text = trimmed.split([' ', 'T']).next().unwrap_or(trimmed);
    let numeric = || {
        let compact = day_text.len() == 8 && day_text.bytes().all(|b| b.is_ascii_digit());
        match compact {
            true => NaiveDate::parse_from_str(
                &format!("{}-{}-{}", &day_text[..4], &day_text[4..6], &day_text[6..]),
                "%Y-%m-%d",
            ),
            false => NaiveDate::parse_from_str(&day_text.replace('/', "-"), "%Y-%m-%d"),
        }
    };
    let day = named.map_or_else(numeric, Ok).map_err(|_| {
        // A date of the right shape that does not exist is out of range.
        let shaped = day_text.split('-').count() == 3
            && day_text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        match shaped {
            true => out_of_range(text),
            false => invalid(InputError::InvalidDatetimeFormat, "date", text),
        }
    })?;
    let day = in_era(day, bc, text)?;
    Ok((day - epoch).num_days() as i32)
}

/// Splits the era written last (`BC`, or `AD`, which changes nothing) off
/// a date's or a timestamp's text: the rest, and whether it is BC.
fn split_era(text: &str) -> (&str, bool) {
    let Some((rest, era)) = text
        .len()
        .checked_sub(2)
        .and_then(|at| text.split_at_checked(at))
    else {
        return (text, false);
    };
    // The era follows a number or a space: `Asia/Baghdad` is a zone.
    let apart = rest.is_empty() || rest.ends_with(|c: char| c.is_ascii_digit() || c == ' ');
    match apart {
        true if era.eq_ignore_ascii_case("bc") => (rest.trim_end(), true),
        true if era.eq_ignore_ascii_case("ad") => (rest.trim_end(), false),
        _ => (text, false),
    }
}

/// `day`, read with a year before 1 AD if `bc`: year `y` BC is ISO year
/// `1 - y`. PostgreSQL has no year 0 (ISO's is 1 BC): 22008, as for any
/// field out of range.
fn in_era(day: NaiveDate, bc: bool, text: &str) -> Result<NaiveDate> {
    match (day.year(), bc) {
        (0, _) => Err(out_of_range(text)),
        (_, false) => Ok(day),
        (year, true) => day.with_year(1 - year).ok_or_else(|| out_of_range(text)),
    }
}

fn out_of_range(text: &str) -> Error {
    Error::input(
        InputError::DatetimeFieldOverflow,
        format!("date/time field value out of range: \"{text}\""),
    )
}

/// Microseconds in a day: `24:00:00`, the largest `time`.
pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A time of day as `time_in` reads it in ISO form: `HH:MM[:SS[.f]]`
/// (surrounding whitespace allowed), up to `24:00:00`; fractions beyond
/// microseconds are rounded. `allballs` is midnight and `now` the time
/// the transaction began.
pub(super) fn time(text: &str, clock: Clock) -> Result<i64> {
    let trimmed = text.trim();
    let bad = || {
        invalid(
            InputError::InvalidDatetimeFormat,
            "time without time zone",
            text,
        )
    };
    if trimmed.eq_ignore_ascii_case("allballs") {
        return Ok(0);
    }
    if trimmed.eq_ignore_ascii_case("now") {
        let time = clock.local_now(bad)?.time();
        return Ok(micros(NaiveDate::default().and_time(time)));
    }
    let mut parts = trimmed.splitn(3, ':');
    let (Some(hours), Some(minutes)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let seconds = parts.next().unwrap_or("0");
    let number =
        |s: &str| match !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse::<i64>().map_err(|_| bad()),
            false => Err(bad()),
        };
    let (hours, minutes) = (number(hours)?, number(minutes)?);
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole = number(whole)?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Microseconds, rounded half up on the seventh digit.
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(7)
        .collect();
    let tenths_of_micros: i64 = digits.parse().map_err(|_| bad())?;
    let micros = (tenths_of_micros + 5) / 10;
    let total = ((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros;
    if minutes > 59 || whole > 60 || total > MICROS_PER_DAY {
        return Err(out_of_range(text));
    }
    Ok(total)
}

/// `infinity` and `-infinity`, which PostgreSQL has as dates and
/// timestamps and ShardForge cannot store: 0A000 rather than a date that
/// is not the one meant. (Their binary forms are the extreme integers.)
fn refuse_infinity(text: &str) -> Result<()> {
    let text = text.trim().trim_start_matches(['+', '-']);
    match text.eq_ignore_ascii_case("infinity") {
        true => Err(infinite()),
        false => Ok(()),
    }
}

pub(super) fn infinite() -> Error {
    Error::unsupported("infinite dates and timestamps")
}

/// A timestamp in ISO form (`2024-02-29 13:45:00.5`, `T` between date and
/// time, the time optional), as microseconds since 1970 (UTC for a
/// `timestamptz`: an offset such as `+02`, `-05:30` or `Z` after the time
/// gives its zone, else `zone`), `BC` last for a year before 1 AD.
/// Fractions past microseconds are rounded.
pub(super) fn timestamp(text: &str, clock: Clock, zoned: bool) -> Result<i64> {
    let kind = match zoned {
        true => "timestamp with time zone",
        false => "timestamp without time zone",
    };
    refuse_infinity(text)?;
    let bad = || invalid(InputError::InvalidDatetimeFormat, kind, text);
    if let Some(word) = Word::read(text) {
        return clock.timestamp(word, zoned, bad);
    }
    let whole = text;
    let (text, bc) = split_era(text.trim());
    // A `timestamp` ignores an offset or zone written after the time, as
    // in PostgreSQL.
    let (text, named) = split_zone_name(text).ok_or_else(bad)?;
    let (local, offset) = split_offset(text).ok_or_else(bad)?;
    let local = local.replacen('T', " ", 1);
    let (day, time) = local.split_once(' ').unwrap_or((&local, "00:00:00"));
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    let day = in_era(day, bc, whole)?;
    let time = ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(time.trim(), format).ok())
        .ok_or_else(bad)?;
    let at = NaiveDateTime::new(day, time);
    let local_to_utc = crate::sql::time_zones::local_to_utc;
    Ok(match (zoned, named, offset) {
        (false, _, _) => micros(at),
        (true, Some(named), _) => micros(local_to_utc(&named, &at)),
        (true, None, Some(seconds)) => micros(at) - seconds * 1_000_000,
        (true, None, None) => micros(local_to_utc(&clock.zone, &at)),
    })
}

/// Splits a zone's name written after a timestamp's time (`2024-01-15
/// 10:30:00 UTC`, `... Europe/Berlin`, `... PST`) off its text. None when
/// the last word is a name of no zone.
fn split_zone_name(text: &str) -> Option<(&str, Option<Tz>)> {
    match text.rsplit_once(' ') {
        Some((rest, word)) if word.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            let zone = crate::sql::time_zones::input_zone(word)?;
            Some((rest.trim_end(), Some(zone)))
        }
        _ => Some((text, None)),
    }
}

/// Splits a trailing UTC offset (`+02`, `+0530`, `-05:30`, `Z`) off a
/// timestamp's text: the rest and the offset in seconds east of UTC.
/// None when what follows the time is not an offset.
fn split_offset(text: &str) -> Option<(&str, Option<i64>)> {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return Some((rest, Some(0)));
    }
    // The sign of an offset comes after the time's colon, never in the date.
    let Some(time_at) = text.find(':') else {
        return Some((text, None));
    };
    let Some(sign_at) = text[time_at..].find(['+', '-']).map(|i| i + time_at) else {
        return Some((text, None));
    };
    let digits: String = text[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 1 | 2 | 4) {
        return None;
    }
    let (hours, minutes) = digits.split_at(digits.len().min(2));
    let seconds = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().unwrap_or(0) * 60;
    let sign = if text.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    Some((text[..sign_at].trim_end(), Some(sign * seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::datetime::PG_EPOCH_MICROS;

    /// A clock of 2024-03-10 06:30 UTC in `zone`.
    fn clock(zone: Tz) -> Clock {
        let now = NaiveDate::from_ymd_opt(2024, 3, 10)
            .and_then(|d| d.and_hms_opt(6, 30, 0))
            .unwrap();
        Clock {
            now: Some(micros(now)),
            zone,
        }
    }

    fn utc() -> Tz {
        "UTC".parse().unwrap()
    }

    #[test]
    fn words_are_read_at_the_transactions_start_in_the_sessions_zone() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        let at = |day: &str| {
            let (d, t) = day.split_once(' ').unwrap_or((day, "00:00"));
            micros(NaiveDateTime::new(
                NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
                NaiveTime::parse_from_str(t, "%H:%M").unwrap(),
            ))
        };
        let zoned = |text: &str| timestamp(text, clock(new_york), true).unwrap();
        let local = |text: &str| timestamp(text, clock(new_york), false).unwrap();
        // 06:30 UTC is 01:30 on the 10th in New York (EST, -05).
        assert_eq!(zoned("now"), at("2024-03-10 06:30"));
        assert_eq!(local(" NOW "), at("2024-03-10 01:30"));
        assert_eq!(zoned("today"), at("2024-03-10 05:00"));
        // The 11th begins in summer time (-04).
        assert_eq!(zoned("tomorrow"), at("2024-03-11 04:00"));
        assert_eq!(local("yesterday"), at("2024-03-09"));
        assert_eq!(zoned("epoch"), 0);
        assert_eq!(local("epoch"), 0);
        assert_eq!(date("today", clock(new_york)).unwrap(), 19792);
        assert_eq!(date("tomorrow", clock(utc())).unwrap(), 19793);
        assert_eq!(time("now", clock(new_york)).unwrap(), 5_400_000_000);
        assert_eq!(time("allballs", clock(utc())).unwrap(), 0);
        // Without the transaction's start the words are refused.
        let unknown = Clock {
            now: None,
            zone: utc(),
        };
        assert!(timestamp("now", unknown, true).is_err());
        assert!(date("today", unknown).is_err());
        assert_eq!(date("epoch", unknown).unwrap(), 0);
    }

    #[test]
    fn timestamps_with_offsets_and_zones() {
        let utc: Tz = "UTC".parse().unwrap();
        let t = |s: &str| timestamp(s, clock(utc), true).map_err(|e| e.to_string());
        assert_eq!(t("2000-01-01 00:00:00+00"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01T02:00:00+02"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 05:30:00+05:30"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("1999-12-31 19:00:00-0500"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 00:00:00.0000004Z"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01"), Ok(PG_EPOCH_MICROS));
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            timestamp("2000-01-01 01:00", clock(berlin), true).unwrap(),
            PG_EPOCH_MICROS
        );
        assert!(t("2000-13-01 00:00:00").is_err());
        assert_eq!(t("2000-01-01 00:00:00 UTC"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("2000-01-01 01:00 Europe/Berlin"), Ok(PG_EPOCH_MICROS));
        assert_eq!(t("1999-12-31 16:00:00 pst"), Ok(PG_EPOCH_MICROS));
        assert!(t("2000-01-01 00:00:00 Nowhere").is_err());
        assert_eq!(
            timestamp("2000-01-01 00:00:00 PST", clock(berlin), false).unwrap(),
            PG_EPOCH_MICROS
        );
        assert_eq!(
            timestamp("2000-01-01 00:00:01.5", clock(berlin), false).unwrap(),
            PG_EPOCH_MICROS + 1_500_000
        );
    }

    #[test]
    fn times_as_time_in_reads_them() {
        assert_eq!(time("00:00", clock(utc())).unwrap(), 0);
        assert_eq!(time(" 08:30:01.5 ", clock(utc())).unwrap(), 30_601_500_000);
        assert_eq!(
            time("23:59:59.9999999", clock(utc())).unwrap(),
            MICROS_PER_DAY
        );
        assert_eq!(time("24:00:00", clock(utc())).unwrap(), MICROS_PER_DAY);
        for (bad, code) in [
            ("24:00:01", InputError::DatetimeFieldOverflow),
            ("12:60", InputError::DatetimeFieldOverflow),
            ("noon", InputError::InvalidDatetimeFormat),
            ("12", InputError::InvalidDatetimeFormat),
            ("12:3x", InputError::InvalidDatetimeFormat),
            ("123:00", InputError::InvalidDatetimeFormat),
        ] {
            assert!(
                matches!(time(bad, clock(utc())), Err(Error::Input(c, _)) if c == code),
                "{bad}"
            );
        }
    }
}
