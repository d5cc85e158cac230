//! Delivery speed, per core: presigned S3 GET URLs, CloudFront signed URLs (RSA-2048 and ECDSA
//! P-256, one signature per URL), and the latency of a 1,000-item private run manifest, which
//! signs one CloudFront policy for the whole run, next to the cost of signing each URL alone.
//!
//! Run: `cargo bench --bench delivery`. Prints its figures; asserts nothing. The manifest part
//! starts Cairn in-process (SQLite + local store in a temp dir, CloudFront keys from
//! `tests/fixtures/cloudfront/`) and talks HTTP to it on loopback.
use std::time::{Duration, Instant};

use aws_sdk_s3::{
    config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider},
    Client,
};
use cairn::{
    auth::{mint, Claims, Role},
    cdn::signer::{HashAlgorithm, Signer, SigningKey},
    config::{Config, Settings},
    domain::{Filename, ObjectKey},
    storage::{
        s3::{Endpoint, S3Store},
        ObjectStore,
    },
    Application,
};
use serde_json::{json, Value};

const N: u32 = 5_000;
const ITEMS: usize = 1_000;
const ROUNDS: usize = 200;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/cloudfront/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn rate(name: &str, n: u32, elapsed: Duration) -> f64 {
    let per = elapsed.as_secs_f64() / n as f64;
    println!(
        "{name:<44} {:>9.2} µs/URL {:>10.0} URLs/s",
        per * 1e6,
        1.0 / per
    );
    per
}

fn signer(file: &str, hash: HashAlgorithm) -> Signer {
    let pem = std::fs::read(fixture(file)).unwrap();
    let key = SigningKey::from_pem("KBENCH", &pem, chrono::DateTime::UNIX_EPOCH).unwrap();
    Signer::new(vec![key], hash).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let key =
        ObjectKey::parse("tenants/acme/prod/runs/run-1/image/0192f0a0-aaaa/frame 001.png").unwrap();
    let filename = Filename::parse("frame 001.png").unwrap();
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::hours(1);
    println!("signing {N} URLs per case (one thread)");

    // S3 presigned GET, as Cairn issues it (with the download name).
    let creds = Credentials::new("GKBENCHKEY", "bench-secret", None, None, "bench");
    let endpoint = "http://127.0.0.1:3900";
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(creds.clone())
        .build();
    let store = S3Store::new(
        Client::from_conf(conf),
        "bucket".into(),
        SharedCredentialsProvider::new(creds),
        "garage",
        Endpoint::parse(Some(endpoint), "garage", true).unwrap(),
        false,
        8 << 20,
    );
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(
            store
                .presign_download(&key, &filename, true, expires)
                .await
                .unwrap(),
        );
    }
    rate("S3 presigned GET (SigV4)", N, start.elapsed());

    let url = format!("https://d111111abcdef8.cloudfront.net/{}", key.url_path());
    let mut per_url = Vec::new();
    for (name, file, hash) in [
        (
            "CloudFront canned URL, RSA-2048 SHA-256",
            "rsa-2048.pem",
            HashAlgorithm::Sha256,
        ),
        (
            "CloudFront canned URL, RSA-2048 SHA-1",
            "rsa-2048.pem",
            HashAlgorithm::Sha1,
        ),
        (
            "CloudFront canned URL, ECDSA P-256 SHA-256",
            "ecdsa-p256.pem",
            HashAlgorithm::Sha256,
        ),
        (
            "CloudFront canned URL, ECDSA P-256 SHA-1",
            "ecdsa-p256.pem",
            HashAlgorithm::Sha1,
        ),
    ] {
        let s = signer(file, hash);
        let n = N / 5;
        let start = Instant::now();
        for _ in 0..n {
            let signed = s.sign_canned(&url, expires.timestamp(), now).unwrap();
            std::hint::black_box(signed.apply(&url));
        }
        per_url.push((name, rate(name, n, start.elapsed())));
    }

    // The manifest: Cairn in-process with CloudFront keys, 1,000 private items in one run.
    for (label, file) in [
        ("RSA-2048", "rsa-2048.pem"),
        ("ECDSA P-256", "ecdsa-p256.pem"),
    ] {
        manifest(label, file, &per_url).await;
    }
}

async fn manifest(label: &str, key_file: &str, per_url: &[(&str, f64)]) {
    let dir = tempfile::tempdir().unwrap();
    let key = fixture(key_file);
    let mut settings = Settings::from_vars([
        ("CAIRN_STORAGE", "local"),
        ("CAIRN_DATA_DIR", dir.path().to_str().unwrap()),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
        (
            "CAIRN_JWT_SECRET",
            "bench-secret-0123456789abcdef0123456789",
        ),
        ("CAIRN_ENVS", "dev"),
        ("CAIRN_CDN_DOMAIN", "d111111abcdef8.cloudfront.net"),
        ("CAIRN_CLOUDFRONT_KEY_PAIR_ID", "KBENCH"),
        ("CAIRN_CLOUDFRONT_PRIVATE_KEY", &key),
    ])
    .unwrap();
    // `CAIRN_BENCH_DATABASE_URL=postgres://...` measures on Postgres (an empty database).
    if let Ok(url) = std::env::var("CAIRN_BENCH_DATABASE_URL") {
        settings.set("DATABASE_URL", &url);
    }
    let config = Config::from_settings(&settings).unwrap();
    let claims = Claims {
        sub: "bench".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        iat: None,
        iss: None,
        aud: None,
        tenants: [("acme".to_owned(), Role::Owner)].into_iter().collect(),
        operator: false,
    };
    let token = mint(&config.jwt, &claims).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let req = |m: reqwest::Method, path: &str| {
        client
            .request(m, format!("{base}{path}"))
            .bearer_auth(&token)
            .header("x-tenant-id", "acme")
            .header("x-env", "dev")
    };
    // One run per key type, so that both can share a database (Postgres).
    let run_id = if label.starts_with("RSA") {
        "run-rsa"
    } else {
        "run-ecdsa"
    };
    let start = Instant::now();
    for i in 0..ITEMS {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(format!("{run_id} item {i}").as_bytes());
        let created: Value = req(reqwest::Method::POST, "/artifacts")
            .json(
                &json!({"run_id": run_id, "kind": "image", "filename": format!("frame-{i:04}.png"),
                          "content_type": "image/png", "size_bytes": bytes.len()}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["artifact"]["artifact_id"].as_str().unwrap();
        let res = req(reqwest::Method::PUT, &format!("/artifacts/{id}/content"))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    println!(
        "\nmanifest, {label}: seeded {ITEMS} private items in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let signer = state.cdn.signer().unwrap();
    let ops_before = signer.signing_ops();
    let mut lat = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let body = req(reqwest::Method::GET, &format!("/runs/{run_id}/artifacts"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = body.len();
    }
    let ops = signer.signing_ops() - ops_before;
    // The same manifest in-process, without HTTP and JSON: the catalog read and the URLs.
    let scope = cairn::auth::Scope::system("acme", "dev", "bench").unwrap();
    let run = cairn::domain::RunId::parse(run_id).unwrap();
    let mut inner = Vec::with_capacity(ROUNDS);
    let mut json_ms = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let ttl = cairn::domain::artifacts::url_ttl(&state, None);
        let items = cairn::domain::artifacts::manifest(&state, &scope, &run, ttl)
            .await
            .unwrap();
        inner.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let views: Vec<_> = items
            .into_iter()
            .map(|(a, url)| cairn::http::artifacts::ArtifactView::listed(a, &scope, run_id, url))
            .collect();
        std::hint::black_box(serde_json::to_vec(&views).unwrap());
        json_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut rows_ms = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let t = Instant::now();
        let rows = entity::artifact::Entity::find()
            .filter(entity::artifact::Column::RunId.eq(run_id))
            .all(&state.db)
            .await
            .unwrap();
        std::hint::black_box(rows);
        rows_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    rows_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  (reading the {ITEMS} artifact rows alone: p50 {:.2} ms)",
        percentile(&rows_ms, 0.5)
    );
    {
        let cdn = &state.cdn;
        let now = chrono::Utc::now();
        let grant = cdn
            .sign_prefix(
                "tenants/acme/dev/runs/x/",
                now + chrono::Duration::hours(1),
                now,
            )
            .unwrap()
            .unwrap();
        let key =
            ObjectKey::parse("tenants/acme/dev/runs/x/image/0192f0a0-aaaa/frame-0001.png").unwrap();
        let name = Filename::parse("frame-0001.png").unwrap();
        let d = cairn::cdn::Download {
            filename: &name,
            content_type: "image/png",
            attachment: false,
        };
        let t = Instant::now();
        for _ in 0..ITEMS {
            std::hint::black_box(grant.url(cdn, &key, &d));
        }
        println!(
            "  (building {ITEMS} URLs from one signed policy: {:.2} ms)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    inner.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "GET /runs/{run_id}/artifacts ({ITEMS} private, {} KiB): p50 {:.2} ms, p99 {:.2} ms, {} signing op(s) per manifest",
        bytes / 1024,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        ops / ROUNDS as u64
    );
    println!(
        "  of which: catalog read + URLs p50 {:.2} ms, JSON p50 {:.2} ms (in-process)",
        percentile(&inner, 0.5),
        percentile(&json_ms, 0.5)
    );
    for (name, per) in per_url.iter().filter(|(n, _)| n.contains(label)) {
        println!(
            "  signing each of the {ITEMS} URLs separately instead ({name}): +{:.1} ms",
            per * ITEMS as f64 * 1e3
        );
    }
}
