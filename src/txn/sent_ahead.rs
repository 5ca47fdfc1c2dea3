//! Writes sent ahead: a transaction whose buffered writes outgrow its
//! buffer (`cluster.txn_write_buffer_kib`, [`super::DEFAULT_WRITE_BUFFER`])
//! sends them to their shard groups before it commits, so its memory stays
//! bounded whatever it writes (an `INSERT ... SELECT` of millions of rows).
//!
//! - Each group's leader checks them as a prepare does (a key committed
//!   after the snapshot, or locked by another transaction, is a conflict:
//!   40001) and holds them as a *staged* intent (`PrepareCommand.staged`):
//!   their keys are locked against other writers, but readers do not wait
//!   for them, since the transaction has no commit timestamp yet.
//! - The transaction reads them back: its scans name it
//!   (`ScanRequest.txn_id`), and each statement reads the writes of the
//!   statements before it, not its own (`IntentWrite.earlier`).
//! - Its commit is an async commit over every group it wrote (never one
//!   phase): each group's prepare, holding the transaction's keys while it
//!   takes the minimum commit timestamp, makes the staged intent a
//!   prepared one. A schema change in it goes through the meta group as
//!   any does.
//! - Rollback, a failed statement's block, a closed connection: `Abort` in
//!   every group it sent writes to, in the background.
//! - A coordinator that dies: while the transaction lives, its node
//!   answers that it is at work on it (`Committing`); once not, the groups'
//!   recovery probes the staged intents, which aborts them (they never
//!   prepared), and a late prepare is refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::distributed::PrepareKind;
use super::{Transaction, TxnCoordinator};
use crate::catalog::TableId;
use crate::error::Result;
use crate::shard::proto::WriteBatch;

/// The writes a transaction sent ahead, and where they are.
pub(super) struct SentAhead {
    pub(super) txn_id: Vec<u8>,
    /// The shard groups that hold them.
    pub(super) groups: BTreeSet<u32>,
    /// The tables they are rows of.
    pub(super) tables: BTreeSet<TableId>,
    start_ts: u64,
    coordinator: Arc<TxnCoordinator>,
    /// Set once a commit took them over; until then, dropping this aborts
    /// them.
    taken: bool,
}

/// Writes taken out of a transaction's buffer, to be sent ahead
/// ([`TxnCoordinator::send_ahead`]).
pub struct Parcel {
    txn_id: Vec<u8>,
    batches: Vec<WriteBatch>,
}

impl SentAhead {
    /// A commit takes the writes over (it commits or aborts them): their
    /// transaction's id.
    pub(super) fn take_over(&mut self) -> Vec<u8> {
        self.taken = true;
        self.txn_id.clone()
    }
}

impl Drop for SentAhead {
    fn drop(&mut self) {
        self.coordinator.at_work().remove(&self.txn_id);
        if self.taken {
            return;
        }
        // Without a runtime (the node stops), recovery aborts them: no one
        // answers that it is at work on them any more.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let coordinator = self.coordinator.clone();
        let txn_id = std::mem::take(&mut self.txn_id);
        let groups: Vec<u32> = self.groups.iter().copied().collect();
        let start_ts = self.start_ts;
        runtime.spawn(async move {
            let aborted = coordinator.resolve_everywhere(&txn_id, None, start_ts, &groups);
            if let Err(e) = aborted.await {
                tracing::warn!(error = %e, "writes sent ahead by a transaction rolled back wait for recovery");
            }
        });
    }
}

impl Transaction {
    /// Its buffered writes, taken out to be sent ahead once they outgrew
    /// the buffer (`None` before).
    pub fn parcel(&mut self, coordinator: &Arc<TxnCoordinator>) -> Result<Option<Parcel>> {
        if self.buffered < self.buffer_limit {
            return Ok(None);
        }
        let tables = self.written_tables();
        let sent = match &mut self.sent {
            Some(sent) => sent,
            None => {
                let txn_id = coordinator.new_txn_id();
                coordinator.at_work().insert(txn_id.clone());
                self.sent.insert(SentAhead {
                    txn_id,
                    groups: BTreeSet::new(),
                    tables: BTreeSet::new(),
                    start_ts: self.start_ts,
                    coordinator: coordinator.clone(),
                    taken: false,
                })
            }
        };
        sent.tables = tables;
        let batches = coordinator.batches(self.start_ts, std::mem::take(&mut self.writes));
        // Recorded before they go: an abort reaches every group that may
        // have taken some.
        sent.groups.extend(batches.keys());
        let txn_id = sent.txn_id.clone();
        self.buffered = 0;
        self.sent_past_savepoints();
        Ok(Some(Parcel {
            txn_id,
            batches: batches.into_values().collect(),
        }))
    }
}

impl TxnCoordinator {
    /// Sends `parcel` to the leaders of its shard groups, which check it
    /// (a conflict: 40001) and hold it as a staged intent (see the module
    /// docs).
    pub async fn send_ahead(&self, parcel: Parcel) -> Result<()> {
        let prepared =
            self.prepare_everywhere(&parcel.txn_id, parcel.batches, PrepareKind::SentAhead);
        prepared.await.map(|_| ())
    }
}
