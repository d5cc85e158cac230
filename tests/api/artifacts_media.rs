//! The kind / content-type matrix and the first-bytes check: a spoofed upload is never served
//! under a trusted media type, whichever way its bytes arrive.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, sample, TestApp};

const KINDS: [&str; 7] = [
    "preview", "replay", "audit", "image", "video", "audio", "bundle",
];
const TYPES: [&str; 14] = [
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
    "application/zip",
    "text/html",
    "application/json",
    "image/svg+xml",
    "text/plain",
];

fn allowed(kind: &str, ct: &str) -> bool {
    match kind {
        "preview" | "image" => ["image/png", "image/jpeg", "image/webp", "image/gif"].contains(&ct),
        "replay" | "audit" => ct == "application/json",
        "video" => ["video/mp4", "video/webm"].contains(&ct),
        "audio" => ["audio/mpeg", "audio/wav", "audio/ogg"].contains(&ct),
        "bundle" => ["application/zip", "text/html"].contains(&ct),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn every_kind_accepts_exactly_its_content_types() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let mut accepted = 0;
    for kind in KINDS {
        for ct in TYPES {
            let before = app.footprint().await;
            let res = app
                .create_artifact(&acme, ct, &sample(ct, 32), json!({"kind": kind}))
                .await;
            if allowed(kind, ct) {
                assert_eq!(res.status(), StatusCode::CREATED, "{kind} {ct}");
                accepted += 1;
            } else {
                let body = problem(res, StatusCode::BAD_REQUEST, "unsupported_content_type").await;
                assert_eq!(app.footprint().await, before, "{kind} {ct}: {body}");
            }
        }
    }
    assert_eq!(accepted, 4 + 1 + 1 + 4 + 2 + 3 + 2);
    // Parameters do not change the type.
    let res = app
        .create_artifact(
            &acme,
            "text/html; charset=utf-8",
            b"<p>x</p>",
            json!({"kind": "bundle"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// Media types Cairn checks by signature, with bytes of a different type.
const SPOOFS: [(&str, &[u8]); 8] = [
    ("image/png", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ("image/jpeg", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
    ("image/webp", b"RIFF\x24\0\0\0WAVEfmt \0\0"),
    ("image/gif", b"<html><script>x</script>"),
    ("video/mp4", b"<html><body>not a video</body>"),
    ("audio/ogg", b"ID3\x04\0\0\0\0\0\0\0\0\0\0\0\0"),
    ("application/zip", b"#!/bin/sh\nrm -rf /\n"),
    ("audio/wav", b""),
];

#[tokio::test]
async fn a_streamed_spoof_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    for (ct, bytes) in SPOOFS {
        let res = app.create_artifact(&acme, ct, bytes, json!({})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["artifact"]["artifact_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let before = app.footprint().await;
        let body = problem(
            app.put_content(&acme, &id, bytes).await,
            StatusCode::BAD_REQUEST,
            "content_mismatch",
        )
        .await;
        assert_eq!(app.footprint().await, before, "{ct}: {body}");
        let a: Value = app
            .get(&acme, &format!("/artifacts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["status"], "pending", "{ct}");
        // The right bytes are still welcome.
        let good = sample(ct, bytes.len().max(16));
        let res = app.create_artifact(&acme, ct, &good, json!({})).await;
        let id = res.json::<Value>().await.unwrap()["artifact"]["artifact_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.put_content(&acme, &id, &good).await.status(),
            StatusCode::OK,
            "{ct}"
        );
    }
}

#[tokio::test]
async fn a_presigned_spoof_fails_at_complete_and_its_object_is_removed() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes: &[u8] = b"GIF89a but actually a PNG is declared";
    let created: Value = app
        .create_artifact(&acme, "image/png", bytes, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["artifact"]["artifact_id"].as_str().unwrap();
    let objects = app.footprint().await.objects;
    assert!(app.put_upload(&created, bytes).await.status().is_success());
    assert_eq!(app.footprint().await.objects, objects + 1);
    problem(
        app.post(&acme, &format!("/artifacts/{id}/complete"), &json!({}))
            .await,
        StatusCode::BAD_REQUEST,
        "content_mismatch",
    )
    .await;
    let a: Value = app
        .get(&acme, &format!("/artifacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["status"], "failed");
    assert_eq!(
        app.footprint().await.objects,
        objects,
        "the spoof was removed"
    );
    let failed = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "artifact.failed")
        .expect("a failure event");
    assert_eq!(failed.detail["code"], "content_mismatch");
}

#[tokio::test]
async fn binary_previews_are_checked_too() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let before = app.footprint().await;
    let res = app
        .request(
            &acme,
            reqwest::Method::POST,
            "/artifacts/preview?run_id=r1&filename=p.jpg",
        )
        .header("content-type", "image/jpeg")
        .body(b"<html>definitely not a jpeg</html>".to_vec())
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "content_mismatch").await;
    assert_eq!(app.footprint().await, before);
}
