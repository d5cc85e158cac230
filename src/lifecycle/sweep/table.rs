//! The two tables of items the sweep walks, artifacts and raw assets, behind one [`Table`]: the
//! abandon, expire and purge loops are written once and ask the table for its conditions, its
//! guarded writes, its events and the facts of a row.
use chrono::{DateTime, Utc};
use entity::{artifact, raw_asset};
use sea_orm::{
    sea_query::Expr, ColumnTrait, Condition, DeleteMany, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, UpdateMany,
};
use uuid::Uuid;

use super::ITEM_BATCH;
use crate::{
    auth::Scope,
    domain::{artifacts, media::Kind, raw_assets},
    events::{kind, Event},
    lifecycle::policy::{Item, Retention, RAW},
    usage::Delta,
};

/// The step an item's event reports.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    /// An upload not completed within the TTL became `failed`.
    Abandoned,
    /// Expiry or retention made the item `deleted`.
    Deleted,
    /// A `deleted` item lost its row.
    Purged,
}

/// What the sweep reads of one row, whichever its table.
pub(super) struct Facts<'a> {
    pub id: Uuid,
    pub status: &'a str,
    pub size_bytes: i64,
    /// The blob it holds (an artifact created without bytes holds none).
    pub blob: Option<Uuid>,
    /// When it became `deleted` (a raw asset's last update).
    pub deleted_at: Option<DateTime<Utc>>,
    /// What retention judges (tenant, env, kind, ages, hold).
    pub item: Item<'a>,
}

/// One table of items. Every write is guarded by the state the row was read in, so a row that
/// changed meanwhile is left alone (the write affects no row).
pub(super) trait Table {
    type Entity: EntityTrait;

    /// The primary key, which pages are ordered by.
    fn id_column() -> <Self::Entity as EntityTrait>::Column;
    fn facts(row: &Row<Self>) -> Facts<'_>;
    /// The counters the row holds while live (none while it is not).
    fn live(row: &Row<Self>) -> Option<Delta>;

    /// Uploads still incomplete, created at or before `cutoff`.
    fn abandoned(cutoff: DateTime<Utc>) -> Condition;
    /// Items expiry or retention may remove as of `now` (`oldest_kept`: the creation time before
    /// which the shortest rule keeps nothing); `None` when no rule can remove one of this table.
    fn due(
        now: DateTime<Utc>,
        oldest_kept: Option<DateTime<Utc>>,
        retention: &Retention,
    ) -> Option<Condition>;
    /// `deleted` items whose grace period ended at `cutoff`.
    fn purgeable(cutoff: DateTime<Utc>) -> Condition;

    /// The abandoned row becomes `failed`.
    fn fail(row: &Row<Self>, now: DateTime<Utc>) -> UpdateMany<Self::Entity>;
    /// The expired row becomes `deleted`.
    fn delete(row: &Row<Self>, now: DateTime<Utc>) -> UpdateMany<Self::Entity>;
    /// The rows of `ids` that are still `deleted` (and not held) go.
    fn purge(ids: &[Uuid]) -> DeleteMany<Self::Entity>;
    /// The event a step records for the row.
    fn event<'s>(step: Step, scope: &'s Scope, row: &Row<Self>, now: DateTime<Utc>) -> Event<'s>;
}

/// A row of a table.
pub(super) type Row<T> = <<T as Table>::Entity as EntityTrait>::Model;

/// Rows matching `cond` after `after`, in key order, one batch.
pub(super) fn page<T: Table>(cond: Condition, after: Uuid) -> Select<T::Entity> {
    T::Entity::find()
        .filter(cond)
        .filter(T::id_column().gt(after))
        .order_by_asc(T::id_column())
        .limit(ITEM_BATCH)
}

pub(super) struct Artifacts;

impl Table for Artifacts {
    type Entity = artifact::Entity;

    fn id_column() -> artifact::Column {
        artifact::Column::ArtifactId
    }

    fn facts(a: &artifact::Model) -> Facts<'_> {
        Facts {
            id: a.artifact_id,
            status: &a.status,
            size_bytes: a.size_bytes,
            blob: a.blob_id,
            deleted_at: a.deleted_at,
            item: Item {
                tenant: &a.tenant_id,
                env: &a.env,
                kind: &a.kind,
                created_at: a.created_at,
                expires_at: a.expires_at,
                legal_hold: a.legal_hold,
            },
        }
    }

    fn live(a: &artifact::Model) -> Option<Delta> {
        (a.status == artifact::STATUS_AVAILABLE)
            .then(|| Delta::live(Kind::parse(&a.kind).ok(), a.size_bytes))
    }

    fn abandoned(cutoff: DateTime<Utc>) -> Condition {
        Condition::all()
            .add(
                artifact::Column::Status
                    .is_in([artifact::STATUS_PENDING, artifact::STATUS_UPLOADING]),
            )
            .add(artifact::Column::CreatedAt.lte(cutoff))
    }

    fn due(
        now: DateTime<Utc>,
        oldest_kept: Option<DateTime<Utc>>,
        _: &Retention,
    ) -> Option<Condition> {
        let mut due = artifact::Column::ExpiresAt.lte(now);
        if let Some(t) = oldest_kept {
            due = due.or(artifact::Column::CreatedAt.lte(t));
        }
        Some(
            Condition::all()
                .add(
                    artifact::Column::Status
                        .is_in([artifact::STATUS_AVAILABLE, artifact::STATUS_FAILED]),
                )
                .add(artifact::Column::LegalHold.eq(false))
                .add(due),
        )
    }

    fn purgeable(cutoff: DateTime<Utc>) -> Condition {
        Condition::all()
            .add(artifact::Column::Status.eq(artifact::STATUS_DELETED))
            .add(artifact::Column::DeletedAt.lte(cutoff))
            .add(artifact::Column::LegalHold.eq(false))
    }

    fn fail(a: &artifact::Model, now: DateTime<Utc>) -> UpdateMany<artifact::Entity> {
        artifact::Entity::update_many()
            .col_expr(
                artifact::Column::Status,
                Expr::value(artifact::STATUS_FAILED),
            )
            .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
            .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
            .filter(artifact::Column::Status.eq(a.status.clone()))
    }

    fn delete(a: &artifact::Model, now: DateTime<Utc>) -> UpdateMany<artifact::Entity> {
        artifact::Entity::update_many()
            .col_expr(
                artifact::Column::Status,
                Expr::value(artifact::STATUS_DELETED),
            )
            .col_expr(artifact::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
            .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
            .filter(artifact::Column::Status.eq(a.status.clone()))
            .filter(artifact::Column::LegalHold.eq(false))
    }

    fn purge(ids: &[Uuid]) -> DeleteMany<artifact::Entity> {
        artifact::Entity::delete_many()
            .filter(artifact::Column::ArtifactId.is_in(ids.iter().copied()))
            .filter(artifact::Column::Status.eq(artifact::STATUS_DELETED))
            .filter(artifact::Column::LegalHold.eq(false))
    }

    fn event<'s>(
        step: Step,
        scope: &'s Scope,
        a: &artifact::Model,
        now: DateTime<Utc>,
    ) -> Event<'s> {
        let k = match step {
            Step::Abandoned => artifacts::ev::FAILED,
            Step::Deleted => artifacts::ev::DELETED,
            Step::Purged => artifacts::ev::PURGED,
        };
        artifacts::artifact_event(k, scope, a, now)
    }
}

pub(super) struct RawAssets;

impl Table for RawAssets {
    type Entity = raw_asset::Entity;

    fn id_column() -> raw_asset::Column {
        raw_asset::Column::AssetId
    }

    fn facts(r: &raw_asset::Model) -> Facts<'_> {
        Facts {
            id: r.asset_id,
            status: &r.status,
            size_bytes: r.size_bytes,
            blob: Some(r.blob_id),
            deleted_at: Some(r.updated_at),
            item: Item {
                tenant: &r.tenant_id,
                env: &r.env,
                kind: RAW,
                created_at: r.created_at,
                expires_at: None,
                legal_hold: false,
            },
        }
    }

    fn live(r: &raw_asset::Model) -> Option<Delta> {
        (r.status == raw_asset::STATUS_REGISTERED).then(|| Delta::live(None, r.size_bytes))
    }

    fn abandoned(cutoff: DateTime<Utc>) -> Condition {
        Condition::all()
            .add(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
            .add(raw_asset::Column::CreatedAt.lte(cutoff))
    }

    /// Raw assets have no `expires_at`: only a retention rule that covers them removes them.
    fn due(
        _: DateTime<Utc>,
        oldest_kept: Option<DateTime<Utc>>,
        retention: &Retention,
    ) -> Option<Condition> {
        let oldest_kept = oldest_kept.filter(|_| retention.covers_raw())?;
        Some(
            Condition::all()
                .add(
                    raw_asset::Column::Status
                        .is_in([raw_asset::STATUS_REGISTERED, raw_asset::STATUS_FAILED]),
                )
                .add(raw_asset::Column::CreatedAt.lte(oldest_kept)),
        )
    }

    fn purgeable(cutoff: DateTime<Utc>) -> Condition {
        Condition::all()
            .add(raw_asset::Column::Status.eq(raw_asset::STATUS_DELETED))
            .add(raw_asset::Column::UpdatedAt.lte(cutoff))
    }

    fn fail(r: &raw_asset::Model, now: DateTime<Utc>) -> UpdateMany<raw_asset::Entity> {
        raw_asset::Entity::update_many()
            .col_expr(
                raw_asset::Column::Status,
                Expr::value(raw_asset::STATUS_FAILED),
            )
            .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
            .filter(raw_asset::Column::AssetId.eq(r.asset_id))
            .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
    }

    fn delete(r: &raw_asset::Model, now: DateTime<Utc>) -> UpdateMany<raw_asset::Entity> {
        raw_asset::Entity::update_many()
            .col_expr(
                raw_asset::Column::Status,
                Expr::value(raw_asset::STATUS_DELETED),
            )
            .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
            .filter(raw_asset::Column::AssetId.eq(r.asset_id))
            .filter(raw_asset::Column::Status.eq(r.status.clone()))
    }

    fn purge(ids: &[Uuid]) -> DeleteMany<raw_asset::Entity> {
        raw_asset::Entity::delete_many()
            .filter(raw_asset::Column::AssetId.is_in(ids.iter().copied()))
            .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_DELETED))
    }

    fn event<'s>(
        step: Step,
        scope: &'s Scope,
        r: &raw_asset::Model,
        now: DateTime<Utc>,
    ) -> Event<'s> {
        let k = match step {
            Step::Abandoned => kind::RAW_ABANDONED,
            Step::Deleted => kind::RAW_DELETED,
            Step::Purged => kind::RAW_PURGED,
        };
        raw_assets::asset_event(k, scope, r, now)
    }
}
