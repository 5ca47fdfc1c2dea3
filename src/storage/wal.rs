//! Group commit: writers that need their batch durable but need not wait
//! for it ([`Storage::write_then_sync`](super::Storage::write_then_sync):
//! the Raft log appends of every group on the node) write it without
//! syncing the WAL and queue a callback here; one thread syncs the WAL for
//! everything queued since its last sync, then calls back. Concurrent
//! appends, of one group or of many, so share an fsync: one per sync
//! round instead of one per append, and the proposer does not wait for
//! the disk while the next entries are appended.
//!
//! Why it is exact: a sync covers every write made before it started (the
//! WAL is one file written in order), and a callback is queued only after
//! its batch was written, so the round that takes it from the queue syncs
//! it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rocksdb::DB;

use crate::error::{Error, Result};

/// Called once the WAL holding a write is synced (or failed to be).
pub type Synced = Box<dyn FnOnce(Result<()>) + Send>;

/// The node's WAL syncing thread; dropping it ends the thread once the
/// callbacks queued are answered.
pub(super) struct WalSyncer {
    queue: Option<Sender<Synced>>,
    thread: Option<JoinHandle<()>>,
}

impl WalSyncer {
    pub(super) fn start(db: Arc<DB>) -> Result<Self> {
        let (queue, queued) = channel();
        let thread = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || sync_rounds(&db, queued))
            .map_err(|e| Error::Internal(format!("cannot start the WAL sync thread: {e}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Calls `synced` after the next sync of the WAL.
    pub(super) fn after_next_sync(&self, synced: Synced) {
        match &self.queue {
            Some(queue) => {
                if let Err(unsent) = queue.send(synced) {
                    (unsent.0)(Err(stopped()));
                }
            }
            None => synced(Err(stopped())),
        }
    }
}

fn stopped() -> Error {
    Error::Unavailable("the storage is closing: its WAL is no longer synced".into())
}

/// Syncs the WAL for each batch of callbacks queued, then answers them,
/// until the queue closes.
fn sync_rounds(db: &DB, queued: Receiver<Synced>) {
    while let Ok(first) = queued.recv() {
        let round: Vec<Synced> = std::iter::once(first).chain(queued.try_iter()).collect();
        let synced = db
            .flush_wal(true)
            .map_err(|e| Error::Unavailable(format!("cannot sync the WAL: {e}")));
        for callback in round {
            callback(synced.clone());
        }
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use crate::storage::Storage;

    /// Writers on many threads are each called back once their write is
    /// synced, and what they wrote is there after the storage is closed
    /// (which waits for the sync thread) and opened again.
    #[test]
    fn every_write_is_called_back_once_synced_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (done, answers) = channel();
        {
            let storage = std::sync::Arc::new(Storage::open(dir.path()).unwrap());
            let writers: Vec<_> = (0..4u8)
                .map(|w| {
                    let (storage, done) = (storage.clone(), done.clone());
                    std::thread::spawn(move || {
                        for i in 0..50u8 {
                            let mut batch = storage.batch();
                            batch.put_raft(&[w, i], b"entry");
                            let done = done.clone();
                            let synced = Box::new(move |r| done.send(r).unwrap());
                            storage.write_then_sync(batch, synced).unwrap();
                            // Readable at once, synced or not.
                            assert!(storage.get_raft(&[w, i]).unwrap().is_some());
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
        }
        drop(done);
        let answers: Vec<_> = answers.iter().collect();
        assert_eq!(answers.len(), 200);
        assert!(answers.iter().all(|r| r.is_ok()));
        let storage = Storage::open(dir.path()).unwrap();
        for (w, i) in (0..4u8).flat_map(|w| (0..50u8).map(move |i| (w, i))) {
            assert_eq!(
                storage.get_raft(&[w, i]).unwrap().as_deref(),
                Some(&b"entry"[..])
            );
        }
    }
}
