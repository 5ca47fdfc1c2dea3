//! The participant side of every commit: what this node does as the
//! leader of shard groups that coordinators (this node's or others')
//! write. It proposes the commands of a commit in the groups it leads
//! (`Prepare`, a one-phase commit, the resolution of a prepared
//! transaction, a probe of how one ended) and holds the keys of a commit
//! in flight for the readers there (`shard::locks`). The `Participant`
//! gRPC service (`txn::service`) calls it for other nodes; this node's
//! coordinator calls it in-process.

use std::sync::Arc;

use super::meta::Oracle;
use super::since_epoch;
use crate::error::{Error, Result};
use crate::raft::groups::{ShardGroups, QUORUM_WAIT};
use crate::shard::locks::WriteLocks;
use crate::shard::machine::{
    one_phase_command, outcome, prepare_command, probe_command, resolve_command, status,
};
use crate::shard::proto::{PrepareCommand, PrepareRequest, TxnStatus, WriteBatch};

/// The shard groups this node leads, as a participant in commits.
pub struct Participant {
    groups: Arc<ShardGroups>,
    locks: Arc<WriteLocks>,
    oracle: Arc<Oracle>,
}

impl Participant {
    /// The participant of this node's `groups`, holding keys in `locks`
    /// and taking commit timestamps from `oracle`.
    pub fn new(groups: Arc<ShardGroups>, locks: Arc<WriteLocks>, oracle: Arc<Oracle>) -> Self {
        Self {
            groups,
            locks,
            oracle,
        }
    }

    /// The participant side, phase one: proposes `Prepare` in each of the
    /// request's shard groups (whose leader this node must be): checked as
    /// a commit is (first committer wins), kept as an intent locking its
    /// keys. Preparing a transaction twice is a no-op. A transaction with
    /// a primary group (`async_commit`) takes each group's minimum commit
    /// timestamp while its keys are held: the highest is the answer (0 for
    /// others).
    pub async fn prepare(&self, request: PrepareRequest) -> Result<u64> {
        let PrepareRequest {
            txn_id,
            batches,
            primary,
            participants,
            staged,
        } = request;
        let groups = &self.groups;
        let prepare = PrepareCommand {
            txn_id: txn_id.clone(),
            // The proposer's clock: recovery waits a while after it.
            prepared_at_ms: since_epoch().as_millis() as u64,
            primary,
            participants,
            staged,
            ..Default::default()
        };
        let proposals = batches.into_iter().map(|batch| async {
            let answer = match prepare.primary {
                Some(_) => {
                    let command = |min_commit_ts, batch| {
                        let prepare = PrepareCommand {
                            min_commit_ts,
                            ..prepare.clone()
                        };
                        prepare_command(prepare, batch)
                    };
                    self.propose_held(&txn_id, batch, command).await?
                }
                None => {
                    let group = batch.shard_id;
                    groups
                        .propose(group, prepare_command(prepare.clone(), batch))
                        .await?
                }
            };
            outcome(&answer)
        });
        let mut min_commit_ts = 0;
        for answer in futures::future::join_all(proposals).await {
            min_commit_ts = min_commit_ts.max(answer?);
        }
        Ok(min_commit_ts)
    }

    /// The participant side, phase two: commits `txn_id` at
    /// `Some(commit_ts)` or aborts it (`None`, recording the abort aged by
    /// `start_ts` if nonzero) in the shard groups `groups` (whose leader
    /// this node must be). Resolving twice, or a transaction never
    /// prepared, is harmless.
    pub async fn resolve_prepared(
        &self,
        txn_id: &[u8],
        outcome: Option<u64>,
        start_ts: u64,
        groups: &[u32],
    ) -> Result<()> {
        let shard_groups = &self.groups;
        let command = resolve_command(txn_id, outcome, start_ts);
        let proposals = groups
            .iter()
            .map(|&g| shard_groups.propose(g, command.clone()));
        for answer in futures::future::join_all(proposals).await {
            crate::shard::machine::outcome(&answer?)?;
        }
        Ok(())
    }

    /// A one-phase commit on the leader of the batch's group, this node
    /// (see the module docs): the commit timestamp, or that of an earlier
    /// attempt that was applied.
    pub async fn commit_one_phase_here(&self, txn_id: &[u8], batch: WriteBatch) -> Result<u64> {
        let answer = self
            .propose_held(txn_id, batch, |commit_ts, batch| {
                one_phase_command(txn_id, batch, commit_ts)
            })
            .await?;
        outcome(&answer)
    }

    /// On the leader of `batch`'s group, this node: holds the batch's keys
    /// (`shard::locks`), takes a timestamp from the oracle, and proposes
    /// `command(timestamp, batch)`; the group's answer. The timestamp is
    /// above every snapshot handed out before, and a reader with a later
    /// one reads after the keys were held, so it waits for the entry.
    /// `NotLeader` if nothing was appended.
    pub async fn propose_held(
        &self,
        txn_id: &[u8],
        batch: WriteBatch,
        command: impl FnOnce(u64, WriteBatch) -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        let groups = &self.groups;
        let group = batch.shard_id;
        if groups.leading_term(group).is_none() {
            return Err(Error::NotLeader(format!(
                "this node does not lead shard group {group}"
            )));
        }
        groups
            .ensure_quorum(group)
            .map_err(|e| Error::NotLeader(e.to_string()))?;
        let keys = batch.mutations.iter().map(|m| m.key.clone()).collect();
        // A key another commit holds is waited for, not refused: the
        // conflict is settled when the entries apply, where the answer is
        // certain (an earlier attempt of this commit may be pending).
        let held = self
            .locks
            .hold_when_free(keys, txn_id, batch.start_ts, QUORUM_WAIT)
            .await?;
        // Nothing is appended yet: a failure here is not an unknown outcome.
        let ts = self.oracle.timestamp().await.map_err(|e| match e {
            Error::Retry(_) | Error::Input(..) => e,
            other => Error::NotLeader(other.to_string()),
        })?;
        // Once appended, the entry may commit at `ts` even if this call
        // gives up on it (it timed out, or the coordinator that asked for
        // it died and its RPC was dropped): the keys stay held until the
        // entry applied or cannot, or a reader with a later snapshot could
        // read past it and miss a commit below its snapshot.
        groups
            .propose_keeping(group, command(ts, batch), QUORUM_WAIT, held)
            .await
    }

    /// Where `txn_id` (which read at `start_ts`) stands in each of
    /// `groups`, which this node leads: one Raft write each (a group where
    /// it never prepared records it aborted).
    pub async fn probe_here(
        &self,
        txn_id: &[u8],
        start_ts: u64,
        groups: &[u32],
    ) -> Result<Vec<TxnStatus>> {
        let shard_groups = &self.groups;
        let probes = groups
            .iter()
            .map(|&group| shard_groups.propose(group, probe_command(txn_id, start_ts)));
        futures::future::join_all(probes)
            .await
            .into_iter()
            .map(|answer| status(&answer?))
            .collect()
    }
}
