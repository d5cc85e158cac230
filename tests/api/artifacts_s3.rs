//! Large artifacts: presigned multipart uploads verified in the background (S3 keeps no
//! whole-object SHA-256 for them), streaming through Cairn above the multipart threshold, and
//! the store refusing wrong bytes on a presigned PUT. On the local store the same calls take the
//! single-PUT path.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{refused_by_store, sample, sha256_hex, TestApp},
    multipart::put_parts,
};

const MIB: usize = 1 << 20;

async fn big_app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", &(64 * MIB).to_string());
    })
    .await
}

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Uploads `bytes` as the presigned upload says; returns the complete call's body.
async fn upload(app: &TestApp, c: &Value, bytes: &[u8]) -> Value {
    let upload = &c["upload"];
    if upload["method"] == "MULTIPART" {
        let n = upload["parts"].as_array().unwrap().len();
        let all: Vec<usize> = (1..=n).collect();
        json!({ "parts": put_parts(app, upload, bytes, &all).await })
    } else {
        assert!(app.put_upload(c, bytes).await.status().is_success());
        json!({})
    }
}

async fn wait_settled(app: &TestApp, who: &crate::helpers::Caller, id: &str) -> Value {
    app.get(who, &format!("/artifacts/{id}?wait=60"))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_presigned_multipart_artifact_is_available_once_verified() {
    let app = big_app().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("video/mp4", 20 * MIB + 123);
    let c = created(
        app.create_artifact(
            &acme,
            "video/mp4",
            &bytes,
            json!({"sha256": sha256_hex(&bytes)}),
        )
        .await,
    )
    .await;
    let id = c["artifact"]["artifact_id"].as_str().unwrap().to_owned();
    if app.is_s3() {
        assert_eq!(c["upload"]["method"], "MULTIPART");
        assert_eq!(c["upload"]["parts"].as_array().unwrap().len(), 3);
    }
    let body = upload(&app, &c, &bytes).await;
    let res = app
        .post(&acme, &format!("/artifacts/{id}/complete"), &body)
        .await;
    let expected = if app.is_s3() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    assert_eq!(res.status(), expected);
    let first: Value = res.json().await.unwrap();
    if app.is_s3() {
        assert_eq!(first["status"], "uploading");
    }
    let a = wait_settled(&app, &acme, &id).await;
    assert_eq!(a["status"], "available");
    assert_eq!(a["sha256"], sha256_hex(&bytes));
    let got = app
        .client
        .get(a["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&bytes));
    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    if app.is_s3() {
        assert!(kinds.contains(&"artifact.uploaded".to_owned()), "{kinds:?}");
    }
    assert!(kinds.contains(&"artifact.available".to_owned()));
}

#[tokio::test]
async fn a_multipart_upload_with_other_content_fails_and_is_removed() {
    let app = big_app().await;
    let acme = app.owner("acme", "dev");
    let declared = sample("video/mp4", 12 * MIB);
    let mut sent = declared.clone();
    let last = sent.len() - 1;
    sent[last] ^= 0xff;
    let objects = app.footprint().await.objects;
    let c = created(
        app.create_artifact(
            &acme,
            "video/mp4",
            &declared,
            json!({"sha256": sha256_hex(&declared)}),
        )
        .await,
    )
    .await;
    let id = c["artifact"]["artifact_id"].as_str().unwrap().to_owned();
    if !app.is_s3() {
        // The local store checks the declared sha256 while receiving.
        let res = app.put_upload(&c, &sent).await;
        refused_by_store(&app, res, StatusCode::BAD_REQUEST, "checksum_mismatch").await;
        return;
    }
    let body = upload(&app, &c, &sent).await;
    let res = app
        .post(&acme, &format!("/artifacts/{id}/complete"), &body)
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let a = wait_settled(&app, &acme, &id).await;
    assert_eq!(a["status"], "failed");
    assert_eq!(
        app.footprint().await.objects,
        objects,
        "the object was removed"
    );
    let failed = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "artifact.failed")
        .unwrap();
    assert_eq!(failed.detail["code"], "checksum_mismatch");
}

#[tokio::test]
async fn a_large_stream_through_cairn_is_stored_whole() {
    let app = big_app().await;
    let acme = app.owner("acme", "dev");
    // Above the 8 MiB threshold: multipart to S3, in bounded memory.
    let bytes = sample("application/zip", 19 * MIB + 7);
    let a = app
        .stream_artifact(&acme, "application/zip", &bytes, json!({"kind": "bundle"}))
        .await;
    assert_eq!(a["sha256"], sha256_hex(&bytes));
    let id = a["artifact_id"].as_str().unwrap();
    let res = app.get(&acme, &format!("/artifacts/{id}/content")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&res.bytes().await.unwrap()), sha256_hex(&bytes));
    assert_eq!(app.footprint().await.objects, 1);
}

#[tokio::test]
async fn the_store_refuses_other_bytes_on_a_presigned_put() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let declared = sample("image/png", 5000);
    let mut other = declared.clone();
    other[4000] ^= 1;
    let c = created(
        app.create_artifact(
            &acme,
            "image/png",
            &declared,
            json!({"sha256": sha256_hex(&declared)}),
        )
        .await,
    )
    .await;
    assert_eq!(
        c["upload"]["headers"]["x-amz-checksum-sha256"].is_string(),
        app.is_s3()
    );
    let objects = app.footprint().await.objects;
    let res = app.put_upload(&c, &other).await;
    refused_by_store(&app, res, StatusCode::BAD_REQUEST, "checksum_mismatch").await;
    assert_eq!(app.footprint().await.objects, objects);
    // The right bytes then go through and complete.
    assert!(app.put_upload(&c, &declared).await.status().is_success());
    let id = c["artifact"]["artifact_id"].as_str().unwrap();
    let res = app
        .post(&acme, &format!("/artifacts/{id}/complete"), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
