//! `/storage/raw/*` (and the `/nexus/raw/*` alias): presign-upload, register, metadata, presign-download.
//! Handlers parse the request into domain values and call `domain::raw_assets`.
use axum::{
    extract::{Path, State},
    Json,
};
use chrono::{DateTime, Utc};
use entity::raw_asset;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::json::ApiJson;
use crate::{
    app::AppState,
    auth::Scope,
    domain::{
        catalog_time,
        raw_assets::{self, Descriptive, PresignUpload, Presigned, Register},
        ContentType, Filename, Sha256, SizeBytes,
    },
    error::{ApiError, ApiResult},
    problem::Code,
    storage::{UploadMethod, UploadedPart},
};

/// A RawAsset as the API shows it.
#[derive(Debug, Serialize)]
pub struct RawAssetView {
    pub asset_id: Uuid,
    pub tenant_id: String,
    pub env: String,
    pub uri: String,
    pub filename: String,
    pub sha256: Option<String>,
    pub size_bytes: i64,
    pub content_type: String,
    pub captured_at: Option<DateTime<Utc>>,
    pub imported_at: Option<DateTime<Utc>>,
    pub source_ref: Option<String>,
    pub capture_location: Option<Value>,
    pub metadata: Value,
    pub pii_flags: Value,
    pub train_ok: bool,
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<raw_asset::Model> for RawAssetView {
    fn from(m: raw_asset::Model) -> Self {
        Self {
            asset_id: m.asset_id,
            tenant_id: m.tenant_id,
            env: m.env,
            uri: m.uri,
            filename: m.filename,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            content_type: m.content_type,
            captured_at: m.captured_at,
            imported_at: m.imported_at,
            source_ref: m.source_ref,
            capture_location: m.capture_location,
            metadata: m.metadata,
            pii_flags: m.pii_flags,
            train_ok: m.train_ok,
            status: m.status,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

/// Ids that do not parse cannot exist: the same 404 as for any unknown id.
fn asset_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| ApiError::not_found())
}

#[derive(Deserialize)]
pub struct PresignUploadBody {
    filename: String,
    content_type: String,
    size_bytes: Value,
    sha256: Option<String>,
    method: Option<String>,
}

pub async fn presign_upload(
    State(app): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<PresignUploadBody>,
) -> ApiResult<Json<Value>> {
    scope.require_write()?;
    let req = PresignUpload {
        filename: Filename::parse(&body.filename)?,
        content_type: ContentType::parse(&body.content_type)?,
        size: SizeBytes::parse(&body.size_bytes, app.config.max_upload_bytes)?,
        sha256: body.sha256.as_deref().map(Sha256::parse).transpose()?,
        method: match body.method.as_deref() {
            None | Some("PUT") => UploadMethod::Put,
            Some("POST") => UploadMethod::Post,
            Some(_) => {
                return Err(ApiError::bad_request(
                    Code::InvalidMethod,
                    "method must be PUT or POST",
                ))
            }
        },
    };
    Ok(Json(
        match raw_assets::presign_upload(&app, &scope, req).await? {
            Presigned::Upload {
                asset_id,
                key,
                uri,
                upload,
                expires_at,
            } => json!({
                "asset_id": asset_id,
                "key": key.as_str(),
                "uri": uri,
                "upload": upload,
                "expires_at": expires_at,
            }),
            Presigned::Deduplicated(asset) => json!({
                "asset_id": asset.asset_id,
                "status": asset.status,
                "deduplicated": true,
                "uri": asset.uri,
                "upload": null,
            }),
        },
    ))
}

#[derive(Deserialize)]
pub struct RegisterBody {
    asset_id: String,
    sha256: String,
    size_bytes: Value,
    content_type: String,
    captured_at: Option<DateTime<Utc>>,
    imported_at: Option<DateTime<Utc>>,
    source_ref: Option<String>,
    capture_location: Option<Value>,
    metadata: Option<Value>,
    pii_flags: Option<Value>,
    train_ok: Option<bool>,
    parts: Option<Vec<PartBody>>,
}

#[derive(Deserialize)]
pub struct PartBody {
    pub part_number: i32,
    pub etag: String,
}

/// Part numbers 1–10,000 in ascending order, each with an ETag.
pub fn parts(parts: Vec<PartBody>) -> ApiResult<Vec<UploadedPart>> {
    let bad = || {
        ApiError::bad_request(
            Code::InvalidParts,
            "parts must list part numbers 1–10000 in ascending order, each with its ETag",
        )
    };
    if parts.is_empty() || parts.len() > 10_000 {
        return Err(bad());
    }
    let mut last = 0;
    parts
        .into_iter()
        .map(|p| {
            if p.part_number <= last
                || p.part_number > 10_000
                || p.etag.is_empty()
                || p.etag.len() > 1024
            {
                return Err(bad());
            }
            last = p.part_number;
            Ok(UploadedPart {
                part_number: p.part_number,
                etag: p.etag,
            })
        })
        .collect()
}

pub async fn register(
    State(app): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<Json<RawAssetView>> {
    scope.require_write()?;
    let req = Register {
        sha256: Sha256::parse(&body.sha256)?,
        size: SizeBytes::parse(&body.size_bytes, app.config.max_upload_bytes)?,
        content_type: ContentType::parse(&body.content_type)?,
        descriptive: Descriptive {
            captured_at: body.captured_at.map(catalog_time),
            imported_at: body.imported_at.map(catalog_time),
            source_ref: body.source_ref.map(source_ref).transpose()?,
            capture_location: body.capture_location.map(capture_location).transpose()?,
            metadata: body.metadata.map(metadata).transpose()?,
            pii_flags: body.pii_flags.map(pii_flags).transpose()?,
            train_ok: body.train_ok,
        },
        parts: body.parts.map(parts).transpose()?,
        asset_id: asset_id(&body.asset_id)?,
    };
    Ok(Json(raw_assets::register(&app, &scope, req).await?.into()))
}

pub async fn get(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> ApiResult<Json<RawAssetView>> {
    Ok(Json(
        raw_assets::get(&app, &scope, asset_id(&id)?).await?.into(),
    ))
}

#[derive(Deserialize)]
pub struct PresignDownloadBody {
    asset_id: String,
    expires_in: Option<Value>,
    /// `true`: the URL saves the file (`Content-Disposition: attachment`) instead of showing it.
    #[serde(default)]
    download: bool,
}

pub async fn presign_download(
    State(app): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<PresignDownloadBody>,
) -> ApiResult<Json<Value>> {
    let expires_in = match &body.expires_in {
        None | Some(Value::Null) => None,
        Some(v) => Some(super::expires_in(v.as_u64())?),
    };
    let (url, expires_at) = raw_assets::presign_download(
        &app,
        &scope,
        asset_id(&body.asset_id)?,
        expires_in,
        body.download,
    )
    .await?;
    Ok(Json(json!({ "url": url, "expires_at": expires_at })))
}

fn source_ref(s: String) -> ApiResult<String> {
    if s.is_empty() || s.len() > 1024 || s.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            Code::InvalidSourceRef,
            "source_ref must be 1–1024 bytes without control characters",
        ));
    }
    Ok(s)
}

/// A place name, or `{lat, lon}` rounded to 0.01° (about 1 km): finer positions are never stored.
fn capture_location(v: Value) -> ApiResult<Value> {
    let bad = || {
        ApiError::bad_request(
            Code::InvalidCaptureLocation,
            "capture_location must be a place name or {\"lat\": -90..90, \"lon\": -180..180}",
        )
    };
    match v {
        Value::String(s)
            if !s.trim().is_empty() && s.len() <= 255 && !s.chars().any(char::is_control) =>
        {
            Ok(Value::String(s))
        }
        Value::Object(o) => {
            let lat = o
                .get("lat")
                .and_then(Value::as_f64)
                .filter(|l| (-90.0..=90.0).contains(l));
            let lon = o
                .get("lon")
                .and_then(Value::as_f64)
                .filter(|l| (-180.0..=180.0).contains(l));
            match (lat, lon, o.len()) {
                (Some(lat), Some(lon), 2) => Ok(json!({ "lat": round2(lat), "lon": round2(lon) })),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn metadata(v: Value) -> ApiResult<Value> {
    let size = serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if !v.is_object() || size > 16 * 1024 {
        return Err(ApiError::bad_request(
            Code::InvalidMetadata,
            "metadata must be a JSON object of at most 16 KiB",
        ));
    }
    Ok(v)
}

/// Flags are short lowercase words; stored sorted and without repeats.
fn pii_flags(v: Value) -> ApiResult<Value> {
    let bad = || {
        ApiError::bad_request(
            Code::InvalidPiiFlags,
            "pii_flags must be an array of at most 32 flags matching [a-z0-9_:-]{1,64}",
        )
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    if items.len() > 32 {
        return Err(bad());
    }
    let mut flags = items
        .into_iter()
        .map(|i| match i {
            Value::String(s)
                if (1..=64).contains(&s.len())
                    && s.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"_:-".contains(&c)
                    }) =>
            {
                Ok(s)
            }
            _ => Err(bad()),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    flags.sort();
    flags.dedup();
    Ok(json!(flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_coarsened() {
        let v = capture_location(json!({"lat": 52.520008, "lon": 13.404954})).unwrap();
        assert_eq!(v, json!({"lat": 52.52, "lon": 13.4}));
        assert_eq!(capture_location(json!("Berlin")).unwrap(), json!("Berlin"));
        for bad in [
            json!({"lat": 91, "lon": 0}),
            json!({"lat": 1}),
            json!(5),
            json!(""),
            json!({"lat": 1, "lon": 2, "x": 3}),
        ] {
            assert!(capture_location(bad).is_err());
        }
    }

    #[test]
    fn pii_flags_are_canonical() {
        assert_eq!(
            pii_flags(json!(["face", "email", "face"])).unwrap(),
            json!(["email", "face"])
        );
        assert!(pii_flags(json!(["Face"])).is_err());
        assert!(pii_flags(json!("face")).is_err());
    }
}
