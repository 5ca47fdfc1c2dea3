//! A shard group's records beside its rows (see the module docs of
//! `machine`): their keys, and the reads of them made outside the state
//! machine (by readers, recovery and garbage collection).

use std::collections::HashMap;
use std::ops::ControlFlow;

use prost::Message;

use super::commands::command;
use crate::encoding::keys::versions_end;
use crate::error::{Error, Result};
use crate::raft::GroupId;
use crate::shard::locks::{in_the_way, InTheWay, LockCounts};
use crate::shard::proto::settled::Outcome as Ended;
use crate::shard::proto::shard_command::Command;
use crate::shard::proto::{ForgetCommand, Intent, IntentWrite, Lock, Settled};
use crate::shard::replica::OwnWrite;
use crate::storage::{prefix_end, Storage};

/// The kinds of a group's records (see the module docs of `machine`).
pub(super) const INTENT: u8 = b'i';
pub(super) const WRITE: u8 = b'w';
pub(super) const LOCK: u8 = b'l';
/// How a transaction ended here: its id → a `Settled` record.
pub(super) const SETTLED: u8 = b'o';

/// `shard/<group u32 BE>`: the start of every `meta` record of the group.
pub(super) fn group_prefix(group: GroupId) -> Vec<u8> {
    [b"shard/".as_slice(), &group.to_be_bytes()].concat()
}

pub(super) fn record_key(group: GroupId, kind: u8, name: &[u8]) -> Vec<u8> {
    [group_prefix(group).as_slice(), &[kind], name].concat()
}

/// The key of `txn_id`'s write of `user_key` (ids are at most 255 bytes:
/// `prepare` refuses longer ones).
pub(super) fn write_key(group: GroupId, txn_id: &[u8], user_key: &[u8]) -> Vec<u8> {
    let name = [&[txn_id.len() as u8], txn_id, user_key].concat();
    record_key(group, WRITE, &name)
}

pub(super) fn decode_intent(record: &[u8]) -> Result<Intent> {
    Intent::decode(record).map_err(|e| Error::Corrupt(format!("an intent record: {e}")))
}

pub(super) fn decode_write(record: &[u8]) -> Result<IntentWrite> {
    IntentWrite::decode(record).map_err(|e| Error::Corrupt(format!("an intent's write: {e}")))
}

pub(super) fn decode_settled(record: &[u8]) -> Result<Ended> {
    Settled::decode(record)
        .ok()
        .and_then(|s| s.outcome)
        .ok_or_else(|| Error::Corrupt("a settled transaction's record".into()))
}

pub(super) fn decode_lock(record: &[u8]) -> Result<Lock> {
    Lock::decode(record).map_err(|e| Error::Corrupt(format!("a lock record: {e}")))
}

/// How many lock records a reader reads at a time.
const LOCK_PAGE: usize = 1024;

/// Whether one of `group`'s locks on the user keys in `[start, end)` is
/// in the way of a reader at `read_ts` (`shard::locks`). The locks of the
/// reader's own transaction (`reader`, empty for none) are not, nor are
/// those of writes sent ahead by a running transaction (`staged`), which
/// has no commit timestamp yet, unless it is `preparing` now, its keys
/// held while its commit timestamp is taken, nor those of a transaction
/// committed after `read_ts`. One committed at or before it is
/// `Resolving`: its rows are being written. Reads the locks a page at a
/// time. Blocks on disk.
pub fn lock_in_the_way(
    storage: &Storage,
    group: GroupId,
    counts: &LockCounts,
    (start, end): (&[u8], &[u8]),
    read_ts: u64,
    reader: &[u8],
    preparing: &dyn Fn(&[u8]) -> bool,
) -> Result<InTheWay> {
    let mut holders: HashMap<Vec<u8>, InTheWay> = HashMap::new();
    // Whether the lock `record` is in the reader's way.
    let mut blocks = |record: &[u8]| -> Result<InTheWay> {
        let lock = decode_lock(record)?;
        if lock.txn_id == reader || !in_the_way(lock.start_ts, read_ts) {
            return Ok(InTheWay::No);
        }
        let holder = match holders.get(&lock.txn_id) {
            Some(&holder) => holder,
            None => {
                let holder = holder_in_the_way(storage, group, &lock.txn_id, read_ts)?;
                holders.insert(lock.txn_id.clone(), holder);
                holder
            }
        };
        Ok(match holder {
            InTheWay::No if preparing(&lock.txn_id) => InTheWay::Yes,
            holder => holder,
        })
    };
    // One row's range (a point read, an existence check) can only meet
    // that row's lock: none if its slot counts none, else one get, which
    // the `meta` family's bloom filters answer for an unlocked row
    // without a search, where an iterator is built over every level and
    // seeks in each.
    if end == versions_end(start) {
        if !counts.may_hold(start) {
            return Ok(InTheWay::No);
        }
        return match storage.get_meta(&record_key(group, LOCK, start))? {
            Some(record) => blocks(&record),
            None => Ok(InTheWay::No),
        };
    }
    let (from, end) = (record_key(group, LOCK, start), record_key(group, LOCK, end));
    let holder = each_lock_record(storage, from, &end, |_, record| {
        Ok(match blocks(record)? {
            InTheWay::No => ControlFlow::Continue(()),
            holder => ControlFlow::Break(holder),
        })
    })?;
    Ok(holder.unwrap_or(InTheWay::No))
}

/// Calls `each` with the key and value of every lock record in `[from,
/// end)`, a page at a time, until it breaks: what it broke with. Blocks
/// on disk.
fn each_lock_record<B>(
    storage: &Storage,
    mut from: Vec<u8>,
    end: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<B>>,
) -> Result<Option<B>> {
    loop {
        let page = storage.scan_meta_page(&from, end, LOCK_PAGE)?;
        for (key, record) in &page {
            if let ControlFlow::Break(found) = each(key, record)? {
                return Ok(Some(found));
            }
        }
        match page.last() {
            Some((key, _)) if page.len() == LOCK_PAGE => from = [key.as_slice(), &[0]].concat(),
            _ => return Ok(None),
        }
    }
}

/// Calls `each` with the user key of every lock record of `group`, a
/// page at a time. Blocks on disk.
pub(super) fn each_locked_key(
    storage: &Storage,
    group: GroupId,
    each: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let start = record_key(group, LOCK, &[]);
    let end = prefix_end(&start).unwrap_or_default();
    each_lock_record(storage, start.clone(), &end, |key, _| {
        each(&key[start.len()..]);
        Ok(ControlFlow::<()>::Continue(()))
    })?;
    Ok(())
}

/// Whether a lock of transaction `txn_id` on a key in `group` stops a
/// reader at `read_ts` (a lock a reader at or below the holder's
/// snapshot would pass is not asked about): see [`lock_in_the_way`]
/// (`No` for writes sent ahead, unless preparing). Blocks on disk.
fn holder_in_the_way(
    storage: &Storage,
    group: GroupId,
    txn_id: &[u8],
    read_ts: u64,
) -> Result<InTheWay> {
    if let Some(record) = storage.get_meta(&record_key(group, SETTLED, txn_id))? {
        if let Ended::CommittedAt(commit_ts) = decode_settled(&record)? {
            return Ok(match commit_ts > read_ts {
                true => InTheWay::No,
                false => InTheWay::Resolving,
            });
        }
    }
    let intent = storage.get_meta(&record_key(group, INTENT, txn_id))?;
    let staged = match intent {
        Some(record) => decode_intent(&record)?.staged,
        None => false,
    };
    Ok(match staged {
        true => InTheWay::No,
        false => InTheWay::Yes,
    })
}

/// What statement `statement` of transaction `txn_id` reads of its own
/// write sent ahead to `group` on `user_key`, if any (`Some(None)`: it
/// deletes the row): one read by exact key. Statement 0 reads the latest
/// write (a duplicate-key check, which is not a statement's read). Blocks
/// on disk.
pub fn staged_write(
    storage: &Storage,
    group: GroupId,
    (txn_id, statement): (&[u8], u32),
    user_key: &[u8],
) -> Result<Option<Option<Vec<u8>>>> {
    let Some(record) = storage.get_meta(&write_key(group, txn_id, user_key))? else {
        return Ok(None);
    };
    let write = decode_write(&record)?;
    Ok(match statement {
        0 => Some(write.value),
        _ => read_by(write, statement).map(|w| w.value),
    })
}

/// What statement `statement` of transaction `txn_id` reads of its own
/// writes sent ahead to `group` on user keys from `from` (on) to `end`, in
/// key order: a page of them (at most `limit` records read; a record
/// with nothing to read is skipped), and where the next page starts
/// (`None`: at the end). A write is `None` if it deletes the row. Blocks
/// on disk.
pub fn staged_writes(
    storage: &Storage,
    group: GroupId,
    (txn_id, statement): (&[u8], u32),
    (from, end): (&[u8], &[u8]),
    limit: usize,
) -> Result<(Vec<OwnWrite>, Option<Vec<u8>>)> {
    let start = write_key(group, txn_id, from);
    let prefix_len = start.len() - from.len();
    let page = storage.scan_meta_page(&start, &write_key(group, txn_id, end), limit)?;
    let next = match page.last() {
        Some((key, _)) if page.len() == limit => Some([&key[prefix_len..], &[0]].concat()),
        _ => None,
    };
    let mut writes = Vec::with_capacity(page.len());
    for (key, record) in page {
        if let Some(write) = read_by(decode_write(&record)?, statement) {
            writes.push((key[prefix_len..].to_vec(), write.value));
        }
    }
    Ok((writes, next))
}

/// What statement `statement` reads of `write`, its transaction's write on
/// a key: the write as the statements before it left it (none if only
/// this statement or later ones wrote the key).
fn read_by(mut write: IntentWrite, statement: u32) -> Option<IntentWrite> {
    while write.statement >= statement {
        write = *write.earlier.take()?;
    }
    Some(write)
}

/// The transactions prepared in `group` on this node (whether or not it
/// leads the group), by id. Blocks on disk.
pub fn intents(storage: &Storage, group: GroupId) -> Result<Vec<(Vec<u8>, Intent)>> {
    let prefix = record_key(group, INTENT, &[]);
    storage
        .scan_meta(&prefix)?
        .into_iter()
        .map(|(key, record)| Ok((key[prefix.len()..].to_vec(), decode_intent(&record)?)))
        .collect()
}

/// How long a `Settled` record is kept behind the GC safe point: far
/// longer than any retry of a commit or a prepare arriving late. (The
/// primary group's status of a transaction is needed while another group
/// still holds its intent; an intent holds its node's GC floor back, see
/// `TxnCoordinator::snapshot_floor`, so the safe point stays below it.)
pub(super) const SETTLED_KEPT_US: u64 = 60_000_000;

/// The command forgetting `group`'s `Settled` records at least
/// [`SETTLED_KEPT_US`] older than `safe_point`, the GC safe point, by
/// their commit timestamp or, for an abort, the transaction's snapshot
/// (`None` if there are none here): a record matters only to a retry or
/// to recovery, which come long before. Blocks on disk.
pub fn forget_command(
    storage: &Storage,
    group: GroupId,
    safe_point: u64,
) -> Result<Option<Vec<u8>>> {
    let before = safe_point.saturating_sub(SETTLED_KEPT_US);
    let settled = settled_records(storage, group)?;
    let any = settled.iter().any(|(_, ts)| *ts < before);
    Ok(any.then(|| command(Command::Forget(ForgetCommand { before }))))
}

/// `group`'s `Settled` records here: their keys and timestamps (a
/// commit's, or an aborted transaction's snapshot). Blocks on disk.
pub(super) fn settled_records(storage: &Storage, group: GroupId) -> Result<Vec<(Vec<u8>, u64)>> {
    let records = storage.scan_meta(&record_key(group, SETTLED, &[]))?;
    records
        .into_iter()
        .map(|(key, value)| {
            let (Ended::CommittedAt(ts) | Ended::AbortedFrom(ts)) = decode_settled(&value)?;
            Ok((key, ts))
        })
        .collect()
}
