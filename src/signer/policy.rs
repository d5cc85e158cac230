//! CloudFront policy statements: the JSON botocore writes, the JSON CloudFront accepts, and the
//! checks CloudFront makes (resource wildcards, dates, source address); CloudFront's base64.
use std::{fmt::Write as _, net::IpAddr};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::Denied;

/// One policy statement, as CloudFront accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A URL, with `*` (any run of characters) and `?` (one character) wildcards in custom policies.
    pub resource: String,
    /// Epoch seconds; required.
    pub date_less_than: i64,
    pub date_greater_than: Option<i64>,
    /// `a.b.c.d` or `a.b.c.d/n` (a bare address means `/32`), or an IPv6 address or range (a bare
    /// IPv6 address means `/128`).
    pub ip_address: Option<String>,
}

impl Policy {
    /// A canned policy: exactly `resource`, until `expires`.
    pub fn canned(resource: &str, expires: i64) -> Self {
        Self {
            resource: resource.to_owned(),
            date_less_than: expires,
            date_greater_than: None,
            ip_address: None,
        }
    }

    /// The compact JSON CloudFront signs, keys in the order botocore writes them
    /// (`Resource`, `Condition`: `DateLessThan`, `IpAddress`, `DateGreaterThan`), strings escaped
    /// as Python's `json.dumps` does (ASCII only, `/` as is).
    ///
    /// As botocore, a bare IPv4 address gets `/32` and an empty address is left out; a bare IPv6
    /// address gets `/128` (botocore would append `/32`, a far wider range than meant).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(self.resource.len() + 160);
        s.push_str(r#"{"Statement":[{"Resource":"#);
        json_string(&mut s, &self.resource);
        let _ = write!(
            s,
            r#","Condition":{{"DateLessThan":{{"AWS:EpochTime":{}}}"#,
            self.date_less_than
        );
        if let Some(ip) = self.ip_address.as_deref().filter(|ip| !ip.is_empty()) {
            s.push_str(r#","IpAddress":{"AWS:SourceIp":"#);
            if ip.contains('/') {
                json_string(&mut s, ip);
            } else if ip.contains(':') {
                json_string(&mut s, &format!("{ip}/128"));
            } else {
                json_string(&mut s, &format!("{ip}/32"));
            }
            s.push('}');
        }
        if let Some(t) = self.date_greater_than {
            let _ = write!(s, r#","DateGreaterThan":{{"AWS:EpochTime":{t}}}"#);
        }
        s.push_str("}}]}");
        s
    }

    /// Parses a policy document (for verification): one statement with a `Resource` and a
    /// `Condition` of `DateLessThan` and optionally `DateGreaterThan` and `IpAddress`, in any
    /// order and layout. Anything else — unknown keys or conditions, a non-integer time, an
    /// address that is not a CIDR range — is `Malformed`, so no condition is silently ignored.
    pub fn parse(json: &[u8]) -> Result<Self, Denied> {
        let doc: Value = serde_json::from_slice(json).map_err(|_| Denied::Malformed)?;
        let doc = only_keys(&doc, &["Statement"])?;
        let statement = match doc.get("Statement").and_then(Value::as_array) {
            Some(list) if list.len() == 1 => only_keys(&list[0], &["Resource", "Condition"])?,
            _ => return Err(Denied::Malformed),
        };
        let resource = statement
            .get("Resource")
            .and_then(Value::as_str)
            .ok_or(Denied::Malformed)?
            .to_owned();
        let condition = statement.get("Condition").ok_or(Denied::Malformed)?;
        let condition = only_keys(condition, &["DateLessThan", "DateGreaterThan", "IpAddress"])?;
        let date_less_than = epoch(condition.get("DateLessThan").ok_or(Denied::Malformed)?)?;
        let date_greater_than = condition.get("DateGreaterThan").map(epoch).transpose()?;
        let ip_address = match condition.get("IpAddress") {
            None => None,
            Some(v) => {
                let ip = only_keys(v, &["AWS:SourceIp"])?
                    .get("AWS:SourceIp")
                    .and_then(Value::as_str)
                    .ok_or(Denied::Malformed)?;
                Cidr::parse(ip).ok_or(Denied::Malformed)?;
                Some(ip.to_owned())
            }
        };
        Ok(Self {
            resource,
            date_less_than,
            date_greater_than,
            ip_address,
        })
    }

    /// Whether a request for `url` from `ip` at `now` is within the policy: the resource matches
    /// the whole URL (`*` any run of characters, `/` and `?` included; `?` exactly one),
    /// `now < DateLessThan`, `now > DateGreaterThan`, and `ip` is in `IpAddress`.
    pub fn allows(&self, url: &str, now: i64, ip: Option<IpAddr>) -> Result<(), Denied> {
        if !wildcard_match(&self.resource, url) {
            return Err(Denied::Resource);
        }
        if now >= self.date_less_than {
            return Err(Denied::Expired);
        }
        if self.date_greater_than.is_some_and(|t| now <= t) {
            return Err(Denied::NotYetValid);
        }
        if let Some(range) = &self.ip_address {
            let range = Cidr::parse(range).ok_or(Denied::Malformed)?;
            if !ip.is_some_and(|ip| range.contains(ip)) {
                return Err(Denied::IpAddress);
            }
        }
        Ok(())
    }
}

/// `v` as an object with no keys but `allowed` (each optional).
fn only_keys<'a>(v: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, Denied> {
    match v.as_object() {
        Some(map) if map.keys().all(|k| allowed.contains(&k.as_str())) => Ok(map),
        _ => Err(Denied::Malformed),
    }
}

/// `{"AWS:EpochTime": <integer>}`.
fn epoch(v: &Value) -> Result<i64, Denied> {
    only_keys(v, &["AWS:EpochTime"])?
        .get("AWS:EpochTime")
        .and_then(Value::as_i64)
        .ok_or(Denied::Malformed)
}

/// A JSON string as Python's `json.dumps(ensure_ascii=True)` writes it.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Whole-string match with `*` (any run, possibly empty) and `?` (exactly one character).
/// Linear backtracking on the last `*`: O(pattern × text) at worst, never exponential.
pub(super) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An address range: `a.b.c.d/n`, `x:y::/n`, or a bare address (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(super) fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&n| n <= max)?
            }
            Some(_) => return None,
        };
        Some(Self { net, prefix })
    }

    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// CloudFront's URL-safe base64: standard base64 with `+`→`-`, `=`→`_`, `/`→`~`.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The inverse of [`encode`]; `None` for any character outside CloudFront's alphabet
/// (`A-Z a-z 0-9 - _ ~`), missing or misplaced padding, or non-canonical trailing bits.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let standard: String = s
        .chars()
        .map(|c| match c {
            '-' => Some('+'),
            '_' => Some('='),
            '~' => Some('/'),
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        })
        .collect::<Option<_>>()?;
    base64::engine::general_purpose::STANDARD
        .decode(standard)
        .ok()
}
