//! CDN settings: where public items are served from, the CloudFront keys private items are
//! signed with (each parsed once, here, so a bad key stops start-up), signed cookies, and the
//! distribution purged items are invalidated in.
use chrono::{DateTime, Utc};

use super::{
    storage::EndpointUrl,
    values::{invalid, non_blank, Optional},
    ConfigError,
};
use crate::signer::{HashAlgorithm, SigningKey};

/// Delivery through a CDN, CloudFront signing and invalidations.
#[derive(clap::Args, Debug, Clone)]
pub struct CdnSettings {
    /// CDN for delivery: a domain (`d111111abcdef8.cloudfront.net`, served over https) or a base
    /// URL. Unset: Cairn's own `/cdn/` endpoint.
    #[arg(long, env = "CAIRN_CDN_DOMAIN", default_value = "", hide_default_value = true, value_parser = base_url)]
    pub cdn_domain: Optional<String>,
    /// CloudFront public key ids, comma-separated (several for rotation), paired in order with
    /// `CAIRN_CLOUDFRONT_PRIVATE_KEY`. Set: private items get CloudFront signed URLs.
    #[arg(long, env = "CAIRN_CLOUDFRONT_KEY_PAIR_ID", default_value = "", hide_default_value = true, value_parser = key_pair_ids)]
    pub cloudfront_key_pair_id: Optional<Vec<String>>,
    /// The private keys (RSA-2048 or ECDSA P-256): PEM text (one or more keys) or comma-separated
    /// paths to PEM files, in the order of `CAIRN_CLOUDFRONT_KEY_PAIR_ID`.
    #[arg(long, env = "CAIRN_CLOUDFRONT_PRIVATE_KEY", hide_env_values = true, default_value = "",
          hide_default_value = true, value_parser = private_keys)]
    pub cloudfront_private_key: Optional<Vec<Pem>>,
    /// When each key may start signing (RFC 3339, comma-separated, in key order; empty: always).
    /// The newest active key signs, so a new key can be deployed before CloudFront trusts it.
    #[arg(long, env = "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM", default_value = "", hide_default_value = true, value_parser = active_from)]
    pub cloudfront_key_active_from: Optional<Vec<DateTime<Utc>>>,
    /// Digest of CloudFront signatures: `SHA256` or `SHA1` (CloudFront's original).
    #[arg(long, env = "CAIRN_CLOUDFRONT_HASH_ALGORITHM", default_value = "SHA256", value_parser = hash_algorithm)]
    pub cloudfront_hash_algorithm: HashAlgorithm,
    /// `Domain` attribute of signed cookies (a parent of the CDN's and the API's host names);
    /// unset: host-only cookies.
    #[arg(long, env = "CAIRN_CDN_COOKIE_DOMAIN", default_value = "", hide_default_value = true, value_parser = cookie_domain)]
    pub cdn_cookie_domain: Optional<String>,
    /// CloudFront distribution to invalidate purged public items in.
    #[arg(long, env = "CAIRN_CLOUDFRONT_DISTRIBUTION_ID", default_value = "", hide_default_value = true, value_parser = distribution_id)]
    pub cloudfront_distribution_id: Optional<String>,
}

/// The CloudFront API (invalidations).
#[derive(clap::Args, Debug, Clone)]
pub struct CloudFrontApiSettings {
    /// CloudFront API endpoint (tests: a local emulator); AWS itself when unset.
    #[arg(long, env = "AWS_ENDPOINT_URL_CLOUDFRONT", default_value = "", hide_default_value = true, value_parser = cloudfront_endpoint)]
    pub aws_endpoint_url_cloudfront: Optional<String>,
}

/// Where public items are served from and how private ones are signed.
#[derive(Debug, Clone)]
pub struct CdnConfig {
    /// `scheme://host[/path]` without a trailing slash; `None`: Cairn's own `/cdn` endpoint.
    pub base_url: Option<String>,
    pub signing: CdnSigning,
    pub cookie_domain: Option<String>,
    pub invalidation: Option<InvalidationConfig>,
}

/// How private items are delivered.
#[derive(Debug, Clone)]
pub enum CdnSigning {
    /// Presigned GETs of the object store.
    Presigned,
    /// CloudFront signed URLs and cookies.
    CloudFront(CloudFrontKeys),
}

#[derive(Debug, Clone)]
pub struct CloudFrontKeys {
    /// The parsed keys, each with its key pair id and activation time, in configuration order.
    pub keys: Vec<SigningKey>,
    pub hash: HashAlgorithm,
}

#[derive(Debug, Clone)]
pub struct InvalidationConfig {
    pub distribution_id: String,
    /// `scheme://host[:port]` of a CloudFront-compatible API; AWS itself when `None`.
    pub endpoint_url: Option<String>,
}

/// A private key's PEM text, kept only until it is parsed; `Debug` never shows it.
#[derive(Clone)]
pub struct Pem(String);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem(****)")
    }
}

const KEYS: &str = "CAIRN_CLOUDFRONT_PRIVATE_KEY";
const ACTIVE_FROM: &str = "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM";

fn base_url(v: &str) -> Result<Optional<String>, ConfigError> {
    let Some(d) = non_blank(v) else {
        return Ok(None);
    };
    let url = if d.contains("://") {
        d.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", d.trim_end_matches('/'))
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("CAIRN_CDN_DOMAIN", "must be a domain or an http(s) URL"))?;
    if rest.is_empty()
        || rest.starts_with('/')
        || rest.contains(['?', '#', ' '])
        || rest.chars().any(char::is_control)
    {
        return Err(invalid(
            "CAIRN_CDN_DOMAIN",
            format!("`{d}` is not a domain or a base URL"),
        ));
    }
    Ok(Some(url))
}

fn key_pair_ids(v: &str) -> Result<Optional<Vec<String>>, ConfigError> {
    let Some(ids) = non_blank(v) else {
        return Ok(None);
    };
    let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
    if ids
        .iter()
        .any(|id| id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
            "must list CloudFront public key ids (letters and digits), comma-separated",
        ));
    }
    Ok(Some(ids.into_iter().map(str::to_owned).collect()))
}

/// PEM text (one or more blocks) or comma-separated paths to PEM files.
fn private_keys(v: &str) -> Result<Optional<Vec<Pem>>, ConfigError> {
    let Some(keys) = non_blank(v) else {
        return Ok(None);
    };
    let pems = if keys.contains("-----BEGIN") {
        pem_blocks(keys)
    } else {
        keys.split(',')
            .map(str::trim)
            .map(|path| {
                std::fs::read_to_string(path)
                    .map_err(|e| invalid(KEYS, format!("cannot read `{path}`: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Some(pems.into_iter().map(Pem).collect()))
}

fn active_from(v: &str) -> Result<Optional<Vec<DateTime<Utc>>>, ConfigError> {
    let Some(list) = non_blank(v) else {
        return Ok(None);
    };
    list.split(',')
        .map(str::trim)
        .map(|t| {
            if t.is_empty() {
                Ok(DateTime::UNIX_EPOCH)
            } else {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| invalid(ACTIVE_FROM, format!("`{t}`: {e}")))
            }
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

fn hash_algorithm(v: &str) -> Result<HashAlgorithm, ConfigError> {
    match v.trim() {
        "" => Ok(HashAlgorithm::Sha256),
        h => HashAlgorithm::parse(h)
            .ok_or_else(|| invalid("CAIRN_CLOUDFRONT_HASH_ALGORITHM", "must be SHA1 or SHA256")),
    }
}

fn cookie_domain(v: &str) -> Result<Optional<String>, ConfigError> {
    let Some(d) = non_blank(v) else {
        return Ok(None);
    };
    let d = d.trim_start_matches('.');
    let ok = !d.is_empty()
        && d.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !ok {
        return Err(invalid(
            "CAIRN_CDN_COOKIE_DOMAIN",
            format!("`{d}` is not a domain"),
        ));
    }
    Ok(Some(d.to_ascii_lowercase()))
}

fn distribution_id(v: &str) -> Result<Optional<String>, ConfigError> {
    let Some(id) = non_blank(v) else {
        return Ok(None);
    };
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "CAIRN_CLOUDFRONT_DISTRIBUTION_ID",
            format!("`{id}` is not a distribution id"),
        ));
    }
    Ok(Some(id.to_owned()))
}

/// Without a trailing slash.
fn cloudfront_endpoint(v: &str) -> Result<Optional<String>, ConfigError> {
    let Some(u) = non_blank(v) else {
        return Ok(None);
    };
    EndpointUrl::parse(u).map_err(|why| invalid("AWS_ENDPOINT_URL_CLOUDFRONT", why))?;
    Ok(Some(u.trim_end_matches('/').to_owned()))
}

impl CdnSettings {
    pub fn config(&self, api: &CloudFrontApiSettings) -> Result<CdnConfig, ConfigError> {
        let signing =
            match (&self.cloudfront_key_pair_id, &self.cloudfront_private_key) {
                (None, None) => CdnSigning::Presigned,
                (Some(_), None) => {
                    return Err(ConfigError::Missing {
                        var: KEYS,
                        why: "CAIRN_CLOUDFRONT_KEY_PAIR_ID is set; CloudFront signing needs its \
                          private key"
                            .into(),
                    })
                }
                (None, Some(_)) => return Err(ConfigError::Missing {
                    var: "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                    why: "CAIRN_CLOUDFRONT_PRIVATE_KEY is set; CloudFront signing needs the key's \
                          id"
                    .into(),
                }),
                (Some(ids), Some(pems)) => CdnSigning::CloudFront(self.keys(ids, pems)?),
            };
        let invalidation = self
            .cloudfront_distribution_id
            .clone()
            .map(|distribution_id| InvalidationConfig {
                distribution_id,
                endpoint_url: api.aws_endpoint_url_cloudfront.clone(),
            });
        Ok(CdnConfig {
            base_url: self.cdn_domain.clone(),
            signing,
            cookie_domain: self.cdn_cookie_domain.clone(),
            invalidation,
        })
    }

    /// Pairs ids, keys and activation times, and parses each key: a bad one stops start-up.
    fn keys(&self, ids: &[String], pems: &[Pem]) -> Result<CloudFrontKeys, ConfigError> {
        if pems.len() != ids.len() {
            return Err(invalid(
                KEYS,
                format!(
                    "{} key(s) for {} key pair id(s) in CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                    pems.len(),
                    ids.len()
                ),
            ));
        }
        let times = match &self.cloudfront_key_active_from {
            None => vec![DateTime::UNIX_EPOCH; ids.len()],
            Some(times) if times.len() == ids.len() => times.clone(),
            Some(_) => {
                return Err(invalid(
                    ACTIVE_FROM,
                    "must list one time (or nothing) per key pair id",
                ))
            }
        };
        if times.iter().all(|t| *t > Utc::now()) {
            return Err(invalid(
                ACTIVE_FROM,
                "no key is active yet: at least one must be able to sign at start-up",
            ));
        }
        let mut keys: Vec<SigningKey> = Vec::with_capacity(ids.len());
        for ((id, pem), from) in ids.iter().zip(pems).zip(times) {
            if keys.iter().any(|k| k.key_pair_id() == id) {
                return Err(invalid(
                    "CAIRN_CLOUDFRONT_KEY_PAIR_ID",
                    format!("`{id}` is listed twice"),
                ));
            }
            let key = SigningKey::from_pem(id, pem.0.as_bytes(), from)
                .map_err(|e| invalid(KEYS, format!("key `{id}`: {e}")))?;
            keys.push(key);
        }
        Ok(CloudFrontKeys {
            keys,
            hash: self.cloudfront_hash_algorithm,
        })
    }
}

/// The PEM blocks in `text`, each from its `-----BEGIN` line to its `-----END ...-----` line.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN") {
        // `openssl ecparam -genkey` writes the curve's parameters before the key.
        if rest[start..].starts_with("-----BEGIN EC PARAMETERS-----") {
            match rest[start..].find("-----END EC PARAMETERS-----") {
                Some(end) => {
                    rest = &rest[start + end + 27..];
                    continue;
                }
                None => break,
            }
        }
        let from = &rest[start..];
        let Some(end) = from.find("-----END") else {
            out.push(from.to_owned());
            break;
        };
        let tail = &from[end + 8..];
        let close = tail
            .find("-----")
            .map(|i| end + 8 + i + 5)
            .unwrap_or(from.len());
        out.push(from[..close].to_owned());
        rest = &from[close..];
    }
    out
}
