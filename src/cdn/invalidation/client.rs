//! The CloudFront side of the invalidation queue: one CreateInvalidation per batch, transient
//! failures retried with exponential backoff and full jitter, SDK errors classified as transient
//! or permanent (as `storage::s3::store_error` does for S3).
use std::{fmt::Debug, time::Duration};

use aws_sdk_cloudfront::{
    config::{http::HttpResponse, retry::RetryConfig, timeout::TimeoutConfig, Region},
    error::{ProvideErrorMetadata, SdkError},
    types::{InvalidationBatch, Paths},
    Client,
};

use super::Batch;
use crate::{config::InvalidationConfig, storage::retry::Backoff};

/// Characters of an error kept on the rows.
const MAX_DETAIL: usize = 1000;

/// The CloudFront client and what a run needs to send.
pub struct Invalidator {
    client: Client,
    distribution_id: String,
    backoff: Backoff,
}

impl Invalidator {
    /// A client from the standard AWS chain (credentials, region — us-east-1 when none is set,
    /// CloudFront being global — and `AWS_ENDPOINT_URL_CLOUDFRONT`). Fails when no credentials
    /// can be resolved, naming the variables to set.
    pub async fn connect(cfg: &InvalidationConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        use aws_sdk_cloudfront::config::ProvideCredentials;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let credentials = sdk.credentials_provider().context(
            "CAIRN_CLOUDFRONT_DISTRIBUTION_ID needs AWS credentials: no provider is configured",
        )?;
        credentials.provide_credentials().await.map_err(|e| {
            anyhow::anyhow!(
                "CAIRN_CLOUDFRONT_DISTRIBUTION_ID needs AWS credentials: set AWS_ACCESS_KEY_ID \
                 and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ({e})"
            )
        })?;
        Ok(Self::from_sdk_config(&sdk, cfg))
    }

    /// A client from an already loaded AWS configuration (tests pass static credentials).
    /// The SDK's own retries are off: [`Backoff`] is the one retry layer, so attempts are counted
    /// and logged in one place.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, cfg: &InvalidationConfig) -> Self {
        let mut conf = aws_sdk_cloudfront::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if sdk.region().is_none() {
            conf = conf.region(Region::from_static("us-east-1"));
        }
        if let Some(url) = &cfg.endpoint_url {
            conf = conf.endpoint_url(url);
        }
        Self::new(Client::from_conf(conf.build()), cfg.distribution_id.clone())
    }

    pub fn new(client: Client, distribution_id: String) -> Self {
        Self {
            client,
            distribution_id,
            backoff: Backoff::default(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn distribution_id(&self) -> &str {
        &self.distribution_id
    }

    /// One CreateInvalidation, retried while the failure is transient.
    #[tracing::instrument(skip(self, batch), fields(distribution.id = %self.distribution_id, paths = batch.paths.len(), caller_reference = %batch.caller_reference))]
    pub(super) async fn send(&self, batch: &Batch) -> Result<String, SendError> {
        let mut attempt = 1;
        loop {
            match self.create(batch).await {
                Err(SendError::Transient(detail)) if attempt < self.backoff.attempts => {
                    let wait = self.backoff.ceiling(attempt).mul_f64(rand::random::<f64>());
                    tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %detail, "CloudFront refused an invalidation for now; retrying");
                    metrics::counter!("cairn_cdn_invalidation_retries_total").increment(1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn create(&self, batch: &Batch) -> Result<String, SendError> {
        let invalid =
            |e: aws_sdk_cloudfront::error::BuildError| SendError::Permanent(e.to_string());
        let paths = Paths::builder()
            .quantity(batch.paths.len() as i32)
            .set_items(Some(batch.paths.clone()))
            .build()
            .map_err(invalid)?;
        let out = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(
                InvalidationBatch::builder()
                    .paths(paths)
                    .caller_reference(&batch.caller_reference)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(classify)?;
        out.invalidation()
            .map(|i| i.id().to_owned())
            .ok_or_else(|| {
                SendError::Transient("CloudFront answered without an invalidation".into())
            })
    }
}

#[derive(Debug)]
pub(super) enum SendError {
    /// Worth another attempt: transport, timeouts, 5xx, throttling, too many in progress.
    Transient(String),
    /// Will fail again as sent: unknown distribution, access denied, invalid request.
    Permanent(String),
}

fn classify<E: ProvideErrorMetadata + Debug>(e: SdkError<E, HttpResponse>) -> SendError {
    let transient = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status >= 500
                || status == 429
                || matches!(
                    s.err().code(),
                    Some(
                        "Throttling"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "TooManyInvalidationsInProgress"
                            | "ServiceUnavailable"
                            | "InternalError"
                            | "InternalFailure"
                            | "RequestTimeout"
                    )
                )
        }
        _ => false,
    };
    let detail = crate::storage::s3::sdk_error_detail(&e);
    // Kept on the rows: transport errors' debug output can be long.
    let detail = match detail.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail,
    };
    if transient {
        SendError::Transient(detail)
    } else {
        SendError::Permanent(detail)
    }
}
