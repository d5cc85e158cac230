//! JWT verification with one pinned algorithm (HS256, RS256 or ES256, chosen by the configured key,
//! never by the token), and minting for `cairn token`. `exp` and `sub` are required; `nbf`, when
//! present, is checked (30 s of leeway, as `exp`); `aud` may be one string or an array (RFC 7519
//! §4.1.3), and with `CAIRN_JWT_AUDIENCE` it is required and must name it.
use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{JwtConfig, JwtKey};

/// A tenant role. Writes need `owner` or `admin`; reads any role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub fn can_write(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Owner, Role::Admin, Role::Member, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub tenants: BTreeMap<String, Role>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub operator: bool,
}

/// A token's `aud`: one audience or several, as RFC 7519 allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Whether the token is meant for `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("cannot mint tokens: {0}")]
    Mint(String),
}

pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(cfg: &JwtConfig) -> Result<Self, TokenError> {
        let (alg, key) = match &cfg.key {
            JwtKey::Hs256(s) => (
                Algorithm::HS256,
                DecodingKey::from_secret(s.expose().as_bytes()),
            ),
            JwtKey::Rs256(key) => (Algorithm::RS256, key.decoding_key().clone()),
            JwtKey::Es256(key) => (Algorithm::ES256, key.decoding_key().clone()),
            JwtKey::InDataDir(path) => {
                return Err(TokenError::Invalid(format!(
                    "the token secret {} was not read at start-up",
                    path.display()
                )))
            }
        };
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = 30;
        // A token not valid yet is refused like an expired one (only when it has an `nbf`).
        validation.validate_nbf = true;
        // A configured issuer or audience must also be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        required.extend(cfg.issuer.as_ref().map(|_| "iss"));
        required.extend(cfg.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

/// Signs `claims` with the configured HS256 secret (local use; an RS256/ES256 deployment mints
/// tokens with its identity provider instead).
pub fn mint(cfg: &JwtConfig, claims: &Claims) -> Result<String, TokenError> {
    match &cfg.key {
        JwtKey::Hs256(s) => jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(s.expose().as_bytes()),
        )
        .map_err(|e| TokenError::Mint(e.to_string())),
        _ => Err(TokenError::Mint(
            "Cairn verifies with a public key (CAIRN_JWT_PUBLIC_KEY); mint tokens with the matching private key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg() -> JwtConfig {
        JwtConfig {
            key: JwtKey::Hs256(Secret::new("s".repeat(32))),
            issuer: None,
            audience: None,
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            exp,
            iat: None,
            iss: None,
            aud: None,
            tenants: BTreeMap::from([("acme".into(), Role::Owner)]),
            operator: false,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let v = Verifier::new(&cfg()).unwrap();
        let now = chrono::Utc::now().timestamp();
        let t = mint(&cfg(), &claims(now + 60)).unwrap();
        assert_eq!(v.verify(&t).unwrap().tenants["acme"], Role::Owner);
        let old = mint(&cfg(), &claims(now - 3600)).unwrap();
        assert!(v.verify(&old).is_err());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let mut c = cfg();
        c.issuer = Some("idp".into());
        c.audience = Some("cairn".into());
        let v = Verifier::new(&c).unwrap();
        let mut cl = claims(chrono::Utc::now().timestamp() + 60);
        assert!(v.verify(&mint(&c, &cl).unwrap()).is_err());
        cl.iss = Some("idp".into());
        cl.aud = Some(Audience::One("cairn".into()));
        assert!(v.verify(&mint(&c, &cl).unwrap()).is_ok());
        cl.aud = Some(Audience::One("other".into()));
        assert!(v.verify(&mint(&c, &cl).unwrap()).is_err());
    }

    /// Signs any JSON claims with the test secret.
    fn sign(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret("s".repeat(32).as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let v = Verifier::new(&cfg()).unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = |nbf: serde_json::Value| {
            sign(&serde_json::json!({"sub": "alice", "exp": now + 3600, "nbf": nbf}))
        };
        assert!(v.verify(&token((now - 60).into())).is_ok());
        assert!(v.verify(&token(now.into())).is_ok());
        // Within the leeway for clock skew, as `exp`.
        assert!(v.verify(&token((now + 20).into())).is_ok());
        assert!(v.verify(&token((now + 120).into())).is_err());
        assert!(v.verify(&token((now + 365 * 86400).into())).is_err());
        assert!(v.verify(&token("tomorrow".into())).is_err());
    }

    #[test]
    fn the_audience_may_be_an_array() {
        let mut c = cfg();
        c.audience = Some("cairn".into());
        let v = Verifier::new(&c).unwrap();
        let exp = chrono::Utc::now().timestamp() + 60;
        let token = |aud: serde_json::Value| {
            sign(&serde_json::json!({"sub": "alice", "exp": exp, "aud": aud}))
        };
        let claims = v
            .verify(&token(serde_json::json!(["other", "cairn"])))
            .unwrap();
        let aud = claims.aud.unwrap();
        assert_eq!(aud, Audience::Many(vec!["other".into(), "cairn".into()]));
        assert!(aud.contains("cairn") && !aud.contains("cair"));
        assert!(v.verify(&token(serde_json::json!(["cairn"]))).is_ok());
        assert!(v.verify(&token(serde_json::json!("cairn"))).is_ok());
        for refused in [
            serde_json::json!(["other"]),
            serde_json::json!([]),
            serde_json::json!("other"),
            serde_json::json!(["cairn-staging"]),
            serde_json::json!(42),
        ] {
            assert!(v.verify(&token(refused.clone())).is_err(), "{refused}");
        }
        // Required once configured.
        let no_aud = sign(&serde_json::json!({"sub": "alice", "exp": exp}));
        assert!(v.verify(&no_aud).is_err());
    }
}
