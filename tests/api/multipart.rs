//! Large raw assets: on S3 a presigned multipart upload (part URLs, then register with the parts'
//! ETags or with the store's own list); on the local store one PUT of any size.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, sha256_hex, TestApp};

fn content(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| ((i * 7 + i / 4096) % 251) as u8)
        .collect()
}

async fn presign(app: &TestApp, who: &crate::helpers::Caller, bytes: &[u8]) -> Value {
    let res = app
        .post(
            who,
            "/storage/raw/presign-upload",
            &json!({"filename": "big.bin", "content_type": "application/octet-stream", "size_bytes": bytes.len()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Uploads the parts `which` (1-based) and returns `[{part_number, etag}]` for them.
pub async fn put_parts(app: &TestApp, upload: &Value, bytes: &[u8], which: &[usize]) -> Vec<Value> {
    let part_size = upload["part_size"].as_u64().unwrap() as usize;
    let mut done = vec![];
    for part in upload["parts"].as_array().unwrap() {
        let n = part["part_number"].as_u64().unwrap() as usize;
        if !which.contains(&n) {
            continue;
        }
        let chunk = &bytes[(n - 1) * part_size..(n * part_size).min(bytes.len())];
        let res = app
            .client
            .put(part["url"].as_str().unwrap())
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "part {n}");
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        done.push(json!({"part_number": n, "etag": etag}));
    }
    done
}

fn register_body(id: &str, bytes: &[u8], parts: Option<Vec<Value>>) -> Value {
    let mut v = json!({"asset_id": id, "sha256": sha256_hex(bytes), "size_bytes": bytes.len(), "content_type": "application/octet-stream"});
    if let Some(p) = parts {
        v["parts"] = json!(p);
    }
    v
}

#[tokio::test]
async fn a_50_mib_asset_round_trips() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", &(64u64 << 20).to_string());
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = content(50 << 20);
    let p = presign(&app, &acme, &bytes).await;
    let id = p["asset_id"].as_str().unwrap();
    let parts = if app.is_s3() {
        let upload = &p["upload"];
        assert_eq!(upload["method"], "MULTIPART");
        assert_eq!(upload["part_size"], 8 << 20);
        assert_eq!(upload["parts"].as_array().unwrap().len(), 7);
        Some(put_parts(&app, upload, &bytes, &[1, 2, 3, 4, 5, 6, 7]).await)
    } else {
        assert_eq!(p["upload"]["method"], "PUT");
        assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
        None
    };
    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &register_body(id, &bytes, parts),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let url = app.download_url(&acme, id).await;
    let got = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&bytes));
}

/// S3 only: the local store has no multipart uploads.
#[tokio::test]
#[ignore = "S3 only: scripts/test.sh selects it on the S3 runs"]
async fn multipart_registration_lists_parts_itself_and_refuses_incomplete_uploads() {
    crate::helpers::require_backend(None, "s3");
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", &(64u64 << 20).to_string());
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = content(12 << 20);

    // Without `parts`, Cairn completes with the parts the store lists.
    let p = presign(&app, &acme, &bytes).await;
    put_parts(&app, &p["upload"], &bytes, &[1, 2]).await;
    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &register_body(p["asset_id"].as_str().unwrap(), &bytes, None),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // A part URL is signed for its exact length.
    let p = presign(&app, &acme, &bytes).await;
    let part1 = &p["upload"]["parts"][0];
    let res = app
        .client
        .put(part1["url"].as_str().unwrap())
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());

    // Naming a part that was never uploaded fails the asset and leaves no object.
    let uploaded = put_parts(&app, &p["upload"], &bytes, &[1]).await;
    let mut claimed = uploaded.clone();
    claimed.push(json!({"part_number": 2, "etag": "\"0123456789abcdef0123456789abcdef\""}));
    let before = app.object_count().await;
    let id = p["asset_id"].as_str().unwrap();
    let res = app
        .post(
            &acme,
            "/storage/raw/register",
            &register_body(id, &bytes, Some(claimed)),
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "upload_incomplete").await;
    let v: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(app.object_count().await, before);
    let open = crate::helpers::s3_client()
        .await
        .list_multipart_uploads()
        .bucket(app.bucket.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        open.uploads().is_empty(),
        "the failed upload was not aborted"
    );
}

#[tokio::test]
async fn malformed_parts_are_refused() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"small".to_vec();
    let p = app
        .presign(&acme, "s.bin", "application/octet-stream", &bytes)
        .await;
    let id = p["asset_id"].as_str().unwrap();
    for bad in [
        json!([]),
        json!([{"part_number": 0, "etag": "x"}]),
        json!([{"part_number": 2, "etag": "x"}, {"part_number": 1, "etag": "y"}]),
        json!([{"part_number": 1, "etag": ""}]),
    ] {
        let mut body = register_body(id, &bytes, None);
        body["parts"] = bad;
        let before = app.footprint().await;
        problem(
            app.post(&acme, "/storage/raw/register", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_parts",
        )
        .await;
        assert_eq!(app.footprint().await, before);
    }
}
