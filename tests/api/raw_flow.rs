//! The raw-asset flow end to end: presign → upload → register → metadata → download.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, refused_by_store, sha256_hex, TestApp};

#[tokio::test]
async fn put_flow_end_to_end() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"the quick brown fox".to_vec();

    let p = app.presign(&acme, "fox.txt", "text/plain", &bytes).await;
    let id = p["asset_id"].as_str().unwrap().to_owned();
    assert_eq!(p["key"], format!("tenants/acme/dev/raw/{id}/fox.txt"));
    assert_eq!(p["upload"]["headers"]["content-type"], "text/plain");
    assert_eq!(
        p["upload"]["headers"]["content-length"],
        bytes.len().to_string()
    );
    assert!(p["expires_at"].is_string());

    let meta: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["status"], "pending");

    let put = app.put_upload(&p, &bytes).await;
    assert_eq!(put.status(), StatusCode::OK);
    if !app.is_s3() {
        // S3 ETags are MD5s; Cairn's own endpoint answers the SHA-256.
        assert_eq!(put.headers()["etag"], format!("\"{}\"", sha256_hex(&bytes)));
    }

    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &json!({
                "asset_id": id, "sha256": sha256_hex(&bytes), "size_bytes": bytes.len(),
                "content_type": "text/plain", "captured_at": "2026-01-02T03:04:05.123456789Z",
                "source_ref": "camera-7", "capture_location": {"lat": 48.858370, "lon": 2.294481},
                "metadata": {"lens": "35mm"}, "pii_flags": ["face"], "train_ok": true
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["status"], "registered");
    assert_eq!(reg["sha256"], sha256_hex(&bytes));
    assert_eq!(
        reg["capture_location"],
        json!({"lat": 48.86, "lon": 2.29}),
        "finer positions are rounded"
    );
    assert_eq!(reg["train_ok"], true);
    assert_eq!(reg["created_by"], "alice");

    let meta: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta, reg);

    let url = app.download_url(&acme, &id).await;
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/plain");
    // text/plain is not display-only: shown where Cairn serves it sandboxed (the local store's
    // /o/), saved where S3 serves it as stored (DESIGN §6).
    let shown = if app.is_s3() { "attachment" } else { "inline" };
    assert_eq!(
        res.headers()["content-disposition"],
        format!("{shown}; filename=\"fox.txt\"; filename*=UTF-8''fox.txt").as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        kinds,
        [
            "raw.upload_presigned",
            "raw.registered",
            "raw.download_presigned"
        ]
    );
    let ev = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "raw.registered")
        .unwrap();
    assert_eq!(
        (ev.tenant_id.as_str(), ev.env.as_str(), ev.user_id.as_str()),
        ("acme", "dev", "alice")
    );
    assert_eq!(ev.pii_flags, json!(["face"]));
    assert_eq!(ev.train_ok, Some(true));
    assert_eq!(ev.lineage["source_ref"], "camera-7");
    assert!(!ev.trace_id.is_empty());
}

#[tokio::test]
async fn post_form_flow_and_nexus_alias() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"<svg/>".to_vec();
    let res = app
        .post(
            &acme,
            "/nexus/raw/presign-upload",
            &json!({"filename": "a.svg", "content_type": "image/svg+xml", "size_bytes": bytes.len(), "method": "POST"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["upload"]["method"], "POST");
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in p["upload"]["fields"].as_object().unwrap() {
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes.clone()).file_name("a.svg"),
    );
    let res = app
        .client
        .post(p["upload"]["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let id = p["asset_id"].as_str().unwrap();
    let res = app.register(&acme, id, &bytes, "image/svg+xml").await;
    assert_eq!(res.status(), StatusCode::OK);
    let got: Value = app
        .get(&acme, &format!("/nexus/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "registered");
}

#[tokio::test]
async fn registering_again_is_idempotent_and_different_facts_conflict() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"immutable".to_vec();
    let asset = app.store(&acme, "i.bin", &bytes).await;
    let id = asset["asset_id"].as_str().unwrap();

    let again = app
        .register(&acme, id, &bytes, "application/octet-stream")
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), asset);

    let before = app.footprint().await;
    let other_sha = app
        .register(&acme, id, b"something else", "application/octet-stream")
        .await;
    problem(other_sha, StatusCode::CONFLICT, "asset_conflict").await;
    let other_type = app.register(&acme, id, &bytes, "text/plain").await;
    problem(other_type, StatusCode::CONFLICT, "asset_conflict").await;
    let other_meta = app
        .post(
            &acme,
            "/storage/raw/register",
            &json!({"asset_id": id, "sha256": sha256_hex(&bytes), "size_bytes": bytes.len(),
                    "content_type": "application/octet-stream", "metadata": {"changed": true}}),
        )
        .await;
    problem(other_meta, StatusCode::CONFLICT, "asset_conflict").await;
    assert_eq!(
        app.footprint().await,
        before,
        "a refused re-registration wrote something"
    );
    let meta: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta, asset);
}

#[tokio::test]
async fn checksum_mismatch_fails_the_asset_and_removes_the_object() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"real bytes".to_vec();
    let p = app
        .presign(&acme, "r.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    let id = p["asset_id"].as_str().unwrap();
    let claimed = b"other bytes".to_vec();
    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &json!({"asset_id": id, "sha256": sha256_hex(&claimed), "size_bytes": bytes.len(), "content_type": "application/octet-stream"}),
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "checksum_mismatch").await;
    let meta: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["status"], "failed");
    assert_eq!(
        app.footprint().await.objects,
        0,
        "the refused object was kept"
    );
    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(kinds.contains(&"raw.register_failed".to_owned()));
    // A failed asset stays failed.
    let res = app
        .register(&acme, id, &bytes, "application/octet-stream")
        .await;
    problem(res, StatusCode::CONFLICT, "asset_failed").await;
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-download",
            &json!({"asset_id": id}),
        )
        .await;
    problem(res, StatusCode::CONFLICT, "not_registered").await;
}

#[tokio::test]
async fn size_mismatch_and_missing_object_fail_the_asset() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"twelve bytes".to_vec();
    let p = app
        .presign(&acme, "s.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &json!({"asset_id": p["asset_id"], "sha256": sha256_hex(&bytes), "size_bytes": 11, "content_type": "application/octet-stream"}),
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "size_mismatch").await;

    let never = app
        .presign(&acme, "n.bin", "application/octet-stream", &bytes)
        .await;
    let res = app
        .register(
            &acme,
            never["asset_id"].as_str().unwrap(),
            &bytes,
            "application/octet-stream",
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "object_missing").await;
    let meta: Value = app
        .get(
            &acme,
            &format!("/storage/raw/{}", never["asset_id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["status"], "failed");
}

#[tokio::test]
async fn download_urls_honour_expires_in_and_expire() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let asset = app.store(&acme, "e.bin", b"expiring").await;
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-download",
            &json!({"asset_id": asset["asset_id"], "expires_in": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires_at.timestamp() - chrono::Utc::now().timestamp() <= 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app
        .client
        .get(v["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    refused_by_store(&app, res, StatusCode::FORBIDDEN, "url_expired").await;
}

#[tokio::test]
async fn upload_urls_expire() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_PRESIGN_TTL_SECS", "1");
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = b"late".to_vec();
    let p = app
        .presign(&acme, "late.bin", "application/octet-stream", &bytes)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    refused_by_store(
        &app,
        app.put_upload(&p, &bytes).await,
        StatusCode::FORBIDDEN,
        "url_expired",
    )
    .await;
    assert_eq!(app.footprint().await.objects, 0);
}

/// Signed download URLs asked for at once have their events committed together (one statement
/// for all waiting): each 200 still has its own event, with its own trace id, and no other.
#[tokio::test]
async fn concurrent_download_urls_each_have_their_event() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let asset = app.store(&acme, "burst.bin", b"burst").await;
    let id = asset["asset_id"].as_str().unwrap().to_owned();
    let before = app.events().await.len();
    let answers = futures_util::future::join_all((0..40).map(|i| {
        app.request(
            &acme,
            reqwest::Method::POST,
            "/storage/raw/presign-download",
        )
        .header("x-request-id", format!("burst-{i:02}"))
        .json(&json!({ "asset_id": id }))
        .send()
    }))
    .await;
    for res in answers {
        assert_eq!(res.unwrap().status(), StatusCode::OK);
    }
    let events = app.events().await;
    assert_eq!(events.len(), before + 40);
    let mut traces: Vec<String> = events
        .iter()
        .filter(|e| e.event_type == "raw.download_presigned")
        .map(|e| e.trace_id.clone())
        .collect();
    traces.sort();
    assert_eq!(
        traces,
        (0..40).map(|i| format!("burst-{i:02}")).collect::<Vec<_>>()
    );
}
