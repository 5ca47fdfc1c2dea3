//! The checks a statement passes before it runs: the transaction modes
//! honoured, the statements refused with 0A000, and their errors.

use datafusion::sql::sqlparser::ast::{Statement, TransactionMode};

use crate::error::{Error, InputError, Result};
use crate::sql::vars;

/// Accepts the transaction modes ShardForge honours (see `vars::isolation`).
pub(super) fn check_modes(modes: &[TransactionMode]) -> Result<()> {
    for mode in modes {
        if let TransactionMode::IsolationLevel(level) = mode {
            vars::isolation(&level.to_string())?;
        }
    }
    Ok(())
}

pub(super) fn in_failed_block() -> Error {
    Error::input(
        InputError::InFailedTransaction,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// The leading keywords of a statement, for "X is not supported" messages.
pub(super) fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .take(2)
        .collect();
    if words.is_empty() {
        "this statement".into()
    } else {
        words.join(" ").to_uppercase()
    }
}

/// What DataFusion would plan wrongly or refuse obscurely is 0A000:
/// `SELECT ... FOR UPDATE` (`FOR SHARE`, ...) until rows can be locked
/// (accepted without a lock, it would let two transactions that each
/// locked a row and then wrote elsewhere both commit, where PostgreSQL
/// makes the second wait: the next issue's row locks), and a WITH query
/// that writes (DataFusion: "not implemented yet").
pub(super) fn refuse_unsupported(stmt: &Statement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visit, Visitor};
    use std::ops::ControlFlow;
    struct Refused;
    impl Visitor for Refused {
        type Break = &'static str;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<&'static str> {
            if !query.locks.is_empty() {
                return ControlFlow::Break("SELECT ... FOR UPDATE or FOR SHARE (row locks)");
            }
            let writes = |cte: &datafusion::sql::sqlparser::ast::Cte| {
                matches!(
                    cte.query.body.as_ref(),
                    SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
                )
            };
            match query
                .with
                .as_ref()
                .is_some_and(|w| w.cte_tables.iter().any(writes))
            {
                true => ControlFlow::Break("INSERT, UPDATE or DELETE in WITH"),
                false => ControlFlow::Continue(()),
            }
        }
    }
    match stmt.visit(&mut Refused) {
        ControlFlow::Break(what) => Err(Error::unsupported(what)),
        ControlFlow::Continue(()) => Ok(()),
    }
}
