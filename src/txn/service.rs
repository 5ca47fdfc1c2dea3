//! The transaction services over [`TxnCoordinator`], for members of the
//! cluster only (`crate::rpc`): `Participant` (`proto/shard.proto`), the
//! participant side of two-phase commit, on every node; and `Oracle`
//! (`proto/txn.proto`), read timestamps and commit decisions, which the
//! meta group's leader (or the meta node) answers.

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
                .serve_oracle(OracleCall::Begin(r.count.max(1)))
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
                .serve_oracle(OracleCall::Decide(r))
                .await?
                .unwrap_or_default();
            Ok(DecideResponse { commit_ts })
        })
        .await
    }

    async fn done(&self, request: Request<DoneRequest>) -> Result<Response<DoneResponse>, Status> {
        self.run(request, |c, r| async move {
            c.serve_oracle(OracleCall::Done(r.txn_id)).await?;
            Ok(DoneResponse {})
        })
        .await
    }

    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        self.run(request, |c, r| async move {
            let commit_ts = c.serve_oracle(OracleCall::Resolve(r.txn_id)).await?;
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
            c.prepare(r)
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
            c.resolve_prepared(&r.txn_id, Some(r.commit_ts), 0, &r.shard_ids)
                .await
                .map(|found| Resolved { found })
        })
        .await
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<Resolved>, Status> {
        self.run(request, |c, r| async move {
            c.resolve_prepared(&r.txn_id, None, r.start_ts, &r.shard_ids)
                .await
                .map(|found| Resolved { found })
        })
        .await
    }

    async fn commit_one_phase(
        &self,
        request: Request<CommitOnePhaseRequest>,
    ) -> Result<Response<CommitOnePhaseResponse>, Status> {
        self.run(request, |c, r| async move {
            let batch = r.batch.unwrap_or_default();
            let commit_ts = c.commit_one_phase_here(&r.txn_id, batch).await?;
            Ok(CommitOnePhaseResponse { commit_ts })
        })
        .await
    }

    async fn probe(
        &self,
        request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        self.run(request, |c, r| async move {
            let statuses = c.probe_here(&r.txn_id, r.start_ts, &r.shard_ids).await?;
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
    use crate::encoding::keys::row_key;
    use crate::error::Error;
    use crate::rpc::{as_member, loopback};
    use crate::shard::proto::participant_client::ParticipantClient;
    use crate::txn::oracle::proto::oracle_client::OracleClient;
    use crate::txn::tests::{open, prepare_request, t};
    use tonic::transport::{Channel, Server};

    async fn serve(service: Arc<TxnService>) -> Channel {
        let router = Server::builder()
            .add_service(service.participant_server())
            .add_service(service.oracle_server());
        loopback(router).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_phase_commit_over_grpc_for_members_only() {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = open(dir.path());
        let key = row_key(t(&coordinator), b"k");
        let start = coordinator.begin().start_ts();
        let mut not_ready = ParticipantClient::new(serve(Arc::new(TxnService::default())).await);
        let service = Arc::new(TxnService::default());
        service.ready("c1".into(), coordinator.clone());
        let channel = serve(service).await;
        let mut client = ParticipantClient::new(channel.clone());
        let mut oracle = OracleClient::new(channel);
        let request = |id: &[u8]| prepare_request(id, &key, b"v", start, &coordinator);

        let status = not_ready
            .prepare(as_member(request(b"a"), "c1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let status = client
            .prepare(as_member(request(b"a"), "c2").unwrap())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);

        client
            .prepare(as_member(request(b"a"), "c1").unwrap())
            .await
            .unwrap();
        // A conflict comes back as a serialization failure (40001).
        let status = client
            .prepare(as_member(request(b"b"), "c1").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(Error::from_rpc("n1", status), Error::Retry(_)));

        // The meta node decides; read timestamps stay below the decision
        // until the participants applied it.
        let commit_ts = oracle
            .decide(
                as_member(
                    DecideRequest {
                        txn_id: b"a".to_vec(),
                        participants: vec![1],
                        ..Default::default()
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner()
            .commit_ts;
        let read_ts = |mut oracle: OracleClient<Channel>| async move {
            oracle
                .begin(as_member(BeginRequest { count: 1 }, "c1").unwrap())
                .await
                .unwrap()
                .into_inner()
                .read_ts
        };
        // (`Begin` would wait for it.)
        assert!(coordinator.begin().start_ts() < commit_ts);
        let resolved = client
            .commit_prepared(
                as_member(
                    CommitPreparedRequest {
                        txn_id: b"a".to_vec(),
                        commit_ts,
                        shard_ids: Vec::new(),
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        assert!(resolved.found);
        let row = coordinator
            .shards()
            .for_key(&key)
            .get(&key, commit_ts)
            .unwrap();
        assert_eq!(row.unwrap(), b"v");
        let again = client
            .abort(
                as_member(
                    AbortRequest {
                        txn_id: b"a".to_vec(),
                        shard_ids: Vec::new(),
                        start_ts: 0,
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        assert!(!again.found, "already resolved");
        oracle
            .done(
                as_member(
                    DoneRequest {
                        txn_id: b"a".to_vec(),
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap();
        assert!(read_ts(oracle.clone()).await >= commit_ts);
        let decided = oracle
            .resolve(
                as_member(
                    ResolveRequest {
                        txn_id: b"a".to_vec(),
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decided.commit_ts, None, "done decisions are forgotten");
    }
}
