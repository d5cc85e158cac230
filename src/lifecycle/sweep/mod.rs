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
//!
//! Steps 1–3 walk artifacts and raw assets alike, through one [`table::Table`].
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::blob;
use futures_util::future::join_all;
use sea_orm::{sea_query::Expr, ConnectionTrait, TransactionTrait};

use super::{report::Report, CrashPoint, Lifecycle, SweepError, SweepOptions};
use crate::{
    auth::Scope,
    storage::{ObjectStore, DELETE_BATCH},
    values::{catalog_time, ObjectKey},
};

mod abandon;
mod expire;
mod objects;
mod orphans;
mod purge;
mod table;

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

    /// Fails here when a test asked for a crash at `at` (feature `testing`; else never).
    fn crash(&self, at: CrashPoint) -> Result<(), SweepError> {
        #[cfg(feature = "testing")]
        if self.opts.crash_after == Some(at) {
            return Err(SweepError::Injected(at));
        }
        #[cfg(not(feature = "testing"))]
        let _ = at;
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
        #[cfg(feature = "testing")]
        let single = self.opts.single_deletes;
        #[cfg(not(feature = "testing"))]
        let single = false;
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

/// The scope a catalog row's events are recorded in, as the lifecycle's actor.
fn system_scope(tenant: &str, env: &str) -> Result<Scope, SweepError> {
    Scope::system(tenant, env, ACTOR).map_err(|e| SweepError::BadScope {
        tenant: tenant.to_owned(),
        env: env.to_owned(),
        detail: e.detail.to_string(),
    })
}

fn size(bytes: i64) -> u64 {
    u64::try_from(bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_with_an_invalid_scope_is_a_sweep_error_of_its_own() {
        assert!(system_scope("acme", "dev").is_ok());
        let err = system_scope("not a tenant!", "dev").unwrap_err();
        assert!(
            matches!(&err, SweepError::BadScope { tenant, env, .. } if tenant == "not a tenant!" && env == "dev"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("catalog row with scope not a tenant!/dev: "));
    }
}
