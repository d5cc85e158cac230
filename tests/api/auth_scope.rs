//! Public-key tokens (RS256, ES256): accepted when signed by the private key, refused when the
//! token picks another algorithm (including HS256 "signed" with the public key itself).
use cairn::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;

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
        s.jwt_secret = None;
        s.jwt_public_key = Some(public_pem.clone());
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
        s.jwt_secret = None;
        s.jwt_public_key = Some(fixture("jwt-es256.pub"));
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
