//! Async commit: a transaction that wrote several replicated shard groups
//! commits with one round of consensus in those groups, in parallel, and
//! no write in the meta group (TiKV's async commit; CockroachDB's parallel
//! commits rest on the same rule).
//!
//! The rule: a transaction is committed once every group it wrote has
//! prepared it, at the highest of the minimum commit timestamps the groups
//! recorded. Its status is held by its primary group (the first it
//! wrote), not by the meta group.
//!
//! 1. The coordinator ([`TxnCoordinator::commit_async`]) sends each
//!    group's leader its writes, the primary and the list of every group.
//! 2. Each leader holds the keys in memory, takes a timestamp from the
//!    oracle (its minimum commit timestamp: above every snapshot handed out
//!    before, and a snapshot handed out later reads after the keys were
//!    held, so it waits), and proposes `Prepare`: checked as a commit is
//!    (first committer wins), stored as an intent locking its keys, with
//!    that timestamp, the primary and the groups.
//! 3. Every group prepared: the transaction is committed at the highest of
//!    the timestamps, and the client is answered. Every timestamp handed
//!    out later is above it; a snapshot there waits for the intents until
//!    they are resolved.
//! 4. In the background: `Commit` in the primary group, then in the
//!    others. Each records the commit under the transaction id (`Settled`).
//!
//! A refusal (a conflict) in any group aborts the transaction: `Abort` in
//! every group, which records the abort, so a prepare still on its way is
//! refused when it applies.
//!
//! Recovery ([`TxnCoordinator::settle`]): the leader of a group holding an
//! intent for [`RECOVER_AFTER`] whose coordinator is not at work on it
//! probes the groups, the primary first (`Probe`: where the transaction
//! stands there; a group where it never prepared records it aborted, so it
//! never will):
//! - committed or aborted in the primary: that is the outcome;
//! - prepared there: probe the others. One aborted, or never prepared (now
//!   recorded aborted): the transaction aborts. All prepared (or
//!   committed): it commits at the highest of their minimum commit
//!   timestamps, which is the timestamp its coordinator answered, since
//!   each group answers the one it recorded.
//!
//! Then it resolves the primary and the others, as the coordinator would.
//! Probing and resolving twice, from two nodes at once, or while the
//! coordinator still works, ends the same way: the Raft log of each group
//! orders a probe and a late prepare, and a resolved group keeps how the
//! transaction ended. Those records go a minute behind the GC safe point,
//! and an intent holds its node's GC floor back, so they outlive every
//! intent of their transaction.
//!
//! [`RECOVER_AFTER`]: super::distributed::RECOVER_AFTER

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::distributed::{AtWork, ParticipantRpc, PrepareKind};
use super::one_phase::COMMIT_RETRY;
use super::TxnCoordinator;
use crate::error::{Error, Result};
use crate::shard::proto::txn_status::State;
use crate::shard::proto::{ProbeRequest, TxnStatus, WriteBatch};

/// A transaction committed by its prepares, as its coordinator and
/// recovery know it.
pub(super) struct Voted {
    pub txn_id: Vec<u8>,
    /// Its snapshot, which ages the record of an abort.
    pub start_ts: u64,
    /// The group that holds its status.
    pub primary: u32,
    /// Every group it wrote, the primary among them.
    pub participants: Vec<u32>,
}

/// Whether the test failpoint `point` is set (`SHARDFORGE_FAILPOINT`):
/// `tests/e2e` kills a coordinator at a chosen step of a commit with it.
fn failpoint(point: &str) -> bool {
    std::env::var("SHARDFORGE_FAILPOINT").is_ok_and(|set| set == point)
}

/// Ends the process at a failpoint, as a SIGKILL would: nothing more is
/// sent, and nothing is flushed that a kill would not flush.
fn exit_at_failpoint() -> ! {
    eprintln!("failpoint reached: exiting");
    std::process::abort()
}

impl Voted {
    fn secondaries(&self) -> Vec<u32> {
        let primary = self.primary;
        self.participants
            .iter()
            .copied()
            .filter(|&g| g != primary)
            .collect()
    }
}

impl TxnCoordinator {
    /// Commits `batches` (one per replicated shard group, several; no
    /// schema change) in one round of prepares (see the module docs): the
    /// commit timestamp. The intents are resolved in the background.
    pub(super) async fn commit_async(
        self: &Arc<Self>,
        batches: Vec<WriteBatch>,
        txn_id: Option<Vec<u8>>,
    ) -> Result<u64> {
        let participants: Vec<u32> = batches.iter().map(|b| b.shard_id).collect();
        let voted = Voted {
            txn_id: txn_id.unwrap_or_else(|| self.new_txn_id()),
            start_ts: batches.first().map_or(0, |b| b.start_ts),
            primary: *participants
                .first()
                .ok_or_else(|| Error::Internal("a commit of no writes".into()))?,
            participants,
        };
        let at_work = AtWork::on(self, &voted.txn_id);
        let vote = || PrepareKind::Vote(voted.primary, voted.participants.clone());
        if failpoint("exit-mid-prepare") {
            let primary_only = batches[..1].to_vec();
            let prepared = self.prepare_everywhere(&voted.txn_id, primary_only, vote());
            let _ = prepared.await;
            exit_at_failpoint();
        }
        let prepared = self.prepare_everywhere(&voted.txn_id, batches, vote());
        let outcome = match prepared.await {
            Ok(commit_ts) => Ok(commit_ts),
            // A refusal when a prepare applied.
            Err(e @ (Error::Retry(_) | Error::Input(..))) => Err(e),
            // A group may or may not have prepared: probing them settles
            // it either way, once they have leaders.
            Err(e) => return self.settle_for(&voted, e).await,
        };
        if outcome.is_ok() && failpoint("exit-after-prepare") {
            exit_at_failpoint();
        }
        drop(at_work);
        let coordinator = self.clone();
        let decided = outcome.as_ref().ok().copied();
        tokio::spawn(async move {
            if let Err(e) = coordinator.finish(&voted, decided).await {
                tracing::warn!(error = %e, "a finished transaction's intents wait for recovery");
            }
        });
        outcome
    }

    /// [`Self::settle`] after the prepares failed with `failed`, tried
    /// again for up to [`COMMIT_RETRY`] (a group may be electing a new
    /// leader): the commit timestamp, or why not.
    async fn settle_for(&self, voted: &Voted, failed: Error) -> Result<u64> {
        let deadline = Instant::now() + COMMIT_RETRY;
        loop {
            match self.settle(voted).await {
                Ok(Some(commit_ts)) => return Ok(commit_ts),
                Ok(None) => {
                    return Err(Error::Retry(format!(
                        "the transaction was aborted: a shard group did not prepare it ({failed})"
                    )))
                }
                Err(unsettled) if Instant::now() >= deadline => {
                    return Err(Error::OutcomeUnknown(format!(
                        "the outcome of the commit is unknown: a shard group did not answer \
                         its prepare ({failed}) nor, within {} s, where it stands \
                         ({unsettled}); recovery will finish or undo it",
                        COMMIT_RETRY.as_secs()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Where `voted` stands, from probing its groups (the primary first),
    /// resolved everywhere: committed at `Some(commit_ts)`, or aborted.
    pub(super) async fn settle(&self, voted: &Voted) -> Result<Option<u64>> {
        let outcome = self.outcome_by_probes(voted).await?;
        self.finish(voted, outcome).await?;
        Ok(outcome)
    }

    async fn outcome_by_probes(&self, voted: &Voted) -> Result<Option<u64>> {
        let mut commit_ts = 0;
        for groups in [vec![voted.primary], voted.secondaries()] {
            for status in self.probe_everywhere(voted, &groups).await? {
                match status.state {
                    Some(State::Prepared(min_commit_ts)) => {
                        commit_ts = commit_ts.max(min_commit_ts)
                    }
                    // Decided by an earlier resolution.
                    Some(State::Committed(commit_ts)) => return Ok(Some(commit_ts)),
                    Some(State::Aborted(_)) => return Ok(None),
                    None => {
                        return Err(Error::Internal(format!(
                            "shard group {} answered no status",
                            status.shard_id
                        )))
                    }
                }
            }
        }
        Ok(Some(commit_ts))
    }

    /// Commits (`Some(commit_ts)`) or aborts `voted` in its primary group,
    /// then in the others.
    async fn finish(&self, voted: &Voted, outcome: Option<u64>) -> Result<()> {
        for groups in [vec![voted.primary], voted.secondaries()] {
            (self.resolve_everywhere(&voted.txn_id, outcome, voted.start_ts, &groups)).await?;
        }
        Ok(())
    }

    /// Where `voted` stands in each of `groups`, asked of their leaders
    /// (following a leader that moved).
    async fn probe_everywhere(&self, voted: &Voted, groups: &[u32]) -> Result<Vec<TxnStatus>> {
        let statuses = Mutex::new(Vec::new());
        let probe = |node: u32, groups: Vec<u32>| {
            let statuses = &statuses;
            async move {
                let found = self.probe_on(node, voted, groups).await?;
                statuses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(found);
                Ok(())
            }
        };
        self.on_homes(groups.to_vec(), |&g| g, probe).await?;
        Ok(statuses.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    async fn probe_on(&self, node: u32, voted: &Voted, groups: Vec<u32>) -> Result<Vec<TxnStatus>> {
        if node == self.node {
            return self
                .participant
                .probe_here(&voted.txn_id, voted.start_ts, &groups)
                .await;
        }
        let request = ProbeRequest {
            txn_id: voted.txn_id.clone(),
            shard_ids: groups,
            start_ts: voted.start_ts,
        };
        let probe = |mut c: ParticipantRpc, r| async move { c.probe(r).await };
        let answer = self.ask_participant(node, &request, probe).await?;
        Ok(answer.statuses)
    }

    /// Forgets the `Settled` records of the groups this node leads that
    /// are far enough behind the GC safe point `safe_point`: one Raft write
    /// in each group that has any (`shard::machine::forget_command`).
    pub async fn forget_settled(&self, safe_point: u64) -> Result<()> {
        let groups = &self.groups;
        for group in groups.led_here() {
            let storage = self.storage.clone();
            let command = tokio::task::spawn_blocking(move || {
                crate::shard::machine::forget_command(&storage, group, safe_point)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            if let Some(command) = command {
                crate::shard::machine::outcome(&groups.propose(group, command).await?)?;
            }
        }
        Ok(())
    }
}
