//! What the object store itself enforces for presigned URLs, on every backend: Cairn's own `/o/`
//! endpoint (local) or the S3 server. Signed grants, integrity, no overwrite, ranges, caching.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, refused_by_store, sha256_hex, TestApp};

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

fn param(url: &str, name: &str) -> String {
    url.split(&format!("{name}="))
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

async fn put(
    app: &TestApp,
    url: &str,
    headers: &Value,
    change: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = app.client.put(url);
    for (k, v) in headers.as_object().unwrap() {
        if k == "content-length" {
            continue;
        }
        let v = change
            .iter()
            .find(|(c, _)| c == k)
            .map(|(_, v)| *v)
            .unwrap_or(v.as_str().unwrap());
        r = r.header(k, v);
    }
    r.body(body).send().await.unwrap()
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
    let headers = &p["upload"]["headers"];
    let (sig, exp) = (app.url_param("signature"), app.url_param("expiry"));
    let longer = (param(url, exp).parse::<i64>().unwrap() + 3600).to_string();
    // (what is tampered, URL, headers changed, body)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            "signature",
            with_query(url, sig, &"0".repeat(64)),
            vec![],
            bytes.clone(),
        ),
        (
            "expiry",
            with_query(url, exp, &longer),
            vec![],
            bytes.clone(),
        ),
        (
            "key",
            url.replace("/t.bin?", "/u.bin?"),
            vec![],
            bytes.clone(),
        ),
        (
            "content type",
            url.to_owned(),
            vec![("content-type", "text/html")],
            bytes.clone(),
        ),
        ("size", url.to_owned(), vec![], b"123456".to_vec()),
        (
            "no signature",
            url.split('?').next().unwrap().to_owned(),
            vec![],
            bytes.clone(),
        ),
    ];
    for (what, url, change, body) in cases {
        let res = put(&app, &url, headers, &change, body).await;
        assert!(
            res.status().is_client_error(),
            "tampered {what}: {}",
            res.status()
        );
        refused_by_store(&app, res, StatusCode::FORBIDDEN, "signature_invalid").await;
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
    let refused = app.put_upload(&p, &evil).await;
    refused_by_store(&app, refused, StatusCode::BAD_REQUEST, "checksum_mismatch").await;
    assert_eq!(app.footprint().await.objects, 0);
    assert_eq!(app.put_upload(&p, &good).await.status(), StatusCode::OK);
    let res = app
        .register(
            &acme,
            p["asset_id"].as_str().unwrap(),
            &good,
            "application/octet-stream",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
#[ignore = "stores that honour conditional writes: scripts/test.sh selects it where they do"]
async fn an_object_is_never_overwritten() {
    let app = TestApp::spawn().await;
    // Selected only where the store honours conditional writes (scripts/test.sh): Garage
    // ignores If-None-Match on PUT (the README's S3 section).
    assert!(
        app.conditional_writes(),
        "this store does not honour conditional writes; scripts/test.sh does not select this test for it"
    );
    let acme = app.owner("acme", "dev");
    let bytes = b"first".to_vec();
    let p = app
        .presign(&acme, "o.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    let again = app.put_upload(&p, b"later").await;
    refused_by_store(
        &app,
        again,
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
    let mut r = app.client.put(p["upload"]["url"].as_str().unwrap());
    for (k, v) in p["upload"]["headers"].as_object().unwrap() {
        if k != "content-length" {
            r = r.header(k, v.as_str().unwrap());
        }
    }
    let res = r
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    refused_by_store(&app, res, StatusCode::LENGTH_REQUIRED, "length_required").await;
    assert_eq!(app.footprint().await.objects, 0);
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
            .find(|(o, _)| o.eq_ignore_ascii_case(k))
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
async fn a_form_whose_fields_come_near_the_bound_still_stores_its_file() {
    // Fields and part headers come to just under the 64 KiB allowed before `file`; the file's
    // first bytes then arrive in the same reads as the last field's, which must not count.
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-upload",
            &json!({"filename": "big.bin", "content_type": "application/octet-stream",
                    "size_bytes": bytes.len(), "method": "POST"}),
        )
        .await;
    let p: Value = res.json().await.unwrap();
    let mut form = reqwest::multipart::Form::new();
    let mut before_file = 0;
    for (k, v) in p["upload"]["fields"].as_object().unwrap() {
        before_file += k.len() + v.as_str().unwrap().len() + 100;
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    let mut i = 0;
    while before_file < 64 * 1024 - 1024 {
        let len = (64 * 1024 - 1024 - before_file).min(8000);
        before_file += len + 110;
        form = form.text(format!("x-ignore-pad-{i}"), "p".repeat(len));
        i += 1;
    }
    form = form.part("file", reqwest::multipart::Part::bytes(bytes.clone()));
    let res = app
        .client
        .post(p["upload"]["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let id = p["asset_id"].as_str().unwrap();
    let res = app
        .register(&acme, id, &bytes, "application/octet-stream")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
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
    let signature = if app.is_s3() {
        "x-amz-signature"
    } else {
        "signature"
    };
    let too_big = form_upload(&app, &p, &[], b"form body and more".to_vec()).await;
    refused_by_store(
        &app,
        too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let too_small = form_upload(&app, &p, &[], b"form".to_vec()).await;
    refused_by_store(&app, too_small, StatusCode::BAD_REQUEST, "size_mismatch").await;
    let other_key = form_upload(
        &app,
        &p,
        &[("key", "tenants/acme/dev/raw/x/evil.txt")],
        bytes.clone(),
    )
    .await;
    refused_by_store(&app, other_key, StatusCode::FORBIDDEN, "signature_invalid").await;
    let other_type = form_upload(&app, &p, &[("content-type", "text/html")], bytes.clone()).await;
    refused_by_store(&app, other_type, StatusCode::FORBIDDEN, "signature_invalid").await;
    let forged = form_upload(&app, &p, &[(signature, &"a".repeat(64))], bytes.clone()).await;
    refused_by_store(&app, forged, StatusCode::FORBIDDEN, "signature_invalid").await;
    assert_eq!(app.footprint().await.objects, 0);
    let ok = form_upload(&app, &p, &[], bytes.clone()).await;
    assert!(ok.status().is_success(), "{}", ok.status());
    let res = app
        .register(&acme, p["asset_id"].as_str().unwrap(), &bytes, "text/plain")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
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
    if !app.is_s3() {
        assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));
        assert_eq!(full.headers()["accept-ranges"], "bytes");
    }
    assert!(full.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private"));
    let disposition = full.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.ends_with("UTF-8''r%C3%A4nge.bin"),
        "{disposition}"
    );
    assert_eq!(full.bytes().await.unwrap().as_ref(), bytes.as_slice());

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

    let cached = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    for tampered in [
        with_query(&url, app.url_param("filename"), "evil.exe"),
        with_query(&url, app.url_param("signature"), &"f".repeat(64)),
        with_query(&url, app.url_param("expiry"), "99999"),
    ] {
        let res = app.client.get(&tampered).send().await.unwrap();
        refused_by_store(&app, res, StatusCode::FORBIDDEN, "signature_invalid").await;
    }
}

#[tokio::test]
#[ignore = "local store only: scripts/test.sh selects it on the local run"]
async fn local_uploads_answer_problem_json() {
    // The local endpoint is Cairn's own: its refusals carry problem codes (S3 answers XML).
    crate::helpers::require_backend(None, "local");
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let p = app
        .presign(&acme, "x.bin", "application/octet-stream", b"abc")
        .await;
    let url = p["upload"]["url"].as_str().unwrap();
    let res = app
        .client
        .put(with_query(url, "sig", "00"))
        .body("abc")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "signature_invalid").await;
}
