//! Downloads Cairn serves itself (`GET /o/<key>`, `/cdn/<key>` and `GET /artifacts/{id}/content`
//! on the local store), counted as they go out: a response's body is wrapped so that every chunk
//! handed to the connection adds its bytes to the tenant+env the object key names (DESIGN §3),
//! in memory ([`crate::usage::buffer`]). A `Range` response counts its range; a download the
//! client aborts counts what was handed out before it stopped (at most one 256 KiB read more than
//! the client received); a `HEAD`, a `304` or a `416` counts nothing, as no body goes out. A
//! redirect (S3 behind `/cdn/` or `GET /artifacts/{id}/content`) is not bytes Cairn serves.
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use http_body::Frame;

use crate::{
    app::App, domain::ObjectKey, metering::cdn_log::attribute_key, usage::buffer::UsageBuffer,
};

/// `res`, serving the object at `key`, with its body counted as served to the key's tenant+env.
/// Answers without bytes, and keys that name no tenant, pass unchanged.
pub fn metered(app: &App, key: &ObjectKey, res: Response) -> Response {
    if !matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return res;
    }
    let Some((tenant, env)) = attribute_key(key.as_str(), &app.config.envs) else {
        return res;
    };
    let buffer = app.usage_buffer.clone();
    res.map(|inner| {
        Body::new(Counted {
            inner,
            buffer,
            tenant,
            env,
            started: false,
        })
    })
}

/// A response body that counts what it yields.
struct Counted {
    inner: Body,
    buffer: Arc<UsageBuffer>,
    tenant: String,
    env: String,
    /// Whether this response was counted as a download yet.
    started: bool,
}

impl Counted {
    fn count(&mut self, bytes: u64) {
        let first = !self.started;
        self.started = true;
        self.buffer
            .served(&self.tenant, &self.env, first, bytes, Utc::now());
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            // Counted before the connection has the chunk: a client never sees bytes that are
            // not counted yet.
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref().filter(|d| !d.is_empty()) {
                    self.count(data.len() as u64);
                }
            }
            // An empty object, served whole: a download of no bytes.
            None if !self.started => self.count(0),
            _ => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
