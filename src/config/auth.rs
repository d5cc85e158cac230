//! Token settings: the HS256 secret or the RS256/ES256 public key bearer tokens are verified
//! with (parsed once, here), and the required issuer and audience.
use std::{fmt, path::PathBuf};

use super::{
    values::{invalid, non_empty, pem_or_path, Optional, Secret},
    ConfigError,
};

/// How bearer tokens are verified.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthSettings {
    /// HS256 secret for bearer tokens (local mode generates one in the data dir when unset).
    #[arg(long, env = "CAIRN_JWT_SECRET", hide_env_values = true, value_parser = jwt_secret)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key (or a path to one) for RS256/ES256 tokens; excludes `CAIRN_JWT_SECRET`.
    #[arg(long, env = "CAIRN_JWT_PUBLIC_KEY", hide_env_values = true, value_parser = public_key)]
    pub jwt_public_key: Option<JwtKey>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "CAIRN_JWT_ISSUER", default_value = "", hide_default_value = true, value_parser = non_empty)]
    pub jwt_issuer: Optional<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "CAIRN_JWT_AUDIENCE", default_value = "", hide_default_value = true, value_parser = non_empty)]
    pub jwt_audience: Optional<String>,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The one algorithm tokens must use; the token's own header never chooses it.
#[derive(Debug, Clone)]
pub enum JwtKey {
    Hs256(Secret),
    Rs256(PublicKey),
    Es256(PublicKey),
    /// Local mode without a configured key: the HS256 secret in this file of the data dir,
    /// which start-up ([`super::Config::provision`]) reads (or generates) into `Hs256`.
    InDataDir(PathBuf),
}

/// A parsed public key; its PEM is not kept.
#[derive(Clone)]
pub struct PublicKey(jsonwebtoken::DecodingKey);

impl PublicKey {
    pub fn decoding_key(&self) -> &jsonwebtoken::DecodingKey {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey")
    }
}

fn jwt_secret(v: &str) -> Result<Secret, ConfigError> {
    if v.len() < 32 {
        return Err(invalid("CAIRN_JWT_SECRET", "must be at least 32 bytes"));
    }
    Ok(Secret::new(v))
}

fn public_key(value: &str) -> Result<JwtKey, ConfigError> {
    const VAR: &str = "CAIRN_JWT_PUBLIC_KEY";
    let pem = pem_or_path(VAR, value)?;
    if let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()) {
        Ok(JwtKey::Rs256(PublicKey(key)))
    } else if let Ok(key) = jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()) {
        Ok(JwtKey::Es256(PublicKey(key)))
    } else {
        Err(invalid(VAR, "not an RSA or EC (P-256) public key in PEM"))
    }
}

impl AuthSettings {
    /// `local`: whether the local store is in use, where an unset key means the data dir's.
    pub fn config(
        &self,
        local: bool,
        data_dir: &std::path::Path,
    ) -> Result<JwtConfig, ConfigError> {
        let key = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CAIRN_JWT_SECRET",
                    "set either CAIRN_JWT_SECRET or CAIRN_JWT_PUBLIC_KEY, not both",
                ))
            }
            (Some(secret), None) => JwtKey::Hs256(secret.clone()),
            (None, Some(key)) => key.clone(),
            (None, None) if local => JwtKey::InDataDir(data_dir.join("jwt-secret")),
            (None, None) => {
                return Err(ConfigError::Missing {
                    var: "CAIRN_JWT_SECRET",
                    why: "with CAIRN_STORAGE=s3 set CAIRN_JWT_SECRET or CAIRN_JWT_PUBLIC_KEY"
                        .into(),
                })
            }
        };
        Ok(JwtConfig {
            key,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        })
    }
}
