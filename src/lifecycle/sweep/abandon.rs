//! Step 1, abandoned uploads: an item still uploading on a `pending` blob after
//! `CAIRN_PENDING_TTL_SECS` becomes `failed` and its blob `deleting`, in one transaction; blobs no
//! item names (a crash between two writes of an upload) go the same way.
use chrono::{DateTime, Duration, Utc};
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
    unreferenced, Sweep, ACTOR,
};
use crate::lifecycle::{CrashPoint, SweepError};

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    pub(super) async fn abandon_uploads(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        self.abandon::<Artifacts>(cutoff).await?;
        self.abandon::<RawAssets>(cutoff).await?;
        // Blobs no item names (left by a crash between two writes of an upload) go the same way.
        blob::Entity::update_many()
            .col_expr(blob::Column::State, Expr::value(blob::STATE_DELETING))
            .col_expr(blob::Column::RefCount, Expr::value(0))
            .col_expr(blob::Column::UpdatedAt, Expr::value(self.now))
            .filter(blob::Column::State.eq(blob::STATE_PENDING))
            .filter(blob::Column::CreatedAt.lte(cutoff))
            .filter(unreferenced())
            .exec(self.db)
            .await?;
        self.crash(CrashPoint::AbandonedCommitted)
    }

    /// The items of one table created at or before `cutoff` and still uploading.
    async fn abandon<T: Table>(&mut self, cutoff: DateTime<Utc>) -> Result<(), SweepError> {
        let mut after = Uuid::nil();
        loop {
            let batch = page::<T>(T::abandoned(cutoff), after).all(self.db).await?;
            let Some(last) = batch.last() else { break };
            after = T::facts(last).id;
            for row in batch {
                let f = T::facts(&row);
                let txn = self.db.begin().await?;
                if let Some(b) = f.blob {
                    if !self.blob_abandoned(&txn, b).await? {
                        // Verifying or settled meanwhile: not abandoned.
                        continue;
                    }
                }
                let res = T::fail(&row, self.now).exec(&txn).await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(f.item.tenant, f.item.env)?;
                let mut e = T::event(Step::Abandoned, &scope, &row, self.now);
                e.detail = abandoned_detail(f.status, self.lc.config.pending_ttl);
                e.record(&txn).await?;
                txn.commit().await?;
                self.report.abandoned.add(size(f.size_bytes));
            }
            self.checkpoint("abandoned uploads", self.report.abandoned.count)
                .await?;
        }
        Ok(())
    }

    /// Marks a `pending` blob `deleting` (no references): its object and upload are to go.
    async fn blob_abandoned<T: ConnectionTrait>(&self, txn: &T, id: Uuid) -> Result<bool, DbErr> {
        let res = blob::Entity::update_many()
            .col_expr(blob::Column::State, Expr::value(blob::STATE_DELETING))
            .col_expr(blob::Column::RefCount, Expr::value(0))
            .col_expr(blob::Column::UpdatedAt, Expr::value(self.now))
            .filter(blob::Column::Id.eq(id))
            .filter(blob::Column::State.eq(blob::STATE_PENDING))
            .exec(txn)
            .await?;
        Ok(res.rows_affected == 1)
    }
}

fn abandoned_detail(status: &str, ttl: Duration) -> serde_json::Value {
    json!({
        "code": "upload_abandoned",
        "detail": format!("the upload was not completed within {} seconds", ttl.num_seconds()),
        "previous_status": status,
        "by": ACTOR,
    })
}
