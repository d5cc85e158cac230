//! Tenant content never runs as Cairn (issue 14 §3): what Cairn serves from the store carries
//! `nosniff` and, for active types, a sandbox CSP; a public URL cannot rename its download;
//! deduplication never makes bytes pass for a kind they are not; filenames cannot hide their
//! real end.
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::{
    delivery::{key_of, no_redirects, url_path},
    helpers::{problem, sample, sha256_hex, TestApp},
};

const HTML: &[u8] = b"<!doctype html><script>fetch('/admin')</script>";

fn header_of(res: &reqwest::Response, name: header::HeaderName) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Asserts the safety headers of a response that carries stored bytes.
fn assert_safe(res: &reqwest::Response, active: bool, what: &str) {
    assert_eq!(res.status(), StatusCode::OK, "{what}");
    assert_eq!(
        header_of(res, header::X_CONTENT_TYPE_OPTIONS).as_deref(),
        Some("nosniff"),
        "{what}"
    );
    let csp = header_of(res, header::CONTENT_SECURITY_POLICY);
    if active {
        assert_eq!(csp.as_deref(), Some("sandbox"), "{what}");
    } else {
        assert_eq!(csp, None, "{what}: media need no sandbox");
    }
}

#[tokio::test]
async fn everything_cairn_serves_is_nosniff_and_active_types_are_sandboxed() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let page = app
        .stream_artifact(
            &acme,
            "text/html",
            HTML,
            json!({"visibility": "public", "filename": "index.html"}),
        )
        .await;
    let png = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 900),
            json!({"visibility": "public"}),
        )
        .await;
    let private_page = app
        .stream_artifact(&acme, "text/html", HTML, json!({"filename": "p.html"}))
        .await;
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec();
    let p = app.presign(&acme, "notes.svg", "image/svg+xml", &svg).await;
    assert_eq!(app.put_upload(&p, &svg).await.status(), StatusCode::OK);
    let raw_id = p["asset_id"].as_str().unwrap().to_owned();
    let res = app.register(&acme, &raw_id, &svg, "image/svg+xml").await;
    assert_eq!(res.status(), StatusCode::OK);

    let cdn = |a: &Value| format!("{}/cdn/{}", app.base, url_path(&key_of(a)));
    if app.is_s3() {
        // On S3 Cairn serves no stored bytes itself: every route redirects to the store (the
        // CDN's response headers policy in infra/ adds the same headers there).
        for url in [cdn(&page), cdn(&png)] {
            let res = no_redirects().get(&url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FOUND, "{url}");
        }
        let id = private_page["artifact_id"].as_str().unwrap();
        let res = no_redirects()
            .get(format!("{}/artifacts/{id}/content", app.base))
            .bearer_auth(acme.token.as_ref().unwrap())
            .header("x-tenant-id", "acme")
            .header("x-env", "dev")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
    } else {
        served_locally_with_safety_headers(
            &app,
            &acme,
            &cdn(&page),
            &cdn(&png),
            &private_page,
            &raw_id,
        )
        .await;
    }
}

async fn served_locally_with_safety_headers(
    app: &TestApp,
    acme: &crate::helpers::Caller,
    page: &str,
    png: &str,
    private_page: &Value,
    raw_id: &str,
) {
    // The public CDN path, for anyone.
    let res = app.client.get(page).send().await.unwrap();
    assert_safe(&res, true, "public HTML on /cdn/");
    assert_eq!(res.bytes().await.unwrap().as_ref(), HTML);
    assert_safe(
        &app.client.get(png).send().await.unwrap(),
        false,
        "public PNG on /cdn/",
    );
    // Ranges and revalidations carry them too.
    let res = app
        .client
        .get(page)
        .header(header::RANGE, "bytes=0-4")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_of(&res, header::CONTENT_SECURITY_POLICY).as_deref(),
        Some("sandbox")
    );
    // The signed /o/ URLs of a private artifact and of a raw asset.
    let res = app
        .client
        .get(private_page["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_safe(&res, true, "private HTML on /o/");
    let url = app.download_url(acme, raw_id).await;
    assert_safe(
        &app.client.get(url).send().await.unwrap(),
        true,
        "raw SVG on /o/",
    );
    // The authenticated content route.
    let id = private_page["artifact_id"].as_str().unwrap();
    let res = app.get(acme, &format!("/artifacts/{id}/content")).await;
    assert_safe(&res, true, "GET /artifacts/{id}/content");
}

#[tokio::test]
async fn a_wildcard_grant_opens_private_html_only_in_a_sandbox() {
    let app =
        TestApp::spawn_with(|s| crate::cdn_signed::with_key(s, "ecdsa-p256.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    app.stream_artifact(&acme, "text/html", HTML, json!({"filename": "index.html"}))
        .await;
    let m: Value = app
        .get(&acme, "/runs/r1/artifacts")
        .await
        .json()
        .await
        .unwrap();
    let url = m["artifacts"][0]["url"].as_str().unwrap();
    assert!(
        url.contains("Policy="),
        "the manifest's wildcard policy: {url}"
    );
    let res = app.client.get(url).send().await.unwrap();
    if app.is_s3() {
        assert_eq!(res.status(), StatusCode::OK, "followed to the store");
    } else {
        assert_safe(&res, true, "private HTML through the run's policy");
    }
}

#[tokio::test]
async fn a_public_url_cannot_rename_its_download() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(
            &acme,
            "application/zip",
            &sample("application/zip", 700),
            json!({"visibility": "public", "filename": "report.zip"}),
        )
        .await;
    let base = format!("{}/cdn/{}", app.base, url_path(&key_of(&a)));
    let forged = "attachment%3B%20filename%3D%22invoice.exe%22";
    let url = format!("{base}?response-content-disposition={forged}");
    let res = no_redirects().get(&url).send().await.unwrap();
    let named = if app.is_s3() {
        assert_eq!(res.status(), StatusCode::FOUND);
        header_of(&res, header::LOCATION).unwrap()
    } else {
        assert_eq!(res.status(), StatusCode::OK);
        header_of(&res, header::CONTENT_DISPOSITION).unwrap_or_default()
    };
    assert!(!named.contains("invoice.exe"), "{named}");

    // The name Cairn gives the object still works (GET /artifacts/{id}/content redirects to it
    // on S3; here it is asked for directly).
    let own =
        "attachment%3B%20filename%3D%22report.zip%22%3B%20filename%2A%3DUTF-8%27%27report.zip";
    let res = no_redirects()
        .get(format!("{base}?response-content-disposition={own}"))
        .send()
        .await
        .unwrap();
    let named = if app.is_s3() {
        header_of(&res, header::LOCATION).unwrap()
    } else {
        header_of(&res, header::CONTENT_DISPOSITION).unwrap()
    };
    assert!(named.contains("report.zip"), "{named}");
}

#[tokio::test]
async fn dedup_never_turns_bytes_into_another_kind() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    // HTML stored as a bundle, and as a raw asset that claims to be a PNG (raw assets are not
    // checked: they are data, never served as a kind).
    app.stream_artifact(&acme, "text/html", HTML, json!({}))
        .await;
    let other = b"<!doctype html><p>raw</p>".to_vec();
    let p = app.presign(&acme, "x.png", "image/png", &other).await;
    assert_eq!(app.put_upload(&p, &other).await.status(), StatusCode::OK);
    let id = p["asset_id"].as_str().unwrap();
    assert_eq!(
        app.register(&acme, id, &other, "image/png").await.status(),
        StatusCode::OK
    );

    for bytes in [HTML.to_vec(), other] {
        let res = app
            .create_artifact(
                &acme,
                "image/png",
                &bytes,
                json!({"sha256": sha256_hex(&bytes)}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        assert_eq!(
            created["artifact"]["status"], "pending",
            "not an image: no dedup, the bytes must come and be checked"
        );
        assert!(created["upload"].is_object());
        let id = created["artifact"]["artifact_id"].as_str().unwrap();
        problem(
            app.put_content(&acme, id, &bytes).await,
            StatusCode::BAD_REQUEST,
            "content_mismatch",
        )
        .await;
    }
    // Content that is what it claims is still deduplicated.
    let png = sample("image/png", 800);
    app.stream_artifact(&acme, "image/png", &png, json!({}))
        .await;
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            &png,
            json!({"sha256": sha256_hex(&png)}),
        )
        .await;
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["artifact"]["status"], "available");
}

#[tokio::test]
async fn filenames_cannot_hide_their_real_end() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let before = app.footprint().await;
    for name in [
        "invoice\u{202E}gnp.exe",
        "a\u{2067}b.png",
        "zero\u{200B}width.png",
        "\u{FEFF}x.png",
        "line\u{2028}break.png",
    ] {
        let res = app
            .post(
                &acme,
                "/storage/raw/presign-upload",
                &json!({"filename": name, "content_type": "image/png", "size_bytes": 10}),
            )
            .await;
        problem(res, StatusCode::BAD_REQUEST, "invalid_filename").await;
        let res = app
            .create_artifact(
                &acme,
                "image/png",
                &sample("image/png", 10),
                json!({"filename": name}),
            )
            .await;
        problem(res, StatusCode::BAD_REQUEST, "invalid_filename").await;
    }
    assert_eq!(app.footprint().await, before);
}
