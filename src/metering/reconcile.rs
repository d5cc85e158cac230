//! Reconcile: recounts the stock counters from the catalog (live items, stored blobs) and
//! compares them with `usage`. With `fix`, the counters are set to the recount.
//!
//! A fix locks the counter rows first (Postgres: `FOR UPDATE`; SQLite runs one writer): every
//! change updates its counters last in its transaction, so a change committed before the lock is
//! in both the recount and the counter, and one still open waits and adds its delta after.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{artifact, blob, raw_asset, usage};
use sea_orm::{
    sea_query::{Alias, Expr},
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde::Serialize;

use crate::{
    usage::{counters, kind_bytes_of, kind_column, record, slot, Delta, KINDS, STOCK},
    values::media::Kind,
};

/// One counter that differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Drift {
    pub tenant_id: String,
    pub env: String,
    pub counter: String,
    pub counted: i64,
    pub actual: i64,
}

/// The stock counters of one tenant+env.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    pub objects: i64,
    pub logical_bytes: i64,
    pub physical_bytes: i64,
    pub kind_bytes: [i64; 8],
}

/// `$t { field: $u.field, .. }` for every stock counter, kinds aside.
macro_rules! stock {
    ($t:ident { $($rest:tt)* } from $u:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $t { $($s: $u.$s,)* $($rest)* }
    };
}

/// `[$u.field, ..]` of the stock counters, kinds aside, in [`STOCK`] order.
macro_rules! stock_values {
    ($u:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        [$($u.$s),*]
    };
}

impl Stock {
    fn of(u: &usage::Model) -> Self {
        counters!(stock!(Stock { kind_bytes: kind_bytes_of(u) } from u))
    }

    /// Every stock counter, by its column name.
    fn fields(&self) -> Vec<(String, i64)> {
        let s = self;
        let mut v: Vec<(String, i64)> = STOCK
            .into_iter()
            .map(String::from)
            .zip(counters!(stock_values!(s)))
            .collect();
        for ((_, _, name), b) in KINDS.iter().zip(self.kind_bytes) {
            v.push((kind_column(name), b));
        }
        v
    }

    /// What turns `self` into `to`.
    fn delta_to(&self, to: &Stock) -> Delta {
        macro_rules! minus {
            ($to:ident, $from:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
                Delta { $($s: $to.$s - $from.$s,)* ..Delta::default() }
            };
        }
        let from = self;
        let mut d = counters!(minus!(to, from));
        for (i, slot) in d.kind_bytes.iter_mut().enumerate() {
            *slot = to.kind_bytes[i] - from.kind_bytes[i];
        }
        d
    }
}

type Key = (String, String);

/// The stock counters as the catalog says they should be, per tenant+env.
pub async fn recount<C: ConnectionTrait>(db: &C) -> Result<BTreeMap<Key, Stock>, DbErr> {
    let mut out: BTreeMap<Key, Stock> = BTreeMap::new();
    let items: Vec<(String, String, String, i64, i64)> = artifact::Entity::find()
        .select_only()
        .column(artifact::Column::TenantId)
        .column(artifact::Column::Env)
        .column(artifact::Column::Kind)
        .column_as(Expr::col(artifact::Column::ArtifactId).count(), "n")
        .column_as(sum(artifact::Column::SizeBytes), "bytes")
        .filter(artifact::Column::Status.eq(artifact::STATUS_AVAILABLE))
        .group_by(artifact::Column::TenantId)
        .group_by(artifact::Column::Env)
        .group_by(artifact::Column::Kind)
        .into_tuple()
        .all(db)
        .await?;
    for (t, e, kind, n, bytes) in items {
        let s = out.entry((t, e)).or_default();
        s.objects += n;
        s.logical_bytes += bytes;
        s.kind_bytes[slot(Kind::parse(&kind).ok())] += bytes;
    }
    let raw: Vec<(String, String, i64, i64)> = raw_asset::Entity::find()
        .select_only()
        .column(raw_asset::Column::TenantId)
        .column(raw_asset::Column::Env)
        .column_as(Expr::col(raw_asset::Column::AssetId).count(), "n")
        .column_as(sum(raw_asset::Column::SizeBytes), "bytes")
        .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_REGISTERED))
        .group_by(raw_asset::Column::TenantId)
        .group_by(raw_asset::Column::Env)
        .into_tuple()
        .all(db)
        .await?;
    for (t, e, n, bytes) in raw {
        let s = out.entry((t, e)).or_default();
        s.objects += n;
        s.logical_bytes += bytes;
        s.kind_bytes[slot(None)] += bytes;
    }
    let stored: Vec<(String, String, i64)> = blob::Entity::find()
        .select_only()
        .column(blob::Column::TenantId)
        .column(blob::Column::Env)
        .column_as(sum(blob::Column::SizeBytes), "bytes")
        .filter(blob::Column::State.eq(blob::STATE_STORED))
        .group_by(blob::Column::TenantId)
        .group_by(blob::Column::Env)
        .into_tuple()
        .all(db)
        .await?;
    for (t, e, bytes) in stored {
        out.entry((t, e)).or_default().physical_bytes += bytes;
    }
    Ok(out)
}

/// `SUM(col)` as a 64-bit integer on both backends (Postgres sums bigints as numeric).
pub(crate) fn sum(col: impl sea_orm::sea_query::IntoColumnRef) -> sea_orm::sea_query::SimpleExpr {
    Expr::expr(Expr::col(col).sum()).cast_as(Alias::new("BIGINT"))
}

/// Compares the counters with a recount; with `fix`, corrects them. Answers the drift found.
pub async fn reconcile<C: TransactionTrait + ConnectionTrait>(
    db: &C,
    fix: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Drift>, DbErr> {
    let txn = db.begin().await?;
    let mut q = usage::Entity::find();
    if fix && txn.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock_exclusive();
    }
    let counted: BTreeMap<Key, Stock> = q
        .all(&txn)
        .await?
        .iter()
        .map(|u| ((u.tenant_id.clone(), u.env.clone()), Stock::of(u)))
        .collect();
    let actual = recount(&txn).await?;
    let mut drift = Vec::new();
    let keys: std::collections::BTreeSet<&Key> = counted.keys().chain(actual.keys()).collect();
    for key in keys {
        let c = counted.get(key).copied().unwrap_or_default();
        let a = actual.get(key).copied().unwrap_or_default();
        if c == a {
            continue;
        }
        for ((name, cv), (_, av)) in c.fields().into_iter().zip(a.fields()) {
            if cv != av {
                drift.push(Drift {
                    tenant_id: key.0.clone(),
                    env: key.1.clone(),
                    counter: name,
                    counted: cv,
                    actual: av,
                });
            }
        }
        if fix {
            let d = c.delta_to(&a);
            record(&txn, &key.0, &key.1, now, &d).await?;
        }
    }
    txn.commit().await?;
    for d in &drift {
        tracing::warn!(tenant.id = %d.tenant_id, env = %d.env, counter = %d.counter, counted = d.counted, actual = d.actual, fixed = fix, "usage counter drift");
    }
    metrics::counter!("cairn_metering_drift_total").increment(drift.len() as u64);
    Ok(drift)
}
