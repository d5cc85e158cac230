//! Trace ids, health, readiness and metrics.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, TestApp};

#[tokio::test]
async fn trace_ids_are_honoured_echoed_and_recorded() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let res = app
        .request(&acme, reqwest::Method::POST, "/storage/raw/presign-upload")
        .header("x-request-id", "req-123")
        .json(&json!({"filename": "a.txt", "content_type": "text/plain", "size_bytes": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-123");
    assert_eq!(app.events().await[0].trace_id, "req-123");

    let res = app
        .request(&acme, reqwest::Method::GET, "/storage/raw/nope")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let body = problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // Without either header one is generated; an unusable one is replaced.
    let res = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let get = |p: &str| app.client.get(format!("{}{p}", app.base)).send();
    let h: Value = get("/healthz").await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert_eq!(
        (r["catalog"].as_str(), r["storage"].as_str()),
        (Some("ok"), Some("ok"))
    );

    let acme = app.owner("acme", "dev");
    app.store(&acme, "m.bin", b"metrics").await;
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    for needle in [
        "cairn_http_requests_total{method=\"POST\",route=\"/storage/raw/presign-upload\",status=\"200\"}",
        "cairn_http_request_duration_seconds_bucket",
        "cairn_operations_total{operation=\"presign_upload\",outcome=\"ok\"}",
        "cairn_operations_total{operation=\"register\",outcome=\"ok\"}",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
}

#[tokio::test]
async fn readiness_reports_a_broken_object_store() {
    let app = TestApp::spawn().await;
    match &app.bucket {
        // The bucket is still empty: without it, HeadBucket fails.
        Some(bucket) => {
            crate::helpers::s3_client()
                .await
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .unwrap();
        }
        None => std::fs::remove_dir_all(app.data_dir.join("objects")).unwrap(),
    }
    let r = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    // Which dependency, never why: the store's error (a path, an address) stays in the log.
    assert_eq!(
        v,
        json!({"status": "unavailable", "catalog": "ok", "storage": "unavailable"})
    );
}

#[tokio::test]
async fn unknown_routes_are_problem_404s() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(format!("{}/nowhere", app.base))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_catalog_outage_is_a_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    // Both sides of the catalog go (on SQLite the read pool is a pool of its own).
    app.state.read.clone().close().await.unwrap();
    app.state.db.clone().close().await.unwrap();
    let res = app
        .get(&acme, &format!("/storage/raw/{}", uuid::Uuid::now_v7()))
        .await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable").await;
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-upload",
            &json!({"filename": "a", "content_type": "text/plain", "size_bytes": 1}),
        )
        .await;
    problem(res, StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable").await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
