//! The listener: every connection carries a kill switch, so a handler can drop its connection without answering
//! (the `Reset` fault, an offline master). Killing sets SO_LINGER 0, so the peer sees a TCP reset.
//!
//! With TLS, handshakes run in their own tasks (with a time limit) and finished connections are handed to axum
//! through a channel, so a client that stalls or fails its handshake never holds up the accept loop.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) enum SimListener {
    Plain(TcpListener),
    Tls {
        local: std::net::SocketAddr,
        ready: mpsc::Receiver<(KillableIo, ConnMeta)>,
        /// The task accepting TCP connections and spawning handshakes; aborted with the listener.
        acceptor: tokio::task::JoinHandle<()>,
    },
}

impl SimListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        SimListener::Plain(inner)
    }

    /// Serve TLS on `inner`: connections reach axum only after a successful handshake.
    pub(crate) fn tls(inner: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = inner.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, remote) = match inner.accept().await {
                    Ok(c) => c,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let tls = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A failed handshake (untrusted client certificate, a client refusing our certificate) just
                    // closes the connection; rustls has already sent the alert.
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let kill = Arc::new(AtomicBool::new(false));
                            let io = KillableIo { inner: Stream::Tls(Box::new(stream)), kill: kill.clone() };
                            let _ = tx.send((io, ConnMeta { remote, kill })).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(SimListener::Tls { local, ready, acceptor })
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        if let SimListener::Tls { acceptor, .. } = self {
            acceptor.abort();
        }
    }
}

/// Connection info handed to handlers: the peer and the connection's kill switch.
#[derive(Clone, Debug)]
pub(crate) struct ConnMeta {
    #[allow(dead_code)]
    pub remote: std::net::SocketAddr,
    pub kill: Arc<AtomicBool>,
}

impl ConnMeta {
    pub(crate) fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Listener for SimListener {
    type Io = KillableIo;
    type Addr = ConnMeta;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            SimListener::Plain(inner) => loop {
                match TcpListener::accept(inner).await {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        let kill = Arc::new(AtomicBool::new(false));
                        let io = KillableIo { inner: Stream::Plain(stream), kill: kill.clone() };
                        return (io, ConnMeta { remote, kill });
                    }
                    // Too many open files and the like: wait a little, like axum's own listener.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            },
            SimListener::Tls { ready, .. } => match ready.recv().await {
                Some(conn) => conn,
                // The accepting task is gone (only when the listener is being dropped): accept nothing more.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        let remote = match self {
            SimListener::Plain(inner) => inner.local_addr()?,
            SimListener::Tls { local, .. } => *local,
        };
        Ok(ConnMeta { remote, kill: Arc::new(AtomicBool::new(false)) })
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

/// Forward a poll to whichever stream is inside.
macro_rules! fwd {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.inner {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

pub(crate) struct KillableIo {
    inner: Stream,
    kill: Arc<AtomicBool>,
}

impl KillableIo {
    fn killed(&self) -> bool {
        if self.kill.load(Ordering::SeqCst) {
            let _ = self.inner.tcp().set_zero_linger();
            true
        } else {
            false
        }
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection dropped by the simulator")
}

impl AsyncRead for KillableIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        fwd!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        fwd!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        fwd!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        fwd!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        fwd!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
