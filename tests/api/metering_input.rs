//! Metering input is not a weapon (issue 14 §5), on every backend combination: a tenant's upload
//! named like a CloudFront log file is never ingested, whatever prefix the job is pointed at;
//! `CAIRN_CDN_LOG_PREFIX` may not cover tenant data; absurd `sc-bytes` are rejected and no counter
//! wraps or goes negative; a gzip bomb fails once, is recorded, and is never read again; a file
//! the store cannot give now is not recorded and is read by the next run.
use std::{
    collections::BTreeMap,
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use async_trait::async_trait;
use cairn::{
    config::{Config, Settings},
    domain::{Filename, ObjectKey},
    jobs::{self, Trigger},
    metering::{self, ingest::IngestReport, Metering, RunOptions},
    storage::{
        BodyStream, ObjectInfo, ObjectPage, ObjectStore, PutError, StoreError, Upload,
        UploadMethod, UploadSpec,
    },
};
use chrono::{DateTime, Utc};
use entity::{cdn_log_file, usage, usage_daily};
use flate2::{write::GzEncoder, Compression};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;

use crate::helpers::TestApp;

/// A name exactly as CloudFront names its log files.
const LOG_NAME: &str = "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz";

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap()
}

/// A gzipped CloudFront log with one record per (sc-bytes, path).
fn log_file(records: &[(&str, &str)]) -> Vec<u8> {
    let mut text =
        String::from("#Version: 1.0\n#Fields: date time sc-bytes cs-uri-stem sc-status\n");
    for (bytes, path) in records {
        text.push_str(&format!("2026-11-20\t10:00:00\t{bytes}\t{path}\t200\n"));
    }
    gzip(text.as_bytes())
}

async fn put_log(app: &TestApp, key: &str, bytes: Vec<u8>) {
    let key = ObjectKey::parse(key).unwrap();
    app.put_object(&key, "application/gzip", "private", bytes)
        .await;
}

/// One metering run through `m`; its CloudFront log report.
async fn run(m: &Metering) -> IngestReport {
    let run = jobs::metering::run(m, Trigger::Api, RunOptions::default(), Utc::now())
        .await
        .unwrap();
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    serde_json::from_value(run.report["cdn_logs"].clone()).expect("a CloudFront log report")
}

type Cdn = BTreeMap<(String, String), (i64, i64)>;

/// CDN (requests, bytes) per (tenant, env) in the counters, and per (tenant, env, day) in the day
/// rows that have any; every CDN value anywhere is checked to be 0 or more.
async fn cdn_counters(app: &TestApp) -> (Cdn, BTreeMap<(String, String, String), (i64, i64)>) {
    let rows = usage::Entity::find().all(&app.state.db).await.unwrap();
    let days = usage_daily::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    for (requests, bytes) in rows
        .iter()
        .map(|u| (u.cdn_requests, u.cdn_bytes))
        .chain(days.iter().map(|d| (d.cdn_requests, d.cdn_bytes)))
    {
        assert!(
            requests >= 0 && bytes >= 0,
            "a negative CDN counter: {rows:?} {days:?}"
        );
    }
    let totals = rows
        .into_iter()
        .filter(|u| u.cdn_requests != 0 || u.cdn_bytes != 0)
        .map(|u| ((u.tenant_id, u.env), (u.cdn_requests, u.cdn_bytes)))
        .collect();
    let days = days
        .into_iter()
        .filter(|d| d.cdn_requests != 0 || d.cdn_bytes != 0)
        .map(|d| ((d.tenant_id, d.env, d.day), (d.cdn_requests, d.cdn_bytes)))
        .collect();
    (totals, days)
}

async fn log_rows(app: &TestApp) -> Vec<cdn_log_file::Model> {
    cdn_log_file::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_upload_named_like_a_log_file_is_never_ingested() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", "cdn-logs");
    })
    .await;
    let mallory = app.owner("mallory", "dev");
    // A perfect CloudFront log charging another tenant a terabyte and mallory u64::MAX bytes
    // (`u64 as i64` once made that -1: a counter driven negative).
    let fake = log_file(&[
        ("1000000000000", "/tenants/victim/prod/raw/a/f"),
        (&u64::MAX.to_string(), "/tenants/mallory/dev/raw/a/f"),
    ]);
    let p = app
        .presign(&mallory, LOG_NAME, "application/octet-stream", &fake)
        .await;
    let key = p["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("tenants/mallory/dev/raw/") && key.ends_with(LOG_NAME));
    assert_eq!(app.put_upload(&p, &fake).await.status(), StatusCode::OK);
    let res = app
        .register(
            &mallory,
            p["asset_id"].as_str().unwrap(),
            &fake,
            "application/octet-stream",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(cdn_counters(&app).await, Default::default());

    // The configured prefix: the upload is not there.
    let r = run(&app.state.metering).await;
    assert_eq!((r.files, r.failed, r.already_ingested), (0, 0, 0), "{r:?}");

    // Pointed at the whole bucket or at tenant data, as the prefix could be before: the upload
    // is listed, but a log file is only ever directly under the prefix.
    let m = &app.state.metering;
    for prefix in [
        "",
        "tenants/",
        "tenants/mallory/",
        "tenants/mallory/dev/raw/",
    ] {
        let r = metering::ingest::ingest(&m.db, &*m.store, prefix, &m.envs, Utc::now())
            .await
            .unwrap();
        assert_eq!(
            (r.files, r.failed, r.already_ingested, r.lines, r.bytes),
            (0, 0, 0, 0, 0),
            "prefix {prefix:?}: {r:?}"
        );
        assert!(r.errors.is_empty(), "{r:?}");
    }
    assert!(log_rows(&app).await.is_empty());
    assert_eq!(
        cdn_counters(&app).await,
        Default::default(),
        "nobody was charged"
    );
    assert!(
        usage::Entity::find_by_id(("victim".to_owned(), "prod".to_owned()))
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
}

/// Settings that are valid but for what the caller changes.
fn settings(dir: &std::path::Path) -> Settings {
    Settings::from_vars([
        ("CAIRN_STORAGE", "local"),
        ("CAIRN_DATA_DIR", dir.to_str().unwrap()),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
        ("CAIRN_JWT_SECRET", crate::helpers::SECRET),
        ("CAIRN_JOBS", "off"),
    ])
    .unwrap()
}

#[tokio::test]
async fn the_log_prefix_may_not_cover_tenant_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = |prefix: &str| {
        let mut s = settings(dir.path());
        s.try_set("CAIRN_CDN_LOG_PREFIX", prefix)?;
        Config::from_settings(&s)
    };
    for refused in [
        "/",
        "tenants",
        "tenants/",
        "tenants/acme/",
        "public/",
        "public/tenants/acme/prod/",
        "t",
        "pub",
    ] {
        let err = config(refused).expect_err(refused).to_string();
        assert!(
            err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid"),
            "{refused}: {err}"
        );
    }
    let ok = config("/cdn-logs").unwrap();
    assert_eq!(ok.metering.cdn_log_prefix.as_deref(), Some("cdn-logs/"));
}

#[tokio::test]
async fn absurd_sc_bytes_are_rejected_and_counters_never_wrap() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", "cdn-logs");
    })
    .await;
    let path = "/tenants/acme/prod/raw/0190f000-0000-7000-8000-000000000001/f.bin";
    let other = "/tenants/globex/dev/raw/0190f000-0000-7000-8000-000000000002/f.bin";
    let key = format!("cdn-logs/{LOG_NAME}");
    put_log(
        &app,
        &key,
        log_file(&[
            ("1000", path),
            // More than any response (5 TiB + headers), 2^63 (i64::MIN as i64), u64::MAX (-1).
            ("10000000000000", path),
            ("9223372036854775808", other),
            (&u64::MAX.to_string(), path),
            ("234", other),
        ]),
    )
    .await;
    let r = run(&app.state.metering).await;
    assert_eq!(
        (r.files, r.lines, r.skipped, r.rejected),
        (1, 5, 0, 3),
        "{r:?}"
    );
    assert_eq!((r.requests, r.bytes), (2, 1234));

    let (totals, days) = cdn_counters(&app).await;
    assert_eq!(
        totals,
        BTreeMap::from([
            (("acme".into(), "prod".into()), (1, 1000)),
            (("globex".into(), "dev".into()), (1, 234)),
        ])
    );
    let day = |t: &str, e: &str| (t.to_owned(), e.to_owned(), "2026-11-20".to_owned());
    assert_eq!(
        days,
        BTreeMap::from([
            (day("acme", "prod"), (1, 1000)),
            (day("globex", "dev"), (1, 234))
        ])
    );
    let rows = log_rows(&app).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.lines,
            row.rejected,
            row.requests,
            row.bytes,
            row.error.as_deref()
        ),
        (5, 3, 2, 1234, None)
    );

    // The usage API shows the same day.
    let res = app
        .client
        .get(format!(
            "{}/admin/usage?tenant=acme&from=2026-11-20&to=2026-11-20",
            app.base
        ))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["usage"][0]["cdn_bytes"], 1000, "{v}");
    assert_eq!(v["usage"][0]["cdn_requests"], 1, "{v}");
}

/// The app's store, with every `read_prefix` recorded and, while `unavailable`, refused as a
/// store that cannot be reached.
struct Observed {
    inner: Arc<dyn ObjectStore>,
    reads: Mutex<Vec<String>>,
    unavailable: AtomicBool,
}

impl Observed {
    fn reads_of(&self, key: &str) -> usize {
        self.reads
            .lock()
            .unwrap()
            .iter()
            .filter(|k| *k == key)
            .count()
    }
}

#[async_trait]
impl ObjectStore for Observed {
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
        self.reads.lock().unwrap().push(key.as_str().to_owned());
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "injected: the store is down".into(),
            ));
        }
        self.inner.read_prefix(key, len).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
    ) -> Result<ObjectPage, StoreError> {
        self.inner.list_objects(prefix, next).await
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

    fn uri(&self, key: &ObjectKey) -> String {
        self.inner.uri(key)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        self.inner.check_ready().await
    }
}

/// The app's metering job, reading the store through `store`.
fn metering_through(app: &TestApp, store: Arc<Observed>) -> Metering {
    let m = &app.state.metering;
    Metering {
        db: m.db.clone(),
        store,
        config: m.config.clone(),
        envs: m.envs.clone(),
        holder: "metering-input-test".into(),
    }
}

/// 1 GiB of zeros in about 1 MiB: 1024 gzip members of 1 MiB of zeros each.
fn gzip_bomb() -> Vec<u8> {
    gzip(&vec![0; 1 << 20]).repeat(1024)
}

#[tokio::test]
async fn a_gzip_bomb_fails_once_is_recorded_and_is_never_read_again() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", "cdn-logs");
    })
    .await;
    let store = Arc::new(Observed {
        inner: app.state.store.clone(),
        reads: Mutex::default(),
        unavailable: AtomicBool::new(false),
    });
    let m = metering_through(&app, store.clone());
    let bomb_key = "cdn-logs/E2EXAMPLE123.2026-11-20-11.bomb0001.gz";
    let good_key = format!("cdn-logs/{LOG_NAME}");
    let bomb = gzip_bomb();
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    put_log(&app, bomb_key, bomb.clone()).await;
    let path = "/tenants/acme/prod/raw/0190f000-0000-7000-8000-000000000001/f.bin";
    put_log(&app, &good_key, log_file(&[("100", path)])).await;

    // First run: the good file counts, the bomb is refused after one line and recorded.
    let r = run(&m).await;
    assert_eq!((r.files, r.failed, r.already_ingested), (1, 1, 0), "{r:?}");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(
        r.errors[0].starts_with(bomb_key) && r.errors[0].contains("longer than"),
        "{r:?}"
    );
    assert_eq!(store.reads_of(bomb_key), 1);
    let row = cdn_log_file::Entity::find_by_id(bomb_key.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the failed file is recorded");
    assert!(
        row.error
            .as_deref()
            .is_some_and(|e| e.contains("longer than")),
        "{row:?}"
    );
    assert_eq!(
        (
            row.size_bytes,
            row.lines,
            row.requests,
            row.bytes,
            row.rejected
        ),
        (bomb.len() as i64, 0, 0, 0, 0)
    );
    let counted = cdn_counters(&app).await;
    assert_eq!(
        counted.0,
        BTreeMap::from([(("acme".into(), "prod".into()), (1, 100))])
    );

    // Second run: both files are known; the bomb is not read again and reported no more.
    let r = run(&m).await;
    assert_eq!((r.files, r.failed, r.already_ingested), (0, 0, 2), "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(store.reads_of(bomb_key), 1, "not read again");

    // Even a readable file in its place is never read: the key was settled once.
    let k = ObjectKey::parse(bomb_key).unwrap();
    app.state.store.delete(&k).await.unwrap();
    put_log(&app, bomb_key, log_file(&[("5000", path)])).await;
    let r = run(&m).await;
    assert_eq!((r.files, r.failed, r.already_ingested), (0, 0, 2), "{r:?}");
    assert_eq!(store.reads_of(bomb_key), 1, "not read again");
    assert_eq!(cdn_counters(&app).await, counted);
    assert_eq!(
        cdn_log_file::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_file_the_store_cannot_give_now_is_retried_next_run() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", "cdn-logs");
    })
    .await;
    let store = Arc::new(Observed {
        inner: app.state.store.clone(),
        reads: Mutex::default(),
        unavailable: AtomicBool::new(true),
    });
    let m = metering_through(&app, store.clone());
    let key = format!("cdn-logs/{LOG_NAME}");
    let path = "/tenants/acme/prod/raw/0190f000-0000-7000-8000-000000000001/f.bin";
    put_log(&app, &key, log_file(&[("100", path), ("23", path)])).await;

    let r = run(&m).await;
    assert_eq!((r.files, r.failed, r.already_ingested), (0, 0, 0), "{r:?}");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].contains("retried next run"), "{r:?}");
    assert!(
        log_rows(&app).await.is_empty(),
        "a transient failure is not recorded"
    );

    store.unavailable.store(false, Ordering::SeqCst);
    let r = run(&m).await;
    assert_eq!(
        (r.files, r.failed, r.requests, r.bytes),
        (1, 0, 2, 123),
        "{r:?}"
    );
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(store.reads_of(&key), 2);
    let rows = log_rows(&app).await;
    assert_eq!((rows.len(), rows[0].error.as_deref()), (1, None));
}
