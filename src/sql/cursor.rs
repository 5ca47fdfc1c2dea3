//! SQL cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`, `FETCH`,
//! `MOVE` and `CLOSE`, as psycopg's and psycopg2's named cursors use them
//! (`FETCH FORWARD n FROM name` until it returns fewer rows).
//!
//! A cursor is its query's row stream, read as FETCH asks: rows are read
//! from the shards only as they are fetched, so a cursor over any table
//! holds one batch. It reads at its transaction's snapshot and ends with
//! it, unless declared WITH HOLD: such a cursor's remaining rows are read
//! when its transaction commits (and kept in memory, up to
//! [`MAX_HELD_BYTES`]; PostgreSQL spills them to disk). A cursor scans
//! forward only (FETCH NEXT, FORWARD, ALL, a count, RELATIVE n > 0;
//! backward directions are 55000), as PostgreSQL's may when not declared
//! SCROLL, unless declared SCROLL: then it keeps every row it read (up to
//! [`MAX_HELD_BYTES`] too) and moves both ways ([`Scrollback`]): PRIOR,
//! FIRST, LAST, ABSOLUTE, RELATIVE, BACKWARD, as PostgreSQL's does.

use std::sync::Mutex;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast::{
    FetchDirection, FetchPosition, Ident, ObjectName, Statement, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::StreamExt;

use super::errors::classify;
use crate::error::{Error, InputError, Result};

/// The most a WITH HOLD cursor keeps of its rows past its transaction.
pub const MAX_HELD_BYTES: usize = 256 << 20;

/// sqlparser has no MOVE: a MOVE is read as the FETCH of the same rows
/// `INTO` this name, which PostgreSQL's FETCH has no syntax for.
pub const MOVE_TARGET: &str = "shardforge move";

/// An open cursor.
pub struct Cursor {
    pub schema: SchemaRef,
    rows: Rows,
    /// Rows read from the stream but not fetched yet.
    pending: Option<RecordBatch>,
    /// Declared WITH HOLD: it outlives its transaction's commit.
    pub hold: bool,
    /// Declared SCROLL: the rows read so far, and where it stands.
    scroll: Option<Scrollback>,
}

/// What a SCROLL cursor keeps: every row read so far, in order, and its
/// position among them as PostgreSQL counts it (0: before the first row,
/// n: on row n, one past the last: after the end).
#[derive(Default)]
struct Scrollback {
    read: Vec<RecordBatch>,
    /// Rows in `read`.
    rows: u64,
    bytes: usize,
    /// Every row was read: `rows` is the cursor's whole count.
    done: bool,
    position: u64,
}

/// A SCROLL cursor's move, in PostgreSQL's terms.
enum Move {
    /// The next rows (None: all of them).
    Forward(Option<u64>),
    /// The rows before, nearest first.
    Backward(Option<u64>),
    /// To row n (from the end when negative; 0: before the first).
    Absolute(i64),
    /// To the row n from here (0: this one again).
    Relative(i64),
}

enum Rows {
    /// Read as fetched, at the transaction's snapshot. (The mutex only
    /// makes the session `Sync`: the stream is read through `get_mut`.)
    Streaming(Mutex<SendableRecordBatchStream>),
    /// Read whole when a WITH HOLD cursor's transaction committed.
    Held(std::vec::IntoIter<RecordBatch>),
}

/// What one FETCH or MOVE reads: rows it skips, then rows it returns
/// (None: all the rest).
#[derive(Debug, PartialEq)]
pub struct Step {
    pub skip: u64,
    pub take: Option<u64>,
}

impl Cursor {
    pub fn new(
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        hold: bool,
        scroll: bool,
    ) -> Self {
        Cursor {
            schema,
            rows: Rows::Streaming(Mutex::new(stream)),
            pending: None,
            hold,
            scroll: scroll.then(Scrollback::default),
        }
    }

    /// Whether its rows were read whole (it outlived its transaction).
    pub fn is_held(&self) -> bool {
        matches!(self.rows, Rows::Held(_))
    }

    /// Reads the rest of its rows into memory, so that it outlives its
    /// transaction (a WITH HOLD cursor at commit).
    pub async fn hold_rows(&mut self) -> Result<()> {
        if let Some(kept) = &mut self.scroll {
            // It keeps what it reads: all of it, then no stream.
            kept.read_up_to(&mut self.rows, u64::MAX).await?;
            self.rows = Rows::Held(Vec::new().into_iter());
            return Ok(());
        }
        let mut held: Vec<RecordBatch> = self.pending.take().into_iter().collect();
        let mut bytes = 0;
        while let Some(batch) = self.next_batch().await? {
            bytes += batch.get_array_memory_size();
            if bytes > MAX_HELD_BYTES {
                return Err(too_many_rows("a WITH HOLD cursor", "past its transaction"));
            }
            held.push(batch);
        }
        self.rows = Rows::Held(held.into_iter());
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(batch) = self.pending.take() {
            return Ok(Some(batch));
        }
        next_from(&mut self.rows).await
    }

    /// Carries out a FETCH (`keep`) or a MOVE in `direction`: the rows it
    /// returns (kept only with `keep`: a MOVE reads them by), and how many.
    pub async fn fetch(
        &mut self,
        direction: &FetchDirection,
        keep: bool,
    ) -> Result<(Vec<RecordBatch>, u64)> {
        match &mut self.scroll {
            Some(kept) => kept.go(&mut self.rows, scroll_move(direction)?, keep).await,
            None => self.fetch_forward(&step(direction)?, keep).await,
        }
    }

    /// Carries out `step`, forward: the rows it returns (kept only with
    /// `keep`), and how many.
    async fn fetch_forward(&mut self, step: &Step, keep: bool) -> Result<(Vec<RecordBatch>, u64)> {
        let mut skip = step.skip;
        let mut want = step.take.unwrap_or(u64::MAX);
        let mut rows = Vec::new();
        let mut count = 0;
        while skip > 0 || want > 0 {
            let Some(batch) = self.next_batch().await? else {
                break;
            };
            let n = batch.num_rows() as u64;
            let skipped = skip.min(n);
            skip -= skipped;
            let taken = want.min(n - skipped);
            want -= taken;
            if taken > 0 && keep {
                rows.push(batch.slice(skipped as usize, taken as usize));
            }
            count += taken;
            let used = (skipped + taken) as usize;
            if used < batch.num_rows() {
                self.pending = Some(batch.slice(used, batch.num_rows() - used));
            }
        }
        Ok((rows, count))
    }
}

/// The next batch of `rows`.
async fn next_from(rows: &mut Rows) -> Result<Option<RecordBatch>> {
    match rows {
        Rows::Streaming(stream) => {
            let stream = stream.get_mut().map_err(|_| poisoned())?;
            stream.next().await.transpose().map_err(classify)
        }
        Rows::Held(batches) => Ok(batches.next()),
    }
}

impl Scrollback {
    /// Reads from `source` until it holds `rows` rows, or all of them.
    async fn read_up_to(&mut self, source: &mut Rows, rows: u64) -> Result<()> {
        while !self.done && self.rows < rows {
            match next_from(source).await? {
                None => self.done = true,
                Some(batch) => {
                    self.bytes += batch.get_array_memory_size();
                    if self.bytes > MAX_HELD_BYTES {
                        return Err(too_many_rows("a SCROLL cursor", "it read"));
                    }
                    self.rows += batch.num_rows() as u64;
                    self.read.push(batch);
                }
            }
        }
        Ok(())
    }

    /// Carries out a move, reading from `source` as far as it needs, as
    /// PostgreSQL's `DoPortalRunFetch` moves: the rows it returns (kept
    /// only with `keep`), and how many.
    async fn go(
        &mut self,
        source: &mut Rows,
        to: Move,
        keep: bool,
    ) -> Result<(Vec<RecordBatch>, u64)> {
        let position = self.position;
        let target = match to {
            Move::Forward(count) => {
                let want = count.unwrap_or(u64::MAX);
                self.read_up_to(source, position.saturating_add(want))
                    .await?;
                let (first, last) = (position + 1, position.saturating_add(want).min(self.rows));
                let count = (last + 1).saturating_sub(first);
                self.position = match count < want {
                    true => self.rows + 1,
                    false => last,
                };
                return Ok((self.slice(first, last, keep && count > 0), count));
            }
            Move::Backward(count) => {
                let want = count.unwrap_or(u64::MAX);
                let last = position.saturating_sub(1).min(self.rows);
                let first = position.saturating_sub(want).max(1);
                let count = (last + 1).saturating_sub(first);
                self.position = match count < want {
                    true => 0,
                    false => first,
                };
                let rows = self.slice(first, last, keep && count > 0);
                let rows = rows.into_iter().rev().map(reversed);
                return Ok((rows.collect::<Result<_>>()?, count));
            }
            Move::Absolute(n) if n < 0 => {
                self.read_up_to(source, u64::MAX).await?;
                i128::from(self.rows) + 1 + i128::from(n)
            }
            Move::Absolute(n) => i128::from(n),
            Move::Relative(n) => i128::from(position) + i128::from(n),
        };
        // ABSOLUTE and RELATIVE: onto one row, or off either end.
        let target = u64::try_from(target.max(0)).unwrap_or(u64::MAX);
        self.read_up_to(source, target).await?;
        if target == 0 || target > self.rows {
            self.position = if target == 0 { 0 } else { self.rows + 1 };
            return Ok((Vec::new(), 0));
        }
        self.position = target;
        Ok((self.slice(target, target, keep), 1))
    }

    /// Rows `first..=last` (counted from 1) of those read, in order (none
    /// unless `keep`).
    fn slice(&self, first: u64, last: u64, keep: bool) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        if !keep {
            return out;
        }
        let mut start = 1;
        for batch in &self.read {
            let end = start + batch.num_rows() as u64;
            // The batch's rows are start..end.
            let from = first.max(start);
            let to = (last + 1).min(end);
            if from < to {
                out.push(batch.slice((from - start) as usize, (to - from) as usize));
            }
            start = end;
        }
        out
    }
}

/// `batch`'s rows last first.
fn reversed(batch: RecordBatch) -> Result<RecordBatch> {
    let n = batch.num_rows() as u32;
    let indices = UInt32Array::from_iter_values((0..n).rev());
    Ok(datafusion::arrow::compute::take_record_batch(
        &batch, &indices,
    )?)
}

fn too_many_rows(what: &str, which: &str) -> Error {
    Error::input(
        InputError::ProgramLimitExceeded,
        format!(
            "{what} keeps at most {} MiB of rows {which}",
            MAX_HELD_BYTES >> 20
        ),
    )
}

/// A SCROLL cursor's move in `direction`.
fn scroll_move(direction: &FetchDirection) -> Result<Move> {
    let signed = |n: i64, forward: bool| match (n, forward) {
        (0, _) => Move::Relative(0),
        (n, true) if n > 0 => Move::Forward(Some(n as u64)),
        (n, true) => Move::Backward(Some(n.unsigned_abs())),
        (n, false) if n > 0 => Move::Backward(Some(n as u64)),
        (n, false) => Move::Forward(Some(n.unsigned_abs())),
    };
    Ok(match direction {
        FetchDirection::Next => Move::Forward(Some(1)),
        FetchDirection::Prior => Move::Backward(Some(1)),
        FetchDirection::First => Move::Absolute(1),
        FetchDirection::Last => Move::Absolute(-1),
        FetchDirection::Absolute { limit } => Move::Absolute(count(limit)?),
        FetchDirection::Relative { limit } => Move::Relative(count(limit)?),
        FetchDirection::Count { limit } => signed(count(limit)?, true),
        FetchDirection::Forward { limit } => signed(limit.as_ref().map_or(Ok(1), count)?, true),
        FetchDirection::Backward { limit } => signed(limit.as_ref().map_or(Ok(1), count)?, false),
        FetchDirection::All | FetchDirection::ForwardAll => Move::Forward(None),
        FetchDirection::BackwardAll => Move::Backward(None),
    })
}

/// A FETCH's count.
fn count(value: &ValueWithSpan) -> Result<i64> {
    match &value.value {
        Value::Number(n, _) => n.parse().map_err(|_| syntax(n)),
        other => Err(syntax(&other.to_string())),
    }
}

/// The rows a FETCH direction reads; 55000 for the backward ones.
pub fn step(direction: &FetchDirection) -> Result<Step> {
    let forward = |n: i64| match n {
        n if n >= 0 => Ok(Step {
            skip: 0,
            take: Some(n as u64),
        }),
        _ => Err(forward_only()),
    };
    match direction {
        FetchDirection::Next => forward(1),
        FetchDirection::Count { limit } => forward(count(limit)?),
        FetchDirection::Forward { limit } => forward(limit.as_ref().map_or(Ok(1), count)?),
        FetchDirection::All | FetchDirection::ForwardAll => Ok(Step {
            skip: 0,
            take: None,
        }),
        FetchDirection::Relative { limit } => match count(limit)? {
            n if n > 0 => Ok(Step {
                skip: n as u64 - 1,
                take: Some(1),
            }),
            _ => Err(forward_only()),
        },
        _ => Err(forward_only()),
    }
}

fn poisoned() -> Error {
    Error::Internal("a cursor's stream was poisoned".into())
}

fn syntax(near: &str) -> Error {
    Error::input(
        InputError::Syntax,
        format!("syntax error at or near \"{near}\""),
    )
}

fn forward_only() -> Error {
    Error::input(
        InputError::ObjectNotInPrerequisiteState,
        "cursor can only scan forward (declare it SCROLL to move backward)",
    )
}

/// `FETCH` and `MOVE` in the forms sqlparser does not read: MOVE itself,
/// and a direction or count left out (`FETCH c`, `FETCH FROM c`, `FETCH
/// FORWARD IN c`), which PostgreSQL reads as NEXT and 1. None when `sql`
/// is not one such statement.
pub fn parse_fetch_or_move(sql: &str) -> Option<Statement> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut words = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon));
    let keyword = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let is_move = match words.next()? {
        Token::Word(w) if w.keyword == Keyword::FETCH => false,
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("move") => true,
        _ => return None,
    };
    // A negative count is one number (`ABSOLUTE -2`).
    let mut rest: Vec<Token> = Vec::new();
    for token in words {
        match (rest.last(), token) {
            (Some(Token::Minus), Token::Number(n, long)) => {
                rest.pop();
                rest.push(Token::Number(format!("-{n}"), long));
            }
            (_, token) => rest.push(token),
        }
    }
    // The cursor's name is last; FROM or IN may come before it.
    let (name, before) = rest.split_last()?;
    let Token::Word(name) = name else {
        return None;
    };
    let before = match before.split_last() {
        Some((t, rest)) if matches!(keyword(t), Some(Keyword::FROM | Keyword::IN)) => rest,
        _ => before,
    };
    let number = |t: &Token| match t {
        Token::Number(n, _) => Some(Value::Number(n.clone(), false).with_empty_span()),
        _ => None,
    };
    let direction = match before {
        [] => FetchDirection::Next,
        [n] if number(n).is_some() => FetchDirection::Count { limit: number(n)? },
        [d] => match keyword(d)? {
            Keyword::NEXT => FetchDirection::Next,
            Keyword::PRIOR => FetchDirection::Prior,
            Keyword::FIRST => FetchDirection::First,
            Keyword::LAST => FetchDirection::Last,
            Keyword::ALL => FetchDirection::All,
            Keyword::FORWARD => FetchDirection::Forward { limit: None },
            Keyword::BACKWARD => FetchDirection::Backward { limit: None },
            _ => return None,
        },
        [d, n] => {
            let limit = number(n);
            match (keyword(d)?, limit) {
                (Keyword::FORWARD, _) if keyword(n) == Some(Keyword::ALL) => {
                    FetchDirection::ForwardAll
                }
                (Keyword::BACKWARD, _) if keyword(n) == Some(Keyword::ALL) => {
                    FetchDirection::BackwardAll
                }
                (Keyword::FORWARD, limit @ Some(_)) => FetchDirection::Forward { limit },
                (Keyword::BACKWARD, limit @ Some(_)) => FetchDirection::Backward { limit },
                (Keyword::ABSOLUTE, Some(limit)) => FetchDirection::Absolute { limit },
                (Keyword::RELATIVE, Some(limit)) => FetchDirection::Relative { limit },
                _ => return None,
            }
        }
        _ => return None,
    };
    let mut ident = Ident::new(name.value.clone());
    ident.quote_style = name.quote_style;
    Some(Statement::Fetch {
        name: ident,
        direction,
        position: FetchPosition::From,
        into: is_move.then(|| ObjectName::from(vec![Ident::new(MOVE_TARGET)])),
    })
}

/// Whether a FETCH is a MOVE (see [`MOVE_TARGET`]).
pub fn is_move(into: &Option<ObjectName>) -> bool {
    into.as_ref()
        .is_some_and(|name| name.to_string() == MOVE_TARGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> Option<(Step, bool)> {
        let Statement::Fetch {
            direction, into, ..
        } = parse_fetch_or_move(sql)?
        else {
            return None;
        };
        Some((step(&direction).ok()?, is_move(&into)))
    }

    #[test]
    fn the_forms_postgresql_reads() {
        let take = |n| Step {
            skip: 0,
            take: Some(n),
        };
        assert_eq!(parsed("FETCH c"), Some((take(1), false)));
        assert_eq!(parsed("fetch from \"C\";"), Some((take(1), false)));
        assert_eq!(parsed("FETCH FORWARD IN c"), Some((take(1), false)));
        assert_eq!(parsed("FETCH 5 c"), Some((take(5), false)));
        assert_eq!(parsed("MOVE FORWARD 3 FROM c"), Some((take(3), true)));
        assert_eq!(
            parsed("MOVE ALL IN c"),
            Some((
                Step {
                    skip: 0,
                    take: None
                },
                true
            ))
        );
        assert_eq!(
            parsed("FETCH RELATIVE 3 FROM c").map(|p| p.0),
            Some(Step {
                skip: 2,
                take: Some(1)
            })
        );
        assert!(parse_fetch_or_move("FETCH PRIOR FROM c").is_some());
        assert!(matches!(
            parse_fetch_or_move("FETCH ABSOLUTE -2 FROM c"),
            Some(Statement::Fetch {
                direction: FetchDirection::Absolute { .. },
                ..
            })
        ));
        assert!(matches!(
            parse_fetch_or_move("MOVE -3 IN c"),
            Some(Statement::Fetch {
                direction: FetchDirection::Count { .. },
                ..
            })
        ));
        assert!(parsed("FETCH PRIOR FROM c").is_none());
        assert!(parse_fetch_or_move("SELECT 1").is_none());
        assert!(parse_fetch_or_move("FETCH 1 2 3 c").is_none());
    }
}
