//! The bad-input matrix: each case gets its 4xx and stable code, and writes no row or object.
use base64::Engine;
use cairn::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sha256_hex, Caller, TestApp};

fn presign_body(change: impl FnOnce(&mut Value)) -> Value {
    let mut v =
        json!({"filename": "ok.bin", "content_type": "application/octet-stream", "size_bytes": 10});
    change(&mut v);
    v
}

#[tokio::test]
async fn presign_upload_refuses_bad_fields() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let long = "x".repeat(256);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "traversal",
            presign_body(|v| v["filename"] = json!("../x")),
            "invalid_filename",
        ),
        (
            "slash",
            presign_body(|v| v["filename"] = json!("a/b")),
            "invalid_filename",
        ),
        (
            "backslash",
            presign_body(|v| v["filename"] = json!("a\\b")),
            "invalid_filename",
        ),
        (
            "dotdot",
            presign_body(|v| v["filename"] = json!("..")),
            "invalid_filename",
        ),
        (
            "dot",
            presign_body(|v| v["filename"] = json!(".")),
            "invalid_filename",
        ),
        (
            "empty",
            presign_body(|v| v["filename"] = json!("")),
            "invalid_filename",
        ),
        (
            "nul",
            presign_body(|v| v["filename"] = json!("a\u{0}b")),
            "invalid_filename",
        ),
        (
            "control",
            presign_body(|v| v["filename"] = json!("a\u{1b}b")),
            "invalid_filename",
        ),
        (
            "256 bytes",
            presign_body(|v| v["filename"] = json!(long)),
            "invalid_filename",
        ),
        (
            "negative size",
            presign_body(|v| v["size_bytes"] = json!(-1)),
            "invalid_size",
        ),
        (
            "fractional size",
            presign_body(|v| v["size_bytes"] = json!(1.5)),
            "invalid_size",
        ),
        (
            "string size",
            presign_body(|v| v["size_bytes"] = json!("10")),
            "invalid_size",
        ),
        (
            "null size",
            presign_body(|v| v["size_bytes"] = json!(null)),
            "invalid_size",
        ),
        (
            "huge size",
            presign_body(|v| v["size_bytes"] = json!(1u64 << 50)),
            "size_too_large",
        ),
        (
            "beyond u64",
            presign_body(|v| v["size_bytes"] = json!(1e30)),
            "invalid_size",
        ),
        (
            "short sha",
            presign_body(|v| v["sha256"] = json!("abc")),
            "invalid_sha256",
        ),
        (
            "non-hex sha",
            presign_body(|v| v["sha256"] = json!("g".repeat(64))),
            "invalid_sha256",
        ),
        (
            "bad content type",
            presign_body(|v| v["content_type"] = json!("png")),
            "invalid_content_type",
        ),
        (
            "header injection",
            presign_body(|v| v["content_type"] = json!("text/plain\r\nx: y")),
            "invalid_content_type",
        ),
        (
            "bad method",
            presign_body(|v| v["method"] = json!("GET")),
            "invalid_method",
        ),
        (
            "missing filename",
            json!({"content_type": "text/plain", "size_bytes": 1}),
            "invalid_request",
        ),
        (
            "filename not a string",
            presign_body(|v| v["filename"] = json!(5)),
            "invalid_request",
        ),
        ("not an object", json!([1, 2]), "invalid_request"),
    ];
    for (name, body, code) in cases {
        let before = app.footprint().await;
        let res = app.post(&acme, "/storage/raw/presign-upload", &body).await;
        problem(res, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(app.footprint().await, before, "{name} wrote something");
    }
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let raw = |body: &'static str, ct: Option<&'static str>| {
        let mut r = app
            .request(&acme, Method::POST, "/storage/raw/presign-upload")
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r
    };
    let before = app.footprint().await;
    problem(
        raw("{\"filename\": ", Some("application/json"))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    problem(
        raw("not json", Some("application/json"))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    problem(
        raw("{}", None).send().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    problem(
        raw("{}", Some("text/plain")).send().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = json!({"filename": "a", "content_type": "text/plain", "size_bytes": 1, "pad": "x".repeat(200_000)});
    problem(
        app.post(&acme, "/storage/raw/presign-upload", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn register_refuses_bad_fields_and_leaves_the_asset_pending() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"0123456789".to_vec();
    let p = app
        .presign(&acme, "r.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    let id = p["asset_id"].as_str().unwrap().to_owned();
    let body = |change: &dyn Fn(&mut Value)| {
        let mut v = json!({"asset_id": id, "sha256": sha256_hex(&bytes), "size_bytes": bytes.len(), "content_type": "application/octet-stream"});
        change(&mut v);
        v
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "malformed id",
            body(&|v| v["asset_id"] = json!("not-a-uuid")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown id",
            body(&|v| v["asset_id"] = json!(uuid::Uuid::now_v7())),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "bad sha",
            body(&|v| v["sha256"] = json!("xyz")),
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        ),
        (
            "negative size",
            body(&|v| v["size_bytes"] = json!(-10)),
            StatusCode::BAD_REQUEST,
            "invalid_size",
        ),
        (
            "string size",
            body(&|v| v["size_bytes"] = json!("10")),
            StatusCode::BAD_REQUEST,
            "invalid_size",
        ),
        (
            "huge size",
            body(&|v| v["size_bytes"] = json!(u64::MAX)),
            StatusCode::BAD_REQUEST,
            "size_too_large",
        ),
        (
            "bad content type",
            body(&|v| v["content_type"] = json!("nope")),
            StatusCode::BAD_REQUEST,
            "invalid_content_type",
        ),
        (
            "bad time",
            body(&|v| v["captured_at"] = json!("yesterday")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad location",
            body(&|v| v["capture_location"] = json!({"lat": 100, "lon": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_capture_location",
        ),
        (
            "bad metadata",
            body(&|v| v["metadata"] = json!([1])),
            StatusCode::BAD_REQUEST,
            "invalid_metadata",
        ),
        (
            "bad pii flags",
            body(&|v| v["pii_flags"] = json!(["NOT OK"])),
            StatusCode::BAD_REQUEST,
            "invalid_pii_flags",
        ),
        (
            "bad source ref",
            body(&|v| v["source_ref"] = json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_source_ref",
        ),
    ];
    for (name, b, status, code) in cases {
        let before = app.footprint().await;
        problem(
            app.post(&acme, "/storage/raw/register", &b).await,
            status,
            code,
        )
        .await;
        assert_eq!(app.footprint().await, before, "{name} wrote something");
    }
    let v: Value = app
        .get(&acme, &format!("/storage/raw/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "pending");
}

#[tokio::test]
async fn presign_download_refuses_bad_lifetimes() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let asset = app.store(&acme, "d.bin", b"download me").await;
    for bad in [json!(0), json!(-5), json!(604_801), json!("60"), json!(1.5)] {
        let before = app.footprint().await;
        let res = app
            .post(
                &acme,
                "/storage/raw/presign-download",
                &json!({"asset_id": asset["asset_id"], "expires_in": bad}),
            )
            .await;
        problem(res, StatusCode::BAD_REQUEST, "invalid_expires_in").await;
        assert_eq!(
            app.footprint().await,
            before,
            "expires_in {bad} wrote something"
        );
    }
    let ok = app
        .post(
            &acme,
            "/storage/raw/presign-download",
            &json!({"asset_id": asset["asset_id"], "expires_in": 604_800}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn scope_headers_and_tokens_are_checked() {
    let app = TestApp::spawn().await;
    let good = app.owner("acme", "dev");
    let claims = app.claims("mallory", &[("acme", Role::Owner)], 3600);
    let claims_json = serde_json::to_value(&claims).unwrap();
    let hs = |alg: jsonwebtoken::Algorithm, secret: &[u8], c: &cairn::auth::Claims| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            c,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let expired = hs(
        jsonwebtoken::Algorithm::HS256,
        crate::helpers::SECRET.as_bytes(),
        &app.claims("mallory", &[("acme", Role::Owner)], -3600),
    );
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims_json)
    );
    let mut no_exp = claims_json.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let without_exp = {
        let t = hs(
            jsonwebtoken::Algorithm::HS256,
            crate::helpers::SECRET.as_bytes(),
            &claims,
        );
        // Re-sign a payload without `exp` by hand.
        let header = t.split('.').next().unwrap().to_owned();
        let payload = b64(&no_exp);
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(crate::helpers::SECRET.as_bytes()).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{sig}")
    };
    let with = |token: Option<String>, tenant: Option<&str>, env: Option<&str>| Caller {
        token,
        tenant: tenant.map(str::to_owned),
        env: env.map(str::to_owned),
    };
    let t = good.token.clone();
    let cases: Vec<(&str, Caller, StatusCode, &str)> = vec![
        (
            "no token",
            with(None, Some("acme"), Some("dev")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "garbage token",
            with(Some("garbage".into()), Some("acme"), Some("dev")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "alg none",
            with(Some(alg_none), Some("acme"), Some("dev")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "expired",
            with(Some(expired), Some("acme"), Some("dev")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "without exp",
            with(Some(without_exp), Some("acme"), Some("dev")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong key",
            with(
                Some(hs(
                    jsonwebtoken::Algorithm::HS256,
                    b"another-secret-another-secret-xx",
                    &claims,
                )),
                Some("acme"),
                Some("dev"),
            ),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "switched alg",
            with(
                Some(hs(
                    jsonwebtoken::Algorithm::HS512,
                    crate::helpers::SECRET.as_bytes(),
                    &claims,
                )),
                Some("acme"),
                Some("dev"),
            ),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "missing tenant",
            with(t.clone(), None, Some("dev")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "missing env",
            with(t.clone(), Some("acme"), None),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "unknown env",
            with(t.clone(), Some("acme"), Some("qa")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "malformed tenant",
            with(t.clone(), Some("ACME"), Some("dev")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "tenant too long",
            with(t.clone(), Some(&"a".repeat(64)), Some("dev")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ];
    let body = presign_body(|_| {});
    for (name, who, status, code) in cases {
        let before = app.footprint().await;
        let res = app.post(&who, "/storage/raw/presign-upload", &body).await;
        problem(res, status, code).await;
        assert_eq!(app.footprint().await, before, "{name} wrote something");
        // Reads are guarded the same way.
        let res = app
            .get(&who, &format!("/storage/raw/{}", uuid::Uuid::now_v7()))
            .await;
        assert_eq!(res.status(), status, "{name} (read)");
        // And the event log.
        problem(app.get(&who, "/events").await, status, code).await;
    }
    let basic = app
        .client
        .post(format!("{}/storage/raw/presign-upload", app.base))
        .header("authorization", "Basic YTpi")
        .header("x-tenant-id", "acme")
        .header("x-env", "dev")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(basic, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
