//! Retention: how long each tenant keeps its items. A tenant's rules name an env or `*` and a kind
//! (an artifact kind, `raw` for raw assets) or `*`; the most specific rule that matches an item
//! wins, then `CAIRN_RETENTION_DAYS`. A rule with no days keeps forever.
//!
//! Audit artifacts are kept unless a rule names `audit` itself: neither `*` rules, nor the
//! default, nor `expires_at` remove them. Legal hold beats every rule.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::retention_policy::{self, ANY};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{media::Kind, TenantId};

/// The kind name raw assets have in retention rules.
pub const RAW: &str = "raw";
/// Most rules one tenant may have.
pub const MAX_RULES: usize = 64;
/// Longest retention a rule may set.
pub const MAX_DAYS: u32 = 36_500;

/// One rule as the API takes and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An env of `CAIRN_ENVS`; absent: every env.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// An artifact kind or `raw`; absent: every kind but audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Days to keep an item after its creation; `null`: keep forever.
    pub days: Option<u32>,
}

/// Why a set of rules was refused (400 `invalid_retention`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

/// Checks a tenant's rules against the configured envs and the known kinds.
pub fn validate(rules: &[Rule], envs: &[String]) -> Result<(), RuleError> {
    if rules.len() > MAX_RULES {
        return Err(RuleError(format!("at most {MAX_RULES} rules per tenant")));
    }
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if let Some(e) = &r.env {
            if !envs.iter().any(|x| x == e) {
                return Err(RuleError(format!(
                    "env `{e}` is not one of {}",
                    envs.join(", ")
                )));
            }
        }
        if let Some(k) = &r.kind {
            if k != RAW && Kind::parse(k).is_err() {
                return Err(RuleError(format!(
                    "kind `{k}` is not an artifact kind (preview, replay, audit, image, video, audio, bundle) or `raw`"
                )));
            }
        }
        if let Some(d) = r.days {
            if d == 0 || d > MAX_DAYS {
                return Err(RuleError(format!(
                    "days must be between 1 and {MAX_DAYS}, or null to keep forever"
                )));
            }
        }
        if !seen.insert((r.env.clone(), r.kind.clone())) {
            return Err(RuleError(format!(
                "two rules for env `{}` and kind `{}`",
                r.env.as_deref().unwrap_or(ANY),
                r.kind.as_deref().unwrap_or(ANY)
            )));
        }
    }
    Ok(())
}

/// Replaces the tenant's rules (an empty list removes them all) in one transaction.
pub async fn replace<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    tenant: &TenantId,
    rules: &[Rule],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    retention_policy::Entity::delete_many()
        .filter(retention_policy::Column::TenantId.eq(tenant.as_str()))
        .exec(&txn)
        .await?;
    if !rules.is_empty() {
        let rows = rules.iter().map(|r| retention_policy::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.to_string()),
            env: Set(r.env.clone().unwrap_or_else(|| ANY.into())),
            kind: Set(r.kind.clone().unwrap_or_else(|| ANY.into())),
            days: Set(r.days.map(|d| d as i32)),
            updated_at: Set(now),
        });
        retention_policy::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await
}

/// The tenant's rules, most general first.
pub async fn rules_of<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<Vec<Rule>, DbErr> {
    let rows = retention_policy::Entity::find()
        .filter(retention_policy::Column::TenantId.eq(tenant.as_str()))
        .order_by_asc(retention_policy::Column::Env)
        .order_by_asc(retention_policy::Column::Kind)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(rule_of).collect())
}

fn rule_of(r: retention_policy::Model) -> Rule {
    let named = |v: String| (v != ANY).then_some(v);
    Rule {
        env: named(r.env),
        kind: named(r.kind),
        days: r.days.and_then(|d| u32::try_from(d).ok()),
    }
}

/// What happens to an item under the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Soft-delete it: `expires_at` passed.
    Expired,
    /// Soft-delete it: older than its retention.
    OutOfRetention,
}

/// The facts of an item the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub tenant: &'a str,
    pub env: &'a str,
    /// An artifact kind, or [`RAW`].
    pub kind: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

/// Every tenant's rules plus the configured default, loaded once per sweep.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// (tenant, env or `*`, kind or `*`) → days (`None`: keep forever).
    rules: HashMap<(String, String, String), Option<u32>>,
    default_days: Option<u32>,
}

impl Retention {
    pub async fn load<C: ConnectionTrait>(
        db: &C,
        default_days: Option<u32>,
    ) -> Result<Self, DbErr> {
        let rules = retention_policy::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|r| {
                let days = r.days.and_then(|d| u32::try_from(d).ok());
                ((r.tenant_id, r.env, r.kind), days)
            })
            .collect();
        Ok(Self {
            rules,
            default_days,
        })
    }

    #[cfg(test)]
    fn new(rules: &[(String, Rule)], default_days: Option<u32>) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|(t, r)| {
                    let env = r.env.clone().unwrap_or_else(|| ANY.into());
                    let kind = r.kind.clone().unwrap_or_else(|| ANY.into());
                    ((t.clone(), env, kind), r.days)
                })
                .collect(),
            default_days,
        }
    }

    /// The retention that applies to an item of `kind` (`raw` for raw assets): `None` when no
    /// rule applies (so the item is kept), `Some(None)` when a rule keeps it forever.
    /// Precedence: env+kind, kind, env, tenant, default. Audit only matches rules naming it.
    pub fn rule_for(&self, tenant: &str, env: &str, kind: &str) -> Option<Option<u32>> {
        let get = |e: &str, k: &str| {
            self.rules
                .get(&(tenant.to_owned(), e.to_owned(), k.to_owned()))
                .copied()
        };
        let specific = get(env, kind).or_else(|| get(ANY, kind));
        if kind == Kind::Audit.as_str() {
            return specific;
        }
        specific
            .or_else(|| get(env, ANY))
            .or_else(|| get(ANY, ANY))
            .or(self.default_days.map(Some))
    }

    /// The shortest retention of any rule, or of the default: nothing younger can be out of
    /// retention, which bounds the sweep's scan.
    pub fn shortest_days(&self) -> Option<u32> {
        self.rules
            .values()
            .flatten()
            .copied()
            .chain(self.default_days)
            .min()
    }

    /// Whether any rule could remove raw assets.
    pub fn covers_raw(&self) -> bool {
        self.default_days.is_some()
            || self
                .rules
                .iter()
                .any(|((_, _, k), d)| d.is_some() && (k == ANY || k == RAW))
    }

    /// The verdict on an item; `legal_hold` wins over everything.
    pub fn judge(&self, item: &Item<'_>, now: DateTime<Utc>) -> Verdict {
        if item.legal_hold {
            return Verdict::Keep;
        }
        let rule = self.rule_for(item.tenant, item.env, item.kind);
        // An audit artifact is removable only under a rule that names audit.
        if item.kind == Kind::Audit.as_str() && rule.is_none() {
            return Verdict::Keep;
        }
        if item.expires_at.is_some_and(|t| t <= now) {
            return Verdict::Expired;
        }
        match rule.flatten() {
            Some(days) if item.created_at + Duration::days(i64::from(days)) <= now => {
                Verdict::OutOfRetention
            }
            _ => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(env: Option<&str>, kind: Option<&str>, days: Option<u32>) -> Rule {
        Rule {
            env: env.map(Into::into),
            kind: kind.map(Into::into),
            days,
        }
    }

    fn item(
        kind: &str,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        legal_hold: bool,
    ) -> Item<'_> {
        Item {
            tenant: "acme",
            env: "dev",
            kind,
            created_at,
            expires_at,
            legal_hold,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let r = Retention::new(
            &[
                ("acme".into(), rule(None, None, Some(30))),
                ("acme".into(), rule(Some("dev"), None, Some(7))),
                ("acme".into(), rule(None, Some("video"), Some(90))),
                ("acme".into(), rule(Some("dev"), Some("video"), Some(3))),
                ("acme".into(), rule(None, Some("image"), None)),
            ],
            Some(365),
        );
        assert_eq!(r.rule_for("acme", "prod", "bundle"), Some(Some(30)));
        assert_eq!(r.rule_for("acme", "dev", "bundle"), Some(Some(7)));
        assert_eq!(r.rule_for("acme", "prod", "video"), Some(Some(90)));
        assert_eq!(r.rule_for("acme", "dev", "video"), Some(Some(3)));
        assert_eq!(r.rule_for("acme", "dev", "image"), Some(None));
        assert_eq!(r.rule_for("other", "dev", "image"), Some(Some(365)));
        assert_eq!(r.shortest_days(), Some(3));
    }

    #[test]
    fn audit_needs_a_rule_naming_it_and_legal_hold_beats_all() {
        let now = Utc::now();
        let old = now - Duration::days(100);
        let past = Some(now - Duration::days(1));
        let wide = Retention::new(&[("acme".into(), rule(None, None, Some(1)))], Some(1));
        assert_eq!(
            wide.judge(&item("audit", old, past, false), now),
            Verdict::Keep
        );
        assert_eq!(
            wide.judge(&item("image", old, None, false), now),
            Verdict::OutOfRetention
        );
        assert_eq!(
            wide.judge(&item("image", old, past, true), now),
            Verdict::Keep
        );
        let named = Retention::new(
            &[("acme".into(), rule(None, Some("audit"), Some(30)))],
            None,
        );
        assert_eq!(
            named.judge(&item("audit", old, None, false), now),
            Verdict::OutOfRetention
        );
        assert_eq!(
            named.judge(&item("audit", now, past, false), now),
            Verdict::Expired
        );
        assert_eq!(
            named.judge(&item("audit", old, past, true), now),
            Verdict::Keep
        );
        // Without any rule, only expires_at removes an item.
        let none = Retention::default();
        assert_eq!(
            none.judge(&item("image", old, None, false), now),
            Verdict::Keep
        );
        assert_eq!(
            none.judge(&item("image", old, past, false), now),
            Verdict::Expired
        );
        assert!(!none.covers_raw());
    }

    #[test]
    fn rules_are_validated() {
        let envs = vec!["dev".to_owned(), "prod".to_owned()];
        assert!(validate(&[rule(Some("dev"), Some("raw"), Some(5))], &envs).is_ok());
        for bad in [
            vec![rule(Some("qa"), None, Some(5))],
            vec![rule(None, Some("movie"), Some(5))],
            vec![rule(None, None, Some(0))],
            vec![rule(None, None, Some(MAX_DAYS + 1))],
            vec![rule(None, None, Some(5)), rule(None, None, None)],
        ] {
            assert!(validate(&bad, &envs).is_err(), "{bad:?}");
        }
    }
}
