//! Wires a node together and runs it until SIGTERM / Ctrl-C.
//!
//! Start-up order: open storage, bind the listeners (a port in use is a
//! clear error before anything is served), serve the cluster RPCs, become
//! part of a cluster (at once for a one-node cluster; see `cluster`), then
//! build the rest of the node bottom-up ([`serve`]) and serve. The rpc
//! address serves the `Cluster` service and, once the node serves, reads
//! of this node's shard groups (`shard::service`: scans over Arrow Flight,
//! single rows over gRPC) and the transaction services (`txn::service`). Shutdown stops accepting, drains
//! open connections briefly and closes storage; every acknowledged commit
//! was already synced, so a SIGKILL instead loses nothing committed either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::cluster::meta::MetaMachine;
use crate::cluster::{Cluster, ClusterService, HEARTBEAT_INTERVAL};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;
use crate::raft::transport::RaftService;
use crate::raft::{StateMachine, META_GROUP};
use crate::shard::locks::WriteLocks;
use crate::shard::machine::ShardMachine;
use crate::shard::service::ShardService;
use crate::sql::SqlEngine;
use crate::storage::Storage;
use crate::txn::distributed::{DECISION_RECOVER_AFTER, RECOVER_AFTER};
use crate::txn::service::TxnService;
use crate::txn::{OracleState, Parts, TxnCoordinator};

pub async fn run(config: Config) -> Result<()> {
    config.validate()?;
    let data_dir = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        Error::Unavailable(format!(
            "cannot create data dir {}: {e}",
            data_dir.display()
        ))
    })?;
    let storage =
        tokio::task::spawn_blocking(move || Storage::open(&data_dir.join("db")).map(Arc::new))
            .await??;
    let cluster = Cluster::open(storage.clone(), &config)?;

    let pg = bind(config.node.pg_addr, "PostgreSQL clients").await?;
    let rpc = bind(config.node.rpc_addr, "node-to-node RPC").await?;
    let http = bind(config.node.http_addr, "HTTP admin").await?;
    let cluster_service = ClusterService::new(cluster.clone());
    let shards = Arc::new(ShardService::default());
    let txn = Arc::new(TxnService::default());
    let raft = Arc::new(RaftService::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn({
        let raft = raft.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
            raft.stop();
        }
    });
    let mut rpc_stopped = stopped.clone();
    let mut rpc_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(cluster_service.server())
            .add_service(shards.flight_server())
            .add_service(shards.reads_server())
            .add_service(txn.participant_server())
            .add_service(txn.oracle_server())
            .add_service(raft.server())
            .serve_with_incoming_shutdown(crate::rpc::incoming(rpc), async move {
                let _ = rpc_stopped.wait_for(|s| *s).await;
            }),
    );

    // A node waiting for its cluster answers PostgreSQL clients with 57P03.
    let joined = tokio::select! {
        joined = cluster.ensure_initialised(stopped.clone()) => joined?,
        () = crate::pg::refuse_until_ready(&pg) => false,
    };
    if joined {
        tokio::spawn(cluster.clone().heartbeats(stopped.clone()));
        let services = Services {
            cluster: cluster_service,
            shards,
            txn,
            raft,
        };
        serve(
            &config,
            cluster.clone(),
            services,
            storage,
            pg,
            http,
            stopped,
        )
        .await?;
    }
    // The calls in flight get a moment to finish; a peer's stream that
    // outlives it (a leader's append stream stays open as long as it
    // leads) does not hold the node up: the groups it serves are stopped.
    match tokio::time::timeout(RPC_DRAIN, &mut rpc_server).await {
        Ok(served) => served?.map_err(|e| Error::Unavailable(format!("node-to-node RPC: {e}")))?,
        Err(_) => rpc_server.abort(),
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping node waits for its node-to-node calls in flight.
const RPC_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// The RPC services a node serves from its start, which answer in full
/// once it serves.
struct Services {
    cluster: Arc<ClusterService>,
    shards: Arc<ShardService>,
    txn: Arc<TxnService>,
    raft: Arc<RaftService>,
}

/// Serves SQL and HTTP on an initialised node until `stopped`. Builds the
/// node in dependency order: the catalog and the oracle's state, the Raft
/// groups whose state machines hold them, the transaction coordinator over
/// the groups, the SQL engine over the coordinator.
async fn serve(
    config: &Config,
    cluster: Arc<Cluster>,
    services: Services,
    storage: Arc<Storage>,
    pg: TcpListener,
    http: TcpListener,
    stopped: watch::Receiver<bool>,
) -> Result<()> {
    let node = cluster
        .node_id()
        .ok_or_else(|| Error::Internal("serving before the cluster is initialised".into()))?;
    let cluster_id = cluster.cluster_id();
    let loading = storage.clone();
    let (catalog, oracle) = tokio::task::spawn_blocking(move || -> Result<_> {
        let catalog = Arc::new(Catalog::load(&loading)?);
        let oracle = Arc::new(OracleState::load(loading, catalog.clone())?);
        Ok((catalog, oracle))
    })
    .await??;
    let locks = Arc::new(WriteLocks::default());
    let groups = start_groups(
        config,
        node,
        &cluster,
        storage.clone(),
        (&oracle, &locks),
        &services.raft,
    )
    .await?;
    let coordinator = TxnCoordinator::new(Parts {
        storage,
        cluster: cluster.clone(),
        groups: groups.clone(),
        oracle,
        locks: locks.clone(),
        catalog: catalog.clone(),
        write_buffer: (config.cluster.txn_write_buffer_kib as usize).saturating_mul(1024),
    })?;
    let engine = SqlEngine::new(coordinator.clone())?;
    services.shards.ready(
        cluster_id.clone(),
        node,
        cluster.shards().clone(),
        Some(groups.clone()),
        locks,
    );
    services.txn.ready(cluster_id, coordinator.clone());
    services.cluster.ready(groups.clone(), catalog.clone());
    tokio::spawn(
        cluster
            .clone()
            .place_replicas(groups.clone(), stopped.clone()),
    );
    tokio::spawn(recover(coordinator.clone(), stopped.clone()));
    tokio::spawn(report_floor(
        coordinator.clone(),
        cluster.clone(),
        stopped.clone(),
    ));
    // Schema changes made while this node was down.
    if let Err(e) = cluster.fetch_catalog(&groups, &catalog).await {
        tracing::warn!(error = %e, "could not take the meta node's catalog; serving the one on disk");
    }
    let engine = Arc::new(engine);
    tracing::info!(
        node,
        pg = %config.node.pg_addr,
        rpc = %config.node.rpc_addr,
        http = %config.node.http_addr,
        data_dir = %config.node.data_dir.display(),
        "ShardForge ready"
    );
    let gc = Arc::new(GcMetrics::default());
    tokio::spawn(collect_garbage(
        coordinator.clone(),
        cluster.clone(),
        gc.clone(),
        stopped.clone(),
    ));
    let admin = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(move || async move { gc.render() }));
    let mut http_stopped = stopped.clone();
    let http_server = axum::serve(http, admin).with_graceful_shutdown(async move {
        let _ = http_stopped.wait_for(|s| *s).await;
    });
    let (_, http_result) = tokio::join!(crate::pg::serve(pg, engine, stopped), http_server);
    groups.shutdown().await;
    http_result.map_err(|e| Error::Unavailable(format!("HTTP admin: {e}")))
}

/// How often a node runs a garbage collection pass (`storage::gc`), at
/// most.
const GC_INTERVAL: Duration = Duration::from_secs(5);

/// A pass walks every row version the node stores, so on a large node it
/// waits this many times its own duration before the next one: garbage
/// collection then takes at most a twentieth of one core however large
/// the data, and versions wait a little longer to go (a pass of 1 s, on
/// millions of rows, runs every 20 s instead of every 5).
const GC_IDLE_PER_BUSY: u32 = 19;

/// What this node's garbage collection found, for `/metrics`.
#[derive(Default)]
struct GcMetrics {
    versions: AtomicU64,
    deleted: AtomicU64,
    safe_point: AtomicU64,
}

impl GcMetrics {
    /// The Prometheus text form.
    fn render(&self) -> String {
        let metric = |name: &str, kind: &str, help: &str, value: &AtomicU64| {
            format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            )
        };
        [
            metric(
                "shardforge_mvcc_versions",
                "gauge",
                "Row versions stored on this node, as the last garbage collection pass counted them.",
                &self.versions,
            ),
            metric(
                "shardforge_mvcc_versions_collected_total",
                "counter",
                "Row versions garbage collection deleted on this node.",
                &self.deleted,
            ),
            metric(
                "shardforge_gc_safe_point",
                "gauge",
                "The GC safe point of the last pass (a timestamp, microseconds).",
                &self.safe_point,
            ),
        ]
        .concat()
    }
}

/// Every [`GC_INTERVAL`] (or, after a long pass, [`GC_IDLE_PER_BUSY`]
/// times its duration) until `stopped`, collects the row versions below
/// the cluster's safe point that no snapshot needs (`storage::gc`).
async fn collect_garbage(
    coordinator: Arc<TxnCoordinator>,
    cluster: Arc<Cluster>,
    metrics: Arc<GcMetrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut pause = GC_INTERVAL;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let safe_point = cluster.gc_safe_point();
        if safe_point == 0 {
            continue;
        }
        let began = std::time::Instant::now();
        if let Err(e) = coordinator.forget_settled(safe_point).await {
            tracing::warn!(error = %e, "could not forget settled transactions");
        }
        let storage = coordinator.storage().clone();
        let pass = move || storage.collect_garbage(safe_point);
        match tokio::task::spawn_blocking(pass).await {
            Ok(Ok(collected)) => {
                metrics
                    .versions
                    .store(collected.versions, Ordering::Relaxed);
                metrics
                    .deleted
                    .fetch_add(collected.deleted, Ordering::Relaxed);
                metrics.safe_point.store(safe_point, Ordering::Relaxed);
                if collected.deleted > 0 {
                    tracing::debug!(
                        safe_point,
                        deleted = collected.deleted,
                        "collected row versions"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "garbage collection failed"),
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
        pause = GC_INTERVAL.max(began.elapsed() * GC_IDLE_PER_BUSY);
    }
}

/// How often a node hands leaderships back to the groups' first replicas.
const LEADER_BALANCE_INTERVAL: Duration = Duration::from_secs(5);

/// Starts the Raft groups of the shard groups this node holds and of the
/// meta group, with their state machines: the shard groups' over
/// `storage` and `locks`, the meta group's over the member list and
/// `oracle`.
async fn start_groups(
    config: &Config,
    node: u32,
    cluster: &Arc<Cluster>,
    storage: Arc<Storage>,
    (oracle, locks): (&Arc<OracleState>, &Arc<WriteLocks>),
    raft: &Arc<RaftService>,
) -> Result<Arc<ShardGroups>> {
    let shards = cluster.shards();
    if let Some(replica) = shards
        .replicas()
        .iter()
        .find(|r| !r.range().is_replicated())
    {
        return Err(Error::Unavailable(format!(
            "shard group {} is not a Raft group: this data directory was made by an older \
             build; start with an empty one",
            replica.range().id.0
        )));
    }
    let cluster_id = cluster.cluster_id();
    raft.ready(cluster_id.clone());
    let meta: Arc<dyn StateMachine> = Arc::new(MetaMachine::new(cluster, oracle.machine()));
    let machines = {
        let (storage, shards, locks) = (storage.clone(), shards.clone(), locks.clone());
        move |group| -> Result<Arc<dyn StateMachine>> {
            if group == META_GROUP {
                return Ok(meta.clone());
            }
            let replica = shards.replicas().get(group as usize).cloned();
            let replica = replica.ok_or_else(|| {
                Error::Corrupt(format!("shard group {group} is not in the shard map"))
            })?;
            Ok(Arc::new(ShardMachine::new(
                storage.clone(),
                replica,
                locks.clone(),
            )?))
        }
    };
    let mut all_groups: Vec<(u32, Vec<u32>)> = shards
        .replicas()
        .iter()
        .map(|replica| (replica.range().id.0, replica.range().replicas.clone()))
        .collect();
    all_groups.push((META_GROUP, cluster.meta_replicas()));
    let groups = ShardGroups::start(
        node,
        config.cluster.raft_snapshot_entries,
        storage,
        all_groups,
        Box::new(machines),
        &cluster.member_addrs(),
        raft.clone(),
        &cluster_id,
        cluster.channel_pool(),
    )
    .await?;
    // Serving before the first elections would only turn clients away.
    if !groups.wait_for_leaders(Duration::from_secs(10)).await {
        tracing::warn!("serving before every shard group has a leader: too few replicas are up");
    }
    let groups = Arc::new(groups);
    let balancing = groups.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEADER_BALANCE_INTERVAL).await;
            balancing.balance_leaders().await;
        }
    });
    Ok(groups)
}

/// Every few seconds, resolves what coordinators that died left prepared
/// or decided (see `TxnCoordinator::recover`).
async fn recover(coordinator: Arc<TxnCoordinator>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(DECISION_RECOVER_AFTER / 2) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let coordinator = coordinator.clone();
        let _ = tokio::task::spawn_blocking(move || coordinator.recover(RECOVER_AFTER)).await;
    }
}

/// Twice a heartbeat until `stopped`, tells the cluster this node's
/// snapshot floor, which its heartbeats carry (see `cluster::gc`).
async fn report_floor(
    coordinator: Arc<TxnCoordinator>,
    cluster: Arc<Cluster>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = coordinator.advance_idle_floor().await {
            tracing::debug!(error = %e, "no timestamp for an idle snapshot floor");
        }
        let floor = {
            let coordinator = coordinator.clone();
            tokio::task::spawn_blocking(move || coordinator.snapshot_floor()).await
        };
        if let Ok(floor) = floor {
            cluster.set_local_floor(floor);
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_INTERVAL / 2) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot listen for {what} on {addr}: {e}")))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
