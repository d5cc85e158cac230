//! Recording a [`Delta`]: upserts that add it to the tenant+env's `usage` row and to the day's
//! `usage_daily` row (activity only), with the columns of [`counters!`].
use chrono::{DateTime, Utc};
use entity::{usage, usage_daily};
use sea_orm::{
    sea_query::{Alias, Expr, OnConflict},
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set,
};

use super::{counters, Delta, KINDS};

/// `$row.field = Set($d.field)` for every counter.
macro_rules! set {
    ($row:ident, $d:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $($row.$s = Set($d.$s);)*
        $($row.$a = Set($d.$a);)*
    };
}

/// `$row.field = Set($d.field)` for every activity counter.
macro_rules! set_activity {
    ($row:ident, $d:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $($row.$a = Set($d.$a);)*
    };
}

/// `col = col + excluded.col` for every counter.
macro_rules! accumulate_all {
    ($on:ident, $table:literal, $cols:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $(accumulate(&mut $on, $table, $cols::$sc);)*
        $(accumulate(&mut $on, $table, $cols::$ac);)*
    };
}

/// `col = col + excluded.col` for every activity counter.
macro_rules! accumulate_activity {
    ($on:ident, $table:literal, $cols:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $(accumulate(&mut $on, $table, $cols::$ac);)*
    };
}

/// Deltas of many tenant+envs (a sweep's batch), recorded in key order so that concurrent
/// transactions lock counter rows in the same order.
#[derive(Debug, Default)]
pub struct Batch(std::collections::BTreeMap<(String, String), Delta>);

impl Batch {
    pub fn add(&mut self, tenant: &str, env: &str, d: &Delta) {
        self.0
            .entry((tenant.to_owned(), env.to_owned()))
            .or_default()
            .add(d);
    }

    pub async fn record<C: ConnectionTrait>(
        &self,
        db: &C,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        for ((tenant, env), d) in &self.0 {
            record(db, tenant, env, now, d).await?;
        }
        Ok(())
    }
}

/// Adds `d` to the tenant+env's counters and to the activity of `now`'s day.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    env: &str,
    now: DateTime<Utc>,
    d: &Delta,
) -> Result<(), DbErr> {
    record_on(db, tenant, env, &day_of(now), now, d).await
}

/// Like [`record`], with the activity added to `day` (CDN logs name the day of their requests).
pub async fn record_on<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    env: &str,
    day: &str,
    now: DateTime<Utc>,
    d: &Delta,
) -> Result<(), DbErr> {
    if d.is_zero() {
        return Ok(());
    }
    add_to_usage(db, tenant, env, now, d).await?;
    if d.has_activity() {
        add_to_day(db, tenant, env, day, now, d).await?;
    }
    Ok(())
}

/// `YYYY-MM-DD` of a UTC time: the key of `usage_daily`.
pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// `col = col + excluded.col` for an upsert.
fn accumulate<C: sea_orm::sea_query::IntoIden + Copy + 'static>(
    on: &mut OnConflict,
    table: &'static str,
    col: C,
) {
    on.value(
        col,
        Expr::col((Alias::new(table), col)).add(Expr::col((Alias::new("excluded"), col))),
    );
}

async fn add_to_usage<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    env: &str,
    now: DateTime<Utc>,
    d: &Delta,
) -> Result<(), DbErr> {
    use usage::Column as U;
    let mut row = usage::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        env: Set(env.to_owned()),
        updated_at: Set(now),
        ..Default::default()
    };
    counters!(set!(row, d));
    let mut on = OnConflict::columns([U::TenantId, U::Env]);
    counters!(accumulate_all!(on, "usage", U));
    for ((_, c, _), bytes) in KINDS.iter().zip(d.kind_bytes) {
        row.set(*c, bytes.into());
        if bytes != 0 {
            accumulate(&mut on, "usage", *c);
        }
    }
    on.update_column(U::UpdatedAt);
    usage::Entity::insert(row)
        .on_conflict(on)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Adds the activity of `d` to one day's row.
async fn add_to_day<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    env: &str,
    day: &str,
    now: DateTime<Utc>,
    d: &Delta,
) -> Result<(), DbErr> {
    use usage_daily::Column as D;
    let mut row = usage_daily::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        env: Set(env.to_owned()),
        day: Set(day.to_owned()),
        samples: Set(0),
        stored_bytes_sum: Set(0),
        stored_bytes_peak: Set(0),
        objects: Set(0),
        logical_bytes: Set(0),
        updated_at: Set(now),
        ..Default::default()
    };
    counters!(set_activity!(row, d));
    let mut on = OnConflict::columns([D::TenantId, D::Env, D::Day]);
    counters!(accumulate_activity!(on, "usage_daily", D));
    on.update_column(D::UpdatedAt);
    usage_daily::Entity::insert(row)
        .on_conflict(on)
        .exec_without_returning(db)
        .await?;
    Ok(())
}
