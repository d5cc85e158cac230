//! Server settings: where Cairn listens and what base URL it hands out, URL lifetimes and upload
//! size, the allowed envs, browser origins (CORS), what a client may hold of the server, and the
//! `/metrics` token.
use std::{net::SocketAddr, time::Duration};

use super::{
    values::{invalid, parse_u64, whole_number, Optional, Secret},
    ConfigError,
};

/// Longest URL lifetime anyone may ask for (S3's own SigV4 limit).
pub const MAX_PRESIGN_TTL_SECS: u64 = 7 * 24 * 3600;

/// The allowed envs: one value, comma-separated (a `Vec` under another name, so that clap reads
/// it as one value).
pub type EnvList = Vec<String>;

/// Where Cairn listens, the base URL it hands out, URL lifetimes and the upload size.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerSettings {
    /// Bind address.
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen)]
    pub listen: SocketAddr,
    /// Base of the URLs Cairn hands out for its own endpoints (default: `http://<listen>`).
    #[arg(long, env = "CAIRN_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// Default lifetime of presigned URLs, in seconds (at most 7 days). S3 presigned URLs signed
    /// with temporary credentials (an AWS role) end with the role's session at the latest; the
    /// `expires_at` Cairn answers says when. CloudFront signed URLs are not bound to it.
    #[arg(long, env = "CAIRN_PRESIGN_TTL_SECS", default_value = "3600", value_parser = presign_ttl)]
    pub presign_ttl_secs: u64,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "CAIRN_MAX_UPLOAD_BYTES", default_value = "524288000", value_parser = max_upload)]
    pub max_upload_bytes: u64,
}

/// The envs every tenant has.
#[derive(clap::Args, Debug, Clone)]
pub struct TenancySettings {
    /// Allowed envs, comma-separated.
    #[arg(long, env = "CAIRN_ENVS", default_value = "dev,staging,prod", value_parser = envs)]
    pub envs: EnvList,
}

/// Browser origins, what a client may hold of the server, and the `/metrics` token.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitSettings {
    /// Allowed browser origins (`https://app.example.com`, comma-separated, or `*`) for the API,
    /// `/o/` and `/cdn/`.
    #[arg(long, env = "CAIRN_CORS_ORIGINS", default_value = "", hide_default_value = true, value_parser = cors)]
    pub cors_origins: CorsOrigins,
    /// Seconds a client may take to finish sending a request's head (request line and headers)
    /// once it has begun; a connection stalled mid-head is closed.
    #[arg(long, env = "CAIRN_HEADER_TIMEOUT_SECS", default_value = "10",
          value_parser = |v: &str| seconds("CAIRN_HEADER_TIMEOUT_SECS", v))]
    pub header_timeout_secs: Duration,
    /// Seconds a connection may stay idle (before its first request, or between keep-alive
    /// requests) before the server closes it. Keep it above a load balancer's idle timeout
    /// (AWS ALB: 60 s).
    #[arg(long, env = "CAIRN_KEEPALIVE_TIMEOUT_SECS", default_value = "75",
          value_parser = |v: &str| seconds("CAIRN_KEEPALIVE_TIMEOUT_SECS", v))]
    pub keepalive_timeout_secs: Duration,
    /// A request body (an upload) that delivers less than CAIRN_BODY_MIN_RATE bytes a second over
    /// this many seconds of waiting for it ends with 408; nothing of it is kept.
    #[arg(long, env = "CAIRN_BODY_TIMEOUT_SECS", default_value = "30",
          value_parser = |v: &str| seconds("CAIRN_BODY_TIMEOUT_SECS", v))]
    pub body_timeout_secs: Duration,
    /// The slowest upload accepted, in bytes per second, averaged over CAIRN_BODY_TIMEOUT_SECS.
    #[arg(long, env = "CAIRN_BODY_MIN_RATE", default_value = "1024",
          value_parser = |v: &str| whole_number("CAIRN_BODY_MIN_RATE", v, 0..=1 << 30))]
    pub body_min_rate: u64,
    /// Most connections served at once; further clients wait in the listen backlog. Capped by
    /// the process's open-file limit (the soft limit is raised to the hard one at start-up).
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS", default_value = "10000",
          value_parser = |v: &str| whole_number("CAIRN_MAX_CONNECTIONS", v, 1..=1_000_000).map(|n| n as usize))]
    pub max_connections: usize,
    /// Bearer token that shows per-tenant series on `/metrics` (at least 16 bytes). Without it,
    /// `/metrics` names no tenant.
    #[arg(long, env = "CAIRN_METRICS_TOKEN", hide_env_values = true, default_value = "",
          hide_default_value = true, value_parser = metrics_token)]
    pub metrics_token: Optional<Secret>,
}

/// What a client may hold of the server: time to send a request head, idle time, upload pace,
/// connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    /// The period over which an upload must deliver `body_min_rate` bytes a second.
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    pub max_connections: usize,
}

impl LimitSettings {
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_timeout: self.header_timeout_secs,
            keepalive_timeout: self.keepalive_timeout_secs,
            body_timeout: self.body_timeout_secs,
            body_min_rate: self.body_min_rate,
            max_connections: self.max_connections,
        }
    }
}

/// Browser origins allowed by CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    None,
    Any,
    List(Vec<String>),
}

fn listen(v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|e| invalid("CAIRN_LISTEN", format!("`{v}`: {e}")))
}

/// Without a trailing slash.
fn public_url(v: &str) -> Result<String, ConfigError> {
    let u = v.trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains('?') {
        return Err(invalid(
            "CAIRN_PUBLIC_URL",
            "must be an http:// or https:// base URL",
        ));
    }
    Ok(u.to_owned())
}

fn presign_ttl(v: &str) -> Result<u64, ConfigError> {
    const VAR: &str = "CAIRN_PRESIGN_TTL_SECS";
    let secs = parse_u64(VAR, v)?;
    if secs == 0 || secs > MAX_PRESIGN_TTL_SECS {
        return Err(invalid(
            VAR,
            format!("must be between 1 and {MAX_PRESIGN_TTL_SECS}"),
        ));
    }
    Ok(secs)
}

fn max_upload(v: &str) -> Result<u64, ConfigError> {
    match parse_u64("CAIRN_MAX_UPLOAD_BYTES", v)? {
        0 => Err(invalid("CAIRN_MAX_UPLOAD_BYTES", "must be positive")),
        n => Ok(n),
    }
}

/// Names as tenant ids are written (`^[a-z0-9][a-z0-9_-]{0,62}$`), comma-separated, at least one.
fn envs(v: &str) -> Result<EnvList, ConfigError> {
    const VAR: &str = "CAIRN_ENVS";
    let envs: Vec<String> = v
        .split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    if envs.is_empty() {
        return Err(invalid(VAR, "must name at least one env"));
    }
    for e in &envs {
        if !is_name(e) {
            return Err(invalid(VAR, format!("`{e}` is not a valid env name")));
        }
    }
    Ok(envs)
}

/// The rule of tenant ids, which env names follow too: 1 to 63 lowercase letters, digits, `_`
/// and `-`, starting with a letter or digit.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn cors(v: &str) -> Result<CorsOrigins, ConfigError> {
    const VAR: &str = "CAIRN_CORS_ORIGINS";
    let v = v.trim();
    if v.is_empty() {
        return Ok(CorsOrigins::None);
    }
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

fn seconds(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    whole_number(var, v, 1..=3600).map(Duration::from_secs)
}

fn metrics_token(v: &str) -> Result<Optional<Secret>, ConfigError> {
    match v.trim() {
        "" => Ok(None),
        t if t.len() < 16 => Err(invalid("CAIRN_METRICS_TOKEN", "must be at least 16 bytes")),
        t => Ok(Some(Secret::new(t))),
    }
}
