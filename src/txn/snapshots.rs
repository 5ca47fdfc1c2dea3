//! The snapshots this node's transactions read at, so that garbage
//! collection keeps what they may still read (see `cluster::gc`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The open snapshots, and the newest timestamp this node was handed.
#[derive(Default)]
pub struct Snapshots {
    open: Mutex<BTreeMap<u64, usize>>,
    newest: AtomicU64,
}

/// A transaction reads at its snapshot until this is dropped.
pub struct Reading {
    snapshots: Arc<Snapshots>,
    ts: u64,
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut open = self.snapshots.open();
        if let Some(count) = open.get_mut(&self.ts) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ts);
            }
        }
    }
}

impl Snapshots {
    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        // Changed in single steps: a panic leaves it whole.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A transaction reads at `ts` until the answer is dropped.
    pub fn read_at(self: &Arc<Self>, ts: u64) -> Reading {
        *self.open().entry(ts).or_default() += 1;
        self.newest.fetch_max(ts, Ordering::AcqRel);
        Reading {
            snapshots: self.clone(),
            ts,
        }
    }

    /// Whether no snapshot is open here.
    pub fn is_idle(&self) -> bool {
        self.open().is_empty()
    }

    /// Records `ts`, a timestamp the oracle handed out, as the newest this
    /// node was handed, if no snapshot is open here: the floor of a node
    /// whose statements take no snapshot (see `TxnCoordinator::advance_idle_floor`).
    pub fn handed_while_idle(&self, ts: u64) {
        // Checked again: a transaction may have begun since the caller looked.
        let open = self.open();
        if open.is_empty() {
            self.newest.fetch_max(ts, Ordering::AcqRel);
        }
    }

    /// The oldest snapshot read at here, or the newest timestamp this node
    /// was handed when none is open (0: none yet). A transaction that
    /// begins later reads at a later timestamp.
    pub fn floor(&self) -> u64 {
        let open = self.open();
        match open.keys().next() {
            Some(&oldest) => oldest,
            None => self.newest.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_oldest_open_snapshot_or_the_newest_one() {
        let snapshots = Arc::new(Snapshots::default());
        assert_eq!(snapshots.floor(), 0);
        let a = snapshots.read_at(10);
        let b = snapshots.read_at(10);
        let c = snapshots.read_at(20);
        assert_eq!(snapshots.floor(), 10);
        drop(a);
        assert_eq!(snapshots.floor(), 10, "another transaction reads at 10");
        drop(b);
        assert_eq!(snapshots.floor(), 20);
        drop(c);
        assert_eq!(snapshots.floor(), 20, "none open: the newest");
    }
}
