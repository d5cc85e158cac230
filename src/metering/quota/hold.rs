//! Holding a tenant's quota while one transaction admits or settles an item.
//!
//! **What counts.** For an admission: the live counters (`usage`: items `available` or
//! `registered`) plus the uploads in progress (raw assets `pending`, artifacts `pending` or
//! `uploading`), each holding its declared size and one object. A hold needs no bookkeeping of
//! its own: it begins with the item's row, ends when the row leaves those states (failed,
//! abandoned by the sweep, deleted, or live, where the counters then hold it), and is read with
//! one indexed query per kind over the tenant's in-progress rows (partial indexes of migration
//! 000008: a few rows per tenant, none for settled items). Reservation counters would have to
//! change in every path that starts, fails, abandons, deletes or settles an upload, and a
//! missed path would drift and refuse a tenant for good; the query cannot drift, and it runs
//! only for tenants that have a quota. For a settle: the live counters only; the item's own
//! hold was counted when it was admitted.
//!
//! **Atomicity.** [`Hold::take`], first in the writing transaction, reads the tenant's limits
//! and, when it has any, serialises the tenant's admissions and settles: Postgres takes
//! `pg_advisory_xact_lock` on a key derived from the tenant id (released at commit or
//! rollback); SQLite runs on one connection, so its transactions never interleave. Taken before
//! any row is written, the lock keeps one lock order (tenant lock, then item and blob rows, then
//! counters) and cannot deadlock with paths that never take it (the sweep, deletes, download
//! counts), which only lower usage. The check then reads usage under the lock, and the write it
//! admits commits before the next holder reads: admissions that race cannot pass a limit
//! together, nor can settles. Tenants without quota rows take no lock. A quota changed while a
//! transaction holds applies from the next one.
use std::collections::BTreeMap;

use entity::{artifact, quota, raw_asset, usage};
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement,
};

use super::check::{judge, Admitted, Amount, Usage};
use crate::{auth::Scope, metering::reconcile::sum, problem::Problem};

/// The tenant's limits that apply in `env` (its total and the env's), and its quota held for
/// the rest of the transaction it was taken in.
#[derive(Debug)]
pub struct Hold {
    limits: Vec<quota::Model>,
}

impl Hold {
    /// Reads the scope's limits and, when there are any, takes the tenant's lock (Postgres).
    /// Call it first in the transaction, before any write.
    pub async fn take(txn: &DatabaseTransaction, scope: &Scope) -> Result<Self, DbErr> {
        let limits = limits(txn, scope).await?;
        if !limits.is_empty() && txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [lock_key(scope.tenant.as_str()).into()],
            ))
            .await?;
        }
        Ok(Self { limits })
    }

    /// A new item of `bytes` (pending or live) in the scope: refused (403 `quota_exceeded`)
    /// unless live usage, the uploads in progress and the item fit every limit.
    pub async fn admit(
        &self,
        txn: &DatabaseTransaction,
        scope: &Scope,
        bytes: i64,
    ) -> Result<Admitted, Problem> {
        if self.limits.is_empty() {
            return Ok(Admitted::default());
        }
        let usage = usage(txn, scope, true).await?;
        judge(
            scope.tenant.as_str(),
            scope.env.as_str(),
            &self.limits,
            &usage,
            bytes,
        )
    }

    /// An admitted item of `bytes` becomes live: refused (403 `quota_exceeded`) unless live
    /// usage and the item fit every limit (they fit at admission; a limit may have dropped).
    pub async fn settle(
        &self,
        txn: &DatabaseTransaction,
        scope: &Scope,
        bytes: i64,
    ) -> Result<(), Problem> {
        if self.limits.is_empty() {
            return Ok(());
        }
        let usage = usage(txn, scope, false).await?;
        let tenant = scope.tenant.as_str();
        judge(tenant, scope.env.as_str(), &self.limits, &usage, bytes).map(|_| ())
    }
}

/// [`Hold::admit`] asked early, outside any transaction (before store calls or streaming a
/// body), so that most refusals cost nothing; the admitting transaction decides. No warnings.
pub async fn would_admit<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    bytes: i64,
) -> Result<(), Problem> {
    early(db, scope, bytes, true).await
}

/// [`Hold::settle`] asked early: before the bytes of an admitted item stream in.
pub async fn would_settle<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    bytes: i64,
) -> Result<(), Problem> {
    early(db, scope, bytes, false).await
}

async fn early<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    bytes: i64,
    with_held: bool,
) -> Result<(), Problem> {
    let limits = limits(db, scope).await?;
    if limits.is_empty() {
        return Ok(());
    }
    let usage = usage(db, scope, with_held).await?;
    let tenant = scope.tenant.as_str();
    judge(tenant, scope.env.as_str(), &limits, &usage, bytes).map(|_| ())
}

async fn limits<C: ConnectionTrait>(db: &C, scope: &Scope) -> Result<Vec<quota::Model>, DbErr> {
    quota::Entity::find()
        .filter(quota::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(quota::Column::Env.is_in([quota::ALL_ENVS, scope.env.as_str()]))
        .all(db)
        .await
}

/// The tenant's live usage per env and, with `with_held`, its uploads in progress.
async fn usage<C: ConnectionTrait>(db: &C, scope: &Scope, with_held: bool) -> Result<Usage, DbErr> {
    let tenant = scope.tenant.as_str();
    let live = usage::Entity::find()
        .filter(usage::Column::TenantId.eq(tenant))
        .all(db)
        .await?
        .into_iter()
        .map(|u| {
            let a = Amount {
                objects: u.objects,
                bytes: u.logical_bytes,
            };
            (u.env, a)
        })
        .collect();
    let mut held: BTreeMap<String, Amount> = BTreeMap::new();
    if with_held {
        // The predicates are stated as the partial indexes state them, literals included.
        let artifacts: Vec<(String, i64, i64)> = artifact::Entity::find()
            .select_only()
            .column(artifact::Column::Env)
            .column_as(Expr::col(artifact::Column::ArtifactId).count(), "n")
            .column_as(sum(artifact::Column::SizeBytes), "bytes")
            .filter(artifact::Column::TenantId.eq(tenant))
            .filter(Expr::cust(migration::ARTIFACT_IN_PROGRESS))
            .group_by(artifact::Column::Env)
            .into_tuple()
            .all(db)
            .await?;
        let raw: Vec<(String, i64, i64)> = raw_asset::Entity::find()
            .select_only()
            .column(raw_asset::Column::Env)
            .column_as(Expr::col(raw_asset::Column::AssetId).count(), "n")
            .column_as(sum(raw_asset::Column::SizeBytes), "bytes")
            .filter(raw_asset::Column::TenantId.eq(tenant))
            .filter(Expr::cust(migration::RAW_ASSET_IN_PROGRESS))
            .group_by(raw_asset::Column::Env)
            .into_tuple()
            .all(db)
            .await?;
        for (env, objects, bytes) in artifacts.into_iter().chain(raw) {
            let a = held.entry(env).or_default();
            a.objects += objects;
            a.bytes += bytes;
        }
    }
    Ok(Usage { live, held })
}

/// The advisory lock key of a tenant's quota: FNV-1a (64 bits) of `cairn-quota/<tenant>`,
/// stable across builds and replicas (std's hasher is not).
fn lock_key(tenant: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "cairn-quota/".bytes().chain(tenant.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_by_tenant() {
        // A replica of another build must derive the same key.
        assert_eq!(lock_key("acme"), lock_key("acme"));
        // FNV-1a of `cairn-quota/`, computed apart.
        assert_eq!(lock_key(""), 0x0d53_c9eb_8bcc_e40e);
        assert_ne!(lock_key("acme"), lock_key("acme2"));
    }

    #[test]
    fn in_progress_predicates_name_the_catalog_statuses() {
        assert_eq!(
            migration::ARTIFACT_IN_PROGRESS,
            format!(
                "status IN ('{}', '{}')",
                artifact::STATUS_PENDING,
                artifact::STATUS_UPLOADING
            )
        );
        assert_eq!(
            migration::RAW_ASSET_IN_PROGRESS,
            format!("status = '{}'", raw_asset::STATUS_PENDING)
        );
    }
}
