//! The sweep: one idempotent pass over the catalog and the store. Each step records its intent in
//! the catalog before it acts and confirms after, so a crash anywhere leaves work the next sweep
//! finishes and never loses a live object:
//!
//! 1. **abandoned uploads**: an item still `pending`/`uploading` on a `pending` blob after
//!    `CAIRN_PENDING_TTL_SECS` becomes `failed` and its blob `deleting` (one transaction);
//! 2. **expiry and retention**: items past `expires_at` or their retention become `deleted`;
//! 3. **purge**: `deleted` items past the grace period lose their catalog row and drop their blob
//!    reference; a blob left with no reference (and no row naming it) becomes `deleting`, and a
//!    public one has its CDN path queued for invalidation — all in one transaction;
//! 4. **objects**: each `deleting` blob's multipart upload is aborted and its object removed with
//!    batched multi-object deletes (`CAIRN_PURGE_CONCURRENCY` requests in flight); then its row
//!    goes (or returns to `failed` while a failed item still names it). A crash between the
//!    delete and the row leaves a `deleting` row whose delete the next sweep repeats (deleting a
//!    missing object is not an error). Bytes reclaimed are what the store held: the object's
//!    size as a HEAD before the delete gives it (none for an upload whose bytes never came) and
//!    an aborted upload's parts as the store lists them, never a declared size;
//! 5. **stray multipart uploads** the store lists but no blob records, older than the TTL, are
//!    aborted;
//! 6. **orphans**: objects under `tenants/` or `public/` that no blob row names and older than the
//!    TTL are reported (and removed with `fix_orphans`); so are the store's temp files older than
//!    the TTL (the local store's `tmp/`: uploads a killed process interrupted).
//!
//! A dry run executes the same code inside one catalog transaction that is rolled back, with the
//! store's deletes and aborts only recorded: it reports exactly what a real run would do.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{artifact, blob, raw_asset};
use futures_util::future::join_all;
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    policy::{Item, Retention, Verdict, RAW},
    report::{Report, MAX_LISTED},
    CrashPoint, Lifecycle, SweepError, SweepOptions,
};
use crate::{
    auth::Scope,
    cdn::invalidation,
    domain::{artifacts, catalog_time, media::Kind, raw_assets, ObjectKey},
    events::{kind, Event},
    metering::counters::{Batch, Delta},
    storage::{ObjectStore, DELETE_BATCH},
};

/// What purging one item adds to its scope's counters (its blob's bytes count when released).
const PURGED: Delta = Delta {
    purges: 1,
    ..Delta::ZERO
};

/// Items handled per catalog transaction.
const ITEM_BATCH: u64 = 500;
/// The user lifecycle events name.
pub const ACTOR: &str = "cairn-lifecycle";
/// HEAD requests the object step keeps in flight (each object's size is asked before its delete).
const HEAD_CONCURRENCY: usize = 32;
/// Top-level prefixes Cairn writes objects under.
const PREFIXES: [&str; 2] = ["tenants/", "public/"];

pub(super) struct Sweep<'a, C> {
    lc: &'a Lifecycle,
    db: &'a C,
    now: DateTime<Utc>,
    opts: &'a SweepOptions,
    pub report: Report,
    /// Dry run: keys whose deletes were only recorded.
    dry_deleted: HashSet<String>,
    /// Dry run: upload ids whose aborts were only recorded (the store still lists them).
    dry_aborted: HashSet<String>,
}

impl<'a, C: ConnectionTrait + TransactionTrait> Sweep<'a, C> {
    pub fn new(lc: &'a Lifecycle, db: &'a C, now: DateTime<Utc>, opts: &'a SweepOptions) -> Self {
        Self {
            lc,
            db,
            now: catalog_time(now),
            opts,
            report: Report::default(),
            dry_deleted: HashSet::new(),
            dry_aborted: HashSet::new(),
        }
    }

    pub async fn run(&mut self) -> Result<(), SweepError> {
        self.abandon_uploads().await?;
        self.expire().await?;
        self.purge().await?;
        self.remove_objects().await?;
        self.abort_stray_uploads().await?;
        self.find_orphans().await?;
        self.find_orphan_temp_files().await?;
        Ok(())
    }

    fn store(&self) -> &dyn ObjectStore {
        self.lc.store.as_ref()
    }

    /// Between batches: progress and shutdown (the job runner cancels `stop` when the lease is
    /// lost too).
    async fn checkpoint(&mut self, step: &'static str, done: u64) -> Result<(), SweepError> {
        if let Some(p) = &self.opts.progress {
            p(step, done);
        }
        if self.opts.stop.as_ref().is_some_and(|t| t.is_cancelled()) {
            return Err(SweepError::Cancelled);
        }
        Ok(())
    }

    fn crash(&self, at: CrashPoint) -> Result<(), SweepError> {
        if self.opts.crash_after == Some(at) {
            return Err(SweepError::Injected(at));
        }
        Ok(())
    }

    /// Removes `keys` from the store (recorded only in a dry run); answers the failures. Keys go
    /// in requests of [`DELETE_BATCH`], all of them at once: callers pass at most
    /// [`Self::in_flight`] batches.
    async fn delete_keys(&mut self, keys: &[ObjectKey]) -> Vec<(String, String)> {
        if self.opts.dry_run {
            self.dry_deleted
                .extend(keys.iter().map(|k| k.as_str().to_owned()));
            return Vec::new();
        }
        let store = self.store();
        let single = self.opts.single_deletes;
        let requests = keys.chunks(DELETE_BATCH).map(|chunk| async move {
            let res = if single {
                Ok(crate::storage::delete_each(store, chunk).await)
            } else {
                store.delete_many(chunk).await
            };
            res.unwrap_or_else(|e| {
                let why = e.to_string();
                chunk
                    .iter()
                    .map(|k| (k.as_str().to_owned(), why.clone()))
                    .collect()
            })
        });
        join_all(requests).await.into_iter().flatten().collect()
    }

    /// How many delete requests the object step keeps in flight.
    fn in_flight(&self) -> usize {
        self.lc.config.delete_concurrency.max(1)
    }

    /// Aborts a multipart upload (only recorded in a dry run); answers the bytes its parts held,
    /// as the store lists them before the abort: what the abort frees.
    async fn abort_upload(&mut self, key: &ObjectKey, upload_id: &str) -> Result<u64, String> {
        let held = self
            .store()
            .multipart_bytes(key, upload_id)
            .await
            .map_err(|e| e.to_string())?;
        if self.opts.dry_run {
            self.dry_aborted.insert(upload_id.to_owned());
        } else {
            self.store()
                .abort_multipart(key, upload_id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(held)
    }

    /// The sizes of the objects the store holds at `keys` (`None`: no object, as for an upload
    /// whose bytes never came), asked [`HEAD_CONCURRENCY`] at a time, in the order of `keys`.
    async fn stored_sizes(&self, keys: &[ObjectKey]) -> Vec<Result<Option<u64>, String>> {
        use futures_util::StreamExt;
        // Owned keys and store: the stream's futures hold no borrow (one lifetime for all).
        let heads = keys.iter().cloned().map(|key| {
            let store = self.lc.store.clone();
            async move {
                store
                    .head(&key)
                    .await
                    .map(|o| o.map(|o| o.size))
                    .map_err(|e| e.to_string())
            }
        });
        futures_util::stream::iter(heads)
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await
    }

    // ---- 1. abandoned uploads ----

    async fn abandon_uploads(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        let mut after = Uuid::nil();
        loop {
            let batch = artifact::Entity::find()
                .filter(
                    artifact::Column::Status
                        .is_in([artifact::STATUS_PENDING, artifact::STATUS_UPLOADING]),
                )
                .filter(artifact::Column::CreatedAt.lte(cutoff))
                .filter(artifact::Column::ArtifactId.gt(after))
                .order_by_asc(artifact::Column::ArtifactId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.artifact_id;
            for a in batch {
                let txn = self.db.begin().await?;
                if let Some(b) = a.blob_id {
                    if !self.blob_abandoned(&txn, b).await? {
                        // Verifying or settled meanwhile: not abandoned.
                        continue;
                    }
                }
                let res = artifact::Entity::update_many()
                    .col_expr(
                        artifact::Column::Status,
                        Expr::value(artifact::STATUS_FAILED),
                    )
                    .col_expr(artifact::Column::UpdatedAt, Expr::value(self.now))
                    .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
                    .filter(artifact::Column::Status.eq(a.status.clone()))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(&a.tenant_id, &a.env)?;
                let mut e = artifacts::artifact_event(artifacts::ev::FAILED, &scope, &a, self.now);
                e.detail = abandoned_detail(&a.status, self.lc.config.pending_ttl);
                e.record(&txn).await?;
                txn.commit().await?;
                self.report.abandoned.add(size(a.size_bytes));
            }
            self.checkpoint("abandoned uploads", self.report.abandoned.count)
                .await?;
        }
        let mut after = Uuid::nil();
        loop {
            let batch = raw_asset::Entity::find()
                .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
                .filter(raw_asset::Column::CreatedAt.lte(cutoff))
                .filter(raw_asset::Column::AssetId.gt(after))
                .order_by_asc(raw_asset::Column::AssetId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.asset_id;
            for r in batch {
                let txn = self.db.begin().await?;
                if !self.blob_abandoned(&txn, r.blob_id).await? {
                    continue;
                }
                let res = raw_asset::Entity::update_many()
                    .col_expr(
                        raw_asset::Column::Status,
                        Expr::value(raw_asset::STATUS_FAILED),
                    )
                    .col_expr(raw_asset::Column::UpdatedAt, Expr::value(self.now))
                    .filter(raw_asset::Column::AssetId.eq(r.asset_id))
                    .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(&r.tenant_id, &r.env)?;
                let mut e = raw_assets::asset_event(kind::RAW_ABANDONED, &scope, &r, self.now);
                e.detail = abandoned_detail(&r.status, self.lc.config.pending_ttl);
                e.record(&txn).await?;
                txn.commit().await?;
                self.report.abandoned.add(size(r.size_bytes));
            }
            self.checkpoint("abandoned uploads", self.report.abandoned.count)
                .await?;
        }
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

    // ---- 2. expiry and retention ----

    async fn expire(&mut self) -> Result<(), SweepError> {
        let retention = Retention::load(self.db, self.lc.config.default_retention_days).await?;
        let oldest_kept = retention
            .shortest_days()
            .map(|d| self.now - Duration::days(i64::from(d)));
        let mut after = Uuid::nil();
        loop {
            let mut due = artifact::Column::ExpiresAt.lte(self.now);
            if let Some(t) = oldest_kept {
                due = due.or(artifact::Column::CreatedAt.lte(t));
            }
            let batch = artifact::Entity::find()
                .filter(
                    artifact::Column::Status
                        .is_in([artifact::STATUS_AVAILABLE, artifact::STATUS_FAILED]),
                )
                .filter(artifact::Column::LegalHold.eq(false))
                .filter(due)
                .filter(artifact::Column::ArtifactId.gt(after))
                .order_by_asc(artifact::Column::ArtifactId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.artifact_id;
            let txn = self.db.begin().await?;
            let mut counts = Batch::default();
            for a in batch {
                let item = Item {
                    tenant: &a.tenant_id,
                    env: &a.env,
                    kind: &a.kind,
                    created_at: a.created_at,
                    expires_at: a.expires_at,
                    legal_hold: a.legal_hold,
                };
                let verdict = retention.judge(&item, self.now);
                if verdict == Verdict::Keep {
                    continue;
                }
                let res = artifact::Entity::update_many()
                    .col_expr(
                        artifact::Column::Status,
                        Expr::value(artifact::STATUS_DELETED),
                    )
                    .col_expr(artifact::Column::DeletedAt, Expr::value(Some(self.now)))
                    .col_expr(artifact::Column::UpdatedAt, Expr::value(self.now))
                    .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
                    .filter(artifact::Column::Status.eq(a.status.clone()))
                    .filter(artifact::Column::LegalHold.eq(false))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(&a.tenant_id, &a.env)?;
                let mut e = artifacts::artifact_event(artifacts::ev::DELETED, &scope, &a, self.now);
                e.detail = json!({
                    "previous_status": a.status,
                    "reason": reason(verdict),
                    "by": ACTOR,
                });
                e.record(&txn).await?;
                if a.status == artifact::STATUS_AVAILABLE {
                    let live = Delta::live(Kind::parse(&a.kind).ok(), a.size_bytes);
                    counts.add(&a.tenant_id, &a.env, &live.negated());
                }
                self.tally(verdict, a.size_bytes);
            }
            counts.record(&txn, self.now).await?;
            txn.commit().await?;
            let n = self.report.expired.count + self.report.retention.count;
            self.checkpoint("expired and out of retention", n).await?;
        }
        let Some(oldest_kept) = oldest_kept.filter(|_| retention.covers_raw()) else {
            return Ok(());
        };
        let mut after = Uuid::nil();
        loop {
            let batch = raw_asset::Entity::find()
                .filter(
                    raw_asset::Column::Status
                        .is_in([raw_asset::STATUS_REGISTERED, raw_asset::STATUS_FAILED]),
                )
                .filter(raw_asset::Column::CreatedAt.lte(oldest_kept))
                .filter(raw_asset::Column::AssetId.gt(after))
                .order_by_asc(raw_asset::Column::AssetId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.asset_id;
            let txn = self.db.begin().await?;
            let mut counts = Batch::default();
            for r in batch {
                let item = Item {
                    tenant: &r.tenant_id,
                    env: &r.env,
                    kind: RAW,
                    created_at: r.created_at,
                    expires_at: None,
                    legal_hold: false,
                };
                let verdict = retention.judge(&item, self.now);
                if verdict == Verdict::Keep {
                    continue;
                }
                let res = raw_asset::Entity::update_many()
                    .col_expr(
                        raw_asset::Column::Status,
                        Expr::value(raw_asset::STATUS_DELETED),
                    )
                    .col_expr(raw_asset::Column::UpdatedAt, Expr::value(self.now))
                    .filter(raw_asset::Column::AssetId.eq(r.asset_id))
                    .filter(raw_asset::Column::Status.eq(r.status.clone()))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(&r.tenant_id, &r.env)?;
                let mut e = raw_assets::asset_event(kind::RAW_DELETED, &scope, &r, self.now);
                e.detail = json!({
                    "previous_status": r.status,
                    "reason": reason(verdict),
                    "by": ACTOR,
                });
                e.record(&txn).await?;
                if r.status == raw_asset::STATUS_REGISTERED {
                    counts.add(
                        &r.tenant_id,
                        &r.env,
                        &Delta::live(None, r.size_bytes).negated(),
                    );
                }
                self.tally(verdict, r.size_bytes);
            }
            counts.record(&txn, self.now).await?;
            txn.commit().await?;
            let n = self.report.expired.count + self.report.retention.count;
            self.checkpoint("expired and out of retention", n).await?;
        }
        Ok(())
    }

    fn tally(&mut self, verdict: Verdict, bytes: i64) {
        match verdict {
            Verdict::Expired => self.report.expired.add(size(bytes)),
            Verdict::OutOfRetention => self.report.retention.add(size(bytes)),
            Verdict::Keep => {}
        }
    }

    // ---- 3. purge ----

    async fn purge(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.purge_grace;
        let mut after = Uuid::nil();
        loop {
            let batch = artifact::Entity::find()
                .filter(artifact::Column::Status.eq(artifact::STATUS_DELETED))
                .filter(artifact::Column::DeletedAt.lte(cutoff))
                .filter(artifact::Column::LegalHold.eq(false))
                .filter(artifact::Column::ArtifactId.gt(after))
                .order_by_asc(artifact::Column::ArtifactId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.artifact_id;
            let txn = self.db.begin().await?;
            let mut released = Vec::new();
            let mut counts = Batch::default();
            for a in batch {
                let res = artifact::Entity::delete_many()
                    .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
                    .filter(artifact::Column::Status.eq(artifact::STATUS_DELETED))
                    .filter(artifact::Column::LegalHold.eq(false))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                if let Some(b) = a.blob_id {
                    drop_ref(&txn, b, self.now).await?;
                    released.push(b);
                }
                let scope = system_scope(&a.tenant_id, &a.env)?;
                let mut e = artifacts::artifact_event(artifacts::ev::PURGED, &scope, &a, self.now);
                e.detail = json!({ "deleted_at": a.deleted_at, "by": ACTOR });
                e.record(&txn).await?;
                self.report.purged.add(size(a.size_bytes));
                counts.add(&a.tenant_id, &a.env, &PURGED);
            }
            self.release_blobs(&txn, released, &mut counts).await?;
            counts.record(&txn, self.now).await?;
            txn.commit().await?;
            self.crash(CrashPoint::PurgeCommitted)?;
            self.checkpoint("purged", self.report.purged.count).await?;
        }
        let mut after = Uuid::nil();
        loop {
            let batch = raw_asset::Entity::find()
                .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_DELETED))
                .filter(raw_asset::Column::UpdatedAt.lte(cutoff))
                .filter(raw_asset::Column::AssetId.gt(after))
                .order_by_asc(raw_asset::Column::AssetId)
                .limit(ITEM_BATCH)
                .all(self.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.asset_id;
            let txn = self.db.begin().await?;
            let mut released = Vec::new();
            let mut counts = Batch::default();
            for r in batch {
                let res = raw_asset::Entity::delete_many()
                    .filter(raw_asset::Column::AssetId.eq(r.asset_id))
                    .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_DELETED))
                    .exec(&txn)
                    .await?;
                if res.rows_affected == 0 {
                    continue;
                }
                drop_ref(&txn, r.blob_id, self.now).await?;
                released.push(r.blob_id);
                let scope = system_scope(&r.tenant_id, &r.env)?;
                let mut e = raw_assets::asset_event(kind::RAW_PURGED, &scope, &r, self.now);
                e.detail = json!({ "deleted_at": r.updated_at, "by": ACTOR });
                e.record(&txn).await?;
                self.report.purged.add(size(r.size_bytes));
                counts.add(&r.tenant_id, &r.env, &PURGED);
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

    // ---- 4. objects of `deleting` blobs ----

    async fn remove_objects(&mut self) -> Result<(), SweepError> {
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

    // ---- 5. multipart uploads only the store knows ----

    async fn abort_stray_uploads(&mut self) -> Result<(), SweepError> {
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

    // ---- 6. orphans ----

    async fn find_orphans(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        for prefix in PREFIXES {
            let mut next = None;
            loop {
                let page = self.store().list_objects(prefix, next).await?;
                let old: Vec<_> = page
                    .objects
                    .into_iter()
                    .filter(|o| o.last_modified <= cutoff && !self.dry_deleted.contains(&o.key))
                    .collect();
                let mut known = HashSet::new();
                for chunk in old.chunks(ITEM_BATCH as usize) {
                    let keys: Vec<String> = chunk.iter().map(|o| o.key.clone()).collect();
                    let rows: Vec<String> = blob::Entity::find()
                        .select_only()
                        .column(blob::Column::Key)
                        .filter(blob::Column::Key.is_in(keys))
                        .into_tuple()
                        .all(self.db)
                        .await?;
                    known.extend(rows);
                }
                let orphans: Vec<_> = old
                    .into_iter()
                    .filter(|o| !known.contains(&o.key))
                    .collect();
                for o in &orphans {
                    self.report.orphans.found.add(o.size);
                    if self.report.orphans.sample.len() < MAX_LISTED {
                        self.report.orphans.sample.push(o.key.clone());
                    }
                    tracing::warn!(key = %o.key, size = o.size, "orphan object: no blob row names it");
                }
                if self.opts.fix_orphans {
                    for chunk in orphans.chunks(DELETE_BATCH) {
                        let keys: Vec<ObjectKey> = chunk
                            .iter()
                            .filter_map(|o| ObjectKey::parse(&o.key))
                            .collect();
                        let failed: HashMap<String, String> =
                            self.delete_keys(&keys).await.into_iter().collect();
                        for o in chunk {
                            match failed.get(&o.key) {
                                Some(why) => {
                                    self.report.error(format!("delete orphan {}: {why}", o.key))
                                }
                                None => self.report.orphans.removed.add(o.size),
                            }
                        }
                    }
                }
                self.checkpoint("orphan check", self.report.orphans.found.count)
                    .await?;
                next = page.next;
                if next.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    /// Temp files not modified within the TTL: no upload still writes to them (the same rule as
    /// orphan objects). Removed with `fix_orphans` (only recorded in a dry run).
    async fn find_orphan_temp_files(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        let stale = self.store().list_temp_files(cutoff).await?;
        for f in &stale {
            let found = &mut self.report.orphan_temp_files;
            found.found.add(f.size);
            if found.sample.len() < MAX_LISTED {
                found.sample.push(f.name.clone());
            }
            tracing::warn!(temp_file = %f.name, size = f.size, "orphan temp file: an interrupted upload left it");
        }
        if self.opts.fix_orphans {
            for f in &stale {
                let removed = if self.opts.dry_run {
                    Ok(())
                } else {
                    self.store().remove_temp_file(&f.name).await
                };
                match removed {
                    Ok(()) => self.report.orphan_temp_files.removed.add(f.size),
                    Err(e) => self
                        .report
                        .error(format!("remove temp file {}: {e}", f.name)),
                }
            }
        }
        self.checkpoint(
            "orphan temp files",
            self.report.orphan_temp_files.found.count,
        )
        .await
    }
}

/// No artifact or raw asset row names the blob.
fn unreferenced() -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Alias, Query};
    let named_by = |table: &str, column: &str| {
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(Alias::new(table))
                .and_where(
                    Expr::col((Alias::new(table), Alias::new(column)))
                        .equals((blob::Entity, blob::Column::Id)),
                )
                .to_owned(),
        )
    };
    named_by("artifact", "blob_id")
        .not()
        .and(named_by("raw_asset", "blob_id").not())
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

fn system_scope(tenant: &str, env: &str) -> Result<Scope, DbErr> {
    Scope::system(tenant, env, ACTOR).map_err(|e| {
        DbErr::Custom(format!(
            "catalog row with scope {tenant}/{env}: {}",
            e.detail
        ))
    })
}

fn abandoned_detail(status: &str, ttl: Duration) -> serde_json::Value {
    json!({
        "code": "upload_abandoned",
        "detail": format!("the upload was not completed within {} seconds", ttl.num_seconds()),
        "previous_status": status,
        "by": ACTOR,
    })
}

fn reason(v: Verdict) -> &'static str {
    match v {
        Verdict::Expired => "expired",
        Verdict::OutOfRetention => "retention",
        Verdict::Keep => "kept",
    }
}

fn size(bytes: i64) -> u64 {
    u64::try_from(bytes).unwrap_or(0)
}
