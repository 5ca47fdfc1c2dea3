//! Keeping every node's catalog the meta group's: a node starting up
//! fetches it, the oracle pushes it after a schema change.

use std::sync::Arc;

use super::{proto, Cluster};
use crate::catalog::codec::{tables_from_bytes, tables_to_bytes};
use crate::error::{Error, InputError, Result};
use crate::raft::META_GROUP;
use crate::storage::Storage;
use crate::txn::TxnCoordinator;

impl Cluster {
    /// `GetCatalog`, on the meta group's leader (which confirms it leads
    /// and has applied every change) or the meta node.
    pub async fn get_catalog(
        &self,
        request: proto::GetCatalogRequest,
    ) -> Result<proto::CatalogUpdate> {
        let coordinator = self.serving(&request.cluster_id)?;
        let mut meta_index = 0;
        if let Some(groups) = coordinator.shard_groups().filter(|g| g.holds(META_GROUP)) {
            groups.linearize(META_GROUP).await?;
            meta_index = groups.applied_index(META_GROUP);
        }
        let tables = coordinator.catalog().tables();
        Ok(proto::CatalogUpdate {
            cluster_id: request.cluster_id,
            tables: tables_to_bytes(&tables),
            meta_index,
        })
    }

    /// `ApplyCatalog`: the oracle's catalog replaces this node's, and the
    /// rows of tables that are gone are purged; on a meta replica, which
    /// changes its catalog only by applying the meta group's log, once it
    /// has applied the change.
    pub async fn apply_catalog(&self, update: proto::CatalogUpdate) -> Result<()> {
        let coordinator = self.serving(&update.cluster_id)?;
        if let Some(groups) = coordinator.shard_groups().filter(|g| g.holds(META_GROUP)) {
            return groups.wait_applied(META_GROUP, update.meta_index).await;
        }
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || apply_tables(&storage, &coordinator, &update.tables))
            .await?
    }

    /// Before a node serves SQL, its catalog catches up with the changes
    /// it missed while it was down: a meta replica applies the meta
    /// group's log as far as its leader has; any other node takes the
    /// oracle's catalog.
    pub async fn fetch_catalog(&self, coordinator: &Arc<TxnCoordinator>) -> Result<()> {
        let state = self.initialised_state()?;
        let cluster_id = state.identity.cluster_id;
        let update = coordinator
            .at_meta(|node| {
                let request = proto::GetCatalogRequest {
                    cluster_id: cluster_id.clone(),
                };
                async move {
                    self.client(&self.member_addr(node)?)?
                        .get_catalog(request)
                        .await
                        .map(|r| r.into_inner())
                        .map_err(|s| Error::from_rpc(&format!("node {node}"), s))
                }
            })
            .await?;
        self.apply_catalog(update).await
    }
}

/// Replaces the catalog with the tables `message` holds and purges the
/// rows of the tables that are gone. Blocks on disk.
fn apply_tables(storage: &Storage, coordinator: &TxnCoordinator, message: &[u8]) -> Result<()> {
    let tables = tables_from_bytes(message)
        .map_err(|e| Error::input(InputError::Other, format!("bad catalog: {e}")))?;
    for gone in coordinator.catalog().replace(storage, tables)? {
        let (start, end) = crate::encoding::keys::table_bounds(gone.id.0);
        storage.purge_range(&start, &end)?;
    }
    Ok(())
}
