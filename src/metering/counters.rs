//! The exact counters: a [`Delta`] applied to `usage` (and the day's `usage_daily` row) inside the
//! caller's transaction, so a counter changes exactly when what it counts commits.
//!
//! Stock counters say what is stored: `objects`, `logical_bytes` and bytes per kind count live
//! items (artifacts `available`, raw assets `registered`); `physical_bytes` counts blobs in state
//! `stored` (shared content once). Activity counters only grow. Callers lock their item and blob
//! rows first and record the delta last, so transactions take the counter rows in one order.
//!
//! Reads write nothing: download URLs handed out and bytes Cairn serves itself are added up in
//! memory ([`super::buffer`]) and recorded here in batches.
use chrono::{DateTime, Utc};
use entity::{usage, usage_daily};
use sea_orm::{
    sea_query::{Alias, Expr, OnConflict},
    ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
};

use crate::domain::media::Kind;

/// What one change adds to a tenant+env's counters (negative for what it removes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub objects: i64,
    pub logical_bytes: i64,
    pub physical_bytes: i64,
    /// Bytes per kind, in [`KINDS`] order.
    pub kind_bytes: [i64; 8],
    pub uploads: i64,
    pub upload_bytes: i64,
    /// Download URLs handed out, and their items' bytes.
    pub download_urls: i64,
    pub download_url_bytes: i64,
    /// Downloads served (Cairn's and CloudFront's), and the bytes sent.
    pub downloads: i64,
    pub download_bytes: i64,
    pub dedup_hits: i64,
    pub dedup_bytes_saved: i64,
    pub purges: i64,
    pub reclaimed_bytes: i64,
    pub cdn_requests: i64,
    pub cdn_bytes: i64,
}

impl Delta {
    pub const ZERO: Delta = Delta {
        objects: 0,
        logical_bytes: 0,
        physical_bytes: 0,
        kind_bytes: [0; 8],
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
    };

    /// An item of `size` bytes became live (`kind` `None`: a raw asset).
    pub fn live(kind: Option<Kind>, size: i64) -> Self {
        let mut d = Self {
            objects: 1,
            logical_bytes: size,
            ..Self::default()
        };
        d.kind_bytes[slot(kind)] = size;
        d
    }

    /// The opposite change (a live item that stops being live: `live(..).negated()`).
    pub fn negated(self) -> Self {
        let Self {
            objects,
            logical_bytes,
            physical_bytes,
            kind_bytes,
            uploads,
            upload_bytes,
            download_urls,
            download_url_bytes,
            downloads,
            download_bytes,
            dedup_hits,
            dedup_bytes_saved,
            purges,
            reclaimed_bytes,
            cdn_requests,
            cdn_bytes,
        } = self;
        Self {
            objects: -objects,
            logical_bytes: -logical_bytes,
            physical_bytes: -physical_bytes,
            kind_bytes: kind_bytes.map(|b| -b),
            uploads: -uploads,
            upload_bytes: -upload_bytes,
            download_urls: -download_urls,
            download_url_bytes: -download_url_bytes,
            downloads: -downloads,
            download_bytes: -download_bytes,
            dedup_hits: -dedup_hits,
            dedup_bytes_saved: -dedup_bytes_saved,
            purges: -purges,
            reclaimed_bytes: -reclaimed_bytes,
            cdn_requests: -cdn_requests,
            cdn_bytes: -cdn_bytes,
        }
    }

    /// The client's bytes were accepted (`uploads`), on a new blob unless they matched stored
    /// content (`dedup`: the copy is dropped and the stored blob gains a reference).
    pub fn uploaded(self, size: i64, dedup: bool) -> Self {
        let s = Self {
            uploads: self.uploads + 1,
            upload_bytes: self.upload_bytes + size,
            ..self
        };
        if dedup {
            s.dedup(size)
        } else {
            s.stored(size)
        }
    }

    /// Content already stored served a new item: nothing more is kept.
    pub fn dedup(self, size: i64) -> Self {
        Self {
            dedup_hits: self.dedup_hits + 1,
            dedup_bytes_saved: self.dedup_bytes_saved + size,
            ..self
        }
    }

    /// A blob of `size` bytes became `stored`.
    pub fn stored(self, size: i64) -> Self {
        Self {
            physical_bytes: self.physical_bytes + size,
            ..self
        }
    }

    /// Download URLs handed out for `count` items of `bytes` in all.
    pub fn urls_issued(count: i64, bytes: i64) -> Self {
        Self {
            download_urls: count,
            download_url_bytes: bytes,
            ..Self::default()
        }
    }

    /// `requests` downloads Cairn served itself, `bytes` sent in all.
    pub fn served(requests: i64, bytes: i64) -> Self {
        Self {
            downloads: requests,
            download_bytes: bytes,
            ..Self::default()
        }
    }

    /// `requests` downloads CloudFront served (its logs), `bytes` sent: served like Cairn's, and
    /// CloudFront's part on its own.
    pub fn cdn_served(requests: i64, bytes: i64) -> Self {
        Self {
            cdn_requests: requests,
            cdn_bytes: bytes,
            ..Self::served(requests, bytes)
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, o: &Delta) {
        self.objects += o.objects;
        self.logical_bytes += o.logical_bytes;
        self.physical_bytes += o.physical_bytes;
        self.uploads += o.uploads;
        self.upload_bytes += o.upload_bytes;
        self.download_urls += o.download_urls;
        self.download_url_bytes += o.download_url_bytes;
        self.downloads += o.downloads;
        self.download_bytes += o.download_bytes;
        self.dedup_hits += o.dedup_hits;
        self.dedup_bytes_saved += o.dedup_bytes_saved;
        self.purges += o.purges;
        self.reclaimed_bytes += o.reclaimed_bytes;
        self.cdn_requests += o.cdn_requests;
        self.cdn_bytes += o.cdn_bytes;
        for (a, b) in self.kind_bytes.iter_mut().zip(o.kind_bytes) {
            *a += b;
        }
    }

    /// The activity part, which `usage_daily` keeps per day.
    fn has_activity(&self) -> bool {
        self.uploads != 0
            || self.upload_bytes != 0
            || self.download_urls != 0
            || self.download_url_bytes != 0
            || self.downloads != 0
            || self.download_bytes != 0
            || self.dedup_hits != 0
            || self.dedup_bytes_saved != 0
            || self.purges != 0
            || self.reclaimed_bytes != 0
            || self.cdn_requests != 0
            || self.cdn_bytes != 0
    }
}

/// The kinds counted apart (`None`: raw assets), with their `usage` columns and names.
pub const KINDS: [(Option<Kind>, usage::Column, &str); 8] = [
    (Some(Kind::Preview), usage::Column::PreviewBytes, "preview"),
    (Some(Kind::Replay), usage::Column::ReplayBytes, "replay"),
    (Some(Kind::Audit), usage::Column::AuditBytes, "audit"),
    (Some(Kind::Image), usage::Column::ImageBytes, "image"),
    (Some(Kind::Video), usage::Column::VideoBytes, "video"),
    (Some(Kind::Audio), usage::Column::AudioBytes, "audio"),
    (Some(Kind::Bundle), usage::Column::BundleBytes, "bundle"),
    (None, usage::Column::RawBytes, "raw"),
];

/// The index of a kind in [`KINDS`].
pub fn slot(kind: Option<Kind>) -> usize {
    KINDS.iter().position(|(k, _, _)| *k == kind).unwrap_or(7)
}

/// The kind bytes of a `usage` row, in [`KINDS`] order.
pub fn kind_bytes_of(u: &usage::Model) -> [i64; 8] {
    [
        u.preview_bytes,
        u.replay_bytes,
        u.audit_bytes,
        u.image_bytes,
        u.video_bytes,
        u.audio_bytes,
        u.bundle_bytes,
        u.raw_bytes,
    ]
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
    let [preview_bytes, replay_bytes, audit_bytes, image_bytes, video_bytes, audio_bytes, bundle_bytes, raw_bytes] =
        d.kind_bytes;
    let row = usage::Model {
        tenant_id: tenant.to_owned(),
        env: env.to_owned(),
        objects: d.objects,
        logical_bytes: d.logical_bytes,
        physical_bytes: d.physical_bytes,
        preview_bytes,
        replay_bytes,
        audit_bytes,
        image_bytes,
        video_bytes,
        audio_bytes,
        bundle_bytes,
        raw_bytes,
        uploads: d.uploads,
        upload_bytes: d.upload_bytes,
        download_urls: d.download_urls,
        download_url_bytes: d.download_url_bytes,
        downloads: d.downloads,
        download_bytes: d.download_bytes,
        dedup_hits: d.dedup_hits,
        dedup_bytes_saved: d.dedup_bytes_saved,
        purges: d.purges,
        reclaimed_bytes: d.reclaimed_bytes,
        cdn_requests: d.cdn_requests,
        cdn_bytes: d.cdn_bytes,
        updated_at: now,
    };
    let mut on = OnConflict::columns([U::TenantId, U::Env]);
    for c in [
        U::Objects,
        U::LogicalBytes,
        U::PhysicalBytes,
        U::Uploads,
        U::UploadBytes,
        U::DownloadUrls,
        U::DownloadUrlBytes,
        U::Downloads,
        U::DownloadBytes,
        U::DedupHits,
        U::DedupBytesSaved,
        U::Purges,
        U::ReclaimedBytes,
        U::CdnRequests,
        U::CdnBytes,
    ] {
        accumulate(&mut on, "usage", c);
    }
    for ((_, c, _), bytes) in KINDS.iter().zip(d.kind_bytes) {
        if bytes != 0 {
            accumulate(&mut on, "usage", *c);
        }
    }
    on.update_column(U::UpdatedAt);
    usage::Entity::insert(row.into_active_model())
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
    let row = usage_daily::Model {
        tenant_id: tenant.to_owned(),
        env: env.to_owned(),
        day: day.to_owned(),
        uploads: d.uploads,
        upload_bytes: d.upload_bytes,
        download_urls: d.download_urls,
        download_url_bytes: d.download_url_bytes,
        downloads: d.downloads,
        download_bytes: d.download_bytes,
        dedup_hits: d.dedup_hits,
        dedup_bytes_saved: d.dedup_bytes_saved,
        purges: d.purges,
        reclaimed_bytes: d.reclaimed_bytes,
        cdn_requests: d.cdn_requests,
        cdn_bytes: d.cdn_bytes,
        samples: 0,
        stored_bytes_sum: 0,
        stored_bytes_peak: 0,
        objects: 0,
        logical_bytes: 0,
        updated_at: now,
    };
    let mut on = OnConflict::columns([D::TenantId, D::Env, D::Day]);
    for c in [
        D::Uploads,
        D::UploadBytes,
        D::DownloadUrls,
        D::DownloadUrlBytes,
        D::Downloads,
        D::DownloadBytes,
        D::DedupHits,
        D::DedupBytesSaved,
        D::Purges,
        D::ReclaimedBytes,
        D::CdnRequests,
        D::CdnBytes,
    ] {
        accumulate(&mut on, "usage_daily", c);
    }
    on.update_column(D::UpdatedAt);
    usage_daily::Entity::insert(row.into_active_model())
        .on_conflict(on)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_counts_once_and_dedup_keeps_physical_bytes() {
        let fresh = Delta::live(Some(Kind::Image), 10).uploaded(10, false);
        assert_eq!(
            (fresh.objects, fresh.logical_bytes, fresh.physical_bytes),
            (1, 10, 10)
        );
        assert_eq!(
            (fresh.uploads, fresh.upload_bytes, fresh.dedup_hits),
            (1, 10, 0)
        );
        let dup = Delta::live(Some(Kind::Image), 10).uploaded(10, true);
        assert_eq!(
            (dup.physical_bytes, dup.dedup_hits, dup.dedup_bytes_saved),
            (0, 1, 10)
        );
        assert!(Delta::default().is_zero());
        assert_eq!(Delta::live(None, 5).negated().objects, -1);
        assert_eq!(Delta::live(None, 5).negated().kind_bytes[7], -5);
        assert!(!Delta::urls_issued(1, 0).is_zero());
        let cdn = Delta::cdn_served(2, 300);
        assert_eq!(
            (
                cdn.downloads,
                cdn.download_bytes,
                cdn.cdn_requests,
                cdn.cdn_bytes
            ),
            (2, 300, 2, 300),
            "CloudFront's requests are downloads served, and its part of them"
        );
        assert_eq!(cdn.download_urls, 0);
    }
}
