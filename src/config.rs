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
    /// Object storage backend: `local` or `s3`.
    #[arg(long, env = "CAIRN_STORAGE", default_value = "local")]
    pub storage: String,
    /// Local objects and generated dev secrets.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// S3 bucket; required with `CAIRN_STORAGE=s3`.
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
    /// Default lifetime of presigned URLs, in seconds (at most 7 days).
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
}

fn invalid(var: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        why: why.into(),
    }
}

impl Config {
    /// Validates every setting; in local mode also creates the data dir and the dev secrets.
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
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
        let local = match s.storage.as_str() {
            "local" => true,
            "s3" => false,
            other => {
                return Err(invalid(
                    "CAIRN_STORAGE",
                    format!("`{other}` is not `local` or `s3`"),
                ))
            }
        };
        let storage = if local {
            ensure_dir(&data_dir)?;
            StorageConfig::Local {
                root: data_dir.join("objects"),
                signing_key: dev_secret(&data_dir.join("url-signing.key"))?.0,
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
                let (secret, created) = dev_secret(&path)?;
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
                ensure_dir(&data_dir)?;
                format!("sqlite://{}?mode=rwc", data_dir.join("cairn.db").display())
            }
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
        };
        Ok(config)
    }
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

/// Reads a generated secret, creating it (32 random bytes, hex, mode 0600) when absent.
/// Returns whether it was created.
fn dev_secret(path: &Path) -> Result<(Secret, bool), ConfigError> {
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
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
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => dev_secret(path),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings {
            storage: "local".into(),
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
        s.storage = "s3".into();
        s.jwt_secret = Some("x".repeat(32));
        assert!(err(&s).starts_with("RAW_BUCKET is required"), "{}", err(&s));
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
            ("CAIRN_STORAGE", |s| s.storage = "ftp".into()),
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
        ];
        for (var, change) in cases {
            let mut s = settings(dir.path());
            change(&mut s);
            let msg = err(&s);
            assert!(msg.starts_with(var), "expected {var}: {msg}");
        }
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
