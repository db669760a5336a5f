//! One accepted connection: served by hyper, but breakable on demand.
//!
//! A pooled HTTP client only notices a dead instance if its *established* keep-alive connections
//! fail, and a "reset after the request was read" fault needs a real TCP RST, which hyper never
//! sends. So each connection keeps a second descriptor of its socket (`dup`): when a handler asks
//! for a reset, or the instance is killed, the task drops hyper's side and closes the spare with
//! `SO_LINGER 0`, which makes the kernel answer with RST. The same spare lets a handler write raw
//! bytes that are not valid HTTP. The happy path pays one `dup` per connection, nothing per
//! request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use super::handler;
use super::server::{Shared, killed};

/// How long a raw write may take before the connection is dropped anyway.
const RAW_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a handler asks the connection task to do instead of letting hyper answer.
#[derive(Debug)]
pub(crate) enum Break {
    /// Close with a TCP RST.
    Reset,
    /// Write these bytes verbatim, then close.
    RawThenClose(Bytes),
}

/// The handler's side of the connection: a one-shot request to break it.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    pending: Mutex<Option<Break>>,
    notify: Notify,
}

impl ConnControl {
    /// Ask the connection task to break the connection (the first request wins).
    pub(crate) fn trigger(&self, action: Break) {
        let mut slot = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(action);
        }
        drop(slot);
        self.notify.notify_one();
    }

    async fn triggered(&self) -> Break {
        loop {
            self.notify.notified().await;
            if let Some(action) = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                return action;
            }
        }
    }
}

/// Serve one connection until the client leaves, a handler breaks it, or the instance is killed.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>, mut kill: watch::Receiver<bool>) {
    let _open = shared.stats.connection_opened();
    let _ = stream.set_nodelay(true);
    let Ok((stream, spare)) = with_spare(stream) else {
        return;
    };
    let control = Arc::new(ConnControl::default());
    let service = {
        let control = Arc::clone(&control);
        service_fn(move |req| handler::handle(Arc::clone(&shared), Arc::clone(&control), req))
    };
    let mut conn = Box::pin(http1::Builder::new().serve_connection(TokioIo::new(stream), service));

    let action = tokio::select! {
        _ = &mut conn => None,
        action = control.triggered() => Some(action),
        // A dropped sender (instance handle gone) counts as a kill.
        _ = killed(&mut kill) => Some(Break::Reset),
    };
    // Close hyper's descriptor first; the socket stays open through `spare`.
    drop(conn);
    match action {
        None => {}
        Some(Break::Reset) => reset(spare),
        Some(Break::RawThenClose(bytes)) => raw_then_close(spare, bytes).await,
    }
}

/// Split a stream into the one hyper owns and a spare descriptor of the same socket.
fn with_spare(stream: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std_stream = stream.into_std()?;
    let spare = std_stream.try_clone()?;
    Ok((TcpStream::from_std(std_stream)?, spare))
}

/// Close the socket with an RST: `SO_LINGER 0` on the last descriptor, then close it.
fn reset(spare: std::net::TcpStream) {
    match TcpStream::from_std(spare) {
        Ok(stream) => {
            let _ = stream.set_zero_linger();
        }
        Err(_) => {
            // Not registrable with the reactor: a plain close (FIN) is the best left.
        }
    }
}

async fn raw_then_close(spare: std::net::TcpStream, bytes: Bytes) {
    if let Ok(mut stream) = TcpStream::from_std(spare) {
        let _ = tokio::time::timeout(RAW_WRITE_TIMEOUT, async {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}
