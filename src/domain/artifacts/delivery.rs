//! Delivery URLs of artifacts (DESIGN §6): one item's URL, the run manifest (one CloudFront
//! policy for the whole run), and the grant behind a run's signed cookies.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{artifact, blob};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::*;
use crate::{
    cdn::{Download, PrefixGrant},
    domain::catalog_time,
    storage::content_disposition,
};

fn filename_of(a: &artifact::Model) -> Result<Filename> {
    Filename::parse(&a.filename).map_err(|_| Problem::internal("bad filename in catalog"))
}

/// How long the URLs of an answer live: `CAIRN_PRESIGN_TTL_SECS`, unless the request says
/// (`expires_in`, checked by the HTTP layer: 1 s to 7 days).
pub fn url_ttl(core: &Core, expires_in: Option<u64>) -> Duration {
    Duration::seconds(expires_in.unwrap_or(core.presign_ttl_secs) as i64)
}

/// The URL of an available artifact stored at `key`: a public one's CDN URL (naming it as an
/// attachment when `attachment`); a private one's signed URL until `now + ttl`, named after the
/// artifact (inline unless `attachment`), taken from `grant` when it covers the key (no
/// signing), else signed on its own.
#[allow(clippy::too_many_arguments)]
async fn item_url(
    core: &Core,
    a: &artifact::Model,
    key: &ObjectKey,
    grant: Option<&PrefixGrant>,
    now: DateTime<Utc>,
    ttl: Duration,
    attachment: bool,
) -> Result<String> {
    let filename = filename_of(a)?;
    let d = Download {
        filename: &filename,
        content_type: &a.content_type,
        attachment,
    };
    if visibility_of(a) == Visibility::Public {
        return Ok(if attachment {
            core.cdn.download_url(key, &d)
        } else {
            core.cdn.object_url(key)
        });
    }
    if let Some(g) = grant.filter(|g| g.covers(key)) {
        return Ok(g.url(&core.cdn, key, &d));
    }
    let (url, _) = core
        .cdn
        .private_url(&*core.store, key, &d, now + ttl, now)
        .await?;
    Ok(url)
}

/// Where a client fetches the artifact's bytes, when it has any to fetch: the render a
/// render-ref preview points at, or the object's delivery URL (public: the CDN URL; private: a
/// signed URL that downloads under the artifact's own filename, also when its blob is shared).
pub async fn delivery_url(core: &Core, a: &artifact::Model) -> Result<Option<String>> {
    delivery_url_for(core, a, url_ttl(core, None), false).await
}

/// [`delivery_url`], its signature valid for `ttl`, naming an attachment when `attachment`.
async fn delivery_url_for(
    core: &Core,
    a: &artifact::Model,
    ttl: Duration,
    attachment: bool,
) -> Result<Option<String>> {
    if let Some(r) = &a.render_ref {
        return Ok(Some(r.clone()));
    }
    if a.status != artifact::STATUS_AVAILABLE {
        return Ok(None);
    }
    let key = object_key(core, a).await?;
    let now = catalog_time(Utc::now());
    item_url(core, a, &key, None, now, ttl, attachment)
        .await
        .map(Some)
}

/// [`delivery_url`] for a read (`GET /artifacts/{id}`), valid for `ttl`, naming an attachment
/// when the caller asked to download (`?download=true`): a URL to the artifact's stored bytes
/// counts as a download URL issued. URLs in answers to writes do not.
pub async fn read_url(
    core: &Core,
    a: &artifact::Model,
    ttl: Duration,
    attachment: bool,
) -> Result<Option<String>> {
    let url = delivery_url_for(core, a, ttl, attachment).await?;
    counted(core, a, url).await
}

/// Counts `url` as a download URL issued when it leads to the artifact's stored bytes.
async fn counted(core: &Core, a: &artifact::Model, url: Option<String>) -> Result<Option<String>> {
    if url.is_some() && a.render_ref.is_none() {
        let now = catalog_time(Utc::now());
        issued(core, &a.tenant_id, &a.env, 1, a.size_bytes, now).await?;
    }
    Ok(url)
}

/// Counts download URLs handed out (`count` items of `bytes` in all) on the scope's counters:
/// in memory, recorded with the next flush (no catalog write per read). Bytes Cairn serves
/// itself are counted as they go out (`http::served`), not here.
async fn issued(
    core: &Core,
    tenant: &str,
    env: &str,
    count: i64,
    bytes: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    if count > 0 {
        core.usage_buffer
            .urls_issued(tenant, env, count, bytes, now);
    }
    Ok(())
}

/// The URL `GET /artifacts/{id}/content` redirects to: like [`read_url`] (and counted), and for
/// a public item the CDN URL naming the artifact's own filename.
pub async fn download_url(
    core: &Core,
    a: &artifact::Model,
    attachment: bool,
) -> Result<Option<String>> {
    if a.render_ref.is_none()
        && a.status == artifact::STATUS_AVAILABLE
        && visibility_of(a) == Visibility::Public
    {
        let key = object_key(core, a).await?;
        let filename = filename_of(a)?;
        let d = Download {
            filename: &filename,
            content_type: &a.content_type,
            attachment,
        };
        let url = core.cdn.download_url(&key, &d);
        return counted(core, a, Some(url)).await;
    }
    read_url(core, a, url_ttl(core, None), attachment).await
}

/// The run's artifacts (not deleted or expired) in creation order, each with its delivery URL,
/// signed for `ttl`. With
/// CloudFront keys, one custom policy for the run's prefix is signed (only when the run has a
/// private item there to deliver) and reused for every private URL it covers; an item that
/// shares another run's or a raw asset's object gets a URL signed for that object alone.
pub async fn manifest(
    core: &Core,
    scope: &Scope,
    run: &RunId,
    ttl: Duration,
) -> Result<Vec<(artifact::Model, Option<String>)>> {
    let items = artifact::Entity::find()
        .filter(artifact::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(artifact::Column::Env.eq(scope.env.as_str()))
        .filter(artifact::Column::RunId.eq(run.as_str()))
        .filter(visible(Utc::now()))
        .order_by_asc(artifact::Column::ArtifactId)
        .all(&core.read)
        .await?;
    let deliverable = |a: &artifact::Model| {
        a.render_ref.is_none() && a.status == artifact::STATUS_AVAILABLE && a.blob_id.is_some()
    };
    let blob_ids: Vec<Uuid> = items
        .iter()
        .filter(|a| deliverable(a))
        .filter_map(|a| a.blob_id)
        .collect();
    let mut keys: HashMap<Uuid, ObjectKey> = HashMap::with_capacity(blob_ids.len());
    // Keys read before are remembered (they never change); the others are read, only the keys
    // (decoding whole rows costs more than the query), in bounded `IN` lists: Postgres and
    // SQLite both take thousands of parameters, not unlimited.
    let mut missing = Vec::new();
    for id in blob_ids {
        match core.blob_keys.get(id) {
            Some(key) => {
                keys.insert(id, key);
            }
            None => missing.push(id),
        }
    }
    for chunk in missing.chunks(1000) {
        let found: Vec<(Uuid, String)> = blob::Entity::find()
            .select_only()
            .column(blob::Column::Id)
            .column(blob::Column::Key)
            .filter(blob::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&core.read)
            .await?;
        for (id, key) in found {
            let key = catalog_key(&key)?;
            core.blob_keys.insert(id, key.clone());
            keys.insert(id, key);
        }
    }
    let now = catalog_time(Utc::now());
    // One signed policy for the run's own prefix, when the run has a private item there to
    // deliver: one signature for the whole manifest. An item that shares another run's or a raw
    // asset's object (dedup) lies outside it and gets a URL for that exact object only, never a
    // wildcard over the other owner's prefix.
    let own = ObjectKey::run_prefix(&scope.tenant, &scope.env, run);
    let needs_grant = core.cdn.signer().is_some()
        && items.iter().any(|a| {
            deliverable(a)
                && visibility_of(a) == Visibility::Private
                && a.blob_id
                    .and_then(|id| keys.get(&id))
                    .is_some_and(|k| k.as_str().starts_with(&own))
        });
    let grant = if needs_grant {
        core.cdn
            .sign_prefix(&own, now + ttl, now)
            .map_err(crate::cdn::DeliveryError::from)?
    } else {
        None
    };
    let mut out = Vec::with_capacity(items.len());
    let (mut count, mut bytes) = (0, 0);
    for a in items {
        let url = if let Some(r) = &a.render_ref {
            Some(r.clone())
        } else if deliverable(&a) {
            let key = a
                .blob_id
                .and_then(|id| keys.get(&id))
                .ok_or_else(|| Problem::internal("artifact without blob"))?;
            count += 1;
            bytes += a.size_bytes;
            Some(item_url(core, &a, key, grant.as_ref(), now, ttl, false).await?)
        } else {
            None
        };
        out.push((a, url));
    }
    issued(
        core,
        scope.tenant.as_str(),
        scope.env.as_str(),
        count,
        bytes,
        now,
    )
    .await?;
    Ok(out)
}

/// Whether `disposition` is a download name Cairn gives the public object at `key` (`inline` or
/// as an attachment): that of the object's first item (the key's last segment), or of another
/// live public artifact sharing it.
pub async fn is_own_disposition(core: &Core, key: &ObjectKey, disposition: &str) -> Result<bool> {
    let names = |name: &str| {
        content_disposition(name, true) == disposition
            || content_disposition(name, false) == disposition
    };
    let own = key.as_str().rsplit('/').next().unwrap_or_default();
    if names(own) {
        return Ok(true);
    }
    let shared: Vec<String> = artifact::Entity::find()
        .select_only()
        .column(artifact::Column::Filename)
        .inner_join(blob::Entity)
        .filter(blob::Column::Key.eq(key.as_str()))
        .filter(artifact::Column::Visibility.eq(blob::VISIBILITY_PUBLIC))
        .filter(artifact::Column::Status.eq(artifact::STATUS_AVAILABLE))
        .into_tuple()
        .all(&core.read)
        .await?;
    Ok(shared.iter().any(|n| names(n)))
}

/// A signed grant for every private object of a run, for signed cookies.
pub struct RunGrant {
    pub grant: PrefixGrant,
    /// The cookies' `Path`: the URL path of the run's prefix on the CDN.
    pub path: String,
    pub expires_at: DateTime<Utc>,
}

/// The run's CloudFront grant until `now + ttl` (one signing operation). 404 when the run has
/// no visible artifacts in the caller's tenant and env; 409 without CloudFront keys.
pub async fn run_grant(core: &Core, scope: &Scope, run: &RunId, ttl: Duration) -> Result<RunGrant> {
    let exists = artifact::Entity::find()
        .filter(artifact::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(artifact::Column::Env.eq(scope.env.as_str()))
        .filter(artifact::Column::RunId.eq(run.as_str()))
        .filter(visible(Utc::now()))
        .one(&core.read)
        .await?
        .is_some();
    if !exists {
        return Err(Problem::not_found());
    }
    let now = catalog_time(Utc::now());
    let expires_at = now + ttl;
    let prefix = ObjectKey::run_prefix(&scope.tenant, &scope.env, run);
    let grant = core
        .cdn
        .sign_prefix(&prefix, expires_at, now)
        .map_err(crate::cdn::DeliveryError::from)?
        .ok_or_else(|| {
            Problem::conflict(
                Code::CdnSigningDisabled,
                "signed cookies need CloudFront keys (CAIRN_CLOUDFRONT_KEY_PAIR_ID and \
                 CAIRN_CLOUDFRONT_PRIVATE_KEY)",
            )
        })?;
    let path = core.cdn.prefix_path(&prefix);
    Ok(RunGrant {
        grant,
        path,
        expires_at,
    })
}
