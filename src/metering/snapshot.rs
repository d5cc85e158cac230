//! The storage sample of a metering tick: each tenant+env's physical bytes now, added to the
//! day's `usage_daily` row (sample count, sum and peak; average = sum / samples), with its
//! objects and logical bytes at that moment. A server starting takes one for every tenant+env
//! whose day has none yet ([`sample_missing`]): stored bytes and GB-days do not read 0 until the
//! first metering tick.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::{usage, usage_daily};
use sea_orm::{
    sea_query::{Alias, Expr, OnConflict},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};

use crate::usage::day_of;

/// Samples every counter row into `now`'s day; answers how many rows were sampled.
pub async fn sample<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let rows = usage::Entity::find().all(db).await?;
    add_samples(db, &rows, now).await
}

/// Samples the counter rows whose `usage_daily` row of `now`'s day has no sample yet (none at
/// all, or activity only); answers how many. Rows already sampled that day are left alone, so
/// their averages do not lean towards the moment of a restart.
pub async fn sample_missing<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    use usage_daily::Column as D;
    let sampled: HashSet<(String, String)> = usage_daily::Entity::find()
        .select_only()
        .column(D::TenantId)
        .column(D::Env)
        .filter(D::Day.eq(day_of(now)))
        .filter(D::Samples.gt(0))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<usage::Model> = usage::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|u| !sampled.contains(&(u.tenant_id.clone(), u.env.clone())))
        .collect();
    add_samples(db, &rows, now).await
}

/// Adds one sample of each of `rows` to `now`'s day.
async fn add_samples<C: ConnectionTrait>(
    db: &C,
    rows: &[usage::Model],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use usage_daily::Column as D;
    let day = day_of(now);
    for u in rows {
        let row = usage_daily::Model {
            tenant_id: u.tenant_id.clone(),
            env: u.env.clone(),
            day: day.clone(),
            uploads: 0,
            upload_bytes: 0,
            download_urls: 0,
            download_url_bytes: 0,
            downloads: 0,
            download_bytes: 0,
            dedup_hits: 0,
            dedup_bytes_saved: 0,
            purges: 0,
            reclaimed_bytes: 0,
            cdn_requests: 0,
            cdn_bytes: 0,
            samples: 1,
            stored_bytes_sum: u.physical_bytes,
            stored_bytes_peak: u.physical_bytes,
            objects: u.objects,
            logical_bytes: u.logical_bytes,
            updated_at: now,
        };
        let col = |c: D| Expr::col((Alias::new("usage_daily"), c));
        let new = |c: D| Expr::col((Alias::new("excluded"), c));
        let mut on = OnConflict::columns([D::TenantId, D::Env, D::Day]);
        on.value(D::Samples, col(D::Samples).add(1))
            .value(
                D::StoredBytesSum,
                col(D::StoredBytesSum).add(new(D::StoredBytesSum)),
            )
            .value(
                D::StoredBytesPeak,
                Expr::case(
                    new(D::StoredBytesPeak).gt(col(D::StoredBytesPeak)),
                    new(D::StoredBytesPeak),
                )
                .finally(col(D::StoredBytesPeak)),
            )
            .update_columns([D::Objects, D::LogicalBytes, D::UpdatedAt]);
        usage_daily::Entity::insert(row.into_active_model())
            .on_conflict(on)
            .exec_without_returning(db)
            .await?;
    }
    Ok(rows.len() as u64)
}
