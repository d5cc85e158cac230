//! Public-key tokens (RS256, ES256): accepted when signed by the private key, refused when the
//! token picks another algorithm (including HS256 "signed" with the public key itself). With
//! HS256 and RS256: a token whose `nbf` is still to come is refused, and `aud` may be a string or
//! an array (RFC 7519) that must name the configured audience.
use cairn::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, Caller, TestApp};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn check(alg: Algorithm, private: &str, public: &str) {
    let public_pem = fixture(public);
    let app = TestApp::spawn_with(|s| {
        s.auth.jwt_secret = None;
        s.set("CAIRN_JWT_PUBLIC_KEY", &public_pem);
    })
    .await;
    let claims = app.claims("alice", &[("acme", Role::Owner)], 3600);
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(fixture(private).as_bytes()).unwrap(),
        _ => EncodingKey::from_ec_pem(fixture(private).as_bytes()).unwrap(),
    };
    let who = |token: String| Caller {
        token: Some(token),
        tenant: Some("acme".into()),
        env: Some("dev".into()),
    };
    let good = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
    let res = app
        .get(
            &who(good),
            &format!("/storage/raw/{}", uuid::Uuid::now_v7()),
        )
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;

    // Algorithm confusion: HS256 keyed with the public key's own bytes.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let res = app
        .get(
            &who(confused),
            &format!("/storage/raw/{}", uuid::Uuid::now_v7()),
        )
        .await;
    problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn rs256_public_key() {
    check(Algorithm::RS256, "jwt-rs256.key", "jwt-rs256.pub").await;
}

#[tokio::test]
async fn es256_public_key() {
    check(Algorithm::ES256, "jwt-es256.key", "jwt-es256.pub").await;
}

#[tokio::test]
async fn a_public_key_from_another_pair_is_refused() {
    let app = TestApp::spawn_with(|s| {
        s.auth.jwt_secret = None;
        s.set("CAIRN_JWT_PUBLIC_KEY", &fixture("jwt-es256.pub"));
    })
    .await;
    let claims = app.claims("alice", &[("acme", Role::Owner)], 3600);
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(fixture("jwt-rs256.key").as_bytes()).unwrap(),
    )
    .unwrap();
    let who = Caller {
        token: Some(rs),
        tenant: Some("acme".into()),
        env: Some("dev".into()),
    };
    problem(
        app.get(&who, "/storage/raw/x").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

/// An app verifying `alg` tokens (HS256 with the test secret, RS256 with the fixture key pair),
/// with `audience` configured; and the key that signs its tokens.
async fn app_for(alg: Algorithm, audience: Option<&str>) -> (TestApp, EncodingKey) {
    let public_pem = fixture("jwt-rs256.pub");
    let app = TestApp::spawn_with(|s| {
        s.auth.jwt_audience = audience.map(str::to_owned);
        if alg == Algorithm::RS256 {
            s.auth.jwt_secret = None;
            s.set("CAIRN_JWT_PUBLIC_KEY", &public_pem);
        }
    })
    .await;
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(fixture("jwt-rs256.key").as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(crate::helpers::SECRET.as_bytes()),
    };
    (app, key)
}

/// Whether the app takes a token with the claims of an `acme` owner, changed by `extra`.
async fn accepted(app: &TestApp, alg: Algorithm, key: &EncodingKey, extra: Value) -> bool {
    let mut claims =
        serde_json::to_value(app.claims("alice", &[("acme", Role::Owner)], 3600)).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let token = jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap();
    let who = Caller {
        token: Some(token),
        tenant: Some("acme".into()),
        env: Some("dev".into()),
    };
    let res = app
        .get(&who, &format!("/storage/raw/{}", uuid::Uuid::now_v7()))
        .await;
    match res.status() {
        StatusCode::NOT_FOUND => true,
        StatusCode::UNAUTHORIZED => {
            problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
            false
        }
        other => panic!("neither taken nor refused: {other}"),
    }
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let now = chrono::Utc::now().timestamp();
    for alg in [Algorithm::HS256, Algorithm::RS256] {
        let (app, key) = app_for(alg, None).await;
        let nbf = |at: i64| json!({ "nbf": at });
        assert!(
            accepted(&app, alg, &key, nbf(now - 60)).await,
            "{alg:?}: valid since a minute"
        );
        assert!(
            accepted(&app, alg, &key, json!({})).await,
            "{alg:?}: no nbf"
        );
        assert!(
            !accepted(&app, alg, &key, nbf(now + 365 * 86400)).await,
            "{alg:?}: valid from next year"
        );
        assert!(
            !accepted(&app, alg, &key, nbf(now + 600)).await,
            "{alg:?}: in ten minutes"
        );
    }
}

#[tokio::test]
async fn the_audience_may_be_a_string_or_an_array() {
    for alg in [Algorithm::HS256, Algorithm::RS256] {
        let (app, key) = app_for(alg, Some("cairn")).await;
        for (aud, taken) in [
            (json!("cairn"), true),
            (json!(["cairn"]), true),
            (json!(["billing", "cairn"]), true),
            (json!("billing"), false),
            (json!(["billing"]), false),
            (json!(["billing", "cairn-staging"]), false),
            (json!([]), false),
        ] {
            let got = accepted(&app, alg, &key, json!({ "aud": aud })).await;
            assert_eq!(got, taken, "{alg:?}: aud {aud}");
        }
        assert!(
            !accepted(&app, alg, &key, json!({})).await,
            "{alg:?}: aud required"
        );
    }
}
