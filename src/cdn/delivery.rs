//! Which URL a client gets for an object (DESIGN §6):
//! - a public item: `<CDN base>/<key>`, unsigned and never expiring, where the base is
//!   `CAIRN_CDN_DOMAIN` or Cairn's own `/cdn` endpoint;
//! - a private item: a CloudFront signed URL when CloudFront keys are configured, else the object
//!   store's presigned GET.
//!
//! Download URLs carry `response-content-disposition` with the item's own filename (S3 answers
//! with that header, CloudFront forwards the parameter to S3), so items that share a stored
//! object (dedup) still download under their own names.
use chrono::{DateTime, Utc};

use super::signer::{KeyError, SignError, SignedPolicy, Signer, Verifier};
use crate::{
    config::{CdnConfig, CdnSigning},
    storage::{
        content_disposition, shows_inline,
        sigv4::{key_path, uri_encode},
        ObjectStore, StoreError,
    },
    values::{Filename, ObjectKey},
};

/// The query parameter that names the download (S3's response header override).
pub const DISPOSITION_PARAM: &str = "response-content-disposition";

/// What a download URL names: the item's own filename and type, and whether the caller asked
/// to save it (`attachment`) rather than view it. Passive types show `inline`; active ones too
/// where they are served sandboxed (the CDN, Cairn's own endpoints), else as attachments
/// ([`shows_inline`]).
#[derive(Debug, Clone, Copy)]
pub struct Download<'a> {
    pub filename: &'a Filename,
    pub content_type: &'a str,
    pub attachment: bool,
}

impl Download<'_> {
    /// The `Content-Disposition` the download is answered with when served `sandboxed`.
    pub fn disposition(&self, sandboxed: bool) -> String {
        let inline = shows_inline(self.content_type, sandboxed, self.attachment);
        content_disposition(self.filename.as_str(), inline)
    }
}

/// Delivery settings and the CloudFront signer, built once at start-up.
pub struct Cdn {
    /// `scheme://host[/path]` of the CDN, without a trailing slash.
    base: String,
    /// The path part of `base` (`""`, or `/cdn` for Cairn's own endpoint).
    base_path: String,
    signer: Option<Signer>,
    verifier: Option<Verifier>,
    cookie_domain: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl From<DeliveryError> for crate::problem::Problem {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Store(e) => e.into(),
            // Start-up refuses a configuration without an active key, so this is a bug.
            DeliveryError::Sign(e) => Self::internal(format!("CloudFront signing: {e}")),
        }
    }
}

impl Cdn {
    /// `public_url`: the base of Cairn's own URLs (the `/cdn` endpoint's when no CDN is set).
    pub fn new(cfg: &CdnConfig, public_url: &str, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let base = match &cfg.base_url {
            Some(b) => b.clone(),
            None => format!("{}/cdn", public_url.trim_end_matches('/')),
        };
        let base_path = base
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default();
        let signer = match &cfg.signing {
            CdnSigning::Presigned => None,
            CdnSigning::CloudFront(cf) => {
                // Parsed once, by the configuration.
                let signer = Signer::new(cf.keys.clone(), cf.hash)?;
                if let Err(e) = signer.active(now) {
                    return Err(KeyError::Unsupported(e.to_string()));
                }
                Some(signer)
            }
        };
        let verifier = signer.as_ref().map(Signer::verifier);
        Ok(Self {
            base,
            base_path,
            signer,
            verifier,
            cookie_domain: cfg.cookie_domain.clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The public halves of the CloudFront keys, for the `/cdn` endpoint.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_ref()
    }

    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// `<base>/<key>`, the key percent-encoded per segment: a public item's URL.
    pub fn object_url(&self, key: &ObjectKey) -> String {
        format!("{}/{}", self.base, key.url_path())
    }

    /// The object's URL naming the download: the CDN (CloudFront's response headers policy in
    /// infra/, or Cairn's own `/cdn/`) serves it sandboxed.
    pub fn download_url(&self, key: &ObjectKey, d: &Download<'_>) -> String {
        format!(
            "{}?{DISPOSITION_PARAM}={}",
            self.object_url(key),
            uri_encode(&d.disposition(true))
        )
    }

    /// The URL covering every object whose key starts with `prefix` (a custom policy's resource).
    pub fn prefix_resource(&self, prefix: &str) -> String {
        format!("{}/{}*", self.base, key_path(prefix))
    }

    /// The URL path under which the CDN serves the objects whose keys start with `prefix`
    /// (a signed cookie's `Path`).
    pub fn prefix_path(&self, prefix: &str) -> String {
        format!("{}/{}", self.base_path, key_path(prefix))
    }

    /// One signed policy for every object under `prefix` until `expires` (one signing
    /// operation), or `None` without CloudFront keys.
    pub fn sign_prefix(
        &self,
        prefix: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<PrefixGrant>, SignError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let policy = super::signer::Policy {
            resource: self.prefix_resource(prefix),
            date_less_than: expires.timestamp(),
            date_greater_than: None,
            ip_address: None,
        };
        let signed = signer.sign_custom(policy, now)?;
        Ok(Some(PrefixGrant {
            prefix: prefix.to_owned(),
            query: signed.query(),
            signed,
        }))
    }

    /// A private object's download URL until `expires_at`, and when it really expires: a
    /// canned-policy CloudFront URL with CloudFront keys (its own key pair, no AWS session
    /// involved), else the store's presigned GET, which dies with the store's credentials
    /// ([`crate::storage::url_expiry`]).
    pub async fn private_url(
        &self,
        store: &dyn ObjectStore,
        key: &ObjectKey,
        d: &Download<'_>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), DeliveryError> {
        match &self.signer {
            Some(signer) => {
                let url = self.download_url(key, d);
                let signed = signer.sign_canned(&url, expires_at.timestamp(), now)?;
                Ok((signed.apply(&url), expires_at))
            }
            None => {
                let expires_at = crate::storage::url_expiry(store, expires_at).await?;
                let inline = shows_inline(d.content_type, store.serves_safely(), d.attachment);
                let url = store
                    .presign_download(key, d.filename, inline, expires_at)
                    .await?;
                Ok((url, expires_at))
            }
        }
    }
}

/// A custom policy signed once for a key prefix (a run's objects), applied to many URLs.
#[derive(Debug, Clone)]
pub struct PrefixGrant {
    prefix: String,
    /// `signed`'s query string, built once for the many URLs it is appended to.
    query: String,
    pub signed: SignedPolicy,
}

impl PrefixGrant {
    /// Whether the grant's policy covers `key`.
    pub fn covers(&self, key: &ObjectKey) -> bool {
        key.as_str().starts_with(&self.prefix)
    }

    /// A signed download URL for a covered key; no signing happens here.
    pub fn url(&self, cdn: &Cdn, key: &ObjectKey, d: &Download<'_>) -> String {
        // A download URL always has a query (the disposition): the grant's follows with `&`.
        let mut url = cdn.download_url(key, d);
        url.reserve(self.query.len() + 1);
        url.push('&');
        url.push_str(&self.query);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::super::signer::SigningKey;
    use super::*;
    use crate::config::CloudFrontKeys;

    fn cfg(base: Option<&str>, keys: Option<Vec<(&str, &str, &str)>>) -> CdnConfig {
        let signing = match keys {
            None => CdnSigning::Presigned,
            Some(keys) => CdnSigning::CloudFront(CloudFrontKeys {
                keys: keys
                    .into_iter()
                    .map(|(id, file, from)| {
                        let pem = std::fs::read_to_string(format!(
                            "{}/tests/fixtures/cloudfront/{file}",
                            env!("CARGO_MANIFEST_DIR")
                        ))
                        .unwrap();
                        SigningKey::from_pem(
                            id,
                            pem.as_bytes(),
                            DateTime::parse_from_rfc3339(from).unwrap().to_utc(),
                        )
                        .unwrap()
                    })
                    .collect(),
                hash: super::super::signer::HashAlgorithm::Sha256,
            }),
        };
        CdnConfig {
            base_url: base.map(str::to_owned),
            signing,
            cookie_domain: None,
            invalidation: None,
        }
    }

    #[test]
    fn urls_on_the_cdn() {
        let own = Cdn::new(&cfg(None, None), "http://127.0.0.1:8080/", Utc::now()).unwrap();
        assert!(own.signer().is_none());
        assert_eq!(
            own.prefix_path("tenants/acme/dev/runs/r.1/"),
            "/cdn/tenants/acme/dev/runs/r.1/"
        );
        let key = ObjectKey::parse("public/tenants/acme/dev/runs/r.1/image/id/a b+c.png").unwrap();
        assert_eq!(
            own.object_url(&key),
            "http://127.0.0.1:8080/cdn/public/tenants/acme/dev/runs/r.1/image/id/a%20b%2Bc.png"
        );
        let cdn = Cdn::new(
            &cfg(Some("https://cdn.example.com"), None),
            "http://x",
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            cdn.prefix_path("tenants/acme/dev/runs/r.1/"),
            "/tenants/acme/dev/runs/r.1/"
        );
        let name = Filename::parse("a b+c.png").unwrap();
        let view = Download {
            filename: &name,
            content_type: "image/png",
            attachment: false,
        };
        assert_eq!(
            cdn.download_url(&key, &view),
            "https://cdn.example.com/public/tenants/acme/dev/runs/r.1/image/id/a%20b%2Bc.png\
             ?response-content-disposition=inline%3B%20filename%3D%22a%20b%2Bc.png%22%3B%20\
             filename%2A%3DUTF-8%27%27a%2520b%2Bc.png"
        );
        // Asked to save, or active content: an attachment; active content the CDN sandboxes
        // shows inline.
        let save = Download {
            attachment: true,
            ..view
        };
        assert!(cdn
            .download_url(&key, &save)
            .contains("?response-content-disposition=attachment%3B"));
        let page = Download {
            content_type: "text/html",
            ..view
        };
        assert!(cdn
            .download_url(&key, &page)
            .contains("?response-content-disposition=inline%3B"));
        assert_eq!(
            cdn.prefix_resource("tenants/acme/dev/runs/r.1/"),
            "https://cdn.example.com/tenants/acme/dev/runs/r.1/*"
        );
    }

    #[test]
    fn keys_must_be_active_at_start() {
        let future = cfg(
            None,
            Some(vec![("K1", "rsa-2048.pem", "2999-01-01T00:00:00Z")]),
        );
        let e = Cdn::new(&future, "http://x", Utc::now()).err().unwrap();
        assert!(e.to_string().contains("no CloudFront key is active"), "{e}");
        let rotating = cfg(
            None,
            Some(vec![
                ("KOLD", "rsa-2048.pem", "2020-01-01T00:00:00Z"),
                ("KNEW", "ecdsa-p256.pem", "2999-01-01T00:00:00Z"),
            ]),
        );
        let cdn = Cdn::new(&rotating, "http://x", Utc::now()).unwrap();
        let signer = cdn.signer().unwrap();
        assert_eq!(signer.active(Utc::now()).unwrap().key_pair_id(), "KOLD");
    }

    #[test]
    fn a_prefix_grant_covers_its_prefix_only() {
        let c = cfg(
            None,
            Some(vec![("K1", "ecdsa-p256.pem", "2020-01-01T00:00:00Z")]),
        );
        let cdn = Cdn::new(&c, "http://h", Utc::now()).unwrap();
        let now = Utc::now();
        let grant = cdn
            .sign_prefix(
                "tenants/acme/dev/runs/r1/",
                now + chrono::Duration::hours(1),
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(cdn.signer().unwrap().signing_ops(), 1);
        let inside = ObjectKey::parse("tenants/acme/dev/runs/r1/image/id/a.png").unwrap();
        let sibling = ObjectKey::parse("tenants/acme/dev/runs/r10/image/id/a.png").unwrap();
        assert!(grant.covers(&inside));
        assert!(!grant.covers(&sibling), "r1/ must not cover r10/");
        let name = Filename::parse("a.png").unwrap();
        let d = Download {
            filename: &name,
            content_type: "image/png",
            attachment: false,
        };
        let url = grant.url(&cdn, &inside, &d);
        assert!(url.starts_with("http://h/cdn/tenants/acme/dev/runs/r1/image/id/a.png?"));
        assert!(
            url.contains("&Policy=") && url.contains("&Key-Pair-Id=K1"),
            "{url}"
        );
        assert_eq!(
            cdn.signer().unwrap().signing_ops(),
            1,
            "applying signs nothing"
        );
    }

    /// On a role (temporary credentials), a private URL the store presigns ends with the
    /// session, and so does the `expires_at` reported with it.
    #[tokio::test]
    async fn presigned_private_urls_end_with_the_role_session() {
        let now = Utc::now();
        let session_end = now + chrono::Duration::minutes(20);
        let creds = aws_sdk_s3::config::Credentials::new(
            "ASIAEXAMPLEKEY",
            "secret",
            Some("session-token".into()),
            Some(session_end.into()),
            "test",
        );
        let s = crate::storage::s3::tests::store_with(creds, true);
        let week = now + chrono::Duration::days(7);
        let key = ObjectKey::parse("tenants/acme/dev/raw/0192f0a0/a.bin").unwrap();
        let name = Filename::parse("a.bin").unwrap();
        let cdn = Cdn::new(&cfg(None, None), "http://127.0.0.1:8080", now).unwrap();
        let d = Download {
            filename: &name,
            content_type: "application/octet-stream",
            attachment: false,
        };
        let (_, until) = cdn.private_url(&s, &key, &d, week, now).await.unwrap();
        assert_eq!(until.timestamp(), session_end.timestamp());
    }
}
