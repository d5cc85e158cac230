//! Reading an artifact: `GET /artifacts/{id}` (metadata with a delivery URL, `?wait=` long-poll),
//! `GET /artifacts/{id}/content` (the bytes, or a 302 to them) and `GET /artifacts/{id}/lineage`.
use std::time::Duration;

use axum::{
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use entity::artifact;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{artifact_id, ArtifactView, MAX_WAIT_SECS};
use crate::{
    app::AppState,
    auth::Scope,
    domain::artifacts::{self, LineageNode},
    error::{ApiError, ApiResult},
    http::{raw::RawAssetView, JSON_BODY_LIMIT},
    problem::Code,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/artifacts/{id}", get(get_artifact))
        .route("/artifacts/{id}/content", get(get_content))
        .route("/artifacts/{id}/lineage", get(lineage_chain))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

#[derive(Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
    expires_in: Option<String>,
    download: Option<String>,
}

/// `?download=` of the routes that deliver bytes.
#[derive(Deserialize)]
pub struct DownloadQuery {
    download: Option<String>,
}

/// `?download=true` asks for `Content-Disposition: attachment` (save, not view).
fn download_flag(v: Option<&str>) -> ApiResult<bool> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            Code::InvalidDownload,
            "download must be true or false",
        )),
    }
}

/// `?expires_in=` of the reads that hand out URLs.
#[derive(Deserialize)]
pub struct TtlQuery {
    pub(super) expires_in: Option<String>,
}

/// The lifetime `?expires_in=` asks for (whole seconds, 1 to 7 days), as a URL lifetime.
pub(super) fn ttl_of(app: &AppState, expires_in: Option<&str>) -> ApiResult<chrono::Duration> {
    let secs = expires_in
        .map(|v| crate::http::expires_in(v.parse::<u64>().ok()))
        .transpose()?;
    Ok(artifacts::url_ttl(app, secs))
}

pub async fn get_artifact(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Json<ArtifactView>> {
    let id = artifact_id(&id)?;
    let wait = match q.wait.as_deref() {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                ApiError::bad_request(
                    Code::InvalidWait,
                    format!("wait must be an integer from 0 to {MAX_WAIT_SECS} seconds"),
                )
            })?,
    };
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let attachment = download_flag(q.download.as_deref())?;
    let a = if wait == 0 {
        artifacts::get(&app, &scope, id).await?
    } else {
        artifacts::wait(&app, &scope, id, Duration::from_secs(wait)).await?
    };
    let url = artifacts::read_url(&app, &a, ttl, attachment).await?;
    Ok(Json(ArtifactView::new(a, url)))
}

/// The bytes: streamed by Cairn on the local backend (with `Range`), else a 302 to the delivery
/// URL. Shown inline where the type allows, saved with `?download=true`.
pub async fn get_content(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let attachment = download_flag(q.download.as_deref())?;
    let a = artifacts::get(&app, &scope, artifact_id(&id)?).await?;
    if a.status != artifact::STATUS_AVAILABLE {
        return Err(ApiError::conflict(
            Code::NotAvailable,
            format!("the artifact is {}", a.status),
        ));
    }
    if let (Some(local), None) = (app.local.as_deref(), &a.render_ref) {
        let key = artifacts::object_key(&app, &a).await?;
        return crate::http::objects::serve(
            local,
            &key,
            // Cairn serves it, sandboxed when active: inline unless a download was asked for.
            Some(crate::storage::content_disposition(
                &a.filename,
                crate::storage::shows_inline(&a.content_type, true, attachment),
            )),
            "private, no-cache".into(),
            &headers,
        )
        .await
        .map(|res| crate::http::served::metered(&app, &key, res));
    }
    let url = artifacts::download_url(&app, &a, attachment)
        .await?
        .ok_or_else(|| ApiError::internal("an available artifact without a URL"))?;
    // DESIGN §5: a 302 (Found), which every client follows with a GET.
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

pub async fn lineage_chain(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = artifacts::get(&app, &scope, artifact_id(&id)?).await?;
    let chain = artifacts::lineage_chain(&app, &scope, &a).await?;
    let view = ArtifactView::new(a, None);
    Ok(Json(
        json!({ "artifact": view, "derived_from": nodes(chain) }),
    ))
}

fn nodes(chain: Vec<LineageNode>) -> Vec<Value> {
    chain
        .into_iter()
        .map(|n| match n {
            LineageNode::Artifact(a, parents) => json!({
                "type": "artifact",
                "artifact": ArtifactView::new(*a, None),
                "derived_from": nodes(parents),
            }),
            LineageNode::RawAsset(r) => json!({
                "type": "raw_asset",
                "raw_asset": RawAssetView::from(*r),
            }),
            LineageNode::Missing(id) => json!({ "type": "unavailable", "id": id }),
        })
        .collect()
}
