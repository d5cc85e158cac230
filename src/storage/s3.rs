//! The S3 backend (AWS S3 or any S3-compatible store: Garage, MinIO, Ceph RGW).
//!
//! Object calls go through aws-sdk-s3. URLs and browser forms are signed by [`sigv4`] so that the
//! store itself enforces every fact Cairn granted: content type, exact length, SHA-256 (when known),
//! `Cache-Control`, and `If-None-Match: *` (where the store honours conditional writes) so a URL can
//! never overwrite an object.
use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_s3::{
    config::{ProvideCredentials, SharedCredentialsProvider},
    error::{ProvideErrorMetadata, SdkError},
    types::{ChecksumMode, ChecksumType, Delete, ObjectIdentifier},
    Client,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::Digest;

use super::{
    retry::Backoff,
    sigv4::{self, Credentials, Presign, Signer},
    BodyStream, ListedObject, ObjectInfo, ObjectPage, ObjectStore, OpenUpload, PutError,
    StoreError, Upload, UploadMethod, UploadSpec, UploadedPart,
};
use crate::domain::{Filename, ObjectKey, Sha256};

/// Where the store answers, as URLs are built for it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub scheme: String,
    /// `host[:port]`.
    pub host: String,
    pub path_style: bool,
}

impl Endpoint {
    /// From `AWS_ENDPOINT_URL_S3`-style URLs; AWS itself when `None`.
    pub fn parse(url: Option<&str>, region: &str, path_style: bool) -> Result<Self, String> {
        let Some(url) = url else {
            return Ok(Self {
                scheme: "https".into(),
                host: format!("s3.{region}.amazonaws.com"),
                path_style,
            });
        };
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || host.contains('?') {
            return Err(format!("`{url}` must be a scheme and host[:port] only"));
        }
        Ok(Self {
            scheme: scheme.into(),
            host: host.into(),
            path_style,
        })
    }
}

/// `scheme://host[:port]`, for logs: user info, should the URL carry any, is left out.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self
            .host
            .rsplit_once('@')
            .map_or(self.host.as_str(), |(_, h)| h);
        write!(f, "{}://{host}", self.scheme)
    }
}

pub struct S3Store {
    client: Client,
    bucket: String,
    credentials: SharedCredentialsProvider,
    signer: Signer,
    endpoint: Endpoint,
    conditional_writes: bool,
    multipart_threshold: u64,
    backoff: Backoff,
}

/// Failures of the store's transport, its 5xx answers and throttling are worth a retry.
pub(crate) fn store_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    let transient = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "ServiceUnavailable"
                    | "InternalError"
                    | "RequestTimeout"
            )
        ),
        _ => false,
    };
    let detail = sdk_error_detail(&e);
    if transient {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Other(detail)
    }
}

/// `Code: message` of an AWS service error, else the transport error's debug output. Shared by
/// every AWS client Cairn runs (S3 here, CloudFront for invalidations).
pub(crate) fn sdk_error_detail<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or_default()
        ),
        None => format!("{e:?}"),
    }
}

impl S3Store {
    pub fn new(
        client: Client,
        bucket: String,
        credentials: SharedCredentialsProvider,
        region: &str,
        endpoint: Endpoint,
        conditional_writes: bool,
        multipart_threshold: u64,
    ) -> Self {
        Self {
            client,
            bucket,
            credentials,
            signer: Signer::new(region, "s3"),
            endpoint,
            conditional_writes,
            multipart_threshold,
            backoff: Backoff::default(),
        }
    }

    /// The same client, credentials and endpoint on another bucket in the same Region: the
    /// bucket CloudFront writes its logs to (`CAIRN_CDN_LOG_PREFIX=s3://<bucket>/...`).
    pub fn for_bucket(&self, bucket: &str) -> Self {
        Self {
            client: self.client.clone(),
            bucket: bucket.to_owned(),
            credentials: self.credentials.clone(),
            signer: Signer::new(self.signer.region(), "s3"),
            endpoint: self.endpoint.clone(),
            conditional_writes: self.conditional_writes,
            multipart_threshold: self.multipart_threshold,
            backoff: self.backoff,
        }
    }

    pub fn conditional_writes(&self) -> bool {
        self.conditional_writes
    }

    pub fn multipart_threshold(&self) -> u64 {
        self.multipart_threshold
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Where requests and URLs go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The region requests are signed for, as the AWS chain resolved it.
    pub fn region(&self) -> Option<&str> {
        self.client.config().region().map(|r| r.as_ref())
    }

    async fn credentials(&self) -> Result<Credentials, StoreError> {
        let c = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| StoreError::Unavailable(format!("AWS credentials: {e}")))?;
        Ok(Credentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().map(str::to_owned),
            expires_at: c.expiry().map(DateTime::<Utc>::from),
        })
    }

    /// Host and canonical path of an object (or of the bucket, for `key = None`).
    fn location(&self, key: Option<&ObjectKey>) -> (String, String) {
        let key_path = key
            .map(|k| format!("/{}", sigv4::key_path(k.as_str())))
            .unwrap_or_default();
        if self.endpoint.path_style || !self.virtual_hostable() {
            (
                self.endpoint.host.clone(),
                format!("/{}{key_path}", sigv4::uri_encode(&self.bucket)),
            )
        } else {
            let path = if key_path.is_empty() {
                "/".to_owned()
            } else {
                key_path
            };
            (format!("{}.{}", self.bucket, self.endpoint.host), path)
        }
    }

    /// Whether `bucket.host` works, by the SDK's rule: a DNS-label bucket name and a host name
    /// endpoint (an IP address cannot carry a bucket subdomain).
    fn virtual_hostable(&self) -> bool {
        let host = self
            .endpoint
            .host
            .rsplit_once(':')
            .map_or(self.endpoint.host.as_str(), |(h, _)| h);
        let b = self.bucket.as_bytes();
        let label = (3..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        label && host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[')
    }

    /// A presigned URL for `method` on `key` with the given signed headers and query.
    pub async fn presign_url(
        &self,
        method: &str,
        key: &ObjectKey,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        expires_in: u64,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let creds = self.credentials().await?;
        let (host, path) = self.location(Some(key));
        Ok(self.signer.presign(
            &creds,
            &Presign {
                method,
                scheme: &self.endpoint.scheme,
                host: &host,
                path: &path,
                query,
                headers,
                expires_in,
                now,
            },
        ))
    }
}

fn chrono_time(t: &aws_sdk_s3::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

fn seconds_until(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    (t - now).num_seconds().max(1) as u64
}

#[async_trait]
impl ObjectStore for S3Store {
    #[tracing::instrument(skip(self, spec, body), fields(bucket = %self.bucket, key = %spec.key, size = spec.size.get()))]
    async fn put_stream(
        &self,
        spec: &UploadSpec<'_>,
        body: BodyStream,
    ) -> Result<Sha256, PutError> {
        super::s3_upload::put_stream(self, spec, body).await
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let res = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        // A composite (multipart) checksum is not the object's SHA-256.
        let sha256 = match (out.checksum_sha256(), out.checksum_type()) {
            (Some(b64), t) if !matches!(t, Some(ChecksumType::Composite)) && !b64.contains('-') => {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(Sha256::from_bytes)
            }
            _ => None,
        };
        Ok(Some(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            sha256,
            content_type: out.content_type().map(str::to_owned),
        }))
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn digest(&self, key: &ObjectKey) -> Result<Option<Sha256>, StoreError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await;
        let mut out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = out
            .body
            .try_next()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?
        {
            hasher.update(&chunk);
        }
        Ok(Some(Sha256::from_bytes(hasher.finalize().into())))
    }

    async fn read_prefix(
        &self,
        key: &ObjectKey,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .range(format!("bytes=0-{}", len.max(1) - 1))
            .send()
            .await;
        let out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?
            .into_bytes();
        Ok(Some(bytes[..bytes.len().min(len)].to_vec()))
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// One DeleteObjects request (quiet: only failures come back), retried when transient.
    #[tracing::instrument(skip(self, keys), fields(bucket = %self.bucket, keys = keys.len()))]
    async fn delete_many(&self, keys: &[ObjectKey]) -> Result<Vec<(String, String)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k.as_str()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let out = self
            .backoff
            .run("delete_objects", || async {
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete.clone())
                    .send()
                    .await
                    .map_err(store_error)
            })
            .await?;
        Ok(out
            .errors()
            .iter()
            .filter(|e| e.code() != Some("NoSuchKey"))
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_owned(),
                    format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ),
                )
            })
            .collect())
    }

    async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
    ) -> Result<ObjectPage, StoreError> {
        let out = self
            .backoff
            .run("list_objects", || async {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(next.clone())
                    .send()
                    .await
                    .map_err(store_error)
            })
            .await?;
        Ok(ObjectPage {
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ListedObject {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        last_modified: o.last_modified().map(chrono_time).unwrap_or_default(),
                    })
                })
                .collect(),
            next: out
                .is_truncated()
                .unwrap_or(false)
                .then(|| out.next_continuation_token().map(str::to_owned))
                .flatten(),
        })
    }

    async fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>, StoreError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let out = self
                .backoff
                .run("list_multipart_uploads", || async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                        .map_err(store_error)
                })
                .await?;
            uploads.extend(out.uploads().iter().filter_map(|u| {
                Some(OpenUpload {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                    initiated: u.initiated().map(chrono_time).unwrap_or_default(),
                })
            }));
            if !out.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            id_marker = out.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(uploads)
    }

    async fn presign_upload(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError> {
        let now = Utc::now();
        let size = spec.size.get().to_string();
        let checksum = spec
            .sha256
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s.bytes()));
        match method {
            UploadMethod::Put => {
                let mut headers: Vec<(&str, &str)> = vec![
                    ("cache-control", spec.cache_control),
                    ("content-length", &size),
                    ("content-type", spec.content_type.as_str()),
                ];
                if let Some(c) = &checksum {
                    headers.push(("x-amz-checksum-sha256", c));
                }
                if self.conditional_writes {
                    headers.push(("if-none-match", "*"));
                }
                let url = self
                    .presign_url(
                        "PUT",
                        spec.key,
                        &[("x-id", "PutObject")],
                        &headers,
                        seconds_until(spec.expires_at, now),
                        now,
                    )
                    .await?;
                Ok(Upload::Put {
                    url,
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
            }
            UploadMethod::Post => {
                let creds = self.credentials().await?;
                let conditions = vec![
                    json!({ "bucket": self.bucket }),
                    json!(["eq", "$key", spec.key.as_str()]),
                    json!(["eq", "$Content-Type", spec.content_type.as_str()]),
                    json!(["eq", "$Cache-Control", spec.cache_control]),
                    json!(["content-length-range", spec.size.get(), spec.size.get()]),
                ];
                let mut fields: BTreeMap<String, String> = self
                    .signer
                    .post_policy(&creds, conditions, spec.expires_at, now)
                    .into_iter()
                    .collect();
                fields.insert("key".into(), spec.key.to_string());
                fields.insert("Content-Type".into(), spec.content_type.to_string());
                fields.insert("Cache-Control".into(), spec.cache_control.to_owned());
                let (host, path) = self.location(None);
                Ok(Upload::Post {
                    url: format!("{}://{host}{path}", self.endpoint.scheme),
                    fields,
                })
            }
        }
    }

    async fn presign_multipart(&self, spec: &UploadSpec<'_>) -> Result<Option<Upload>, StoreError> {
        super::s3_upload::presign_multipart(self, spec)
            .await
            .map(Some)
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: Option<&[UploadedPart]>,
    ) -> Result<(), StoreError> {
        super::s3_upload::complete_presigned(self, key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await;
        match res {
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
            other => other.map(|_| ()).map_err(store_error),
        }
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn multipart_bytes(&self, key: &ObjectKey, upload_id: &str) -> Result<u64, StoreError> {
        let mut bytes = 0u64;
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .backoff
                .run("list_parts", || async {
                    let res = self
                        .client
                        .list_parts()
                        .bucket(&self.bucket)
                        .key(key.as_str())
                        .upload_id(upload_id)
                        .set_part_number_marker(marker.clone())
                        .send()
                        .await;
                    match res {
                        Ok(page) => Ok(Some(page)),
                        // Completed or aborted: no part is held any more.
                        Err(e)
                            if e.as_service_error().and_then(|s| s.code())
                                == Some("NoSuchUpload") =>
                        {
                            Ok(None)
                        }
                        Err(e) => Err(store_error(e)),
                    }
                })
                .await?;
            let Some(page) = page else { return Ok(0) };
            bytes += page
                .parts()
                .iter()
                .map(|p| p.size().unwrap_or(0).max(0) as u64)
                .sum::<u64>();
            marker = page.next_part_number_marker;
            if page.is_truncated != Some(true) || marker.is_none() {
                break;
            }
        }
        Ok(bytes)
    }

    async fn presign_download(
        &self,
        key: &ObjectKey,
        filename: &Filename,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let disposition = super::content_disposition(filename.as_str(), inline);
        self.presign_get(key, Some(&disposition), expires_at).await
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        disposition: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let now = Utc::now();
        let mut query = vec![("x-id", "GetObject")];
        if let Some(d) = disposition {
            query.push(("response-content-disposition", d));
        }
        self.presign_url("GET", key, &query, &[], seconds_until(expires_at, now), now)
            .await
    }

    fn uri(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The expiry the credential provider reports for the credentials this store signs with:
    /// a role's session (instance profile, ECS task role, web identity) ends, and every URL
    /// signed with it stops working then.
    async fn signing_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.credentials().await?.expires_at)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.client.head_bucket().bucket(&self.bucket).send(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("HeadBucket timed out".into()))?
        .map(|_| ())
        .map_err(store_error)
    }
}

/// Resolves region and credentials through the standard AWS chain and builds the store. Fails,
/// naming the setting, when either cannot be resolved; the store itself may still be down
/// (`/readyz` reports that).
pub async fn connect(
    cfg: &crate::config::S3Config,
    multipart_threshold: u64,
) -> anyhow::Result<S3Store> {
    use anyhow::Context;
    use aws_sdk_s3::config::{
        timeout::TimeoutConfig, BehaviorVersion, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &cfg.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    let region = sdk.region().map(|r| r.to_string()).context(
        "AWS_REGION is required with CAIRN_STORAGE=s3 (or a region in the AWS_PROFILE's config)",
    )?;
    let credentials = sdk
        .credentials_provider()
        .context("no AWS credentials provider is configured")?;
    credentials.provide_credentials().await.map_err(|e| {
        anyhow::anyhow!(
            "AWS credentials could not be resolved: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or AWS_PROFILE ({e})"
        )
    })?;
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(cfg.force_path_style)
        // Trailing checksums over plain HTTP are refused by some stores (Garage); Cairn checks
        // SHA-256 itself.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .read_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = &cfg.endpoint_url {
        conf = conf.endpoint_url(url);
    }
    let endpoint = Endpoint::parse(cfg.endpoint_url.as_deref(), &region, cfg.force_path_style)
        .map_err(|why| anyhow::anyhow!("AWS_ENDPOINT_URL_S3 is invalid: {why}"))?;
    Ok(S3Store::new(
        Client::from_conf(conf.build()),
        cfg.bucket.clone(),
        credentials,
        &region,
        endpoint,
        cfg.conditional_writes,
        multipart_threshold,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use aws_sdk_s3::{
        config::{BehaviorVersion, Credentials as SdkCredentials, Region},
        presigning::PresigningConfig,
    };
    use chrono::TimeZone;

    use super::*;

    fn store(path_style: bool) -> S3Store {
        let creds = SdkCredentials::new("GKEXAMPLEKEY", "secret/with+chars", None, None, "test");
        store_with(creds, path_style)
    }

    /// A store on a local endpoint signing with `creds` (other modules' tests use it too).
    pub(crate) fn store_with(creds: SdkCredentials, path_style: bool) -> S3Store {
        let endpoint = if path_style {
            "http://127.0.0.1:3900"
        } else {
            "http://s3.example.test:3900"
        };
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("garage"))
            .endpoint_url(endpoint)
            .force_path_style(path_style)
            .credentials_provider(creds.clone())
            .build();
        S3Store::new(
            Client::from_conf(conf),
            "bucket".into(),
            SharedCredentialsProvider::new(creds),
            "garage",
            Endpoint::parse(Some(endpoint), "garage", path_style).unwrap(),
            false,
            8 * 1024 * 1024,
        )
    }

    fn presigning(now: DateTime<Utc>, secs: u64) -> PresigningConfig {
        PresigningConfig::builder()
            .start_time(now.into())
            .expires_in(Duration::from_secs(secs))
            .build()
            .unwrap()
    }

    /// On a role (temporary credentials, as the provider reports them) every presigned URL and
    /// the `expires_at` Cairn reports end with the session, not later.
    #[tokio::test]
    async fn presigned_urls_end_with_the_role_session() {
        let now = Utc::now();
        let session_end = now + chrono::Duration::minutes(20);
        let creds = SdkCredentials::new(
            "ASIAEXAMPLEKEY",
            "secret",
            Some("session-token".into()),
            Some(session_end.into()),
            "test",
        );
        let s = store_with(creds, true);
        let deadline = s.signing_deadline().await.unwrap().unwrap();
        assert_eq!(deadline.timestamp(), session_end.timestamp());

        let week = now + chrono::Duration::days(7);
        let key = ObjectKey::parse("tenants/acme/dev/raw/0192f0a0/a.bin").unwrap();
        let name = Filename::parse("a.bin").unwrap();
        let url = s.presign_download(&key, &name, false, week).await.unwrap();
        let expires: u64 = url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("X-Amz-Expires="))
            .unwrap()
            .parse()
            .unwrap();
        assert!((1190..=1200).contains(&expires), "{url}");
        assert!(url.contains("X-Amz-Security-Token=session-token"), "{url}");

        // What Cairn reports: the session's end, with the store's presigned GETs...
        let reported = crate::storage::url_expiry(&s, week).await.unwrap();
        assert_eq!(reported.timestamp(), session_end.timestamp());
        let soon = now + chrono::Duration::minutes(5);
        assert_eq!(crate::storage::url_expiry(&s, soon).await.unwrap(), soon);
        // (`cdn::delivery`'s tests check the private URLs it hands out end with it too.)

        // ...and none with long-term keys.
        assert_eq!(store(true).signing_deadline().await.unwrap(), None);
        assert_eq!(
            crate::storage::url_expiry(&store(true), week)
                .await
                .unwrap(),
            week
        );
    }

    /// Our signer's URLs are byte-identical to the SDK presigner's for the same inputs and time.
    #[tokio::test]
    async fn urls_match_the_sdk_presigner() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 5).unwrap();
        let key = ObjectKey::parse("tenants/acme/dev/raw/0192f0a0/my file+ü (1).png").unwrap();
        let disposition = crate::storage::content_disposition("my file+ü (1).png", false);
        for path_style in [true, false] {
            let s = store(path_style);
            let sdk = s
                .client
                .get_object()
                .bucket("bucket")
                .key(key.as_str())
                .response_content_disposition(&disposition)
                .presigned(presigning(now, 3600))
                .await
                .unwrap();
            let ours = s
                .presign_url(
                    "GET",
                    &key,
                    &[
                        ("x-id", "GetObject"),
                        ("response-content-disposition", &disposition),
                    ],
                    &[],
                    3600,
                    now,
                )
                .await
                .unwrap();
            assert_eq!(ours, sdk.uri(), "GET, path style {path_style}");
            assert_eq!(ours.starts_with("http://bucket."), !path_style);

            let sdk = s
                .client
                .put_object()
                .bucket("bucket")
                .key(key.as_str())
                .content_type("image/png")
                .content_length(1234)
                .presigned(presigning(now, 900))
                .await
                .unwrap();
            let signed: Vec<(&str, &str)> = sdk.headers().collect();
            let ours = s
                .presign_url(
                    "PUT",
                    &key,
                    &[("x-id", "PutObject")],
                    &[("content-length", "1234"), ("content-type", "image/png")],
                    900,
                    now,
                )
                .await
                .unwrap();
            assert_eq!(
                ours,
                sdk.uri(),
                "PUT, path style {path_style}; SDK headers {signed:?}"
            );
        }
    }
}
