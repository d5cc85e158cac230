//! The local store's signed URLs and browser forms: what a `PUT`, `GET` or `POST` to `/o/` must
//! match, checked against its HMAC signature and expiry.
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{LocalStore, PostPolicy, PutGrant, UrlError};
use crate::values::ObjectKey;

impl LocalStore {
    pub(super) fn put_parts(
        key: &str,
        exp: &str,
        content_type: &str,
        size: &str,
        sha256: &str,
    ) -> [String; 6] {
        ["PUT", key, exp, content_type, size, sha256].map(str::to_owned)
    }

    /// Checks a PUT URL against the request's own content type and length.
    pub fn verify_put(&self, grant: &PutGrant<'_>, now: DateTime<Utc>) -> Result<(), UrlError> {
        let parts = Self::put_parts(
            grant.key.as_str(),
            &grant.exp.to_string(),
            grant.content_type,
            &grant.size.to_string(),
            grant.sha256.unwrap_or(""),
        );
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        check(self.signer.verify(&refs, grant.sig), grant.exp, now)
    }

    /// Checks a GET URL: the key, expiry, download name and disposition (`inline` or
    /// `attachment`) it was signed for.
    pub fn verify_get(
        &self,
        key: &ObjectKey,
        exp: i64,
        filename: &str,
        disposition: &str,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), UrlError> {
        let ok = self.signer.verify(
            &["GET", key.as_str(), &exp.to_string(), filename, disposition],
            sig,
        );
        check(ok, exp, now)
    }

    /// Decodes and checks a form policy.
    pub fn verify_post(
        &self,
        policy_b64: &str,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<PostPolicy, UrlError> {
        if !self.signer.verify(&["POST", policy_b64], sig) {
            return Err(UrlError::BadSignature);
        }
        let policy: PostPolicy = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(policy_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(UrlError::BadSignature)?;
        check(true, policy.exp, now)?;
        Ok(policy)
    }

    pub(super) fn url(&self, key: &ObjectKey, query: &[(&str, &str)]) -> String {
        let q = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, QUERY)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{}/o/{}?{q}", self.public_url, key.url_path())
    }
}

const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn check(sig_ok: bool, exp: i64, now: DateTime<Utc>) -> Result<(), UrlError> {
    if !sig_ok {
        Err(UrlError::BadSignature)
    } else if now.timestamp() > exp {
        Err(UrlError::Expired)
    } else {
        Ok(())
    }
}
