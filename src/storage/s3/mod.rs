//! The S3 backend (AWS S3 or any S3-compatible store: Garage, MinIO, Ceph RGW).
//!
//! Object calls go through aws-sdk-s3. URLs and browser forms are signed by [`sigv4`] so that the
//! store itself enforces every fact Cairn granted: content type, exact length, SHA-256 (when known),
//! `Cache-Control`, and `If-None-Match: *` (where the store honours conditional writes) so a URL can
//! never overwrite an object.
use std::time::Duration;

use aws_sdk_s3::{
    config::{ProvideCredentials, SharedCredentialsProvider},
    error::{ProvideErrorMetadata, SdkError},
    Client,
};
use chrono::{DateTime, Utc};

use super::{
    retry::Backoff,
    sigv4::{self, Credentials, Presign, Signer},
    StoreError,
};
use crate::values::ObjectKey;

mod presign;
mod store;
#[cfg(test)]
pub(crate) mod tests;

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
        let url = crate::config::EndpointUrl::parse(url)?;
        Ok(Self {
            scheme: url.scheme,
            host: url.host,
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
        conf = conf.endpoint_url(url.as_str());
    }
    let url = cfg
        .endpoint_url
        .as_ref()
        .map(crate::config::EndpointUrl::as_str);
    let endpoint = Endpoint::parse(url, &region, cfg.force_path_style)
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
