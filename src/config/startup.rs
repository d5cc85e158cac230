//! Start-up's side effects on the data dir, kept out of parsing: `cairn serve` and `cairn
//! migrate` create the data dir and the generated development secrets (the token secret, the
//! local store's URL signing key); every other command reads what a server left and creates
//! nothing.
use std::path::{Path, PathBuf};

use super::{auth::JwtKey, storage::StorageConfig, values::invalid, Config, ConfigError, Secret};

/// What start-up may create on disk.
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

/// A secret Cairn keeps in a file of its data dir; start-up ([`Config::provision`]) reads it,
/// generating it first when it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevSecret {
    /// Not read yet.
    InDataDir(PathBuf),
    Read(Secret),
}

impl DevSecret {
    /// The secret, once start-up has read it.
    pub fn secret(&self) -> Result<&Secret, ConfigError> {
        match self {
            Self::Read(s) => Ok(s),
            Self::InDataDir(path) => Err(invalid(
                "CAIRN_DATA_DIR",
                format!("{} was not read at start-up", path.display()),
            )),
        }
    }
}

impl Config {
    /// Prepares the data dir this configuration uses, as `provision` allows, and reads the dev
    /// secrets it names. Idempotent: what is read once stays read.
    pub fn provision(mut self, provision: Provision) -> Result<Self, ConfigError> {
        let local = matches!(self.storage, StorageConfig::Local { .. });
        let jwt_in_data_dir = matches!(self.jwt.key, JwtKey::InDataDir(_));
        let data_dir = self.data_dir.clone();
        if local && provision == Provision::Existing && !data_dir.is_dir() {
            let mut holds = vec![];
            if self.catalog_in_data_dir {
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
        // Existing: whether a SQLite catalog is there is checked where it is opened (`cairn
        // token` never opens it).
        if provision == Provision::Create && (local || self.catalog_in_data_dir) {
            ensure_dir(&data_dir)?;
        }
        if let StorageConfig::Local { signing_key, .. } = &mut self.storage {
            if let DevSecret::InDataDir(path) = signing_key {
                let (secret, _) = dev_secret(path, "the URL signing key", provision)?;
                *signing_key = DevSecret::Read(secret);
            }
        }
        if let JwtKey::InDataDir(path) = &self.jwt.key {
            let (secret, created) = dev_secret(
                path,
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
            self.jwt.key = JwtKey::Hs256(secret);
        }
        Ok(self)
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
        path: dir.to_owned(),
        source,
    })
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
