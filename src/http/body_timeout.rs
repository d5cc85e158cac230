//! The pace a request body must keep. Every request body is wrapped in [`Paced`]: over each
//! `CAIRN_BODY_TIMEOUT_SECS` of *waiting for the client* it must deliver at least
//! `CAIRN_BODY_MIN_RATE` bytes a second, or reading it fails with [`BodyTimedOut`], which the
//! handlers answer with 408 `body_timeout` (and the upload stores nothing: the local store removes
//! its temp file, S3 uploads are aborted). Only time spent waiting for the client counts: a
//! handler that stops reading while it writes to the store does not make the client slow.
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    middleware::Next,
    response::Response,
};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

#[cfg(test)]
use crate::storage::is_timeout;
use crate::{config::ServerLimits, storage::BodyTimedOut};

/// Middleware: paces the body of every request with the server's limits.
pub async fn layer(limits: ServerLimits, req: Request, next: Next) -> Response {
    let req = req.map(|body| Body::new(Paced::new(body, limits)));
    next.run(req).await
}

/// A request body that must keep a minimum pace (see the module doc).
pub struct Paced {
    inner: Body,
    window: Duration,
    min_bytes: u64,
    /// Time spent waiting for the client in the current window.
    waited: Duration,
    /// Bytes received in the current window.
    got: u64,
    /// When the current wait for the client began.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    pub fn new(inner: Body, limits: ServerLimits) -> Self {
        Self {
            inner,
            window: limits.body_timeout,
            min_bytes: limits
                .body_min_rate
                .saturating_mul(limits.body_timeout.as_secs()),
            waited: Duration::ZERO,
            got: 0,
            waiting_since: None,
            timer: None,
        }
    }

    fn timed_out(&self) -> axum::Error {
        axum::Error::new(BodyTimedOut {
            min_bytes: self.min_bytes,
            secs: self.window.as_secs(),
        })
    }

    /// A window of waiting is over: fine if enough arrived in it (a new window begins).
    fn window_over(&mut self) -> Result<(), axum::Error> {
        // At least one byte, whatever the rate: a body that delivers nothing is stalled.
        if self.got < self.min_bytes.max(1) {
            return Err(self.timed_out());
        }
        self.waited = Duration::ZERO;
        self.got = 0;
        Ok(())
    }
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    if let Some(data) = f.data_ref() {
                        this.got = this.got.saturating_add(data.len() as u64);
                    }
                    if this.waited >= this.window {
                        if let Err(e) = this.window_over() {
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                Poll::Ready(frame)
            }
            Poll::Pending => loop {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let deadline = since + this.window.saturating_sub(this.waited);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The whole window passed waiting for the client.
                this.waiting_since = Some(now);
                this.waited = this.window;
                if let Err(e) = this.window_over() {
                    this.waiting_since = None;
                    return Poll::Ready(Some(Err(e)));
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    use super::*;

    fn limits(window: Duration, rate: u64) -> ServerLimits {
        ServerLimits {
            body_timeout: window,
            body_min_rate: rate,
            // The rest at their defaults.
            ..crate::config::Settings::from_vars([])
                .unwrap()
                .limits
                .limits()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A body that sends `chunk` bytes every `every`, `times` times.
    fn drip(chunk: usize, every: Duration, times: usize) -> Body {
        let s = futures_util::stream::iter(0..times).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; chunk]))
        });
        Body::from_stream(s)
    }

    async fn read_all(mut body: Body) -> Result<usize, axum::Error> {
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            n += frame?.data_ref().map_or(0, |d| d.len());
        }
        Ok(n)
    }

    #[tokio::test]
    async fn a_steady_body_passes() {
        // 600 bytes every 100 ms (6 KB/s) against a 1 KiB/s minimum over 1 s windows.
        let body = drip(600, ms(100), 25);
        let n = read_all(Body::new(Paced::new(body, limits(ms(1000), 1024))))
            .await
            .unwrap();
        assert_eq!(n, 600 * 25);
    }

    #[tokio::test]
    async fn a_trickle_fails_after_one_window() {
        // A few bytes every 200 ms: under 1 KiB/s.
        let started = Instant::now();
        let body = drip(8, ms(200), 100);
        let err = read_all(Body::new(Paced::new(body, limits(ms(1000), 1024))))
            .await
            .unwrap_err();
        assert!(is_timeout(&err), "{err}");
        let took = started.elapsed();
        assert!(took >= ms(1000) && took < ms(1500), "{took:?}");
    }

    #[tokio::test]
    async fn a_stall_fails_even_without_a_rate() {
        let started = Instant::now();
        let body = drip(10, Duration::from_secs(3600), 2);
        let err = read_all(Body::new(Paced::new(body, limits(ms(500), 0))))
            .await
            .unwrap_err();
        assert!(is_timeout(&err));
        let took = started.elapsed();
        assert!(took >= ms(500) && took < ms(1000), "{took:?}");
    }

    #[tokio::test]
    async fn time_the_reader_spends_elsewhere_does_not_count() {
        // The client sends everything at once; the reader takes longer than a window between
        // frames.
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..3).map(|_| Ok(Bytes::from_static(b"abc"))).collect();
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let mut paced = Body::new(Paced::new(body, limits(ms(300), 1024)));
        let mut n = 0;
        while let Some(frame) = paced.frame().await {
            n += frame.unwrap().data_ref().map_or(0, |d| d.len());
            tokio::time::sleep(ms(500)).await;
        }
        assert_eq!(n, 9);
    }

    #[test]
    fn timeouts_are_found_through_wrappers() {
        let inner = axum::Error::new(BodyTimedOut {
            min_bytes: 1,
            secs: 1,
        });
        let outer = axum::Error::new(inner);
        assert!(is_timeout(&outer));
        let io = std::io::Error::other(outer);
        assert!(is_timeout(&io));
        assert!(!is_timeout(&std::io::Error::other("other")));
    }
}
