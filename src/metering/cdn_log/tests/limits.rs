//! Tests of the parser's bounds: log file names, absurd and overflowing byte counts, long
//! lines, gzip bombs, and the fixture files' totals.
use super::*;

#[test]
fn recognises_log_files_by_name_and_location() {
    for (prefix, key) in [
        (
            "cdn-logs/",
            "cdn-logs/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
        ),
        (
            "cdn-logs/",
            "cdn-logs/E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz",
        ),
        ("a/b/c/", "a/b/c/E2EXAMPLE123.2026-02-28-23.x.gz"),
        // A CloudFront-side prefix without a trailing `/` runs into the distribution id.
        (
            "cdn-logs/",
            "cdn-logs/prod-E2EXAMPLE123.2026-11-20-00.a1b2c3d4.gz",
        ),
        ("my.logs/", "my.logs/E2EXAMPLE123.2024-02-29-00.a1b2c3d4.gz"),
    ] {
        assert!(is_log_file(prefix, key), "{key}");
    }
    let name_only = [
        "",
        "/",
        "E2EXAMPLE123.2026-11-20-10.a1b2c3d4",
        "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz.tmp",
        "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.txt",
        "E2EXAMPLE123.2026-11-20.a1b2c3d4.gz",
        "E2EXAMPLE123.2026-11-20-24.a1b2c3d4.gz",
        "E2EXAMPLE123.2026-13-20-10.a1b2c3d4.gz",
        "E2EXAMPLE123.2025-02-29-10.a1b2c3d4.gz",
        "E2EXAMPLE123.2026-1-20-10.a1b2c3d4.gz",
        "E2EXAMPLE123.2026-11-20-10..gz",
        ".2026-11-20-10.a1b2c3d4.gz",
        "2026-11-20-10.a1b2c3d4.gz",
        "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz/",
        "report.gz",
    ];
    for name in name_only {
        let key = format!("cdn-logs/{name}");
        assert!(!is_log_file("cdn-logs/", &key), "{key}");
    }
    // A perfect name anywhere but directly under the prefix is not a log file.
    let name = "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz";
    for key in [
        format!("tenants/acme/prod/raw/0190f000-0000-7000-8000-000000000001/{name}"),
        format!("public/tenants/acme/prod/runs/r1/report/x1/{name}"),
        format!("cdn-logs/sub/{name}"),
        format!("cdn-logs//{name}"),
        format!("other/{name}"),
        format!("xcdn-logs/{name}"),
        format!("cdn-logs{name}"),
        name.to_owned(),
    ] {
        assert!(!is_log_file("cdn-logs/", &key), "{key}");
    }
}

#[test]
fn absurd_sc_bytes_are_rejected_not_added() {
    let good = "/tenants/acme/prod/raw/a/f";
    let other = "/tenants/globex/dev/raw/a/f";
    let max = MAX_SC_BYTES.to_string();
    let past = (MAX_SC_BYTES + 1).to_string();
    let text = log(&[
        // A terabyte download and the largest possible response are plausible.
        record("2026-11-20", "1000000000000", good),
        record("2026-11-20", &max, good),
        // Past the largest S3 object plus headers, past i64, u64::MAX, past u64.
        record("2026-11-20", &past, other),
        record("2026-11-20", "10000000000000000000", other),
        record("2026-11-20", &u64::MAX.to_string(), other),
        record("2026-11-20", "99999999999999999999999999", other),
        // Absurd on a path no tenant owns: rejected too, never attributed.
        record("2026-11-20", &u64::MAX.to_string(), "/favicon.ico"),
        // Not a number at all: skipped, as before.
        record("2026-11-20", "-", good),
        record("2026-11-20", "7", other),
    ]);
    let parsed = parse(&gzip(text.as_bytes()), &envs(), 1 << 20).unwrap();
    let want = served(&[
        (
            "2026-11-20",
            "acme",
            "prod",
            2,
            1_000_000_000_000 + MAX_SC_BYTES,
        ),
        ("2026-11-20", "globex", "dev", 1, 7),
    ]);
    assert_eq!(parsed.served, want);
    assert_eq!(
        (parsed.lines, parsed.skipped, parsed.rejected),
        (9, 1, 5),
        "{parsed:?}"
    );
    assert_eq!(
        (parsed.requests, parsed.bytes),
        (3, 1_000_000_000_007 + MAX_SC_BYTES)
    );
}

#[test]
fn totals_past_a_counter_reject_the_line_instead_of_wrapping() {
    let day = day("2026-11-20");
    let line = |bytes: u64| Line::Attributed(day, "acme".into(), "prod".into(), bytes);
    let mut p = Parsed::default();
    // As if the file had already added this much (1.7 million maximal lines).
    p.count(line(MAX_SC_BYTES));
    p.bytes = COUNTER_MAX - MAX_SC_BYTES;
    p.count(line(MAX_SC_BYTES));
    assert_eq!(
        (p.bytes, p.rejected),
        (COUNTER_MAX, 0),
        "exactly i64::MAX fits"
    );
    p.count(line(1));
    p.count(line(MAX_SC_BYTES));
    assert_eq!((p.bytes, p.rejected, p.lines), (COUNTER_MAX, 2, 4));
    assert_eq!(p.requests, 2);
    // Nothing past the totals reached the entry.
    let entry = p.served.values().next().unwrap();
    assert_eq!((entry.requests, entry.bytes), (2, 2 * MAX_SC_BYTES));
    // Zero bytes still fit; the request count is checked the same way.
    p.count(line(0));
    assert_eq!((p.requests, p.rejected), (3, 2));
    p.requests = COUNTER_MAX;
    p.count(line(0));
    assert_eq!((p.requests, p.rejected), (COUNTER_MAX, 3));
}

#[test]
fn a_line_longer_than_the_bound_fails_the_file() {
    let good = "/tenants/acme/prod/raw/a/f";
    // The longest line allowed: a record padded in its user-agent field.
    let base = record("2026-11-20", "5", good);
    let pad = MAX_LINE_BYTES - base.len();
    let longest = base.replacen("curl/8.5.0", &format!("curl/8.5.0{}", "x".repeat(pad)), 1);
    assert_eq!(longest.len(), MAX_LINE_BYTES);
    let text = log(std::slice::from_ref(&longest));
    let parsed = parse(&gzip(text.as_bytes()), &envs(), 1 << 20).unwrap();
    assert_eq!((parsed.requests, parsed.bytes), (1, 5));
    // With `\r\n` the line end is not part of the line.
    let crlf = text.replace('\n', "\r\n");
    assert!(parse(crlf.as_bytes(), &envs(), 1 << 20).is_ok());
    // One byte more, in a plain or a gzipped file.
    let text = log(&[record("2026-11-20", "1", good), longest + "x"]);
    for raw in [text.as_bytes().to_vec(), gzip(text.as_bytes())] {
        let err = parse(&raw, &envs(), 1 << 20).unwrap_err();
        assert!(matches!(err, LogError::LineTooLong { line: 4 }), "{err}");
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// `members` gzip members of `chunk` each: a small file that decompresses to a lot.
fn bomb(chunk: &[u8], members: usize) -> Vec<u8> {
    gzip(chunk).repeat(members)
}

/// Parses a gzipped `raw` as [`parse`] does, answering how many bytes were decompressed.
fn parse_counted(raw: &[u8], max_bytes: u64) -> (Result<Parsed, LogError>, u64) {
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let decoder = Counted {
        inner: MultiGzDecoder::new(raw),
        read: read.clone(),
    };
    let result = parse_text(
        BufReader::with_capacity(READ_BUFFER, decoder),
        &envs(),
        max_bytes,
    );
    (result, read.get())
}

#[test]
fn a_gzip_bomb_is_refused_after_a_small_bound() {
    // 1 GiB of zeros in about 1 MiB (1024 members of 1 MiB each), parsed with the ingest's
    // own bound: one over-long line in, it is refused, having decompressed one buffer or two.
    let zeros = bomb(&vec![0; 1 << 20], 1024);
    assert!(zeros.len() < 2 << 20, "{}", zeros.len());
    let err = parse(&zeros, &envs(), 2 << 30).unwrap_err();
    assert!(matches!(err, LogError::LineTooLong { line: 1 }), "{err}");
    let (result, read) = parse_counted(&zeros, 2 << 30);
    assert!(matches!(result, Err(LogError::LineTooLong { .. })));
    assert!(read <= 2 * READ_BUFFER as u64, "decompressed {read} bytes");

    // 1 GiB of blank lines (each one short) stops at the total bound instead.
    let blank = bomb(&vec![b'\n'; 1 << 20], 1024);
    let (result, read) = parse_counted(&blank, 4 << 20);
    assert!(
        matches!(result, Err(LogError::TooLarge { max_bytes }) if max_bytes == 4 << 20),
        "{result:?}"
    );
    assert!(
        read <= (4 << 20) + 2 * READ_BUFFER as u64,
        "decompressed {read} bytes"
    );
}

/// The totals `tests/fixtures/cloudfront-logs/README.md` promises.
#[test]
fn fixture_totals() {
    let read = |name: &str| {
        assert!(
            is_log_file("cdn-logs/", &format!("cdn-logs/{name}")),
            "{name}"
        );
        let raw = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
        parse(&raw, &envs(), 1 << 20).unwrap()
    };
    let first = read("E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz");
    let second = read("E2EXAMPLE123.2026-11-21-09.e5f6a7b8.gz");
    assert_eq!((first.lines, first.skipped), (6, 2));
    assert_eq!((second.lines, second.skipped), (3, 0));
    assert_eq!(
        first.served,
        served(&[
            ("2026-11-20", "acme", "prod", 3, 4000),
            ("2026-11-20", "globex", "dev", 1, 4096)
        ])
    );
    assert_eq!(
        second.served,
        served(&[
            ("2026-11-20", "acme", "prod", 2, 1000),
            ("2026-11-21", "acme", "prod", 1, 200)
        ])
    );
    let mut total = first.served;
    for (key, s) in second.served {
        let t = total.entry(key).or_default();
        t.requests += s.requests;
        t.bytes += s.bytes;
    }
    assert_eq!(
        total,
        served(&[
            ("2026-11-20", "acme", "prod", 5, 5000),
            ("2026-11-20", "globex", "dev", 1, 4096),
            ("2026-11-21", "acme", "prod", 1, 200),
        ])
    );
}
