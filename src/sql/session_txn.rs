//! The open transaction of one connection, as the table providers see it.
//!
//! It is attached to the connection's DataFusion session config as an
//! extension; the `Session` puts a transaction in before it plans a
//! statement and takes it out to commit or roll back.
//!
//! It is also the connection's view of the catalog ([`Tables`]): the
//! committed tables with the open transaction's CREATE and DROP TABLE
//! applied, which no other connection sees before the commit.

use std::sync::{Arc, Mutex};

use crate::catalog::{TableDef, Tables};
use crate::error::{Error, Result};
use crate::txn::{Transaction, TxnCoordinator};

pub struct SessionTxn {
    pub coordinator: Arc<TxnCoordinator>,
    txn: Mutex<Option<Transaction>>,
}

impl SessionTxn {
    pub fn new(coordinator: Arc<TxnCoordinator>) -> Self {
        Self {
            coordinator,
            txn: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Transaction>> {
        // Only this connection uses the slot; a panic mid-statement leaves a
        // transaction that is rolled back anyway.
        self.txn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the open transaction.
    pub fn with<R>(&self, f: impl FnOnce(&mut Transaction) -> Result<R>) -> Result<R> {
        match self.slot().as_mut() {
            Some(txn) => f(txn),
            None => Err(Error::Internal("no open transaction".into())),
        }
    }

    pub fn is_open(&self) -> bool {
        self.slot().is_some()
    }

    /// Opens a transaction if none is open, at the cluster's read
    /// timestamp.
    pub async fn begin(&self) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        let txn = self.coordinator.begin_shared().await?;
        let mut slot = self.slot();
        if slot.is_none() {
            *slot = Some(txn);
        }
        Ok(())
    }

    /// Sends the open transaction's writes ahead to their shard groups once
    /// they outgrew its buffer (`txn::sent_ahead`), so its memory stays
    /// bounded.
    pub async fn bound_writes(&self) -> Result<()> {
        match self.with(|t| t.parcel(&self.coordinator))? {
            Some(parcel) => self.coordinator.send_ahead(parcel).await,
            None => Ok(()),
        }
    }

    /// Takes the open transaction out, to commit it or drop it (rollback).
    pub fn take(&self) -> Option<Transaction> {
        self.slot().take()
    }
}

impl Tables for SessionTxn {
    fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        let catalog = self.coordinator.catalog();
        match self.slot().as_ref() {
            Some(txn) => txn.schema().table(catalog, name),
            None => catalog.table(name),
        }
    }

    fn tables(&self) -> Vec<Arc<TableDef>> {
        let catalog = self.coordinator.catalog();
        match self.slot().as_ref() {
            Some(txn) => txn.schema().tables(catalog),
            None => catalog.tables(),
        }
    }
}
