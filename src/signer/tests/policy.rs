//! The signer's tests: policy checks: wildcards, dates, source addresses.
use super::*;

#[test]
fn wildcards_star_and_question_mark_over_the_whole_url() {
    let cases = [
        ("https://d/a/*", "https://d/a/", true),
        (
            "https://d/a/*",
            "https://d/a/b/c.bin?response-content-disposition=x",
            true,
        ),
        ("https://d/a/*", "https://d/a", false),
        ("https://d/a/*", "https://d/ab/c", false),
        ("https://d/a/*", "http://d/a/b", false),
        ("*", "anything at all", true),
        ("*", "", true),
        ("https://d/f-?.bin", "https://d/f-1.bin", true),
        ("https://d/f-?.bin", "https://d/f-12.bin", false),
        ("https://d/f-?.bin", "https://d/f-.bin", false),
        ("https://d/f-?.bin", "https://d/f-é.bin", true),
        ("https://d/*/x/*.log", "https://d/a/b/x/y/z.log", true),
        ("https://d/*/x/*.log", "https://d/a/b/x/y/z.log2", false),
        ("https://d/a*b*c", "https://d/aXbYbZc", true),
        ("https://d/a*b*c", "https://d/aXbYbZ", false),
        ("https://d/exact", "https://d/exact", true),
        ("https://d/exact", "https://d/exact/", false),
        ("https://d/exact", "https://d/exac", false),
        ("https://d/x?a=1", "https://d/x?a=1", true),
        ("https://d/x?a=1", "https://d/x?a=12", false),
    ];
    for (pattern, url, expected) in cases {
        assert_eq!(wildcard_match(pattern, url), expected, "{pattern} {url}");
    }
}

/// The matcher against a plain recursive definition, on many small random inputs.
#[test]
fn wildcards_agree_with_the_definition() {
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(_), None) => false,
            (Some(&c), Some(&d)) => (c == b'?' || c == d) && reference(&p[1..], &t[1..]),
        }
    }
    let mut rng = Rng(0x5eed);
    let (mut yes, mut no) = (0, 0);
    for _ in 0..20_000 {
        let p = rng.string(b"ab/*?", 7);
        let t = rng.string(b"ab/?*", 8);
        let expected = reference(p.as_bytes(), t.as_bytes());
        assert_eq!(wildcard_match(&p, &t), expected, "{p:?} {t:?}");
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 1000 && no > 1000, "{yes} {no}");
}

#[test]
fn dates_are_strict_bounds() {
    let mut p = custom("https://d/*");
    p.date_greater_than = Some(T0 - 100);
    assert_eq!(p.allows("https://d/x", T0 - 1, None), Ok(()));
    assert_eq!(p.allows("https://d/x", T0, None), Err(Denied::Expired));
    assert_eq!(p.allows("https://d/x", T0 + 1, None), Err(Denied::Expired));
    assert_eq!(p.allows("https://d/x", T0 - 99, None), Ok(()));
    assert_eq!(
        p.allows("https://d/x", T0 - 100, None),
        Err(Denied::NotYetValid)
    );
    assert_eq!(
        p.allows("https://d/x", i64::MIN, None),
        Err(Denied::NotYetValid)
    );
    assert_eq!(p.allows("https://e/x", T0 - 1, None), Err(Denied::Resource));
}

#[test]
fn source_address_ranges() {
    let mut p = custom("*");
    let now = T0 - 1;
    let check =
        |p: &Policy, addr: Option<&str>| p.allows("u", now, addr.map(|a| a.parse().unwrap()));
    p.ip_address = Some("203.0.113.0/24".into());
    assert_eq!(check(&p, Some("203.0.113.0")), Ok(()));
    assert_eq!(check(&p, Some("203.0.113.255")), Ok(()));
    assert_eq!(check(&p, Some("::ffff:203.0.113.7")), Ok(()));
    assert_eq!(check(&p, Some("203.0.114.0")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("203.0.112.255")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("2001:db8::1")), Err(Denied::IpAddress));
    assert_eq!(check(&p, None), Err(Denied::IpAddress));
    p.ip_address = Some("192.0.2.10".into());
    assert_eq!(check(&p, Some("192.0.2.10")), Ok(()));
    assert_eq!(check(&p, Some("192.0.2.11")), Err(Denied::IpAddress));
    p.ip_address = Some("192.0.2.10/32".into());
    assert_eq!(check(&p, Some("192.0.2.10")), Ok(()));
    assert_eq!(check(&p, Some("192.0.2.11")), Err(Denied::IpAddress));
    p.ip_address = Some("0.0.0.0/0".into());
    assert_eq!(check(&p, Some("198.51.100.1")), Ok(()));
    assert_eq!(check(&p, Some("::1")), Err(Denied::IpAddress));
    p.ip_address = Some("2001:db8:1234::/48".into());
    assert_eq!(check(&p, Some("2001:db8:1234:ffff::1")), Ok(()));
    assert_eq!(check(&p, Some("2001:db8:1235::1")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("203.0.113.1")), Err(Denied::IpAddress));
    p.ip_address = Some("::/0".into());
    assert_eq!(check(&p, Some("2001:db8::1")), Ok(()));
    p.ip_address = Some("2001:db8::1/128".into());
    assert_eq!(check(&p, Some("2001:db8::1")), Ok(()));
    assert_eq!(check(&p, Some("2001:db8::2")), Err(Denied::IpAddress));
    for bad in [
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/+8",
        "10.0.0/8",
        "::/129",
        "x",
        "",
    ] {
        p.ip_address = Some(bad.into());
        assert_eq!(check(&p, Some("10.0.0.1")), Err(Denied::Malformed), "{bad}");
    }
}
