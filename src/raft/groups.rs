//! The shard groups (and the meta group) a node holds replicas of, each a
//! running Raft, and what the rest of the node asks of them: propose a command where this
//! node leads, confirm leadership for a read (under the leader's lease, or
//! ReadIndex), tell who leads.
//!
//! Every group's first replica initialises it (with all its replicas as
//! voters) the first time the node starts; the others wait to hear from
//! it. A replica placed on a node later (a decommission moved it there)
//! starts empty and waits for the group's leader to add it. The timing
//! below is for tens of groups per node sharing a few cores: a heartbeat
//! every 50 ms, an election after 250–400 ms without one, so a dead
//! leader is replaced within about a second (`benches/failover.sh`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::Instant;
use openraft::{BasicNode, ReadPolicy, ServerState};

use super::log_store::GroupLog;
use super::state_machine::GroupMachine;
use super::transport::{GroupNetworks, GroupRaft, RaftService};
use super::{Command, GroupId, StateMachine, META_GROUP};
use crate::error::{Error, Result};
use crate::rpc::ChannelPool;
use crate::storage::Storage;

/// Makes the state machine of a group this node opens a replica of (the
/// node's wiring knows which group is what).
pub type Machines = Box<dyn Fn(GroupId) -> Result<Arc<dyn StateMachine>> + Send + Sync>;

/// How long a read or a search for a leader may wait for its group's
/// quorum before it fails: long enough for a new leader to be elected,
/// short enough to answer within a call's `rpc::RPC_TIMEOUT`.
pub const QUORUM_WAIT: Duration = Duration::from_millis(2500);

/// How long a proposal may take to commit and apply (a large transaction's
/// batch takes a while). A leader that has not heard from a quorum for an
/// election timeout fails at once instead.
const PROPOSE_WAIT: Duration = Duration::from_secs(30);

/// The longest election timeout, in ms (see [`raft_config`]).
const ELECTION_TIMEOUT_MAX_MS: u64 = 400;

fn raft_config(snapshot_entries: u64) -> Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_entries),
        max_in_snapshot_log_to_keep: snapshot_entries / 5,
        cluster_name: "shardforge".into(),
        // A failover takes about two election timeouts (a follower that
        // heard from the dead leader refuses to vote until the leader's
        // lease, the longest timeout, ran out, so the first candidate is
        // refused) plus finding the new leaders: about 0.8 s with these
        // (`benches/failover.sh`). Much shorter ones elect for nothing
        // when a busy machine delays heartbeats.
        heartbeat_interval: 50,
        // No heartbeat to a follower that acknowledged an append sent in
        // the last 50 ms: under writes the appends prove the same (they
        // reset its election timer and renew the leader's lease), so
        // heartbeats go only to idle followers. openraft requires
        // interval + this + a tick (about 110 ms) below the shortest
        // election timeout.
        heartbeat_min_interval: Some(50),
        election_timeout_min: 250,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        // The log behind a snapshot goes once a fifth of the interval has
        // piled up (each purge is one RocksDB range delete).
        purge_batch_size: (snapshot_entries / 5).clamp(1, 256),
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| Error::Internal(format!("raft config: {e}")))
}

/// One replica's view of its group, for `shardforge status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub group: GroupId,
    pub leader: Option<u32>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// The last index cut from the log behind a snapshot (0: none).
    pub purged_index: u64,
}

/// The Raft groups of this node.
pub struct ShardGroups {
    node: u32,
    config: Arc<openraft::Config>,
    storage: Arc<Storage>,
    machines: Machines,
    service: Arc<RaftService>,
    cluster_id: String,
    channels: Arc<ChannelPool>,
    /// Changes when the meta group gives this node a new replica (see
    /// [`Self::open`]).
    groups: RwLock<HashMap<GroupId, GroupRaft>>,
    /// Each group's first replica, which should lead it (see
    /// [`Self::balance_leaders`]).
    preferred: RwLock<HashMap<GroupId, u64>>,
    /// Where each group this node holds no replica of was last led, as far
    /// as this node knows (see [`Self::leader`]).
    guesses: Mutex<HashMap<GroupId, u32>>,
    /// The term in which this node handed each group's leadership over:
    /// its lease is not trusted from the metrics in that term (see
    /// [`Self::leased_here`]).
    handed_over: Mutex<HashMap<GroupId, u64>>,
}

impl ShardGroups {
    /// Starts a Raft for every group of `groups` (each with its replicas)
    /// that this node (`node`) holds a replica of, applying to the state
    /// machines `machines` makes, served by `service`, talking to the
    /// members at `addrs` (node id → rpc address) over `channels`; each
    /// snapshots every `snapshot_entries` log entries.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        node: u32,
        snapshot_entries: u64,
        storage: Arc<Storage>,
        groups: Vec<(GroupId, Vec<u32>)>,
        machines: Machines,
        addrs: &HashMap<u32, String>,
        service: Arc<RaftService>,
        cluster_id: &str,
        channels: Arc<ChannelPool>,
    ) -> Result<Self> {
        let this = Self {
            node,
            config: raft_config(snapshot_entries)?,
            storage,
            machines,
            service,
            cluster_id: cluster_id.to_string(),
            channels,
            groups: RwLock::new(HashMap::new()),
            preferred: RwLock::new(HashMap::new()),
            guesses: Mutex::new(HashMap::new()),
            handed_over: Mutex::new(HashMap::new()),
        };
        for (group, replicas) in groups {
            if replicas.contains(&node) {
                this.open(group, &replicas, Some(addrs)).await?;
            }
        }
        Ok(this)
    }

    /// Starts this node's replica of `group`, whose replicas are
    /// `replicas`, if it does not run yet. With `addrs` (at start), the
    /// first replica initialises a group that was never initialised, with
    /// all of `replicas` as voters; without, the replica waits for its
    /// group's leader to add it (see [`Self::change_replicas`]): it gets a
    /// snapshot, then the log.
    pub async fn open(
        &self,
        group: GroupId,
        replicas: &[u32],
        addrs: Option<&HashMap<u32, String>>,
    ) -> Result<()> {
        if self.holds(group) {
            return Ok(());
        }
        let machine = GroupMachine::new(self.storage.clone(), group, (self.machines)(group)?);
        let raft = GroupRaft::new(
            u64::from(self.node),
            self.config.clone(),
            GroupNetworks::new(group, self.cluster_id.clone(), self.channels.clone()),
            GroupLog::new(self.storage.clone(), group),
            machine,
        )
        .await
        .map_err(|e| Error::Internal(format!("{}: {e}", name(group))))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", name(group))))?;
        if let Some(addrs) = addrs.filter(|_| !initialized && replicas.first() == Some(&self.node))
        {
            raft.initialize(nodes(replicas, addrs)?)
                .await
                .map_err(|e| Error::Internal(format!("{}: {e}", name(group))))?;
        }
        self.service.add(group, raft.clone(), self.storage.clone());
        write(&self.groups).insert(group, raft);
        if let Some(&first) = replicas.first() {
            self.prefer(group, first);
        }
        Ok(())
    }

    /// Makes `replicas` the voters of `group`, if this node leads it and
    /// they differ: each new one is added as a learner and caught up first
    /// (a snapshot, then the log), then the voters are replaced in one
    /// membership change (joint consensus). Answers whether it changed
    /// anything.
    pub async fn change_replicas(
        &self,
        group: GroupId,
        replicas: &[u32],
        addrs: &HashMap<u32, String>,
    ) -> Result<bool> {
        let raft = self.raft(group)?;
        let m = raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        let wanted: BTreeSet<u64> = replicas.iter().map(|&r| u64::from(r)).collect();
        if m.state != ServerState::Leader || voters == wanted || wanted.is_empty() {
            return Ok(false);
        }
        let failed = |e: &dyn std::fmt::Display| {
            Error::Unavailable(format!("{}: changing its replicas: {e}", name(group)))
        };
        for (id, node) in nodes(replicas, addrs)? {
            if !voters.contains(&id) {
                tracing::info!(group = %name(group), node = id, "adding a replica");
                raft.add_learner(id, node, true)
                    .await
                    .map_err(|e| failed(&e))?;
            }
        }
        raft.change_membership(wanted, false)
            .await
            .map_err(|e| failed(&e))?;
        tracing::info!(group = %name(group), ?replicas, "replicas changed");
        Ok(true)
    }

    /// Makes `first`, the first of `group`'s replicas as placed now, the
    /// one that should lead it (see [`Self::balance_leaders`]).
    pub fn prefer(&self, group: GroupId, first: u32) {
        write(&self.preferred).insert(group, u64::from(first));
    }

    fn raft(&self, group: GroupId) -> Result<GroupRaft> {
        self.get(group).ok_or_else(|| {
            Error::NotLeader(format!(
                "this node holds no replica of {}; retry the transaction",
                name(group)
            ))
        })
    }

    fn get(&self, group: GroupId) -> Option<GroupRaft> {
        read(&self.groups).get(&group).cloned()
    }

    /// Every group's Raft here.
    fn all(&self) -> Vec<(GroupId, GroupRaft)> {
        read(&self.groups)
            .iter()
            .map(|(&group, raft)| (group, raft.clone()))
            .collect()
    }

    /// The node leading `group`: as its local replica knows (waiting up to
    /// [`QUORUM_WAIT`] for an election), or, for a group without a replica
    /// here, the last guess (see [`Self::leader_now`]).
    pub async fn leader(&self, group: GroupId, first: u32) -> Result<u32> {
        let Some(raft) = self.get(group) else {
            return Ok(self.leader_now(group, first));
        };
        let metrics = elected(&raft, QUORUM_WAIT)
            .await
            .ok_or_else(|| no_quorum(group))?;
        metrics
            .current_leader
            .map(|id| id as u32)
            .ok_or_else(|| no_quorum(group))
    }

    /// The node leading `group` as far as this node knows now, without
    /// waiting: its local replica's leader, or the last guess for a group
    /// without a replica here, starting with its first replica `first`.
    pub fn leader_now(&self, group: GroupId, first: u32) -> u32 {
        let known = self
            .get(group)
            .and_then(|raft| raft.metrics().borrow_watched().current_leader);
        match known {
            Some(id) => id as u32,
            None => {
                let guesses = self.guesses.lock().unwrap_or_else(|e| e.into_inner());
                guesses.get(&group).copied().unwrap_or(first)
            }
        }
    }

    /// Waits up to `within` until every group here knows its leader (at
    /// start, for the first elections); false if some still does not.
    pub async fn wait_for_leaders(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        for (_, raft) in self.all() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if elected(&raft, left).await.is_none() {
                return false;
            }
        }
        true
    }

    /// After `node` failed to serve `group` (which this node holds no
    /// replica of): try the next of `replicas` next time.
    pub fn missed(&self, group: GroupId, node: u32, replicas: &[u32]) {
        if self.holds(group) || replicas.is_empty() {
            return;
        }
        let at = replicas
            .iter()
            .position(|&r| r == node)
            .map_or(0, |i| i + 1);
        let mut guesses = self.guesses.lock().unwrap_or_else(|e| e.into_inner());
        guesses.insert(group, replicas[at % replicas.len()]);
    }

    /// Replicates `command` (in its state machine's encoding) in `group`,
    /// which this node must lead, and answers the state machine's answer
    /// once it is applied here.
    pub async fn propose(&self, group: GroupId, command: Vec<u8>) -> Result<Vec<u8>> {
        self.propose_within(group, command, PROPOSE_WAIT).await
    }

    /// Fails at once unless this node's replica of `group` heard from a
    /// quorum within an election timeout (the group's majority is up, as
    /// far as it knows).
    pub fn ensure_quorum(&self, group: GroupId) -> Result<()> {
        let raft = self.raft(group)?;
        let watched = raft.metrics();
        let metrics = watched.borrow_watched();
        // A lone voter is its own majority (and hears no acknowledgement).
        if metrics.membership_config.membership().voter_ids().count() <= 1 {
            return Ok(());
        }
        let stale = metrics
            .last_quorum_acked
            .is_some_and(|at| at.elapsed().as_millis() as u64 > ELECTION_TIMEOUT_MAX_MS);
        match stale {
            true => Err(no_quorum(group)),
            false => Ok(()),
        }
    }

    /// [`Self::propose_keeping`] with nothing to keep.
    pub async fn propose_within(
        &self,
        group: GroupId,
        command: Vec<u8>,
        wait: Duration,
    ) -> Result<Vec<u8>> {
        self.propose_keeping(group, command, wait, ()).await
    }

    /// [`Self::propose`], failing after `wait` (the command was then
    /// appended here, and may yet commit or not), keeping `until_settled`
    /// until the entry applied here or was cut from this replica's log (a new leader's
    /// replaced it: it never commits), however long that takes, even once
    /// the caller stopped waiting for the answer (it failed after `wait`,
    /// or its future was dropped): an entry appended can commit after its
    /// proposer gave up on it. A proposer whose entry readers must not
    /// read past while it may still apply (`shard::locks`) keeps its keys
    /// held with it.
    pub async fn propose_keeping<K: Send + 'static>(
        &self,
        group: GroupId,
        command: Vec<u8>,
        wait: Duration,
        until_settled: K,
    ) -> Result<Vec<u8>> {
        let raft = self.raft(group)?;
        self.ensure_quorum(group)?;
        let proposal = Box::pin(async move { raft.client_write(Command(command)).await });
        let proposal = Unabandoned {
            proposal: Some(proposal),
            keep: Some(until_settled),
        };
        let written = tokio::time::timeout(wait, proposal).await.map_err(|_| {
            Error::Unavailable(format!(
                "{} did not commit a write within {} ms",
                name(group),
                wait.as_millis()
            ))
        })?;
        match written {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(not_leader(group))
            }
            Err(e) => Err(Error::Unavailable(format!("{}: {e}", name(group)))),
        }
    }

    /// Makes sure this node still leads `group`, and waits until its
    /// replica applied everything committed before: a read of it then sees
    /// every write acknowledged before the read began. Under the leader's
    /// lease this costs nothing (see [`Self::lease_read`]); otherwise the
    /// leader confirms it with a quorum (ReadIndex).
    pub async fn linearize(&self, group: GroupId) -> Result<()> {
        match self.lease_read(group).await {
            Err(Error::Unavailable(_)) => self.read(group, ReadPolicy::ReadIndex).await,
            leased => leased,
        }
    }

    /// Makes sure this node leads `group` under its lease, and waits until
    /// its replica applied everything committed before (`Unavailable` if
    /// the lease ran out: see [`Self::linearize`]). The lease rules, as
    /// openraft keeps them: the lease lasts an election timeout
    /// ([`ELECTION_TIMEOUT_MAX_MS`]) from the last time a quorum
    /// acknowledged the leader; a replica that heard from a leader within
    /// that time votes for no other (unless the leader itself hands its
    /// leadership over, which ends its lease first). So while a leader's
    /// lease runs no other leader can have been elected, as long as the
    /// nodes' clocks advance at about the same rate (their readings need
    /// not agree).
    ///
    /// The common case is answered from the replica's metrics, without a
    /// round trip to its Raft task ([`Self::leased_here`]).
    async fn lease_read(&self, group: GroupId) -> Result<()> {
        if self.leased_here(group) {
            return Ok(());
        }
        self.read(group, ReadPolicy::LeaseRead).await
    }

    /// Whether this node's metrics show it leads `group` under a lease
    /// with half its length to spare (a lone voter needs none), and its
    /// replica applied an entry of the leader's own term, so everything
    /// earlier terms committed; and it has not handed the leadership over
    /// in this term (the replica it handed it to runs for election at once,
    /// lease or not). Reading the replica then is linearizable:
    /// every write acknowledged before was applied here (a write is
    /// answered after its entry applied; one committed but not yet applied
    /// holds its keys, which readers wait for: `shard::locks`). The
    /// metrics lag the Raft task, so the quorum acknowledgement they show
    /// is never newer than the real one. Otherwise openraft decides.
    fn leased_here(&self, group: GroupId) -> bool {
        let Ok(raft) = self.raft(group) else {
            return false;
        };
        let watched = raft.metrics();
        let m = watched.borrow_watched();
        let own_term_applied = m
            .last_applied
            .as_ref()
            .is_some_and(|applied| applied.leader_id.term == m.current_term);
        let alone = m.membership_config.membership().voter_ids().count() <= 1;
        let leased = m
            .last_quorum_acked
            .is_some_and(|at| at.elapsed() < Duration::from_millis(ELECTION_TIMEOUT_MAX_MS / 2));
        let handed_over = (self.handed_over.lock().unwrap_or_else(|e| e.into_inner()))
            .get(&group)
            .is_some_and(|&term| term == m.current_term);
        m.state == ServerState::Leader && own_term_applied && (alone || leased) && !handed_over
    }

    async fn read(&self, group: GroupId, policy: ReadPolicy) -> Result<()> {
        let raft = self.raft(group)?;
        let read = tokio::time::timeout(QUORUM_WAIT, raft.ensure_linearizable(policy))
            .await
            .map_err(|_| no_quorum(group))?;
        match read {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {
                Err(not_leader(group))
            }
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                Err(no_quorum(group))
            }
            Err(e) => Err(Error::Unavailable(format!("{}: {e}", name(group)))),
        }
    }

    /// Hands the leadership of each group this node leads back to the
    /// group's first replica once that replica has every entry: after a
    /// failover the leaders would otherwise pile up on the nodes that
    /// stayed up, and with them the cluster's writes.
    pub async fn balance_leaders(&self) {
        for (group, raft) in self.all() {
            let Some(&first) = read(&self.preferred).get(&group) else {
                continue;
            };
            let m = raft.metrics().borrow_watched().clone();
            let caught_up = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&first).cloned().flatten())
                .is_some_and(|matched| Some(matched.index) == m.last_log_index);
            if m.state == ServerState::Leader && m.id != first && caught_up {
                tracing::info!(group, to = first, "handing the leadership back");
                // The new leader may be elected before this node's metrics
                // show it no longer leads.
                (self.handed_over.lock().unwrap_or_else(|e| e.into_inner()))
                    .insert(group, m.current_term);
                let _ = raft.trigger().transfer_leader(first).await;
            }
        }
    }

    /// The groups this node leads now.
    pub fn led_here(&self) -> Vec<GroupId> {
        self.all()
            .into_iter()
            .filter(|(_, raft)| raft.metrics().borrow_watched().state == ServerState::Leader)
            .map(|(group, _)| group)
            .collect()
    }

    /// Whether this node holds a replica of `group`.
    pub fn holds(&self, group: GroupId) -> bool {
        read(&self.groups).contains_key(&group)
    }

    /// The index of the last entry `group`'s replica here applied.
    pub fn applied_index(&self, group: GroupId) -> u64 {
        self.get(group).map_or(0, |raft| {
            let watched = raft.metrics();
            let applied = watched.borrow_watched().last_applied;
            applied.map_or(0, |l| l.index)
        })
    }

    /// Waits up to [`QUORUM_WAIT`] until `group`'s replica here applied the
    /// entry at `index`.
    pub async fn wait_applied(&self, group: GroupId, index: u64) -> Result<()> {
        let raft = self.raft(group)?;
        raft.wait(Some(QUORUM_WAIT))
            .applied_index_at_least(Some(index), "a catalog change")
            .await
            .map(|_| ())
            .map_err(|_| {
                Error::Unavailable(format!(
                    "{} did not apply entry {index} within {} ms",
                    name(group),
                    QUORUM_WAIT.as_millis()
                ))
            })
    }

    /// The term of `group` if this node leads it now.
    pub fn leading_term(&self, group: GroupId) -> Option<u64> {
        let raft = self.get(group)?;
        let watched = raft.metrics();
        let m = watched.borrow_watched();
        (m.state == ServerState::Leader).then_some(m.current_term)
    }

    /// The state of every group replica this node holds (the meta group's
    /// too), by group.
    pub fn status(&self) -> Vec<GroupStatus> {
        let mut status: Vec<GroupStatus> = self
            .all()
            .into_iter()
            .map(|(group, raft)| {
                let m = raft.metrics().borrow_watched().clone();
                GroupStatus {
                    group,
                    leader: m.current_leader.map(|id| id as u32),
                    term: m.current_term,
                    last_log_index: m.last_log_index.unwrap_or_default(),
                    applied_index: m.last_applied.map_or(0, |l| l.index),
                    purged_index: m.purged.map_or(0, |l| l.index),
                }
            })
            .collect();
        status.sort_by_key(|s| s.group);
        status
    }

    /// Stops every group's Raft (their state is already on disk).
    pub async fn shutdown(&self) {
        for (_, raft) in self.all() {
            let _ = raft.shutdown().await;
        }
    }
}

/// `replicas` with their addresses in `addrs`, as Raft members.
fn nodes(replicas: &[u32], addrs: &HashMap<u32, String>) -> Result<BTreeMap<u64, BasicNode>> {
    replicas
        .iter()
        .map(|&id| {
            let addr = addrs
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::Corrupt(format!("replica node {id} is not a member")))?;
            Ok((u64::from(id), BasicNode { addr }))
        })
        .collect()
}

// The maps behind these locks are changed in one insert, so a panic
// elsewhere leaves them consistent.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// `raft`'s metrics once it knows a leader, waiting up to `within`.
async fn elected(
    raft: &GroupRaft,
    within: Duration,
) -> Option<openraft::RaftMetrics<super::ShardRaft>> {
    raft.wait(Some(within))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .ok()
}

/// A proposal awaited in place that, if dropped before it is answered
/// (its caller timed out or was cancelled), is awaited to the end by a
/// task of its own, which keeps `keep` until then (see
/// [`ShardGroups::propose_keeping`]). The common case costs no task.
struct Unabandoned<T: Send + 'static, K: Send + 'static> {
    proposal: Option<futures::future::BoxFuture<'static, T>>,
    keep: Option<K>,
}

impl<T: Send + 'static, K: Send + 'static> std::future::Future for Unabandoned<T, K> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let Some(proposal) = self.proposal.as_mut() else {
            return std::task::Poll::Pending;
        };
        let written = std::task::ready!(proposal.as_mut().poll(cx));
        self.proposal = None;
        self.keep = None;
        std::task::Poll::Ready(written)
    }
}

impl<T: Send + 'static, K: Send + 'static> Unpin for Unabandoned<T, K> {}

impl<T: Send + 'static, K: Send + 'static> Drop for Unabandoned<T, K> {
    fn drop(&mut self) {
        let (Some(proposal), keep) = (self.proposal.take(), self.keep.take()) else {
            return;
        };
        // Outside a runtime the process is ending: nothing reads any more.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = proposal.await;
                drop(keep);
            });
        }
    }
}

fn not_leader(group: GroupId) -> Error {
    Error::NotLeader(format!(
        "the leader of {} changed; retry the transaction",
        name(group)
    ))
}

fn no_quorum(group: GroupId) -> Error {
    Error::Unavailable(format!(
        "{} has no leader: too few of its replicas are reachable \
         (a majority must be up)",
        name(group)
    ))
}

/// How errors name `group`.
fn name(group: GroupId) -> String {
    match group {
        META_GROUP => "the meta group".into(),
        _ => format!("shard group {group}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proposal whose caller stopped waiting keeps what it keeps until
    /// the proposal is answered, and no longer.
    #[tokio::test]
    async fn an_abandoned_proposal_keeps_its_keys_until_it_is_answered() {
        let (answer, answered) = tokio::sync::oneshot::channel::<u32>();
        let kept = Arc::new(());
        let proposal = Unabandoned {
            proposal: Some(Box::pin(async move { answered.await.unwrap() })),
            keep: Some(kept.clone()),
        };
        let waited = tokio::time::timeout(Duration::from_millis(10), proposal).await;
        assert!(waited.is_err(), "answered before its answer was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(Arc::strong_count(&kept), 2, "let go while still unanswered");
        answer.send(7).unwrap();
        for _ in 0..100 {
            if Arc::strong_count(&kept) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(Arc::strong_count(&kept), 1, "kept after it was answered");

        // Answered in place: let go at once.
        let (answer, answered) = tokio::sync::oneshot::channel::<u32>();
        answer.send(8).unwrap();
        let proposal = Unabandoned {
            proposal: Some(Box::pin(async move { answered.await.unwrap() })),
            keep: Some(kept.clone()),
        };
        assert_eq!(proposal.await, 8);
        assert_eq!(Arc::strong_count(&kept), 1);
    }
}
