//! Quotas: a tenant's limits on logical bytes and objects, over all its envs and/or per env,
//! as operators set them (`PUT /admin/tenants/{tenant}/quota`), and their enforcement:
//!
//! - what counts (module `hold`): live items, plus the uploads in progress, each holding its
//!   declared size and one object from presign/create until it fails, is abandoned or settles;
//! - admission: every path that adds an item (presign, create, dedup, one-shot creates) checks
//!   and writes in one transaction under the tenant's [`Hold`]; so does every settle (register,
//!   complete, streamed PUT, background verification), against live usage. [`would_admit`] and
//!   [`would_settle`] answer early, before store calls, without deciding;
//! - the answer (module `check`): a 403 `quota_exceeded` with a `quota` member, and a warning
//!   (log and `cairn_quota_warnings_total`) when an admission crosses 80% or 95% of a limit.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::quota;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

mod check;
mod hold;

pub use check::{is_refusal, Admitted, REFUSED, WARN_AT};
pub use hold::{would_admit, would_settle, Hold};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub max_bytes: Option<i64>,
    #[serde(default)]
    pub max_objects: Option<i64>,
}

impl Limits {
    fn is_none(&self) -> bool {
        self.max_bytes.is_none() && self.max_objects.is_none()
    }
}

/// A tenant's quota as the API shows and takes it: limits on its total, and per env.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantQuota {
    #[serde(default)]
    pub max_bytes: Option<i64>,
    #[serde(default)]
    pub max_objects: Option<i64>,
    #[serde(default)]
    pub envs: BTreeMap<String, Limits>,
}

impl TenantQuota {
    /// The limits on the tenant's total.
    pub fn total(&self) -> Limits {
        Limits {
            max_bytes: self.max_bytes,
            max_objects: self.max_objects,
        }
    }
}

/// Limits must be positive; envs must be configured ones.
pub fn validate(q: &TenantQuota, envs: &[String]) -> Result<(), String> {
    let total = q.total();
    let all =
        std::iter::once(("the tenant", &total)).chain(q.envs.iter().map(|(e, l)| (e.as_str(), l)));
    for (name, l) in all {
        for (what, v) in [("max_bytes", l.max_bytes), ("max_objects", l.max_objects)] {
            if v.is_some_and(|v| v < 0) {
                return Err(format!("{what} of {name} must be 0 or more"));
            }
        }
    }
    if let Some(e) = q.envs.keys().find(|e| !envs.contains(e)) {
        return Err(format!(
            "env `{e}` is not one of CAIRN_ENVS ({})",
            envs.join(",")
        ));
    }
    Ok(())
}

/// The tenant's quota (no rows: no limits).
pub async fn of<C: ConnectionTrait>(db: &C, tenant: &str) -> Result<TenantQuota, DbErr> {
    let rows = quota::Entity::find()
        .filter(quota::Column::TenantId.eq(tenant))
        .all(db)
        .await?;
    Ok(from_rows(rows).remove(tenant).unwrap_or_default())
}

/// Every tenant's quota.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<BTreeMap<String, TenantQuota>, DbErr> {
    let rows = quota::Entity::find()
        .order_by_asc(quota::Column::TenantId)
        .all(db)
        .await?;
    Ok(from_rows(rows))
}

fn from_rows(rows: Vec<quota::Model>) -> BTreeMap<String, TenantQuota> {
    let mut out: BTreeMap<String, TenantQuota> = BTreeMap::new();
    for r in rows {
        let l = Limits {
            max_bytes: r.max_bytes,
            max_objects: r.max_objects,
        };
        let q = out.entry(r.tenant_id).or_default();
        if r.env == quota::ALL_ENVS {
            q.max_bytes = l.max_bytes;
            q.max_objects = l.max_objects;
        } else {
            q.envs.insert(r.env, l);
        }
    }
    out
}

/// Replaces the tenant's quota (limits left out are removed).
pub async fn replace<C: TransactionTrait>(
    db: &C,
    tenant: &str,
    q: &TenantQuota,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    quota::Entity::delete_many()
        .filter(quota::Column::TenantId.eq(tenant))
        .exec(&txn)
        .await?;
    let total = q.total();
    let rows = std::iter::once((quota::ALL_ENVS, &total))
        .chain(q.envs.iter().map(|(e, l)| (e.as_str(), l)))
        .filter(|(_, l)| !l.is_none())
        .map(|(env, l)| quota::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            env: Set(env.to_owned()),
            max_bytes: Set(l.max_bytes),
            max_objects: Set(l.max_objects),
            updated_at: Set(now),
        })
        .collect::<Vec<_>>();
    if !rows.is_empty() {
        quota::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_limit() {
        let envs = vec!["dev".to_owned(), "prod".to_owned()];
        let mut q = TenantQuota {
            max_bytes: Some(-1),
            ..TenantQuota::default()
        };
        assert!(validate(&q, &envs)
            .unwrap_err()
            .contains("max_bytes of the tenant"));
        q.max_bytes = Some(1);
        q.envs.insert("qa".into(), Limits::default());
        assert!(validate(&q, &envs).unwrap_err().contains("`qa`"));
    }
}
