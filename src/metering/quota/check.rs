//! Judging one item against a tenant's limits: the checks that apply in its env, the refusal
//! (403 `quota_exceeded` with the `quota` problem member) and the 80%/95% warnings, which an
//! admission hands back to be logged once its transaction has committed.
use std::collections::BTreeMap;

use entity::quota;
use serde_json::json;

use crate::problem::{Code, Problem};

/// The shares of a limit at which Cairn warns.
pub const WARN_AT: [u32; 2] = [80, 95];

/// The problem code of a refusal (and of an artifact the background verifier failed for one).
pub const REFUSED: Code = Code::QuotaExceeded;

/// Whether `e` is a quota refusal.
pub fn is_refusal(e: &Problem) -> bool {
    matches!(e, Problem::Quota { .. })
}

/// Objects and logical bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Amount {
    pub objects: i64,
    pub bytes: i64,
}

impl Amount {
    fn plus(self, o: Amount) -> Amount {
        Amount {
            objects: self.objects + o.objects,
            bytes: self.bytes + o.bytes,
        }
    }
}

/// What a tenant uses, per env: its live items and (for an admission) its uploads in progress.
#[derive(Debug, Clone, Default)]
pub(super) struct Usage {
    pub live: BTreeMap<String, Amount>,
    pub held: BTreeMap<String, Amount>,
}

impl Usage {
    /// Live and held amounts in `env`, or over all envs (`None`).
    fn of(&self, env: Option<&str>) -> (Amount, Amount) {
        let sum = |m: &BTreeMap<String, Amount>| {
            m.iter()
                .filter(|(e, _)| env.is_none_or(|env| env == e.as_str()))
                .fold(Amount::default(), |acc, (_, a)| acc.plus(*a))
        };
        (sum(&self.live), sum(&self.held))
    }
}

/// One limit checked against usage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    /// `None`: the tenant's total.
    env: Option<String>,
    measure: &'static str,
    /// Live plus held.
    used: i64,
    /// The part of `used` held by uploads in progress.
    held: i64,
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

/// An admission that passed, with the warnings it is due: log them with [`Admitted::warn`]
/// once the admitting transaction has committed.
#[must_use = "an admission's warnings are logged after its transaction commits"]
#[derive(Debug, Default)]
pub struct Admitted {
    tenant: String,
    crossed: Vec<(Check, u32)>,
}

impl Admitted {
    /// Logs each limit whose 80% or 95% share this admission crossed, and counts
    /// `cairn_quota_warnings_total`.
    pub fn warn(self) {
        let tenant = self.tenant.as_str();
        for (c, pct) in &self.crossed {
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
}

/// Judges an item of `bytes` (and one object) in `env` against the tenant's `limits` on its
/// total and on `env` (rows of other envs do not apply): refuses it if it would pass one, else
/// answers the warnings due.
pub(super) fn judge(
    tenant: &str,
    env: &str,
    limits: &[quota::Model],
    usage: &Usage,
    bytes: i64,
) -> Result<Admitted, Problem> {
    let mut checks = Vec::new();
    for l in limits
        .iter()
        .filter(|l| l.env == quota::ALL_ENVS || l.env == env)
    {
        let env_name = (l.env != quota::ALL_ENVS).then(|| env.to_owned());
        let (live, held) = usage.of(env_name.as_deref());
        let mut add = |measure, max: Option<i64>, live: i64, held: i64, adding| {
            if let Some(limit) = max {
                checks.push(Check {
                    env: env_name.clone(),
                    measure,
                    used: live + held,
                    held,
                    adding,
                    limit,
                });
            }
        };
        add("bytes", l.max_bytes, live.bytes, held.bytes, bytes);
        add("objects", l.max_objects, live.objects, held.objects, 1);
    }
    if let Some(c) = checks.iter().find(|c| c.exceeded()) {
        return Err(refusal(tenant, env, c));
    }
    Ok(Admitted {
        tenant: tenant.to_owned(),
        crossed: checks
            .into_iter()
            .filter_map(|c| c.crossed().map(|pct| (c, pct)))
            .collect(),
    })
}

fn refusal(tenant: &str, env: &str, c: &Check) -> Problem {
    metrics::counter!("cairn_quota_refusals_total", "tenant" => tenant.to_owned()).increment(1);
    tracing::warn!(
        tenant.id = tenant,
        env,
        measure = c.measure,
        used = c.used,
        held = c.held,
        adding = c.adding,
        limit = c.limit,
        "quota exceeded; refused"
    );
    let unit = if c.measure == "bytes" {
        " bytes"
    } else {
        " objects"
    };
    let held = if c.held > 0 {
        format!(" ({}{unit} of them held by uploads in progress)", c.held)
    } else {
        String::new()
    };
    Problem::Quota {
        detail: format!(
            "{} uses {}{unit}{held} of its {}{unit} quota; this item needs {} more",
            c.scope_name(tenant),
            c.used,
            c.limit,
            c.adding
        ),
        quota: json!({
            "tenant_id": tenant,
            "env": c.env,
            "measure": c.measure,
            "used": c.used,
            "requested": c.adding,
            "limit": c.limit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(used: i64, adding: i64, limit: i64) -> Check {
        Check {
            env: None,
            measure: "bytes",
            used,
            held: 0,
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

    fn limit(env: &str, max_bytes: Option<i64>, max_objects: Option<i64>) -> quota::Model {
        quota::Model {
            tenant_id: "t".into(),
            env: env.into(),
            max_bytes,
            max_objects,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn uploads_in_progress_count_in_their_env_and_in_the_total() {
        let a = |objects, bytes| Amount { objects, bytes };
        let usage = Usage {
            live: [("dev".into(), a(1, 300)), ("prod".into(), a(1, 500))].into(),
            held: [("dev".into(), a(1, 200))].into(),
        };
        let env_limit = [limit("dev", Some(1000), None)];
        assert!(judge("t", "dev", &env_limit, &usage, 500).is_ok());
        // The refusal's detail and its `quota` problem member.
        let refusal = |e: Problem| match e {
            Problem::Quota { detail, quota } => (detail, quota),
            other => panic!("not a quota refusal: {other}"),
        };
        let (detail, q) = refusal(judge("t", "dev", &env_limit, &usage, 501).unwrap_err());
        assert_eq!(
            (q["used"].as_i64(), q["env"].as_str()),
            (Some(500), Some("dev"))
        );
        assert!(detail.contains("200 bytes of them held"), "{}", detail);
        // prod is not limited by dev's limit; the total counts every env.
        assert!(judge("t", "prod", &env_limit, &usage, 5000).is_ok());
        let total = [limit(quota::ALL_ENVS, None, Some(3))];
        let (_, q) = refusal(judge("t", "prod", &total, &usage, 1).unwrap_err());
        assert_eq!(q["used"], 3);
    }
}
