//! One client connection's message loop, in place of pgwire's
//! `process_socket`: messages come from a bounded [`FrameReader`] and go
//! to pgwire's dispatcher and ShardForge's handlers one at a time.
//!
//! The loop owns what pgwire's does (the startup timeout, declining TLS,
//! errors that wait for Sync, Terminate) and adds what pgwire's lacks: a
//! message is framed and checked before pgwire decodes it, so no size a
//! client writes reaches an allocation unchecked (see [`super::frames`]),
//! and answers are held and sent together when the loop next waits for the
//! client (see [`super::corked`]).

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use pgwire::api::{ClientInfo, DefaultClient, NoopHandler, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::SslResponse;
use pgwire::messages::{DecodeContext, PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{process_error, process_message, PgWireMessageServerCodec};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::cancel::Sessions;
use super::corked::Corked;
use super::errors::{to_pgwire, to_pgwire_fatal};
use super::frames::{Bad, Frame, FrameReader};
use super::handler::{Connection, Prepared};
use crate::error::Error;

/// How long a client may take to send its startup packet, PostgreSQL's
/// `authentication_timeout` default.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

type Socket = Framed<Corked<TcpStream>, PgWireMessageServerCodec<Prepared>>;

/// Serves one client until it leaves, breaks the protocol, or its startup
/// takes longer than [`STARTUP_TIMEOUT`].
pub async fn serve_connection(tcp: TcpStream, handlers: Arc<Connection>, sessions: &Sessions) {
    let Ok(peer) = tcp.peer_addr() else { return };
    let mut socket: Socket = Framed::new(
        Corked::new(tcp),
        PgWireMessageServerCodec::new(DefaultClient::new(peer, false)),
    );
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    let startup_deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    let mut frames = FrameReader::default();
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        // Bytes are read straight from the stream: the Framed is used only
        // to write, and for the per-connection state pgwire keeps in it.
        let next = if starting {
            match tokio::time::timeout_at(startup_deadline, frames.next(socket.get_mut())).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            frames.next(socket.get_mut()).await
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(Bad::Closed) => break,
            Err(Bad::Fatal(error)) => {
                let _ = process_error(&mut socket, to_pgwire_fatal(&error), false).await;
                break;
            }
            Err(Bad::Message { error, extended }) => {
                let error = to_pgwire(&error);
                if process_error(&mut socket, error, extended).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let message = match frame {
            Frame::EncryptionRequest => {
                let refuse = PgWireBackendMessage::SslResponse(SslResponse::Refuse);
                if socket.send(refuse).await.is_err() {
                    break;
                }
                continue;
            }
            // A cancel connection carries nothing else, and gets no answer.
            Frame::Cancel { pid, key } => {
                sessions.cancel(pid, key).await;
                break;
            }
            Frame::Message(mut bytes) => {
                let mut context = DecodeContext::new(socket.protocol_version());
                context.awaiting_frontend_ssl = false;
                context.awaiting_frontend_startup = starting;
                match PgWireFrontendMessage::decode(&mut bytes, &context) {
                    Ok(Some(message)) => message,
                    // The frame was checked whole: pgwire cannot ask for
                    // more, and a message it refuses breaks the protocol.
                    Ok(None) | Err(_) => {
                        let error = to_pgwire_fatal(&Error::input(
                            crate::error::InputError::ProtocolViolation,
                            "invalid message format",
                        ));
                        let _ = process_error(&mut socket, error, false).await;
                        break;
                    }
                }
            }
        };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let handled = process_message(
            message,
            &mut socket,
            handlers.clone(),
            handlers.clone(),
            handlers.clone(),
            handlers.clone(),
            // Cancellation is not served yet (ignored).
            Arc::new(NoopHandler),
        )
        .await;
        if let Err(error) = handled {
            let info = ErrorInfo::from(error);
            let fatal = info.is_fatal();
            let error = PgWireError::UserError(Box::new(info));
            if process_error(&mut socket, error, extended).await.is_err() || fatal {
                break;
            }
        }
    }
}
