//! One replica of one shard group: validates and stages writes, serves scans.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::convert::{fb_to_schema, IpcSchemaEncoder};
use datafusion::arrow::ipc::root_as_schema;
use datafusion::arrow::record_batch::RecordBatch;

use super::proto::{ScanRequest, WriteBatch};
use super::ShardRange;
use crate::encoding::keys::{hash_range_bounds, key_hash, versions_end, TABLE_ID_LEN};
use crate::encoding::row::{is_tombstone, RowDecoder};
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageBatch, VisibleRows};

/// Rows per Arrow batch a scan produces.
pub const SCAN_BATCH_ROWS: usize = 8192;

/// A write not yet committed, overlaid on a scan so a transaction reads its
/// own writes: `(user_key, Some(row) | None for a delete)`, sorted by key.
pub type Overlay<'a> = &'a [(Vec<u8>, Option<Vec<u8>>)];

pub struct ShardReplica {
    range: ShardRange,
    storage: Arc<Storage>,
}

impl std::fmt::Debug for ShardReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReplica")
            .field("range", &self.range)
            .finish()
    }
}

impl ShardReplica {
    pub fn new(range: ShardRange, storage: Arc<Storage>) -> Self {
        Self { range, storage }
    }

    pub fn range(&self) -> &ShardRange {
        &self.range
    }

    fn owns(&self, user_key: &[u8]) -> bool {
        let hash = u32::from(key_hash(user_key));
        user_key.len() > TABLE_ID_LEN && self.range.hash_start <= hash && hash < self.range.hash_end
    }

    /// Checks a transaction's writes before commit: every key belongs to this
    /// group and none was committed by another transaction after the
    /// writer's snapshot (first committer wins: the loser gets 40001).
    pub fn validate(&self, batch: &WriteBatch) -> Result<()> {
        for mutation in &batch.mutations {
            if !self.owns(&mutation.key) {
                return Err(Error::Internal(format!(
                    "key routed to the wrong shard group {:?}",
                    self.range.id
                )));
            }
            if let Some(ts) = self.storage.latest_version_ts(&mutation.key)? {
                if ts > batch.start_ts {
                    return Err(Error::Retry(
                        "could not serialize access due to concurrent update".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds a validated batch's versions at `commit_ts` to `out`.
    pub fn stage(&self, batch: &WriteBatch, commit_ts: u64, out: &mut StorageBatch) {
        for mutation in &batch.mutations {
            out.put_version(&mutation.key, commit_ts, mutation.value.as_deref());
        }
    }

    /// The row stored under `user_key` at `snapshot_ts`, if it exists.
    pub fn get(&self, user_key: &[u8], snapshot_ts: u64) -> Result<Option<Vec<u8>>> {
        self.storage.get_visible(user_key, snapshot_ts)
    }

    /// Serves a scan: decodes the visible rows (with `overlay` applied) into
    /// Arrow batches of at most [`SCAN_BATCH_ROWS`] and hands each to `emit`,
    /// which answers whether to go on (false when the reader went away).
    pub fn scan(
        &self,
        request: &ScanRequest,
        overlay: Overlay,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let row_schema = Arc::new(decode_schema(&request.row_schema)?);
        let projection: Vec<usize> = if request.projection.is_empty() {
            (0..row_schema.fields().len()).collect()
        } else {
            request.projection.iter().map(|&i| i as usize).collect()
        };
        let mut decoder = RowDecoder::new(row_schema, &projection)?;
        let mut remaining = request.limit.map_or(usize::MAX, |l| l as usize);
        let (start, end) = match &request.point_key {
            Some(key) => (key.clone(), versions_end(key)),
            None => hash_range_bounds(request.table_id, self.range.hash_start, self.range.hash_end),
        };
        let mut pending = overlay
            .iter()
            .filter(|(key, _)| {
                start.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice()
            })
            .peekable();
        let mut stopped = false;
        // Pushes one row and flushes a full batch; false once done.
        let mut push = |decoder: &mut RowDecoder, row: &[u8]| -> Result<bool> {
            if remaining == 0 {
                return Ok(false);
            }
            decoder.push(row)?;
            remaining -= 1;
            if decoder.rows() >= SCAN_BATCH_ROWS && !emit(decoder.finish()?) {
                stopped = true;
                return Ok(false);
            }
            Ok(remaining > 0)
        };
        self.storage
            .scan_visible(&start, &end, request.snapshot_ts, |key, row| {
                // Own writes that sort before this stored row come first; one
                // on the same key replaces the stored row.
                while let Some((own_key, own_row)) = pending.peek() {
                    if own_key.as_slice() > key {
                        break;
                    }
                    let same = own_key.as_slice() == key;
                    if let Some(own_row) = own_row.as_deref().filter(|r| !is_tombstone(r)) {
                        if !push(&mut decoder, own_row)? {
                            return Ok(VisibleRows::Stop);
                        }
                    }
                    pending.next();
                    if same {
                        return Ok(VisibleRows::Continue);
                    }
                }
                Ok(if push(&mut decoder, row)? {
                    VisibleRows::Continue
                } else {
                    VisibleRows::Stop
                })
            })?;
        for (_, own_row) in pending {
            if let Some(own_row) = own_row.as_deref() {
                if !push(&mut decoder, own_row)? {
                    break;
                }
            }
        }
        if !stopped && decoder.rows() > 0 {
            emit(decoder.finish()?);
        }
        Ok(())
    }
}

/// The Arrow IPC form of a row schema, as carried by `ScanRequest`.
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    IpcSchemaEncoder::new()
        .schema_to_fb(schema)
        .finished_data()
        .to_vec()
}

fn decode_schema(bytes: &[u8]) -> Result<Schema> {
    root_as_schema(bytes).map(fb_to_schema).map_err(|e| {
        Error::Input(
            crate::error::InputError::Other,
            format!("bad row schema: {e}"),
        )
    })
}
