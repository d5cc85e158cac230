//! Cairn's own CDN endpoint, `GET /cdn/<key>`: what CloudFront does in production, for
//! deployments without `CAIRN_CDN_DOMAIN` (the embedded default). Keys under `public/` are
//! served to anyone, cached as immutable; any other key needs a CloudFront signed URL or signed
//! cookies, checked against the configured keys' public halves as CloudFront checks them
//! (resource, expiry, start time, source IP). `response-content-disposition` names the download,
//! as S3 does behind CloudFront; on a public key only with a name Cairn gives that object. The
//! local store streams the bytes (with `Range`); S3 answers with a redirect to a presigned GET.
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Path, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{Duration, Utc};
use percent_encoding::percent_decode_str;

use crate::{
    app::AppState,
    cdn::{
        delivery::DISPOSITION_PARAM,
        signer::{Denied, Grant, QUERY_PARAMS},
    },
    domain::{artifacts::PUBLIC_IMMUTABLE, ObjectKey},
    error::{ApiError, ApiResult},
    problem::Code,
    storage::PRIVATE_IMMUTABLE,
};

/// The longest a redirect to a presigned GET may be cached.
const REDIRECT_MAX_AGE_SECS: i64 = 300;

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn denied(d: Denied) -> ApiError {
    match d {
        Denied::Expired => ApiError::forbidden_code(Code::UrlExpired, "the signature has expired"),
        other => ApiError::forbidden_code(Code::SignatureInvalid, other.to_string()),
    }
}

/// The request's `CloudFront-*` cookies.
fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("CloudFront-"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub async fn get(
    State(app): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = ObjectKey::parse(&key).ok_or_else(ApiError::not_found)?;
    // Split the query into CloudFront's signing parameters and the rest, which stays part of
    // the URL a policy's resource is matched against (in the order and encoding it came in).
    let mut signing: Vec<(String, String)> = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    let mut disposition = None;
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(k);
        if QUERY_PARAMS.contains(&name.as_str()) {
            signing.push((name, decode(v)));
            continue;
        }
        if name == DISPOSITION_PARAM {
            disposition = Some(decode(v));
        }
        rest.push(pair);
    }
    let cache_control = if key.is_public() {
        PUBLIC_IMMUTABLE
    } else {
        let mut url = app.cdn.object_url(&key);
        if !rest.is_empty() {
            url.push('?');
            url.push_str(&rest.join("&"));
        }
        let from_query = Grant::from_query(signing.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let jar = cookies(&headers);
        let grant = from_query
            .or_else(|| Grant::from_cookies(jar.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .ok_or_else(|| {
                ApiError::forbidden_code(
                    Code::SignatureRequired,
                    "a private object needs a signed URL or signed cookies",
                )
            })?;
        let verifier = app.cdn.verifier().ok_or_else(|| {
            ApiError::forbidden_code(Code::SignatureInvalid, "no CloudFront key is configured")
        })?;
        verifier
            .check(&url, &grant, Utc::now().timestamp(), Some(peer.ip()))
            .map_err(denied)?;
        PRIVATE_IMMUTABLE
    };
    if let Some(d) = &disposition {
        if d.len() > 1024 || HeaderValue::from_str(d).is_err() {
            return Err(ApiError::bad_request(
                Code::InvalidRequest,
                "response-content-disposition is not a valid header value",
            ));
        }
    }
    // Anyone can write a public URL: its download name is held to one Cairn gives for that
    // object (an item's own name); any other is ignored, as the CDN in infra/ ignores it.
    if key.is_public() {
        if let Some(d) = disposition.take() {
            if crate::domain::artifacts::is_own_disposition(&app, &key, &d).await? {
                disposition = Some(d);
            }
        }
    }
    if let Some(local) = app.local.as_deref() {
        return super::objects::serve(local, &key, disposition, cache_control.into(), &headers)
            .await
            .map(|res| super::served::metered(&app, &key, res));
    }
    // S3 without a CDN in front: the bytes come from a presigned GET, which S3 answers without
    // Cairn's sandbox. Active content is therefore saved, never shown there.
    let info = app
        .store
        .head(&key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !crate::storage::is_passive(info.content_type.as_deref().unwrap_or_default()) {
        let name = key.as_str().rsplit('/').next().unwrap_or_default();
        disposition = Some(match disposition {
            Some(d) => match d.strip_prefix("inline") {
                Some(rest) => format!("attachment{rest}"),
                None => d,
            },
            None => crate::storage::content_disposition(name, false),
        });
    }
    let now = Utc::now();
    let expires_at = crate::storage::url_expiry(
        &*app.store,
        now + Duration::seconds(app.config.presign_ttl_secs as i64),
    )
    .await?;
    let url = app
        .store
        .presign_get(&key, disposition.as_deref(), expires_at)
        .await?;
    // Half the URL's real life (a role's session may end first), so a cached redirect still
    // leads somewhere.
    let ttl = (expires_at - now).num_seconds().max(0);
    let max_age = (ttl / 2).min(REDIRECT_MAX_AGE_SECS);
    let scope = if key.is_public() { "public" } else { "private" };
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, format!("{scope}, max-age={max_age}")),
        ],
    )
        .into_response())
}
