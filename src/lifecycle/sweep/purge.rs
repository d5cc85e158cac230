//! Step 3, purge: `deleted` items past the grace period lose their catalog row and drop their
//! blob reference; a blob left with no reference (and no row naming it) becomes `deleting`, and a
//! public one has its CDN path queued for invalidation — all in one transaction per batch.
use chrono::{DateTime, Utc};
use entity::blob;
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
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
            let mut released = Vec::new();
            let mut counts = Batch::default();
            for row in batch {
                let f = T::facts(&row);
                let res = T::purge(&row).exec(&txn).await?;
                if res.rows_affected == 0 {
                    continue;
                }
                if let Some(b) = f.blob {
                    drop_ref(&txn, b, self.now).await?;
                    released.push(b);
                }
                let scope = system_scope(f.item.tenant, f.item.env)?;
                let mut e = T::event(Step::Purged, &scope, &row, self.now);
                e.detail = json!({ "deleted_at": f.deleted_at, "by": ACTOR });
                e.record(&txn).await?;
                self.report.purged.add(size(f.size_bytes));
                counts.add(f.item.tenant, f.item.env, &PURGED);
            }
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
            for b in blobs {
                let res = blob::Entity::update_many()
                    .col_expr(blob::Column::State, Expr::value(blob::STATE_DELETING))
                    .col_expr(blob::Column::UpdatedAt, Expr::value(self.now))
                    .filter(blob::Column::Id.eq(b.id))
                    .filter(blob::Column::RefCount.lte(0))
                    .filter(blob::Column::State.ne(blob::STATE_DELETING))
                    .filter(unreferenced())
                    .exec(txn)
                    .await?;
                if res.rows_affected == 1 && b.state == blob::STATE_STORED {
                    let freed = Delta {
                        physical_bytes: -b.size_bytes,
                        reclaimed_bytes: b.size_bytes,
                        ..Delta::default()
                    };
                    counts.add(&b.tenant_id, &b.env, &freed);
                }
                if res.rows_affected == 1
                    && self.lc.invalidate
                    && b.visibility == blob::VISIBILITY_PUBLIC
                {
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

/// Drops one reference to a blob (never below zero: a failed blob holds none).
async fn drop_ref<T: ConnectionTrait>(txn: &T, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    blob::Entity::update_many()
        .col_expr(
            blob::Column::RefCount,
            Expr::col(blob::Column::RefCount).sub(1),
        )
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(id))
        .filter(blob::Column::RefCount.gt(0))
        .exec(txn)
        .await
        .map(|_| ())
}
