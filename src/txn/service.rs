//! The `Participant` gRPC service (`proto/shard.proto`): the participant
//! side of two-phase commit over [`TxnCoordinator`], for members of the
//! cluster only (`crate::rpc`).

use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};

use super::TxnCoordinator;
use crate::rpc::check_member;
use crate::shard::proto::participant_server::{Participant, ParticipantServer};
use crate::shard::proto::{
    AbortRequest, CommitPreparedRequest, PrepareRequest, PrepareResponse, Resolved,
};

struct Ready {
    cluster_id: String,
    coordinator: Arc<TxnCoordinator>,
}

/// Served from the start with the other RPCs; UNAVAILABLE until
/// [`Self::ready`].
#[derive(Default)]
pub struct ParticipantService {
    ready: OnceLock<Ready>,
}

impl ParticipantService {
    pub fn server(self: &Arc<Self>) -> ParticipantServer<Self> {
        ParticipantServer::from_arc(self.clone())
    }

    pub fn ready(&self, cluster_id: String, coordinator: Arc<TxnCoordinator>) {
        let _ = self.ready.set(Ready {
            cluster_id,
            coordinator,
        });
    }

    /// Runs `f` on the coordinator off the async runtime, for a member.
    async fn run<T: Send + 'static, R>(
        &self,
        request: Request<R>,
        f: impl FnOnce(&TxnCoordinator, R) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<Response<T>, Status>
    where
        R: Send + 'static,
    {
        let ready = self
            .ready
            .get()
            .ok_or_else(|| Status::unavailable("this node does not take writes yet"))?;
        check_member(request.metadata(), &ready.cluster_id)?;
        let coordinator = ready.coordinator.clone();
        let request = request.into_inner();
        tokio::task::spawn_blocking(move || f(&coordinator, request))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(Response::new)
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl Participant for ParticipantService {
    async fn prepare(
        &self,
        request: Request<PrepareRequest>,
    ) -> Result<Response<PrepareResponse>, Status> {
        self.run(request, |c, r| c.prepare(r).map(|()| PrepareResponse {}))
            .await
    }

    async fn commit_prepared(
        &self,
        request: Request<CommitPreparedRequest>,
    ) -> Result<Response<Resolved>, Status> {
        self.run(request, |c, r| {
            c.commit_prepared(&r.txn_id, r.commit_ts)
                .map(|found| Resolved { found })
        })
        .await
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<Resolved>, Status> {
        self.run(request, |c, r| {
            c.abort_prepared(&r.txn_id).map(|found| Resolved { found })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::keys::row_key;
    use crate::error::Error;
    use crate::rpc::as_member;
    use crate::shard::proto::participant_client::ParticipantClient;
    use crate::txn::tests::{open, prepare_request, t};
    use tonic::transport::{Channel, Endpoint, Server};

    async fn serve(service: Arc<ParticipantService>) -> ParticipantClient<Channel> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .add_service(service.server())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        ParticipantClient::new(channel)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_phase_commit_over_grpc_for_members_only() {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = Arc::new(open(dir.path()));
        let key = row_key(t(&coordinator), b"k");
        let start = coordinator.begin().start_ts();
        let mut not_ready = serve(Arc::new(ParticipantService::default())).await;
        let service = Arc::new(ParticipantService::default());
        service.ready("c1".into(), coordinator.clone());
        let mut client = serve(service).await;
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

        let commit_ts = start + 1;
        let resolved = client
            .commit_prepared(
                as_member(
                    CommitPreparedRequest {
                        txn_id: b"a".to_vec(),
                        commit_ts,
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
                    },
                    "c1",
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        assert!(!again.found, "already resolved");
    }
}
