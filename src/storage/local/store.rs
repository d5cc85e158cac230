//! [`ObjectStore`] for the local store: objects on disk, URLs served by Cairn's `/o/`.
use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{
    hash_file, head_blocking, io_err, list_dir, list_temp, Contents, LocalStore, PostPolicy,
};
use crate::{
    storage::{
        BodyStream, ObjectInfo, ObjectPage, ObjectStore, PutError, StoreError, TempFile, Upload,
        UploadMethod, UploadSpec,
    },
    values::{Filename, ObjectKey, Sha256},
};

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
        // The size and the metadata in one trip to the blocking pool.
        let found = tokio::task::spawn_blocking(move || head_blocking(&data))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(io_err)?;
        let Some((size, meta)) = found else {
            return Ok(None);
        };
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
        let Some((contents, _)) = self.read(key, len as u64).await? else {
            return Ok(None);
        };
        let file = match contents {
            Contents::Whole(bytes) => return Ok(Some(bytes[..len.min(bytes.len())].to_vec())),
            Contents::File(file) => file,
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
