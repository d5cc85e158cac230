//! Configuration: read from the environment (or flags) once at start-up, validated, typed.
//! A bad or missing value stops start-up with a message naming the variable. Secrets are
//! never printed (their `Debug` is redacted).
use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The raw settings as `cairn serve --help` lists them. [`Config::from_settings`] validates them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Settings {
    /// Catalog database: `sqlite://...` (default: `cairn.db` in the data dir) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Object storage backend: `local` or `s3` (default: `s3` when `RAW_BUCKET` is set, else
    /// `local`; `local` with `RAW_BUCKET` set is refused).
    #[arg(long, env = "CAIRN_STORAGE")]
    pub storage: Option<String>,
    /// Local objects and generated dev secrets.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// S3 bucket to store objects in; setting it selects `CAIRN_STORAGE=s3`.
    #[arg(long, env = "RAW_BUCKET")]
    pub raw_bucket: Option<String>,
    /// Path-style S3 addressing (Garage, MinIO).
    #[arg(long, env = "CAIRN_S3_FORCE_PATH_STYLE", default_value = "false")]
    pub s3_force_path_style: String,
    /// Sign `If-None-Match: *` into upload URLs so the store refuses to overwrite an object
    /// (AWS S3 and stores with conditional writes); `false` for stores that reject the header.
    #[arg(long, env = "CAIRN_S3_CONDITIONAL_WRITES", default_value = "true")]
    pub s3_conditional_writes: String,
    /// AWS region (else the AWS profile's region).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// S3 endpoint for S3-compatible stores (Garage, MinIO), e.g. `http://127.0.0.1:3900`.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub aws_endpoint_url_s3: Option<String>,
    /// Above this many bytes, uploads use multipart (at least 5 MiB, S3's smallest part).
    #[arg(long, env = "CAIRN_MULTIPART_THRESHOLD", default_value = "8388608")]
    pub multipart_threshold: String,
    /// Bind address.
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Base of the URLs Cairn hands out for its own endpoints (default: `http://<listen>`).
    #[arg(long, env = "CAIRN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Default lifetime of presigned URLs, in seconds (at most 7 days). S3 presigned URLs signed
    /// with temporary credentials (an AWS role) end with the role's session at the latest; the
    /// `expires_at` Cairn answers says when. CloudFront signed URLs are not bound to it.
    #[arg(long, env = "CAIRN_PRESIGN_TTL_SECS", default_value = "3600")]
    pub presign_ttl_secs: String,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "CAIRN_MAX_UPLOAD_BYTES", default_value = "524288000")]
    pub max_upload_bytes: String,
    /// HS256 secret for bearer tokens (local mode generates one in the data dir when unset).
    #[arg(long, env = "CAIRN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key (or a path to one) for RS256/ES256 tokens; excludes `CAIRN_JWT_SECRET`.
    #[arg(long, env = "CAIRN_JWT_PUBLIC_KEY", hide_env_values = true)]
    pub jwt_public_key: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "CAIRN_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "CAIRN_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Allowed envs, comma-separated.
    #[arg(long, env = "CAIRN_ENVS", default_value = "dev,staging,prod")]
    pub envs: String,
    /// CDN for delivery: a domain (`d111111abcdef8.cloudfront.net`, served over https) or a base
    /// URL. Unset: Cairn's own `/cdn/` endpoint.
    #[arg(long, env = "CAIRN_CDN_DOMAIN")]
    pub cdn_domain: Option<String>,
    /// CloudFront public key ids, comma-separated (several for rotation), paired in order with
    /// `CAIRN_CLOUDFRONT_PRIVATE_KEY`. Set: private items get CloudFront signed URLs.
    #[arg(long, env = "CAIRN_CLOUDFRONT_KEY_PAIR_ID")]
    pub cloudfront_key_pair_id: Option<String>,
    /// The private keys (RSA-2048 or ECDSA P-256): PEM text (one or more keys) or comma-separated
    /// paths to PEM files, in the order of `CAIRN_CLOUDFRONT_KEY_PAIR_ID`.
    #[arg(long, env = "CAIRN_CLOUDFRONT_PRIVATE_KEY", hide_env_values = true)]
    pub cloudfront_private_key: Option<String>,
    /// When each key may start signing (RFC 3339, comma-separated, in key order; empty: always).
    /// The newest active key signs, so a new key can be deployed before CloudFront trusts it.
    #[arg(long, env = "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM")]
    pub cloudfront_key_active_from: Option<String>,
    /// Digest of CloudFront signatures: `SHA256` or `SHA1` (CloudFront's original).
    #[arg(
        long,
        env = "CAIRN_CLOUDFRONT_HASH_ALGORITHM",
        default_value = "SHA256"
    )]
    pub cloudfront_hash_algorithm: String,
    /// `Domain` attribute of signed cookies (a parent of the CDN's and the API's host names);
    /// unset: host-only cookies.
    #[arg(long, env = "CAIRN_CDN_COOKIE_DOMAIN")]
    pub cdn_cookie_domain: Option<String>,
    /// CloudFront distribution to invalidate purged public items in.
    #[arg(long, env = "CAIRN_CLOUDFRONT_DISTRIBUTION_ID")]
    pub cloudfront_distribution_id: Option<String>,
    /// `off` keeps this replica from running scheduled jobs (the lifecycle sweep, CDN
    /// invalidations); the API still serves. Other replicas (or `cairn lifecycle run`) do the work.
    #[arg(long, env = "CAIRN_JOBS", default_value = "on")]
    pub jobs: Option<String>,
    /// When the lifecycle sweep runs: cron with seconds (`sec min hour day month weekday`) or the
    /// classic five fields (then at second 0), in UTC. Every replica may fire; one sweeps.
    #[arg(long, env = "CAIRN_LIFECYCLE_CRON", default_value = DEFAULT_LIFECYCLE_CRON)]
    pub lifecycle_cron: Option<String>,
    /// An upload not completed this many seconds after it was presigned or created is
    /// abandoned: its item becomes `failed` and its partial object and multipart upload go.
    #[arg(long, env = "CAIRN_PENDING_TTL_SECS", default_value = "86400")]
    pub pending_ttl_secs: Option<String>,
    /// How long a deleted item stays recoverable in the catalog before the sweep purges it and,
    /// once nothing else references its bytes, removes its object.
    #[arg(long, env = "CAIRN_PURGE_GRACE_SECS", default_value = "604800")]
    pub purge_grace_secs: Option<String>,
    /// Multi-object delete requests (up to 1000 keys each) the sweep keeps in flight while it
    /// removes purged objects, 1 to 32.
    #[arg(long, env = "CAIRN_PURGE_CONCURRENCY", default_value = "4")]
    pub purge_concurrency: Option<String>,
    /// Default retention in days for every tenant's items (audit artifacts excepted); tenant
    /// rules (`PUT /admin/tenants/{tenant}/retention`) override it. Unset: keep until deleted.
    #[arg(long, env = "CAIRN_RETENTION_DAYS")]
    pub retention_days: Option<String>,
    /// When the metering job runs (storage sample for `usage_daily`, CloudFront log ingest,
    /// counter reconcile check): cron like CAIRN_LIFECYCLE_CRON. Every replica may fire; one runs.
    #[arg(long, env = "CAIRN_METERING_CRON", default_value = DEFAULT_METERING_CRON)]
    pub metering_cron: Option<String>,
    /// Where CloudFront writes its standard access logs; the metering job adds their requests and
    /// bytes to each tenant's usage. `s3://<bucket>/<prefix>` as infra/ outputs it (`CdnLogPrefix`):
    /// a log bucket of its own, read with the object store's S3 client and credentials (same
    /// Region), so only with CAIRN_STORAGE=s3. A bare prefix (`cdn-logs/`) is in the object
    /// bucket. Log files are read only directly under the prefix. Refused when it covers tenant
    /// data in the object bucket: the whole bucket, `tenants/…`, `public/…` or a start of them
    /// (`t`, `pub`). Unset: no CDN egress is metered.
    #[arg(long, env = "CAIRN_CDN_LOG_PREFIX")]
    pub cdn_log_prefix: Option<String>,
    /// Price of storage per GB-month, for cost estimates (any currency).
    #[arg(long, env = "CAIRN_PRICE_STORAGE_GB_MONTH", default_value = "0.023")]
    pub price_storage_gb_month: Option<String>,
    /// Price of egress per GB of bytes served (Cairn's own downloads and CloudFront's, per its
    /// logs), for cost estimates.
    #[arg(long, env = "CAIRN_PRICE_EGRESS_GB", default_value = "0.085")]
    pub price_egress_gb: Option<String>,
    /// Price per 1,000 requests (uploads, and downloads served by Cairn or CloudFront), for cost
    /// estimates.
    #[arg(long, env = "CAIRN_PRICE_REQUESTS_PER_1000", default_value = "0.001")]
    pub price_requests_per_1000: Option<String>,
    /// Seconds between two recordings of the usage counted on reads (download URLs handed out,
    /// bytes Cairn served), 1 to 3600: reads write nothing to the catalog themselves. The server
    /// also records them when it stops; a killed process loses at most this much.
    #[arg(long, env = "CAIRN_USAGE_FLUSH_SECS", default_value = "5")]
    pub usage_flush_secs: Option<String>,
    /// CloudFront API endpoint (tests: a local emulator); AWS itself when unset.
    #[arg(long, env = "AWS_ENDPOINT_URL_CLOUDFRONT")]
    pub aws_endpoint_url_cloudfront: Option<String>,
    /// Allowed browser origins (`https://app.example.com`, comma-separated, or `*`) for the API,
    /// `/o/` and `/cdn/`.
    #[arg(long, env = "CAIRN_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Seconds a client may take to finish sending a request's head (request line and headers)
    /// once it has begun; a connection stalled mid-head is closed.
    #[arg(long, env = "CAIRN_HEADER_TIMEOUT_SECS", default_value = "10")]
    pub header_timeout_secs: Option<String>,
    /// Seconds a connection may stay idle (before its first request, or between keep-alive
    /// requests) before the server closes it. Keep it above a load balancer's idle timeout
    /// (AWS ALB: 60 s).
    #[arg(long, env = "CAIRN_KEEPALIVE_TIMEOUT_SECS", default_value = "75")]
    pub keepalive_timeout_secs: Option<String>,
    /// A request body (an upload) that delivers less than CAIRN_BODY_MIN_RATE bytes a second over
    /// this many seconds of waiting for it ends with 408; nothing of it is kept.
    #[arg(long, env = "CAIRN_BODY_TIMEOUT_SECS", default_value = "30")]
    pub body_timeout_secs: Option<String>,
    /// The slowest upload accepted, in bytes per second, averaged over CAIRN_BODY_TIMEOUT_SECS.
    #[arg(long, env = "CAIRN_BODY_MIN_RATE", default_value = "1024")]
    pub body_min_rate: Option<String>,
    /// Most connections served at once; further clients wait in the listen backlog. Capped by
    /// the process's open-file limit (the soft limit is raised to the hard one at start-up).
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS", default_value = "10000")]
    pub max_connections: Option<String>,
    /// Bearer token that shows per-tenant series on `/metrics` (at least 16 bytes). Without it,
    /// `/metrics` names no tenant.
    #[arg(long, env = "CAIRN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
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

/// What a client may hold of the server: time to send a request head, idle time, upload pace,
/// connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: std::time::Duration,
    pub keepalive_timeout: std::time::Duration,
    /// The period over which an upload must deliver `body_min_rate` bytes a second.
    pub body_timeout: std::time::Duration,
    pub body_min_rate: u64,
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: std::time::Duration::from_secs(10),
            keepalive_timeout: std::time::Duration::from_secs(75),
            body_timeout: std::time::Duration::from_secs(30),
            body_min_rate: 1024,
            max_connections: 10_000,
        }
    }
}

/// Every 15 minutes, at second 0.
pub const DEFAULT_LIFECYCLE_CRON: &str = "0 */15 * * * *";

/// The lifecycle sweep's schedule and rules.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// Six-field cron (seconds first), validated.
    pub cron: String,
    pub pending_ttl: chrono::Duration,
    pub purge_grace: chrono::Duration,
    /// Applies where no tenant rule does; `None`: keep.
    pub default_retention_days: Option<u32>,
    /// Delete requests in flight while the sweep removes objects.
    pub delete_concurrency: usize,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            cron: DEFAULT_LIFECYCLE_CRON.into(),
            pending_ttl: chrono::Duration::seconds(86_400),
            purge_grace: chrono::Duration::seconds(604_800),
            default_retention_days: None,
            delete_concurrency: 4,
        }
    }
}

/// Every hour, on the hour.
pub const DEFAULT_METERING_CRON: &str = "0 0 * * * *";

/// The metering job's schedule, CloudFront log location and prices.
#[derive(Debug, Clone, PartialEq)]
pub struct MeteringConfig {
    pub cron: String,
    /// Key prefix of CloudFront's log files, normalised to end in `/` (empty only in a log bucket
    /// of its own: the whole bucket); never covering tenant data. `None`: no ingest.
    pub cdn_log_prefix: Option<String>,
    /// The log bucket when it is not the object bucket (`CAIRN_CDN_LOG_PREFIX=s3://<bucket>/…`),
    /// read with the object store's client and credentials; `None`: the object store. Only
    /// ever set with the S3 store.
    pub cdn_log_bucket: Option<String>,
    pub prices: Prices,
    /// How often the usage counted on reads is recorded.
    pub usage_flush: std::time::Duration,
}

/// What a cost estimate charges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub storage_gb_month: f64,
    pub egress_gb: f64,
    pub requests_per_1000: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            storage_gb_month: 0.023,
            egress_gb: 0.085,
            requests_per_1000: 0.001,
        }
    }
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            cron: DEFAULT_METERING_CRON.into(),
            cdn_log_prefix: None,
            cdn_log_bucket: None,
            prices: Prices::default(),
            usage_flush: std::time::Duration::from_secs(5),
        }
    }
}

/// A cron expression in tokio-cron-scheduler's six-field form; five fields get second 0.
pub fn parse_cron(var: &'static str, v: &str) -> Result<(String, croner::Cron), ConfigError> {
    let v = v.trim();
    let six = if v.split_whitespace().count() == 5 {
        format!("0 {v}")
    } else {
        v.to_owned()
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six)
        .map_err(|e| invalid(var, format!("`{v}` is not a cron expression: {e}")))?;
    Ok((six, cron))
}

/// Where public items are served from and how private ones are signed.
#[derive(Debug, Clone)]
pub struct CdnConfig {
    /// `scheme://host[/path]` without a trailing slash; `None`: Cairn's own `/cdn` endpoint.
    pub base_url: Option<String>,
    pub signing: CdnSigning,
    pub cookie_domain: Option<String>,
    pub invalidation: Option<InvalidationConfig>,
}

/// How private items are delivered.
#[derive(Debug, Clone)]
pub enum CdnSigning {
    /// Presigned GETs of the object store.
    Presigned,
    /// CloudFront signed URLs and cookies.
    CloudFront(CloudFrontKeys),
}

#[derive(Debug, Clone)]
pub struct CloudFrontKeys {
    /// (key pair id, private key PEM, active from), in configuration order.
    pub keys: Vec<(String, Secret, chrono::DateTime<chrono::Utc>)>,
    pub hash: crate::cdn::signer::HashAlgorithm,
}

#[derive(Debug, Clone)]
pub struct InvalidationConfig {
    pub distribution_id: String,
    /// `scheme://host[:port]` of a CloudFront-compatible API; AWS itself when `None`.
    pub endpoint_url: Option<String>,
}

/// Browser origins allowed by CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    None,
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// Objects under `root`; Cairn signs its own `/o/` URLs with `signing_key`.
    Local {
        root: PathBuf,
        signing_key: Secret,
    },
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub force_path_style: bool,
    pub conditional_writes: bool,
    /// Overrides the AWS chain's region when set.
    pub region: Option<String>,
    /// `scheme://host[:port]` of an S3-compatible store; AWS itself when `None`.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The one algorithm tokens must use; the token's own header never chooses it.
#[derive(Debug, Clone)]
pub enum JwtKey {
    Hs256(Secret),
    Rs256 { pem: String },
    Es256 { pem: String },
}

/// Longest URL lifetime anyone may ask for (S3's own SigV4 limit).
pub const MAX_PRESIGN_TTL_SECS: u64 = 7 * 24 * 3600;

/// A secret value; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
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

/// What loading the configuration may create on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// `cairn serve` and `cairn migrate`: the data dir, the SQLite catalog and the generated dev
    /// secrets are created when missing, so the embedded default starts from nothing.
    Create,
    /// Every other command works on what a server left: nothing is created, and a missing data
    /// dir, dev secret or (when the catalog is opened) SQLite catalog is a
    /// [`ConfigError::NoDeployment`]. A fresh data dir would hold an empty catalog and a new
    /// secret: a report of nothing, a token no server accepts.
    Existing,
}

fn invalid(var: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        why: why.into(),
    }
}

impl Config {
    /// Validates every setting; in local mode also creates the data dir and the dev secrets
    /// ([`Provision::Create`], as `cairn serve` does).
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        Self::load(s, Provision::Create)
    }

    /// Validates every setting; `provision` says whether a missing data dir and dev secrets are
    /// created or refused.
    pub fn load(s: &Settings, provision: Provision) -> Result<Self, ConfigError> {
        let envs: Vec<String> = s
            .envs
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if envs.is_empty() {
            return Err(invalid("CAIRN_ENVS", "must name at least one env"));
        }
        for e in &envs {
            crate::domain::TenantId::parse(e)
                .map_err(|_| invalid("CAIRN_ENVS", format!("`{e}` is not a valid env name")))?;
        }
        let listen: SocketAddr = s
            .listen
            .parse()
            .map_err(|e| invalid("CAIRN_LISTEN", format!("`{}`: {e}", s.listen)))?;
        let public_url = match &s.public_url {
            None => None,
            Some(u) => {
                let u = u.trim_end_matches('/');
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains('?') {
                    return Err(invalid(
                        "CAIRN_PUBLIC_URL",
                        "must be an http:// or https:// base URL",
                    ));
                }
                Some(u.to_owned())
            }
        };
        let presign_ttl_secs = parse_u64("CAIRN_PRESIGN_TTL_SECS", &s.presign_ttl_secs)?;
        if presign_ttl_secs == 0 || presign_ttl_secs > MAX_PRESIGN_TTL_SECS {
            return Err(invalid(
                "CAIRN_PRESIGN_TTL_SECS",
                format!("must be between 1 and {MAX_PRESIGN_TTL_SECS}"),
            ));
        }
        let max_upload_bytes = parse_u64("CAIRN_MAX_UPLOAD_BYTES", &s.max_upload_bytes)?;
        if max_upload_bytes == 0 {
            return Err(invalid("CAIRN_MAX_UPLOAD_BYTES", "must be positive"));
        }
        let force_path_style = parse_bool("CAIRN_S3_FORCE_PATH_STYLE", &s.s3_force_path_style)?;
        let conditional_writes =
            parse_bool("CAIRN_S3_CONDITIONAL_WRITES", &s.s3_conditional_writes)?;
        let multipart_threshold = parse_u64("CAIRN_MULTIPART_THRESHOLD", &s.multipart_threshold)?;
        if multipart_threshold < 5 * 1024 * 1024 {
            return Err(invalid(
                "CAIRN_MULTIPART_THRESHOLD",
                "must be at least 5 MiB (5242880)",
            ));
        }
        if let Some(url) = &s.aws_endpoint_url_s3 {
            crate::storage::s3::Endpoint::parse(Some(url), "", force_path_style)
                .map_err(|why| invalid("AWS_ENDPOINT_URL_S3", why))?;
        }

        let data_dir = s.data_dir.clone();
        let local = is_local(s)?;
        let jwt_in_data_dir = local && s.jwt_secret.is_none() && s.jwt_public_key.is_none();
        if local && provision == Provision::Existing && !data_dir.is_dir() {
            let mut holds = vec![];
            if s.database_url.is_none() {
                holds.push("catalog (cairn.db)");
            }
            holds.push("objects");
            if jwt_in_data_dir {
                holds.push("token secret (jwt-secret)");
            }
            let last = holds.pop().unwrap_or_default();
            let holds = if holds.is_empty() {
                last.to_owned()
            } else {
                format!("{} and {last}", holds.join(", "))
            };
            return Err(ConfigError::NoDeployment(format!(
                "CAIRN_DATA_DIR={} does not exist, so neither do its {holds}",
                data_dir.display(),
            )));
        }
        let storage = if local {
            if provision == Provision::Create {
                ensure_dir(&data_dir)?;
            }
            StorageConfig::Local {
                root: data_dir.join("objects"),
                signing_key: dev_secret(
                    &data_dir.join("url-signing.key"),
                    "the URL signing key",
                    provision,
                )?
                .0,
            }
        } else {
            let bucket = s
                .raw_bucket
                .clone()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ConfigError::Missing {
                    var: "RAW_BUCKET",
                    why: "CAIRN_STORAGE=s3 needs the bucket to store objects in".into(),
                })?;
            StorageConfig::S3(S3Config {
                bucket,
                force_path_style,
                conditional_writes,
                region: s.aws_region.clone().filter(|r| !r.is_empty()),
                endpoint_url: s.aws_endpoint_url_s3.clone().filter(|u| !u.is_empty()),
            })
        };

        let key = match (&s.jwt_secret, &s.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CAIRN_JWT_SECRET",
                    "set either CAIRN_JWT_SECRET or CAIRN_JWT_PUBLIC_KEY, not both",
                ))
            }
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(invalid("CAIRN_JWT_SECRET", "must be at least 32 bytes"));
                }
                JwtKey::Hs256(Secret::new(secret.clone()))
            }
            (None, Some(pem)) => parse_public_key(pem)?,
            (None, None) if local => {
                let path = data_dir.join("jwt-secret");
                let (secret, created) = dev_secret(
                    &path,
                    "the token secret (CAIRN_JWT_SECRET is unset)",
                    provision,
                )?;
                if created {
                    tracing::warn!(
                        path = %path.display(),
                        "CAIRN_JWT_SECRET is unset: generated a development token secret; \
                         `cairn token` signs with it"
                    );
                }
                JwtKey::Hs256(secret)
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    var: "CAIRN_JWT_SECRET",
                    why: "with CAIRN_STORAGE=s3 set CAIRN_JWT_SECRET or CAIRN_JWT_PUBLIC_KEY"
                        .into(),
                })
            }
        };

        let database_url = match &s.database_url {
            Some(u)
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://") =>
            {
                u.clone()
            }
            Some(_) => {
                return Err(invalid(
                    "DATABASE_URL",
                    "must start with sqlite: or postgres://",
                ))
            }
            None => {
                // Existing: whether the file is there is checked where the catalog is opened
                // (`cairn token` never opens it).
                if provision == Provision::Create {
                    ensure_dir(&data_dir)?;
                }
                format!("sqlite://{}?mode=rwc", data_dir.join("cairn.db").display())
            }
        };

        let cdn = parse_cdn(s)?;
        let cors_origins = parse_cors(s.cors_origins.as_deref())?;
        let jobs = match s.jobs.as_deref().map(str::trim).unwrap_or("on") {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => {
                return Err(invalid(
                    "CAIRN_JOBS",
                    format!("`{other}` is not `on` or `off`"),
                ))
            }
        };
        let lifecycle = parse_lifecycle(s)?;
        let object_bucket = match &storage {
            StorageConfig::S3(s3) => Some(s3.bucket.as_str()),
            StorageConfig::Local { .. } => None,
        };
        let metering = parse_metering(s, object_bucket)?;
        let server = parse_server(s)?;
        let metrics_token = match s.metrics_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.len() < 16 => {
                return Err(invalid("CAIRN_METRICS_TOKEN", "must be at least 16 bytes"))
            }
            Some(t) => Some(Secret::new(t)),
        };

        let config = Self {
            database_url: Secret::new(database_url),
            storage,
            data_dir,
            listen,
            public_url,
            presign_ttl_secs,
            max_upload_bytes,
            multipart_threshold,
            jwt: JwtConfig {
                key,
                issuer: s.jwt_issuer.clone().filter(|v| !v.is_empty()),
                audience: s.jwt_audience.clone().filter(|v| !v.is_empty()),
            },
            envs,
            cdn,
            cors_origins,
            jobs,
            lifecycle,
            metering,
            server,
            metrics_token,
        };
        Ok(config)
    }
}

/// Whether objects stay on local disk. `CAIRN_STORAGE` unset follows `RAW_BUCKET` (DESIGN §10),
/// so a deployment that names only the bucket, as the AWS docs deploy it, stores in the bucket;
/// `local` with a bucket named is a contradiction that would lose every object with the disk.
fn is_local(s: &Settings) -> Result<bool, ConfigError> {
    let bucket = s.raw_bucket.as_deref().filter(|b| !b.is_empty());
    match s
        .storage
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Ok(bucket.is_none()),
        Some("s3") => Ok(false),
        Some("local") => match bucket {
            None => Ok(true),
            Some(b) => Err(invalid(
                "CAIRN_STORAGE",
                format!(
                    "`local` while RAW_BUCKET is set (`{b}`): objects would stay on this \
                     machine's disk, not in the bucket. Unset CAIRN_STORAGE (or set it to `s3`) \
                     to store them in the bucket, or unset RAW_BUCKET to keep them local"
                ),
            )),
        },
        Some(other) => Err(invalid(
            "CAIRN_STORAGE",
            format!("`{other}` is not `local` or `s3`"),
        )),
    }
}

/// The file a `sqlite:` catalog URL names, read as SQLx reads it (percent-decoded, without the
/// query); `None` for other backends and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = query.split('&').any(|p| p == "mode=memory");
    if path.is_empty() || path == ":memory:" || memory {
        return None;
    }
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    Some(PathBuf::from(path.as_ref()))
}

/// The catalog as logs may show it: `sqlite <file>`, or `postgres://host[:port]/database` without
/// user, password or query (which may carry a password too).
pub fn describe_catalog(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return match sqlite_file(url) {
            Some(path) => format!("sqlite {}", path.display()),
            None => "sqlite in memory".into(),
        };
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("unknown", ""));
    // RFC 3986: the authority ends at the first `/`, `?` or `#`; user info ends at its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = tail.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

fn parse_lifecycle(s: &Settings) -> Result<LifecycleConfig, ConfigError> {
    let d = LifecycleConfig::default();
    let cron = match s.lifecycle_cron.as_deref() {
        Some(v) => parse_cron("CAIRN_LIFECYCLE_CRON", v)?.0,
        None => d.cron,
    };
    let secs = |var: &'static str, v: &Option<String>, default: chrono::Duration| match v {
        Some(v) => {
            let n = parse_u64(var, v)?;
            i64::try_from(n)
                .ok()
                .filter(|n| *n <= 100 * 365 * 86_400)
                .map(chrono::Duration::seconds)
                .ok_or_else(|| invalid(var, "must be at most 100 years"))
        }
        None => Ok(default),
    };
    let pending_ttl = secs("CAIRN_PENDING_TTL_SECS", &s.pending_ttl_secs, d.pending_ttl)?;
    if pending_ttl.is_zero() {
        return Err(invalid(
            "CAIRN_PENDING_TTL_SECS",
            "must be positive: a zero TTL would fail uploads in flight",
        ));
    }
    let purge_grace = secs("CAIRN_PURGE_GRACE_SECS", &s.purge_grace_secs, d.purge_grace)?;
    let default_retention_days = match s.retention_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| {
                    invalid(
                        "CAIRN_RETENTION_DAYS",
                        "must be a whole number of days, 1 to 36500",
                    )
                })?,
        ),
    };
    let delete_concurrency = match s.purge_concurrency.as_deref().map(str::trim) {
        None => d.delete_concurrency,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=32).contains(n))
            .ok_or_else(|| invalid("CAIRN_PURGE_CONCURRENCY", "must be a whole number, 1 to 32"))?,
    };
    Ok(LifecycleConfig {
        cron,
        pending_ttl,
        purge_grace,
        default_retention_days,
        delete_concurrency,
    })
}

fn parse_server(s: &Settings) -> Result<ServerLimits, ConfigError> {
    let d = ServerLimits::default();
    // A whole number in `range`, or the default when unset.
    let num = |var: &'static str,
               v: &Option<String>,
               default: u64,
               range: std::ops::RangeInclusive<u64>| {
        match v.as_deref().map(str::trim) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    invalid(
                        var,
                        format!(
                            "`{v}` is not a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    };
    let secs = std::time::Duration::from_secs;
    Ok(ServerLimits {
        header_timeout: secs(num(
            "CAIRN_HEADER_TIMEOUT_SECS",
            &s.header_timeout_secs,
            d.header_timeout.as_secs(),
            1..=3600,
        )?),
        keepalive_timeout: secs(num(
            "CAIRN_KEEPALIVE_TIMEOUT_SECS",
            &s.keepalive_timeout_secs,
            d.keepalive_timeout.as_secs(),
            1..=3600,
        )?),
        body_timeout: secs(num(
            "CAIRN_BODY_TIMEOUT_SECS",
            &s.body_timeout_secs,
            d.body_timeout.as_secs(),
            1..=3600,
        )?),
        body_min_rate: num(
            "CAIRN_BODY_MIN_RATE",
            &s.body_min_rate,
            d.body_min_rate,
            0..=1 << 30,
        )?,
        max_connections: num(
            "CAIRN_MAX_CONNECTIONS",
            &s.max_connections,
            d.max_connections as u64,
            1..=1_000_000,
        )? as usize,
    })
}

/// `object_bucket`: `RAW_BUCKET` with the S3 store, `None` with the local one.
fn parse_metering(
    s: &Settings,
    object_bucket: Option<&str>,
) -> Result<MeteringConfig, ConfigError> {
    let d = MeteringConfig::default();
    let cron = match s.metering_cron.as_deref() {
        Some(v) => parse_cron("CAIRN_METERING_CRON", v)?.0,
        None => d.cron,
    };
    let (cdn_log_bucket, cdn_log_prefix) = match s.cdn_log_prefix.as_deref().map(str::trim) {
        None | Some("") => (None, None),
        Some(v) => {
            let (bucket, prefix) = parse_cdn_log_location(v, object_bucket)?;
            (bucket, Some(prefix))
        }
    };
    let price = |var: &'static str, v: &Option<String>, default: f64| match v.as_deref() {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| invalid(var, format!("`{v}` is not a price (a number, 0 or more)"))),
    };
    let p = d.prices;
    let prices = Prices {
        storage_gb_month: price(
            "CAIRN_PRICE_STORAGE_GB_MONTH",
            &s.price_storage_gb_month,
            p.storage_gb_month,
        )?,
        egress_gb: price("CAIRN_PRICE_EGRESS_GB", &s.price_egress_gb, p.egress_gb)?,
        requests_per_1000: price(
            "CAIRN_PRICE_REQUESTS_PER_1000",
            &s.price_requests_per_1000,
            p.requests_per_1000,
        )?,
    };
    let usage_flush = match s.usage_flush_secs.as_deref().map(str::trim) {
        None => d.usage_flush,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| {
                invalid(
                    "CAIRN_USAGE_FLUSH_SECS",
                    "must be a whole number of seconds, 1 to 3600",
                )
            })?,
    };
    Ok(MeteringConfig {
        cron,
        cdn_log_prefix,
        cdn_log_bucket,
        prices,
        usage_flush,
    })
}

/// `CAIRN_CDN_LOG_PREFIX`: `s3://<bucket>/<prefix>` (infra/'s `CdnLogPrefix` output, CloudFront's
/// `LogBucket` and `LogPrefix`) or a bare key prefix in the object bucket. Answers the log bucket
/// when it is another bucket than `object_bucket` (`None`: the object bucket) and the prefix,
/// normalised to end in `/` unless it is a whole log bucket of its own. A bucket needs the S3
/// store: the local one has none to read it with.
fn parse_cdn_log_location(
    v: &str,
    object_bucket: Option<&str>,
) -> Result<(Option<String>, String), ConfigError> {
    const VAR: &str = "CAIRN_CDN_LOG_PREFIX";
    let Some(location) = v.strip_prefix("s3://") else {
        if v.contains("://") {
            return Err(invalid(
                VAR,
                format!("`{v}` is neither `s3://<bucket>/<prefix>` nor a key prefix"),
            ));
        }
        return Ok((None, parse_cdn_log_prefix(v)?));
    };
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if !is_bucket_name(bucket) {
        return Err(invalid(
            VAR,
            format!("`{bucket}` in `{v}` is not a bucket name"),
        ));
    }
    let Some(object_bucket) = object_bucket else {
        return Err(invalid(
            VAR,
            format!(
                "`{v}` is an S3 bucket, and CAIRN_STORAGE=local has no S3 client to read it: \
                 use CAIRN_STORAGE=s3, or a key prefix in the local store (`cdn-logs/`)"
            ),
        ));
    };
    if prefix.starts_with('/') {
        return Err(invalid(
            VAR,
            format!("`{v}`: the prefix is not a key prefix"),
        ));
    }
    if bucket == object_bucket {
        return Ok((None, parse_cdn_log_prefix(prefix)?));
    }
    // A bucket of CloudFront's own holds no tenant data: all of it may be read.
    check_key_prefix(prefix)?;
    Ok((Some(bucket.to_owned()), with_slash(prefix)))
}

/// S3's rule for bucket names: 3 to 63 lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit.
fn is_bucket_name(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn check_key_prefix(p: &str) -> Result<(), ConfigError> {
    if p.chars().any(|c| c.is_control() || c == '\\') || p.contains("//") {
        return Err(invalid("CAIRN_CDN_LOG_PREFIX", "is not a key prefix"));
    }
    Ok(())
}

/// `p` ending in `/`, unless it is empty.
fn with_slash(p: &str) -> String {
    if p.is_empty() || p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// A key prefix in the object bucket, without a leading `/` and normalised to end in `/`. It
/// may not cover tenant data ([`covers_tenant_data`]): whatever the metering job finds there is
/// read as CloudFront's own word on who was served what.
fn parse_cdn_log_prefix(v: &str) -> Result<String, ConfigError> {
    const VAR: &str = "CAIRN_CDN_LOG_PREFIX";
    let p = v.trim_start_matches('/');
    check_key_prefix(p)?;
    if covers_tenant_data(p) {
        return Err(invalid(
            VAR,
            format!(
                "`{v}` would read tenant data (`tenants/`, `public/` or the whole bucket) as CDN \
                 logs: use a prefix of its own, like `cdn-logs/`"
            ),
        ));
    }
    Ok(with_slash(p))
}

/// Whether a log prefix (in the object bucket, without its leading `/`) overlaps the keys
/// tenants write: it is empty (the whole bucket), lies under `tenants/` or `public/`, or is
/// itself the start of one of them (`t`, `pub`), which a listing would run into.
fn covers_tenant_data(prefix: &str) -> bool {
    const TENANT_DATA: [&str; 2] = ["tenants/", "public/"];
    TENANT_DATA
        .iter()
        .any(|data| prefix.starts_with(data) || data.starts_with(prefix))
}

fn parse_cdn(s: &Settings) -> Result<CdnConfig, ConfigError> {
    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let base_url = match nonempty(&s.cdn_domain) {
        None => None,
        Some(d) => {
            let url = if d.contains("://") {
                d.trim_end_matches('/').to_owned()
            } else {
                format!("https://{}", d.trim_end_matches('/'))
            };
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .ok_or_else(|| invalid("CAIRN_CDN_DOMAIN", "must be a domain or an http(s) URL"))?;
            if rest.is_empty()
                || rest.starts_with('/')
                || rest.contains(['?', '#', ' '])
                || rest.chars().any(char::is_control)
            {
                return Err(invalid(
                    "CAIRN_CDN_DOMAIN",
                    format!("`{d}` is not a domain or a base URL"),
                ));
            }
            Some(url)
        }
    };
    // Empty (settings built in code): the default.
    let hash = match s.cloudfront_hash_algorithm.trim() {
        "" => crate::cdn::signer::HashAlgorithm::Sha256,
        h => crate::cdn::signer::HashAlgorithm::parse(h)
            .ok_or_else(|| invalid("CAIRN_CLOUDFRONT_HASH_ALGORITHM", "must be SHA1 or SHA256"))?,
    };
    let signing = match (
        nonempty(&s.cloudfront_key_pair_id),
        nonempty(&s.cloudfront_private_key),
    ) {
        (None, None) => CdnSigning::Presigned,
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                var: "CAIRN_CLOUDFRONT_PRIVATE_KEY",
                why:
                    "CAIRN_CLOUDFRONT_KEY_PAIR_ID is set; CloudFront signing needs its private key"
                        .into(),
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                var: "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                why: "CAIRN_CLOUDFRONT_PRIVATE_KEY is set; CloudFront signing needs the key's id"
                    .into(),
            })
        }
        (Some(ids), Some(keys)) => CdnSigning::CloudFront(parse_cloudfront_keys(
            ids,
            keys,
            nonempty(&s.cloudfront_key_active_from),
            hash,
        )?),
    };
    let cookie_domain = match nonempty(&s.cdn_cookie_domain) {
        None => None,
        Some(d) => {
            let d = d.trim_start_matches('.');
            let ok = !d.is_empty()
                && d.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(invalid(
                    "CAIRN_CDN_COOKIE_DOMAIN",
                    format!("`{d}` is not a domain"),
                ));
            }
            Some(d.to_ascii_lowercase())
        }
    };
    let invalidation = match nonempty(&s.cloudfront_distribution_id) {
        None => None,
        Some(id) => {
            if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "CAIRN_CLOUDFRONT_DISTRIBUTION_ID",
                    format!("`{id}` is not a distribution id"),
                ));
            }
            let endpoint_url = match nonempty(&s.aws_endpoint_url_cloudfront) {
                None => None,
                Some(u) => {
                    crate::storage::s3::Endpoint::parse(Some(u), "", true)
                        .map_err(|why| invalid("AWS_ENDPOINT_URL_CLOUDFRONT", why))?;
                    Some(u.trim_end_matches('/').to_owned())
                }
            };
            Some(InvalidationConfig {
                distribution_id: id.to_owned(),
                endpoint_url,
            })
        }
    };
    Ok(CdnConfig {
        base_url,
        signing,
        cookie_domain,
        invalidation,
    })
}

/// Keys as PEM text (one or more blocks) or comma-separated paths; ids and activation times are
/// comma-separated in the same order. Each key is parsed here so that a bad one stops start-up.
fn parse_cloudfront_keys(
    ids: &str,
    keys: &str,
    active_from: Option<&str>,
    hash: crate::cdn::signer::HashAlgorithm,
) -> Result<CloudFrontKeys, ConfigError> {
    const KEYS: &str = "CAIRN_CLOUDFRONT_PRIVATE_KEY";
    let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
    if ids
        .iter()
        .any(|id| id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
            "must list CloudFront public key ids (letters and digits), comma-separated",
        ));
    }
    let pems: Vec<String> = if keys.contains("-----BEGIN") {
        pem_blocks(keys)
    } else {
        keys.split(',')
            .map(str::trim)
            .map(|path| {
                std::fs::read_to_string(path)
                    .map_err(|e| invalid(KEYS, format!("cannot read `{path}`: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    if pems.len() != ids.len() {
        return Err(invalid(
            KEYS,
            format!(
                "{} key(s) for {} key pair id(s) in CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                pems.len(),
                ids.len()
            ),
        ));
    }
    let times: Vec<chrono::DateTime<chrono::Utc>> = match active_from {
        None => vec![chrono::DateTime::UNIX_EPOCH; ids.len()],
        Some(list) => {
            let times: Vec<_> = list
                .split(',')
                .map(str::trim)
                .map(|t| {
                    if t.is_empty() {
                        Ok(chrono::DateTime::UNIX_EPOCH)
                    } else {
                        chrono::DateTime::parse_from_rfc3339(t)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|e| {
                                invalid("CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM", format!("`{t}`: {e}"))
                            })
                    }
                })
                .collect::<Result<_, _>>()?;
            if times.len() != ids.len() {
                return Err(invalid(
                    "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM",
                    "must list one time (or nothing) per key pair id",
                ));
            }
            times
        }
    };
    if times.iter().all(|t| *t > chrono::Utc::now()) {
        return Err(invalid(
            "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM",
            "no key is active yet: at least one must be able to sign at start-up",
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for ((id, pem), from) in ids.iter().zip(pems).zip(times) {
        if out
            .iter()
            .any(|(seen, _, _): &(String, Secret, _)| seen == id)
        {
            return Err(invalid(
                "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                format!("`{id}` is listed twice"),
            ));
        }
        crate::cdn::signer::SigningKey::from_pem(id, pem.as_bytes(), from)
            .map_err(|e| invalid(KEYS, format!("key `{id}`: {e}")))?;
        out.push(((*id).to_owned(), Secret::new(pem), from));
    }
    Ok(CloudFrontKeys { keys: out, hash })
}

/// The PEM blocks in `text`, each from its `-----BEGIN` line to its `-----END ...-----` line.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN") {
        // `openssl ecparam -genkey` writes the curve's parameters before the key.
        if rest[start..].starts_with("-----BEGIN EC PARAMETERS-----") {
            match rest[start..].find("-----END EC PARAMETERS-----") {
                Some(end) => {
                    rest = &rest[start + end + 27..];
                    continue;
                }
                None => break,
            }
        }
        let from = &rest[start..];
        let Some(end) = from.find("-----END") else {
            out.push(from.to_owned());
            break;
        };
        let tail = &from[end + 8..];
        let close = tail
            .find("-----")
            .map(|i| end + 8 + i + 5)
            .unwrap_or(from.len());
        out.push(from[..close].to_owned());
        rest = &from[close..];
    }
    out
}

fn parse_cors(v: Option<&str>) -> Result<CorsOrigins, ConfigError> {
    const VAR: &str = "CAIRN_CORS_ORIGINS";
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(CorsOrigins::None);
    };
    if v == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut list = Vec::new();
    for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let o = o.trim_end_matches('/');
        let host = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .ok_or_else(|| invalid(VAR, format!("`{o}` is not an http(s) origin")))?;
        if host.is_empty()
            || host.contains(['/', '?', '#', ' ', '*'])
            || host.chars().any(char::is_control)
        {
            return Err(invalid(
                VAR,
                format!("`{o}` is not an origin (scheme://host[:port]) or `*`"),
            ));
        }
        list.push(o.to_ascii_lowercase());
    }
    Ok(CorsOrigins::List(list))
}

fn parse_u64(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(var, format!("`{v}` is not a non-negative integer")))
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(invalid(var, format!("`{other}` is not true or false"))),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn parse_public_key(value: &str) -> Result<JwtKey, ConfigError> {
    const VAR: &str = "CAIRN_JWT_PUBLIC_KEY";
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| invalid(VAR, format!("cannot read `{value}`: {e}")))?
    };
    if jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok() {
        Ok(JwtKey::Rs256 { pem })
    } else if jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()).is_ok() {
        Ok(JwtKey::Es256 { pem })
    } else {
        Err(invalid(VAR, "not an RSA or EC (P-256) public key in PEM"))
    }
}

/// Reads a generated secret (`what`, for the error when it is missing), creating it (32 random
/// bytes, hex, mode 0600) when absent and `provision` allows. Returns whether it was created.
fn dev_secret(
    path: &Path,
    what: &str,
    provision: Provision,
) -> Result<(Secret, bool), ConfigError> {
    use std::io::Write;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().len() >= 32 => return Ok((Secret::new(s.trim()), false)),
        Ok(_) => {
            return Err(invalid(
                "CAIRN_DATA_DIR",
                format!("{} is too short", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if provision == Provision::Existing {
                return Err(ConfigError::NoDeployment(format!(
                    "{what}: {} does not exist",
                    path.display()
                )));
            }
        }
        Err(e) => return Err(io(e)),
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok((Secret::new(secret), true))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            dev_secret(path, what, provision)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings {
            data_dir: dir.to_owned(),
            s3_force_path_style: "false".into(),
            s3_conditional_writes: "true".into(),
            multipart_threshold: "8388608".into(),
            listen: "127.0.0.1:0".into(),
            presign_ttl_secs: "3600".into(),
            max_upload_bytes: "1000".into(),
            envs: "dev,prod".into(),
            ..Default::default()
        }
    }

    fn err(s: &Settings) -> String {
        Config::from_settings(s).unwrap_err().to_string()
    }

    #[test]
    fn s3_without_bucket_names_raw_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.storage = Some("s3".into());
        s.jwt_secret = Some("x".repeat(32));
        assert!(err(&s).starts_with("RAW_BUCKET is required"), "{}", err(&s));
    }

    /// DESIGN §10: `RAW_BUCKET` alone means S3, as the AWS docs deploy it; nothing lands on
    /// local disk.
    #[test]
    fn raw_bucket_alone_selects_s3() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.raw_bucket = Some("assets".into());
        s.aws_region = Some("eu-west-1".into());
        s.jwt_secret = Some("x".repeat(32));
        for storage in [None, Some(""), Some(" "), Some("s3")] {
            s.storage = storage.map(str::to_owned);
            let c = Config::from_settings(&s).unwrap();
            let StorageConfig::S3(s3) = &c.storage else {
                panic!("CAIRN_STORAGE={storage:?} with RAW_BUCKET: {:?}", c.storage);
            };
            assert_eq!(s3.bucket, "assets");
            assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        }
        assert!(!dir.path().join("url-signing.key").exists());
        assert!(!dir.path().join("objects").exists());
        // No bucket (or a blank one): local, as before.
        for bucket in [None, Some("")] {
            s.storage = None;
            s.raw_bucket = bucket.map(str::to_owned);
            let c = Config::from_settings(&s).unwrap();
            assert!(
                matches!(c.storage, StorageConfig::Local { .. }),
                "RAW_BUCKET={bucket:?}"
            );
        }
    }

    #[test]
    fn local_storage_with_a_bucket_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.raw_bucket = Some("assets".into());
        s.jwt_secret = Some("x".repeat(32));
        for local in ["local", " local "] {
            s.storage = Some(local.into());
            let msg = err(&s);
            assert!(msg.starts_with("CAIRN_STORAGE is invalid"), "{msg}");
            assert!(
                msg.contains("RAW_BUCKET") && msg.contains("`assets`"),
                "{msg}"
            );
        }
        assert!(!dir.path().join("url-signing.key").exists());
    }

    /// Commands other than `serve` and `migrate` never make a data dir or a secret up.
    #[test]
    fn an_existing_deployment_is_used_never_created() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("cairn-data");
        let s = settings(&data);
        let existing = |s: &Settings| Config::load(s, Provision::Existing);
        let msg = match existing(&s) {
            Err(e @ ConfigError::NoDeployment(_)) => e.to_string(),
            other => panic!("expected NoDeployment: {other:?}"),
        };
        for named in ["CAIRN_DATA_DIR=", "jwt-secret", "cairn.db", "DATABASE_URL"] {
            assert!(msg.contains(named), "{named} not in: {msg}");
        }
        assert!(!data.exists(), "the data dir was created");

        // S3 with the token secret from the environment: nothing in the data dir is needed to
        // load (a default SQLite catalog is checked where it is opened), and nothing is made.
        let mut s3 = s.clone();
        s3.raw_bucket = Some("assets".into());
        s3.jwt_secret = Some("x".repeat(32));
        existing(&s3).unwrap();
        assert!(!data.exists(), "the data dir was created for S3");

        // What `cairn serve` generated is what the others use.
        let served = Config::from_settings(&s).unwrap();
        let used = existing(&s).unwrap();
        let (JwtKey::Hs256(a), JwtKey::Hs256(b)) = (&served.jwt.key, &used.jwt.key) else {
            panic!("expected HS256");
        };
        assert_eq!(a, b);

        // A secret gone is named, not made up again.
        for (file, what) in [
            ("jwt-secret", "token secret"),
            ("url-signing.key", "URL signing key"),
        ] {
            let path = data.join(file);
            let kept = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            let msg = match existing(&s) {
                Err(e @ ConfigError::NoDeployment(_)) => e.to_string(),
                other => panic!("expected NoDeployment without {file}: {other:?}"),
            };
            assert!(msg.contains(what) && msg.contains(file), "{msg}");
            assert!(!path.exists(), "{file} was generated again");
            std::fs::write(&path, kept).unwrap();
        }
    }

    #[test]
    fn catalogs_are_described_without_credentials() {
        for (url, want) in [
            (
                "postgres://cairn:hunter2@db.internal:5432/cairn?sslmode=require",
                "postgres://db.internal:5432/cairn",
            ),
            (
                "postgresql://cairn@db/cairn?password=hunter2",
                "postgresql://db/cairn",
            ),
            ("postgres://u:p%40ss@h", "postgres://h"),
            (
                "postgres:///cairn?host=/run/postgresql",
                "postgres:///cairn",
            ),
            (
                "sqlite://./cairn-data/cairn.db?mode=rwc",
                "sqlite ./cairn-data/cairn.db",
            ),
            (
                "sqlite:///var/lib/cairn/a%3Fb.db",
                "sqlite /var/lib/cairn/a?b.db",
            ),
            ("sqlite::memory:", "sqlite in memory"),
        ] {
            assert_eq!(describe_catalog(url), want, "{url}");
        }
        for (url, want) in [
            (
                "sqlite://./cairn-data/cairn.db?mode=rwc",
                Some("./cairn-data/cairn.db"),
            ),
            ("sqlite:cairn.db", Some("cairn.db")),
            ("sqlite:///abs/c.db?mode=rw", Some("/abs/c.db")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
            ("sqlite://x.db?mode=memory", None),
            ("sqlite://?mode=rwc", None),
            ("postgres://h/db", None),
        ] {
            assert_eq!(sqlite_file(url), want.map(PathBuf::from), "{url}");
        }
    }

    #[test]
    fn lifecycle_settings_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        let c = Config::from_settings(&s).unwrap();
        assert!(c.jobs, "jobs run unless switched off");
        assert_eq!(c.lifecycle.cron, DEFAULT_LIFECYCLE_CRON);
        assert_eq!(c.lifecycle.pending_ttl, chrono::Duration::hours(24));
        assert_eq!(c.lifecycle.purge_grace, chrono::Duration::days(7));
        assert_eq!(c.lifecycle.default_retention_days, None);
        assert_eq!(c.lifecycle.delete_concurrency, 4);
        s.jobs = Some("off".into());
        s.lifecycle_cron = Some("30 2 * * *".into());
        s.pending_ttl_secs = Some("600".into());
        s.purge_grace_secs = Some("0".into());
        s.retention_days = Some("90".into());
        s.purge_concurrency = Some("16".into());
        let c = Config::from_settings(&s).unwrap();
        assert!(!c.jobs);
        assert_eq!(
            c.lifecycle.cron, "0 30 2 * * *",
            "five fields run at second 0"
        );
        assert_eq!(c.lifecycle.pending_ttl, chrono::Duration::minutes(10));
        assert!(c.lifecycle.purge_grace.is_zero());
        assert_eq!(c.lifecycle.default_retention_days, Some(90));
        assert_eq!(c.lifecycle.delete_concurrency, 16);
    }

    #[test]
    fn metering_settings_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(c.metering, MeteringConfig::default());
        s.metering_cron = Some("*/5 * * * *".into());
        s.cdn_log_prefix = Some("/cdn-logs".into());
        s.price_storage_gb_month = Some("0.5".into());
        s.price_egress_gb = Some("0".into());
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(c.metering.cron, "0 */5 * * * *");
        assert_eq!(c.metering.cdn_log_prefix.as_deref(), Some("cdn-logs/"));
        assert_eq!(c.metering.prices.storage_gb_month, 0.5);
        assert_eq!(c.metering.prices.egress_gb, 0.0);
        assert_eq!(c.metering.prices.requests_per_1000, 0.001);
        assert_eq!(c.metering.usage_flush, std::time::Duration::from_secs(5));
        s.usage_flush_secs = Some("60".into());
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(c.metering.usage_flush, std::time::Duration::from_secs(60));
    }

    #[test]
    fn server_limits_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(c.server, ServerLimits::default());
        assert!(c.metrics_token.is_none());
        s.header_timeout_secs = Some("3".into());
        s.keepalive_timeout_secs = Some(" 20 ".into());
        s.body_timeout_secs = Some("5".into());
        s.body_min_rate = Some("0".into());
        s.max_connections = Some("64".into());
        s.metrics_token = Some("m".repeat(16));
        let c = Config::from_settings(&s).unwrap();
        let secs = std::time::Duration::from_secs;
        assert_eq!(
            c.server,
            ServerLimits {
                header_timeout: secs(3),
                keepalive_timeout: secs(20),
                body_timeout: secs(5),
                body_min_rate: 0,
                max_connections: 64,
            }
        );
        assert_eq!(c.metrics_token.unwrap().expose(), "m".repeat(16));
    }

    #[test]
    fn cdn_log_prefix_never_covers_tenant_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        let mut prefix = |v: &str| {
            s.cdn_log_prefix = Some(v.into());
            Config::from_settings(&s).map(|c| c.metering.cdn_log_prefix.unwrap())
        };
        for (v, want) in [
            ("cdn-logs", "cdn-logs/"),
            ("/cdn-logs/", "cdn-logs/"),
            ("logs/cloudfront/", "logs/cloudfront/"),
            // Beside tenant data, not over it.
            ("tenantsx/", "tenantsx/"),
            ("publicity", "publicity/"),
            ("Tenants/", "Tenants/"),
            ("x/tenants/", "x/tenants/"),
        ] {
            assert_eq!(prefix(v).unwrap(), want, "{v}");
        }
        for v in [
            // The whole bucket.
            "/",
            "//",
            " / ",
            // Tenant data itself, or below it.
            "tenants",
            "tenants/",
            "/tenants/",
            "tenants/acme/",
            "tenants/acme/prod/raw",
            "public",
            "public/",
            "public/tenants/acme/",
            // A start of it: a listing would run into tenant keys.
            "t",
            "ten",
            "p",
            "pub",
            "/pub",
        ] {
            let err = prefix(v).unwrap_err().to_string();
            assert!(
                err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid") && err.contains("tenant data"),
                "{v:?}: {err}"
            );
        }
        // Unset or blank: no log ingest, as before.
        assert_eq!(prefix_unset(dir.path(), None), None);
        assert_eq!(prefix_unset(dir.path(), Some("")), None);
    }

    fn prefix_unset(dir: &Path, v: Option<&str>) -> Option<String> {
        let mut s = settings(dir);
        s.cdn_log_prefix = v.map(str::to_owned);
        Config::from_settings(&s).unwrap().metering.cdn_log_prefix
    }

    /// infra/'s `CdnLogPrefix` output (`s3://<LogBucket>/<LogPrefix>`) is taken as it is: the
    /// log bucket is read with the S3 store's client, the object bucket's tenant data never.
    #[test]
    fn cdn_log_prefix_takes_the_log_bucket_infra_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let location = |v: &str| {
            let mut s = settings(dir.path());
            s.storage = Some("s3".into());
            s.raw_bucket = Some("cairn-objects".into());
            s.jwt_secret = Some("x".repeat(32));
            s.cdn_log_prefix = Some(v.into());
            Config::from_settings(&s).map(|c| {
                (
                    c.metering.cdn_log_bucket,
                    c.metering.cdn_log_prefix.unwrap(),
                )
            })
        };
        let other = |b: &str, p: &str| (Some(b.to_owned()), p.to_owned());
        for (v, want) in [
            (
                "s3://cairn-logs/cloudfront/",
                other("cairn-logs", "cloudfront/"),
            ),
            (
                "s3://cairn-logs/cloudfront",
                other("cairn-logs", "cloudfront/"),
            ),
            (" s3://cairn-logs/a/b/ ", other("cairn-logs", "a/b/")),
            // A log bucket of CloudFront's own: all of it, `tenants/` too (no tenant data there).
            ("s3://cairn-logs", other("cairn-logs", "")),
            ("s3://cairn-logs/", other("cairn-logs", "")),
            ("s3://cairn-logs/tenants/", other("cairn-logs", "tenants/")),
            // The object bucket named in full: a prefix in it, as a bare prefix would be.
            (
                "s3://cairn-objects/cdn-logs",
                (None, "cdn-logs/".to_owned()),
            ),
            ("cdn-logs/", (None, "cdn-logs/".to_owned())),
        ] {
            assert_eq!(location(v).unwrap(), want, "{v}");
        }
        for (v, why) in [
            ("s3://cairn-objects/", "tenant data"),
            ("s3://cairn-objects", "tenant data"),
            ("s3://cairn-objects/tenants/acme/", "tenant data"),
            ("s3://cairn-objects/public/", "tenant data"),
            ("s3://cairn-objects/pub", "tenant data"),
            ("s3://Cairn_Logs/cloudfront/", "not a bucket name"),
            ("s3:///cloudfront/", "not a bucket name"),
            ("s3://ab/x", "not a bucket name"),
            ("s3://-logs/x", "not a bucket name"),
            ("s3://cairn-logs//x", "not a key prefix"),
            ("s3://cairn-logs/a//b", "not a key prefix"),
            ("https://cairn-logs.s3.amazonaws.com/x/", "neither"),
        ] {
            let err = location(v).unwrap_err().to_string();
            assert!(
                err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid") && err.contains(why),
                "{v:?}: {err}"
            );
        }

        // The local store has no S3 client: refused at start-up, naming both settings.
        let mut s = settings(dir.path());
        s.cdn_log_prefix = Some("s3://cairn-logs/cloudfront/".into());
        let msg = err(&s);
        assert!(
            msg.starts_with("CAIRN_CDN_LOG_PREFIX is invalid")
                && msg.contains("CAIRN_STORAGE=local"),
            "{msg}"
        );
    }

    #[test]
    fn only_tenant_data_is_covered() {
        for p in [
            "",
            "t",
            "tenants",
            "tenants/",
            "tenants/a",
            "p",
            "public/",
            "public/x/",
        ] {
            assert!(covers_tenant_data(p), "{p}");
        }
        for p in [
            "cdn-logs/",
            "x",
            "tenantsx/",
            "publicx",
            "a/tenants/",
            "logs/public/",
        ] {
            assert!(!covers_tenant_data(p), "{p}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let dir = tempfile::tempdir().unwrap();
        type Change = fn(&mut Settings);
        let cases: Vec<(&str, Change)> = vec![
            ("CAIRN_PRESIGN_TTL_SECS", |s| {
                s.presign_ttl_secs = "soon".into()
            }),
            ("CAIRN_PRESIGN_TTL_SECS", |s| {
                s.presign_ttl_secs = "0".into()
            }),
            ("CAIRN_MAX_UPLOAD_BYTES", |s| {
                s.max_upload_bytes = "-5".into()
            }),
            ("CAIRN_LISTEN", |s| s.listen = "nowhere".into()),
            ("CAIRN_STORAGE", |s| s.storage = Some("ftp".into())),
            ("CAIRN_ENVS", |s| s.envs = ",".into()),
            ("CAIRN_JWT_SECRET", |s| s.jwt_secret = Some("short".into())),
            ("CAIRN_JWT_PUBLIC_KEY", |s| {
                s.jwt_public_key = Some("-----BEGIN nonsense".into())
            }),
            ("DATABASE_URL", |s| {
                s.database_url = Some("mysql://x".into())
            }),
            ("CAIRN_PUBLIC_URL", |s| {
                s.public_url = Some("ftp://x".into())
            }),
            ("CAIRN_JOBS", |s| s.jobs = Some("sometimes".into())),
            ("CAIRN_LIFECYCLE_CRON", |s| {
                s.lifecycle_cron = Some("every day".into())
            }),
            ("CAIRN_METERING_CRON", |s| {
                s.metering_cron = Some("hourly".into())
            }),
            ("CAIRN_CDN_LOG_PREFIX", |s| {
                s.cdn_log_prefix = Some("logs//cf".into())
            }),
            ("CAIRN_PRICE_STORAGE_GB_MONTH", |s| {
                s.price_storage_gb_month = Some("-1".into())
            }),
            ("CAIRN_PRICE_EGRESS_GB", |s| {
                s.price_egress_gb = Some("cheap".into())
            }),
            ("CAIRN_PRICE_REQUESTS_PER_1000", |s| {
                s.price_requests_per_1000 = Some("NaN".into())
            }),
            ("CAIRN_USAGE_FLUSH_SECS", |s| {
                s.usage_flush_secs = Some("0".into())
            }),
            ("CAIRN_USAGE_FLUSH_SECS", |s| {
                s.usage_flush_secs = Some("3601".into())
            }),
            ("CAIRN_LIFECYCLE_CRON", |s| {
                s.lifecycle_cron = Some("0 0 25 * * *".into())
            }),
            ("CAIRN_PENDING_TTL_SECS", |s| {
                s.pending_ttl_secs = Some("0".into())
            }),
            ("CAIRN_PURGE_GRACE_SECS", |s| {
                s.purge_grace_secs = Some("-1".into())
            }),
            ("CAIRN_RETENTION_DAYS", |s| {
                s.retention_days = Some("0".into())
            }),
            ("CAIRN_PURGE_CONCURRENCY", |s| {
                s.purge_concurrency = Some("0".into())
            }),
            ("CAIRN_PURGE_CONCURRENCY", |s| {
                s.purge_concurrency = Some("33".into())
            }),
            ("CAIRN_HEADER_TIMEOUT_SECS", |s| {
                s.header_timeout_secs = Some("0".into())
            }),
            ("CAIRN_KEEPALIVE_TIMEOUT_SECS", |s| {
                s.keepalive_timeout_secs = Some("forever".into())
            }),
            ("CAIRN_BODY_TIMEOUT_SECS", |s| {
                s.body_timeout_secs = Some("-1".into())
            }),
            ("CAIRN_BODY_MIN_RATE", |s| {
                s.body_min_rate = Some("fast".into())
            }),
            ("CAIRN_MAX_CONNECTIONS", |s| {
                s.max_connections = Some("0".into())
            }),
            ("CAIRN_METRICS_TOKEN", |s| {
                s.metrics_token = Some("short".into())
            }),
        ];
        for (var, change) in cases {
            let mut s = settings(dir.path());
            change(&mut s);
            let msg = err(&s);
            assert!(msg.starts_with(var), "expected {var}: {msg}");
        }
    }

    fn fixture(name: &str) -> String {
        format!(
            "{}/tests/fixtures/cloudfront/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn cdn_settings_name_their_variable() {
        let dir = tempfile::tempdir().unwrap();
        type Change = fn(&mut Settings);
        let cases: Vec<(&str, Change)> = vec![
            ("CAIRN_CDN_DOMAIN is invalid", |s| {
                s.cdn_domain = Some("ftp://cdn.example.com".into())
            }),
            ("CAIRN_CDN_DOMAIN is invalid", |s| {
                s.cdn_domain = Some("https://cdn.example.com/x?y".into())
            }),
            ("CAIRN_CLOUDFRONT_PRIVATE_KEY is required", |s| {
                s.cloudfront_key_pair_id = Some("K1".into())
            }),
            ("CAIRN_CLOUDFRONT_KEY_PAIR_ID is required", |s| {
                s.cloudfront_private_key = Some(fixture("rsa-2048.pem"))
            }),
            (
                "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: 1 key(s) for 2",
                |s| {
                    s.cloudfront_key_pair_id = Some("K1,K2".into());
                    s.cloudfront_private_key = Some(fixture("rsa-2048.pem"));
                },
            ),
            ("CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: key `K1`", |s| {
                s.cloudfront_key_pair_id = Some("K1".into());
                s.cloudfront_private_key = Some(fixture("rsa-4096.pem"));
            }),
            ("CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: key `K1`", |s| {
                s.cloudfront_key_pair_id = Some("K1".into());
                s.cloudfront_private_key = Some(fixture("ecdsa-p384.pem"));
            }),
            (
                "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: cannot read",
                |s| {
                    s.cloudfront_key_pair_id = Some("K1".into());
                    s.cloudfront_private_key = Some("/nonexistent/key.pem".into());
                },
            ),
            ("CAIRN_CLOUDFRONT_KEY_PAIR_ID is invalid", |s| {
                s.cloudfront_key_pair_id = Some("K 1".into());
                s.cloudfront_private_key = Some(fixture("rsa-2048.pem"));
            }),
            (
                "CAIRN_CLOUDFRONT_KEY_PAIR_ID is invalid: `K1` is listed twice",
                |s| {
                    s.cloudfront_key_pair_id = Some("K1,K1".into());
                    s.cloudfront_private_key = Some(format!(
                        "{},{}",
                        fixture("rsa-2048.pem"),
                        fixture("ecdsa-p256.pem")
                    ));
                },
            ),
            ("CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM is invalid", |s| {
                s.cloudfront_key_pair_id = Some("K1".into());
                s.cloudfront_private_key = Some(fixture("rsa-2048.pem"));
                s.cloudfront_key_active_from = Some("tomorrow".into());
            }),
            (
                "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM is invalid: no key is active yet",
                |s| {
                    s.cloudfront_key_pair_id = Some("K1".into());
                    s.cloudfront_private_key = Some(fixture("rsa-2048.pem"));
                    s.cloudfront_key_active_from = Some("2999-01-01T00:00:00Z".into());
                },
            ),
            ("CAIRN_CLOUDFRONT_HASH_ALGORITHM is invalid", |s| {
                s.cloudfront_hash_algorithm = "MD5".into()
            }),
            ("CAIRN_CDN_COOKIE_DOMAIN is invalid", |s| {
                s.cdn_cookie_domain = Some("example .com".into())
            }),
            ("CAIRN_CLOUDFRONT_DISTRIBUTION_ID is invalid", |s| {
                s.cloudfront_distribution_id = Some("E12 3".into())
            }),
            ("AWS_ENDPOINT_URL_CLOUDFRONT is invalid", |s| {
                s.cloudfront_distribution_id = Some("E123".into());
                s.aws_endpoint_url_cloudfront = Some("localhost:5000".into());
            }),
            ("CAIRN_CORS_ORIGINS is invalid", |s| {
                s.cors_origins = Some("player.example.com".into())
            }),
            ("CAIRN_CORS_ORIGINS is invalid", |s| {
                s.cors_origins = Some("https://*.example.com".into())
            }),
        ];
        for (want, change) in cases {
            let mut s = settings(dir.path());
            change(&mut s);
            let msg = err(&s);
            assert!(msg.starts_with(want), "expected `{want}`: {msg}");
        }
    }

    #[test]
    fn cdn_settings_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(c.cdn.base_url, None);
        assert!(matches!(c.cdn.signing, CdnSigning::Presigned));
        assert_eq!(c.cors_origins, CorsOrigins::None);

        s.cdn_domain = Some("d111111abcdef8.cloudfront.net/".into());
        s.cors_origins = Some("https://App.example.com/, http://localhost:3000".into());
        // Two keys: one inline PEM with the curve parameters `openssl ecparam` writes first,
        // one by path; activation times in the same order.
        let ec = std::fs::read_to_string(fixture("ecdsa-p256.pem")).unwrap();
        let rsa = std::fs::read_to_string(fixture("rsa-2048.pem")).unwrap();
        s.cloudfront_key_pair_id = Some("KEC, KRSA".into());
        s.cloudfront_private_key = Some(format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{ec}{rsa}"
        ));
        s.cloudfront_key_active_from = Some(",2030-01-01T00:00:00Z".into());
        s.cloudfront_hash_algorithm = "sha1".into();
        let c = Config::from_settings(&s).unwrap();
        assert_eq!(
            c.cdn.base_url.as_deref(),
            Some("https://d111111abcdef8.cloudfront.net")
        );
        assert_eq!(
            c.cors_origins,
            CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
        let CdnSigning::CloudFront(keys) = &c.cdn.signing else {
            panic!("expected CloudFront signing");
        };
        assert_eq!(keys.hash, crate::cdn::signer::HashAlgorithm::Sha1);
        let ids: Vec<&str> = keys.keys.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, ["KEC", "KRSA"]);
        assert_eq!(keys.keys[0].2, chrono::DateTime::UNIX_EPOCH);
        assert_eq!(keys.keys[1].2.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert!(
            !format!("{c:?}").contains("PRIVATE KEY"),
            "keys leaked into Debug"
        );
    }

    #[test]
    fn local_mode_generates_a_private_secret_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Config::from_settings(&settings(dir.path())).unwrap();
        let b = Config::from_settings(&settings(dir.path())).unwrap();
        let (JwtKey::Hs256(sa), JwtKey::Hs256(sb)) = (&a.jwt.key, &b.jwt.key) else {
            panic!("expected HS256");
        };
        assert_eq!(sa, sb);
        assert_eq!(sa.expose().len(), 64);
        assert!(
            !format!("{a:?}").contains(sa.expose()),
            "secret leaked into Debug"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
