//! DECLARE, FETCH, MOVE and CLOSE in a session (see [`crate::sql::cursor`]),
//! and what the end of a transaction does to its cursors.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, Declare, DeclareType, FetchDirection, Ident, ObjectName, Statement,
};

use super::{rows_of, Output, Session, TxnState};
use crate::error::{Error, InputError, Result};
use crate::sql::cursor::{self, Cursor};
use crate::sql::ddl::ident_name;

impl Session {
    /// `DECLARE name [[NO] SCROLL] CURSOR [WITH[OUT] HOLD] FOR query`.
    pub(super) async fn declare(
        &mut self,
        declares: &[Declare],
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let [declare] = declares else {
            return Err(Error::unsupported("DECLARE of several names"));
        };
        let (Some(DeclareType::Cursor), Some(query), [name]) = (
            &declare.declare_type,
            &declare.for_query,
            &declare.names[..],
        ) else {
            return Err(Error::unsupported("DECLARE other than of a cursor"));
        };
        if declare.binary == Some(true) {
            return Err(Error::unsupported("BINARY cursors"));
        }
        let hold = declare.hold == Some(true);
        let in_block = self.state != TxnState::Idle && !self.implicit;
        if !hold && !in_block {
            return Err(Error::input(
                InputError::NoActiveTransaction,
                "DECLARE CURSOR can only be used in transaction blocks",
            ));
        }
        let name = ident_name(name);
        if self.cursors.contains_key(&name) {
            return Err(Error::input(
                InputError::DuplicateCursor,
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let plan = self
            .plan_query(&Statement::Query(query.clone()), params)
            .await?;
        let (schema, stream) = self.stream(plan).await?;
        let scroll = declare.scroll == Some(true);
        let mut cursor = Cursor::new(schema, stream, hold, scroll);
        // Its transaction is this statement's own: it ends now.
        if hold && !in_block {
            cursor.hold_rows().await?;
        }
        self.cursors.insert(name, cursor);
        Ok(Output::Command("DECLARE CURSOR".into()))
    }

    /// `FETCH` (its rows, tagged `FETCH n`) or `MOVE` (`MOVE n`).
    pub(super) async fn fetch(
        &mut self,
        name: &Ident,
        direction: &FetchDirection,
        into: &Option<ObjectName>,
    ) -> Result<Output> {
        let moving = cursor::is_move(into);
        if into.is_some() && !moving {
            return Err(Error::unsupported("FETCH ... INTO"));
        }
        let cursor = self.cursor(name)?;
        let (rows, count) = cursor.fetch(direction, !moving).await?;
        if moving {
            return Ok(Output::Command(format!("MOVE {count}")));
        }
        Ok(rows_of(cursor.schema.clone(), rows, "FETCH"))
    }

    /// The columns of the cursor named `name` (exactly, as a protocol
    /// portal is named), if one is open.
    pub fn cursor_schema(&self, name: &str) -> Option<SchemaRef> {
        self.cursors.get(name).map(|cursor| cursor.schema.clone())
    }

    pub(super) fn cursor(&mut self, name: &Ident) -> Result<&mut Cursor> {
        let name = ident_name(name);
        self.cursors.get_mut(&name).ok_or_else(|| {
            Error::input(
                InputError::InvalidCursorName,
                format!("cursor \"{name}\" does not exist"),
            )
        })
    }

    /// `CLOSE name | ALL`.
    pub(super) fn close_cursor(&mut self, close: &CloseCursor) -> Result<Output> {
        match close {
            CloseCursor::All => self.cursors.clear(),
            CloseCursor::Specific { name } => {
                self.cursor(name)?;
                self.cursors.remove(&ident_name(name));
            }
        }
        Ok(Output::Command("CLOSE CURSOR".into()))
    }

    /// The block is about to commit: its WITH HOLD cursors read the rest of
    /// their rows (an error fails the commit), and the others close.
    pub(super) async fn hold_cursors(&mut self) -> Result<()> {
        let mut held = Ok(());
        for cursor in self.cursors.values_mut() {
            if held.is_ok() && cursor.hold && !cursor.is_held() {
                held = cursor.hold_rows().await;
            }
        }
        self.close_unheld_cursors();
        held
    }

    /// The transaction ended: the cursors it declared close, but for
    /// those WITH HOLD whose rows were read when a transaction committed.
    pub(super) fn close_unheld_cursors(&mut self) {
        self.cursors.retain(|_, cursor| cursor.is_held());
    }
}
