//! The request scope as a plain value: who is calling, for which tenant and env, with what role.
//! `http::scope` builds it from a request (token and headers); jobs build a [`Scope::system`].
use super::Role;
use crate::{
    problem::Problem,
    values::{Env, TenantId, ValueError},
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
    pub fn system(tenant: &str, env: &str, user: &str) -> Result<Self, ValueError> {
        Ok(Scope {
            tenant: TenantId::parse(tenant)?,
            env: Env::parse(env, &[env.to_owned()])?,
            user: user.to_owned(),
            role: Role::Owner,
            trace_id: uuid::Uuid::now_v7().simple().to_string(),
        })
    }

    /// Writes (presign-upload, register, create, complete, delete, legal hold) need owner or admin.
    pub fn require_write(&self) -> Result<(), Problem> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "role `{}` cannot write in tenant `{}`",
                self.role.as_str(),
                self.tenant
            )))
        }
    }
}

/// A caller of the operator API (`/admin`): a valid token with `operator: true`. No tenant
/// scope: operators see every tenant.
#[derive(Debug, Clone)]
pub struct Operator {
    pub user: String,
    pub trace_id: String,
}
