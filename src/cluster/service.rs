//! The `Cluster` gRPC service (`proto/cluster.proto`) over [`Cluster`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::{self, cluster_server};
use super::Cluster;
use crate::error::Error;

pub struct ClusterService {
    cluster: Arc<Cluster>,
}

impl ClusterService {
    pub fn server(cluster: Arc<Cluster>) -> cluster_server::ClusterServer<Self> {
        cluster_server::ClusterServer::new(Self { cluster })
    }
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
        self.cluster
            .init()
            .await
            .map(Response::new)
            .map_err(Status::from)
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
        self.cluster
            .join(request)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        match self.cluster.heartbeat(request.into_inner()).await {
            Ok(answer) => Ok(Response::new(answer)),
            Err(Error::Input(_, m)) => Err(Status::permission_denied(m)),
            Err(e) => Err(e.into()),
        }
    }

    async fn decommission(
        &self,
        request: Request<proto::DecommissionRequest>,
    ) -> Result<Response<proto::DecommissionResponse>, Status> {
        self.cluster
            .decommission(request.into_inner().node_id)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn status(
        &self,
        _: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        self.cluster
            .status()
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn replicas(
        &self,
        _: Request<proto::ReplicasRequest>,
    ) -> Result<Response<proto::ReplicasResponse>, Status> {
        Ok(Response::new(proto::ReplicasResponse {
            replicas: self.cluster.local_replicas(),
        }))
    }

    async fn get_catalog(
        &self,
        request: Request<proto::GetCatalogRequest>,
    ) -> Result<Response<proto::CatalogUpdate>, Status> {
        self.cluster
            .get_catalog(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn apply_catalog(
        &self,
        request: Request<proto::CatalogUpdate>,
    ) -> Result<Response<proto::ApplyCatalogResponse>, Status> {
        self.cluster
            .apply_catalog(request.into_inner())
            .await
            .map(|()| Response::new(proto::ApplyCatalogResponse {}))
            .map_err(Status::from)
    }
}
