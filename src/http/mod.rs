//! The HTTP surface: one module per resource, assembled here.
use axum::{
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
    Router,
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{app::AppState, error::ApiError};

pub mod health;
pub mod json;
pub mod metrics;
pub mod objects;
pub mod range;
pub mod raw;
pub mod trace;

/// JSON request bodies are small; uploads go through `/o/` or presigned URLs.
const JSON_BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let raw = Router::new()
        .route("/presign-upload", post(raw::presign_upload))
        .route("/register", post(raw::register))
        .route("/presign-download", post(raw::presign_download))
        .route("/{asset_id}", get(raw::get));
    let mut app = Router::new()
        .nest("/storage/raw", raw.clone())
        .nest("/nexus/raw", raw)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    if state.local.is_some() {
        // Uploads stream with their own size checks; the JSON limit does not apply.
        app = app.merge(
            Router::new()
                .route("/o/{*key}", get(objects::get).put(objects::put))
                .route("/o", post(objects::post))
                .layer(DefaultBodyLimit::disable()),
        );
    }
    app.fallback(|| async { ApiError::not_found() })
        .route_layer(middleware::from_fn(trace::remember_route))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("handler panicked"))
        }))
        .layer(middleware::from_fn(trace::layer))
        .with_state(state)
}
