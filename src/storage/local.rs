//! The embedded default: objects in a local directory, served by Cairn's own `/o/` endpoint with
//! HMAC-signed, expiring URLs.
//!
//! Layout: `objects/<xx>/<sha256(key)>` holds the bytes and `<...>.json` their metadata; hashing the
//! key keeps arbitrary UTF-8 filenames off the file system. An upload streams into `tmp/`, is hashed
//! on the fly and appears with a hard link, which fails when the object exists: an object is never
//! overwritten and never seen half-written. Every error path removes the temp file; only a killed
//! process leaves one, which [`LocalStore::remove_stale_temp_files`] (at server start-up) and the
//! sweep's orphan step ([`ObjectStore::list_temp_files`]) find by its age.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    signing::UrlSigner, BodyStream, ListedObject, ObjectInfo, ObjectPage, ObjectStore, PutError,
    StoreError, TempFile, Upload, UploadMethod, UploadSpec,
};
use crate::domain::{Filename, ObjectKey, Sha256};

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

    fn put_parts(
        key: &str,
        exp: &str,
        content_type: &str,
        size: &str,
        sha256: &str,
    ) -> [String; 6] {
        ["PUT", key, exp, content_type, size, sha256].map(str::to_owned)
    }

    /// Checks a PUT URL against the request's own content type and length.
    pub fn verify_put(&self, grant: &PutGrant<'_>, now: DateTime<Utc>) -> Result<(), UrlError> {
        let parts = Self::put_parts(
            grant.key.as_str(),
            &grant.exp.to_string(),
            grant.content_type,
            &grant.size.to_string(),
            grant.sha256.unwrap_or(""),
        );
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        check(self.signer.verify(&refs, grant.sig), grant.exp, now)
    }

    /// Checks a GET URL: the key, expiry, download name and disposition (`inline` or
    /// `attachment`) it was signed for.
    pub fn verify_get(
        &self,
        key: &ObjectKey,
        exp: i64,
        filename: &str,
        disposition: &str,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), UrlError> {
        let ok = self.signer.verify(
            &["GET", key.as_str(), &exp.to_string(), filename, disposition],
            sig,
        );
        check(ok, exp, now)
    }

    /// Decodes and checks a form policy.
    pub fn verify_post(
        &self,
        policy_b64: &str,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<PostPolicy, UrlError> {
        if !self.signer.verify(&["POST", policy_b64], sig) {
            return Err(UrlError::BadSignature);
        }
        let policy: PostPolicy = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(policy_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(UrlError::BadSignature)?;
        check(true, policy.exp, now)?;
        Ok(policy)
    }

    /// Streams `body` into the store at `key`. The object appears only when every byte arrived,
    /// the size is exactly `size` and (when given) the SHA-256 matches.
    pub async fn write<S, E>(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        expected: Option<Sha256>,
        body: S,
    ) -> Result<Meta, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + 'static,
    {
        let tmp = self.tmp_dir().join(uuid::Uuid::now_v7().to_string());
        let result = self
            .write_tmp(&tmp, key, content_type, size, expected, body)
            .await;
        // Whatever happened, the temp file goes; on success it was linked into place first.
        let _ = tokio::fs::remove_file(&tmp).await;
        let _ = tokio::fs::remove_file(Self::meta_path(&tmp)).await;
        result
    }

    async fn write_tmp<S, E>(
        &self,
        tmp: &Path,
        key: &ObjectKey,
        content_type: &str,
        size: u64,
        expected: Option<Sha256>,
        mut body: S,
    ) -> Result<Meta, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + 'static,
    {
        let file = tokio::fs::File::create(tmp).await?;
        let mut out = tokio::io::BufWriter::with_capacity(CHUNK, file);
        let mut hasher = sha2::Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| match PutError::body(&e) {
                PutError::TooSlow(why) => WriteError::TooSlow(why),
                other => WriteError::Body(other.to_string()),
            })?;
            received += chunk.len() as u64;
            if received > size {
                return Err(WriteError::TooLarge { declared: size });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        if received != size {
            return Err(WriteError::SizeMismatch {
                declared: size,
                received,
            });
        }
        let digest = Sha256::from_bytes(hasher.finalize().into());
        if expected.is_some_and(|e| e != digest) {
            return Err(WriteError::ChecksumMismatch);
        }
        out.flush().await?;
        out.get_mut().sync_data().await?;
        drop(out);

        let meta = Meta {
            key: key.as_str().to_owned(),
            size,
            sha256: digest.to_hex(),
            content_type: content_type.to_owned(),
        };
        let tmp_meta = Self::meta_path(tmp);
        tokio::fs::write(
            &tmp_meta,
            serde_json::to_vec(&meta).map_err(std::io::Error::other)?,
        )
        .await?;

        let data = self.data_path(key);
        if let Some(dir) = data.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // The commit point: hard_link refuses to replace an existing object.
        match tokio::fs::hard_link(tmp, &data).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(WriteError::Exists)
            }
            Err(e) => return Err(e.into()),
        }
        tokio::fs::rename(&tmp_meta, Self::meta_path(&data)).await?;
        Ok(meta)
    }

    /// Opens the object for reading, with its metadata.
    pub async fn read(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<(tokio::fs::File, Meta)>, StoreError> {
        let data = self.data_path(key);
        let file = match tokio::fs::File::open(&data).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let meta = match self.read_meta(&data).await? {
            Some(m) => m,
            // Linked but its metadata not yet renamed into place (or lost in a crash): rebuild it.
            None => {
                let size = file.metadata().await.map_err(io_err)?.len();
                let sha = hash_file(&data).await.map_err(io_err)?;
                Meta {
                    key: key.as_str().to_owned(),
                    size,
                    sha256: sha.to_hex(),
                    content_type: "application/octet-stream".into(),
                }
            }
        };
        Ok(Some((file, meta)))
    }

    async fn read_meta(&self, data: &Path) -> Result<Option<Meta>, StoreError> {
        match tokio::fs::read(Self::meta_path(data)).await {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    fn url(&self, key: &ObjectKey, query: &[(&str, &str)]) -> String {
        let q = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, QUERY)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{}/o/{}?{q}", self.public_url, key.url_path())
    }
}

const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn check(sig_ok: bool, exp: i64, now: DateTime<Utc>) -> Result<(), UrlError> {
    if !sig_ok {
        Err(UrlError::BadSignature)
    } else if now.timestamp() > exp {
        Err(UrlError::Expired)
    } else {
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

impl From<WriteError> for PutError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::TooLarge { declared } => PutError::TooLarge { declared },
            WriteError::SizeMismatch { declared, received } => {
                PutError::SizeMismatch { declared, received }
            }
            WriteError::ChecksumMismatch => PutError::ChecksumMismatch,
            WriteError::Exists => PutError::Exists,
            WriteError::Body(b) => PutError::Body(b),
            WriteError::TooSlow(b) => PutError::TooSlow(b),
            WriteError::Io(e) => PutError::Store(io_err(e)),
        }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put_stream(
        &self,
        spec: &UploadSpec<'_>,
        body: BodyStream,
    ) -> Result<Sha256, PutError> {
        let meta = self
            .write(
                spec.key,
                spec.content_type.as_str(),
                spec.size.get(),
                spec.sha256,
                body,
            )
            .await?;
        Sha256::parse(&meta.sha256).map_err(|e| PutError::Store(StoreError::Other(e.detail)))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let data = self.data_path(key);
        let size = match tokio::fs::metadata(&data).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let meta = self.read_meta(&data).await?;
        let sha256 = meta.as_ref().and_then(|m| Sha256::parse(&m.sha256).ok());
        let content_type = meta.map(|m| m.content_type);
        Ok(Some(ObjectInfo {
            size,
            sha256,
            content_type,
        }))
    }

    async fn digest(&self, key: &ObjectKey) -> Result<Option<Sha256>, StoreError> {
        match hash_file(&self.data_path(key)).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn read_prefix(
        &self,
        key: &ObjectKey,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        use tokio::io::AsyncReadExt;
        let Some((file, _)) = self.read(key).await? else {
            return Ok(None);
        };
        let mut buf = Vec::with_capacity(len);
        file.take(len as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(io_err)?;
        Ok(Some(buf))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let data = self.data_path(key);
        for p in [Self::meta_path(&data), data] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        Ok(())
    }

    /// Every object under `prefix` in one page: the embedded store is small, and its keys live
    /// in the metadata files beside the objects. An object whose metadata is missing (a crash
    /// between its two renames) has no key to list and is left out.
    async fn list_objects(
        &self,
        prefix: &str,
        _next: Option<String>,
    ) -> Result<ObjectPage, StoreError> {
        let root = self.root.join("objects");
        let prefix = prefix.to_owned();
        let mut objects = tokio::task::spawn_blocking(move || list_dir(&root, &prefix))
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?
            .map_err(io_err)?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ObjectPage {
            objects,
            next: None,
        })
    }

    async fn presign_upload(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError> {
        let exp = spec.expires_at.timestamp().to_string();
        let size = spec.size.get().to_string();
        let sha = spec.sha256.map(|s| s.to_hex());
        match method {
            UploadMethod::Put => {
                let parts = Self::put_parts(
                    spec.key.as_str(),
                    &exp,
                    spec.content_type.as_str(),
                    &size,
                    sha.as_deref().unwrap_or(""),
                );
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                let sig = self.signer.sign(&refs);
                let mut query = vec![("exp", exp.as_str())];
                if let Some(s) = &sha {
                    query.push(("sha256", s));
                }
                query.push(("sig", &sig));
                let headers = BTreeMap::from([
                    ("content-type".to_owned(), spec.content_type.to_string()),
                    ("content-length".to_owned(), size),
                ]);
                Ok(Upload::Put {
                    url: self.url(spec.key, &query),
                    headers,
                })
            }
            UploadMethod::Post => {
                let policy = PostPolicy {
                    key: spec.key.to_string(),
                    content_type: spec.content_type.to_string(),
                    size: spec.size.get(),
                    sha256: sha,
                    exp: spec.expires_at.timestamp(),
                };
                let json =
                    serde_json::to_vec(&policy).map_err(|e| StoreError::Other(e.to_string()))?;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
                let sig = self.signer.sign(&["POST", &b64]);
                let fields = BTreeMap::from([
                    ("key".to_owned(), policy.key),
                    ("content-type".to_owned(), policy.content_type),
                    ("policy".to_owned(), b64),
                    ("signature".to_owned(), sig),
                ]);
                Ok(Upload::Post {
                    url: format!("{}/o", self.public_url),
                    fields,
                })
            }
        }
    }

    async fn presign_download(
        &self,
        key: &ObjectKey,
        filename: &Filename,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let exp = expires_at.timestamp().to_string();
        let disposition = if inline { "inline" } else { "attachment" };
        let sig = self
            .signer
            .sign(&["GET", key.as_str(), &exp, filename.as_str(), disposition]);
        Ok(self.url(
            key,
            &[
                ("exp", &exp),
                ("filename", filename.as_str()),
                ("disposition", disposition),
                ("sig", &sig),
            ],
        ))
    }

    /// `/o/` is Cairn's own endpoint: it adds `nosniff` and the sandbox.
    fn serves_safely(&self) -> bool {
        true
    }

    /// The files in `tmp/` not modified since `before`.
    async fn list_temp_files(&self, before: DateTime<Utc>) -> Result<Vec<TempFile>, StoreError> {
        let dir = self.tmp_dir();
        tokio::task::spawn_blocking(move || list_temp(&dir, before))
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?
            .map_err(io_err)
    }

    async fn remove_temp_file(&self, name: &str) -> Result<(), StoreError> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(StoreError::Other(format!("`{name}` is not a temp file")));
        }
        match tokio::fs::remove_file(self.tmp_dir().join(name)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn uri(&self, key: &ObjectKey) -> String {
        format!("local:///{key}")
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let probe = self.tmp_dir().join(".ready");
        tokio::fs::write(&probe, b"ok").await.map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContentType, SizeBytes};

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path(), "http://h", b"secret").unwrap();
        (dir, s)
    }

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn key() -> ObjectKey {
        ObjectKey::parse("tenants/t/dev/raw/1/a.txt").unwrap()
    }

    #[tokio::test]
    async fn stale_temp_files_go_and_fresh_ones_stay() {
        let (_dir, s) = store();
        let tmp = s.root.join("tmp");
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for (name, len, old) in [
            ("0190f000-killed", 1000, true),
            ("0190f000-killed.json", 10, true),
            ("0190f001-live", 5, false),
            (".ready", 2, true),
        ] {
            let f = std::fs::File::create(tmp.join(name)).unwrap();
            f.set_len(len).unwrap();
            if old {
                f.set_modified(hour_ago).unwrap();
            }
        }
        std::fs::create_dir(tmp.join("0190f000-dir")).unwrap();
        let stale = s
            .list_temp_files(Utc::now() - chrono::Duration::minutes(10))
            .await
            .unwrap();
        let names: Vec<_> = stale.iter().map(|f| (f.name.as_str(), f.size)).collect();
        assert_eq!(
            names,
            [("0190f000-killed", 1000), ("0190f000-killed.json", 10)]
        );

        let removed = s
            .remove_stale_temp_files(std::time::Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(removed, (2, 1010));
        let mut left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".ready", "0190f000-dir", "0190f001-live"]);
        // Only names in tmp/ itself.
        for name in ["", ".ready", "../objects", "a/b"] {
            assert!(s.remove_temp_file(name).await.is_err(), "{name}");
        }
        assert!(s.remove_temp_file("gone-already").await.is_ok());
    }

    #[tokio::test]
    async fn writes_once_and_never_overwrites() {
        let (_d, s) = store();
        let m = s
            .write(&key(), "text/plain", 5, None, body(&[b"he", b"llo"]))
            .await
            .unwrap();
        assert_eq!(m.sha256, hex::encode(sha2::Sha256::digest(b"hello")));
        let again = s
            .write(&key(), "text/plain", 5, None, body(&[b"HELLO"]))
            .await;
        assert!(matches!(again, Err(WriteError::Exists)));
        let (mut f, _) = s.read(&key()).await.unwrap().unwrap();
        let mut got = String::new();
        f.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
        assert_eq!(
            std::fs::read_dir(s.root.join("tmp")).unwrap().count(),
            0,
            "temp files left"
        );
    }

    #[tokio::test]
    async fn refuses_wrong_sizes_and_content_and_stores_nothing() {
        let (_d, s) = store();
        let long = s
            .write(&key(), "text/plain", 3, None, body(&[b"he", b"llo"]))
            .await;
        assert!(matches!(long, Err(WriteError::TooLarge { declared: 3 })));
        let short = s
            .write(&key(), "text/plain", 9, None, body(&[b"hello"]))
            .await;
        assert!(matches!(
            short,
            Err(WriteError::SizeMismatch { received: 5, .. })
        ));
        let wrong = Sha256::from_bytes([0; 32]);
        let bad = s
            .write(&key(), "text/plain", 5, Some(wrong), body(&[b"hello"]))
            .await;
        assert!(matches!(bad, Err(WriteError::ChecksumMismatch)));
        assert!(s.head(&key()).await.unwrap().is_none());
        assert_eq!(std::fs::read_dir(s.root.join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn signed_urls_bind_their_facts() {
        let (_d, s) = store();
        let now = Utc::now();
        let exp = now + chrono::Duration::seconds(60);
        let ct = ContentType::parse("text/plain").unwrap();
        let spec = UploadSpec {
            key: &key(),
            content_type: &ct,
            size: SizeBytes::new_unchecked(5),
            sha256: None,
            cache_control: crate::storage::PRIVATE_IMMUTABLE,
            expires_at: exp,
        };
        let Upload::Put { url, .. } = s.presign_upload(&spec, UploadMethod::Put).await.unwrap()
        else {
            panic!("expected PUT");
        };
        let sig = url.rsplit("sig=").next().unwrap();
        let key = key();
        let ok = PutGrant {
            key: &key,
            exp: exp.timestamp(),
            content_type: "text/plain",
            size: 5,
            sha256: None,
            sig,
        };
        assert_eq!(s.verify_put(&ok, now), Ok(()));
        let changed = [
            PutGrant {
                content_type: "text/html",
                ..ok
            },
            PutGrant { size: 6, ..ok },
            PutGrant {
                exp: ok.exp + 1,
                ..ok
            },
            PutGrant {
                sha256: Some("00"),
                ..ok
            },
        ];
        for grant in changed {
            assert_eq!(
                s.verify_put(&grant, now),
                Err(UrlError::BadSignature),
                "{grant:?}"
            );
        }
        let later = exp + chrono::Duration::seconds(1);
        assert_eq!(s.verify_put(&ok, later), Err(UrlError::Expired));
    }
}
