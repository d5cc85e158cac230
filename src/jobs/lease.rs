//! Job leases in the catalog: a row per job naming its holder until an expiry. Works the same on
//! SQLite and Postgres; a holder that dies loses its lease when the expiry passes. Lease times are
//! wall-clock time, never a job's injected clock.
use chrono::{DateTime, Duration, Utc};
use entity::job_lease::{self, Column, Entity};
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::values::catalog_time;

/// A lease this process holds on `name`.
#[derive(Debug, Clone)]
pub struct Lease {
    pub name: &'static str,
    pub holder: String,
    pub ttl: Duration,
}

/// Who holds a lease now.
#[derive(Debug, Clone)]
pub struct Held {
    /// The lease's name (the job's).
    pub name: &'static str,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    pub fn new(name: &'static str, holder: String, ttl: Duration) -> Self {
        Self { name, holder, ttl }
    }

    /// A lease for one run of `name` by `holder` ([`holder_id`]). Its holder token is new each
    /// time, so a process whose previous run still goes (a tick won while running) finds the
    /// lease held, even by itself.
    pub fn for_run(name: &'static str, holder: &str, ttl: Duration) -> Self {
        let run = uuid::Uuid::now_v7().simple().to_string();
        Self::new(name, format!("{holder}:{}", &run[run.len() - 8..]), ttl)
    }

    /// Takes the lease if it is free, expired or already ours; otherwise says who holds it.
    pub async fn acquire<C: ConnectionTrait>(&self, db: &C) -> Result<Result<(), Held>, DbErr> {
        let now = catalog_time(Utc::now());
        let expires_at = now + self.ttl;
        Entity::insert(job_lease::ActiveModel {
            name: Set(self.name.to_owned()),
            holder: Set(self.holder.clone()),
            expires_at: Set(expires_at),
        })
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
        // Inserted, or taken over from an expired holder; either way the row then names us.
        Entity::update_many()
            .col_expr(Column::Holder, Expr::value(self.holder.clone()))
            .col_expr(Column::ExpiresAt, Expr::value(expires_at))
            .filter(Column::Name.eq(self.name))
            .filter(
                Column::ExpiresAt
                    .lt(now)
                    .or(Column::Holder.eq(self.holder.clone())),
            )
            .exec(db)
            .await?;
        let row = Entity::find_by_id(self.name.to_owned()).one(db).await?;
        Ok(match row {
            Some(r) if r.holder == self.holder => Ok(()),
            Some(r) => Err(Held {
                name: self.name,
                holder: r.holder,
                expires_at: r.expires_at,
            }),
            None => Err(Held {
                name: self.name,
                holder: "unknown".into(),
                expires_at: now,
            }),
        })
    }

    /// Extends the lease; false when it was lost (expired and taken by another holder).
    pub async fn renew<C: ConnectionTrait>(&self, db: &C) -> Result<bool, DbErr> {
        let now = catalog_time(Utc::now());
        let res = Entity::update_many()
            .col_expr(Column::ExpiresAt, Expr::value(now + self.ttl))
            .filter(Column::Name.eq(self.name))
            .filter(Column::Holder.eq(self.holder.clone()))
            .exec(db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Gives the lease up, if we still hold it.
    pub async fn release<C: ConnectionTrait>(&self, db: &C) -> Result<(), DbErr> {
        Entity::delete_many()
            .filter(Column::Name.eq(self.name))
            .filter(Column::Holder.eq(self.holder.clone()))
            .exec(db)
            .await
            .map(|_| ())
    }
}

/// This process's name in run records (`host:pid:random`); a lease adds a token per run.
pub fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let host: String = host.chars().take(32).collect();
    let nonce = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &nonce[nonce.len() - 8..]
    )
}
