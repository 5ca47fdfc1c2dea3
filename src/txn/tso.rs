//! Timestamps from the oracle, as a cluster that replicates hands them
//! out: the meta group's leader issues them from its clock without a
//! Raft write per timestamp, and each node asks for its sessions'
//! concurrent requests in one call.
//!
//! The leader may hand out timestamps below a *limit* that the meta group
//! recorded (`OracleCommand::TimestampLimit`); when it reaches it, it
//! records a new one [`WINDOW_US`] ahead (one meta write every few
//! seconds, not one per transaction). A new leader first applies every
//! entry of earlier terms and moves its clock past the recorded limit, so
//! it never hands out a timestamp at or below one a former leader handed
//! out, whatever the two nodes' clocks say. A leader serves timestamps only
//! under its lease (`ShardGroups::lease_read`): a deposed leader's lease
//! runs out before another can be elected, so two leaders never hand out
//! timestamps at the same time.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// How far above the timestamps handed out the leader records its limit:
/// 3 s of clock (timestamps are microseconds).
pub const WINDOW_US: u64 = 3_000_000;

/// Where the meta group keeps the limit.
pub(super) const LIMIT_KEY: &[u8] = b"txn/timestamp_limit";

/// The limit as this meta replica applied it, and the lock under which its
/// leader raises it.
#[derive(Default)]
pub(super) struct Limit {
    applied: AtomicU64,
    pub(super) raising: tokio::sync::Mutex<()>,
}

impl Limit {
    pub(super) fn get(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The meta group applied `limit` (or a snapshot held it).
    pub(super) fn applied(&self, limit: u64) {
        self.applied.fetch_max(limit, Ordering::AcqRel);
    }
}

/// A request for one timestamp, answered through the sender.
type Request = oneshot::Sender<Result<u64>>;

/// Gathers this node's concurrent requests for timestamps into one call to
/// the oracle: while a call is out, the requests that arrive wait for the
/// next one, which asks for all of them.
pub(super) struct Batcher {
    requests: mpsc::UnboundedSender<Request>,
}

impl Batcher {
    /// Starts the batching task; `ask(n)` asks the oracle for `n`
    /// timestamps and answers the first.
    pub(super) fn start<F, Fut>(ask: F) -> Self
    where
        F: Fn(u32) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<u64>> + Send,
    {
        let (requests, mut waiting) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = waiting.try_recv() {
                    batch.push(more);
                }
                // Callers that went away still count: their timestamps are
                // simply not used.
                let answer = ask(batch.len() as u32).await;
                for (i, request) in batch.into_iter().enumerate() {
                    let answer = match &answer {
                        Ok(first) => Ok(first + i as u64),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = request.send(answer);
                }
            }
        });
        Self { requests }
    }

    /// One timestamp, from the next call to the oracle.
    pub(super) async fn next(&self) -> Result<u64> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(answer)
            .map_err(|_| Error::Unavailable("the node is stopping".into()))?;
        answered
            .await
            .map_err(|_| Error::Unavailable("the node is stopping".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_calls_and_get_distinct_timestamps() {
        let calls = Arc::new(AtomicU32::new(0));
        let next = Arc::new(AtomicU64::new(100));
        let batcher = {
            let (calls, next) = (calls.clone(), next.clone());
            Arc::new(Batcher::start(move |n| {
                let (calls, next) = (calls.clone(), next.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(next.fetch_add(u64::from(n), Ordering::SeqCst))
                }
            }))
        };
        let asks = (0..50).map(|_| {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.next().await.unwrap() })
        });
        let mut got: Vec<u64> = futures::future::join_all(asks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        got.sort();
        got.dedup();
        assert_eq!(got, (100..150).collect::<Vec<_>>());
        assert!(calls.load(Ordering::SeqCst) < 10, "{calls:?} calls");
    }
}
