//! Delivery URLs of artifacts (DESIGN §6): one item's URL, the run manifest (one CloudFront
//! policy for the whole run), and the grant behind a run's signed cookies.
use chrono::{DateTime, Duration, Utc};
use entity::{artifact, blob};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

use super::*;
use crate::{
    cdn::{Download, PrefixGrant},
    domain::catalog_time,
    storage::content_disposition,
};

fn filename_of(a: &artifact::Model) -> Result<Filename> {
    catalog_filename(&a.filename)
}

/// A filename read from the catalog; one that does not parse is the catalog's fault (500).
fn catalog_filename(name: &str) -> Result<Filename> {
    Filename::parse(name).map_err(|_| Problem::internal("bad filename in catalog"))
}

/// How long the URLs of an answer live: `CAIRN_PRESIGN_TTL_SECS`, unless the request says
/// (`expires_in`, checked by the HTTP layer: 1 s to 7 days).
pub fn url_ttl(core: &Core, expires_in: Option<u64>) -> Duration {
    Duration::seconds(expires_in.unwrap_or(core.presign_ttl_secs) as i64)
}

/// What an artifact's delivery URL is made from: its visibility and the name and type it is
/// downloaded under.
struct Named<'a> {
    visibility: Visibility,
    filename: &'a str,
    content_type: &'a str,
}

impl<'a> Named<'a> {
    fn of(a: &'a artifact::Model) -> Self {
        Self {
            visibility: visibility_of(a),
            filename: &a.filename,
            content_type: &a.content_type,
        }
    }
}

/// The URL of an available artifact stored at `key`: a public one's CDN URL (naming it as an
/// attachment when `attachment`); a private one's signed URL until `now + ttl`, named after the
/// artifact (inline unless `attachment`), taken from `grant` when it covers the key (no
/// signing), else signed on its own.
#[allow(clippy::too_many_arguments)]
async fn item_url(
    core: &Core,
    a: &Named<'_>,
    key: &ObjectKey,
    grant: Option<&PrefixGrant>,
    now: DateTime<Utc>,
    ttl: Duration,
    attachment: bool,
) -> Result<String> {
    let filename = catalog_filename(a.filename)?;
    let d = Download {
        filename: &filename,
        content_type: a.content_type,
        attachment,
    };
    if a.visibility == Visibility::Public {
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
    item_url(core, &Named::of(a), &key, None, now, ttl, attachment)
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

/// An artifact as a run's manifest shows it: the columns of its view, without the scope and run
/// the manifest names once, and the key of its object, read in one joined query.
#[derive(Debug, FromQueryResult)]
pub struct Listed {
    pub artifact_id: Uuid,
    pub kind: String,
    pub visibility: String,
    pub blob_id: Option<Uuid>,
    pub render_ref: Option<String>,
    pub uri: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub status: String,
    pub legal_hold: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub workspace_id: Option<String>,
    pub project_id: Option<String>,
    pub canvas_id: Option<String>,
    pub rev: Option<i64>,
    pub correlation_id: Option<String>,
    pub actor_id: Option<String>,
    pub derived_from: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// The object's key (`None` for a render-ref preview).
    pub key: Option<String>,
}

impl From<artifact::Model> for Listed {
    /// The row as a manifest would list it, without its object's key.
    fn from(a: artifact::Model) -> Self {
        Self {
            artifact_id: a.artifact_id,
            kind: a.kind,
            visibility: a.visibility,
            blob_id: a.blob_id,
            render_ref: a.render_ref,
            uri: a.uri,
            filename: a.filename,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            status: a.status,
            legal_hold: a.legal_hold,
            expires_at: a.expires_at,
            workspace_id: a.workspace_id,
            project_id: a.project_id,
            canvas_id: a.canvas_id,
            rev: a.rev,
            correlation_id: a.correlation_id,
            actor_id: a.actor_id,
            derived_from: a.derived_from,
            created_at: a.created_at,
            key: None,
        }
    }
}

impl Listed {
    fn named(&self) -> Named<'_> {
        Named {
            visibility: visibility_in(&self.visibility),
            filename: &self.filename,
            content_type: &self.content_type,
        }
    }

    /// Whether the manifest gives a URL to its stored bytes.
    fn deliverable(&self) -> bool {
        self.render_ref.is_none()
            && self.status == artifact::STATUS_AVAILABLE
            && self.blob_id.is_some()
    }
}

/// The run's artifacts (not deleted or expired) in creation order, each with its delivery URL,
/// signed for `ttl`: one query for the items and their keys. With CloudFront keys, one custom
/// policy for the run's prefix is signed (only when the run has a private item there to
/// deliver) and reused for every private URL it covers; an item that shares another run's or a
/// raw asset's object gets a URL signed for that object alone.
pub async fn manifest(
    core: &Core,
    scope: &Scope,
    run: &RunId,
    ttl: Duration,
) -> Result<Vec<(Listed, Option<String>)>> {
    use artifact::Column as A;
    let items: Vec<Listed> = artifact::Entity::find()
        .select_only()
        .columns([
            A::ArtifactId,
            A::Kind,
            A::Visibility,
            A::BlobId,
            A::RenderRef,
            A::Uri,
            A::Filename,
            A::ContentType,
            A::SizeBytes,
            A::Sha256,
            A::Status,
            A::LegalHold,
            A::ExpiresAt,
            A::WorkspaceId,
            A::ProjectId,
            A::CanvasId,
            A::Rev,
            A::CorrelationId,
            A::ActorId,
            A::DerivedFrom,
            A::CreatedAt,
        ])
        .column_as(blob::Column::Key, "key")
        .left_join(blob::Entity)
        .filter(A::TenantId.eq(scope.tenant.as_str()))
        .filter(A::Env.eq(scope.env.as_str()))
        .filter(A::RunId.eq(run.as_str()))
        .filter(visible(Utc::now()))
        .order_by_asc(A::ArtifactId)
        .into_model::<Listed>()
        .all(&core.read)
        .await?;
    let keys = items
        .iter()
        .map(|a| match (&a.key, a.deliverable()) {
            (Some(k), true) => catalog_key(k).map(Some),
            (None, true) => Err(Problem::internal("artifact without blob")),
            (_, false) => Ok(None),
        })
        .collect::<Result<Vec<Option<ObjectKey>>>>()?;
    let now = catalog_time(Utc::now());
    // One signed policy for the run's own prefix, when the run has a private item there to
    // deliver: one signature for the whole manifest. An item that shares another run's or a raw
    // asset's object (dedup) lies outside it and gets a URL for that exact object only, never a
    // wildcard over the other owner's prefix.
    let own = ObjectKey::run_prefix(&scope.tenant, &scope.env, run);
    let needs_grant = core.cdn.signer().is_some()
        && items.iter().zip(&keys).any(|(a, k)| {
            a.named().visibility == Visibility::Private
                && k.as_ref().is_some_and(|k| k.as_str().starts_with(&own))
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
    for (a, key) in items.into_iter().zip(keys) {
        let url = if let Some(r) = &a.render_ref {
            Some(r.clone())
        } else if let Some(key) = key {
            count += 1;
            bytes += a.size_bytes;
            Some(item_url(core, &a.named(), &key, grant.as_ref(), now, ttl, false).await?)
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
