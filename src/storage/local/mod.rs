//! The embedded default: objects in a local directory, served by Cairn's own `/o/` endpoint with
//! HMAC-signed, expiring URLs.
//!
//! Layout: `objects/<xx>/<sha256(key)>` holds the bytes and `<...>.json` their metadata; hashing the
//! key keeps arbitrary UTF-8 filenames off the file system. An upload streams into `tmp/`, is hashed
//! on the fly and appears with a hard link, which fails when the object exists: an object is never
//! overwritten and never seen half-written. Every error path removes the temp file; only a killed
//! process leaves one, which [`LocalStore::remove_stale_temp_files`] (at server start-up) and the
//! sweep's orphan step ([`ObjectStore::list_temp_files`]) find by its age.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::io::AsyncReadExt;

use super::{signing::UrlSigner, ListedObject, ObjectStore, StoreError, TempFile};
use crate::values::{ObjectKey, Sha256};

mod store;
#[cfg(test)]
mod tests;
mod urls;
mod write;

const CHUNK: usize = 256 * 1024;

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    public_url: String,
    signer: UrlSigner,
}

/// Metadata kept beside each object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// What a PUT request claims: the URL's parameters and the request's own headers.
#[derive(Debug, Clone, Copy)]
pub struct PutGrant<'a> {
    pub key: &'a ObjectKey,
    pub exp: i64,
    pub content_type: &'a str,
    pub size: u64,
    pub sha256: Option<&'a str>,
    pub sig: &'a str,
}

/// Why a signed URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlError {
    Expired,
    BadSignature,
}

/// Why an upload through `/o/` was refused. Nothing is stored in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the body is larger than the {declared} bytes the URL allows")]
    TooLarge { declared: u64 },
    #[error("received {received} bytes, the URL was signed for {declared}")]
    SizeMismatch { declared: u64, received: u64 },
    #[error("the content does not match the signed sha256")]
    ChecksumMismatch,
    #[error("an object already exists at this key")]
    Exists,
    #[error("the upload was interrupted: {0}")]
    Body(String),
    /// The client sent the body too slowly.
    #[error("{0}")]
    TooSlow(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A browser-form upload policy (`POST /o`): base64url JSON, signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostPolicy {
    pub key: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub exp: i64,
}

impl LocalStore {
    /// Creates the directories under `root` if needed.
    pub fn open(root: &Path, public_url: &str, signing_key: &[u8]) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("objects"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(Self {
            root: root.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            signer: UrlSigner::new(signing_key),
        })
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Removes the temp files not modified for `age`: uploads a killed process left
    /// half-written. Answers the files and bytes removed. For a server starting up only: a
    /// command opening the store meanwhile must not remove the files of a running server's
    /// uploads (a live upload writes to its file all the time; `age` is longer than it stalls).
    pub async fn remove_stale_temp_files(
        &self,
        age: std::time::Duration,
    ) -> Result<(u64, u64), StoreError> {
        let before = chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age));
        let Some(before) = before else {
            return Ok((0, 0));
        };
        let (mut files, mut bytes) = (0, 0);
        for f in self.list_temp_files(before).await? {
            match self.remove_temp_file(&f.name).await {
                Ok(()) => {
                    files += 1;
                    bytes += f.size;
                }
                Err(e) => {
                    tracing::warn!(temp_file = %f.name, error = %e, "could not remove an abandoned temp file")
                }
            }
        }
        Ok((files, bytes))
    }

    fn data_path(&self, key: &ObjectKey) -> PathBuf {
        let h = hex::encode(sha2::Sha256::digest(key.as_str().as_bytes()));
        self.root.join("objects").join(&h[..2]).join(h)
    }

    fn meta_path(data: &Path) -> PathBuf {
        data.with_extension("json")
    }

    /// Opens the object for reading, with its metadata; an object of at most `whole` bytes is
    /// read whole. One trip to the blocking pool: opening, the metadata and a small object's
    /// bytes are read there together, not in a hop each.
    pub async fn read(
        &self,
        key: &ObjectKey,
        whole: u64,
    ) -> Result<Option<(Contents, Meta)>, StoreError> {
        let data = self.data_path(key);
        let key = key.as_str().to_owned();
        tokio::task::spawn_blocking(move || read_blocking(&data, key, whole))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(io_err)
    }
}

/// An object's bytes as [`LocalStore::read`] gives them.
pub enum Contents {
    /// Read whole (a small object).
    Whole(bytes::Bytes),
    /// Opened, to be streamed.
    File(tokio::fs::File),
}

/// The object's size and its metadata file (`None` while not yet in place); `None` when there
/// is no object.
fn head_blocking(data: &Path) -> std::io::Result<Option<(u64, Option<Meta>)>> {
    let size = match std::fs::metadata(data) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some((size, read_meta(data)?)))
}

fn read_meta(data: &Path) -> std::io::Result<Option<Meta>> {
    match std::fs::read(LocalStore::meta_path(data)) {
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_blocking(
    data: &Path,
    key: String,
    whole: u64,
) -> std::io::Result<Option<(Contents, Meta)>> {
    use std::io::Read;
    let mut file = match std::fs::File::open(data) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = match read_meta(data)? {
        Some(m) => m,
        // Linked but its metadata not yet renamed into place (or lost in a crash): rebuild it.
        None => {
            let size = file.metadata()?.len();
            let mut hasher = sha2::Sha256::new();
            std::io::copy(
                &mut std::fs::File::open(data)?,
                &mut HashWriter(&mut hasher),
            )?;
            Meta {
                key,
                size,
                sha256: hex::encode(hasher.finalize()),
                content_type: "application/octet-stream".into(),
            }
        }
    };
    if meta.size > whole {
        return Ok(Some((
            Contents::File(tokio::fs::File::from_std(file)),
            meta,
        )));
    }
    let mut bytes = Vec::with_capacity(meta.size as usize);
    Read::take(&mut file, meta.size).read_to_end(&mut bytes)?;
    Ok(Some((Contents::Whole(bytes.into()), meta)))
}

/// Feeds what is written to it to a hasher.
struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn list_dir(root: &Path, prefix: &str) -> std::io::Result<Vec<ListedObject>> {
    let mut out = Vec::new();
    let shards = match std::fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for shard in shards {
        for entry in std::fs::read_dir(shard?.path())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                continue;
            }
            let md = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let key = match std::fs::read(LocalStore::meta_path(&path)) {
                Ok(bytes) => match serde_json::from_slice::<Meta>(&bytes) {
                    Ok(meta) => meta.key,
                    Err(_) => continue,
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if key.starts_with(prefix) {
                out.push(ListedObject {
                    key,
                    size: md.len(),
                    last_modified: md.modified().map(DateTime::<Utc>::from).unwrap_or_default(),
                });
            }
        }
    }
    Ok(out)
}

/// The files in `dir` not modified since `before`; dot files (the readiness probe) are not
/// uploads' and are left out.
fn list_temp(dir: &Path, before: DateTime<Utc>) -> std::io::Result<Vec<TempFile>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not a name Cairn gives
        };
        if name.starts_with('.') {
            continue;
        }
        let md = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let modified = DateTime::<Utc>::from(md.modified()?);
        if md.is_file() && modified <= before {
            out.push(TempFile {
                name,
                size: md.len(),
                modified,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

async fn hash_file(path: &Path) -> std::io::Result<Sha256> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Sha256::from_bytes(hasher.finalize().into()))
}
