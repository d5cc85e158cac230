//! The request scope: who is calling (token), for which tenant and env (headers), with what role.
//! Checked in this order: token (401), scope headers (400 `invalid_scope`), membership (403).
use axum::{extract::FromRequestParts, http::request::Parts};

use super::{Claims, Role};
use crate::{
    app::AppState,
    domain::{Env, TenantId},
    error::ApiError,
    http::trace::current_trace_id,
};

#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant: TenantId,
    pub env: Env,
    pub user: String,
    pub role: Role,
    pub trace_id: String,
}

impl Scope {
    /// The scope of work Cairn does on its own (background verification, jobs) for the data of
    /// `tenant`/`env` that `user` created. Its events carry a fresh trace id.
    pub fn system(tenant: &str, env: &str, user: &str) -> Result<Self, crate::domain::ValueError> {
        Ok(Scope {
            tenant: TenantId::parse(tenant)?,
            env: Env::parse(env, &[env.to_owned()])?,
            user: user.to_owned(),
            role: Role::Owner,
            trace_id: uuid::Uuid::now_v7().simple().to_string(),
        })
    }

    /// Writes (presign-upload, register, create, complete, delete, legal hold) need owner or admin.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role `{}` cannot write in tenant `{}`",
                self.role.as_str(),
                self.tenant
            )))
        }
    }
}

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
                    ApiError::bad_request("invalid_scope", format!("missing {name} header"))
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

/// A caller of the operator API (`/admin`): a valid token with `operator: true`. No tenant
/// scope: operators see every tenant.
#[derive(Debug, Clone)]
pub struct Operator {
    pub user: String,
    pub trace_id: String,
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
