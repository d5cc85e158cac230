//! `GET /admin/usage` with 1,000,000 assets across 1,000 tenants: the answer from the exact
//! counters (what Cairn serves) against a full recount of the catalog (what it would cost
//! without counters), in one run. Target: under 20 ms for the counters.
//!
//! Seeding (not measured): N registered raw assets (`CAIRN_BENCH_USAGE_ASSETS`, 1,000,000 by
//! default) spread over T tenants (`CAIRN_BENCH_USAGE_TENANTS`, 1,000) and the three envs, each
//! on its own `stored` blob, inserted straight into the catalog; the counters are then built by
//! the reconcile step from a recount (the path an upgraded catalog takes), which also checks
//! the two agree. Then the server answers `GET /admin/usage` (all rows, JSON) and
//! `?tenant=` (one tenant) R times each (`CAIRN_BENCH_USAGE_ROUNDS`, 200) over HTTP on loopback,
//! and the recount runs a few times. Prints p50/p99/mean per case.
//!
//! SQLite in a temp dir by default; `CAIRN_BENCH_DATABASE_URL=postgres://...` (an empty database)
//! runs it on Postgres.
use std::time::{Duration, Instant};

use cairn::{
    auth::{mint, Claims},
    config::{Config, Settings},
    metering::reconcile,
    Application,
};
use chrono::Utc;
use entity::{blob, raw_asset};
use sea_orm::{EntityTrait, Set, TransactionTrait};
use serde_json::Value;
use uuid::Uuid;

const ENVS: [&str; 3] = ["dev", "staging", "prod"];
/// Rows per INSERT: 20-odd columns × 1,000 stays under SQLite's bind parameter limit.
const INSERT_CHUNK: usize = 1_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean: v.iter().sum::<Duration>() / v.len() as u32,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let assets = env_u64("CAIRN_BENCH_USAGE_ASSETS", 1_000_000);
    let tenants = env_u64("CAIRN_BENCH_USAGE_TENANTS", 1_000).max(1);
    let rounds = env_u64("CAIRN_BENCH_USAGE_ROUNDS", 200).max(1);
    let dir = tempfile::tempdir().unwrap();
    let envs = ENVS.join(",");
    let mut settings = Settings::from_vars([
        ("CAIRN_STORAGE", "local"),
        ("CAIRN_DATA_DIR", dir.path().to_str().unwrap()),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
        (
            "CAIRN_JWT_SECRET",
            "bench-secret-0123456789abcdef0123456789",
        ),
        ("CAIRN_ENVS", &envs),
        ("CAIRN_JOBS", "off"),
    ])
    .unwrap();
    if let Some(url) = std::env::var("CAIRN_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        settings.set("DATABASE_URL", &url);
    }
    let config = Config::from_settings(&settings).unwrap();
    let backend = if config.database_url.expose().starts_with("postgres") {
        "Postgres"
    } else {
        "SQLite"
    };
    let claims = Claims {
        sub: "bench-operator".into(),
        exp: Utc::now().timestamp() + 3600,
        iat: None,
        iss: None,
        aud: None,
        tenants: Default::default(),
        operator: true,
    };
    let token = mint(&config.jwt, &claims).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));
    let db = state.db.clone();

    println!(
        "usage bench: {assets} registered assets across {tenants} tenants x {} envs, {backend}",
        ENVS.len()
    );
    let t = Instant::now();
    seed(&db, assets, tenants).await;
    println!("seeded the catalog in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let built = reconcile::reconcile(&db, true, Utc::now()).await.unwrap();
    println!(
        "counters built from a recount in {:.1} s ({} counter values set)",
        t.elapsed().as_secs_f64(),
        built.len()
    );
    let check = reconcile::reconcile(&db, false, Utc::now()).await.unwrap();
    assert!(check.is_empty(), "counters and recount agree: {check:?}");

    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
    };
    // Warm up (connections, statement caches), and check the answer's size.
    let v: Value = get("/admin/usage".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["usage"].as_array().unwrap().len();
    let objects: i64 = v["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["objects"].as_i64().unwrap())
        .sum();
    assert_eq!(
        objects as u64, assets,
        "the counters account for every asset"
    );
    for _ in 0..10 {
        get("/admin/usage".into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }

    let mut all = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let res = get("/admin/usage".into()).await.unwrap();
        assert!(res.status().is_success());
        res.bytes().await.unwrap();
        all.push(t.elapsed());
    }
    let mut one = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let res = get(format!("/admin/usage?tenant=t{:04}", i % tenants))
            .await
            .unwrap();
        assert!(res.status().is_success());
        res.bytes().await.unwrap();
        one.push(t.elapsed());
    }
    let mut recount = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = reconcile::recount(&db).await.unwrap();
        assert_eq!(r.len(), rows);
        recount.push(t.elapsed());
    }
    let (all, one, recount) = (stats(all), stats(one), stats(recount));
    println!();
    println!("{:<44} {:>10} {:>10} {:>10}", "case", "p50", "p99", "mean");
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        format!("GET /admin/usage, counters ({rows} rows)"),
        ms(all.p50),
        ms(all.p99),
        ms(all.mean)
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "GET /admin/usage?tenant=, counters",
        ms(one.p50),
        ms(one.p99),
        ms(one.mean)
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        format!("full recount ({assets} assets)"),
        ms(recount.p50),
        ms(recount.p99),
        ms(recount.mean)
    );
    println!();
    println!(
        "counters vs recount (p50): {:.0}x faster; target < 20 ms for the counters: {}",
        recount.p50.as_secs_f64() / all.p50.as_secs_f64(),
        if all.p99 < Duration::from_millis(20) {
            "met (p99)"
        } else if all.p50 < Duration::from_millis(20) {
            "met at p50, not at p99"
        } else {
            "MISSED"
        }
    );
}

/// N registered raw assets, each on its own stored blob, spread round-robin over tenants and envs.
async fn seed(db: &sea_orm::DatabaseConnection, assets: u64, tenants: u64) {
    let now = Utc::now();
    let mut i = 0u64;
    while i < assets {
        let n = (assets - i).min(INSERT_CHUNK as u64);
        let mut blobs = Vec::with_capacity(n as usize);
        let mut rows = Vec::with_capacity(n as usize);
        for j in i..i + n {
            let tenant = format!("t{:04}", j % tenants);
            let env = ENVS[((j / tenants) % ENVS.len() as u64) as usize];
            let blob_id = Uuid::now_v7();
            let asset_id = Uuid::now_v7();
            let key = format!("tenants/{tenant}/{env}/raw/{asset_id}/f.bin");
            let size = 1_000 + (j % 9_000) as i64;
            let sha = format!("{:064x}", j);
            blobs.push(blob::ActiveModel {
                id: Set(blob_id),
                tenant_id: Set(tenant.clone()),
                env: Set(env.to_owned()),
                visibility: Set(blob::VISIBILITY_PRIVATE.into()),
                key: Set(key.clone()),
                sha256: Set(Some(sha.clone())),
                size_bytes: Set(size),
                content_type: Set("application/octet-stream".into()),
                state: Set(blob::STATE_STORED.into()),
                ref_count: Set(1),
                upload_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            });
            rows.push(raw_asset::ActiveModel {
                asset_id: Set(asset_id),
                tenant_id: Set(tenant),
                env: Set(env.to_owned()),
                uri: Set(format!("local:///{key}")),
                blob_id: Set(blob_id),
                filename: Set("f.bin".into()),
                sha256: Set(Some(sha)),
                size_bytes: Set(size),
                content_type: Set("application/octet-stream".into()),
                captured_at: Set(None),
                imported_at: Set(Some(now)),
                source_ref: Set(None),
                capture_location: Set(None),
                metadata: Set(serde_json::json!({})),
                pii_flags: Set(serde_json::json!([])),
                train_ok: Set(false),
                status: Set(raw_asset::STATUS_REGISTERED.into()),
                sealed: Set(true),
                created_by: Set("bench".into()),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
        let txn = db.begin().await.unwrap();
        blob::Entity::insert_many(blobs).exec(&txn).await.unwrap();
        raw_asset::Entity::insert_many(rows)
            .exec(&txn)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        i += n;
        if i % 100_000 == 0 {
            eprintln!("  seeded {i} assets");
        }
    }
}
