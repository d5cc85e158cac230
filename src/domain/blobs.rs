//! Blob bookkeeping shared by raw assets and artifacts: finding stored content for dedup and
//! counting references. Callers pass their transaction.
use chrono::{DateTime, Utc};
use entity::blob;
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{media::Visibility, ObjectKey, Sha256};
use crate::{auth::Scope, core::Core, problem::Problem};

/// A key read from the catalog; one that does not parse is the catalog's fault (500).
pub fn catalog_key(key: &str) -> Result<ObjectKey, Problem> {
    ObjectKey::parse(key).ok_or_else(|| Problem::internal(format!("bad key in catalog: {key}")))
}

/// The object key of blob `id`, from [`crate::core::BlobKeys`] once read (a blob's key never
/// changes); `None` when no such blob exists.
pub async fn key_of(core: &Core, id: Uuid) -> Result<Option<ObjectKey>, Problem> {
    if let Some(key) = core.blob_keys.get(id) {
        return Ok(Some(key));
    }
    let key: Option<String> = blob::Entity::find_by_id(id)
        .select_only()
        .column(blob::Column::Key)
        .into_tuple()
        .one(&core.read)
        .await?;
    let Some(key) = key else {
        return Ok(None);
    };
    let key = catalog_key(&key)?;
    core.blob_keys.insert(id, key.clone());
    Ok(Some(key))
}

/// The stored blob of this content in the scope's tenant+env and `visibility`, if any.
pub async fn find_stored(
    db: &impl ConnectionTrait,
    scope: &Scope,
    visibility: Visibility,
    sha: &Sha256,
) -> Result<Option<blob::Model>, DbErr> {
    blob::Entity::find()
        .filter(blob::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(blob::Column::Env.eq(scope.env.as_str()))
        .filter(blob::Column::Visibility.eq(visibility.as_str()))
        .filter(blob::Column::Sha256.eq(sha.to_hex()))
        .filter(blob::Column::State.eq(blob::STATE_STORED))
        .one(db)
        .await
}

/// Adds a reference to a stored blob; false when it is no longer stored.
pub async fn add_ref(
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

/// Marks a blob `stored` with its verified sha256, if it is still in `from_state`. Fails with a
/// unique violation when the tenant+env already stores this content (a race the caller retries).
pub async fn mark_stored(
    db: &impl ConnectionTrait,
    blob_id: Uuid,
    from_state: &str,
    sha: &Sha256,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = blob::Entity::update_many()
        .col_expr(blob::Column::State, Expr::value(blob::STATE_STORED))
        .col_expr(blob::Column::Sha256, Expr::value(sha.to_hex()))
        .col_expr(blob::Column::UploadId, Expr::value(None::<String>))
        .col_expr(blob::Column::UpdatedAt, Expr::value(now))
        .filter(blob::Column::Id.eq(blob_id))
        .filter(blob::Column::State.eq(from_state))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Sets a blob's state (and drops its references when it failed), if it is still in `from_state`.
pub async fn set_state(
    db: &impl ConnectionTrait,
    blob_id: Uuid,
    from_state: &str,
    to_state: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut q = blob::Entity::update_many()
        .col_expr(blob::Column::State, Expr::value(to_state))
        .col_expr(blob::Column::UpdatedAt, Expr::value(now));
    if to_state == blob::STATE_FAILED {
        q = q.col_expr(blob::Column::RefCount, Expr::value(0));
    }
    let res = q
        .filter(blob::Column::Id.eq(blob_id))
        .filter(blob::Column::State.eq(from_state))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
