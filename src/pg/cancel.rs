//! CancelRequest: which session a (process id, secret key) pair names.
//!
//! Each connection gets a process id, unique in the cluster, and a random
//! secret key, sent to the client in BackendKeyData; a CancelRequest (on a
//! connection of its own, as psql sends it on Ctrl-C) that names both
//! stops that session's running statement. A wrong key, or a process id
//! that names no session, does nothing, as in PostgreSQL.
//!
//! A process id carries the id of the node that serves its session in its
//! top bits: behind a load balancer a cancel connection may land on another
//! node than its session's, which passes the request on, as a
//! CancelRequest of its own, to the PostgreSQL address of the node named.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cluster::Cluster;
use crate::sql::cancel::Canceller;

/// Bits of a process id below its node's id: a node numbers 4,194,303
/// sessions before its numbers wrap, and node ids up to 511 fit above.
const SESSION_BITS: u32 = 22;
const SESSION_MASK: i32 = (1 << SESSION_BITS) - 1;
const MAX_NODE: u32 = (1 << (31 - SESSION_BITS)) - 1;
/// How long passing a cancel on to another node may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The sessions of this node, by process id.
pub struct Sessions {
    /// This node's id as process ids carry it; 0 for a node whose id has
    /// no room there (its sessions can be cancelled through itself only).
    node: u32,
    cluster: Arc<Cluster>,
    last_session: AtomicI32,
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
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let node = cluster.node_id().filter(|&id| id <= MAX_NODE);
        Self {
            node: node.unwrap_or(0),
            cluster,
            last_session: AtomicI32::new(0),
            by_pid: Mutex::default(),
        }
    }

    pub fn register(self: &Arc<Self>, canceller: &Arc<Canceller>) -> Registration {
        let mut by_pid = self.by_pid.lock().unwrap();
        let pid = loop {
            // Positive, as PostgreSQL's are.
            let session = self
                .last_session
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1)
                & SESSION_MASK;
            let pid = (self.node as i32) << SESSION_BITS | session;
            if session != 0 && !by_pid.contains_key(&pid) {
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
    /// is its key: here, or on the node `pid` names.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let node = (pid >> SESSION_BITS) as u32;
        if node != 0 && node != self.node {
            self.forward(node, pid, secret).await;
            return;
        }
        let canceller = match self.by_pid.lock().unwrap().get(&pid) {
            Some((key, canceller)) if *key == secret => canceller.upgrade(),
            _ => None,
        };
        if let Some(canceller) = canceller {
            canceller.cancel();
        }
    }

    /// Sends the cancel on to `node` (a node not, or no longer, a member
    /// gets none).
    async fn forward(&self, node: u32, pid: i32, secret: i32) {
        let Some(addr) = self.cluster.pg_addr(node) else {
            return;
        };
        let mut request = 16i32.to_be_bytes().to_vec();
        request.extend(super::frames::CANCEL_REQUEST.to_be_bytes());
        request.extend(pid.to_be_bytes());
        request.extend(secret.to_be_bytes());
        let sent = tokio::time::timeout(FORWARD_TIMEOUT, async {
            TcpStream::connect(&addr).await?.write_all(&request).await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::warn!(node, addr, "could not pass a cancel request on");
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.by_pid.lock().unwrap().remove(&self.pid);
    }
}
