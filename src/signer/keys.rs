//! CloudFront keys over OpenSSL: RSA-2048 (PKCS#1 v1.5 signatures) and ECDSA P-256 (DER
//! signatures), with SHA-1 or SHA-256. Private keys are parsed once, at start-up.
use chrono::{DateTime, Utc};
use openssl::{
    error::ErrorStack,
    hash::MessageDigest,
    nid::Nid,
    pkey::{HasPublic, Id, PKey, Private, Public},
    rsa::Rsa,
};

use super::HashAlgorithm;

/// The key types CloudFront accepts for trusted key groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    EcdsaP256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA-2048",
            Self::EcdsaP256 => "ECDSA P-256",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a usable PEM key: {0}")]
    Pem(String),
    #[error("{0}")]
    Unsupported(String),
}

/// A CloudFront key: the id of its public key in CloudFront, the private key, and the time from
/// which it may sign (rotation: the newest active key signs).
#[derive(Clone)]
pub struct SigningKey {
    key_pair_id: String,
    algorithm: KeyAlgorithm,
    active_from: DateTime<Utc>,
    pkey: PKey<Private>,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_pair_id", &self.key_pair_id)
            .field("algorithm", &self.algorithm)
            .field("active_from", &self.active_from)
            .field("key", &"****")
            .finish()
    }
}

impl SigningKey {
    /// An RSA-2048 or ECDSA P-256 private key in PEM (PKCS#1, SEC1 or PKCS#8; unencrypted).
    pub fn from_pem(
        key_pair_id: &str,
        pem: &[u8],
        active_from: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        check_key_pair_id(key_pair_id)?;
        if !contains(pem, b"-----BEGIN ") {
            return Err(KeyError::Pem("no `-----BEGIN` line".into()));
        }
        if contains(pem, b"ENCRYPTED") {
            return Err(KeyError::Pem(
                "the private key is encrypted; give CloudFront keys as unencrypted PEM".into(),
            ));
        }
        if !contains(pem, b"PRIVATE KEY-----") {
            return Err(KeyError::Pem(
                "no private key (`BEGIN RSA PRIVATE KEY`, `BEGIN EC PRIVATE KEY` or `BEGIN PRIVATE KEY`); \
                 CloudFront signing needs the private half"
                    .into(),
            ));
        }
        // A password callback that gives none: OpenSSL must never prompt on the terminal.
        let pkey = PKey::private_key_from_pem_callback(pem, |_| Ok(0))
            .map_err(|e| KeyError::Pem(format!("cannot parse the private key ({})", first(&e))))?;
        let algorithm = classify(&pkey)?;
        let der = pkey
            .public_key_to_der()
            .map_err(|e| KeyError::Pem(format!("cannot derive the public key ({})", first(&e))))?;
        let public = PKey::public_key_from_der(&der)
            .map_err(|e| KeyError::Pem(format!("cannot derive the public key ({})", first(&e))))?;
        // A self-test rather than OpenSSL's key check (whose primality tests take ~75 ms for
        // RSA-2048): the key must make signatures its public half accepts.
        const PROBE: &[u8] = b"cairn: CloudFront key self-test";
        let works = try_sign(&pkey, PROBE, HashAlgorithm::Sha256)
            .ok()
            .and_then(|sig| verify(&public, PROBE, &sig, HashAlgorithm::Sha256).ok())
            .unwrap_or(false);
        if !works {
            return Err(KeyError::Pem(format!(
                "the {} private key is inconsistent: its signatures do not verify",
                algorithm.as_str()
            )));
        }
        Ok(Self {
            key_pair_id: key_pair_id.to_owned(),
            algorithm,
            active_from,
            pkey,
            public: VerifyingKey {
                key_pair_id: key_pair_id.to_owned(),
                algorithm,
                pkey: public,
            },
        })
    }

    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub fn active_from(&self) -> DateTime<Utc> {
        self.active_from
    }

    /// The public half, as the local CDN endpoint verifies with it.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }

    /// Raw signature of `message` (PKCS#1 v1.5 for RSA, DER for ECDSA).
    ///
    /// # Panics
    /// Only if OpenSSL fails to sign with a key it parsed and checked (out of memory).
    pub fn sign(&self, message: &[u8], hash: HashAlgorithm) -> Vec<u8> {
        try_sign(&self.pkey, message, hash)
            .expect("OpenSSL signs with a self-tested RSA-2048 or P-256 key")
    }
}

/// A public key, by key pair id.
#[derive(Clone)]
pub struct VerifyingKey {
    key_pair_id: String,
    algorithm: KeyAlgorithm,
    pkey: PKey<Public>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_pair_id", &self.key_pair_id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An RSA-2048 or ECDSA P-256 public key in PEM: `BEGIN PUBLIC KEY` (what CloudFront is given)
    /// or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(key_pair_id: &str, pem: &[u8]) -> Result<Self, KeyError> {
        check_key_pair_id(key_pair_id)?;
        let pkey = if contains(pem, b"-----BEGIN PUBLIC KEY-----") {
            PKey::public_key_from_pem(pem)
        } else if contains(pem, b"-----BEGIN RSA PUBLIC KEY-----") {
            Rsa::public_key_from_pem_pkcs1(pem).and_then(PKey::from_rsa)
        } else {
            return Err(KeyError::Pem(
                "no public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`)".into(),
            ));
        }
        .map_err(|e| KeyError::Pem(format!("cannot parse the public key ({})", first(&e))))?;
        let algorithm = classify(&pkey)?;
        Ok(Self {
            key_pair_id: key_pair_id.to_owned(),
            algorithm,
            pkey,
        })
    }

    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's signature of `message` with `hash`. Any malformed
    /// signature is simply not valid.
    pub fn verify(&self, message: &[u8], signature: &[u8], hash: HashAlgorithm) -> bool {
        verify(&self.pkey, message, signature, hash).unwrap_or(false)
    }
}

fn try_sign(
    key: &PKey<Private>,
    message: &[u8],
    hash: HashAlgorithm,
) -> Result<Vec<u8>, ErrorStack> {
    openssl::sign::Signer::new(digest(hash), key)?.sign_oneshot_to_vec(message)
}

fn verify(
    key: &PKey<Public>,
    message: &[u8],
    signature: &[u8],
    hash: HashAlgorithm,
) -> Result<bool, ErrorStack> {
    openssl::sign::Verifier::new(digest(hash), key)?.verify_oneshot(signature, message)
}

fn digest(hash: HashAlgorithm) -> MessageDigest {
    match hash {
        HashAlgorithm::Sha1 => MessageDigest::sha1(),
        HashAlgorithm::Sha256 => MessageDigest::sha256(),
    }
}

/// RSA of exactly 2048 bits or EC on P-256; anything else is refused with the reason.
fn classify<T: HasPublic>(pkey: &PKey<T>) -> Result<KeyAlgorithm, KeyError> {
    const NEED: &str = "CloudFront accepts RSA-2048 and ECDSA P-256 keys";
    match pkey.id() {
        Id::RSA => match pkey.bits() {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            bits => Err(KeyError::Unsupported(format!(
                "an RSA key of {bits} bits; {NEED}"
            ))),
        },
        Id::EC => {
            let curve = pkey
                .ec_key()
                .map_err(|e| KeyError::Pem(format!("unreadable EC key ({})", first(&e))))?
                .group()
                .curve_name();
            match curve {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyAlgorithm::EcdsaP256),
                Some(nid) => Err(KeyError::Unsupported(format!(
                    "an EC key on curve {}; {NEED}",
                    nid.short_name().unwrap_or("(unnamed)")
                ))),
                None => Err(KeyError::Unsupported(format!(
                    "an EC key with explicit curve parameters; {NEED} (named curve prime256v1)"
                ))),
            }
        }
        Id::ED25519 => Err(KeyError::Unsupported(format!("an Ed25519 key; {NEED}"))),
        Id::ED448 => Err(KeyError::Unsupported(format!("an Ed448 key; {NEED}"))),
        Id::RSA_PSS => Err(KeyError::Unsupported(format!(
            "an RSA-PSS-only key; {NEED} (plain RSA, PKCS#1 v1.5 signatures)"
        ))),
        Id::DSA => Err(KeyError::Unsupported(format!("a DSA key; {NEED}"))),
        _ => Err(KeyError::Unsupported(format!(
            "an unsupported key type; {NEED}"
        ))),
    }
}

/// CloudFront public key ids are letters and digits (`K2JCJMDEHXQW5F`); they go into URLs and
/// cookies verbatim.
fn check_key_pair_id(id: &str) -> Result<(), KeyError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyError::Unsupported(format!(
            "key pair id `{}` is not a CloudFront public key id (letters and digits)",
            id.escape_debug()
        )));
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// OpenSSL's first reason, without the error queue's noise.
fn first(e: &ErrorStack) -> String {
    e.errors()
        .first()
        .map(|e| e.reason().unwrap_or("unknown reason").to_owned())
        .unwrap_or_else(|| "unknown reason".to_owned())
}
