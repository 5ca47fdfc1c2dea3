//! Stopping a session's running statement: a client's CancelRequest (psql's
//! Ctrl-C) or the session's `statement_timeout`, both 57014 as in
//! PostgreSQL.
//!
//! A statement stops where it waits for rows: every row stream a statement
//! reads or writes from (`Session::stream`, an INSERT's source, the SELECT
//! of an UPDATE or DELETE) is [`cancellable`], and a COPY FROM checks
//! between batches. A cancel wakes a stream that waits on a shard, so a
//! scan stops at once; a write in progress finishes its batch first, so
//! the statement's transaction is never left with a write still running
//! into it, and then rolls back (or fails its block) as for any error. A
//! cancel that arrives between statements does nothing, as in PostgreSQL.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{FutureExt, Stream};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::{Error, InputError, Result};

/// One session's handle on its running statement; a CancelRequest for the
/// session calls [`Canceller::cancel`] from another connection's task.
#[derive(Default)]
pub struct Canceller {
    running: Mutex<Arc<Running>>,
    /// The timer of the running statement's `statement_timeout`.
    timer: Mutex<Option<JoinHandle<()>>>,
}

/// The running statement's cancellation.
#[derive(Default, Debug)]
pub struct Running {
    token: CancellationToken,
    timed_out: AtomicBool,
}

impl Canceller {
    /// Stops the running statement, if any (a CancelRequest).
    pub fn cancel(&self) {
        self.running.lock().unwrap().token.cancel();
    }

    /// A statement starts: what cancelled the one before does not touch
    /// it, and with a `timeout` it is cancelled once that has passed.
    pub fn start(&self, timeout: Option<Duration>) -> Arc<Running> {
        let running = Arc::new(Running::default());
        *self.running.lock().unwrap() = running.clone();
        let timer = timeout.map(|timeout| {
            let running = running.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                running.timed_out.store(true, Ordering::Release);
                running.token.cancel();
            })
        });
        if let Some(old) = std::mem::replace(&mut *self.timer.lock().unwrap(), timer) {
            old.abort();
        }
        running
    }

    /// The running statement (the last one started).
    pub fn running(&self) -> Arc<Running> {
        self.running.lock().unwrap().clone()
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.get_mut().unwrap().take() {
            timer.abort();
        }
    }
}

impl Running {
    /// 57014 if the statement was cancelled.
    pub fn check(&self) -> Result<()> {
        match self.token.is_cancelled() {
            true => Err(self.error()),
            false => Ok(()),
        }
    }

    fn error(&self) -> Error {
        let why = match self.timed_out.load(Ordering::Acquire) {
            true => "statement timeout",
            false => "user request",
        };
        Error::input(
            InputError::QueryCanceled,
            format!("canceling statement due to {why}"),
        )
    }
}

/// `stream`, ending with 57014 as soon as the statement is cancelled, even
/// while it waits for its next batch.
pub fn cancellable(
    stream: SendableRecordBatchStream,
    running: Arc<Running>,
) -> SendableRecordBatchStream {
    let cancelled = running.token.clone().cancelled_owned();
    Box::pin(Cancellable {
        stream,
        cancelled: Box::pin(cancelled),
        running,
        done: false,
    })
}

struct Cancellable {
    stream: SendableRecordBatchStream,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    running: Arc<Running>,
    done: bool,
}

impl Stream for Cancellable {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.poll_unpin(cx).is_ready() {
            self.done = true;
            let error = self.running.error();
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(error)))));
        }
        self.stream.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for Cancellable {
    fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use futures::StreamExt;

    fn pending() -> SendableRecordBatchStream {
        let schema = Arc::new(Schema::empty());
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::pending(),
        ))
    }

    #[tokio::test]
    async fn a_cancel_wakes_a_waiting_stream_and_not_the_next_statement() {
        let canceller = Arc::new(Canceller::default());
        let mut stream = cancellable(pending(), canceller.start(None));
        let cancel = canceller.clone();
        tokio::spawn(async move { cancel.cancel() });
        let error = stream.next().await.unwrap().unwrap_err().to_string();
        assert!(
            error.contains("canceling statement due to user request"),
            "{error}"
        );
        assert!(stream.next().await.is_none());
        assert!(canceller.start(None).check().is_ok());
    }

    #[tokio::test]
    async fn a_timeout_cancels_with_its_own_message() {
        let canceller = Canceller::default();
        let mut stream = cancellable(pending(), canceller.start(Some(Duration::from_millis(20))));
        let error = stream.next().await.unwrap().unwrap_err().to_string();
        assert!(error.contains("statement timeout"), "{error}");
    }
}
