//! CDN egress per tenant and env, read from CloudFront standard access logs (DESIGN §3, §8).
//!
//! [`parse`] reads one log file of CloudFront's *standard logging (legacy)* to S3, as the
//! CloudFront Developer Guide ("Standard log file format", "Log file fields") describes it:
//! - gzip-compressed ([`parse`] also takes it already decompressed, and reads every gzip member);
//! - W3C extended log format: a `#Version: 1.0` line, a `#Fields:` line naming the fields
//!   (33 today, `date time x-edge-location sc-bytes c-ip … cs-uri-stem …`), then one
//!   tab-separated record per request, `-` for an empty value, not in time order;
//! - `date` is `YYYY-MM-DD` in UTC; `sc-bytes` is every byte sent to the viewer, headers included;
//! - field values are escaped by CloudFront: bytes 0–32 and 127–255 and
//!   `` < > " # % { } | \ ^ ~ [ ] ` ' `` become `%XX`. The escaping is applied to the path *as the
//!   viewer sent it*, which is already percent-encoded, so a key's space is logged as `%2520`
//!   and `é` as `%25C3%25A9`: [`attribute`] decodes `cs-uri-stem` twice to get the object key.
//!
//! Columns are found by their names in `#Fields:` (a later `#Fields:` line replaces them), so
//! added or reordered fields do not break the parser. Log files are recognised by where they are,
//! `<prefix><distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz` directly under the configured prefix
//! (UTC hour of the requests; see [`is_log_file`]), never by their name alone: a tenant's upload
//! can have any name, but it lives under `tenants/`, which the prefix never covers. CloudFront may
//! deliver entries up to 24 hours late, into the file of the hour they occurred, so a day's
//! totals settle a day later; logs are best effort, not billing.
//!
//! What counts: every data line is one request, whatever its status (errors, `304`, aborted
//! `000` too), with its `sc-bytes`, on its `date`. A line is attributed when `cs-uri-stem` is
//! `/` + a Cairn object key (DESIGN §3) with a valid tenant and one of the configured envs;
//! anything else is skipped and counted: other paths, a bad tenant, an unknown env, a `#` line
//! other than `#Version`/`#Fields`, a line with fewer fields than `#Fields` names, or an
//! unparsable `date` or `sc-bytes`. Blank lines are ignored. A line whose `sc-bytes` is a number
//! no response can be ([`MAX_SC_BYTES`]), or would take the file's totals past what a catalog
//! counter holds (`i64::MAX`), is *rejected*: counted apart from the skipped ones and never added.
//!
//! The text is read as a stream, line by line: memory stays at one line ([`MAX_LINE_BYTES`]) plus
//! the decoder's buffers, whatever the file decompresses to. A file that cannot be read as a
//! whole is an error ([`LogError`]): not gzip, not UTF-8, larger than the caller's bound once
//! decompressed, a line longer than [`MAX_LINE_BYTES`], or data before any `#Fields` line.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
};

use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;
use percent_encoding::{percent_decode, percent_decode_str};

/// Requests and bytes one tenant+env was served on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    pub requests: u64,
    pub bytes: u64,
}

/// What one log file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Per (day, tenant, env).
    pub served: BTreeMap<(NaiveDate, String, String), Served>,
    /// Data lines read (attributed + skipped + rejected).
    pub lines: u64,
    /// Lines not attributed to a tenant and env.
    pub skipped: u64,
    /// Lines refused for an absurd `sc-bytes`, or for totals past `i64::MAX`: never added.
    pub rejected: u64,
    /// Requests attributed, over every entry of `served` (at most `i64::MAX`).
    pub requests: u64,
    /// Their bytes (at most `i64::MAX`, so every entry and every sum of them fits a counter).
    pub bytes: u64,
}

/// A log file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("CloudFront log is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("CloudFront log is larger than {max_bytes} bytes uncompressed")]
    TooLarge { max_bytes: u64 },
    #[error("CloudFront log line {line} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("CloudFront log is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("CloudFront log has a data line (line {line}) before any #Fields line")]
    NoFields { line: usize },
    #[error("CloudFront log #Fields line has no `{0}` field")]
    MissingField(&'static str),
}

/// The longest line read, without its line end. CloudFront's records are a few hundred bytes to
/// a few KiB (its URL, query, user agent and cookie fields are bounded); a longer line is not a
/// CloudFront record, and the file fails as a whole.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The largest `sc-bytes` a record can carry: the largest S3 object (5 TiB) plus 1 MiB for the
/// response headers, far more than any header block CloudFront sends. A larger value is no
/// response CloudFront served: its line is rejected.
pub const MAX_SC_BYTES: u64 = (5 << 40) + (1 << 20);

/// The largest total a file may add to a counter: what a catalog counter (`BIGINT`) holds.
const COUNTER_MAX: u64 = i64::MAX.unsigned_abs();

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decompressed bytes buffered at a time.
const READ_BUFFER: usize = 64 << 10;

/// Reads one log file (gzipped, every member, or plain) and totals its requests per (day, tenant,
/// env). `envs` are the configured envs; `max_bytes` bounds the text once decompressed: past it
/// the file is refused without decompressing further, so a gzip bomb costs at most `max_bytes`
/// of decompression and one line of memory.
pub fn parse(raw: &[u8], envs: &[String], max_bytes: u64) -> Result<Parsed, LogError> {
    if raw.starts_with(&GZIP_MAGIC) {
        let text = BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(raw));
        parse_text(text, envs, max_bytes)
    } else {
        parse_text(raw, envs, max_bytes)
    }
}

/// [`parse`] of a text already decompressed, read line by line.
fn parse_text(text: impl BufRead, envs: &[String], max_bytes: u64) -> Result<Parsed, LogError> {
    let mut lines = Lines::new(text, max_bytes);
    let mut parsed = Parsed::default();
    let mut columns = None;
    while let Some((number, line)) = lines.next_line()? {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let Some(names) = line.strip_prefix("#Fields:") {
                columns = Some(Columns::from_names(names)?);
            } else if !line.starts_with("#Version:") {
                parsed.count(Line::Skipped);
            }
            continue;
        }
        let columns = columns
            .as_ref()
            .ok_or(LogError::NoFields { line: number })?;
        let fields: Vec<&str> = line.split('\t').collect();
        parsed.count(columns.request(&fields, envs));
    }
    Ok(parsed)
}

/// A text read one line at a time: each line at most [`MAX_LINE_BYTES`], `max_bytes` in all.
struct Lines<R> {
    text: R,
    line: Vec<u8>,
    /// Lines read so far.
    number: usize,
    /// Bytes read so far, line ends included.
    read: u64,
    max_bytes: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(text: R, max_bytes: u64) -> Self {
        Self {
            text,
            line: Vec::new(),
            number: 0,
            read: 0,
            max_bytes,
        }
    }

    /// The next line without its `\n` or `\r\n`, and its number (from 1); `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>, LogError> {
        self.line.clear();
        let mut ended = false;
        while !ended {
            let chunk = match self.text.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LogError::Gzip(e)),
            };
            if chunk.is_empty() {
                if self.line.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let newline = chunk.iter().position(|c| *c == b'\n');
            let content = &chunk[..newline.unwrap_or(chunk.len())];
            let used = newline.map_or(chunk.len(), |i| i + 1);
            self.read = self.read.saturating_add(used as u64);
            if self.read > self.max_bytes {
                return Err(LogError::TooLarge {
                    max_bytes: self.max_bytes,
                });
            }
            // One byte over the bound may be the `\r` of a `\r\n`.
            if self.line.len() + content.len() > MAX_LINE_BYTES + 1 {
                return Err(self.too_long());
            }
            self.line.extend_from_slice(content);
            self.text.consume(used);
            ended = newline.is_some();
        }
        if ended && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > MAX_LINE_BYTES {
            return Err(self.too_long());
        }
        self.number += 1;
        Ok(Some((self.number, std::str::from_utf8(&self.line)?)))
    }

    fn too_long(&self) -> LogError {
        LogError::LineTooLong {
            line: self.number + 1,
        }
    }
}

/// (tenant, env) of a request path (URL-encoded as in cs-uri-stem), or None.
pub fn attribute(uri_stem: &str, envs: &[String]) -> Option<(String, String)> {
    let key = decode_stem(uri_stem)?;
    attribute_key(key.strip_prefix('/')?, envs)
}

/// (tenant, env) of an object key Cairn writes (`[public/]tenants/<t>/<env>/...`, DESIGN §3), or
/// None for any other key.
pub fn attribute_key(key: &str, envs: &[String]) -> Option<(String, String)> {
    let segments: Vec<&str> = key.split('/').collect();
    let (tenant, env, ids) = match segments.as_slice() {
        ["tenants", tenant, env, "raw", ids @ ..] if ids.len() == 2 => (*tenant, *env, ids),
        ["tenants", tenant, env, "runs", ids @ ..] if ids.len() == 4 => (*tenant, *env, ids),
        ["public", "tenants", tenant, env, "runs", ids @ ..] if ids.len() == 4 => {
            (*tenant, *env, ids)
        }
        _ => return None,
    };
    let valid = is_tenant(tenant)
        && envs.iter().any(|e| e == env)
        && ids.iter().all(|s| !s.is_empty() && *s != "." && *s != "..");
    valid.then(|| (tenant.to_owned(), env.to_owned()))
}

/// True when `key` is a CloudFront log file under `prefix` (normalised, ending in `/`): directly
/// under it, `<prefix><distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz`. Where a file is decides,
/// not its name: a key anywhere else (under `tenants/`, in a "folder" below the prefix) is not
/// one, however it is named.
pub fn is_log_file(prefix: &str, key: &str) -> bool {
    let Some(name) = key.strip_prefix(prefix) else {
        return false;
    };
    if name.contains('/') {
        return false;
    }
    let Some(name) = name.strip_suffix(".gz") else {
        return false;
    };
    // A CloudFront-side prefix without a trailing `/` runs into the distribution id (`prod-E2…`),
    // so only the last three dot-separated parts are checked.
    let mut parts = name.rsplitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(unique), Some(hour), Some(distribution)) => {
            !unique.is_empty() && !distribution.is_empty() && is_date_hour(hour)
        }
        _ => false,
    }
}

/// Where the fields [`parse`] needs are, from a `#Fields:` line.
struct Columns {
    date: usize,
    uri_stem: usize,
    sc_bytes: usize,
    /// How many fields a record has.
    count: usize,
}

/// What one data line is.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A request of a tenant+env: (day, tenant, env, bytes).
    Attributed(NaiveDate, String, String, u64),
    Skipped,
    Rejected,
}

impl Columns {
    fn from_names(names: &str) -> Result<Self, LogError> {
        let names: Vec<&str> = names.split_whitespace().collect();
        let find = |name: &'static str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or(LogError::MissingField(name))
        };
        Ok(Self {
            date: find("date")?,
            uri_stem: find("cs-uri-stem")?,
            sc_bytes: find("sc-bytes")?,
            count: names.len(),
        })
    }

    /// What one record is. An `sc-bytes` that is not a number is skipped, as any unparsable
    /// field; a number past [`MAX_SC_BYTES`] (or past `u64`) is rejected.
    fn request(&self, fields: &[&str], envs: &[String]) -> Line {
        if fields.len() < self.count {
            return Line::Skipped;
        }
        let Ok(day) = NaiveDate::parse_from_str(fields[self.date], "%Y-%m-%d") else {
            return Line::Skipped;
        };
        let sc_bytes = fields[self.sc_bytes];
        let bytes = match sc_bytes.parse::<u64>() {
            Ok(b) if b <= MAX_SC_BYTES => b,
            Ok(_) => return Line::Rejected,
            Err(_) if !sc_bytes.is_empty() && sc_bytes.bytes().all(|c| c.is_ascii_digit()) => {
                return Line::Rejected
            }
            Err(_) => return Line::Skipped,
        };
        match attribute(fields[self.uri_stem], envs) {
            Some((tenant, env)) => Line::Attributed(day, tenant, env, bytes),
            None => Line::Skipped,
        }
    }
}

impl Parsed {
    /// Counts one data line. An attributed line whose request or bytes would take the file's
    /// totals past [`COUNTER_MAX`] is rejected instead: nothing wraps, nothing saturates.
    fn count(&mut self, line: Line) {
        self.lines += 1;
        let (day, tenant, env, bytes) = match line {
            Line::Skipped => {
                self.skipped += 1;
                return;
            }
            Line::Rejected => {
                self.rejected += 1;
                return;
            }
            Line::Attributed(day, tenant, env, bytes) => (day, tenant, env, bytes),
        };
        let within = |total: u64, more: u64| total.checked_add(more).filter(|t| *t <= COUNTER_MAX);
        let (Some(requests), Some(total)) = (within(self.requests, 1), within(self.bytes, bytes))
        else {
            self.rejected += 1;
            return;
        };
        self.requests = requests;
        self.bytes = total;
        // An entry's sums are at most the file's, which were just checked.
        let served = self.served.entry((day, tenant, env)).or_default();
        served.requests += 1;
        served.bytes += bytes;
    }
}

/// The object key path a cs-uri-stem names. The first decoding undoes CloudFront's log escaping,
/// the second the viewer's URL encoding (as S3 does); a stem without `%25` decodes the same
/// either way. None when the key is not UTF-8 (Cairn keys always are).
fn decode_stem(stem: &str) -> Option<String> {
    let as_sent: Vec<u8> = percent_decode_str(stem).collect();
    let key = percent_decode(&as_sent).decode_utf8().ok()?;
    Some(key.into_owned())
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$` (DESIGN §3).
fn is_tenant(s: &str) -> bool {
    let b = s.as_bytes();
    let lower_digit = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && lower_digit(&b[0])
        && b[1..]
            .iter()
            .all(|c| lower_digit(c) || *c == b'_' || *c == b'-')
}

/// `YYYY-MM-DD-HH`, a real date and an hour 00–23.
fn is_date_hour(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() == 13
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 4 | 7 | 10) {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        && NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").is_ok()
        && s[11..].parse::<u8>().is_ok_and(|h| h < 24)
}

#[cfg(test)]
mod tests;
