//! The node's one RocksDB instance, and MVCC reads over it.
//!
//! Column families:
//! - `data`: row versions under `user_key | !commit_ts` (see
//!   `encoding::keys`); an empty value is a tombstone.
//! - `meta`: the node's own records (catalog, shard map, last commit
//!   timestamp), small keys written through [`StorageBatch::put_meta`].
//! - `raft`: the Raft logs and votes of every group this node is a replica
//!   of, under keys that start with the group id (see `crate::raft`).
//!
//! Durability: every [`Storage::write`] is synced to the RocksDB WAL before
//! it returns, so an acknowledged commit survives SIGKILL and power loss,
//! unless the batch is marked [`StorageBatch::unsynced`] because a durable
//! record (a Raft log entry) can redo it. [`Storage::write_then_sync`]
//! (the Raft log appends) returns once the batch is written and calls
//! back once a sync of the WAL covered it, a sync that concurrent writers
//! share (group commit, `wal`). A batch is applied atomically: a
//! commit's data and its timestamp record land together or not at all.
//!
//! The layout of every record is versioned ([`FORMAT_VERSION`], kept under
//! `storage/format_version` in `meta`): a data directory of another
//! version is refused at start, never misread.
//!
//! Everything here blocks on disk; async callers use `spawn_blocking`.

mod gc;
mod mvcc;
mod wal;

pub use gc::Collected;
pub use mvcc::{EachRecord, Family, StorageBatch, VisibleRows};
pub use wal::Synced;

use mvcc::RaftWrite;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, ReadOptions, WriteOptions, DB};

use crate::error::{Error, Result};

const CF_DATA: &str = "data";
const CF_META: &str = "meta";
const CF_RAFT: &str = "raft";

/// The on-disk format of this build. 2: Raft records are the protobuf of
/// `proto/raft.proto` (1, never recorded, was JSON), and a shard group's
/// prepared transactions are kept in `meta` under its own prefix. 3: how a
/// transaction ended in a group is a `Settled` record (2 kept a one-phase
/// commit's timestamp alone), and a group's snapshot is a file under
/// `snapshots/`, which its `raft` record names (2 kept it in the record).
/// 4: an intent's writes are records of their own, one per key (3 kept
/// them all in the intent record). 5: a table's definition, the shard map,
/// the member list and the node's identity are protobuf records (4 kept
/// them as JSON). 6: a value of an unconstrained `numeric` column is its
/// sortable bytes with its own scale (`crate::numeric`; 5 kept a
/// `numeric(38, 10)` decimal).
pub const FORMAT_VERSION: u32 = 6;
const FORMAT_KEY: &[u8] = b"storage/format_version";

pub struct Storage {
    db: Arc<DB>,
    /// Syncs the WAL for [`Storage::write_then_sync`].
    syncer: wal::WalSyncer,
    /// Versions below this timestamp may be gone: a read at an older
    /// snapshot fails (see `gc`).
    gc_threshold: std::sync::atomic::AtomicU64,
    /// Where the Raft groups keep their snapshot files.
    snapshots: std::path::PathBuf,
}

/// The directory of the snapshot files, in the data directory.
const SNAPSHOT_DIR: &str = "snapshots";

impl Storage {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Readers look up one row's lock in `meta` before every point
        // read, and nearly always find none: whole-key bloom filters, in
        // the memtable and in each file, answer that without a search.
        let mut meta = options.clone();
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        meta.set_block_based_table_factory(&table);
        meta.set_memtable_prefix_bloom_ratio(0.05);
        meta.set_memtable_whole_key_filtering(true);
        let families = [
            ColumnFamilyDescriptor::new(CF_DATA, options.clone()),
            ColumnFamilyDescriptor::new(CF_META, meta),
            ColumnFamilyDescriptor::new(CF_RAFT, options.clone()),
        ];
        let db = DB::open_cf_descriptors(&options, dir, families).map_err(|e| {
            Error::Unavailable(format!("cannot open storage in {}: {e}", dir.display()))
        })?;
        let db = Arc::new(db);
        let snapshots = dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&snapshots).map_err(|e| {
            Error::Unavailable(format!("cannot create {}: {e}", snapshots.display()))
        })?;
        let storage = Self {
            syncer: wal::WalSyncer::start(db.clone())?,
            db,
            gc_threshold: Default::default(),
            snapshots,
        };
        storage.check_format(dir)?;
        storage.load_gc_threshold()?;
        Ok(storage)
    }

    /// Records [`FORMAT_VERSION`] in a new database; refuses one written
    /// in another format (or before formats were recorded).
    fn check_format(&self, dir: &Path) -> Result<()> {
        let refuse = |found: String| {
            Err(Error::Corrupt(format!(
                "the data directory {} holds on-disk format {found}, and this build reads \
                 format {FORMAT_VERSION}; start it with the build that wrote it, or with an \
                 empty data directory",
                dir.display()
            )))
        };
        match self.get_meta(FORMAT_KEY)? {
            Some(raw) if raw.as_slice() == FORMAT_VERSION.to_be_bytes() => Ok(()),
            Some(raw) => refuse(match <[u8; 4]>::try_from(raw.as_slice()) {
                Ok(version) => u32::from_be_bytes(version).to_string(),
                Err(_) => format!("{raw:?}"),
            }),
            None => {
                for family in [CF_DATA, CF_META, CF_RAFT] {
                    let mut iter = self.db.raw_iterator_cf(self.cf(family)?);
                    iter.seek_to_first();
                    if iter.valid() {
                        return refuse("1".into());
                    }
                    iter.status()?;
                }
                let mut batch = self.batch();
                batch.put_meta(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes());
                self.write(batch)
            }
        }
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| Error::Corrupt(format!("column family {name} is missing")))
    }

    /// The directory of the Raft groups' snapshot files (see
    /// `raft::state_machine`), on the data directory's file system.
    pub fn snapshot_dir(&self) -> &Path {
        &self.snapshots
    }

    /// A new empty batch; apply it with [`Storage::write`].
    pub fn batch(&self) -> StorageBatch {
        StorageBatch::default()
    }

    /// Applies `batch` atomically and syncs it to the WAL before returning.
    pub fn write(&self, batch: StorageBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut write = rocksdb::WriteBatch::default();
        let data = self.cf(CF_DATA)?;
        let meta = self.cf(CF_META)?;
        for (start, end) in &batch.data_ranges {
            write.delete_range_cf(data, start, end);
        }
        for (key, value) in &batch.data {
            match value {
                Some(value) => write.put_cf(data, key, value),
                None => write.delete_cf(data, key),
            }
        }
        for (start, end) in &batch.meta_ranges {
            write.delete_range_cf(meta, start, end);
        }
        for (key, value) in &batch.meta {
            match value {
                Some(value) => write.put_cf(meta, key, value),
                None => write.delete_cf(meta, key),
            }
        }
        if !batch.raft.is_empty() {
            let raft = self.cf(CF_RAFT)?;
            for op in &batch.raft {
                match op {
                    RaftWrite::Put(key, value) => write.put_cf(raft, key, value),
                    RaftWrite::Delete(key) => write.delete_cf(raft, key),
                    RaftWrite::DeleteRange(start, end) => write.delete_range_cf(raft, start, end),
                }
            }
        }
        let mut options = WriteOptions::default();
        // The commit point: fsync the WAL so the caller may acknowledge it
        // (unless the batch redoes what a durable record holds already).
        options.set_sync(!batch.unsynced);
        self.db.write_opt(write, &options)?;
        Ok(())
    }

    /// Applies `batch` atomically without waiting for it to be durable:
    /// it is readable when this returns, and `synced` is called once the
    /// WAL holding it is synced, with the error if writing or syncing it
    /// failed. Concurrent writers share one fsync (group commit, see
    /// `wal`).
    pub fn write_then_sync(&self, mut batch: StorageBatch, synced: wal::Synced) -> Result<()> {
        batch.unsynced();
        match self.write(batch) {
            Ok(()) => {
                self.syncer.after_next_sync(synced);
                Ok(())
            }
            Err(e) => {
                synced(Err(e.clone()));
                Err(e)
            }
        }
    }

    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    pub fn get_raft(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_RAFT)?, key)?)
    }

    /// The `raft` records in `[start, end)`, in key order.
    pub fn scan_raft(&self, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(end.to_vec());
        collect_from(
            self.db.raw_iterator_cf_opt(self.cf(CF_RAFT)?, options),
            start,
            usize::MAX,
        )
    }

    /// The last `raft` record in `[start, end)`.
    pub fn last_raft(&self, start: &[u8], end: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(start.to_vec());
        options.set_iterate_upper_bound(end.to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(CF_RAFT)?, options);
        iter.seek_to_last();
        let last = iter
            .key()
            .zip(iter.value())
            .map(|(k, v)| (k.to_vec(), v.to_vec()));
        iter.status()?;
        Ok(last)
    }

    /// A consistent view of the database as it is now: reads through it do
    /// not see later writes.
    pub fn view(&self) -> View<'_> {
        View {
            storage: self,
            snapshot: self.db.snapshot(),
        }
    }

    /// A [`View`] that holds on to the storage, kept as long as needed: a
    /// Raft group's snapshot is one, taken when openraft asks for a
    /// snapshot and read only if a follower needs it. While it lives,
    /// compactions keep the versions it sees (overwritten and collected
    /// ones included).
    pub fn pinned_view(self: &Arc<Self>) -> PinnedView {
        let storage = self.clone();
        let view = storage.view();
        // SAFETY: the view borrows the `Storage` inside the Arc (its
        // address never moves while an Arc to it lives) and that
        // storage's RocksDB handle. `PinnedView` owns a clone of the Arc
        // and declares the view first, so the view is dropped (its
        // RocksDB snapshot released) before the Arc can let go of the
        // database: the borrow never outlives what it borrows.
        let view = unsafe { std::mem::transmute::<View<'_>, View<'static>>(view) };
        PinnedView {
            view,
            _storage: storage,
        }
    }

    /// All meta records whose key starts with `prefix`, in key order.
    pub fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect_prefix(&self.db, self.cf(CF_META)?, ReadOptions::default(), prefix)
    }

    /// Adds the deletion of every `meta` record under `prefixes` to
    /// `batch` (a state kept under key prefixes, replaced by a snapshot).
    pub fn delete_meta_prefixes(&self, prefixes: &[&[u8]], batch: &mut StorageBatch) -> Result<()> {
        for prefix in prefixes {
            match prefix_end(prefix) {
                Some(end) => batch.meta_ranges.push((prefix.to_vec(), end)),
                None => {
                    for (key, _) in self.scan_meta(prefix)? {
                        batch.delete_meta(&key);
                    }
                }
            }
        }
        Ok(())
    }

    /// The meta records in `[start, end)`, in key order.
    pub fn scan_meta_range(&self, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_meta_page(start, end, usize::MAX)
    }

    /// The first `limit` meta records in `[start, end)`, in key order: a
    /// range of unbounded size read a page at a time.
    pub fn scan_meta_page(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(end.to_vec());
        collect_from(
            self.db.raw_iterator_cf_opt(self.cf(CF_META)?, options),
            start,
            limit,
        )
    }

    /// Physically removes every version of every key in `[start, end)`. Used
    /// when a table is dropped: its id is never reused, so no reader can
    /// still want those rows.
    pub fn purge_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        let mut write = rocksdb::WriteBatch::default();
        write.delete_range_cf(self.cf(CF_DATA)?, start, end);
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(write, &options)?;
        Ok(())
    }

    fn data_iter(&self, upper_bound: &[u8]) -> Result<rocksdb::DBRawIterator<'_>> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(upper_bound.to_vec());
        Ok(self.db.raw_iterator_cf_opt(self.cf(CF_DATA)?, options))
    }
}

/// Every record of `iter` whose key starts with `prefix`.
/// The first key after every key that starts with `prefix` (`None` if
/// there is none: the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// Calls `each` with the records of `cf` whose key starts with `prefix`,
/// in key order. The scan is bounded above by the prefix's end: unbounded,
/// RocksDB would step over every deleted record after the prefix (the
/// locks of a large transaction's keys after the intents, say) looking for
/// a live one before the prefix check could stop it.
fn each_under(
    db: &DB,
    cf: &rocksdb::ColumnFamily,
    mut options: ReadOptions,
    prefix: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    if let Some(end) = prefix_end(prefix) {
        options.set_iterate_upper_bound(end);
    }
    let mut iter = db.raw_iterator_cf_opt(cf, options);
    iter.seek(prefix);
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if !key.starts_with(prefix) {
            break;
        }
        each(key, value)?;
        iter.next();
    }
    iter.status()?;
    Ok(())
}

/// The records [`each_under`] visits, collected.
fn collect_prefix(
    db: &DB,
    cf: &rocksdb::ColumnFamily,
    options: ReadOptions,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    each_under(db, cf, options, prefix, |key, value| {
        out.push((key.to_vec(), value.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// Every record of `iter` (bounded above by its options) from `start` on.
fn collect_from(
    mut iter: rocksdb::DBRawIterator<'_>,
    start: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    iter.seek(start);
    let mut out = Vec::new();
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if out.len() == limit {
            break;
        }
        out.push((key.to_vec(), value.to_vec()));
        iter.next();
    }
    iter.status()?;
    Ok(out)
}

/// See [`Storage::view`].
pub struct View<'a> {
    storage: &'a Storage,
    snapshot: rocksdb::Snapshot<'a>,
}

/// See [`Storage::pinned_view`].
pub struct PinnedView {
    // Dropped before `_storage` (fields drop in order): see `pinned_view`.
    view: View<'static>,
    _storage: Arc<Storage>,
}

impl std::ops::Deref for PinnedView {
    type Target = View<'static>;

    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

impl View<'_> {
    /// The storage this is a view of.
    pub fn storage(&self) -> &Storage {
        self.storage
    }

    fn options(&self) -> ReadOptions {
        let mut options = ReadOptions::default();
        options.set_snapshot(&self.snapshot);
        options
    }

    pub fn get_raft(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.storage.cf(CF_RAFT)?;
        Ok(self.storage.db.get_cf_opt(cf, key, &self.options())?)
    }

    /// The `raft` records in `[start, end)`, in key order.
    pub fn scan_raft(&self, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let cf = self.storage.cf(CF_RAFT)?;
        let mut options = self.options();
        options.set_iterate_upper_bound(end.to_vec());
        collect_from(
            self.storage.db.raw_iterator_cf_opt(cf, options),
            start,
            usize::MAX,
        )
    }

    /// The `meta` records whose key starts with `prefix`, in key order.
    pub fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let cf = self.storage.cf(CF_META)?;
        collect_prefix(&self.storage.db, cf, self.options(), prefix)
    }

    /// Calls `each` with every `meta` record under `prefixes` (a state
    /// kept under key prefixes, for a snapshot).
    pub fn each_meta(&self, prefixes: &[&[u8]], each: &mut EachRecord<'_>) -> Result<()> {
        let cf = self.storage.cf(CF_META)?;
        for prefix in prefixes {
            each_under(
                &self.storage.db,
                cf,
                self.options(),
                prefix,
                |key, value| each(Family::Meta, key, value),
            )?;
        }
        Ok(())
    }

    /// The raw `data` records in `[start, end)`, in key order, to `visit`.
    pub fn scan_data_range(
        &self,
        start: &[u8],
        end: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let cf = self.storage.cf(CF_DATA)?;
        let mut options = self.options();
        options.set_iterate_upper_bound(end.to_vec());
        let mut iter = self.storage.db.raw_iterator_cf_opt(cf, options);
        iter.seek(start);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            visit(key, value)?;
            iter.next();
        }
        iter.status()?;
        Ok(())
    }

    /// The first `data` key at or after `from`.
    pub fn next_data_key(&self, from: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.storage.cf(CF_DATA)?;
        let mut iter = self.storage.db.raw_iterator_cf_opt(cf, self.options());
        iter.seek(from);
        let key = iter.key().map(<[u8]>::to_vec);
        iter.status()?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_scan_stops_at_the_prefix_not_at_the_next_live_record() {
        use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let deleted = |i: u32| [b"b/".as_slice(), &i.to_be_bytes()].concat();
        let mut batch = storage.batch();
        batch.put_meta(b"a/1", b"x");
        for i in 0..1000 {
            batch.put_meta(&deleted(i), b"y");
        }
        storage.write(batch).unwrap();
        let mut batch = storage.batch();
        for i in 0..1000 {
            batch.delete_meta(&deleted(i));
        }
        batch.put_meta(b"c/1", b"z");
        storage.write(batch).unwrap();

        set_perf_stats(PerfStatsLevel::EnableCount);
        let mut context = PerfContext::default();
        context.reset();
        let found = storage.scan_meta(b"a/").unwrap();
        let skipped = context.metric(PerfMetric::InternalDeleteSkippedCount);
        set_perf_stats(PerfStatsLevel::Disable);
        assert_eq!(found, vec![(b"a/1".to_vec(), b"x".to_vec())]);
        assert!(
            skipped < 10,
            "stepped over {skipped} deleted records past the prefix"
        );
    }

    #[test]
    fn a_data_directory_of_another_format_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            let mut batch = storage.batch();
            batch.put_raft(b"an entry", b"of some format");
            storage.write(batch).unwrap();
        }
        // Reopened by the same format: fine.
        drop(Storage::open(dir.path()).unwrap());
        // A directory written before formats were recorded.
        {
            let storage = Storage::open(dir.path()).unwrap();
            storage
                .db
                .delete_cf(storage.cf(CF_META).unwrap(), FORMAT_KEY)
                .unwrap();
        }
        let Err(Error::Corrupt(message)) = Storage::open(dir.path()) else {
            panic!("an unrecorded format was accepted");
        };
        assert!(message.contains("format 1"), "{message}");
        // A later format.
        {
            let db =
                DB::open_cf(&Options::default(), dir.path(), [CF_DATA, CF_META, CF_RAFT]).unwrap();
            db.put_cf(
                db.cf_handle(CF_META).unwrap(),
                FORMAT_KEY,
                9u32.to_be_bytes(),
            )
            .unwrap();
        }
        let Err(Error::Corrupt(message)) = Storage::open(dir.path()) else {
            panic!("a later format was accepted");
        };
        assert!(message.contains("format 9"), "{message}");
    }
}
