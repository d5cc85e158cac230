//! `/healthz` (the process is up), `/readyz` (catalog and object store answer), `/metrics`.
//! None needs a bearer JWT, so none says more than a stranger may know: `/readyz` answers `ok`
//! or `unavailable` per dependency (the reasons go to the log), and `/metrics` shows series
//! labelled with a tenant only to callers holding `CAIRN_METRICS_TOKEN`.
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::app::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let catalog = app.db.ping().await.map_err(|e| e.to_string());
    let storage = app.store.check_ready().await.map_err(|e| e.to_string());
    let word = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = json!({
        "status": if catalog.is_ok() && storage.is_ok() { "ready" } else { "unavailable" },
        "catalog": word(&catalog),
        "storage": word(&storage),
    });
    if catalog.is_ok() && storage.is_ok() {
        return (StatusCode::OK, Json(body)).into_response();
    }
    tracing::warn!(
        catalog = catalog.err().as_deref().unwrap_or("ok"),
        storage = storage.err().as_deref().unwrap_or("ok"),
        "not ready"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        Json(body),
    )
        .into_response()
}

pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let full = app
        .config
        .metrics_token
        .as_ref()
        .is_some_and(|t| bearer_is(&headers, t.expose()));
    let text = if full {
        // Per-tenant usage gauges are read from the counters at scrape time.
        if let Err(e) = crate::metering::refresh_gauges(&app.db).await {
            tracing::warn!(error = %e, "could not read usage counters for /metrics");
        }
        app.metrics.render()
    } else {
        without_tenants(&app.metrics.render())
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; version=0.0.4"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time.
fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Prometheus text without any series labelled `tenant`, and without the `# HELP`/`# TYPE`
/// lines of metrics left with no series.
fn without_tenants(text: &str) -> String {
    let names_tenant = |line: &str| line.contains("{tenant=\"") || line.contains(",tenant=\"");
    let mut out = String::with_capacity(text.len());
    // Comment lines wait until a series of their metric is kept.
    let mut comments: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            // `# HELP <name> ...` / `# TYPE <name> <type>`: another metric's comments begin, so
            // the waiting ones belong to a metric none of whose series was kept.
            let name = |l: &str| l.split_whitespace().nth(2).map(str::to_owned);
            if comments.last().is_some_and(|c| name(c) != name(line)) {
                comments.clear();
            }
            comments.push(line);
            continue;
        }
        if line.is_empty() || names_tenant(line) {
            continue;
        }
        for c in comments.drain(..) {
            out.push_str(c);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_series_and_their_comments_are_dropped() {
        let text = "# HELP cairn_tenant_objects objects\n\
                    # TYPE cairn_tenant_objects gauge\n\
                    cairn_tenant_objects{tenant=\"acme\"} 3\n\
                    \n\
                    # TYPE cairn_quota_warnings_total counter\n\
                    cairn_quota_warnings_total{level=\"80\",tenant=\"acme\"} 1\n\
                    # TYPE cairn_http_requests_total counter\n\
                    cairn_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 7\n\
                    # TYPE cairn_cdn_log_files_total counter\n\
                    cairn_cdn_log_files_total 2\n";
        assert_eq!(
            without_tenants(text),
            "# TYPE cairn_http_requests_total counter\n\
             cairn_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 7\n\
             # TYPE cairn_cdn_log_files_total counter\n\
             cairn_cdn_log_files_total 2\n"
        );
    }

    #[test]
    fn only_the_exact_bearer_token_counts() {
        let mut h = HeaderMap::new();
        assert!(!bearer_is(&h, "s3cret-metrics-token"));
        for (value, ok) in [
            ("Bearer s3cret-metrics-token", true),
            ("Bearer s3cret-metrics-tokem", false),
            ("Bearer s3cret-metrics-token-and-more", false),
            ("Basic s3cret-metrics-token", false),
            ("s3cret-metrics-token", false),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_is(&h, "s3cret-metrics-token"), ok, "{value}");
        }
    }
}
