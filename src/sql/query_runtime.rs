//! The runtime statements execute on, apart from the one that serves
//! connections, RPCs and Raft.
//!
//! DataFusion computes on the tasks that poll its streams and on the tasks
//! its operators spawn. A CPU-bound plan (a join of two large inputs) can
//! poll for seconds without giving its thread back: on the runtime that
//! serves sockets it starved everything else (on two cores, two partitions
//! of one query held both threads): the `statement_timeout` timer, the
//! CancelRequest, new connections, `/health`, Raft heartbeats. Plans
//! therefore run on a runtime of their own with a thread per core; the
//! operating system shares the cores between its threads and the server's,
//! so the server answers while a query computes.
//!
//! A statement's rows come through a channel of [`CHANNEL_BATCHES`] batches
//! fed by one task on this runtime. Dropping the stream (the statement was
//! cancelled, failed, or its client went away) aborts that task, which
//! stops at its next yield: DataFusion's operators yield between batches.

use std::sync::Arc;

use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{Error, Result};

/// Batches computed ahead of the consumer: enough to overlap computing
/// with sending, little enough to keep memory bounded.
const CHANNEL_BATCHES: usize = 2;

pub struct QueryRuntime {
    /// `None` only while being dropped.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl QueryRuntime {
    pub fn new() -> Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("shardforge-query")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the query runtime: {e}")))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Executes `plan` on this runtime; its rows as they are computed.
    pub fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task: Arc<TaskContext>,
    ) -> SendableRecordBatchStream {
        let schema = plan.schema();
        let (sender, receiver) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
        let producer = self.handle.spawn(async move {
            let mut rows = match execute_stream(plan, task) {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            while let Some(batch) = rows.next().await {
                let failed = batch.is_err();
                if sender.send(batch).await.is_err() || failed {
                    return;
                }
            }
        });
        let abort = AbortOnDrop(producer);
        // The stream owns the abort handle: the producer lives as long as
        // the stream does.
        let rows = ReceiverStream::new(receiver).map(move |batch| {
            let _owned = &abort;
            batch
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, rows))
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which a runtime's own thread may not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts the task computing a statement's rows when its stream is
/// dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
