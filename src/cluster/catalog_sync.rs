//! Keeping every node's catalog the meta group's: a node starting up
//! fetches it, the oracle pushes it after a schema change.

use std::sync::Arc;

use super::{proto, Cluster};
use crate::catalog::codec::{tables_from_bytes, tables_to_bytes};
use crate::catalog::{Catalog, TableDef};
use crate::error::{Error, InputError, Result};
use crate::raft::groups::ShardGroups;
use crate::raft::META_GROUP;
use crate::storage::Storage;

impl Cluster {
    /// `GetCatalog`, on the meta group's leader (which confirms it leads
    /// and has applied every change).
    pub async fn get_catalog(
        &self,
        (groups, catalog): (&ShardGroups, &Catalog),
        request: proto::GetCatalogRequest,
    ) -> Result<proto::CatalogUpdate> {
        self.check_cluster(&request.cluster_id)?;
        let mut meta_index = 0;
        if groups.holds(META_GROUP) {
            groups.linearize(META_GROUP).await?;
            meta_index = groups.applied_index(META_GROUP);
        }
        Ok(proto::CatalogUpdate {
            cluster_id: request.cluster_id,
            tables: tables_to_bytes(&catalog.tables()),
            meta_index,
        })
    }

    /// `ApplyCatalog`: the oracle's catalog replaces this node's, and the
    /// rows of tables that are gone are purged; on a meta replica, which
    /// changes its catalog only by applying the meta group's log, once it
    /// has applied the change.
    pub async fn apply_catalog(
        &self,
        (groups, catalog): (&ShardGroups, &Arc<Catalog>),
        update: proto::CatalogUpdate,
    ) -> Result<()> {
        self.check_cluster(&update.cluster_id)?;
        if groups.holds(META_GROUP) {
            return groups.wait_applied(META_GROUP, update.meta_index).await;
        }
        let (storage, catalog) = (self.storage.clone(), catalog.clone());
        tokio::task::spawn_blocking(move || apply_tables(&storage, &catalog, &update.tables))
            .await?
    }

    /// Before a node serves SQL, its catalog catches up with the changes
    /// it missed while it was down: a meta replica applies the meta
    /// group's log as far as its leader has; any other node takes the
    /// oracle's catalog.
    pub async fn fetch_catalog(&self, groups: &ShardGroups, catalog: &Arc<Catalog>) -> Result<()> {
        let state = self.initialised_state()?;
        let cluster_id = state.identity.cluster_id;
        let update = self
            .at_meta(groups, |node| {
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
        self.apply_catalog((groups, catalog), update).await
    }

    /// On the oracle: gives every other live member the catalog `tables`,
    /// which the meta group applied at `meta_index`.
    pub async fn publish_catalog(&self, tables: Vec<Arc<TableDef>>, meta_index: u64) -> Result<()> {
        let state = self.initialised_state()?;
        let update = proto::CatalogUpdate {
            cluster_id: state.identity.cluster_id.clone(),
            tables: tables_to_bytes(&tables),
            meta_index,
        };
        let live: Vec<u32> = self
            .nodes_with_liveness()?
            .into_iter()
            .filter(|n| n.live && n.node_id != state.identity.node_id)
            .map(|n| n.node_id)
            .collect();
        let sent = state
            .members
            .iter()
            .filter(|m| live.contains(&m.id))
            .map(|member| {
                let update = update.clone();
                async move {
                    self.client(&member.rpc_addr)?
                        .apply_catalog(update)
                        .await
                        .map_err(|s| Error::from_rpc(&format!("node {}", member.id), s))
                }
            });
        futures::future::join_all(sent)
            .await
            .into_iter()
            .find_map(|r| r.err())
            .map_or(Ok(()), Err)
    }
}

/// Replaces the catalog with the tables `message` holds and purges the
/// rows of the tables that are gone. Blocks on disk.
fn apply_tables(storage: &Storage, catalog: &Catalog, message: &[u8]) -> Result<()> {
    let tables = tables_from_bytes(message)
        .map_err(|e| Error::input(InputError::Other, format!("bad catalog: {e}")))?;
    for gone in catalog.replace(storage, tables)? {
        let (start, end) = crate::encoding::keys::table_bounds(gone.id.0);
        storage.purge_range(&start, &end)?;
    }
    Ok(())
}
