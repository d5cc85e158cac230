//! Object keys: deterministic, tenant/env-prefixed and never reused (DESIGN §3).
use std::fmt;

use uuid::Uuid;

use super::{
    media::{Kind, Visibility},
    Env, Filename, RunId, TenantId,
};

/// A key in the object store. Built by one function per key kind, or parsed from a signed URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Raw asset: `tenants/<tenant_id>/<env>/raw/<asset_id>/<filename>`.
    pub fn raw_asset(tenant: &TenantId, env: &Env, asset_id: Uuid, filename: &Filename) -> Self {
        Self(format!("tenants/{tenant}/{env}/raw/{asset_id}/{filename}"))
    }

    /// Artifact: `[public/]tenants/<tenant_id>/<env>/runs/<run_id>/<kind>/<artifact_id>/<filename>`.
    /// The `public/` prefix is what lets the CDN serve public items unsigned.
    pub fn artifact(
        tenant: &TenantId,
        env: &Env,
        run: &RunId,
        kind: Kind,
        visibility: Visibility,
        artifact_id: Uuid,
        filename: &Filename,
    ) -> Self {
        let prefix = match visibility {
            Visibility::Public => "public/",
            Visibility::Private => "",
        };
        Self(format!(
            "{prefix}tenants/{tenant}/{env}/runs/{run}/{kind}/{artifact_id}/{filename}"
        ))
    }

    /// The prefix of a run's private artifact keys: `tenants/<tenant_id>/<env>/runs/<run_id>/`.
    /// A CloudFront policy for `<prefix>*` covers every private artifact the run stored itself,
    /// and nothing of another run or raw asset (the trailing `/` keeps `r1/` off `r10/`).
    pub fn run_prefix(tenant: &TenantId, env: &Env, run: &RunId) -> String {
        format!("tenants/{tenant}/{env}/runs/{run}/")
    }

    /// Whether the key is under `public/`, which the CDN serves unsigned.
    pub fn is_public(&self) -> bool {
        self.0.starts_with("public/")
    }

    /// A key as it arrives in a URL path: non-empty, at most 1024 bytes, no empty, `.` or `..`
    /// segments, no control characters. Its signature is checked separately.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 1024
            && !s.chars().any(|c| c.is_control() || c == '\\')
            && s.split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key percent-encoded segment by segment, for use in a URL path.
    pub fn url_path(&self) -> String {
        self.0
            .split('/')
            .map(|seg| percent_encoding::utf8_percent_encode(seg, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Everything but RFC 3986 unreserved characters is encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_key_format_and_encoding() {
        let t = TenantId::parse("acme").unwrap();
        let e = Env::parse("dev", &["dev".into()]).unwrap();
        let id = Uuid::nil();
        let k = ObjectKey::raw_asset(&t, &e, id, &Filename::parse("a b%.png").unwrap());
        assert_eq!(
            k.as_str(),
            "tenants/acme/dev/raw/00000000-0000-0000-0000-000000000000/a b%.png"
        );
        assert!(k.url_path().ends_with("/a%20b%25.png"));
    }

    #[test]
    fn artifact_keys() {
        let t = TenantId::parse("acme").unwrap();
        let e = Env::parse("prod", &["prod".into()]).unwrap();
        let r = RunId::parse("run-7").unwrap();
        let f = Filename::parse("hero.png").unwrap();
        let id = Uuid::nil();
        let private = ObjectKey::artifact(&t, &e, &r, Kind::Image, Visibility::Private, id, &f);
        assert_eq!(
            private.as_str(),
            "tenants/acme/prod/runs/run-7/image/00000000-0000-0000-0000-000000000000/hero.png"
        );
        let public = ObjectKey::artifact(&t, &e, &r, Kind::Image, Visibility::Public, id, &f);
        assert_eq!(public.as_str(), format!("public/{private}"));
        assert!(public.is_public() && !private.is_public());
        let prefix = ObjectKey::run_prefix(&t, &e, &r);
        assert_eq!(prefix, "tenants/acme/prod/runs/run-7/");
        assert!(private.as_str().starts_with(&prefix));
        assert!(!public.as_str().starts_with(&prefix));
    }

    #[test]
    fn parse_refuses_traversal() {
        for bad in ["", "/a", "a//b", "a/../b", "a/./b", "a/"] {
            assert!(ObjectKey::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ObjectKey::parse("tenants/a/dev/raw/x/y.png").is_some());
    }
}
