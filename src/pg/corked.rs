//! A client socket that holds the server's answers until the server is
//! about to wait for the client.
//!
//! pgwire flushes after nearly every message it sends (ParseComplete,
//! BindComplete, RowDescription, ReadyForQuery), and each flush is a
//! `writev` that wakes the client for a fragment of the answer: pgbench's
//! prepared point SELECT (Bind, Describe, Execute, Sync in one packet) cost
//! three writes and three client wake-ups per query. PostgreSQL sends the
//! answers to a pipeline in one write, at Sync. The rule here is the same
//! in effect and never later than PostgreSQL's: what the handlers write is
//! held, and sent when the connection next reads from the client (it has
//! answered everything the client sent so far), when the held bytes reach
//! [`HOLD_LIMIT`] (a long result goes out as it is produced, and memory
//! stays bounded), or when the socket is shut down.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Held bytes are sent once they reach this much; a single write this
/// large goes to the socket without being copied.
const HOLD_LIMIT: usize = 16 * 1024;

pub struct Corked<S> {
    io: S,
    held: Vec<u8>,
    /// How much of `held` the socket has taken.
    sent: usize,
}

impl<S> Corked<S> {
    pub fn new(io: S) -> Self {
        Corked {
            io,
            held: Vec::new(),
            sent: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Corked<S> {
    /// Writes everything held to the socket.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Corked<S> {
    /// Sends the held answers first: the client may be waiting for them
    /// before it writes again.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Corked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() >= HOLD_LIMIT {
            ready!(this.poll_release(cx))?;
        }
        if this.held.is_empty() && buf.len() >= HOLD_LIMIT {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// Deferred to the next read (see the module docs): a flush asked for
    /// in the middle of a pipeline's answers is what this type removes.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn answers_are_held_until_the_server_reads_and_then_sent_in_one_piece() {
        let (server, mut client) = duplex(1 << 20);
        let mut server = Corked::new(server);
        server.write_all(b"1").await.unwrap();
        server.flush().await.unwrap();
        server.write_all(b"Z").await.unwrap();
        server.flush().await.unwrap();
        let mut got = [0u8; 8];
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), client.read(&mut got));
        assert!(
            waiting.await.is_err(),
            "nothing is sent before the server reads"
        );

        client.write_all(b"Q").await.unwrap();
        let mut asked = [0u8; 1];
        server.read_exact(&mut asked).await.unwrap();
        assert_eq!(&asked, b"Q");
        let n = client.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"1Z", "both answers arrive together");
    }

    #[tokio::test]
    async fn a_long_answer_goes_out_as_it_is_written_and_shutdown_sends_the_rest() {
        let (server, mut client) = duplex(1 << 20);
        let mut server = Corked::new(server);
        let row = vec![7u8; 1000];
        for _ in 0..40 {
            server.write_all(&row).await.unwrap();
        }
        assert!(
            server.held.len() < HOLD_LIMIT + row.len(),
            "held bytes stay bounded"
        );
        server.write_all(&vec![8u8; HOLD_LIMIT * 2]).await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 40 * 1000 + HOLD_LIMIT * 2);
        assert!(got[..40_000].iter().all(|&b| b == 7));
        assert!(got[40_000..].iter().all(|&b| b == 8));
    }
}
