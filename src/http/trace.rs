//! Trace ids: one per request, taken from `X-Request-Id` or `traceparent` when the caller sends
//! one, generated otherwise; echoed back as `X-Request-Id`, attached to every log line of the
//! request, to error bodies and to dataset events.
use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

fn from_headers(req: &Request) -> Option<String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c))
    };
    if let Some(id) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        if valid(id) {
            return Some(id.to_owned());
        }
    }
    // W3C traceparent: version-traceid-parentid-flags; the trace id is 32 hex digits, not all zero.
    let tp = req.headers().get("traceparent")?.to_str().ok()?;
    let trace = tp.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|c| c.is_ascii_hexdigit()) && trace != "0".repeat(32))
        .then(|| trace.to_ascii_lowercase())
}

/// Assigns the trace id, records request metrics and logs one line per request.
pub async fn layer(req: Request, next: Next) -> Response {
    let trace_id = from_headers(&req).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!("request", trace_id = %trace_id, method = %method, path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut res =
        crate::telemetry::with_trace_id(trace_id.clone(), next.run(req).instrument(span.clone()))
            .await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    // Routing happens inside this layer: `remember_route` hands the matched route back out.
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    span.in_scope(|| {
        tracing::info!(status, route = %route, latency_ms = elapsed.as_secs_f64() * 1000.0, "handled");
    });
    crate::http::metrics::record_request(method.as_str(), &route, status, elapsed);
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// Route-level middleware: copies the matched route into the response for [`layer`]'s metrics.
pub async fn remember_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(m) = matched {
        res.extensions_mut().insert(m);
    }
    res
}
