//! `CAIRN_CDN_LOG_PREFIX`: where the metering job reads CloudFront's access logs, and the rule
//! that it never reads tenant data as logs.
use super::{
    values::{invalid, non_blank, Optional},
    ConfigError,
};

const VAR: &str = "CAIRN_CDN_LOG_PREFIX";

/// The location as written: infra/'s `CdnLogPrefix` output (`s3://<LogBucket>/<LogPrefix>`) or a
/// bare key prefix in the object bucket. Which bucket is the object bucket is known only with
/// the storage settings: [`CdnLogLocation::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdnLogLocation {
    /// A key prefix in the object bucket, checked and normalised ([`parse_cdn_log_prefix`]).
    Prefix(String),
    /// `s3://<bucket>/<prefix>`: `prefix` is a key prefix (not yet normalised), `given` the value.
    Bucket {
        bucket: String,
        prefix: String,
        given: String,
    },
}

impl CdnLogLocation {
    /// A blank value: unset.
    pub fn parse(v: &str) -> Result<Optional<Self>, ConfigError> {
        let Some(v) = non_blank(v) else {
            return Ok(None);
        };
        let Some(location) = v.strip_prefix("s3://") else {
            if v.contains("://") {
                return Err(invalid(
                    VAR,
                    format!("`{v}` is neither `s3://<bucket>/<prefix>` nor a key prefix"),
                ));
            }
            return Ok(Some(Self::Prefix(parse_cdn_log_prefix(v)?)));
        };
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if !is_bucket_name(bucket) {
            return Err(invalid(
                VAR,
                format!("`{bucket}` in `{v}` is not a bucket name"),
            ));
        }
        if prefix.starts_with('/') {
            return Err(invalid(
                VAR,
                format!("`{v}`: the prefix is not a key prefix"),
            ));
        }
        check_key_prefix(prefix)?;
        Ok(Some(Self::Bucket {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            given: v.to_owned(),
        }))
    }

    /// The log bucket when it is another bucket than `object_bucket` (`None`: the object bucket)
    /// and the prefix, normalised to end in `/` unless it is a whole log bucket of its own. A
    /// bucket needs the S3 store (`object_bucket` set): the local one has none to read it with.
    pub fn resolve(
        &self,
        object_bucket: Option<&str>,
    ) -> Result<(Option<String>, String), ConfigError> {
        let (bucket, prefix, given) = match self {
            Self::Prefix(p) => return Ok((None, p.clone())),
            Self::Bucket {
                bucket,
                prefix,
                given,
            } => (bucket, prefix, given),
        };
        let Some(object_bucket) = object_bucket else {
            return Err(invalid(
                VAR,
                format!(
                    "`{given}` is an S3 bucket, and CAIRN_STORAGE=local has no S3 client to read \
                     it: use CAIRN_STORAGE=s3, or a key prefix in the local store (`cdn-logs/`)"
                ),
            ));
        };
        if bucket == object_bucket {
            return Ok((None, parse_cdn_log_prefix(prefix)?));
        }
        // A bucket of CloudFront's own holds no tenant data: all of it may be read.
        Ok((Some(bucket.clone()), with_slash(prefix)))
    }
}

/// S3's rule for bucket names: 3 to 63 lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit.
fn is_bucket_name(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn check_key_prefix(p: &str) -> Result<(), ConfigError> {
    if p.chars().any(|c| c.is_control() || c == '\\') || p.contains("//") {
        return Err(invalid(VAR, "is not a key prefix"));
    }
    Ok(())
}

/// `p` ending in `/`, unless it is empty.
fn with_slash(p: &str) -> String {
    if p.is_empty() || p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// A key prefix in the object bucket, without a leading `/` and normalised to end in `/`. It
/// may not cover tenant data ([`covers_tenant_data`]): whatever the metering job finds there is
/// read as CloudFront's own word on who was served what.
fn parse_cdn_log_prefix(v: &str) -> Result<String, ConfigError> {
    let p = v.trim_start_matches('/');
    check_key_prefix(p)?;
    if covers_tenant_data(p) {
        return Err(invalid(
            VAR,
            format!(
                "`{v}` would read tenant data (`tenants/`, `public/` or the whole bucket) as CDN \
                 logs: use a prefix of its own, like `cdn-logs/`"
            ),
        ));
    }
    Ok(with_slash(p))
}

/// Whether a log prefix (in the object bucket, without its leading `/`) overlaps the keys
/// tenants write: it is empty (the whole bucket), lies under `tenants/` or `public/`, or is
/// itself the start of one of them (`t`, `pub`), which a listing would run into.
pub(crate) fn covers_tenant_data(prefix: &str) -> bool {
    const TENANT_DATA: [&str; 2] = ["tenants/", "public/"];
    TENANT_DATA
        .iter()
        .any(|data| prefix.starts_with(data) || data.starts_with(prefix))
}
