//! Compiles `proto/` with protox, a pure-Rust protobuf compiler, so a build
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/shard.proto",
        "proto/cluster.proto",
        "proto/txn.proto",
        "proto/raft.proto",
        "proto/catalog.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
