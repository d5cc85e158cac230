//! Paths, batches and claims of the invalidation queue, without CloudFront.
use super::*;

fn row(path: &str, secs: i64) -> cdn_invalidation::Model {
    cdn_invalidation::Model {
        id: Uuid::now_v7(),
        path: path.into(),
        state: STATE_QUEUED.into(),
        invalidation_id: None,
        attempts: 0,
        error: None,
        claimed_until: None,
        claim_token: None,
        created_at: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
        sent_at: None,
    }
}

#[test]
fn paths_are_the_encoded_keys() {
    let key = ObjectKey::parse("public/tenants/acme/dev/runs/r1/image/0192/hero ü*.png").unwrap();
    let p = path_for(&key);
    assert_eq!(
        p,
        "/public/tenants/acme/dev/runs/r1/image/0192/hero%20%C3%BC%2A.png"
    );
    assert!(is_cdn_path(&p));
    for bad in [
        "",
        "no-slash",
        "/a b",
        "/a*",
        "/ü",
        &format!("/{}", "a".repeat(4000)),
    ] {
        assert!(!is_cdn_path(bad), "{bad:?}");
    }
}

/// CloudFront's rule: encode non-ASCII and RFC 1738's unsafe characters, nothing else. The
/// URL Cairn hands out encodes more; both are queued when they differ.
#[test]
fn paths_follow_cloudfronts_encoding_rules_and_cover_what_cairn_hands_out() {
    let dir = "public/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001";
    let paths = |name: &str| paths_for(&ObjectKey::parse(&format!("{dir}/{name}")).unwrap());
    let p = |rest: &str| format!("/{dir}/{rest}");

    // Unreserved characters only: one path, the same in both encodings.
    assert_eq!(paths("hero_1-final.v2.png"), [p("hero_1-final.v2.png")]);
    // Space, non-ASCII and `~` are encoded; `+ ( ) ! ' , $ & = @ :` are not (CloudFront's
    // form), then the form Cairn's URLs carry.
    assert_eq!(
        paths("a b+(1)~ü!',$&=@:.png"),
        [
            p("a%20b+(1)%7E%C3%BC!',$&=@:.png"),
            p("a%20b%2B%281%29~%C3%BC%21%27%2C%24%26%3D%40%3A.png"),
        ]
    );
    // What would end the path or start a query is always encoded.
    assert_eq!(paths("q?x=1;y#z%.png")[0], p("q%3Fx=1%3By%23z%25.png"));
    // `*` has no literal form: the artifact's own directory, wildcarded.
    assert_eq!(paths("frame*.png"), [p("*")]);
    assert_eq!(paths("*"), [p("*")]);
    for path in paths("a b+(1)~ü!',$&=@:.png")
        .into_iter()
        .chain(paths("frame*.png"))
        .chain(paths("q?x=1;y#z%.png"))
    {
        assert!(is_cdn_path(&path), "{path}");
    }
    // The URL path Cairn hands out is always among them (the wildcard covers it).
    let key = ObjectKey::parse(&format!("{dir}/a b+(1)~.png")).unwrap();
    assert!(paths_for(&key).contains(&path_for(&key)));

    // A wildcard anywhere else is refused: it would reach other items.
    for bad in [
        "/public/*",
        "/*",
        "/public/tenants/acme/dev/runs/r1/image/*",
        "/public/tenants/acme/dev/runs/r1/image/not-an-id/*",
        "/public/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001/a*",
        "/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001/*",
    ] {
        assert!(!is_cdn_path(bad), "{bad}");
    }
}

#[test]
fn wildcards_go_out_last_and_at_most_15_a_batch() {
    let dir = "/public/tenants/acme/dev/runs/r1/image";
    let mut rows: Vec<_> = (0..40)
        .map(|i| row(&format!("{dir}/0192f0a0-0000-7000-8000-{i:012}/*"), i))
        .collect();
    rows.extend((0..3).map(|i| row(&format!("/p{i}"), 100 + i)));
    let b = batches(&rows, 1000);
    let sizes: Vec<usize> = b.iter().map(|b| b.paths.len()).collect();
    assert_eq!(sizes, [3, 15, 15, 10]);
    assert!(b[0].paths.iter().all(|p| !is_wildcard(p)));
    assert!(b[1..].iter().flat_map(|b| &b.paths).all(|p| is_wildcard(p)));
    // Oldest first within each kind.
    assert_eq!(b[1].paths[0], rows[0].path);
}

#[test]
fn batches_deduplicate_oldest_first_and_split() {
    let rows: Vec<_> = (0..5)
        .map(|i| row(&format!("/p{i}"), i))
        .chain([row("/p1", 10), row("/p3", 11)])
        .collect();
    let b = batches(&rows, 2);
    let paths: Vec<Vec<String>> = b.iter().map(|b| b.paths.clone()).collect();
    assert_eq!(paths, [vec!["/p0", "/p1"], vec!["/p2", "/p3"], vec!["/p4"]]);
    let refs: std::collections::HashSet<_> = b.iter().map(|b| &b.caller_reference).collect();
    assert_eq!(refs.len(), 3);

    // Deterministic: the same rows in any order give the same batches.
    let mut shuffled = rows.clone();
    shuffled.reverse();
    assert_eq!(batches(&shuffled, 2), b);
    // Another duplicate row changes the reference of its batch only.
    let mut more = rows.clone();
    more.push(row("/p2", 12));
    let c = batches(&more, 2);
    assert_eq!(c[0], b[0]);
    assert_ne!(c[1].caller_reference, b[1].caller_reference);
}
