//! The HTTP surface: one module per resource, assembled here.
use axum::{
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post, put},
    Router,
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{app::AppState, error::ApiError, problem::Code};

pub mod admin;
pub mod artifacts;
pub mod body_timeout;
pub mod cdn;
mod cors;
pub mod events;
pub mod health;
pub mod json;
pub mod metrics;
pub mod objects;
pub mod range;
pub mod raw;
pub mod scope;
pub mod serve;
pub mod served;
pub mod trace;
pub mod usage;

/// A URL lifetime a request asks for (`expires_in`): whole seconds, 1 to 7 days; `None` (not a
/// whole number) is refused like a number out of range.
pub(crate) fn expires_in(secs: Option<u64>) -> Result<u64, ApiError> {
    use crate::config::MAX_PRESIGN_TTL_SECS;
    secs.filter(|n| (1..=MAX_PRESIGN_TTL_SECS).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                Code::InvalidExpiresIn,
                format!("expires_in must be an integer from 1 to {MAX_PRESIGN_TTL_SECS} seconds"),
            )
        })
}

/// JSON request bodies are small; uploads go through `/o/` or presigned URLs.
pub(crate) const JSON_BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let raw = Router::new()
        .route("/presign-upload", post(raw::presign_upload))
        .route("/register", post(raw::register))
        .route("/presign-download", post(raw::presign_download))
        .route("/{asset_id}", get(raw::get))
        .route("/{asset_id}/events", get(events::of_raw_asset));
    let json_api = Router::new()
        .route("/artifacts/{id}/events", get(events::of_artifact))
        .route("/events", get(events::list))
        .route(
            "/admin/tenants/{tenant}/retention",
            put(admin::put_retention).get(admin::get_retention),
        )
        .route("/admin/lifecycle/run", post(admin::run_lifecycle))
        .route("/admin/lifecycle/runs", get(admin::list_runs))
        .route("/admin/jobs/runs", get(admin::list_job_runs))
        .route(
            "/admin/cdn/invalidations/requeue",
            post(admin::requeue_invalidations),
        )
        .route("/admin/usage", get(usage::usage))
        .route("/admin/usage/{tenant}", get(usage::tenant_series))
        .route(
            "/admin/tenants/{tenant}/quota",
            put(usage::put_quota).get(usage::get_quota),
        )
        .route("/admin/quotas", get(usage::quotas))
        .route("/admin/metering/run", post(usage::run_metering))
        .route("/admin", get(usage::dashboard))
        .nest("/storage/raw", raw.clone())
        .nest("/nexus/raw", raw)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    // Each artifact route carries its own body limit.
    let mut app = json_api
        .merge(artifacts::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    // Cairn's own CDN endpoint: public objects for anyone, private ones with a CloudFront grant.
    app = app.route("/cdn/{*key}", get(cdn::get));
    if state.local.is_some() {
        // Uploads stream with their own size checks; the JSON limit does not apply.
        app = app.merge(
            Router::new()
                .route("/o/{*key}", get(objects::get).put(objects::put))
                .route("/o", post(objects::post))
                .layer(DefaultBodyLimit::disable()),
        );
    }
    let mut app = app
        .fallback(|| async { ApiError::not_found() })
        .route_layer(middleware::from_fn(trace::remember_route))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("handler panicked"))
        }));
    // Every request body keeps a minimum pace (uploads above all).
    let limits = state.config.server;
    app = app.layer(middleware::from_fn(move |req, next| {
        body_timeout::layer(limits, req, next)
    }));
    // Inside the trace layer, so that refused preflights are logged with a trace id, and
    // outside everything else, so that error answers carry CORS headers too.
    if let Some(cors) = cors::layer(&state.config.cors_origins) {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn(trace::layer))
        .with_state(state)
}
