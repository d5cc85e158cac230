//! A run's artifacts: `GET /runs/{run_id}/artifacts` (the player's manifest) and `POST
//! /runs/{run_id}/cdn-cookies` (CloudFront signed cookies for its private objects).
use axum::{
    extract::{DefaultBodyLimit, Path, Query, State},
    http::header,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    read::{ttl_of, TtlQuery},
    ArtifactView,
};
use crate::{
    app::AppState,
    auth::Scope,
    domain::{artifacts, RunId},
    error::{ApiError, ApiResult},
    http::JSON_BODY_LIMIT,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{run_id}/artifacts", get(list_run))
        .route("/runs/{run_id}/cdn-cookies", post(cdn_cookies))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

#[derive(Serialize)]
pub struct Manifest {
    run_id: String,
    artifacts: Vec<ArtifactView>,
}

/// About what one item of a manifest takes in JSON (most of it its signed URL): the answer is
/// written into a buffer of that size times the items, not grown from empty.
const ITEM_JSON_BYTES: usize = 768;

/// `GET /runs/{run_id}/artifacts`: the player's manifest, every URL ready to fetch.
pub async fn list_run(
    State(app): State<AppState>,
    scope: Scope,
    Path(run_id): Path<String>,
    Query(q): Query<TtlQuery>,
) -> ApiResult<Response> {
    let run = RunId::parse(&run_id)?;
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let artifacts: Vec<ArtifactView> = artifacts::manifest(&app, &scope, &run, ttl)
        .await?
        .into_iter()
        .map(|(a, url)| ArtifactView::listed(a, &scope, run.as_str(), url))
        .collect();
    let mut body = Vec::with_capacity(64 + artifacts.len() * ITEM_JSON_BYTES);
    serde_json::to_writer(
        &mut body,
        &Manifest {
            run_id: run.to_string(),
            artifacts,
        },
    )
    .map_err(|e| ApiError::internal(format!("writing the manifest: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /runs/{run_id}/cdn-cookies`: CloudFront signed cookies for every private object of the
/// run (the manifest's policy), as `Set-Cookie` headers and in the body for non-browser players.
pub async fn cdn_cookies(
    State(app): State<AppState>,
    scope: Scope,
    Path(run_id): Path<String>,
    Query(q): Query<TtlQuery>,
) -> ApiResult<Response> {
    let run = RunId::parse(&run_id)?;
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let g = artifacts::run_grant(&app, &scope, &run, ttl).await?;
    let secure = app.cdn.base().starts_with("https://");
    let max_age = (g.expires_at - Utc::now()).num_seconds().max(0);
    let mut attrs = format!("Path={}; Max-Age={max_age}", g.path);
    if let Some(d) = app.cdn.cookie_domain() {
        attrs.push_str(&format!("; Domain={d}"));
    }
    // The player is usually on another site than the CDN: cross-site cookies need
    // `SameSite=None`, which browsers accept only with `Secure`.
    attrs.push_str(if secure {
        "; Secure; HttpOnly; SameSite=None"
    } else {
        "; HttpOnly; SameSite=Lax"
    });
    let cookies = g.grant.signed.cookies();
    let mut res = Json(json!({
        "run_id": run.to_string(),
        "resource": g.grant.signed.policy.resource,
        "expires_at": g.expires_at,
        "path": g.path,
        "cookies": cookies.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    }))
    .into_response();
    for (name, value) in cookies {
        let v = header::HeaderValue::from_str(&format!("{name}={value}; {attrs}"))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
