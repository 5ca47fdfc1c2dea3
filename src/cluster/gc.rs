//! The cluster's GC safe point: below it no transaction reads, so row
//! versions hidden at it may go (`storage::gc`).
//!
//! Each node's *floor* is the oldest snapshot its transactions read at,
//! or, with none open, the newest timestamp it was handed
//! (`TxnCoordinator::snapshot_floor`, which the node reports here every
//! [`super::HEARTBEAT_INTERVAL`] / 2, after asking the oracle for a
//! timestamp if none is open: statements that take no snapshot, such as
//! an autocommit point SELECT, would not move it): a transaction it
//! begins later reads at a later timestamp. A transaction still prepared
//! in a group the node holds holds the floor at its snapshot too
//! (recovery needs the records of how it ended elsewhere). Members send their floor with every heartbeat to
//! the meta replicas; a meta replica that has the floor of every live
//! member (and its own) answers the safe point: the lowest floor minus the
//! retention (`cluster.gc_retention_secs`), which also covers a snapshot
//! handed out but not yet registered when its node reported. Each node
//! collects at the highest safe point it was answered. A member down (not
//! heard from within `LIVENESS_WINDOW`) holds nothing back: its
//! transactions are gone. A transaction on a node cut off from the meta
//! replicas can outlive the retention; its reads then fail with "snapshot
//! too old" (72000), never with rows missing. A one-node cluster computes
//! its safe point itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{Cluster, State, LIVENESS_WINDOW};

/// This node's floor, the floors members reported, and the safe point
/// this node was told.
#[derive(Default)]
pub(super) struct Floors {
    local: AtomicU64,
    reported: Mutex<HashMap<u32, u64>>,
    told: AtomicU64,
}

impl Cluster {
    /// This node's floor, as its transactions last reported it (0: it
    /// cannot say yet).
    pub(super) fn local_floor(&self) -> u64 {
        self.floors.local.load(Ordering::Acquire)
    }

    /// This node's transactions report their floor (see the module docs):
    /// the node's next heartbeats and safe points use it.
    pub fn set_local_floor(&self, floor: u64) {
        self.floors.local.store(floor, Ordering::Release);
    }

    /// Member `node` reported `floor` in a heartbeat.
    pub(super) fn record_floor(&self, node: u32, floor: u64) {
        let mut reported = self
            .floors
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        reported.insert(node, floor);
    }

    /// A safe point this node was answered.
    pub(super) fn told_safe_point(&self, safe_point: u64) {
        self.floors.told.fetch_max(safe_point, Ordering::AcqRel);
    }

    /// The safe point from the floors this node has: every live member's
    /// and its own (0 while one is missing).
    pub(super) fn safe_point_here(&self, state: &State) -> u64 {
        let me = state.identity.node_id;
        let mut lowest = self.local_floor();
        let reported = self
            .floors
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        for member in state.members.iter().filter(|m| m.id != me && !m.removed) {
            let live = seen
                .get(&member.id)
                .is_some_and(|at| at.elapsed() <= LIVENESS_WINDOW);
            if !live && self.opened.elapsed() > LIVENESS_WINDOW {
                continue;
            }
            lowest = lowest.min(reported.get(&member.id).copied().unwrap_or(0));
        }
        lowest.saturating_sub(self.gc_retention_us)
    }

    /// The safe point garbage collection may use now (0: none).
    pub fn gc_safe_point(&self) -> u64 {
        let Some(state) = self.state() else {
            return 0;
        };
        let alone = state
            .members
            .iter()
            .all(|m| m.id == state.identity.node_id || m.removed);
        let here = match alone
            || state
                .identity
                .meta_replicas
                .contains(&state.identity.node_id)
        {
            true => self.safe_point_here(&state),
            false => 0,
        };
        here.max(self.floors.told.load(Ordering::Acquire))
    }
}
