//! The request scope as an axum extractor: who is calling (token), for which tenant and env
//! (headers), with what role. Checked in this order: token (401), scope headers (400
//! `invalid_scope`), membership (403). The scope itself ([`Scope`], [`Operator`]) is a plain
//! value in `auth`, so the layers below HTTP take it without knowing axum.
use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    app::AppState,
    auth::{Claims, Operator, Scope},
    domain::{Env, TenantId},
    error::ApiError,
    problem::Code,
    telemetry::current_trace_id,
};

/// Verifies the bearer token of a request.
pub fn claims(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
    state
        .verifier
        .verify(token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = claims(parts, state)?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(Code::InvalidScope, format!("missing {name} header"))
                })
        };
        let tenant = TenantId::parse(header("x-tenant-id")?)?;
        let env = Env::parse(header("x-env")?, &state.config.envs)?;
        let role = *claims.tenants.get(tenant.as_str()).ok_or_else(|| {
            ApiError::forbidden(format!("the token grants no role in tenant `{tenant}`"))
        })?;
        Ok(Scope {
            tenant,
            env,
            user: claims.sub,
            role,
            trace_id: current_trace_id(),
        })
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = claims(parts, state)?;
        if !claims.operator {
            return Err(ApiError::forbidden(
                "the operator API needs a token with `operator: true`",
            ));
        }
        Ok(Operator {
            user: claims.sub,
            trace_id: current_trace_id(),
        })
    }
}
