//! The operator dashboard in a real browser: headless Chromium (Debian `chromium`) driven by
//! Playwright (`tests/browser/dashboard.mjs`) signs in with an operator token, finds a seeded
//! tenant's row and its daily chart, and saves a screenshot. `scripts/test.sh` installs both and
//! sets `CAIRN_TEST_CHROMIUM`; without it this test says so and does nothing (CI requires it).
use std::process::Command;

use cairn::{
    jobs::{self, Trigger},
    lifecycle::SweepOptions,
    metering::RunOptions,
};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{sample, TestApp};

#[tokio::test]
#[ignore = "needs Chromium: scripts/test.sh selects it on every backend once Chromium is installed"]
async fn an_operator_signs_in_and_sees_a_tenant_row_and_chart_in_chromium() {
    let chromium = crate::helpers::required_tool("CAIRN_TEST_CHROMIUM", "Chromium");
    let dir = crate::helpers::required_tool("CAIRN_TEST_BROWSER_DIR", "Playwright (tests/browser)");
    let app = TestApp::spawn().await;
    // A seeded tenant: three images (one a duplicate), a raw asset, a download URL handed out and
    // fetched, a quota, a metering sample and a lifecycle run that removes an abandoned upload's
    // bytes (16) and a presign whose bytes never came (5000 declared, nothing stored).
    let who = app.owner("seeded-co", "prod");
    let mut first = None;
    for seed in [1u8, 2, 1] {
        let mut png = sample("image/png", 4000);
        let last = png.len() - 1;
        png[last] = seed;
        let a = app
            .stream_artifact(&who, "image/png", &png, json!({}))
            .await;
        first.get_or_insert(a);
    }
    app.store(&who, "capture.bin", b"capture bytes").await;
    let id = first.unwrap()["artifact_id"].as_str().unwrap().to_owned();
    let read: serde_json::Value = app
        .get(&who, &format!("/artifacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let fetched = app
        .client
        .get(read["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().len(), 4000);
    // Served by Cairn on the local store (`/o/`); by the store itself behind a presigned URL.
    let served_bytes = if app.is_s3() { 0 } else { 4000 };
    app.state.flush_usage().await.unwrap();
    let small = app.owner("small-co", "dev");
    app.store(&small, "one.bin", b"x").await;
    let p = app
        .presign(
            &small,
            "left.bin",
            "application/octet-stream",
            b"never registered",
        )
        .await;
    assert_eq!(
        app.put_upload(&p, b"never registered").await.status(),
        StatusCode::OK
    );
    let res = app
        .post(
            &small,
            "/storage/raw/presign-upload",
            &json!({"filename": "never.bin", "content_type": "application/octet-stream",
                    "size_bytes": 5000}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let operator = app.operator_token();
    let res = app
        .client
        .put(format!("{}/admin/tenants/seeded-co/quota", app.base))
        .bearer_auth(&operator)
        .json(&json!({ "max_bytes": 20000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    jobs::metering::run(
        &app.state.metering,
        Trigger::Api,
        RunOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    jobs::lifecycle::run(
        &app.state.lifecycle,
        Trigger::Api,
        &SweepOptions::default(),
        Utc::now() + chrono::Duration::hours(25),
    )
    .await
    .unwrap();
    let member = app.token("bob", &[("seeded-co", cairn::auth::Role::Owner)]);

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(format!(
        "dashboard-{}-{}.png",
        std::env::var("CAIRN_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into()),
        crate::helpers::storage()
    ));
    let _ = std::fs::remove_file(&shot);
    let out = tokio::task::spawn_blocking({
        let (base, shot) = (app.base.clone(), shot.clone());
        move || {
            Command::new("node")
                .arg(format!("{dir}/dashboard.mjs"))
                .env("CAIRN_URL", base)
                .env("CAIRN_OPERATOR_TOKEN", operator)
                .env("CAIRN_NON_OPERATOR_TOKEN", member)
                .env("CAIRN_EXPECT_TENANT", "seeded-co")
                .env("CAIRN_EXPECT_OBJECTS", "4")
                .env("CAIRN_EXPECT_DOWNLOAD_URLS", "1")
                .env("CAIRN_EXPECT_SERVED_BYTES", served_bytes.to_string())
                .env("CAIRN_EXPECT_RECLAIMED", "16")
                .env("CAIRN_SCREENSHOT", &shot)
                .env("CAIRN_TEST_CHROMIUM", chromium)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    let png = std::fs::read(&shot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    eprintln!("{stdout}screenshot: {}", shot.display());
}
