//! Step 3, purge: `deleted` items past the grace period lose their catalog row and drop their
//! blob reference; a blob left with no reference (and no row naming it) becomes `deleting`, and a
//! public one has its CDN path queued for invalidation — all in one transaction per batch.
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{blob, dataset_event};
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryTrait,
    StatementBuilder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    size, system_scope,
    table::{page, Artifacts, RawAssets, Step, Table},
    unreferenced, Sweep, ACTOR, ITEM_BATCH,
};
use crate::{
    cdn::invalidation,
    lifecycle::{CrashPoint, SweepError},
    usage::{Batch, Delta},
    values::ObjectKey,
};

/// What purging one item adds to its scope's counters (its blob's bytes count when released).
const PURGED: Delta = Delta {
    purges: 1,
    ..Delta::ZERO
};

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    pub(super) async fn purge(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.purge_grace;
        self.purge_in::<Artifacts>(cutoff).await?;
        self.purge_in::<RawAssets>(cutoff).await
    }

    /// The items of one table `deleted` at or before `cutoff`.
    async fn purge_in<T: Table>(&mut self, cutoff: DateTime<Utc>) -> Result<(), SweepError> {
        let mut after = Uuid::nil();
        loop {
            let batch = page::<T>(T::purgeable(cutoff), after).all(self.db).await?;
            let Some(last) = batch.last() else { break };
            after = T::facts(last).id;
            let txn = self.db.begin().await?;
            // The batch's catalog work in a few statements, not a few per item: the rows go in
            // one delete that answers which went (a row changed since it was read stays), their
            // blobs lose their references in one update per count, their events go in one
            // insert.
            let ids: Vec<Uuid> = batch.iter().map(|r| T::facts(r).id).collect();
            let purged = deleted_ids::<T, _>(&txn, &ids).await?;
            let mut released: BTreeMap<Uuid, i64> = BTreeMap::new();
            let mut events = Vec::with_capacity(purged.len());
            let mut counts = Batch::default();
            for row in &batch {
                let f = T::facts(row);
                if !purged.contains(&f.id) {
                    continue;
                }
                if let Some(b) = f.blob {
                    *released.entry(b).or_default() += 1;
                }
                let scope = system_scope(f.item.tenant, f.item.env)?;
                let mut e = T::event(Step::Purged, &scope, row, self.now);
                e.detail = json!({ "deleted_at": f.deleted_at, "by": ACTOR });
                events.push(e.row());
                self.report.purged.add(size(f.size_bytes));
                counts.add(f.item.tenant, f.item.env, &PURGED);
            }
            drop_refs(&txn, &released, self.now).await?;
            for rows in events.chunks(EVENT_ROWS) {
                dataset_event::Entity::insert_many(rows.to_vec())
                    .exec_without_returning(&txn)
                    .await?;
            }
            let released: Vec<Uuid> = released.into_keys().collect();
            self.release_blobs(&txn, released, &mut counts).await?;
            counts.record(&txn, self.now).await?;
            txn.commit().await?;
            self.crash(CrashPoint::PurgeCommitted)?;
            self.checkpoint("purged", self.report.purged.count).await?;
        }
        Ok(())
    }

    /// Blobs that lost references in this transaction: those no item holds or names any more
    /// become `deleting` (a stored one's bytes leave the physical count, as reclaimed), and a
    /// public one's CDN path is queued for invalidation.
    async fn release_blobs<T: ConnectionTrait>(
        &mut self,
        txn: &T,
        mut ids: Vec<Uuid>,
        counts: &mut Batch,
    ) -> Result<(), DbErr> {
        ids.sort_unstable();
        ids.dedup();
        let mut paths = Vec::new();
        for chunk in ids.chunks(ITEM_BATCH as usize) {
            let blobs = blob::Entity::find()
                .filter(blob::Column::Id.is_in(chunk.to_vec()))
                .all(txn)
                .await?;
            // One update for the chunk, answering which blobs it released.
            let mut released = blob::Entity::update_many()
                .col_expr(blob::Column::State, Expr::value(blob::STATE_DELETING))
                .col_expr(blob::Column::UpdatedAt, Expr::value(self.now))
                .filter(blob::Column::Id.is_in(chunk.to_vec()))
                .filter(blob::Column::RefCount.lte(0))
                .filter(blob::Column::State.ne(blob::STATE_DELETING))
                .filter(unreferenced())
                .into_query();
            released.returning_col(blob::Column::Id);
            let released = returned_ids(txn, &released).await?;
            for b in blobs.iter().filter(|b| released.contains(&b.id)) {
                if b.state == blob::STATE_STORED {
                    let freed = Delta {
                        physical_bytes: -b.size_bytes,
                        reclaimed_bytes: b.size_bytes,
                        ..Delta::default()
                    };
                    counts.add(&b.tenant_id, &b.env, &freed);
                }
                if self.lc.invalidate && b.visibility == blob::VISIBILITY_PUBLIC {
                    if let Some(key) = ObjectKey::parse(&b.key) {
                        paths.extend(invalidation::paths_for(&key));
                    }
                }
            }
        }
        if !paths.is_empty() {
            invalidation::enqueue(txn, &paths, self.now).await?;
            self.report.invalidations_queued += paths.len() as u64;
        }
        Ok(())
    }
}

/// Event rows per insert: 13 values a row, well under SQLite's and Postgres's bind limits.
const EVENT_ROWS: usize = 1000;

/// Of the rows of `ids`, deletes those still purgeable and answers their ids.
async fn deleted_ids<T: Table, C: ConnectionTrait>(
    txn: &C,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    let mut delete = T::purge(ids).into_query();
    delete.returning_col(T::id_column());
    returned_ids(txn, &delete).await
}

/// Runs a write whose `RETURNING` is one id column; answers the ids.
async fn returned_ids<C: ConnectionTrait>(
    txn: &C,
    stmt: &impl StatementBuilder,
) -> Result<HashSet<Uuid>, DbErr> {
    txn.query_all(txn.get_database_backend().build(stmt))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<Uuid>(0))
        .collect()
}

/// Drops `n` references from each blob of `drops` (blob → n), never below zero (a failed blob
/// holds none): one update per distinct `n`, so usually one.
async fn drop_refs<T: ConnectionTrait>(
    txn: &T,
    drops: &BTreeMap<Uuid, i64>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut by_count: BTreeMap<i64, Vec<Uuid>> = BTreeMap::new();
    for (id, n) in drops {
        by_count.entry(*n).or_default().push(*id);
    }
    for (n, ids) in by_count {
        for chunk in ids.chunks(ITEM_BATCH as usize) {
            let ref_count = Expr::col(blob::Column::RefCount);
            blob::Entity::update_many()
                .col_expr(
                    blob::Column::RefCount,
                    Expr::case(ref_count.clone().gt(n), ref_count.sub(n))
                        .finally(0)
                        .into(),
                )
                .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                .filter(blob::Column::Id.is_in(chunk.iter().copied()))
                .filter(blob::Column::RefCount.gt(0))
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}
