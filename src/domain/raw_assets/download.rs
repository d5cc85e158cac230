//! Download URLs of registered assets: CloudFront signed URLs when CloudFront keys are
//! configured, else the store's presigned GETs (DESIGN §6).
use chrono::{DateTime, Duration, Utc};
use entity::raw_asset;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{catalog_time, Filename};
use crate::{
    auth::Scope,
    cdn::Download,
    core::Core,
    events::kind,
    problem::{Code, Problem, Result},
    telemetry::record_outcome,
};

/// A URL that downloads the asset's bytes until `expires_in` (or `CAIRN_PRESIGN_TTL_SECS`),
/// named after it: inline where its type allows, as an attachment when `attachment`.
pub async fn presign_download(
    core: &Core,
    scope: &Scope,
    asset_id: Uuid,
    expires_in: Option<u64>,
    attachment: bool,
) -> Result<(String, DateTime<Utc>)> {
    let asset = get(core, scope, asset_id).await?;
    if asset.status != raw_asset::STATUS_REGISTERED {
        return Err(Problem::conflict(
            Code::NotRegistered,
            format!(
                "the asset is {}; only registered assets can be downloaded",
                asset.status
            ),
        ));
    }
    let key = blobs::key_of(core, asset.blob_id)
        .await?
        .ok_or_else(|| Problem::internal("asset without blob"))?;
    let filename = Filename::parse(&asset.filename)
        .map_err(|_| Problem::internal("bad filename in catalog"))?;
    let now = catalog_time(Utc::now());
    let ttl = expires_in.unwrap_or(core.presign_ttl_secs);
    let d = Download {
        filename: &filename,
        content_type: &asset.content_type,
        attachment,
    };
    // On a role a presigned URL dies with the session: `expires_at` is when it really does.
    let (url, expires_at) = core
        .cdn
        .private_url(
            &*core.store,
            &key,
            &d,
            now + Duration::seconds(ttl as i64),
            now,
        )
        .await?;
    // The request's only write: committed with those of concurrent requests, awaited here.
    let mut ev = asset_event(kind::RAW_DOWNLOAD_PRESIGNED, scope, &asset, now);
    ev.detail = json!({ "expires_at": expires_at, "size_bytes": asset.size_bytes });
    core.writer.append(ev).await?;
    // Counted in memory, recorded with the next flush.
    let (tenant, env) = (scope.tenant.as_str(), scope.env.as_str());
    core.usage_buffer
        .urls_issued(tenant, env, 1, asset.size_bytes, now);
    record_outcome("presign_download", "ok");
    Ok((url, expires_at))
}
