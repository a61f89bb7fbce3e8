//! Accepted connections that acknowledge at once.
//!
//! The official client (1.2.0) does not set `TCP_NODELAY`, so it sends a
//! call's HTTP/2 frames as separate small writes and Nagle's algorithm
//! holds the second until the first is acknowledged; Linux delays that
//! acknowledgement by 40 ms. Every call would take 40 ms. The server
//! therefore re-enables `TCP_QUICKACK` after every read (the kernel clears
//! it as it sees fit), which answers each write at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A server-side connection that never delays its acknowledgements.
#[derive(Debug)]
pub(crate) struct QuickAck(pub(crate) TcpStream);

impl QuickAck {
    fn ack_at_once(&self) {
        #[cfg(target_os = "linux")]
        {
            // Best effort: without it calls are slower, not wrong.
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if polled.is_ready() {
            self.ack_at_once();
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for QuickAck {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}
