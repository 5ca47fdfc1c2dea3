//! CancelRequest: which session a (process id, secret key) pair names.
//!
//! Each connection gets a process id, unique on this node, and a random
//! secret key, sent to the client in BackendKeyData; a CancelRequest (on a
//! connection of its own, as psql sends it on Ctrl-C) that names both
//! stops that session's running statement. A wrong key, or a process id
//! that names no session, does nothing, as in PostgreSQL. A cancel is
//! served by the node the client connected to, which is the node that
//! runs its session.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::sql::cancel::Canceller;

/// The sessions of this node, by process id.
#[derive(Default)]
pub struct Sessions {
    last_pid: AtomicI32,
    by_pid: Mutex<HashMap<i32, (i32, Weak<Canceller>)>>,
}

/// A session's entry in [`Sessions`], removed when dropped (the connection
/// closed).
pub struct Registration {
    sessions: Arc<Sessions>,
    pub pid: i32,
    pub secret: i32,
}

impl Sessions {
    pub fn register(self: &Arc<Self>, canceller: &Arc<Canceller>) -> Registration {
        let mut by_pid = self.by_pid.lock().unwrap();
        let pid = loop {
            // Positive, as PostgreSQL's are; wraps after 2^31 connections.
            let pid = self
                .last_pid
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1)
                & i32::MAX;
            if pid != 0 && !by_pid.contains_key(&pid) {
                break pid;
            }
        };
        let secret = std::collections::hash_map::RandomState::new().hash_one(pid) as i32;
        by_pid.insert(pid, (secret, Arc::downgrade(canceller)));
        Registration {
            sessions: self.clone(),
            pid,
            secret,
        }
    }

    /// Stops the running statement of the session `pid` names, if `secret`
    /// is its key.
    pub fn cancel(&self, pid: i32, secret: i32) {
        let canceller = match self.by_pid.lock().unwrap().get(&pid) {
            Some((key, canceller)) if *key == secret => canceller.upgrade(),
            _ => None,
        };
        if let Some(canceller) = canceller {
            canceller.cancel();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.by_pid.lock().unwrap().remove(&self.pid);
    }
}
