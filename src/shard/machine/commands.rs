//! The commands a shard group's state machine applies, as proposers
//! make them, and its answers, as they read them (`ShardCommand` and
//! `ShardApplied` of `proto/shard.proto`).

use prost::Message;

use crate::error::{Error, InputError, Result};
use crate::shard::proto::shard_applied::Outcome;
use crate::shard::proto::shard_command::Command;
use crate::shard::proto::{
    AbortCommand, CommitCommand, OnePhaseCommand, PrepareCommand, ProbeCommand, ShardApplied,
    ShardCommand, TxnStatus, WriteBatch,
};

/// The command preparing `batch`: `prepare` with the batch set.
pub fn prepare_command(mut prepare: PrepareCommand, batch: WriteBatch) -> Vec<u8> {
    prepare.batch = Some(batch);
    command(Command::Prepare(prepare))
}

/// The command asking where `txn_id` (which read at `start_ts`) stands.
pub fn probe_command(txn_id: &[u8], start_ts: u64) -> Vec<u8> {
    command(Command::Probe(ProbeCommand {
        txn_id: txn_id.to_vec(),
        start_ts,
    }))
}

/// The one-phase commit of `batch` at `commit_ts`, by `txn_id`.
pub fn one_phase_command(txn_id: &[u8], batch: WriteBatch, commit_ts: u64) -> Vec<u8> {
    command(Command::OnePhase(OnePhaseCommand {
        batch: Some(batch),
        commit_ts,
        txn_id: txn_id.to_vec(),
    }))
}

/// The command committing `txn_id` at `Some(commit_ts)`, or aborting it
/// (recording the abort, aged by `start_ts`, if nonzero).
pub fn resolve_command(txn_id: &[u8], outcome: Option<u64>, start_ts: u64) -> Vec<u8> {
    let txn_id = txn_id.to_vec();
    command(match outcome {
        Some(commit_ts) => Command::Commit(CommitCommand { txn_id, commit_ts }),
        None => Command::Abort(AbortCommand { txn_id, start_ts }),
    })
}

pub(super) fn command(command: Command) -> Vec<u8> {
    ShardCommand {
        command: Some(command),
    }
    .encode_to_vec()
}

/// What a shard group answered a command: a one-phase commit's
/// timestamp, a prepare's minimum commit timestamp (0 for other
/// commands); a conflict is a retryable error (40001), a key that must be
/// free and is not (or may be about to be taken) a unique violation
/// (23505), a refusal an internal error.
pub fn outcome(answer: &[u8]) -> Result<u64> {
    match answered(answer)? {
        Outcome::Done(done) => Ok(done.commit_ts),
        Outcome::Conflict(message) => Err(Error::Retry(message)),
        Outcome::Rejected(message) => Err(Error::Internal(message)),
        Outcome::Taken(message) => Err(Error::input(InputError::UniqueViolation, message)),
        Outcome::Status(_) => Err(Error::Internal("a shard group answered a status".into())),
    }
}

/// What a shard group answered a `Probe`.
pub fn status(answer: &[u8]) -> Result<TxnStatus> {
    match answered(answer)? {
        Outcome::Status(status) => Ok(status),
        other => Err(Error::Internal(format!(
            "a shard group answered a probe with {other:?}"
        ))),
    }
}

fn answered(answer: &[u8]) -> Result<Outcome> {
    ShardApplied::decode(answer)
        .map_err(|e| Error::Internal(format!("a shard group's answer: {e}")))?
        .outcome
        .ok_or_else(|| Error::Internal("a shard group answered nothing".into()))
}
