//! The listener: every connection carries a kill switch, so a handler can drop its connection without answering
//! (the `Reset` fault, an offline master). Killing sets SO_LINGER 0, so the peer sees a TCP reset.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub(crate) struct SimListener {
    inner: TcpListener,
}

impl SimListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        SimListener { inner }
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
        loop {
            match self.inner.accept().await {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    let io = KillableIo { inner: stream, kill: kill.clone() };
                    return (io, ConnMeta { remote, kill });
                }
                // Too many open files and the like: wait a little, like axum's own listener.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnMeta { remote: self.inner.local_addr()?, kill: Arc::new(AtomicBool::new(false)) })
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) struct KillableIo {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableIo {
    fn killed(&self) -> bool {
        if self.kill.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
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
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
