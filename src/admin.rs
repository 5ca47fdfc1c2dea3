//! The `shardforge init` and `shardforge status` commands: one RPC to a
//! node, printed for people.

use shardforge::cluster::{connect, proto, rpc_error};
use shardforge::error::Result;

pub async fn init(host: &str) -> Result<()> {
    let response = connect(host)
        .await?
        .init(proto::InitRequest {})
        .await
        .map_err(|s| rpc_error(host, s))?
        .into_inner();
    println!("cluster {} initialised", response.cluster_id);
    print_nodes(&response.nodes);
    Ok(())
}

pub async fn status(host: &str) -> Result<()> {
    let response = connect(host)
        .await?
        .status(proto::StatusRequest {})
        .await
        .map_err(|s| rpc_error(host, s))?
        .into_inner();
    println!(
        "cluster {} (meta node {})",
        response.cluster_id, response.meta_node_id
    );
    print_nodes(&response.nodes);
    println!();
    println!("{:>5}  {:>10}  {:>4}", "shard", "hash range", "node");
    for shard in &response.shards {
        println!(
            "{:>5}  {:>10}  {:>4}",
            shard.shard_id,
            format!(
                "{:04x}-{:04x}",
                shard.hash_start,
                shard.hash_end.saturating_sub(1)
            ),
            shard.node_id
        );
    }
    Ok(())
}

fn print_nodes(nodes: &[proto::Node]) {
    println!(
        "{:>4}  {:<21}  {:<21}  {:<21}  live",
        "node", "rpc", "pg", "http"
    );
    for n in nodes {
        println!(
            "{:>4}  {:<21}  {:<21}  {:<21}  {}",
            n.node_id,
            n.rpc_addr,
            n.pg_addr,
            n.http_addr,
            if n.live { "yes" } else { "no" }
        );
    }
}
