//! Quotas: a tenant's limits on logical bytes and live objects, over all its envs and/or per
//! env. Presign, upload and create ask [`admit`] before anything is written; crossing 80% or 95%
//! of a limit logs a warning and counts `cairn_quota_warnings_total`.
//!
//! Admission reads the counters outside the writing transaction, so uploads admitted at the same
//! moment can together pass a limit by what they were admitted with; the next one is refused.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{quota, usage};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{auth::Scope, error::ApiError};

/// The shares of a limit at which Cairn warns.
pub const WARN_AT: [u32; 2] = [80, 95];

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

/// One limit checked against usage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    /// `None`: the tenant's total.
    env: Option<String>,
    measure: &'static str,
    used: i64,
    adding: i64,
    limit: i64,
}

impl Check {
    fn exceeded(&self) -> bool {
        self.used.saturating_add(self.adding) > self.limit
    }

    /// The highest warning share that adding crosses, if any.
    fn crossed(&self) -> Option<u32> {
        if self.limit <= 0 || self.adding <= 0 {
            return None;
        }
        let before = self.used;
        let after = self.used.saturating_add(self.adding);
        WARN_AT.into_iter().rev().find(|pct| {
            // The first whole unit at or past the share (limit > 0).
            let at = (i128::from(self.limit) * i128::from(*pct) + 99) / 100;
            i128::from(before) < at && i128::from(after) >= at
        })
    }

    fn scope_name(&self, tenant: &str) -> String {
        match &self.env {
            None => format!("tenant `{tenant}`"),
            Some(e) => format!("tenant `{tenant}` in env `{e}`"),
        }
    }
}

/// Refuses (403 `quota_exceeded`, with usage and limit) a new item of `bytes` that would pass
/// one of the scope's limits; warns when it crosses 80% or 95% of one.
pub async fn admit<C: ConnectionTrait>(db: &C, scope: &Scope, bytes: i64) -> Result<(), ApiError> {
    check(db, scope, bytes, true).await
}

/// [`admit`] again for an item admitted at create whose bytes now arrive: refuses what no
/// longer fits, without warning twice.
pub async fn still_fits<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    bytes: i64,
) -> Result<(), ApiError> {
    check(db, scope, bytes, false).await
}

async fn check<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    bytes: i64,
    warn: bool,
) -> Result<(), ApiError> {
    let tenant = scope.tenant.as_str();
    let env = scope.env.as_str();
    let limits = quota::Entity::find()
        .filter(quota::Column::TenantId.eq(tenant))
        .filter(quota::Column::Env.is_in([quota::ALL_ENVS, env]))
        .all(db)
        .await?;
    if limits.is_empty() {
        return Ok(());
    }
    let rows = usage::Entity::find()
        .filter(usage::Column::TenantId.eq(tenant))
        .all(db)
        .await?;
    let mut checks = Vec::new();
    for l in &limits {
        let (env_name, (objects, logical)) = if l.env == quota::ALL_ENVS {
            (None, totals(rows.iter()))
        } else {
            (
                Some(l.env.clone()),
                totals(rows.iter().filter(|u| u.env == env)),
            )
        };
        if let Some(max) = l.max_bytes {
            checks.push(Check {
                env: env_name.clone(),
                measure: "bytes",
                used: logical,
                adding: bytes,
                limit: max,
            });
        }
        if let Some(max) = l.max_objects {
            checks.push(Check {
                env: env_name,
                measure: "objects",
                used: objects,
                adding: 1,
                limit: max,
            });
        }
    }
    if let Some(c) = checks.iter().find(|c| c.exceeded()) {
        metrics::counter!("cairn_quota_refusals_total", "tenant" => tenant.to_owned()).increment(1);
        tracing::warn!(
            tenant.id = tenant,
            env,
            measure = c.measure,
            used = c.used,
            adding = c.adding,
            limit = c.limit,
            "quota exceeded; refused"
        );
        let unit = if c.measure == "bytes" {
            " bytes"
        } else {
            " objects"
        };
        return Err(ApiError::forbidden_code(
            "quota_exceeded",
            format!(
                "{} uses {}{unit} of its {}{unit} quota; this item needs {} more",
                c.scope_name(tenant),
                c.used,
                c.limit,
                c.adding
            ),
        )
        .with(
            "quota",
            json!({
                "tenant_id": tenant,
                "env": c.env,
                "measure": c.measure,
                "used": c.used,
                "requested": c.adding,
                "limit": c.limit,
            }),
        ));
    }
    for c in checks.iter().filter(|_| warn) {
        if let Some(pct) = c.crossed() {
            metrics::counter!(
                "cairn_quota_warnings_total",
                "tenant" => tenant.to_owned(),
                "level" => pct.to_string()
            )
            .increment(1);
            tracing::warn!(
                tenant.id = tenant,
                env = c.env.as_deref().unwrap_or("*"),
                measure = c.measure,
                used = c.used + c.adding,
                limit = c.limit,
                level = pct,
                "quota {pct}% reached"
            );
        }
    }
    Ok(())
}

/// Objects and logical bytes of some usage rows.
fn totals<'a>(rows: impl Iterator<Item = &'a usage::Model>) -> (i64, i64) {
    rows.fold((0, 0), |(o, b), u| (o + u.objects, b + u.logical_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(used: i64, adding: i64, limit: i64) -> Check {
        Check {
            env: None,
            measure: "bytes",
            used,
            adding,
            limit,
        }
    }

    #[test]
    fn warnings_fire_once_when_a_share_is_crossed() {
        assert_eq!(check(0, 79, 100).crossed(), None);
        assert_eq!(check(0, 80, 100).crossed(), Some(80));
        assert_eq!(check(80, 5, 100).crossed(), None);
        assert_eq!(check(85, 10, 100).crossed(), Some(95));
        assert_eq!(check(10, 90, 100).crossed(), Some(95));
        assert_eq!(check(95, 5, 100).crossed(), None);
        assert!(!check(90, 10, 100).exceeded());
        assert!(check(90, 11, 100).exceeded());
    }

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
