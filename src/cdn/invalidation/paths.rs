//! Which paths an object is invalidated under: every form CloudFront may cache it by (the
//! percent-encoded key Cairn hands out, and a public artifact's directory with `*`), and the
//! check that a queued path is one of them.
use super::*;

/// CloudFront's limit on an invalidation path.
const MAX_PATH_LEN: usize = 4000;

/// The URL path Cairn hands out for an object (`Cdn::object_url`): `/` + the key
/// percent-encoded per segment, every character but RFC 3986's unreserved ones encoded. An
/// encoded key never contains `*`, so it can never become a wildcard.
pub fn path_for(key: &ObjectKey) -> String {
    format!("/{}", key.url_path())
}

/// Every path to invalidate for the object at `key`: each cache entry of it CloudFront may hold
/// for a URL Cairn handed out.
///
/// - **Query strings.** The only query Cairn puts on a public URL is `/content`'s
///   `?response-content-disposition=...`, and the public cache policy in infra/ keys on the path
///   alone (`QueryStringBehavior: none`): every such URL is the one cache entry of its path, and
///   the bare path invalidates it. Private objects are never invalidated: they are reached only
///   with signed URLs (at most 7 days), and a deleted item gets none, so by the time the sweep
///   purges it (`CAIRN_PURGE_GRACE_SECS`, 7 days by default) none is left to reach the cached copy.
/// - **Encoding.** CloudFront's rule for invalidation paths: percent-encode non-ASCII and the
///   characters RFC 1738 calls unsafe, and nothing else, or the cached object is not
///   invalidated. That path comes first ([`invalidation_path`]); the path Cairn handed out
///   ([`path_for`]), which also encodes `!$&'()+,:=@`, follows when it differs, so the entry is
///   gone whichever form CloudFront's cache holds.
/// - **`*`** is CloudFront's wildcard and has no literal form. A public artifact's key whose
///   name holds one is invalidated with its directory: `/public/.../<artifact id>/*`, which holds
///   that object alone (ids are never reused). Such paths count against CloudFront's 15
///   wildcard paths in progress; [`batches`] sends at most [`MAX_BATCH_WILDCARDS`] at a time.
pub fn paths_for(key: &ObjectKey) -> Vec<String> {
    let k = key.as_str();
    if k.contains('*') {
        let segments: Vec<&str> = k.split('/').collect();
        if is_public_artifact_key(&segments) {
            let dir = &segments[..segments.len() - 1];
            return vec![format!("/{}/*", encode(dir))];
        }
    }
    let documented = invalidation_path(key);
    let handed_out = path_for(key);
    if documented == handed_out {
        vec![documented]
    } else {
        vec![documented, handed_out]
    }
}

/// The key encoded as CloudFront's invalidation rules ask ([`CLOUDFRONT_UNSAFE`]).
pub(super) fn invalidation_path(key: &ObjectKey) -> String {
    format!("/{}", encode(&key.as_str().split('/').collect::<Vec<_>>()))
}

pub(super) fn encode(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| percent_encoding::utf8_percent_encode(s, CLOUDFRONT_UNSAFE).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// What CloudFront's invalidation paths encode: controls and non-ASCII (always encoded), RFC
/// 1738's unsafe characters (space `<>"#%{}|\^~[]` and backquote), `?` and `;` (they would end
/// the path) and `*` (the wildcard).
const CLOUDFRONT_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'~')
    .add(b'[')
    .add(b']')
    .add(b'`')
    .add(b'?')
    .add(b';')
    .add(b'*');

/// `public/tenants/<tenant>/<env>/runs/<run>/<kind>/<artifact id>/<filename>` (DESIGN §3).
pub(super) fn is_public_artifact_key(segments: &[&str]) -> bool {
    segments.len() == 9
        && segments[0] == "public"
        && segments[1] == "tenants"
        && segments[4] == "runs"
        && uuid::Uuid::parse_str(segments[7]).is_ok()
}

/// What [`paths_for`] produces: `/` then letters, digits, `%` escapes, `/` and the characters
/// either encoding leaves as they are (`-._~!$&'()+,:=@`); a `*` only as the last segment of
/// a public artifact's directory.
pub(super) fn is_cdn_path(p: &str) -> bool {
    let (body, wildcard) = match p.strip_suffix("/*") {
        Some(dir) => (dir, true),
        None => (p, false),
    };
    p.starts_with('/')
        && p.len() <= MAX_PATH_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%/!$&'()+,:=@".contains(&b))
        && (!wildcard
            || body.strip_prefix('/').is_some_and(|dir| {
                let mut segments: Vec<&str> = dir.split('/').collect();
                segments.push("*");
                is_public_artifact_key(&segments)
            }))
}

/// Whether CloudFront counts `path` as a wildcard path.
pub(super) fn is_wildcard(path: &str) -> bool {
    path.ends_with('*')
}
