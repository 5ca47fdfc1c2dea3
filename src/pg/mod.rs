//! The PostgreSQL front end: a pgwire listener whose connections each get
//! their own [`Session`](crate::sql::Session).
//!
//! The front end knows nothing about shards: it turns protocol messages into
//! session calls and session outputs into protocol messages, and chooses
//! the SQLSTATE of every error ([`errors`]).

mod binary;
mod cancel;
mod connection;
mod copy;
mod corked;
pub mod errors;
mod frames;
mod handler;
mod params;
mod portal;
mod results;
mod text;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sql::SqlEngine;
use handler::Connection;

/// How long open connections may run on after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until `shutdown` turns true, then waits up to
/// [`DRAIN_TIMEOUT`] for open ones and closes the rest. A closed connection
/// rolls back its open transaction; committed work is already durable.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<SqlEngine>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let sessions = Arc::new(cancel::Sessions::new(
        engine.coordinator().cluster().clone(),
    ));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let handlers = Arc::new(Connection::new(engine.clone(), &sessions));
                    let sessions = sessions.clone();
                    connections.spawn(async move {
                        connection::serve_connection(socket, handlers, &sessions).await;
                        tracing::debug!(%peer, "connection closed");
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow. A panic
            // in one connection ends that connection's task only (tokio
            // catches it at the task boundary); the node and every other
            // session go on. It is a bug, so it is logged as an error.
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    if e.is_panic() {
                        tracing::error!(error = %e, "a connection's task panicked; the connection was closed");
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, "waiting for open connections to finish");
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.abort_all();
        }
    }
}

/// Answers every connection on `listener` with PostgreSQL's "the database
/// system is starting up" (57P03), as a node does before its cluster is
/// initialised; never returns (the caller drops it when the node is ready).
pub async fn refuse_until_ready(listener: &TcpListener) {
    loop {
        if let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(refuse(socket));
        }
    }
}

async fn refuse(mut socket: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SSL_REQUEST: u32 = 80_877_103;
    const GSSENC_REQUEST: u32 = 80_877_104;
    let answer = async {
        // The startup packet, after declining TLS or GSS encryption if asked.
        loop {
            let len = socket.read_u32().await? as usize;
            let code = socket.read_u32().await?;
            if !(8..=10_000).contains(&len) {
                return Ok(());
            }
            let mut rest = vec![0; len - 8];
            socket.read_exact(&mut rest).await?;
            if code == SSL_REQUEST || code == GSSENC_REQUEST {
                socket.write_all(b"N").await?;
                continue;
            }
            break;
        }
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "57P03"),
            (
                b'M',
                "the database system is starting up: this node has not joined a cluster yet (run `shardforge init`)",
            ),
        ] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(&fields);
        socket.write_all(&message).await?;
        socket.shutdown().await
    };
    let _: std::io::Result<()> = tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .unwrap_or(Ok(()));
}
