//! The `Cluster` gRPC service (`proto/cluster.proto`) over [`Cluster`].
//!
//! It is served from the node's start (a node waiting to join answers
//! `Ping`, `Init` and `Join`); what acts through the meta group or on the
//! catalog answers once the node serves ([`ClusterService::ready`]).

use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};

use super::proto::{self, cluster_server};
use super::Cluster;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::raft::groups::ShardGroups;

/// What the node serves with: its Raft groups and its catalog.
struct Serving {
    groups: Arc<ShardGroups>,
    catalog: Arc<Catalog>,
}

pub struct ClusterService {
    cluster: Arc<Cluster>,
    serving: OnceLock<Serving>,
}

impl ClusterService {
    pub fn new(cluster: Arc<Cluster>) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            serving: OnceLock::new(),
        })
    }

    pub fn server(self: &Arc<Self>) -> cluster_server::ClusterServer<Self> {
        cluster_server::ClusterServer::from_arc(self.clone())
    }

    /// Answers everything from now on, through the node's `groups` and
    /// `catalog`.
    pub fn ready(&self, groups: Arc<ShardGroups>, catalog: Arc<Catalog>) {
        let _ = self.serving.set(Serving { groups, catalog });
    }

    fn groups(&self) -> Option<&ShardGroups> {
        self.serving.get().map(|s| s.groups.as_ref())
    }

    fn serving(&self) -> Result<&Serving> {
        self.serving
            .get()
            .ok_or_else(|| Error::Unavailable("this node does not serve yet".into()))
    }
}

fn answer<T>(answer: Result<T>) -> Result<Response<T>, Status> {
    answer.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl cluster_server::Cluster for ClusterService {
    async fn ping(
        &self,
        _: Request<proto::PingRequest>,
    ) -> Result<Response<proto::PingResponse>, Status> {
        Ok(Response::new(proto::PingResponse {
            cluster_id: self.cluster.cluster_id(),
        }))
    }

    async fn init(
        &self,
        _: Request<proto::InitRequest>,
    ) -> Result<Response<proto::InitResponse>, Status> {
        answer(self.cluster.init().await)
    }

    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::JoinResponse>, Status> {
        let request = request.into_inner();
        if request.rpc_addr.is_empty() {
            return Err(Status::invalid_argument(
                "a joining node names its rpc address",
            ));
        }
        answer(self.cluster.join(self.groups(), request).await)
    }

    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        match self
            .cluster
            .heartbeat(self.groups(), request.into_inner())
            .await
        {
            Ok(answer) => Ok(Response::new(answer)),
            Err(Error::Input(_, m)) => Err(Status::permission_denied(m)),
            Err(e) => Err(e.into()),
        }
    }

    async fn decommission(
        &self,
        request: Request<proto::DecommissionRequest>,
    ) -> Result<Response<proto::DecommissionResponse>, Status> {
        let groups = &self.serving()?.groups;
        answer(
            self.cluster
                .decommission(groups, request.into_inner().node_id)
                .await,
        )
    }

    async fn status(
        &self,
        _: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        answer(self.cluster.status(self.groups()).await)
    }

    async fn replicas(
        &self,
        _: Request<proto::ReplicasRequest>,
    ) -> Result<Response<proto::ReplicasResponse>, Status> {
        Ok(Response::new(proto::ReplicasResponse {
            replicas: self.cluster.local_replicas(self.groups()),
        }))
    }

    async fn get_catalog(
        &self,
        request: Request<proto::GetCatalogRequest>,
    ) -> Result<Response<proto::CatalogUpdate>, Status> {
        let serving = self.serving()?;
        let with = (serving.groups.as_ref(), serving.catalog.as_ref());
        answer(self.cluster.get_catalog(with, request.into_inner()).await)
    }

    async fn apply_catalog(
        &self,
        request: Request<proto::CatalogUpdate>,
    ) -> Result<Response<proto::ApplyCatalogResponse>, Status> {
        let serving = self.serving()?;
        let with = (serving.groups.as_ref(), &serving.catalog);
        let applied = self.cluster.apply_catalog(with, request.into_inner()).await;
        answer(applied.map(|()| proto::ApplyCatalogResponse {}))
    }
}
