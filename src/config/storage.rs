//! Storage settings: the local store in the data dir, or an S3 bucket (AWS or an S3-compatible
//! store) with its addressing, conditional writes and multipart threshold.
use std::path::PathBuf;

use super::{
    startup::DevSecret,
    values::{invalid, non_blank, non_empty, parse_bool, parse_u64, Optional},
    ConfigError,
};

/// The object store and the data dir.
#[derive(clap::Args, Debug, Clone)]
pub struct StorageSettings {
    /// Object storage backend: `local` or `s3` (default: `s3` when `RAW_BUCKET` is set, else
    /// `local`; `local` with `RAW_BUCKET` set is refused).
    #[arg(long, env = "CAIRN_STORAGE", default_value = "", hide_default_value = true, value_parser = storage_kind)]
    pub storage: Optional<StorageKind>,
    /// Local objects and generated dev secrets.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// S3 bucket to store objects in; setting it selects `CAIRN_STORAGE=s3`.
    #[arg(long, env = "RAW_BUCKET", default_value = "", hide_default_value = true, value_parser = non_empty)]
    pub raw_bucket: Optional<String>,
    /// Path-style S3 addressing (Garage, MinIO).
    #[arg(long, env = "CAIRN_S3_FORCE_PATH_STYLE", default_value = "false", action = clap::ArgAction::Set,
          value_parser = |v: &str| parse_bool("CAIRN_S3_FORCE_PATH_STYLE", v))]
    pub s3_force_path_style: bool,
    /// Sign `If-None-Match: *` into upload URLs so the store refuses to overwrite an object
    /// (AWS S3 and stores with conditional writes); `false` for stores that reject the header.
    #[arg(long, env = "CAIRN_S3_CONDITIONAL_WRITES", default_value = "true", action = clap::ArgAction::Set,
          value_parser = |v: &str| parse_bool("CAIRN_S3_CONDITIONAL_WRITES", v))]
    pub s3_conditional_writes: bool,
    /// AWS region (else the AWS profile's region).
    #[arg(long, env = "AWS_REGION", default_value = "", hide_default_value = true, value_parser = non_empty)]
    pub aws_region: Optional<String>,
    /// S3 endpoint for S3-compatible stores (Garage, MinIO), e.g. `http://127.0.0.1:3900`.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3", value_parser = |v: &str| EndpointUrl::parse(v).map_err(|why| invalid("AWS_ENDPOINT_URL_S3", why)))]
    pub aws_endpoint_url_s3: Option<EndpointUrl>,
    /// Above this many bytes, uploads use multipart (at least 5 MiB, S3's smallest part).
    #[arg(long, env = "CAIRN_MULTIPART_THRESHOLD", default_value = "8388608", value_parser = multipart_threshold)]
    pub multipart_threshold: u64,
}

/// `CAIRN_STORAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// Objects under `root`; Cairn signs its own `/o/` URLs with `signing_key`.
    Local {
        root: PathBuf,
        signing_key: DevSecret,
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
    /// An S3-compatible store; AWS itself when `None`.
    pub endpoint_url: Option<EndpointUrl>,
}

/// The endpoint of an S3- or CloudFront-compatible API: `scheme://host[:port]`, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    url: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub host: String,
}

impl EndpointUrl {
    /// From `AWS_ENDPOINT_URL_S3`-style URLs; the error says why (the caller names the setting).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || host.contains('?') {
            return Err(format!("`{url}` must be a scheme and host[:port] only"));
        }
        Ok(Self {
            url: url.to_owned(),
            scheme: scheme.into(),
            host: host.into(),
        })
    }

    /// The URL as it was given.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

fn storage_kind(v: &str) -> Result<Optional<StorageKind>, ConfigError> {
    match non_blank(v) {
        None => Ok(None),
        Some("s3") => Ok(Some(StorageKind::S3)),
        Some("local") => Ok(Some(StorageKind::Local)),
        Some(other) => Err(invalid(
            "CAIRN_STORAGE",
            format!("`{other}` is not `local` or `s3`"),
        )),
    }
}

fn multipart_threshold(v: &str) -> Result<u64, ConfigError> {
    const VAR: &str = "CAIRN_MULTIPART_THRESHOLD";
    let n = parse_u64(VAR, v)?;
    if n < 5 * 1024 * 1024 {
        return Err(invalid(VAR, "must be at least 5 MiB (5242880)"));
    }
    Ok(n)
}

impl StorageSettings {
    /// Whether objects stay on local disk. `CAIRN_STORAGE` unset follows `RAW_BUCKET` (DESIGN
    /// §10), so a deployment that names only the bucket, as the AWS docs deploy it, stores in the
    /// bucket; `local` with a bucket named is a contradiction that would lose every object with
    /// the disk.
    pub fn is_local(&self) -> Result<bool, ConfigError> {
        match (self.storage, &self.raw_bucket) {
            (None, bucket) => Ok(bucket.is_none()),
            (Some(StorageKind::S3), _) => Ok(false),
            (Some(StorageKind::Local), None) => Ok(true),
            (Some(StorageKind::Local), Some(b)) => Err(invalid(
                "CAIRN_STORAGE",
                format!(
                    "`local` while RAW_BUCKET is set (`{b}`): objects would stay on this \
                     machine's disk, not in the bucket. Unset CAIRN_STORAGE (or set it to `s3`) \
                     to store them in the bucket, or unset RAW_BUCKET to keep them local"
                ),
            )),
        }
    }

    /// The store these settings choose; `RAW_BUCKET` is required with S3.
    pub fn config(&self) -> Result<StorageConfig, ConfigError> {
        if self.is_local()? {
            return Ok(StorageConfig::Local {
                root: self.data_dir.join("objects"),
                signing_key: DevSecret::InDataDir(self.data_dir.join("url-signing.key")),
            });
        }
        let bucket = self
            .raw_bucket
            .clone()
            .ok_or_else(|| ConfigError::Missing {
                var: "RAW_BUCKET",
                why: "CAIRN_STORAGE=s3 needs the bucket to store objects in".into(),
            })?;
        Ok(StorageConfig::S3(S3Config {
            bucket,
            force_path_style: self.s3_force_path_style,
            conditional_writes: self.s3_conditional_writes,
            region: self.aws_region.clone(),
            endpoint_url: self.aws_endpoint_url_s3.clone(),
        }))
    }
}
