//! `Core`: what the domain services work with — the catalog, the object store, the CDN, the
//! change feed, the verification queue, the usage counted on reads, and the few settings they
//! read. It sits below `domain`, so domain code takes `&Core` and never sees `App` or HTTP; the
//! server's `App` holds one (and derefs to it), and so can a job or a CLI command.
use std::{collections::HashMap, sync::Arc};

use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

pub mod writer;

pub use writer::{Batch, Work, Writer};

use crate::{cdn::Cdn, storage::ObjectStore, usage::buffer::UsageBuffer, values::ObjectKey};

pub struct Core {
    /// The catalog's writer: every write, and reads inside a write's transaction.
    pub db: DatabaseConnection,
    /// The catalog's read side ([`crate::open::connect_reader`]): reads outside a transaction.
    pub read: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    /// Delivery URLs and CloudFront signing.
    pub cdn: Cdn,
    /// The base of URLs for Cairn's own endpoints, without a trailing slash.
    pub public_url: String,
    /// Wakes long-polls when an artifact changes status.
    pub changes: Changes,
    /// Completed multipart uploads waiting to be hashed.
    pub verify_queue: VerifyQueue,
    /// Download URLs handed out and bytes served, counted on reads and recorded in batches.
    pub usage_buffer: Arc<UsageBuffer>,
    /// The object keys of blobs, which never change ([`BlobKeys`]).
    pub blob_keys: BlobKeys,
    /// The catalog's write side: writes and events committed in groups ([`Writer`]).
    pub writer: Writer,
    /// The default lifetime of presigned URLs (`CAIRN_PRESIGN_TTL_SECS`).
    pub presign_ttl_secs: u64,
    /// Uploads at least this large go to S3 in parts (`CAIRN_MULTIPART_THRESHOLD`).
    pub multipart_threshold: u64,
}

impl Core {
    /// Records the usage counted on reads now (the server also does every few seconds and when
    /// it stops).
    pub async fn flush_usage(&self) -> Result<usize, sea_orm::DbErr> {
        self.usage_buffer.flush(&self.db).await
    }
}

/// Blob id → object key, remembered once read: a blob's key is set when its row is written and
/// never changes, and ids (UUIDv7) are never reused, so an entry cannot go stale — a purged
/// blob's entry is simply never asked for again. Bounded: cleared when full.
#[derive(Default)]
pub struct BlobKeys(std::sync::Mutex<HashMap<Uuid, ObjectKey>>);

impl BlobKeys {
    /// Entries kept before the cache starts over.
    const CAPACITY: usize = 65_536;

    pub fn get(&self, id: Uuid) -> Option<ObjectKey> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn insert(&self, id: Uuid, key: ObjectKey) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(id, key);
    }
}

/// Status changes of artifacts in this process.
#[derive(Clone)]
pub struct Changes(broadcast::Sender<Uuid>);

impl Default for Changes {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl Changes {
    pub fn notify(&self, id: Uuid) {
        // No receiver is not an error: nobody is waiting.
        let _ = self.0.send(id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.0.subscribe()
    }
}

/// Artifacts whose completed multipart upload waits to be hashed (`domain::artifacts::verify`, run by `jobs::verify`).
#[derive(Clone)]
pub struct VerifyQueue(mpsc::UnboundedSender<Uuid>);

impl VerifyQueue {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Uuid>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    pub fn enqueue(&self, id: Uuid) {
        // Closed only when the server is stopping; `recover` picks the work up at the next start.
        let _ = self.0.send(id);
    }
}
