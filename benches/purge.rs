//! Purge throughput of the lifecycle sweep against an S3-compatible store: N expired artifacts
//! (100,000 by default) purged by one `cairn::jobs::lifecycle::run`, in one run per mode:
//!
//! - `batched`: multi-object deletes (DeleteObjects, up to 1,000 keys a request) with
//!   `CAIRN_PURGE_CONCURRENCY` requests in flight (4 unless the variable is set), as Cairn runs;
//! - `batched1`: the same with one request in flight;
//! - `single`: one DeleteObject per object, one at a time (the baseline).
//!
//! Prints objects/s for each and the ratios to the baseline, and splits each sweep: the
//! object-removal step, and the time during which at least one delete request was waiting for the
//! store (the store is wrapped to time its deletes); the rest is catalog work (rows, references,
//! events).
//!
//! Each mode gets a fresh bucket and a fresh catalog, seeded outside the measurement: N small
//! objects (64 bytes, distinct) put straight to the store with the SDK, 64 in flight, and for each
//! a `stored` blob row and an artifact row `deleted` 30 days ago (past the default 7-day grace).
//! The whole sweep is timed; afterwards the bench checks that it reported N objects removed, no
//! errors, and that the bucket is empty.
//!
//! `CAIRN_BENCH_S3_DELAY_MS=20` puts a proxy in front of the store that holds each request that
//! long before passing it on (about one delay per request: a round trip to S3 from far away, as
//! the store sees it), for the sweeps only, not the seeding. The summary gives each mode's time
//! outside delete waits per item: catalog work, and the store's other requests (listings).
//!
//! Needs `AWS_*` variables reaching a store: run `scripts/bench-s3.sh`, which starts Garage, or
//! `cargo bench --bench purge` with them set. `CAIRN_BENCH_PURGE_ITEMS` sets N;
//! `CAIRN_BENCH_PURGE_MODES` (`single,batched1,batched` by default: the baseline first, on the
//! freshest store, as the store slows while its tables fill) picks the modes and their order;
//! `CAIRN_BENCH_DATABASE_URL=postgres://...` uses that (empty) database instead of SQLite files in
//! a temp dir.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use cairn::{
    config::{Config, LifecycleConfig, Settings, StorageConfig},
    domain::{Filename, ObjectKey},
    jobs::{self, Trigger},
    lifecycle::{Lifecycle, Report, SweepOptions},
    storage::{
        BodyStream, ObjectInfo, ObjectPage, ObjectStore, OpenUpload, PutError, StoreError, Upload,
        UploadMethod, UploadSpec, UploadedPart,
    },
};
use chrono::{DateTime, Duration, Utc};
use entity::{artifact, blob};
use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{DatabaseConnection, EntityTrait, Set, TransactionTrait};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Objects put concurrently while seeding.
const PUTS_IN_FLIGHT: usize = 64;
/// Rows per INSERT: 28 artifact columns × 1,000 stays under SQLite's 32,766 bind parameters.
const INSERT_CHUNK: usize = 1_000;
const OBJECT_BYTES: usize = 64;
const TENANT: &str = "bench";
const ENV: &str = "dev";
const RUN: &str = "purge-run";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// DeleteObjects with the configured requests in flight.
    Batched,
    /// DeleteObjects, one request at a time.
    BatchedOne,
    /// One DeleteObject per object, one at a time.
    Single,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Batched => "batched",
            Mode::BatchedOne => "batched1",
            Mode::Single => "single",
        }
    }

    fn label(self, concurrency: usize) -> String {
        match self {
            Mode::Batched => format!("DeleteObjects ×1,000, {concurrency} in flight"),
            Mode::BatchedOne => "DeleteObjects ×1,000, 1 in flight".into(),
            Mode::Single => "one DeleteObject per object".into(),
        }
    }

    /// Delete requests in flight, given the configured concurrency.
    fn in_flight(self, concurrency: usize) -> usize {
        match self {
            Mode::Batched => concurrency,
            Mode::BatchedOne | Mode::Single => 1,
        }
    }
}

struct Measured {
    mode: Mode,
    items: u64,
    secs: f64,
    /// The object-removal step alone (deletes and their blob rows).
    removal_secs: f64,
    /// Time with at least one delete request waiting for the store.
    store_secs: f64,
    delete_requests: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.items as f64 / self.secs
    }
}

/// The S3 store, timing its deletes: how much of a sweep is spent waiting for the store. With
/// several requests in flight, the time counted is the time during which any of them waits.
struct Timed<S> {
    inner: S,
    waits: Mutex<Waits>,
}

#[derive(Default)]
struct Waits {
    in_flight: usize,
    /// When `in_flight` last went from 0 to 1.
    since: Option<Instant>,
    secs: f64,
    requests: u64,
}

impl<S> Timed<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            waits: Mutex::default(),
        }
    }

    async fn timed<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        {
            let mut w = self.waits.lock().unwrap();
            if w.in_flight == 0 {
                w.since = Some(Instant::now());
            }
            w.in_flight += 1;
        }
        let res = request.await;
        let mut w = self.waits.lock().unwrap();
        w.in_flight -= 1;
        w.requests += 1;
        if w.in_flight == 0 {
            if let Some(since) = w.since.take() {
                w.secs += since.elapsed().as_secs_f64();
            }
        }
        res
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for Timed<S> {
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        self.inner.head(key).await
    }

    async fn digest(&self, key: &ObjectKey) -> Result<Option<cairn::domain::Sha256>, StoreError> {
        self.inner.digest(key).await
    }

    async fn read_prefix(
        &self,
        key: &ObjectKey,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_prefix(key, len).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.timed(self.inner.delete(key)).await
    }

    async fn delete_many(&self, keys: &[ObjectKey]) -> Result<Vec<(String, String)>, StoreError> {
        self.timed(self.inner.delete_many(keys)).await
    }

    async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
    ) -> Result<ObjectPage, StoreError> {
        self.inner.list_objects(prefix, next).await
    }

    async fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>, StoreError> {
        self.inner.list_multipart_uploads(prefix).await
    }

    async fn put_stream(
        &self,
        spec: &UploadSpec<'_>,
        body: BodyStream,
    ) -> Result<cairn::domain::Sha256, PutError> {
        self.inner.put_stream(spec, body).await
    }

    async fn presign_upload(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError> {
        self.inner.presign_upload(spec, method).await
    }

    async fn presign_multipart(&self, spec: &UploadSpec<'_>) -> Result<Option<Upload>, StoreError> {
        self.inner.presign_multipart(spec).await
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: Option<&[UploadedPart]>,
    ) -> Result<(), StoreError> {
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn presign_download(
        &self,
        key: &ObjectKey,
        filename: &Filename,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.inner
            .presign_download(key, filename, inline, expires_at)
            .await
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        disposition: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.inner.presign_get(key, disposition, expires_at).await
    }

    fn uri(&self, key: &ObjectKey) -> String {
        self.inner.uri(key)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        self.inner.check_ready().await
    }
}

fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build(),
    )
}

fn settings(data_dir: &std::path::Path, bucket: &str) -> Settings {
    let mut s = Settings::from_vars([
        ("CAIRN_STORAGE", "s3"),
        ("CAIRN_DATA_DIR", data_dir.to_str().unwrap()),
        ("RAW_BUCKET", bucket),
        ("CAIRN_S3_FORCE_PATH_STYLE", "true"),
        ("CAIRN_S3_CONDITIONAL_WRITES", "false"),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
        (
            "CAIRN_JWT_SECRET",
            "bench-secret-0123456789abcdef0123456789",
        ),
        ("CAIRN_ENVS", ENV),
    ])
    .unwrap();
    // What the bench's environment says of these, as `cairn serve` would read it.
    for var in [
        "AWS_REGION",
        "AWS_ENDPOINT_URL_S3",
        "CAIRN_PURGE_CONCURRENCY",
    ] {
        if let Ok(v) = std::env::var(var) {
            s.set(var, &v);
        }
    }
    if let Some(proxy) = DELAYING_PROXY.get() {
        s.set("AWS_ENDPOINT_URL_S3", proxy);
    }
    if let Some(url) = std::env::var("CAIRN_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        s.set("DATABASE_URL", &url);
    }
    s
}

/// Object `i`'s content: 64 bytes, distinct per mode and item.
fn content(mode: Mode, i: u64) -> Vec<u8> {
    let mut v = format!("cairn purge bench, {} mode, item {i:010}", mode.name()).into_bytes();
    v.resize(OBJECT_BYTES, b'.');
    v
}

fn key(id: Uuid) -> String {
    format!("tenants/{TENANT}/{ENV}/runs/{RUN}/image/{id}/f.png")
}

/// Puts the N objects (not measured).
async fn put_objects(client: &aws_sdk_s3::Client, bucket: &str, mode: Mode, ids: &[Uuid]) {
    let start = Instant::now();
    let total = ids.len();
    let done = AtomicUsize::new(0);
    futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let done = &done;
            async move {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key(*id))
                    .content_type("image/png")
                    .body(ByteStream::from(content(mode, i as u64)))
                    .send()
                    .await
                    .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 10_000 == 0 || n == total {
                    eprintln!(
                        "  [{}] put {n}/{total} objects ({:.0} s)",
                        mode.name(),
                        start.elapsed().as_secs_f64()
                    );
                }
                Ok::<_, String>(())
            }
        })
        .buffer_unordered(PUTS_IN_FLIGHT)
        .try_collect::<()>()
        .await
        .expect("put a seed object");
}

/// Inserts a `stored` blob and a `deleted` artifact per object (not measured).
async fn insert_rows(
    db: &DatabaseConnection,
    bucket: &str,
    mode: Mode,
    ids: &[Uuid],
    now: DateTime<Utc>,
) {
    let start = Instant::now();
    let created = now - Duration::days(31);
    let deleted = now - Duration::days(30);
    let txn = db.begin().await.unwrap();
    for (c, chunk) in ids.chunks(INSERT_CHUNK).enumerate() {
        let base = (c * INSERT_CHUNK) as u64;
        let mut blobs = Vec::with_capacity(chunk.len());
        let mut artifacts = Vec::with_capacity(chunk.len());
        for (j, id) in chunk.iter().enumerate() {
            let bytes = content(mode, base + j as u64);
            let sha = hex::encode(Sha256::digest(&bytes));
            let blob_id = Uuid::now_v7();
            let key = key(*id);
            blobs.push(blob::ActiveModel {
                id: Set(blob_id),
                tenant_id: Set(TENANT.into()),
                env: Set(ENV.into()),
                visibility: Set(blob::VISIBILITY_PRIVATE.into()),
                key: Set(key.clone()),
                sha256: Set(Some(sha.clone())),
                size_bytes: Set(OBJECT_BYTES as i64),
                content_type: Set("image/png".into()),
                state: Set(blob::STATE_STORED.into()),
                ref_count: Set(1),
                upload_id: Set(None),
                created_at: Set(created),
                updated_at: Set(created),
            });
            artifacts.push(artifact::ActiveModel {
                artifact_id: Set(*id),
                tenant_id: Set(TENANT.into()),
                env: Set(ENV.into()),
                run_id: Set(RUN.into()),
                kind: Set("image".into()),
                visibility: Set(blob::VISIBILITY_PRIVATE.into()),
                blob_id: Set(Some(blob_id)),
                render_ref: Set(None),
                uri: Set(format!("s3://{bucket}/{key}")),
                filename: Set("f.png".into()),
                content_type: Set("image/png".into()),
                size_bytes: Set(OBJECT_BYTES as i64),
                sha256: Set(Some(sha)),
                status: Set(artifact::STATUS_DELETED.into()),
                legal_hold: Set(false),
                expires_at: Set(None),
                workspace_id: Set(None),
                project_id: Set(None),
                canvas_id: Set(None),
                rev: Set(None),
                correlation_id: Set(None),
                actor_id: Set(None),
                derived_from: Set(serde_json::json!([])),
                created_by: Set("bench".into()),
                created_at: Set(created),
                updated_at: Set(deleted),
                deleted_at: Set(Some(deleted)),
            });
        }
        blob::Entity::insert_many(blobs)
            .exec_without_returning(&txn)
            .await
            .unwrap();
        artifact::Entity::insert_many(artifacts)
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    eprintln!(
        "  [{}] inserted {} blob and artifact rows ({:.1} s)",
        mode.name(),
        ids.len(),
        start.elapsed().as_secs_f64()
    );
}

async fn measure(sdk: &aws_config::SdkConfig, mode: Mode, concurrency: usize, n: u64) -> Measured {
    let client = s3_client(sdk);
    let bucket = format!("cairn-purge-{}-{}", mode.name(), Uuid::now_v7().simple());
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the bench bucket (is the store up? use scripts/bench-s3.sh)");
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_settings(&settings(dir.path(), &bucket)).unwrap();
    let StorageConfig::S3(s3) = &config.storage else {
        unreachable!("the bench configures S3")
    };
    let store = Arc::new(Timed::new(
        cairn::storage::s3::connect(s3, config.multipart_threshold)
            .await
            .unwrap(),
    ));
    let db = cairn::connect(&config).await.unwrap();
    cairn::migrate(&db).await.unwrap();

    eprintln!("[{}] seeding {n} expired items in {bucket}", mode.name());
    let now = Utc::now();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    put_objects(&client, &bucket, mode, &ids).await;
    insert_rows(&db, &bucket, mode, &ids, now).await;

    let lc = Lifecycle {
        db: db.clone(),
        store: store.clone(),
        config: LifecycleConfig {
            delete_concurrency: mode.in_flight(concurrency),
            ..config.lifecycle.clone()
        },
        invalidate: false,
        holder: jobs::holder_id(),
    };
    // When each step last reported, and some progress on stderr.
    let last: Arc<Mutex<HashMap<&'static str, Instant>>> = Arc::default();
    let progress = {
        let last = last.clone();
        let name = mode.name();
        let every = (n / 10).max(1);
        let printed = Mutex::new(HashMap::<&'static str, u64>::new());
        move |step: &'static str, done: u64| {
            last.lock().unwrap().insert(step, Instant::now());
            let mut p = printed.lock().unwrap();
            let seen = p.entry(step).or_insert(0);
            if done >= *seen + every {
                *seen = done;
                eprintln!("  [{name}] sweep: {step} {done}");
            }
        }
    };
    let opts = SweepOptions {
        single_deletes: mode == Mode::Single,
        progress: Some(Arc::new(progress)),
        ..Default::default()
    };
    eprintln!("[{}] sweeping", mode.name());
    let start = Instant::now();
    let done = jobs::lifecycle::run(&lc, Trigger::Cli, &opts, Utc::now())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();

    let report: Report = serde_json::from_value(done.report.clone()).unwrap();
    assert_eq!(done.status, "succeeded", "{:?}\n{report:?}", done.error);
    assert!(!report.has_errors(), "{report:?}");
    assert_eq!(report.purged.count, n, "{report:?}");
    assert_eq!(report.objects_deleted.count, n, "{report:?}");
    assert_eq!(report.objects_pending, 0, "{report:?}");
    let listed = client
        .list_objects_v2()
        .bucket(&bucket)
        .max_keys(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.key_count().unwrap_or(0),
        0,
        "objects left in {bucket}: {:?}",
        listed.contents()
    );

    let removal_secs = {
        let last = last.lock().unwrap();
        match (last.get("purged"), last.get("objects removed")) {
            (Some(p), Some(o)) => o.duration_since(*p).as_secs_f64(),
            _ => f64::NAN,
        }
    };
    client.delete_bucket().bucket(&bucket).send().await.ok();
    let waits = store.waits.lock().unwrap();
    let m = Measured {
        mode,
        items: report.objects_deleted.count,
        secs,
        removal_secs,
        store_secs: waits.secs,
        delete_requests: waits.requests,
    };
    drop(waits);
    eprintln!(
        "[{}] {} objects in {:.1} s: {:.0} objects/s",
        mode.name(),
        m.items,
        m.secs,
        m.rate()
    );
    m
}

/// The URL of the delaying proxy the sweeps reach the store through, when one is asked for.
static DELAYING_PROXY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A TCP proxy to `upstream` (`host:port`) that holds each request `delay` before passing it
/// on: a request begins when the client sends after the server has answered (or first).
async fn delaying_proxy(upstream: String, delay: std::time::Duration) -> String {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let answered = Arc::new(AtomicBool::new(true));
                let on_answer = answered.clone();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = cr.read(&mut buf).await {
                        if answered.swap(false, Ordering::SeqCst) {
                            tokio::time::sleep(delay).await;
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = sr.read(&mut buf).await {
                        on_answer.store(true, Ordering::SeqCst);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::main]
async fn main() {
    let delay_ms: u64 = std::env::var("CAIRN_BENCH_S3_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if delay_ms > 0 {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .expect("CAIRN_BENCH_S3_DELAY_MS needs AWS_ENDPOINT_URL_S3 (the store to delay)");
        let upstream = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let proxy = delaying_proxy(upstream, std::time::Duration::from_millis(delay_ms)).await;
        println!("sweeps reach the store through {proxy}, each request held {delay_ms} ms");
        DELAYING_PROXY.set(proxy).unwrap();
    }
    let n: u64 = std::env::var("CAIRN_BENCH_PURGE_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let modes: Vec<Mode> = std::env::var("CAIRN_BENCH_PURGE_MODES")
        .unwrap_or_else(|_| "single,batched1,batched".into())
        .split(',')
        .map(|m| match m.trim() {
            "batched" => Mode::Batched,
            "batched1" => Mode::BatchedOne,
            "single" => Mode::Single,
            other => {
                panic!("CAIRN_BENCH_PURGE_MODES: `{other}` is not batched, batched1 or single")
            }
        })
        .collect();
    // As `cairn serve` reads it: CAIRN_PURGE_CONCURRENCY, 4 by default.
    let concurrency = Config::from_settings(&settings(std::path::Path::new("."), "unused"))
        .expect("the bench's settings")
        .lifecycle
        .delete_concurrency;
    let catalog = if std::env::var("CAIRN_BENCH_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "Postgres"
    } else {
        "SQLite"
    };
    let sdk = aws_config::load_from_env().await;
    println!(
        "purge of {n} expired items ({OBJECT_BYTES}-byte objects) on {} with a {catalog} catalog (nproc {})",
        std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_else(|_| "AWS S3".into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let mut results = Vec::new();
    for mode in modes {
        results.push(measure(&sdk, mode, concurrency, n).await);
    }

    println!(
        "\n{:<36} {:>8} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "mode", "items", "sweep s", "objects/s", "removal s", "store s", "requests"
    );
    for m in &results {
        println!(
            "{:<36} {:>8} {:>9.1} {:>10.0} {:>10.1} {:>9.1} {:>9}",
            m.mode.label(concurrency),
            m.items,
            m.secs,
            m.rate(),
            m.removal_secs,
            m.store_secs,
            m.delete_requests
        );
    }
    println!(
        "(removal s: the sweep's object-removal step; store s: time with a delete request \
         waiting for the store; the rest of a sweep is catalog work)"
    );
    for m in &results {
        println!(
            "{}: {:.0} µs per item outside delete waits (catalog work, and the store's other \
             requests: listings)",
            m.mode.name(),
            (m.secs - m.store_secs) * 1e6 / m.items as f64
        );
    }
    let rate = |mode| results.iter().find(|m| m.mode == mode).map(Measured::rate);
    if let Some(s) = rate(Mode::Single) {
        for (mode, name) in [(Mode::Batched, "batched"), (Mode::BatchedOne, "batched1")] {
            if let Some(b) = rate(mode) {
                println!("{name} / single: {:.1}× (target: at least 20×)", b / s);
            }
        }
    }
}
