//! CloudFront signed URLs and cookies (no official Rust signer exists): canned and custom
//! policies, RSA-2048 and ECDSA P-256 keys, SHA-1 and SHA-256 (`Hash-Algorithm=SHA256`), and
//! CloudFront's URL-safe base64. Pure functions over OpenSSL; the reference vectors under
//! `tests/fixtures/cloudfront/` (made by botocore's `CloudFrontSigner`) prove them.
//!
//! STUB: the API the rest of Cairn codes against; bodies to be written.
#![allow(unused_variables, dead_code)]
use std::{net::IpAddr, sync::atomic::AtomicU64};

use chrono::{DateTime, Utc};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    EcdsaP256,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key: {0}")]
    Pem(String),
    #[error("{0}")]
    Unsupported(String),
}

/// A CloudFront key: the id of its public key in CloudFront, the private key, and the time from
/// which it may sign (rotation: the newest active key signs).
pub struct SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(****)")
    }
}

impl SigningKey {
    /// An RSA-2048 or ECDSA P-256 private key in PEM (PKCS#1, SEC1 or PKCS#8).
    pub fn from_pem(
        key_pair_id: &str,
        pem: &[u8],
        active_from: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        todo!()
    }
    pub fn key_pair_id(&self) -> &str {
        todo!()
    }
    pub fn algorithm(&self) -> KeyAlgorithm {
        todo!()
    }
    pub fn active_from(&self) -> DateTime<Utc> {
        todo!()
    }
    /// The public half, as the local CDN endpoint verifies with it.
    pub fn verifying_key(&self) -> VerifyingKey {
        todo!()
    }
    /// Raw signature of `message` (PKCS#1 v1.5 for RSA, DER for ECDSA).
    pub fn sign(&self, message: &[u8], hash: HashAlgorithm) -> Vec<u8> {
        todo!()
    }
}

/// A public key, by key pair id.
#[derive(Clone)]
pub struct VerifyingKey {}

impl VerifyingKey {
    pub fn from_pem(key_pair_id: &str, pem: &[u8]) -> Result<Self, KeyError> {
        todo!()
    }
    pub fn key_pair_id(&self) -> &str {
        todo!()
    }
    pub fn verify(&self, message: &[u8], signature: &[u8], hash: HashAlgorithm) -> bool {
        todo!()
    }
}

/// One policy statement, as CloudFront accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A URL, with `*` (any run of characters) and `?` (one character) wildcards in custom policies.
    pub resource: String,
    /// Epoch seconds; required.
    pub date_less_than: i64,
    pub date_greater_than: Option<i64>,
    /// `a.b.c.d` or `a.b.c.d/n` (a bare address means `/32`).
    pub ip_address: Option<String>,
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

impl Policy {
    /// A canned policy: exactly `resource`, until `expires`.
    pub fn canned(resource: &str, expires: i64) -> Self {
        todo!()
    }
    /// The compact JSON CloudFront signs, keys in the order botocore writes them
    /// (`Resource`, `Condition`: `DateLessThan`, `IpAddress`, `DateGreaterThan`).
    pub fn to_json(&self) -> String {
        todo!()
    }
    /// Parses a policy document (for verification).
    pub fn parse(json: &[u8]) -> Result<Self, Denied> {
        todo!()
    }
    /// Whether a request for `url` from `ip` at `now` is within the policy.
    pub fn allows(&self, url: &str, now: i64, ip: Option<IpAddr>) -> Result<(), Denied> {
        todo!()
    }
}

/// CloudFront's URL-safe base64: standard base64 with `+`→`-`, `=`→`_`, `/`→`~`.
pub fn encode(bytes: &[u8]) -> String {
    todo!()
}

pub fn decode(s: &str) -> Option<Vec<u8>> {
    todo!()
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
    /// `Signature`, `Key-Pair-Id`, then `Hash-Algorithm=SHA256` when SHA-256.
    pub fn query(&self) -> String {
        todo!()
    }
    /// `url` with [`Self::query`] appended after `?` (or `&` when `url` has a query).
    pub fn apply(&self, url: &str) -> String {
        todo!()
    }
    /// Cookie names and values: `CloudFront-Policy` (custom) or `CloudFront-Expires` (canned),
    /// `CloudFront-Signature`, `CloudFront-Key-Pair-Id`, and `CloudFront-Hash-Algorithm` when SHA-256.
    pub fn cookies(&self) -> Vec<(&'static str, String)> {
        todo!()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no CloudFront key is active yet (the earliest becomes active at {0})")]
    NoActiveKey(DateTime<Utc>),
}

/// The configured keys; the newest active one signs. Counts signing operations.
#[derive(Debug)]
pub struct Signer {
    ops: AtomicU64,
}

impl Signer {
    /// At least one key; key pair ids must be unique.
    pub fn new(keys: Vec<SigningKey>, hash: HashAlgorithm) -> Result<Self, KeyError> {
        todo!()
    }
    pub fn hash(&self) -> HashAlgorithm {
        todo!()
    }
    /// The key that signs at `now`: the one with the latest `active_from` not after `now`
    /// (ties: the first configured).
    pub fn active(&self, now: DateTime<Utc>) -> Result<&SigningKey, SignError> {
        todo!()
    }
    /// Signs a canned policy for exactly `url` until `expires` (one signing operation).
    pub fn sign_canned(
        &self,
        url: &str,
        expires: i64,
        now: DateTime<Utc>,
    ) -> Result<SignedPolicy, SignError> {
        todo!()
    }
    /// Signs a custom policy (one signing operation).
    pub fn sign_custom(
        &self,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<SignedPolicy, SignError> {
        todo!()
    }
    /// Signing operations performed so far.
    pub fn signing_ops(&self) -> u64 {
        todo!()
    }
    /// Public halves of every configured key, for the local CDN endpoint.
    pub fn verifier(&self) -> Verifier {
        todo!()
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
    /// `Hash-Algorithm`); `None` when there is no `Signature`.
    pub fn from_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        todo!()
    }
    /// From `CloudFront-*` cookies (name, value pairs); `None` when there is no signature cookie.
    pub fn from_cookies<'a>(cookies: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        todo!()
    }
}

/// Checks grants as CloudFront would.
#[derive(Clone)]
pub struct Verifier {}

impl Verifier {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        todo!()
    }
    /// `url` is the request URL without the signing parameters. A canned grant covers exactly
    /// `url` until `Expires`; a custom one whatever its policy allows.
    pub fn check(
        &self,
        url: &str,
        grant: &Grant,
        now: i64,
        ip: Option<IpAddr>,
    ) -> Result<(), Denied> {
        todo!()
    }
}
