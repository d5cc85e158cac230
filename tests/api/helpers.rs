//! `TestApp`: a running Cairn and a client that speaks its API.
use std::{collections::BTreeMap, path::PathBuf};

use cairn::{
    app::AppState,
    auth::{mint, Claims, Role},
    config::{Config, Settings},
    Application,
};
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use sha2::Digest;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
/// `CAIRN_METRICS_TOKEN` of every test app: it shows per-tenant series on `/metrics`.
pub const METRICS_TOKEN: &str = "metrics-test-token-0123456789";

/// The `cairn` binary with a clean environment: PATH, `CAIRN_DATA_DIR` and no colours.
pub fn cairn_command(data_dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAIRN_DATA_DIR", data_dir)
        .env("NO_COLOR", "1");
    c
}

pub struct TestApp {
    /// The per-test bucket when the store is S3.
    pub bucket: Option<String>,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data_dir: PathBuf,
    /// Ends the server's `run_until` (see [`TestApp::stop`]).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Who calls: a token and the scope headers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: Option<String>,
    pub tenant: Option<String>,
    pub env: Option<String>,
}

/// Rows and objects, to prove a refused request wrote nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Footprint {
    pub blobs: u64,
    pub assets: u64,
    pub artifacts: u64,
    pub events: u64,
    pub objects: usize,
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// `sqlite` (default) or `postgres`: the catalog of this run.
pub fn backend() -> String {
    std::env::var("CAIRN_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// `local` (default) or `s3`: the S3-compatible server scripts/test.sh started, reached through
/// the standard AWS variables it exports.
pub fn storage() -> String {
    std::env::var("CAIRN_TEST_STORAGE").unwrap_or_else(|_| "local".into())
}

pub async fn s3_client() -> aws_sdk_s3::Client {
    let sdk = aws_config::load_from_env().await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A fresh bucket for one test.
async fn s3_bucket() -> String {
    let name = format!("ct-{}", uuid::Uuid::now_v7().simple());
    s3_client()
        .await
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create test bucket {name}: {e:?}"));
    name
}

/// A fresh, empty Postgres database for one test.
async fn postgres_database() -> String {
    let admin = std::env::var("CAIRN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("cairn_test_{}", uuid::Uuid::now_v7().simple());
    let db = Database::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("CAIRN_TEST_POSTGRES_URL={admin} is unreachable: {e}"));
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    db.close().await.ok();
    let (base, _) = admin.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{name}")
}

/// For a test that only means something on one backend: it is `#[ignore]`d, and
/// scripts/test.sh selects it by name on the runs of that backend (`SELECTED_*` there). Run
/// anywhere else it fails, rather than pass without testing. `catalog`: `None` for any.
pub fn require_backend(catalog: Option<&str>, storage_: &str) {
    let (b, s) = (backend(), storage());
    assert!(
        catalog.is_none_or(|c| c == b) && s == storage_,
        "this test runs on CAIRN_TEST_BACKEND={} and CAIRN_TEST_STORAGE={storage_} only \
         (this run: {b} and {s}); scripts/test.sh selects it there",
        catalog.unwrap_or("any")
    );
}

/// The value of `var`, which names a tool a test needs (moto's endpoint, Chromium): such tests are
/// `#[ignore]`d and selected by name by scripts/test.sh once it has started the tool, so a missing
/// one is a failure, never a silent pass.
pub fn required_tool(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{what} is missing ({var} is not set): run this test through scripts/test.sh, which starts it"),
    }
}

/// A fresh, empty Postgres database, for processes a test starts itself: its URL.
pub async fn new_postgres_database() -> String {
    postgres_database().await
}

/// A fresh bucket, for processes a test starts itself.
pub async fn new_s3_bucket() -> String {
    s3_bucket().await
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with the default test settings changed by `change`.
    pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend().as_str() {
            "sqlite" => None,
            "postgres" => Some(postgres_database().await),
            other => panic!("unknown CAIRN_TEST_BACKEND={other}"),
        };
        let bucket = match storage().as_str() {
            "local" => None,
            "s3" => Some(s3_bucket().await),
            other => panic!("unknown CAIRN_TEST_STORAGE={other}"),
        };
        let data_dir = dir.path().to_str().unwrap();
        let mut settings = Settings::from_vars([
            ("CAIRN_STORAGE", "local"),
            ("CAIRN_DATA_DIR", data_dir),
            ("CAIRN_LISTEN", "127.0.0.1:0"),
            ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
            ("CAIRN_JWT_SECRET", SECRET),
            // Tests run sweeps themselves, with an injected clock; no schedule fires meanwhile.
            ("CAIRN_JOBS", "off"),
            // Tests record the usage counted on reads themselves (`Core::flush_usage`).
            ("CAIRN_USAGE_FLUSH_SECS", "3600"),
            ("CAIRN_METRICS_TOKEN", METRICS_TOKEN),
        ])
        .expect("valid test settings");
        if let Some(url) = &database_url {
            settings.set("DATABASE_URL", url);
        }
        if let Some(bucket) = &bucket {
            settings.set("CAIRN_STORAGE", "s3");
            settings.set("RAW_BUCKET", bucket);
            settings.set("CAIRN_S3_FORCE_PATH_STYLE", "true");
            if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_S3") {
                settings.set("AWS_ENDPOINT_URL_S3", &url);
            }
            settings.set(
                "CAIRN_S3_CONDITIONAL_WRITES",
                &std::env::var("CAIRN_TEST_S3_CONDITIONAL_WRITES")
                    .unwrap_or_else(|_| "true".into()),
            );
        }
        change(&mut settings);
        let config = Config::from_settings(&settings).expect("valid test config");
        let app = Application::build(config).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Serves until `stop` is called (dropping the sender does not stop it).
        let server = tokio::spawn(app.run_until(async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        Self {
            bucket,
            base,
            client: reqwest::Client::new(),
            state,
            data_dir: dir.path().to_owned(),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        }
    }

    /// Stops the server as a shutdown signal does: in-flight requests finish, then `run_until`
    /// returns (and closes `state.db`: reconnect with `cairn::connect(&app.state.config)`).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn claims(&self, sub: &str, tenants: &[(&str, Role)], exp_in: i64) -> Claims {
        Claims {
            sub: sub.into(),
            exp: chrono::Utc::now().timestamp() + exp_in,
            iat: None,
            iss: None,
            aud: None,
            tenants: tenants
                .iter()
                .map(|(t, r)| (t.to_string(), *r))
                .collect::<BTreeMap<_, _>>(),
            operator: false,
        }
    }

    /// Writes `bytes` straight to the app's store under `key`, bypassing the catalog (an orphan,
    /// a CloudFront log file, an object a test gives a blob row itself).
    pub async fn put_object(
        &self,
        key: &cairn::domain::ObjectKey,
        content_type: &str,
        cache_control: &str,
        bytes: Vec<u8>,
    ) {
        let ct = cairn::domain::ContentType::parse(content_type).unwrap();
        let spec = cairn::storage::UploadSpec {
            key,
            content_type: &ct,
            size: cairn::domain::SizeBytes::new_unchecked(bytes.len() as u64),
            sha256: None,
            cache_control,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        };
        let body = futures_util::stream::once(async move { Ok(bytes::Bytes::from(bytes)) });
        self.state
            .store
            .put_stream(&spec, Box::pin(body))
            .await
            .unwrap();
    }

    /// A token with `operator: true` and no tenant memberships.
    pub fn operator_token(&self) -> String {
        let mut c = self.claims("ops", &[], 3600);
        c.operator = true;
        mint(&self.state.config.jwt, &c).unwrap()
    }

    pub fn token(&self, sub: &str, tenants: &[(&str, Role)]) -> String {
        mint(&self.state.config.jwt, &self.claims(sub, tenants, 3600)).unwrap()
    }

    /// An owner of `tenant`, in env `env`.
    pub fn owner(&self, tenant: &str, env: &str) -> Caller {
        self.caller(&[(tenant, Role::Owner)], tenant, env)
    }

    pub fn caller(&self, tenants: &[(&str, Role)], tenant: &str, env: &str) -> Caller {
        Caller {
            token: Some(self.token("alice", tenants)),
            tenant: Some(tenant.into()),
            env: Some(env.into()),
        }
    }

    pub fn request(&self, who: &Caller, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &who.token {
            r = r.bearer_auth(t);
        }
        if let Some(t) = &who.tenant {
            r = r.header("x-tenant-id", t);
        }
        if let Some(e) = &who.env {
            r = r.header("x-env", e);
        }
        r
    }

    pub async fn post(&self, who: &Caller, path: &str, body: &Value) -> Response {
        self.request(who, Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, who: &Caller, path: &str, body: &Value) -> Response {
        self.request(who, Method::PUT, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /artifacts` with `run_id` r1, kind and content type from `ct`, and `extra` fields
    /// merged over the defaults; returns the response.
    pub async fn create_artifact(
        &self,
        who: &Caller,
        ct: &str,
        bytes: &[u8],
        extra: Value,
    ) -> Response {
        let mut body = json!({
            "run_id": "r1",
            "kind": kind_of(ct),
            "filename": format!("item.{}", ct.rsplit('/').next().unwrap()),
            "content_type": ct,
            "size_bytes": bytes.len(),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(who, "/artifacts", &body).await
    }

    /// Creates an artifact and streams `bytes` through `PUT /artifacts/{id}/content`; returns
    /// the available artifact.
    pub async fn stream_artifact(
        &self,
        who: &Caller,
        ct: &str,
        bytes: &[u8],
        extra: Value,
    ) -> Value {
        let res = self.create_artifact(who, ct, bytes, extra).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        let created: Value = res.json().await.unwrap();
        let id = created["artifact"]["artifact_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = self.put_content(who, &id, bytes).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        let a: Value = res.json().await.unwrap();
        assert_eq!(a["status"], "available");
        a
    }

    pub async fn put_content(&self, who: &Caller, id: &str, bytes: &[u8]) -> Response {
        self.request(who, Method::PUT, &format!("/artifacts/{id}/content"))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, who: &Caller, path: &str) -> Response {
        self.request(who, Method::GET, path).send().await.unwrap()
    }

    pub async fn presign(
        &self,
        who: &Caller,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Value {
        let res = self
            .post(
                who,
                "/storage/raw/presign-upload",
                &json!({"filename": filename, "content_type": content_type, "size_bytes": bytes.len()}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "presign failed");
        res.json().await.unwrap()
    }

    /// PUTs `bytes` to a presigned upload as the response's `upload.headers` say.
    pub async fn put_upload(&self, presigned: &Value, bytes: &[u8]) -> Response {
        let upload = &presigned["upload"];
        assert_eq!(upload["method"], "PUT");
        let mut r = self.client.put(upload["url"].as_str().unwrap());
        for (k, v) in upload["headers"].as_object().unwrap() {
            if k != "content-length" {
                r = r.header(k, v.as_str().unwrap());
            }
        }
        r.body(bytes.to_vec()).send().await.unwrap()
    }

    pub async fn register(
        &self,
        who: &Caller,
        asset_id: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Response {
        self.post(
            who,
            "/storage/raw/register",
            &json!({"asset_id": asset_id, "sha256": sha256_hex(bytes), "size_bytes": bytes.len(), "content_type": content_type}),
        )
        .await
    }

    /// Presign, upload and register `bytes`; returns the registered asset.
    pub async fn store(&self, who: &Caller, filename: &str, bytes: &[u8]) -> Value {
        let p = self
            .presign(who, filename, "application/octet-stream", bytes)
            .await;
        assert_eq!(self.put_upload(&p, bytes).await.status(), StatusCode::OK);
        let res = self
            .register(
                who,
                p["asset_id"].as_str().unwrap(),
                bytes,
                "application/octet-stream",
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn download_url(&self, who: &Caller, asset_id: &str) -> String {
        let res = self
            .post(
                who,
                "/storage/raw/presign-download",
                &json!({ "asset_id": asset_id }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        v["url"].as_str().unwrap().to_owned()
    }

    pub fn conditional_writes(&self) -> bool {
        match &self.state.config.storage {
            cairn::config::StorageConfig::S3(s3) => s3.conditional_writes,
            cairn::config::StorageConfig::Local { .. } => true,
        }
    }

    pub fn is_s3(&self) -> bool {
        self.bucket.is_some()
    }

    /// The query parameter of an upload or download URL that carries `what` (`signature`,
    /// `expiry`, `filename`), by backend.
    pub fn url_param(&self, what: &str) -> &'static str {
        match (self.is_s3(), what) {
            (false, "signature") => "sig",
            (false, "expiry") => "exp",
            (false, "filename") => "filename",
            (true, "signature") => "X-Amz-Signature",
            (true, "expiry") => "X-Amz-Expires",
            (true, "filename") => "response-content-disposition",
            _ => panic!("no URL parameter for {what}"),
        }
    }

    /// Objects in the store.
    pub async fn object_count(&self) -> usize {
        match &self.bucket {
            None => walk(&self.data_dir.join("objects").join("objects"))
                .into_iter()
                .filter(|p| p.extension().is_none())
                .count(),
            Some(bucket) => {
                let out = s3_client()
                    .await
                    .list_objects_v2()
                    .bucket(bucket)
                    .send()
                    .await
                    .unwrap();
                out.key_count().unwrap_or(0) as usize
            }
        }
    }

    pub async fn footprint(&self) -> Footprint {
        let db = &self.state.db;
        let objects = self.object_count().await;
        Footprint {
            blobs: entity::blob::Entity::find().count(db).await.unwrap(),
            assets: entity::raw_asset::Entity::find().count(db).await.unwrap(),
            artifacts: entity::artifact::Entity::find().count(db).await.unwrap(),
            events: entity::dataset_event::Entity::find()
                .count(db)
                .await
                .unwrap(),
            objects,
        }
    }

    pub async fn events(&self) -> Vec<entity::dataset_event::Model> {
        entity::dataset_event::Entity::find()
            .all(&self.state.db)
            .await
            .unwrap()
    }
}

/// The artifact kind that holds `ct` in these tests.
pub fn kind_of(ct: &str) -> &'static str {
    match ct {
        "application/json" => "replay",
        "application/zip" | "text/html" => "bundle",
        c if c.starts_with("image/") => "image",
        c if c.starts_with("video/") => "video",
        c if c.starts_with("audio/") => "audio",
        _ => "bundle",
    }
}

/// `len` bytes (at least the signature) that really are of type `ct`, as far as Cairn checks.
pub fn sample(ct: &str, len: usize) -> Vec<u8> {
    let head: &[u8] = match ct {
        "image/png" => b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        "image/jpeg" => b"\xff\xd8\xff\xe0\0\x10JFIF\0",
        "image/gif" => b"GIF89a\x01\0\x01\0",
        "image/webp" => b"RIFF\x24\0\0\0WEBPVP8 ",
        "video/mp4" => b"\0\0\0\x18ftypmp42\0\0\0\0",
        "video/webm" => b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81",
        "audio/mpeg" => b"ID3\x04\0\0\0\0\0\0",
        "audio/wav" => b"RIFF\x24\0\0\0WAVEfmt ",
        "audio/ogg" => b"OggS\0\x02\0\0",
        "application/zip" => b"PK\x03\x04\x14\0\0\0",
        "application/json" => b"{\"k\": [1, 2, 3]}",
        _ => b"<!doctype html><p>hi</p>",
    };
    let mut out = head.to_vec();
    let mut i: u32 = 0;
    while out.len() < len {
        out.push((i.wrapping_mul(2654435761) >> 24) as u8);
        i += 1;
    }
    if ct == "application/json" && len > head.len() {
        // Keep JSON valid: pad with spaces.
        out.truncate(head.len());
        out.resize(len, b' ');
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Asserts a problem+json answer with `status` and `code`; returns its body.
pub async fn problem(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let header_trace = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert_eq!(ct, "application/problem+json", "body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], code, "body: {text}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["trace_id"].as_str(), header_trace.as_deref());
    body
}

/// Asserts that the object store refused a request to a presigned URL: Cairn's own `/o/` endpoint
/// with `local_status` and `local_code`; an S3 store with its own 4xx (stores differ: Garage
/// answers an expired URL with 400, AWS with 403).
pub async fn refused_by_store(
    app: &TestApp,
    res: Response,
    local_status: StatusCode,
    local_code: &str,
) {
    if app.is_s3() {
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(
            status.is_client_error(),
            "the store accepted it: {status} {text}"
        );
    } else {
        problem(res, local_status, local_code).await;
    }
}
