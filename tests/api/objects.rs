//! The local `/o/` endpoint: signed grants, integrity, atomic no-overwrite, ranges and caching.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, sha256_hex, TestApp};

fn with_query(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", q.join("&"))
}

#[tokio::test]
async fn tampered_upload_urls_are_refused_and_store_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"12345".to_vec();
    let p = app
        .presign(&acme, "t.bin", "application/octet-stream", &bytes)
        .await;
    let url = p["upload"]["url"].as_str().unwrap();
    let exp: i64 = url
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let other_key = url.replace("/t.bin?", "/u.bin?");
    let cases: Vec<(&str, String, &str, Vec<u8>)> = vec![
        (
            "signature",
            with_query(url, "sig", &"0".repeat(64)),
            "application/octet-stream",
            bytes.clone(),
        ),
        (
            "expiry",
            with_query(url, "exp", &(exp + 3600).to_string()),
            "application/octet-stream",
            bytes.clone(),
        ),
        ("key", other_key, "application/octet-stream", bytes.clone()),
        ("content type", url.to_owned(), "text/html", bytes.clone()),
        (
            "size",
            url.to_owned(),
            "application/octet-stream",
            b"123456".to_vec(),
        ),
        (
            "no signature",
            url.split('?').next().unwrap().to_owned(),
            "application/octet-stream",
            bytes.clone(),
        ),
    ];
    for (what, url, ct, body) in cases {
        let res = app
            .client
            .put(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "tampered {what}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["code"], "signature_invalid", "tampered {what}");
    }
    assert_eq!(app.footprint().await.objects, 0);
}

#[tokio::test]
async fn a_signed_checksum_makes_the_store_refuse_other_bytes() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let good = b"good bytes".to_vec();
    let evil = b"evil bytes".to_vec();
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-upload",
            &json!({"filename": "c.bin", "content_type": "application/octet-stream", "size_bytes": good.len(), "sha256": sha256_hex(&good)}),
        )
        .await;
    let p: Value = res.json().await.unwrap();
    problem(
        app.put_upload(&p, &evil).await,
        StatusCode::BAD_REQUEST,
        "checksum_mismatch",
    )
    .await;
    assert_eq!(app.footprint().await.objects, 0);
    assert_eq!(app.put_upload(&p, &good).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_object_is_never_overwritten() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"first".to_vec();
    let p = app
        .presign(&acme, "o.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    problem(
        app.put_upload(&p, b"later").await,
        StatusCode::PRECONDITION_FAILED,
        "object_exists",
    )
    .await;
    let res = app
        .register(
            &acme,
            p["asset_id"].as_str().unwrap(),
            &bytes,
            "application/octet-stream",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the first upload survives");
}

#[tokio::test]
async fn uploads_need_a_length() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let p = app
        .presign(&acme, "l.bin", "application/octet-stream", b"abc")
        .await;
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        bytes::Bytes::from_static(b"abc"),
    )]);
    let res = app
        .client
        .put(p["upload"]["url"].as_str().unwrap())
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::LENGTH_REQUIRED, "length_required").await;
}

async fn form_upload(
    app: &TestApp,
    p: &Value,
    overrides: &[(&str, &str)],
    file: Vec<u8>,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in p["upload"]["fields"].as_object().unwrap() {
        let v = overrides
            .iter()
            .find(|(o, _)| o == k)
            .map(|(_, v)| *v)
            .unwrap_or(v.as_str().unwrap());
        form = form.text(k.clone(), v.to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(file));
    app.client
        .post(p["upload"]["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn form_uploads_are_held_to_their_policy() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"form body".to_vec();
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-upload",
            &json!({"filename": "f.txt", "content_type": "text/plain", "size_bytes": bytes.len(), "method": "POST"}),
        )
        .await;
    let p: Value = res.json().await.unwrap();
    let too_big = form_upload(&app, &p, &[], b"form body and more".to_vec()).await;
    problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let other_key = form_upload(
        &app,
        &p,
        &[("key", "tenants/acme/dev/raw/x/evil.txt")],
        bytes.clone(),
    )
    .await;
    problem(other_key, StatusCode::FORBIDDEN, "signature_invalid").await;
    let other_type = form_upload(&app, &p, &[("content-type", "text/html")], bytes.clone()).await;
    problem(other_type, StatusCode::FORBIDDEN, "signature_invalid").await;
    let forged = form_upload(&app, &p, &[("signature", &"a".repeat(64))], bytes.clone()).await;
    problem(forged, StatusCode::FORBIDDEN, "signature_invalid").await;
    assert_eq!(app.footprint().await.objects, 0);
    assert_eq!(
        form_upload(&app, &p, &[], bytes).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn downloads_serve_ranges_etags_and_refuse_tampering() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes: Vec<u8> = (0..=255u8).collect();
    let asset = app.store(&acme, "ränge.bin", &bytes).await;
    let url = app
        .download_url(&acme, asset["asset_id"].as_str().unwrap())
        .await;

    let full = app.client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert!(full.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private"));
    assert!(full.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with("UTF-8''r%C3%A4nge.bin"));

    let part = app
        .client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/256");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[10..20]);

    let tail = app
        .client
        .get(&url)
        .header("range", "bytes=-6")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[250..]);

    let past = app
        .client
        .get(&url)
        .header("range", "bytes=300-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()["content-range"], "bytes */256");

    let cached = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    for tampered in [
        with_query(&url, "filename", "evil.exe"),
        with_query(&url, "sig", &"f".repeat(64)),
        with_query(&url, "exp", "99999999999"),
    ] {
        let res = app.client.get(&tampered).send().await.unwrap();
        problem(res, StatusCode::FORBIDDEN, "signature_invalid").await;
    }
}
