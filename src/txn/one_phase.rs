//! One-phase commit: a transaction that wrote one replicated shard group
//! (most OLTP writes: a row, or rows of one key range) commits with one
//! Raft write in that group, and no write in the meta group.
//!
//! On the group's leader ([`Participant::commit_one_phase_here`](super::Participant::commit_one_phase_here)):
//! 1. hold the keys in memory (`shard::locks`): from now on a reader there
//!    whose snapshot could see the write waits for it;
//! 2. take a commit timestamp from the oracle (gathered with the node's
//!    other requests): it is above every snapshot handed out before, and
//!    any snapshot handed out later reads after step 1, so it waits;
//! 3. propose `OnePhase` (the writes, the timestamp, the transaction id):
//!    applying it checks the writes as a prepare would (a newer committed
//!    version or a prepared intent on a key: 40001) and writes the row
//!    versions, with a record of the commit under the transaction id;
//! 4. release the keys.
//!
//! An INSERT that is a transaction of its own reads nothing: it commits
//! this way without a snapshot ([`TxnCoordinator::insert_alone`]), its
//! keys checked free when the entry applies rather than by a read first.
//!
//! The coordinator ([`TxnCoordinator::commit_one_phase`]) sends the writes
//! to the group's leader, and after any failure other than a refusal (a
//! conflict) sends them again, to the leader of the moment, for up to
//! [`COMMIT_RETRY`]: the record makes a retry of a commit that was
//! applied answer that commit's timestamp, and a first attempt still
//! pending in the log is applied before any retry (a retry is proposed
//! after the first one, in the same term or a later one, whose leader
//! holds every entry that can still commit). So a transaction commits at
//! most once, and its outcome is known unless its group lost its majority
//! after the entry was appended: the entry then commits if and when the
//! majority is back, as in any Raft system, and the client gets 40003
//! (`Error::OutcomeUnknown`) instead of a guess. A group that has no
//! majority before the entry is appended refuses it at once ("a majority
//! must be up").

use std::time::{Duration, Instant};

use super::distributed::ParticipantRpc;
use super::TxnCoordinator;
use crate::catalog::{SchemaChange, TableId};
use crate::error::{Error, InputError, Result};
use crate::shard::proto::{CommitOnePhaseRequest, Mutation, WriteBatch};

/// How long a coordinator keeps trying a commit whose attempts fail (a
/// group has no leader, its leader died mid-call) before it reports the
/// outcome unknown: longer than a failover.
pub const COMMIT_RETRY: Duration = Duration::from_secs(5);

impl TxnCoordinator {
    /// Commits `batch`, the writes of a transaction to one replicated
    /// shard group, in one Raft write of that group: the commit timestamp.
    pub(super) async fn commit_one_phase(&self, batch: WriteBatch) -> Result<u64> {
        let txn_id = self.new_txn_id();
        self.one_phase_at_leader(&txn_id, batch).await
    }

    /// Commits `rows` (user key, encoded row), new rows of `table` that
    /// an INSERT made without reading anything, as a transaction of their
    /// own that takes no snapshot: each key is checked to hold no live row
    /// when the commit applies (`Mutation.absent`), instead of by a read
    /// before, so an autocommit INSERT costs its commit's Raft write and
    /// nothing else (TiDB's lazy uniqueness check does the same).
    ///
    /// `None`, and nothing written, when the INSERT must take the ordinary
    /// way: its rows go to several shard groups (a commit across groups
    /// prepares at a snapshot) or outgrow a transaction's write buffer
    /// (`cluster.txn_write_buffer_kib`), or a key holds a live row or another
    /// transaction's lock (the ordinary way waits for the lock, and names
    /// a taken key in its 23505 as PostgreSQL does).
    pub async fn insert_alone(
        &self,
        table: TableId,
        rows: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Option<u64>> {
        let group_of = |key: &[u8]| self.shards().for_key(key).range().id.0;
        let Some(group) = rows.first().map(|(key, _)| group_of(key)) else {
            return Ok(None);
        };
        let size: usize = rows.iter().map(|(key, row)| key.len() + row.len()).sum();
        // One Raft entry: no larger than a transaction's write buffer.
        if size > self.write_buffer || rows.iter().any(|(key, _)| group_of(key) != group) {
            return Ok(None);
        }
        // Dropped since the statement found it.
        self.catalog.validate(&SchemaChange::default(), &[table])?;
        let mutations = rows
            .into_iter()
            .map(|(key, row)| Mutation {
                key,
                value: Some(row),
                statement: 1,
                absent: true,
            })
            .collect();
        // No snapshot: readers of its keys wait for it whatever theirs.
        let batch = WriteBatch {
            shard_id: group,
            start_ts: 0,
            mutations,
        };
        match self.commit_one_phase(batch).await {
            Err(Error::Input(InputError::UniqueViolation, _)) => Ok(None),
            committed => committed.map(Some),
        }
    }

    async fn one_phase_at_leader(&self, txn_id: &[u8], batch: WriteBatch) -> Result<u64> {
        let group = batch.shard_id;
        let range = self
            .shards()
            .replicas()
            .get(group as usize)
            .ok_or_else(|| Error::Internal(format!("no shard group {group}")))?
            .range()
            .clone();
        let deadline = Instant::now() + COMMIT_RETRY;
        // An attempt that may have been appended to the group's log.
        let mut sent: Option<Error> = None;
        loop {
            let attempt = async {
                // No leader known: nothing is sent.
                let node =
                    (self.home(&range).await).map_err(|e| Error::NotLeader(e.to_string()))?;
                let answer = match node == self.node {
                    true => {
                        self.participant
                            .commit_one_phase_here(txn_id, batch.clone())
                            .await
                    }
                    false => self.one_phase_on(node, txn_id, &batch).await,
                };
                answer.inspect_err(|_| self.missed(node, &[group]))
            };
            let failed = match attempt.await {
                Ok(commit_ts) => return Ok(commit_ts),
                // A refusal when the entry applied: nothing was written,
                // by this attempt or (log order) an earlier one.
                Err(e @ (Error::Retry(_) | Error::Input(..))) => return Err(e),
                // Not appended: the node does not lead, or has no majority.
                Err(e @ Error::NotLeader(_)) => e,
                Err(e) => {
                    sent = Some(e.clone());
                    e
                }
            };
            if Instant::now() >= deadline {
                return Err(match sent {
                    None => failed,
                    Some(e) => Error::OutcomeUnknown(format!(
                        "the outcome of the commit is unknown: shard group {group} took the \
                         write and could not confirm it within {} s ({e}); if its majority \
                         was lost, it commits if and when the majority is back",
                        COMMIT_RETRY.as_secs()
                    )),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn one_phase_on(&self, node: u32, txn_id: &[u8], batch: &WriteBatch) -> Result<u64> {
        let request = CommitOnePhaseRequest {
            txn_id: txn_id.to_vec(),
            batch: Some(batch.clone()),
        };
        let commit = |mut c: ParticipantRpc, r| async move { c.commit_one_phase(r).await };
        let answer = self.ask_participant(node, &request, commit).await?;
        Ok(answer.commit_ts)
    }
}
