//! What every node-to-node service shares: callers name their cluster in
//! the [`CLUSTER_HEADER`] metadata, and only members of this node's cluster
//! are served.

use tonic::metadata::MetadataMap;
use tonic::Status;

/// Metadata key carrying the caller's cluster id.
pub const CLUSTER_HEADER: &str = "x-shardforge-cluster";

/// PERMISSION_DENIED unless `metadata` names cluster `cluster_id`.
pub fn check_member(metadata: &MetadataMap, cluster_id: &str) -> Result<(), Status> {
    let caller = metadata.get(CLUSTER_HEADER).and_then(|v| v.to_str().ok());
    if caller == Some(cluster_id) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "a call from outside cluster {cluster_id}"
        )))
    }
}

/// `request` with this node's cluster named, for a call to a member.
pub fn as_member<T>(
    request: T,
    cluster_id: &str,
) -> Result<tonic::Request<T>, crate::error::Error> {
    let mut request = tonic::Request::new(request);
    let value = cluster_id
        .parse()
        .map_err(|_| crate::error::Error::Internal("cluster id is not a header value".into()))?;
    request.metadata_mut().insert(CLUSTER_HEADER, value);
    Ok(request)
}
