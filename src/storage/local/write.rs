//! Writing an object: the body streams into `tmp/`, hashed on the fly, and appears with a hard
//! link only when its size (and SHA-256, when given) match.
use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::{io_err, LocalStore, Meta, WriteError, CHUNK};
use crate::{
    storage::PutError,
    values::{ObjectKey, Sha256},
};

impl LocalStore {
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
