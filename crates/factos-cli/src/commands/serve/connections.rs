//! Accepting and ending connections with bounds: how many at once, how
//! long a client may take to send a request's headers, and how long
//! shutdown waits for requests in flight.
//!
//! Written on hyper directly because `axum::serve` sets none of these
//! bounds: an idle connection would stay open for ever, and a graceful
//! shutdown would wait for ever for a client that sent half a request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections open at once; further clients wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, idle
    /// keep-alive connections included: then the connection is closed.
    pub header_timeout: Duration,
    /// How long shutdown waits for requests in flight before the server
    /// stops anyway.
    pub shutdown_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish for at most
/// [`Bounds::shutdown_timeout`], and returns. Whether every connection
/// ended in time is the answer.
pub async fn serve(listener: TcpListener, app: Router, bounds: Bounds, shutdown: impl Future<Output = ()>) -> bool {
    let permits = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        // Room for the JSON refusals of over-long targets and headers
        // (see `within_request_bounds`); past this, hyper refuses alone.
        .max_buf_size(1024 * 1024);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: let connections close.
                    eprintln!("warning: cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(bounds.shutdown_timeout) => false,
    }
}
