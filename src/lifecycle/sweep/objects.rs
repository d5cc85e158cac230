//! Steps 4 and 5, objects: each `deleting` blob's multipart upload is aborted and its object
//! removed with batched deletes, then its row confirmed; multipart uploads the store lists but no
//! blob records are aborted once older than the TTL.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::blob;
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::{system_scope, unreferenced, Sweep, ACTOR, PREFIXES};
use crate::{
    events::{kind, Event},
    lifecycle::{CrashPoint, SweepError},
    storage::DELETE_BATCH,
    values::ObjectKey,
};

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    pub(super) async fn remove_objects(&mut self) -> Result<(), SweepError> {
        let mut after = Uuid::nil();
        loop {
            let batch = blob::Entity::find()
                .filter(blob::Column::State.eq(blob::STATE_DELETING))
                .filter(blob::Column::Id.gt(after))
                .order_by_asc(blob::Column::Id)
                .limit((DELETE_BATCH * self.in_flight()) as u64)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            let mut ready = Vec::with_capacity(batch.len());
            for b in batch {
                let Some(key) = ObjectKey::parse(&b.key) else {
                    self.report
                        .error(format!("blob {}: unusable key `{}`", b.id, b.key));
                    self.report.objects_pending += 1;
                    continue;
                };
                if let Some(upload_id) = &b.upload_id {
                    match self.abort_upload(&key, upload_id).await {
                        Ok(bytes) => {
                            self.report.multipart_aborted += 1;
                            self.report.multipart_aborted_bytes += bytes;
                        }
                        Err(e) => {
                            self.report
                                .error(format!("abort multipart upload of {key}: {e}"));
                            self.report.objects_pending += 1;
                            continue;
                        }
                    }
                }
                ready.push((b, key));
            }
            // Only what the store holds counts as reclaimed: a blob of an upload whose bytes
            // never came has no object, whatever size it declared.
            let keys: Vec<ObjectKey> = ready.iter().map(|(_, k)| k.clone()).collect();
            let sizes = self.stored_sizes(&keys).await;
            let mut held = Vec::with_capacity(ready.len());
            for ((b, key), size) in ready.into_iter().zip(sizes) {
                match size {
                    Ok(size) => held.push((b, key, size)),
                    Err(e) => {
                        self.report.error(format!("head {key}: {e}"));
                        self.report.objects_pending += 1;
                    }
                }
            }
            let keys: Vec<ObjectKey> = held.iter().map(|(_, k, _)| k.clone()).collect();
            let failed: HashMap<String, String> =
                self.delete_keys(&keys).await.into_iter().collect();
            self.crash(CrashPoint::ObjectsDeleted)?;
            let txn = self.db.begin().await?;
            for (b, key, size) in held {
                if let Some(why) = failed.get(key.as_str()) {
                    self.report.error(format!("delete {key}: {why}"));
                    self.report.objects_pending += 1;
                    continue;
                }
                if confirm_removed(&txn, &b, self.now).await? {
                    let scope = system_scope(&b.tenant_id, &b.env)?;
                    let mut e = Event::new(kind::OBJECT_REMOVED, &scope, b.id, self.now);
                    e.detail = json!({
                        "key": b.key,
                        "size_bytes": b.size_bytes,
                        "stored_bytes": size.unwrap_or(0),
                        "visibility": b.visibility,
                        "by": ACTOR,
                    });
                    e.record(&txn).await?;
                    if let Some(stored) = size {
                        self.report.objects_deleted.add(stored);
                    }
                }
            }
            txn.commit().await?;
            self.checkpoint("objects removed", self.report.objects_deleted.count)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn abort_stray_uploads(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        for prefix in PREFIXES {
            let uploads = self.store().list_multipart_uploads(prefix).await?;
            // A dry run's recorded aborts are still listed: they are not strays.
            let uploads: Vec<_> = uploads
                .into_iter()
                .filter(|u| u.initiated <= cutoff && !self.dry_aborted.contains(&u.upload_id))
                .collect();
            for u in uploads {
                let known = blob::Entity::find()
                    .filter(blob::Column::UploadId.eq(u.upload_id.clone()))
                    .count(self.db)
                    .await?;
                if known > 0 {
                    // The catalog's own: step 1 and 4 handle it.
                    continue;
                }
                let Some(key) = ObjectKey::parse(&u.key) else {
                    continue;
                };
                match self.abort_upload(&key, &u.upload_id).await {
                    Ok(bytes) => {
                        self.report.multipart_aborted += 1;
                        self.report.multipart_aborted_bytes += bytes;
                    }
                    Err(e) => self
                        .report
                        .error(format!("abort multipart upload of {key}: {e}")),
                }
            }
            self.checkpoint("stray multipart uploads", self.report.multipart_aborted)
                .await?;
        }
        Ok(())
    }
}

/// The object of a `deleting` blob is gone: the row goes too, unless a failed item still names
/// it (then it returns to `failed`, without object or upload). False when another sweep already
/// confirmed it.
async fn confirm_removed<T: ConnectionTrait>(
    txn: &T,
    b: &blob::Model,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = blob::Entity::delete_many()
        .filter(blob::Column::Id.eq(b.id))
        .filter(blob::Column::State.eq(blob::STATE_DELETING))
        .filter(unreferenced())
        .exec(txn)
        .await?;
    if res.rows_affected == 1 {
        return Ok(true);
    }
    let res = blob::Entity::update_many()
        .col_expr(blob::Column::State, Expr::value(blob::STATE_FAILED))
        .col_expr(blob::Column::UploadId, Expr::value(None::<String>))
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(b.id))
        .filter(blob::Column::State.eq(blob::STATE_DELETING))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}
