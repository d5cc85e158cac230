//! Catalog settings: which database holds the catalog, and how its URL may be shown.
use std::path::{Path, PathBuf};

use super::{
    values::{invalid, Secret},
    ConfigError,
};

/// The catalog database.
#[derive(clap::Args, Debug, Clone)]
pub struct CatalogSettings {
    /// Catalog database: `sqlite://...` (default: `cairn.db` in the data dir) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = database_url)]
    pub database_url: Option<Secret>,
}

fn database_url(u: &str) -> Result<Secret, ConfigError> {
    if u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Ok(Secret::new(u))
    } else {
        Err(invalid(
            "DATABASE_URL",
            "must start with sqlite: or postgres://",
        ))
    }
}

/// The catalog when `DATABASE_URL` is unset: `cairn.db` in the data dir, created when missing.
pub fn default_catalog(data_dir: &Path) -> Secret {
    Secret::new(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("cairn.db").display()
    ))
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
