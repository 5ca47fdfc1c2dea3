//! One replica of one shard group: validates and stages writes, serves scans.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::DefaultPhysicalExtensionCodec;
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;

use super::locks::{InTheWay, LockCounts};
use super::proto::{ScanRequest, WriteBatch};
use super::ShardRange;
use crate::encoding::keys::{hash_range_bounds, key_hash, versions_end, TABLE_ID_LEN};
use crate::encoding::row::{is_tombstone, RowDecoder};
use crate::encoding::schema::decode_schema;
use crate::error::{Error, InputError, Result};
use crate::storage::{Storage, StorageBatch, VisibleRows};

/// A predicate over the columns a scan returns: the pushed-down filters.
pub type Filter = Arc<dyn PhysicalExpr>;

/// Rows per Arrow batch a scan produces.
pub const SCAN_BATCH_ROWS: usize = 8192;

/// A write not yet committed, as its transaction reads it back:
/// `(user_key, Some(row) | None for a delete)`.
pub type OwnWrite = (Vec<u8>, Option<Vec<u8>>);

/// Writes not yet committed, overlaid on a scan so a transaction reads its
/// own writes, sorted by key.
pub type Overlay<'a> = &'a [OwnWrite];

pub struct ShardReplica {
    range: ShardRange,
    storage: Arc<Storage>,
    /// The group's lock records, counted by its state machine (shared by
    /// every placement of the group).
    lock_counts: Arc<LockCounts>,
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
        Self {
            range,
            storage,
            lock_counts: Arc::default(),
        }
    }

    pub fn range(&self) -> &ShardRange {
        &self.range
    }

    /// This group's replica with the placement (nodes, replicas) of
    /// `range`, which has the same bounds.
    pub fn placed(&self, range: &ShardRange) -> Self {
        Self {
            range: ShardRange {
                node: range.node,
                replicas: range.replicas.clone(),
                ..self.range.clone()
            },
            storage: self.storage.clone(),
            lock_counts: self.lock_counts.clone(),
        }
    }

    /// The count of the group's lock records by key slot.
    pub fn lock_counts(&self) -> &LockCounts {
        &self.lock_counts
    }

    /// Whether `key` (a user key, or a row version's key, which starts
    /// with one) is in this group's hash range.
    pub fn owns(&self, key: &[u8]) -> bool {
        let hash = u32::from(key_hash(key));
        key.len() > TABLE_ID_LEN && self.range.hash_start <= hash && hash < self.range.hash_end
    }

    /// Checks a transaction's writes before commit: every key belongs to this
    /// group and none was committed by another transaction after the
    /// writer's snapshot (first committer wins: the loser gets 40001). A
    /// key that must be free (`Mutation.absent`, committed at `commit_ts`
    /// without a snapshot) must hold no live row and no version at or
    /// above `commit_ts` (a deletion committed above it would hide the
    /// new row): either is a unique violation, which sends the INSERT the
    /// ordinary way (`TxnCoordinator::insert_alone`).
    pub fn validate(&self, batch: &WriteBatch, commit_ts: Option<u64>) -> Result<()> {
        for mutation in &batch.mutations {
            if !self.owns(&mutation.key) {
                return Err(Error::Internal(format!(
                    "key routed to the wrong shard group {:?}",
                    self.range.id
                )));
            }
            let latest = self.storage.latest_version_ts(&mutation.key)?;
            if let (true, Some(commit_ts)) = (mutation.absent, commit_ts) {
                let hidden = latest.is_some_and(|ts| ts >= commit_ts);
                if hidden || self.storage.get_visible(&mutation.key, u64::MAX)?.is_some() {
                    return Err(Error::input(
                        InputError::UniqueViolation,
                        "duplicate key value violates unique constraint",
                    ));
                }
                continue;
            }
            if latest.is_some_and(|ts| ts > batch.start_ts) {
                return Err(Error::Retry(
                    "could not serialize access due to concurrent update".into(),
                ));
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

    /// Whether a lock of the group's intents on the user keys in `range`
    /// is in the way of a reader at `read_ts` of transaction `reader` (see
    /// [`super::machine::lock_in_the_way`]). Blocks on disk.
    pub fn lock_in_the_way(
        &self,
        range: (&[u8], &[u8]),
        read_ts: u64,
        reader: &[u8],
        preparing: &dyn Fn(&[u8]) -> bool,
    ) -> Result<InTheWay> {
        let (storage, group, counts) = (&self.storage, self.range.id.0, &*self.lock_counts);
        super::machine::lock_in_the_way(storage, group, counts, range, read_ts, reader, preparing)
    }

    /// The rows under `request.keys` (a point read, or INSERT's
    /// duplicate-key check), in their order, as `request`'s reader sees
    /// them: its own write sent ahead if any, else the version visible at
    /// its snapshot; `None` where there is no row. A row is its stored
    /// encoding, whole (the reader decodes the columns it wants), or empty
    /// when the request projects no column (only its presence is asked).
    /// Blocks on disk.
    pub fn read_keys(&self, request: &ScanRequest) -> Result<Vec<Option<Vec<u8>>>> {
        let reader = (request.txn_id.as_slice(), request.statement);
        let mut rows = Vec::with_capacity(request.keys.len());
        for key in &request.keys {
            let own = match reader.0.is_empty() {
                true => None,
                false => super::machine::staged_write(&self.storage, self.range.id.0, reader, key)?,
            };
            let row = match own {
                Some(row) => row.filter(|r| !is_tombstone(r)),
                None => self.get(key, request.snapshot_ts)?,
            };
            rows.push(match request.projection.is_empty() {
                true => row.map(|_| Vec::new()),
                false => row,
            });
        }
        Ok(rows)
    }

    /// The row stored under `user_key` at `snapshot_ts`, if it exists.
    pub fn get(&self, user_key: &[u8], snapshot_ts: u64) -> Result<Option<Vec<u8>>> {
        self.storage.get_visible(user_key, snapshot_ts)
    }

    /// Serves a scan: decodes the visible rows (with `overlay` applied) into
    /// Arrow batches of at most [`SCAN_BATCH_ROWS`], keeps the rows that pass
    /// `filter`, and hands each batch to `emit`, which answers whether to go
    /// on (false when the reader went away).
    pub fn scan(
        &self,
        request: &ScanRequest,
        overlay: Overlay,
        mut filter: Option<Filter>,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let row_schema = decode_schema(&request.row_schema)?;
        let projection: Vec<usize> = request.projection.iter().map(|&i| i as usize).collect();
        let mut decoder = RowDecoder::new(row_schema, &projection)?;
        // Hands on the rows of a batch that pass the filter; false when the
        // reader went away. A filter that fails on a batch (division by
        // zero...) is dropped: the reader applies it again and reports the
        // error as the statement's.
        let mut emit = |batch: RecordBatch| -> bool {
            let batch = match filter.as_ref().map(|f| keep_matching(f, &batch)) {
                Some(Ok(kept)) => kept,
                Some(Err(_)) => {
                    filter = None;
                    batch
                }
                None => batch,
            };
            batch.num_rows() == 0 || emit(batch)
        };
        let mut remaining = request.limit.map_or(usize::MAX, |l| l as usize);
        let (start, end) = scan_bounds(request, &self.range);
        let mut pending = OwnRows::new(self, request, overlay, (&start, &end));
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
                while let Some((own_key, _)) = pending.peek()? {
                    if own_key.as_slice() > key {
                        break;
                    }
                    let same = own_key.as_slice() == key;
                    let Some((_, own_row)) = pending.next()? else {
                        break;
                    };
                    if let Some(own_row) = own_row.as_deref().filter(|r| !is_tombstone(r)) {
                        if !push(&mut decoder, own_row)? {
                            return Ok(VisibleRows::Stop);
                        }
                    }
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
        while let Some((_, own_row)) = pending.next()? {
            if let Some(own_row) = own_row.as_deref().filter(|r| !is_tombstone(r)) {
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

/// How many of its own writes sent ahead a scan reads at a time.
const STAGED_PAGE: usize = 1024;

/// The reading transaction's own writes in a scan's range, in key order:
/// those it holds in memory (the overlay) over those it sent ahead to the
/// group (read a page at a time, see `machine::staged_writes`).
struct OwnRows<'a> {
    held: Overlay<'a>,
    sent: std::collections::VecDeque<OwnWrite>,
    /// Where the next page of writes sent ahead starts (`None`: no more).
    sent_from: Option<Vec<u8>>,
    end: &'a [u8],
    replica: &'a ShardReplica,
    reader: (&'a [u8], u32),
    ahead: Option<OwnWrite>,
}

impl<'a> OwnRows<'a> {
    fn new(
        replica: &'a ShardReplica,
        request: &'a ScanRequest,
        overlay: Overlay<'a>,
        (start, end): (&[u8], &'a [u8]),
    ) -> Self {
        let from = overlay.partition_point(|(k, _)| k.as_slice() < start);
        let to = overlay.partition_point(|(k, _)| k.as_slice() < end);
        Self {
            held: &overlay[from.min(to)..to],
            sent: Default::default(),
            sent_from: (!request.txn_id.is_empty()).then(|| start.to_vec()),
            end,
            replica,
            reader: (&request.txn_id, request.statement),
            ahead: None,
        }
    }

    fn peek(&mut self) -> Result<Option<&OwnWrite>> {
        if self.ahead.is_none() {
            self.ahead = self.take()?;
        }
        Ok(self.ahead.as_ref())
    }

    fn next(&mut self) -> Result<Option<OwnWrite>> {
        match self.ahead.take() {
            Some(write) => Ok(Some(write)),
            None => self.take(),
        }
    }

    fn take(&mut self) -> Result<Option<OwnWrite>> {
        while self.sent.is_empty() {
            let Some(from) = self.sent_from.take() else {
                break;
            };
            let (storage, group) = (&self.replica.storage, self.replica.range.id.0);
            let range = (from.as_slice(), self.end);
            let (page, next) =
                super::machine::staged_writes(storage, group, self.reader, range, STAGED_PAGE)?;
            self.sent.extend(page);
            self.sent_from = next;
        }
        let sent_first = match (self.held.first(), self.sent.front()) {
            (None, None) => return Ok(None),
            (Some(held), Some(sent)) => sent.0 < held.0,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if sent_first {
            return Ok(self.sent.pop_front());
        }
        let held = self.held[0].clone();
        self.held = &self.held[1..];
        // The write held in memory is the newer one.
        if self.sent.front().is_some_and(|sent| sent.0 == held.0) {
            self.sent.pop_front();
        }
        Ok(Some(held))
    }
}

/// `[start, end)` of the user keys a scan of `request` reads in the shard
/// group of `range`: the one key of a point lookup, or the table's rows in
/// the group's hash range.
pub fn scan_bounds(request: &ScanRequest, range: &ShardRange) -> (Vec<u8>, Vec<u8>) {
    match &request.point_key {
        Some(key) => (key.clone(), versions_end(key)),
        None => hash_range_bounds(request.table_id, range.hash_start, range.hash_end),
    }
}

/// The rows of `batch` for which `filter` is true.
fn keep_matching(filter: &Filter, batch: &RecordBatch) -> datafusion::common::Result<RecordBatch> {
    let mask = filter.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask = datafusion::common::cast::as_boolean_array(&mask)?;
    Ok(filter_record_batch(batch, mask)?)
}

/// The `ScanRequest.filter` form of `filter`; empty (no filter) when it does
/// not encode, since the reader applies the filters again anyway.
pub fn encode_filter(filter: &Filter) -> Vec<u8> {
    match serialize_physical_expr(filter, &DefaultPhysicalExtensionCodec {}) {
        Ok(node) => node.encode_to_vec(),
        Err(e) => {
            tracing::debug!("filter {filter} is not sent to the shards: {e}");
            Vec::new()
        }
    }
}

/// The filter `bytes` encode over the columns of `schema`. A filter this
/// node cannot decode (one that names a function only the SQL layer knows)
/// is dropped: the reader applies every filter again.
pub fn decode_filter(bytes: &[u8], schema: &Schema) -> Option<Filter> {
    if bytes.is_empty() {
        return None;
    }
    // Built-in functions are looked up by name while decoding.
    static FUNCTIONS: OnceLock<Arc<TaskContext>> = OnceLock::new();
    let functions = FUNCTIONS.get_or_init(|| {
        SessionStateBuilder::new()
            .with_default_features()
            .build()
            .task_ctx()
    });
    let decoded = PhysicalExprNode::decode(bytes)
        .map_err(|e| e.to_string())
        .and_then(|node| {
            parse_physical_expr(&node, functions, schema, &DefaultPhysicalExtensionCodec {})
                .map_err(|e| e.to_string())
        });
    match decoded {
        Ok(filter) => Some(filter),
        Err(e) => {
            tracing::debug!("scanning without the filter, which does not decode: {e}");
            None
        }
    }
}

/// The schema of the batches a scan of `request` yields.
pub fn scan_schema(request: &ScanRequest) -> Result<Schema> {
    let projection: Vec<usize> = request.projection.iter().map(|&i| i as usize).collect();
    decode_schema(&request.row_schema)?
        .project(&projection)
        .map_err(|e| {
            Error::Input(
                crate::error::InputError::Other,
                format!("bad projection: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{create_for_test, Catalog, ColumnDef, SqlType, TableDef, TableId};
    use crate::encoding::keys::{encode_key_value, row_key};
    use crate::encoding::row::encode_rows;
    use crate::encoding::schema::encode_schema;
    use crate::shard::ShardMap;
    use datafusion::arrow::array::{Array, AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type};

    /// The id of the table [`setup`] fills: the first one a fresh catalog
    /// hands out.
    const TABLE: u32 = 100;

    /// A one-group node with rows 0..10 of a one-column table [`TABLE`].
    fn setup() -> (tempfile::TempDir, Arc<ShardMap>, Arc<Schema>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let shards = Arc::new(ShardMap::load_or_init(&storage, 1).unwrap());
        let catalog = Arc::new(Catalog::load(&storage).unwrap());
        let def = TableDef {
            id: TableId(0),
            name: "t".into(),
            columns: vec![ColumnDef {
                name: "k".into(),
                sql_type: SqlType::BigInt,
                nullable: false,
                default: None,
            }],
            primary_key: vec![0],
            hidden_rowid: false,
            primary_key_name: None,
            derived: Default::default(),
        };
        assert_eq!(create_for_test(&catalog, def).id, TableId(TABLE));
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..10))],
        )
        .unwrap();
        let rows = encode_rows(&batch).unwrap().into_iter().enumerate();
        let rows = rows.map(|(row, value)| (key(&batch, row), value)).collect();
        crate::shard::put_rows_for_test(&storage, rows, 1);
        (dir, shards, schema)
    }

    fn key(batch: &RecordBatch, row: usize) -> Vec<u8> {
        let mut pk = Vec::new();
        encode_key_value(&mut pk, batch.column(0).as_ref(), row).unwrap();
        row_key(TABLE, &pk)
    }

    fn scan(
        c: &ShardMap,
        schema: &Schema,
        projection: Vec<u32>,
        point_key: Option<Vec<u8>>,
        overlay: Overlay,
    ) -> Vec<RecordBatch> {
        let request = ScanRequest {
            table_id: TABLE,
            shard_id: 0,
            snapshot_ts: 10,
            row_schema: encode_schema(schema),
            projection,
            limit: None,
            point_key,
            overlay: Vec::new(),
            keys: Vec::new(),
            filter: Vec::new(),
            ..Default::default()
        };
        let mut out = Vec::new();
        c.replicas()[0]
            .scan(&request, overlay, None, |b| {
                out.push(b);
                true
            })
            .unwrap();
        out
    }

    #[test]
    fn point_lookup_reads_exactly_one_row() {
        let (_dir, c, schema) = setup();
        let probe = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![4]))])
            .unwrap();
        let batches = scan(&c, &schema, vec![0], Some(key(&probe, 0)), &[]);
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(values, vec![4]);
    }

    #[test]
    fn empty_projection_counts_rows_and_overlay_applies() {
        let (_dir, c, schema) = setup();
        let probe = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![3]))])
            .unwrap();
        // The transaction deleted row 3.
        let overlay = vec![(key(&probe, 0), None)];
        let batches = scan(&c, &schema, vec![], None, &overlay);
        assert!(batches.iter().all(|b| b.num_columns() == 0));
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 9);
        let all = scan(&c, &schema, vec![0], None, &[]);
        assert_eq!(all.iter().map(|b| b.column(0).len()).sum::<usize>(), 10);
    }

    #[test]
    fn a_key_inserted_without_a_snapshot_must_be_free_and_not_deleted_above_its_commit() {
        let (_dir, c, _schema) = setup();
        let replica = &c.replicas()[0];
        let pk = |v: i64| {
            let mut pk = Vec::new();
            encode_key_value(&mut pk, &Int64Array::from(vec![v]), 0).unwrap();
            row_key(TABLE, &pk)
        };
        let insert = |v: i64| WriteBatch {
            shard_id: 0,
            start_ts: 0,
            mutations: vec![crate::shard::proto::Mutation {
                key: pk(v),
                value: Some(b"row".to_vec()),
                statement: 1,
                absent: true,
            }],
        };
        let taken = |result: Result<()>| {
            matches!(result, Err(Error::Input(InputError::UniqueViolation, _)))
        };
        // Row 3 is live; 42 was never written.
        assert!(taken(replica.validate(&insert(3), Some(5))));
        replica.validate(&insert(42), Some(5)).unwrap();
        // Row 4 deleted at 20: free for a commit above 20; below, the
        // deletion would hide the new row.
        let mut out = replica.storage.batch();
        out.put_version(&pk(4), 20, None);
        replica.storage.write(out).unwrap();
        assert!(taken(replica.validate(&insert(4), Some(10))));
        replica.validate(&insert(4), Some(30)).unwrap();
    }
}
