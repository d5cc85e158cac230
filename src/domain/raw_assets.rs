//! Raw assets (DESIGN §4–§5): presign an upload, register (verify) it, read it, presign a download.
//! Every state change and its dataset event commit in one transaction; store calls happen outside
//! transactions so a slow store never holds a catalog connection.
use chrono::{DateTime, Duration, Utc};
use entity::{blob, raw_asset};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, Set, SqlErr, TransactionTrait,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{catalog_time, ContentType, Filename, ObjectKey, Sha256, SizeBytes};
use crate::{
    app::App,
    auth::Scope,
    error::{ApiError, ApiResult},
    events::{kind, Event},
    http::metrics::record_outcome,
    storage::{StoreError, Upload, UploadMethod, UploadSpec, UploadedPart, PRIVATE_IMMUTABLE},
};

pub struct PresignUpload {
    pub filename: Filename,
    pub content_type: ContentType,
    pub size: SizeBytes,
    pub sha256: Option<Sha256>,
    pub method: UploadMethod,
}

pub enum Presigned {
    Upload {
        asset_id: Uuid,
        key: ObjectKey,
        uri: String,
        upload: Upload,
        expires_at: DateTime<Utc>,
    },
    /// The tenant+env already stores this content: the asset is registered, nothing to upload.
    Deduplicated(Box<raw_asset::Model>),
}

/// The descriptive facts of a registration; `None` means "not stated".
#[derive(Debug, Default, Clone)]
pub struct Descriptive {
    pub captured_at: Option<DateTime<Utc>>,
    pub imported_at: Option<DateTime<Utc>>,
    pub source_ref: Option<String>,
    pub capture_location: Option<Value>,
    pub metadata: Option<Value>,
    pub pii_flags: Option<Value>,
    pub train_ok: Option<bool>,
}

pub struct Register {
    pub asset_id: Uuid,
    pub sha256: Sha256,
    pub size: SizeBytes,
    pub content_type: ContentType,
    pub descriptive: Descriptive,
    /// For a multipart upload: the parts and their ETags (else the store's list is used).
    pub parts: Option<Vec<UploadedPart>>,
}

fn catalog_key(key: &str) -> ApiResult<ObjectKey> {
    ObjectKey::parse(key).ok_or_else(|| ApiError::internal(format!("bad key in catalog: {key}")))
}

fn lineage(a: &raw_asset::Model) -> Value {
    json!({ "blob_id": a.blob_id, "source_ref": a.source_ref })
}

fn asset_event<'a>(
    k: &'static str,
    scope: &'a Scope,
    a: &raw_asset::Model,
    now: DateTime<Utc>,
) -> Event<'a> {
    let mut e = Event::new(k, scope, a.asset_id, now);
    e.lineage = lineage(a);
    e.pii_flags = a.pii_flags.clone();
    e.train_ok = Some(a.train_ok);
    e
}

async fn find_stored_blob(
    db: &impl ConnectionTrait,
    scope: &Scope,
    sha: &Sha256,
) -> Result<Option<blob::Model>, DbErr> {
    blob::Entity::find()
        .filter(blob::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(blob::Column::Env.eq(scope.env.as_str()))
        .filter(blob::Column::Visibility.eq(blob::VISIBILITY_PRIVATE))
        .filter(blob::Column::Sha256.eq(sha.to_hex()))
        .filter(blob::Column::State.eq(blob::STATE_STORED))
        .one(db)
        .await
}

/// Adds a reference to a stored blob; false when it is no longer stored.
async fn add_ref(
    db: &impl ConnectionTrait,
    blob_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = blob::Entity::update_many()
        .col_expr(
            blob::Column::RefCount,
            Expr::col(blob::Column::RefCount).add(1),
        )
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(blob_id))
        .filter(blob::Column::State.eq(blob::STATE_STORED))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The asset in the caller's tenant and env, unless deleted. Anything else is "not found".
pub async fn get(app: &App, scope: &Scope, asset_id: Uuid) -> ApiResult<raw_asset::Model> {
    raw_asset::Entity::find_by_id(asset_id)
        .filter(raw_asset::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(raw_asset::Column::Env.eq(scope.env.as_str()))
        .filter(raw_asset::Column::Status.ne(raw_asset::STATUS_DELETED))
        .one(&app.db)
        .await?
        .ok_or_else(ApiError::not_found)
}

pub async fn presign_upload(app: &App, scope: &Scope, req: PresignUpload) -> ApiResult<Presigned> {
    scope.require_write()?;
    let now = catalog_time(Utc::now());
    if let Some(sha) = &req.sha256 {
        if let Some(existing) = find_stored_blob(&app.db, scope, sha).await? {
            if existing.size_bytes != req.size.as_i64() {
                return Err(ApiError::unprocessable(
                    "size_mismatch",
                    format!(
                        "content with this sha256 is {} bytes, not {}",
                        existing.size_bytes,
                        req.size.get()
                    ),
                ));
            }
            if let Some(asset) = dedup(app, scope, &req, &existing, now).await? {
                record_outcome("presign_upload", "deduplicated");
                return Ok(Presigned::Deduplicated(Box::new(asset)));
            }
            // The blob stopped being stored meanwhile: upload as usual.
        }
    }

    let asset_id = Uuid::now_v7();
    let key = ObjectKey::raw_asset(&scope.tenant, &scope.env, asset_id, &req.filename);
    let expires_at = now + Duration::seconds(app.config.presign_ttl_secs as i64);
    let spec = UploadSpec {
        key: &key,
        content_type: &req.content_type,
        size: req.size,
        sha256: req.sha256,
        cache_control: PRIVATE_IMMUTABLE,
        expires_at,
    };
    // Large files go up in parts where the store wants that (S3); the local store takes any size.
    let multipart =
        if req.method == UploadMethod::Put && req.size.get() > app.config.multipart_threshold {
            app.store.presign_multipart(&spec).await?
        } else {
            None
        };
    let upload = match multipart {
        Some(upload) => upload,
        None => app.store.presign_upload(&spec, req.method).await?,
    };
    let upload_id = match &upload {
        Upload::Multipart { upload_id, .. } => Some(upload_id.clone()),
        _ => None,
    };
    let uri = app.store.uri(&key);
    let blob_id = Uuid::now_v7();
    let txn = app.db.begin().await?;
    blob::ActiveModel {
        id: Set(blob_id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        visibility: Set(blob::VISIBILITY_PRIVATE.into()),
        key: Set(key.to_string()),
        sha256: Set(req.sha256.map(|s| s.to_hex())),
        size_bytes: Set(req.size.as_i64()),
        content_type: Set(req.content_type.to_string()),
        state: Set(blob::STATE_PENDING.into()),
        ref_count: Set(1),
        upload_id: Set(upload_id),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let asset = new_asset(
        scope,
        asset_id,
        blob_id,
        &uri,
        &req,
        raw_asset::STATUS_PENDING,
        now,
    )
    .insert(&txn)
    .await?;
    let mut ev = asset_event(kind::RAW_UPLOAD_PRESIGNED, scope, &asset, now);
    ev.detail = json!({
        "key": key.as_str(),
        "method": upload.method(),
        "size_bytes": req.size.get(),
        "content_type": req.content_type.as_str(),
        "expires_at": expires_at,
    });
    ev.record(&txn).await?;
    txn.commit().await?;
    record_outcome("presign_upload", "ok");
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset_id, size_bytes = req.size.get(), "upload presigned");
    Ok(Presigned::Upload {
        asset_id,
        key,
        uri,
        upload,
        expires_at,
    })
}

fn new_asset(
    scope: &Scope,
    asset_id: Uuid,
    blob_id: Uuid,
    uri: &str,
    req: &PresignUpload,
    status: &str,
    now: DateTime<Utc>,
) -> raw_asset::ActiveModel {
    raw_asset::ActiveModel {
        asset_id: Set(asset_id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        uri: Set(uri.to_owned()),
        blob_id: Set(blob_id),
        filename: Set(req.filename.to_string()),
        sha256: Set(req.sha256.map(|s| s.to_hex())),
        size_bytes: Set(req.size.as_i64()),
        content_type: Set(req.content_type.to_string()),
        captured_at: Set(None),
        imported_at: Set(None),
        source_ref: Set(None),
        capture_location: Set(None),
        metadata: Set(json!({})),
        pii_flags: Set(json!([])),
        train_ok: Set(false),
        status: Set(status.to_owned()),
        sealed: Set(false),
        created_by: Set(scope.user.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Registers a new asset on an already stored blob. `None` when the blob stopped being stored.
async fn dedup(
    app: &App,
    scope: &Scope,
    req: &PresignUpload,
    existing: &blob::Model,
    now: DateTime<Utc>,
) -> ApiResult<Option<raw_asset::Model>> {
    let txn = app.db.begin().await?;
    if !add_ref(&txn, existing.id, now).await? {
        return Ok(None);
    }
    let asset_id = Uuid::now_v7();
    let uri = app.store.uri(&catalog_key(&existing.key)?);
    let asset = new_asset(
        scope,
        asset_id,
        existing.id,
        &uri,
        req,
        raw_asset::STATUS_REGISTERED,
        now,
    )
    .insert(&txn)
    .await?;
    let mut ev = asset_event(kind::RAW_DEDUPLICATED, scope, &asset, now);
    ev.detail = json!({ "blob_id": existing.id, "bytes_saved": existing.size_bytes });
    ev.record(&txn).await?;
    txn.commit().await?;
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset_id, blob.id = %existing.id, "deduplicated at presign");
    Ok(Some(asset))
}

pub async fn register(app: &App, scope: &Scope, req: Register) -> ApiResult<raw_asset::Model> {
    scope.require_write()?;
    let asset = get(app, scope, req.asset_id).await?;
    match asset.status.as_str() {
        raw_asset::STATUS_PENDING => verify_and_register(app, scope, asset, &req).await,
        raw_asset::STATUS_REGISTERED => already_registered(app, scope, asset, &req).await,
        _ => Err(ApiError::conflict(
            "asset_failed",
            "this asset failed verification; presign a new upload",
        )),
    }
}

fn same_facts(a: &raw_asset::Model, req: &Register) -> bool {
    a.sha256.as_deref() == Some(req.sha256.to_hex().as_str())
        && a.size_bytes == req.size.as_i64()
        && a.content_type == req.content_type.as_str()
}

fn same_descriptive(a: &raw_asset::Model, d: &Descriptive) -> bool {
    fn eq<T: PartialEq>(stated: &Option<T>, stored: &T) -> bool {
        stated.as_ref().is_none_or(|s| s == stored)
    }
    eq(&d.captured_at.map(Some), &a.captured_at)
        && eq(&d.imported_at.map(Some), &a.imported_at)
        && eq(&d.source_ref.clone().map(Some), &a.source_ref)
        && eq(&d.capture_location.clone().map(Some), &a.capture_location)
        && eq(&d.metadata, &a.metadata)
        && eq(&d.pii_flags, &a.pii_flags)
        && eq(&d.train_ok, &a.train_ok)
}

/// Registered assets are immutable: the same facts again are a no-op, different facts a 409.
/// The one exception is an asset deduplicated at presign, whose first register call supplies the
/// descriptive fields it could not have had.
async fn already_registered(
    app: &App,
    scope: &Scope,
    asset: raw_asset::Model,
    req: &Register,
) -> ApiResult<raw_asset::Model> {
    if !same_facts(&asset, req) {
        return Err(ApiError::conflict(
            "asset_conflict",
            "the asset is registered with a different sha256, size or content type",
        ));
    }
    if asset.sealed {
        return if same_descriptive(&asset, &req.descriptive) {
            Ok(asset)
        } else {
            Err(ApiError::conflict(
                "asset_conflict",
                "the asset is registered with different descriptive fields",
            ))
        };
    }
    let now = catalog_time(Utc::now());
    let txn = app.db.begin().await?;
    let updated = seal(
        &txn,
        &asset,
        None,
        &req.descriptive,
        raw_asset::STATUS_REGISTERED,
        now,
    )
    .await?;
    let Some(updated) = updated else {
        // Sealed concurrently: answer as for any sealed asset.
        drop(txn);
        let fresh = get(app, scope, asset.asset_id).await?;
        return Box::pin(already_registered(app, scope, fresh, req)).await;
    };
    asset_event(kind::RAW_REGISTERED, scope, &updated, now)
        .record(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Applies the descriptive fields and seals the asset, if it is still `from_status` and unsealed.
async fn seal(
    db: &impl ConnectionTrait,
    asset: &raw_asset::Model,
    new_blob: Option<(Uuid, &str)>,
    d: &Descriptive,
    from_status: &str,
    now: DateTime<Utc>,
) -> Result<Option<raw_asset::Model>, DbErr> {
    let mut m = asset.clone();
    m.captured_at = d.captured_at.or(m.captured_at);
    m.imported_at = Some(d.imported_at.or(m.imported_at).unwrap_or(now));
    m.source_ref = d.source_ref.clone().or(m.source_ref);
    m.capture_location = d.capture_location.clone().or(m.capture_location);
    m.metadata = d.metadata.clone().unwrap_or(m.metadata);
    m.pii_flags = d.pii_flags.clone().unwrap_or(m.pii_flags);
    m.train_ok = d.train_ok.unwrap_or(m.train_ok);
    if let Some((blob_id, uri)) = new_blob {
        m.blob_id = blob_id;
        m.uri = uri.to_owned();
    }
    m.status = raw_asset::STATUS_REGISTERED.into();
    m.sealed = true;
    m.updated_at = now;
    let res = raw_asset::Entity::update_many()
        .col_expr(raw_asset::Column::CapturedAt, Expr::value(m.captured_at))
        .col_expr(raw_asset::Column::ImportedAt, Expr::value(m.imported_at))
        .col_expr(
            raw_asset::Column::SourceRef,
            Expr::value(m.source_ref.clone()),
        )
        .col_expr(
            raw_asset::Column::CaptureLocation,
            Expr::value(m.capture_location.clone()),
        )
        .col_expr(raw_asset::Column::Metadata, Expr::value(m.metadata.clone()))
        .col_expr(
            raw_asset::Column::PiiFlags,
            Expr::value(m.pii_flags.clone()),
        )
        .col_expr(raw_asset::Column::TrainOk, Expr::value(m.train_ok))
        .col_expr(raw_asset::Column::Sha256, Expr::value(m.sha256.clone()))
        .col_expr(raw_asset::Column::BlobId, Expr::value(m.blob_id))
        .col_expr(raw_asset::Column::Uri, Expr::value(m.uri.clone()))
        .col_expr(raw_asset::Column::Status, Expr::value(m.status.clone()))
        .col_expr(raw_asset::Column::Sealed, Expr::value(true))
        .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
        .filter(raw_asset::Column::AssetId.eq(asset.asset_id))
        .filter(raw_asset::Column::Status.eq(from_status))
        .filter(raw_asset::Column::Sealed.eq(false))
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then_some(m))
}

async fn verify_and_register(
    app: &App,
    scope: &Scope,
    asset: raw_asset::Model,
    req: &Register,
) -> ApiResult<raw_asset::Model> {
    let blob = blob::Entity::find_by_id(asset.blob_id)
        .one(&app.db)
        .await?
        .ok_or_else(|| ApiError::internal("asset without blob"))?;
    let key = catalog_key(&blob.key)?;
    if let Some(upload_id) = &blob.upload_id {
        match app
            .store
            .complete_multipart(&key, upload_id, req.parts.as_deref())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Other(detail)) => {
                let detail = format!("the multipart upload cannot be completed: {detail}");
                fail(
                    app,
                    scope,
                    &asset,
                    &blob,
                    &key,
                    "upload_incomplete",
                    &detail,
                )
                .await?;
                record_outcome("register", "failed");
                return Err(ApiError::unprocessable("upload_incomplete", detail));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stored = app.store.facts(&key).await?;
    let mismatch = match stored {
        None => Some((
            "object_missing",
            "no object was uploaded for this asset".to_owned(),
        )),
        Some((size, _)) if size != req.size.get() => Some((
            "size_mismatch",
            format!("the stored object is {size} bytes, not {}", req.size.get()),
        )),
        Some((_, sha)) if sha != req.sha256 => Some((
            "checksum_mismatch",
            format!("the stored object's sha256 is {sha}, not {}", req.sha256),
        )),
        Some(_) if asset.content_type != req.content_type.as_str() => Some((
            "content_type_mismatch",
            format!("the upload was presigned as `{}`", asset.content_type),
        )),
        Some(_) => None,
    };
    if let Some((code, detail)) = mismatch {
        fail(app, scope, &asset, &blob, &key, code, &detail).await?;
        record_outcome("register", "failed");
        return Err(ApiError::unprocessable(code, detail));
    }

    // Verified. Commit, pointing the asset at an already stored blob of the same content if the
    // tenant+env has one (two uploads of one file raced, or the client skipped the sha256).
    for _ in 0..3 {
        let now = catalog_time(Utc::now());
        let txn = app.db.begin().await?;
        let existing = find_stored_blob(&txn, scope, &req.sha256).await?;
        let mut asset = asset.clone();
        asset.sha256 = Some(req.sha256.to_hex());
        let duplicate_of = match existing {
            Some(e) if e.id != blob.id => {
                if !add_ref(&txn, e.id, now).await? {
                    continue;
                }
                Some(e)
            }
            _ => {
                let res = blob::Entity::update_many()
                    .col_expr(blob::Column::State, Expr::value(blob::STATE_STORED))
                    .col_expr(blob::Column::Sha256, Expr::value(req.sha256.to_hex()))
                    .col_expr(blob::Column::UploadId, Expr::value(None::<String>))
                    .col_expr(blob::Column::UpdatedAt, Expr::value(now))
                    .filter(blob::Column::Id.eq(blob.id))
                    .filter(blob::Column::State.eq(blob::STATE_PENDING))
                    .exec(&txn)
                    .await;
                match res {
                    Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => None,
                }
            }
        };
        let new_blob = match &duplicate_of {
            Some(e) => Some((e.id, app.store.uri(&catalog_key(&e.key)?))),
            None => None,
        };
        let sealed = seal(
            &txn,
            &asset,
            new_blob.as_ref().map(|(id, uri)| (*id, uri.as_str())),
            &req.descriptive,
            raw_asset::STATUS_PENDING,
            now,
        )
        .await?;
        let Some(registered) = sealed else {
            // Registered concurrently by another call: answer as a repeat registration.
            drop(txn);
            let fresh = get(app, scope, asset.asset_id).await?;
            return already_registered(app, scope, fresh, req).await;
        };
        if let Some(dup) = &duplicate_of {
            blob::Entity::delete_by_id(blob.id).exec(&txn).await?;
            let mut ev = asset_event(kind::RAW_DEDUPLICATED, scope, &registered, now);
            ev.detail = json!({ "blob_id": dup.id, "bytes_saved": dup.size_bytes });
            ev.record(&txn).await?;
        }
        let mut ev = asset_event(kind::RAW_REGISTERED, scope, &registered, now);
        ev.detail = json!({ "sha256": req.sha256.to_hex(), "size_bytes": req.size.get() });
        ev.record(&txn).await?;
        txn.commit().await?;
        if duplicate_of.is_some() {
            // The catalog no longer references our copy. If this delete is lost, the orphan
            // check of the lifecycle sweep finds the object.
            if let Err(e) = app.store.delete(&key).await {
                tracing::warn!(error = %e, key = %key, "could not remove a duplicate object");
            }
        }
        record_outcome("register", "ok");
        tracing::info!(tenant.id = %scope.tenant, asset.id = %registered.asset_id, "asset registered");
        return Ok(registered);
    }
    Err(ApiError::unavailable(
        "contention",
        "the asset's content changed state repeatedly; retry",
    ))
}

/// Marks the asset and its blob `failed` with an event, then removes the refused object.
async fn fail(
    app: &App,
    scope: &Scope,
    asset: &raw_asset::Model,
    blob: &blob::Model,
    key: &ObjectKey,
    code: &str,
    detail: &str,
) -> ApiResult<()> {
    let now = catalog_time(Utc::now());
    let txn = app.db.begin().await?;
    let res = raw_asset::Entity::update_many()
        .col_expr(
            raw_asset::Column::Status,
            Expr::value(raw_asset::STATUS_FAILED),
        )
        .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
        .filter(raw_asset::Column::AssetId.eq(asset.asset_id))
        .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        // Someone else settled it first; leave their outcome alone.
        return Ok(());
    }
    blob::Entity::update_many()
        .col_expr(blob::Column::State, Expr::value(blob::STATE_FAILED))
        .col_expr(blob::Column::RefCount, Expr::value(0))
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(blob.id))
        .filter(blob::Column::State.eq(blob::STATE_PENDING))
        .exec(&txn)
        .await?;
    let mut ev = asset_event(kind::RAW_REGISTER_FAILED, scope, asset, now);
    ev.detail = json!({ "code": code, "detail": detail });
    ev.record(&txn).await?;
    txn.commit().await?;
    if let Some(upload_id) = &blob.upload_id {
        if let Err(e) = app.store.abort_multipart(key, upload_id).await {
            tracing::warn!(error = %e, key = %key, "could not abort a refused multipart upload");
        }
    }
    if let Err(e) = app.store.delete(key).await {
        tracing::warn!(error = %e, key = %key, "could not remove a refused object");
    }
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset.asset_id, code, "registration refused");
    Ok(())
}

pub async fn presign_download(
    app: &App,
    scope: &Scope,
    asset_id: Uuid,
    expires_in: Option<u64>,
) -> ApiResult<(String, DateTime<Utc>)> {
    let asset = get(app, scope, asset_id).await?;
    if asset.status != raw_asset::STATUS_REGISTERED {
        return Err(ApiError::conflict(
            "not_registered",
            format!(
                "the asset is {}; only registered assets can be downloaded",
                asset.status
            ),
        ));
    }
    let blob = blob::Entity::find_by_id(asset.blob_id)
        .one(&app.db)
        .await?
        .ok_or_else(|| ApiError::internal("asset without blob"))?;
    let key = catalog_key(&blob.key)?;
    let filename = Filename::parse(&asset.filename)
        .map_err(|_| ApiError::internal("bad filename in catalog"))?;
    let now = catalog_time(Utc::now());
    let ttl = expires_in.unwrap_or(app.config.presign_ttl_secs);
    let expires_at = now + Duration::seconds(ttl as i64);
    let url = app
        .store
        .presign_download(&key, &filename, expires_at)
        .await?;
    let mut ev = asset_event(kind::RAW_DOWNLOAD_PRESIGNED, scope, &asset, now);
    ev.detail = json!({ "expires_at": expires_at, "size_bytes": asset.size_bytes });
    ev.record(&app.db).await?;
    record_outcome("presign_download", "ok");
    Ok((url, expires_at))
}
