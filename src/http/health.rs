//! `/healthz` (the process is up), `/readyz` (catalog and object store answer), `/metrics`.
use axum::{
    extract::State,
    http::{header, StatusCode},
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
    let word = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "status": if catalog.is_ok() && storage.is_ok() { "ready" } else { "unavailable" },
        "catalog": word(&catalog),
        "storage": word(&storage),
    });
    if catalog.is_ok() && storage.is_ok() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        tracing::warn!(%body, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(body),
        )
            .into_response()
    }
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    // Per-tenant usage gauges are read from the counters at scrape time.
    if let Err(e) = crate::metering::refresh_gauges(&app.db).await {
        tracing::warn!(error = %e, "could not read usage counters for /metrics");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
