//! Configuration: read from the environment (or flags) once at start-up, typed by clap's value
//! parsers, and checked across settings here. A bad or missing value stops start-up with a
//! message naming the variable. Secrets are never printed (their `Debug` is redacted). Each
//! setting's default is written once, in its `default_value`.
//!
//! One file per subsystem: [`catalog`], [`storage`], [`server`] (also envs, CORS and limits),
//! [`auth`], [`cdn`], [`jobs`] (with [`cdn_logs`]) and [`pricing`]; [`startup`] holds what
//! start-up does to the data dir, [`testing`] how tests and benches build settings.
use std::{net::SocketAddr, path::PathBuf};

pub mod auth;
pub mod catalog;
pub mod cdn;
pub mod cdn_logs;
pub mod jobs;
pub mod pricing;
pub mod server;
pub mod startup;
pub mod storage;
pub mod testing;
mod values;

pub use auth::{AuthSettings, JwtConfig, JwtKey, PublicKey};
pub use catalog::{describe_catalog, sqlite_file, CatalogSettings};
pub use cdn::{
    CdnConfig, CdnSettings, CdnSigning, CloudFrontApiSettings, CloudFrontKeys, InvalidationConfig,
};
pub use cdn_logs::CdnLogLocation;
pub use jobs::{
    parse_cron, JobSettings, LifecycleConfig, MeteringConfig, Schedule, UsageFlushSettings,
    DEFAULT_LIFECYCLE_CRON, DEFAULT_METERING_CRON,
};
pub use pricing::{Prices, PricingSettings};
pub use server::{
    CorsOrigins, LimitSettings, ServerLimits, ServerSettings, TenancySettings, MAX_PRESIGN_TTL_SECS,
};
pub use startup::{DevSecret, Provision};
pub use storage::{EndpointUrl, S3Config, StorageConfig, StorageKind, StorageSettings};
pub use values::{Optional, Secret};

/// The settings as `cairn serve --help` lists them, each typed by its parser;
/// [`Config::from_settings`] checks them together.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    #[command(flatten)]
    pub catalog: CatalogSettings,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub tenancy: TenancySettings,
    #[command(flatten)]
    pub cdn: CdnSettings,
    #[command(flatten)]
    pub jobs: JobSettings,
    #[command(flatten)]
    pub pricing: PricingSettings,
    #[command(flatten)]
    pub usage: UsageFlushSettings,
    #[command(flatten)]
    pub cloudfront_api: CloudFrontApiSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    /// `DATABASE_URL` is unset: the catalog is `cairn.db` in the data dir.
    pub catalog_in_data_dir: bool,
    pub storage: StorageConfig,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Without a trailing slash. `None`: derived from the bound address at start-up.
    pub public_url: Option<String>,
    pub presign_ttl_secs: u64,
    pub max_upload_bytes: u64,
    pub multipart_threshold: u64,
    pub jwt: JwtConfig,
    pub envs: Vec<String>,
    pub cdn: CdnConfig,
    pub cors_origins: CorsOrigins,
    /// Whether this replica runs scheduled jobs (`CAIRN_JOBS`).
    pub jobs: bool,
    pub lifecycle: LifecycleConfig,
    pub metering: MeteringConfig,
    /// Connection and request-body limits of the HTTP server.
    pub server: ServerLimits,
    /// Unlocks per-tenant series on `/metrics`; `None`: they are never shown.
    pub metrics_token: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing { var: &'static str, why: String },
    #[error("{var} is invalid: {why}")]
    Invalid { var: &'static str, why: String },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command that works on an existing deployment ([`Provision::Existing`]) found part of it
    /// missing: what is missing, as a sentence. `cairn` exits with 2.
    #[error(
        "{0}. This command works on an existing deployment and creates nothing: run it with the \
         server's CAIRN_DATA_DIR and DATABASE_URL (and CAIRN_JWT_SECRET, if the server has one), \
         or create a deployment with `cairn serve` or `cairn migrate`"
    )]
    NoDeployment(String),
}

impl ConfigError {
    /// The setting a command-line parse refused, as its parser said it (`VAR is invalid: …`);
    /// `None` for clap's own errors (an unknown flag, `--help`).
    pub fn from_clap(e: &clap::Error) -> Option<Self> {
        let source = std::error::Error::source(e)?;
        match source.downcast_ref::<ConfigError>()? {
            ConfigError::Invalid { var, why } => Some(ConfigError::Invalid {
                var,
                why: why.clone(),
            }),
            ConfigError::Missing { var, why } => Some(ConfigError::Missing {
                var,
                why: why.clone(),
            }),
            other => Some(ConfigError::Invalid {
                var: "settings",
                why: other.to_string(),
            }),
        }
    }
}

impl Config {
    /// Checks the settings together. Touches nothing on disk: the data dir and the dev secrets
    /// are start-up's ([`Config::provision`]).
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let local = s.storage.is_local()?;
        let storage = s.storage.config()?;
        let data_dir = s.storage.data_dir.clone();
        let jwt = s.auth.config(local, &data_dir)?;
        let (database_url, catalog_in_data_dir) = match &s.catalog.database_url {
            Some(url) => (url.clone(), false),
            None => (catalog::default_catalog(&data_dir), true),
        };
        let cdn = s.cdn.config(&s.cloudfront_api)?;
        let object_bucket = match &storage {
            StorageConfig::S3(s3) => Some(s3.bucket.as_str()),
            StorageConfig::Local { .. } => None,
        };
        let metering =
            s.jobs
                .metering(object_bucket, s.pricing.prices(), s.usage.usage_flush_secs)?;
        Ok(Self {
            database_url,
            catalog_in_data_dir,
            storage,
            data_dir,
            listen: s.server.listen,
            public_url: s.server.public_url.clone(),
            presign_ttl_secs: s.server.presign_ttl_secs,
            max_upload_bytes: s.server.max_upload_bytes,
            multipart_threshold: s.storage.multipart_threshold,
            jwt,
            envs: s.tenancy.envs.clone(),
            cdn,
            cors_origins: s.limits.cors_origins.clone(),
            jobs: s.jobs.jobs,
            lifecycle: s.jobs.lifecycle(),
            metering,
            server: s.limits.limits(),
            metrics_token: s.limits.metrics_token.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
