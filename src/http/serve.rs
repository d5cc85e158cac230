//! The connection loop: HTTP/1.1 over hyper with limits, so that what a client holds of the
//! process is bounded whatever it sends (or does not send).
//!
//! - **Connections**: at most `CAIRN_MAX_CONNECTIONS` are served at once; further clients wait in
//!   the kernel's listen backlog until one ends. [`raise_open_file_limit`] lifts the soft
//!   open-file limit to the hard one first, and the cap is lowered to what that limit allows.
//! - **Idle connections** (no request yet, or between keep-alive requests) are closed after
//!   `CAIRN_KEEPALIVE_TIMEOUT_SECS` (hyper's header-read timer, which starts whenever the
//!   connection waits for a request head).
//! - **Half-sent request heads**: once the first byte of a head has arrived, the whole head must
//!   follow within `CAIRN_HEADER_TIMEOUT_SECS`, else the connection is dropped. A watchdog per
//!   connection sees reads through [`Watched`] and request starts and ends through the service.
//! - **Slow bodies** are the business of [`super::body_timeout`], per request.
//!
//! HTTP/2 is not offered: Cairn sits behind a load balancer or is reached by HTTP/1.1 clients;
//! browsers speak HTTP/2 only over TLS, which the load balancer ends.
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::ConnectInfo, Router};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore},
    time::Instant,
};

use crate::config::ServerLimits;

/// Descriptors kept for everything that is not a client connection: the catalog's pool, files
/// being uploaded or served, the object store's and CloudFront's connections.
const RESERVED_FILES: u64 = 1024;

/// Serves `router` on `listener` until `shutdown` completes, then lets every open connection
/// finish its request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.keepalive_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out as soon as they are written, not after Nagle's delay.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = per_connection(router.clone(), peer, &activity);
        let conn = graceful.watch(http.serve_connection(io, service));
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                },
                () = stalled_head(&activity, header_timeout) => {
                    tracing::debug!(%peer, "request head not sent in time; connection closed");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors of one connection (the peer gave up) are nothing; running out of descriptors
/// is worth a log line and a pause, as in axum's own loop.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The router for one connection's requests: each carries the peer address (`ConnectInfo`, for
/// `/cdn/`'s `IpAddress` conditions) and marks the connection busy until its response is sent.
fn per_connection(
    router: Router,
    peer: SocketAddr,
    activity: &Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<Tracked>,
    Error = std::convert::Infallible,
    Future = impl Send,
> {
    let activity = activity.clone();
    let router = TowerToHyperService::new(router);
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = Busy::start(&activity);
        req.extensions_mut().insert(ConnectInfo(peer));
        let res = hyper::service::Service::call(&router, req.map(Body::new));
        async move {
            let res = res.await?;
            Ok(res.map(|inner| Tracked {
                inner,
                _busy: guard,
            }))
        }
    })
}

/// What one connection is doing, as far as the head timeout cares.
#[derive(Default)]
struct Activity {
    phase: Mutex<Phase>,
    /// Signalled when the first byte of a request head arrives.
    head_began: Notify,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request (hyper's keep-alive timer runs).
    #[default]
    Idle,
    /// Bytes of a request head arrived at this instant; the head is not complete.
    Head(Instant),
    /// This many requests are being answered.
    Busy(usize),
}

impl Activity {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if *phase == Phase::Idle {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.head_began.notify_one();
        }
    }
}

/// Holds the connection busy from a request's head until its response is sent or dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Self {
        let mut phase = activity.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle,
        };
    }
}

/// Completes when a request head has been arriving for longer than `timeout`.
async fn stalled_head(activity: &Activity, timeout: Duration) {
    loop {
        activity.head_began.notified().await;
        loop {
            let Phase::Head(began) = *activity.phase() else {
                break;
            };
            tokio::time::sleep_until(began + timeout).await;
            if *activity.phase() == Phase::Head(began) {
                return;
            }
        }
    }
}

/// A response body that keeps its connection marked busy until it is dropped.
pub struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's socket, reporting each read to the connection's [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft open-file limit to the hard one (logging both) and answers how many
/// connections the limit leaves room for beside [`RESERVED_FILES`]; `None` when unlimited or
/// unknown.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    let soft = if before.current == before.maximum {
        before.current
    } else {
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => before.maximum,
            Err(e) => {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
                before.current
            }
        }
    };
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |n| n.to_string());
    tracing::info!(
        soft_before = show(before.current),
        soft = show(soft),
        hard = show(before.maximum),
        "open-file limit"
    );
    soft.map(|n| n.saturating_sub(RESERVED_FILES).max(1))
}

/// `wanted` connections, lowered (with a warning) to what the open-file limit leaves room for.
pub fn connection_cap(wanted: usize, room: Option<u64>) -> usize {
    match room {
        Some(room) if (wanted as u64) > room => {
            tracing::warn!(
                wanted,
                allowed = room,
                "CAIRN_MAX_CONNECTIONS is above what the open-file limit allows; lowered"
            );
            room as usize
        }
        _ => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_file_limit() {
        assert_eq!(connection_cap(10_000, None), 10_000);
        assert_eq!(connection_cap(10_000, Some(50_000)), 10_000);
        assert_eq!(connection_cap(10_000, Some(3_072)), 3_072);
    }

    #[tokio::test]
    async fn a_head_is_stalled_only_while_it_is_incomplete() {
        let ms = Duration::from_millis;
        let activity = Arc::new(Activity::default());
        let watchdog = {
            let a = activity.clone();
            tokio::spawn(async move { stalled_head(&a, ms(300)).await })
        };
        // A head that completes in time, then a long response: not stalled.
        activity.bytes_arrived();
        tokio::time::sleep(ms(150)).await;
        let busy = Busy::start(&activity);
        tokio::time::sleep(ms(500)).await;
        assert!(!watchdog.is_finished());
        drop(busy);
        assert_eq!(*activity.phase(), Phase::Idle);
        tokio::time::sleep(ms(600)).await;
        assert!(!watchdog.is_finished(), "idle is not stalled");
        // The next head begins and never completes.
        activity.bytes_arrived();
        tokio::time::sleep(ms(150)).await;
        assert!(!watchdog.is_finished());
        tokio::time::sleep(ms(400)).await;
        assert!(watchdog.is_finished(), "stalled after the timeout");
    }
}
