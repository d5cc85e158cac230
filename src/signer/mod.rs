//! CloudFront signed URLs and cookies (no official Rust signer exists): canned and custom
//! policies, RSA-2048 and ECDSA P-256 keys, SHA-1 and SHA-256 (`Hash-Algorithm=SHA256`), and
//! CloudFront's URL-safe base64. Pure functions over OpenSSL; the reference vectors under
//! `tests/fixtures/cloudfront/` (made by botocore's `CloudFrontSigner`, see
//! `scripts/cloudfront-vectors.py`) prove them.
//!
//! - [`keys`]: loading and checking keys, raw signatures.
//! - [`policy`]: the policy JSON, its checks, CloudFront's base64.
//! - here: the [`Signer`] (rotation, one signing operation per policy), what a signed policy
//!   looks like in a URL or cookies, and the [`Verifier`] that checks them as CloudFront would.
use std::{
    fmt::Write as _,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, Utc};

mod keys;
mod policy;
#[cfg(test)]
mod tests;

pub use keys::{KeyAlgorithm, KeyError, SigningKey, VerifyingKey};
pub use policy::{decode, encode, Policy};

/// The digest CloudFront verifies with: SHA-1 (its default) or SHA-256 (`Hash-Algorithm=SHA256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    /// `SHA1` or `SHA256` (CloudFront's spelling; case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("the signature has expired")]
    Expired,
    #[error("the signature is not valid yet")]
    NotYetValid,
    #[error("the signature does not cover this address")]
    IpAddress,
    #[error("the signature does not cover this resource")]
    Resource,
    #[error("the signature is missing or malformed")]
    Malformed,
    #[error("unknown key pair id")]
    UnknownKey,
    #[error("the signature does not match")]
    BadSignature,
}

/// A signed policy, signed once and reusable for every URL its resource covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    pub policy: Policy,
    /// Canned: URLs carry `Expires` (and cookies `CloudFront-Expires`) instead of the policy.
    pub canned: bool,
    /// CloudFront base64 of the policy JSON.
    pub policy_b64: String,
    /// CloudFront base64 of the signature.
    pub signature: String,
    pub key_pair_id: String,
    pub hash: HashAlgorithm,
}

impl SignedPolicy {
    /// The query parameters, in botocore's order: `Expires` (canned) or `Policy` (custom),
    /// `Signature`, `Key-Pair-Id`, then `Hash-Algorithm=SHA256` when SHA-256 (CloudFront's
    /// developer guide puts it last). Every value is in CloudFront's URL-safe alphabet.
    pub fn query(&self) -> String {
        let mut q = String::with_capacity(self.policy_b64.len() + self.signature.len() + 64);
        if self.canned {
            let _ = write!(q, "Expires={}", self.policy.date_less_than);
        } else {
            let _ = write!(q, "Policy={}", self.policy_b64);
        }
        let _ = write!(
            q,
            "&Signature={}&Key-Pair-Id={}",
            self.signature, self.key_pair_id
        );
        if self.hash == HashAlgorithm::Sha256 {
            q.push_str("&Hash-Algorithm=SHA256");
        }
        q
    }

    /// `url` with [`Self::query`] appended after `?` (or `&` when `url` has a query).
    pub fn apply(&self, url: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{}", self.query())
    }

    /// Cookie names and values: `CloudFront-Policy` (custom) or `CloudFront-Expires` (canned),
    /// `CloudFront-Signature`, `CloudFront-Key-Pair-Id`, and `CloudFront-Hash-Algorithm` when SHA-256.
    pub fn cookies(&self) -> Vec<(&'static str, String)> {
        let mut c = Vec::with_capacity(4);
        if self.canned {
            c.push((COOKIE_EXPIRES, self.policy.date_less_than.to_string()));
        } else {
            c.push((COOKIE_POLICY, self.policy_b64.clone()));
        }
        c.push((COOKIE_SIGNATURE, self.signature.clone()));
        c.push((COOKIE_KEY_PAIR_ID, self.key_pair_id.clone()));
        if self.hash == HashAlgorithm::Sha256 {
            c.push((COOKIE_HASH, HashAlgorithm::Sha256.as_str().to_owned()));
        }
        c
    }
}

/// The query parameters a signed URL carries, which CloudFront strips before matching the
/// policy's resource.
pub const QUERY_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

const COOKIE_EXPIRES: &str = "CloudFront-Expires";
const COOKIE_POLICY: &str = "CloudFront-Policy";
const COOKIE_SIGNATURE: &str = "CloudFront-Signature";
const COOKIE_KEY_PAIR_ID: &str = "CloudFront-Key-Pair-Id";
const COOKIE_HASH: &str = "CloudFront-Hash-Algorithm";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no CloudFront key is active yet (the earliest becomes active at {0})")]
    NoActiveKey(DateTime<Utc>),
}

/// The configured keys; the newest active one signs. Counts signing operations.
#[derive(Debug)]
pub struct Signer {
    keys: Vec<SigningKey>,
    hash: HashAlgorithm,
    ops: AtomicU64,
}

impl Signer {
    /// At least one key; key pair ids must be unique.
    pub fn new(keys: Vec<SigningKey>, hash: HashAlgorithm) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Unsupported(
                "CloudFront signing needs at least one key".into(),
            ));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.key_pair_id() == k.key_pair_id()) {
                return Err(KeyError::Unsupported(format!(
                    "key pair id `{}` is configured twice",
                    k.key_pair_id()
                )));
            }
        }
        Ok(Self {
            keys,
            hash,
            ops: AtomicU64::new(0),
        })
    }

    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The key that signs at `now`: the one with the latest `active_from` not after `now`
    /// (ties: the first configured).
    pub fn active(&self, now: DateTime<Utc>) -> Result<&SigningKey, SignError> {
        let mut best: Option<&SigningKey> = None;
        for k in &self.keys {
            if k.active_from() <= now && best.is_none_or(|b| k.active_from() > b.active_from()) {
                best = Some(k);
            }
        }
        best.ok_or_else(|| {
            let earliest = self.keys.iter().map(SigningKey::active_from).min();
            SignError::NoActiveKey(earliest.unwrap_or(now))
        })
    }

    /// Signs a canned policy for exactly `url` until `expires` (one signing operation).
    pub fn sign_canned(
        &self,
        url: &str,
        expires: i64,
        now: DateTime<Utc>,
    ) -> Result<SignedPolicy, SignError> {
        self.sign(Policy::canned(url, expires), true, now)
    }

    /// Signs a custom policy (one signing operation).
    pub fn sign_custom(
        &self,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<SignedPolicy, SignError> {
        self.sign(policy, false, now)
    }

    fn sign(
        &self,
        policy: Policy,
        canned: bool,
        now: DateTime<Utc>,
    ) -> Result<SignedPolicy, SignError> {
        let key = self.active(now)?;
        let json = policy.to_json();
        let signature = key.sign(json.as_bytes(), self.hash);
        self.ops.fetch_add(1, Ordering::Relaxed);
        Ok(SignedPolicy {
            policy,
            canned,
            policy_b64: encode(json.as_bytes()),
            signature: encode(&signature),
            key_pair_id: key.key_pair_id().to_owned(),
            hash: self.hash,
        })
    }

    /// Signing operations performed so far.
    pub fn signing_ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Public halves of every configured key, for the local CDN endpoint.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.keys.iter().map(SigningKey::verifying_key).collect())
    }
}

/// What a signed request carries, from its query string or its cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub expires: Option<i64>,
    pub policy_b64: Option<String>,
    pub signature: String,
    pub key_pair_id: String,
    pub hash: HashAlgorithm,
}

impl Grant {
    /// From decoded query parameters (`Expires`|`Policy`, `Signature`, `Key-Pair-Id`,
    /// `Hash-Algorithm`); `None` when there is no `Signature`. A repeated signing parameter, a
    /// non-numeric `Expires` or an unknown `Hash-Algorithm` give a grant that
    /// [`Verifier::check`] refuses as `Malformed`.
    pub fn from_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut parts = Parts::default();
        for (name, value) in params {
            let slot = match name {
                "Expires" => &mut parts.expires,
                "Policy" => &mut parts.policy,
                "Signature" => &mut parts.signature,
                "Key-Pair-Id" => &mut parts.key_pair_id,
                "Hash-Algorithm" => &mut parts.hash,
                _ => continue,
            };
            if slot.is_some() {
                parts.malformed = true;
            } else {
                *slot = Some(value);
            }
        }
        parts.grant()
    }

    /// From `CloudFront-*` cookies (name, value pairs); `None` when there is no signature cookie.
    /// A cookie sent twice (the same name set for two paths) counts once: the first, which
    /// browsers send for the most specific path. Values may be double-quoted.
    pub fn from_cookies<'a>(cookies: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut parts = Parts::default();
        for (name, value) in cookies {
            let slot = match name {
                COOKIE_EXPIRES => &mut parts.expires,
                COOKIE_POLICY => &mut parts.policy,
                COOKIE_SIGNATURE => &mut parts.signature,
                COOKIE_KEY_PAIR_ID => &mut parts.key_pair_id,
                COOKIE_HASH => &mut parts.hash,
                _ => continue,
            };
            if slot.is_none() {
                let unquoted = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                *slot = Some(unquoted);
            }
        }
        parts.grant()
    }
}

/// The signing parameters as they arrived.
#[derive(Default)]
struct Parts<'a> {
    expires: Option<&'a str>,
    policy: Option<&'a str>,
    signature: Option<&'a str>,
    key_pair_id: Option<&'a str>,
    hash: Option<&'a str>,
    malformed: bool,
}

impl Parts<'_> {
    fn grant(self) -> Option<Grant> {
        let signature = self.signature?.to_owned();
        let key_pair_id = self.key_pair_id.unwrap_or_default().to_owned();
        let expires = match self.expires {
            None => Ok(None),
            Some(s) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map(Some).map_err(|_| ())
            }
            Some(_) => Err(()),
        };
        let hash = match self.hash {
            None => Some(HashAlgorithm::Sha1),
            Some(s) => HashAlgorithm::parse(s),
        };
        match (expires, hash) {
            (Ok(expires), Some(hash)) if !self.malformed => Some(Grant {
                expires,
                policy_b64: self.policy.map(str::to_owned),
                signature,
                key_pair_id,
                hash,
            }),
            // Neither `Expires` nor `Policy`: `Verifier::check` refuses it as malformed.
            _ => Some(Grant {
                expires: None,
                policy_b64: None,
                signature,
                key_pair_id,
                hash: HashAlgorithm::Sha1,
            }),
        }
    }
}

/// Checks grants as CloudFront would.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerifyingKey>,
}

impl Verifier {
    /// The public keys by key pair id (with a repeated id, the first counts).
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        Self { keys }
    }

    /// `url` is the request URL without the signing parameters. A canned grant covers exactly
    /// `url` until `Expires`; a custom one whatever its policy allows.
    ///
    /// In order: a grant without a signature, a key pair id, or exactly one of `Expires` and
    /// `Policy` is `Malformed`; an unknown key is `UnknownKey`; a policy that does not decode or
    /// parse is `Malformed`; then the signature over the exact policy bytes (`BadSignature`);
    /// then [`Policy::allows`].
    pub fn check(
        &self,
        url: &str,
        grant: &Grant,
        now: i64,
        ip: Option<IpAddr>,
    ) -> Result<(), Denied> {
        if grant.signature.is_empty() || grant.key_pair_id.is_empty() {
            return Err(Denied::Malformed);
        }
        if grant.expires.is_some() == grant.policy_b64.is_some() {
            return Err(Denied::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.key_pair_id() == grant.key_pair_id)
            .ok_or(Denied::UnknownKey)?;
        let (policy, bytes) = match (grant.expires, &grant.policy_b64) {
            (Some(expires), None) => {
                let policy = Policy::canned(url, expires);
                let json = policy.to_json().into_bytes();
                (policy, json)
            }
            (None, Some(b64)) => {
                let bytes = decode(b64).ok_or(Denied::Malformed)?;
                (Policy::parse(&bytes)?, bytes)
            }
            _ => return Err(Denied::Malformed),
        };
        let signature = decode(&grant.signature).ok_or(Denied::Malformed)?;
        if !key.verify(&bytes, &signature, grant.hash) {
            return Err(Denied::BadSignature);
        }
        policy.allows(url, now, ip)
    }
}
