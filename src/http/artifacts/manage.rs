//! Managing an artifact: `DELETE /artifacts/{id}` (soft delete, purged by the sweep) and `PUT
//! /artifacts/{id}/legal-hold`.
use axum::{
    extract::{DefaultBodyLimit, Path, State},
    http::StatusCode,
    routing::{delete, put},
    Json, Router,
};
use serde::Deserialize;

use super::{artifact_id, ArtifactView};
use crate::{
    app::AppState,
    auth::Scope,
    domain::artifacts,
    error::ApiResult,
    http::{json::ApiJson, JSON_BODY_LIMIT},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/artifacts/{id}", delete(delete_artifact))
        .route("/artifacts/{id}/legal-hold", put(legal_hold))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

pub async fn delete_artifact(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    scope.require_write()?;
    artifacts::delete(&app, &scope, artifact_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HoldBody {
    hold: bool,
}

pub async fn legal_hold(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<HoldBody>,
) -> ApiResult<Json<ArtifactView>> {
    scope.require_write()?;
    let a = artifacts::set_legal_hold(&app, &scope, artifact_id(&id)?, b.hold).await?;
    Ok(Json(ArtifactView::with_url(&app, a).await?))
}
