//! The transaction services over [`TxnCoordinator`], for members of the
//! cluster only (`crate::rpc`): `Participant` (`proto/shard.proto`), the
//! shard groups' side of every commit and of recovery, on every node; and
//! `Oracle` (`proto/txn.proto`), timestamps and schema-change decisions,
//! which the meta group's leader answers.

use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};

use super::oracle::proto::oracle_server::{Oracle, OracleServer};
use super::oracle::proto::{
    BeginRequest, BeginResponse, DecideRequest, DecideResponse, DoneRequest, DoneResponse,
    ResolveRequest, ResolveResponse,
};
use super::{OracleCall, TxnCoordinator};
use crate::rpc::{check_member, MAX_MESSAGE_BYTES};
use crate::shard::proto::participant_server::{Participant, ParticipantServer};
use crate::shard::proto::{
    AbortRequest, CommitOnePhaseRequest, CommitOnePhaseResponse, CommitPreparedRequest,
    CommittingRequest, CommittingResponse, PrepareRequest, PrepareResponse, ProbeRequest,
    ProbeResponse, Resolved,
};

struct Ready {
    cluster_id: String,
    coordinator: Arc<TxnCoordinator>,
}

/// Served from the start with the other RPCs; UNAVAILABLE until
/// [`Self::ready`].
#[derive(Default)]
pub struct TxnService {
    ready: OnceLock<Ready>,
}

impl TxnService {
    pub fn participant_server(self: &Arc<Self>) -> ParticipantServer<Self> {
        ParticipantServer::from_arc(self.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn oracle_server(self: &Arc<Self>) -> OracleServer<Self> {
        OracleServer::from_arc(self.clone())
    }

    pub fn ready(&self, cluster_id: String, coordinator: Arc<TxnCoordinator>) {
        let _ = self.ready.set(Ready {
            cluster_id,
            coordinator,
        });
    }

    /// Has `f` answer a member on the coordinator, on the runtime (`f`
    /// blocks on disk in place).
    async fn run<T, R, Fut>(
        &self,
        request: Request<R>,
        f: impl FnOnce(Arc<TxnCoordinator>, R) -> Fut,
    ) -> Result<Response<T>, Status>
    where
        Fut: std::future::Future<Output = crate::error::Result<T>>,
    {
        let ready = self
            .ready
            .get()
            .ok_or_else(|| Status::unavailable("this node does not take transactions yet"))?;
        check_member(request.metadata(), &ready.cluster_id)?;
        f(ready.coordinator.clone(), request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl Oracle for TxnService {
    async fn begin(
        &self,
        request: Request<BeginRequest>,
    ) -> Result<Response<BeginResponse>, Status> {
        self.run(request, |c, r| async move {
            let read_ts = c
                .oracle()
                .serve(OracleCall::Begin(r.count.max(1)))
                .await?
                .unwrap_or_default();
            Ok(BeginResponse { read_ts })
        })
        .await
    }

    async fn decide(
        &self,
        request: Request<DecideRequest>,
    ) -> Result<Response<DecideResponse>, Status> {
        self.run(request, |c, r| async move {
            let commit_ts = c
                .oracle()
                .serve(OracleCall::Decide(r))
                .await?
                .unwrap_or_default();
            Ok(DecideResponse { commit_ts })
        })
        .await
    }

    async fn done(&self, request: Request<DoneRequest>) -> Result<Response<DoneResponse>, Status> {
        self.run(request, |c, r| async move {
            c.oracle().serve(OracleCall::Done(r.txn_id)).await?;
            Ok(DoneResponse {})
        })
        .await
    }

    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        self.run(request, |c, r| async move {
            let commit_ts = c.oracle().serve(OracleCall::Resolve(r.txn_id)).await?;
            Ok(ResolveResponse { commit_ts })
        })
        .await
    }
}

#[tonic::async_trait]
impl Participant for TxnService {
    async fn prepare(
        &self,
        request: Request<PrepareRequest>,
    ) -> Result<Response<PrepareResponse>, Status> {
        self.run(request, |c, r| async move {
            c.participant()
                .prepare(r)
                .await
                .map(|min_commit_ts| PrepareResponse { min_commit_ts })
        })
        .await
    }

    async fn commit_prepared(
        &self,
        request: Request<CommitPreparedRequest>,
    ) -> Result<Response<Resolved>, Status> {
        self.run(request, |c, r| async move {
            c.participant()
                .resolve_prepared(&r.txn_id, Some(r.commit_ts), 0, &r.shard_ids)
                .await
                .map(|()| Resolved {})
        })
        .await
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<Resolved>, Status> {
        self.run(request, |c, r| async move {
            c.participant()
                .resolve_prepared(&r.txn_id, None, r.start_ts, &r.shard_ids)
                .await
                .map(|()| Resolved {})
        })
        .await
    }

    async fn commit_one_phase(
        &self,
        request: Request<CommitOnePhaseRequest>,
    ) -> Result<Response<CommitOnePhaseResponse>, Status> {
        self.run(request, |c, r| async move {
            let batch = r.batch.unwrap_or_default();
            let commit_ts = c
                .participant()
                .commit_one_phase_here(&r.txn_id, batch)
                .await?;
            Ok(CommitOnePhaseResponse { commit_ts })
        })
        .await
    }

    async fn probe(
        &self,
        request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        self.run(request, |c, r| async move {
            let statuses = c
                .participant()
                .probe_here(&r.txn_id, r.start_ts, &r.shard_ids)
                .await?;
            Ok(ProbeResponse { statuses })
        })
        .await
    }

    async fn committing(
        &self,
        request: Request<CommittingRequest>,
    ) -> Result<Response<CommittingResponse>, Status> {
        self.run(request, |c, r| async move {
            Ok(CommittingResponse {
                committing: c.committing(&r.txn_id),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{as_member, loopback};
    use crate::shard::proto::participant_client::ParticipantClient;
    use crate::txn::oracle::proto::oracle_client::OracleClient;
    use tonic::transport::Server;

    /// A node answers the transaction services only once it is in its
    /// cluster and serves (members of other clusters are refused then:
    /// see the e2e test `cluster::a_lone_node_is_a_one_node_cluster_with_every_shard_group`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_services_wait_for_the_node_to_serve() {
        let service = Arc::new(TxnService::default());
        let router = Server::builder()
            .add_service(service.participant_server())
            .add_service(service.oracle_server());
        let channel = loopback(router).await;
        let request = PrepareRequest {
            txn_id: b"a".to_vec(),
            ..Default::default()
        };
        let status = ParticipantClient::new(channel.clone())
            .prepare(as_member(request, "c1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let status = OracleClient::new(channel)
            .begin(as_member(BeginRequest { count: 1 }, "c1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
