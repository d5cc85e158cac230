//! CORS (`CAIRN_CORS_ORIGINS`): preflights and answers for the API, the local object endpoint
//! (browser uploads with a presigned PUT or POST form) and the CDN endpoint (a player fetching
//! cross-origin, with signed cookies when the origin is named).
use reqwest::{header, Method, StatusCode};
use serde_json::json;

use crate::{
    delivery::{key_of, url_path},
    helpers::{sample, TestApp},
};

const APP: &str = "https://player.example.com";

fn h(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header(header::ORIGIN, origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn named_origins_pass_preflights_on_every_endpoint() {
    let app = TestApp::spawn_with(|s| {
        s.set(
            "CAIRN_CORS_ORIGINS",
            &format!("{APP}, https://canvas.example.com/"),
        )
    })
    .await;
    let cases = [
        (
            "/artifacts",
            "POST",
            "authorization,content-type,x-tenant-id,x-env",
        ),
        (
            "/storage/raw/presign-upload",
            "POST",
            "authorization,content-type,x-tenant-id,x-env",
        ),
        (
            "/artifacts/0190c0de-0000-7000-8000-000000000000/content",
            "PUT",
            "authorization,x-tenant-id,x-env",
        ),
        ("/o/tenants/acme/dev/raw/x/y.png", "PUT", "content-type"),
        ("/o", "POST", "content-type"),
        (
            "/cdn/public/tenants/acme/dev/runs/r1/image/x/y.png",
            "GET",
            "range,if-none-match",
        ),
    ];
    for origin in [APP, "https://canvas.example.com"] {
        for (path, method, headers) in cases {
            let res = preflight(&app, path, origin, method, headers).await;
            assert!(res.status().is_success(), "{path}: {}", res.status());
            assert_eq!(
                h(&res, "access-control-allow-origin").as_deref(),
                Some(origin),
                "{path}"
            );
            assert_eq!(
                h(&res, "access-control-allow-credentials").as_deref(),
                Some("true")
            );
            let methods = h(&res, "access-control-allow-methods").unwrap();
            assert!(methods.contains(method), "{path}: {methods}");
            let allowed = h(&res, "access-control-allow-headers")
                .unwrap()
                .to_ascii_lowercase();
            for want in headers.split(',') {
                assert!(allowed.contains(want), "{path}: {want} not in {allowed}");
            }
            assert!(h(&res, "vary")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("origin"));
        }
    }
    // An origin not on the list gets no grant: the browser blocks the request.
    let res = preflight(
        &app,
        "/artifacts",
        "https://evil.example.com",
        "POST",
        "authorization",
    )
    .await;
    assert_eq!(h(&res, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn answers_carry_cors_headers_including_errors() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CORS_ORIGINS", APP);
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 1200);
    let a = app
        .stream_artifact(&acme, "image/png", &bytes, json!({"visibility": "public"}))
        .await;
    // A player fetching a public item cross-origin can read it and its headers.
    let url = format!("{}/cdn/{}", app.base, url_path(&key_of(&a)));
    // (On S3 /cdn/ redirects to the bucket, whose own CORS rules are infra's: look at the
    // redirect itself.)
    let res = crate::delivery::no_redirects()
        .get(&url)
        .header(header::ORIGIN, APP)
        .send()
        .await
        .unwrap();
    let expected = if app.is_s3() {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    };
    assert_eq!(res.status(), expected);
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some(APP));
    let exposed = h(&res, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for want in [
        "etag",
        "content-range",
        "content-disposition",
        "x-request-id",
    ] {
        assert!(exposed.contains(want), "{want} not in {exposed}");
    }
    // A refused API call still tells the page why.
    let res = app
        .client
        .get(format!(
            "{}/artifacts/{}",
            app.base,
            a["artifact_id"].as_str().unwrap()
        ))
        .header(header::ORIGIN, APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some(APP));
    // Another origin gets the answer but no grant to read it.
    let res = app
        .client
        .get(&url)
        .header(header::ORIGIN, "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(h(&res, "access-control-allow-origin"), None);
}

/// Local store only: on S3 the form goes to the bucket, whose CORS is infra's
/// (infra/cloudformation).
#[tokio::test]
#[ignore = "local store only: scripts/test.sh selects it on the local run"]
async fn a_browser_form_upload_is_allowed_cross_origin() {
    crate::helpers::require_backend(None, "local");
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CORS_ORIGINS", APP);
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 800);
    let res = app
        .create_artifact(&acme, "image/png", &bytes, json!({"method": "POST"}))
        .await;
    let created: serde_json::Value = res.json().await.unwrap();
    let upload = &created["upload"];
    assert_eq!(upload["method"], "POST");
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in upload["fields"].as_object().unwrap() {
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(bytes.clone()));
    let res = app
        .client
        .post(upload["url"].as_str().unwrap())
        .header(header::ORIGIN, APP)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some(APP));
    assert!(h(&res, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("etag"));
}

#[tokio::test]
async fn a_wildcard_allows_any_origin_without_credentials() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CORS_ORIGINS", "*");
    })
    .await;
    let res = preflight(
        &app,
        "/artifacts",
        "https://anyone.example.org",
        "POST",
        "authorization",
    )
    .await;
    assert!(res.status().is_success());
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(h(&res, "access-control-allow-credentials"), None);
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_granted() {
    let app = TestApp::spawn().await;
    let res = preflight(&app, "/artifacts", APP, "POST", "authorization").await;
    assert_eq!(h(&res, "access-control-allow-origin"), None);
    let res = app
        .client
        .get(format!("{}/healthz", app.base))
        .header(header::ORIGIN, APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(h(&res, "access-control-allow-origin"), None);
}
