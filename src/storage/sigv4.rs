//! AWS Signature Version 4 for query-string presigned URLs and browser POST policies.
//!
//! Why our own: the SDK presigner cannot sign `x-amz-checksum-sha256` (aws-sdk-rust#1103), has no
//! POST policies (aws-sdk-rust#863), and costs tens of microseconds a URL on the manifest hot path.
//! Here the derived signing key is cached per day, and a test proves the URLs are byte-identical to
//! the SDK's for the same inputs and time.
use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The credentials of one signing identity.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary credentials (a role's session) expire; `None` for long-term keys.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Credentials {
    /// `wanted`, cut to the credentials' expiry: S3 refuses a presigned request once the
    /// credentials that signed it have expired, whatever the URL's own expiry says.
    pub fn cap(&self, wanted: DateTime<Utc>) -> DateTime<Utc> {
        self.expires_at.map_or(wanted, |end| wanted.min(end))
    }

    /// `secs` from `now`, cut to the credentials' remaining life ([`Credentials::cap`]); at
    /// least 1 (SigV4's smallest).
    pub fn cap_secs(&self, secs: u64, now: DateTime<Utc>) -> u64 {
        match self.expires_at {
            Some(end) => secs.min((end - now).num_seconds().max(1) as u64),
            None => secs,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.access_key_id)
    }
}

/// Signs for one region and service, caching the derived key for the current day and identity.
pub struct Signer {
    region: String,
    service: String,
    cache: Mutex<Option<CachedKey>>,
}

struct CachedKey {
    date: String,
    access_key_id: String,
    secret_hash: [u8; 32],
    key: [u8; 32],
}

/// A request to presign. `path` is the canonical (already percent-encoded) URI path.
pub struct Presign<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    /// Extra query parameters, unencoded, in the order they should appear before the signature's.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers the client must send, lowercase names; `host` is added.
    pub headers: &'a [(&'a str, &'a str)],
    pub expires_in: u64,
    pub now: DateTime<Utc>,
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key size");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters.
pub fn uri_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An S3 object key as a canonical URI path: each segment encoded, `/` kept.
pub fn key_path(key: &str) -> String {
    key.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

impl Signer {
    pub fn new(region: &str, service: &str) -> Self {
        Self {
            region: region.to_owned(),
            service: service.to_owned(),
            cache: Mutex::new(None),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/{}/aws4_request", self.region, self.service)
    }

    /// The derived signing key for `date` (YYYYMMDD), from the cache when it is today's.
    fn signing_key(&self, creds: &Credentials, date: &str) -> [u8; 32] {
        let secret_hash: [u8; 32] = Sha256::digest(creds.secret_access_key.as_bytes()).into();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref() {
            if c.date == date
                && c.access_key_id == creds.access_key_id
                && c.secret_hash == secret_hash
            {
                return c.key;
            }
        }
        let k_date = hmac(
            format!("AWS4{}", creds.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        *cache = Some(CachedKey {
            date: date.to_owned(),
            access_key_id: creds.access_key_id.clone(),
            secret_hash,
            key,
        });
        key
    }

    /// A presigned URL (`UNSIGNED-PAYLOAD`), valid for `req.expires_in` seconds or until the
    /// credentials expire, whichever comes first.
    pub fn presign(&self, creds: &Credentials, req: &Presign<'_>) -> String {
        let amz_date = req.now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = &amz_date[..8];
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .chain(std::iter::once(("host".to_owned(), req.host.to_owned())))
            .collect();
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let credential = format!("{}/{}", creds.access_key_id, self.scope(date));
        let expires = creds.cap_secs(req.expires_in, req.now).to_string();

        // Query parameters as they appear in the URL: the request's own, then the signature's.
        let mut params: Vec<(&str, &str)> = req.query.to_vec();
        params.extend([
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", credential.as_str()),
            ("X-Amz-Date", amz_date.as_str()),
            ("X-Amz-Expires", expires.as_str()),
            ("X-Amz-SignedHeaders", signed_headers.as_str()),
        ]);
        if let Some(token) = &creds.session_token {
            params.push(("X-Amz-Security-Token", token.as_str()));
        }
        let encoded: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (uri_encode(k), uri_encode(v)))
            .collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        let canonical_query = sorted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical_request = format!(
            "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
            req.method, req.path
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
            self.scope(date),
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let signature = hex::encode(hmac(
            &self.signing_key(creds, date),
            string_to_sign.as_bytes(),
        ));
        let query = encoded
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        format!(
            "{}://{}{}?{query}&X-Amz-Signature={signature}",
            req.scheme, req.host, req.path
        )
    }

    /// The form fields of a browser POST upload (besides `key`, `Content-Type` and the file):
    /// the base64 policy and the SigV4 fields that sign it. `conditions` are the policy's own
    /// conditions; the algorithm, credential, date (and token) conditions are added here. The
    /// policy expires at `expires_at` or when the credentials do, whichever comes first.
    pub fn post_policy(
        &self,
        creds: &Credentials,
        mut conditions: Vec<serde_json::Value>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = &amz_date[..8];
        let credential = format!("{}/{}", creds.access_key_id, self.scope(date));
        conditions.push(serde_json::json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }));
        conditions.push(serde_json::json!({ "x-amz-credential": credential }));
        conditions.push(serde_json::json!({ "x-amz-date": amz_date }));
        if let Some(token) = &creds.session_token {
            conditions.push(serde_json::json!({ "x-amz-security-token": token }));
        }
        let policy = serde_json::json!({
            "expiration": creds.cap(expires_at).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "conditions": conditions,
        });
        let policy_b64 = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signature = hex::encode(hmac(&self.signing_key(creds, date), policy_b64.as_bytes()));
        let mut fields = vec![
            ("policy".to_owned(), policy_b64),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), credential),
            ("x-amz-date".to_owned(), amz_date),
            ("x-amz-signature".to_owned(), signature),
        ];
        if let Some(token) = &creds.session_token {
            fields.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The example of AWS's "Authenticating Requests: Using Query Parameters" documentation
    /// (GET examplebucket/test.txt, 2013-05-24, 86400 s), whose signature is published.
    #[test]
    fn matches_the_documented_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires_at: None,
        };
        let signer = Signer::new("us-east-1", "s3");
        let url = signer.presign(
            &creds,
            &Presign {
                method: "GET",
                scheme: "https",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                headers: &[],
                expires_in: 86400,
                now: Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap(),
            },
        );
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    /// A role's session credentials: no URL or form outlives them.
    #[test]
    fn nothing_outlives_temporary_credentials() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let end = now + chrono::Duration::minutes(15);
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("token".into()),
            expires_at: Some(end),
        };
        assert_eq!(creds.cap_secs(7 * 86400, now), 900);
        assert_eq!(creds.cap_secs(60, now), 60);
        assert_eq!(creds.cap_secs(60, end + chrono::Duration::hours(1)), 1);
        assert_eq!(creds.cap(now + chrono::Duration::days(7)), end);
        assert_eq!(
            creds.cap(now + chrono::Duration::minutes(5)),
            now + chrono::Duration::minutes(5)
        );

        let signer = Signer::new("eu-west-1", "s3");
        let url = signer.presign(
            &creds,
            &Presign {
                method: "GET",
                scheme: "https",
                host: "b.s3.eu-west-1.amazonaws.com",
                path: "/k",
                query: &[],
                headers: &[],
                expires_in: 7 * 86400,
                now,
            },
        );
        assert!(url.contains("&X-Amz-Expires=900&"), "{url}");
        let fields = signer.post_policy(&creds, vec![], now + chrono::Duration::days(7), now);
        let policy = base64::engine::general_purpose::STANDARD
            .decode(&fields[0].1)
            .unwrap();
        let policy: serde_json::Value = serde_json::from_slice(&policy).unwrap();
        assert_eq!(policy["expiration"], "2026-11-22T12:15:00.000Z");

        // Long-term keys: the asked-for lifetime.
        let keys = Credentials {
            expires_at: None,
            ..creds
        };
        assert_eq!(keys.cap_secs(7 * 86400, now), 7 * 86400);
    }

    #[test]
    fn keys_are_encoded_per_segment() {
        assert_eq!(
            key_path("tenants/a/dev/raw/x/my file+ü.png"),
            "tenants/a/dev/raw/x/my%20file%2B%C3%BC.png"
        );
    }
}
