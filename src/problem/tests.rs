use std::collections::BTreeSet;

use super::Code;

/// The codes the README's **Errors** paragraph lists: every backticked snake_case word from
/// "The stable codes" to the end of the paragraph.
fn readme_codes() -> BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("The stable codes")
        .expect("the README lists the stable codes");
    let para = &readme[start..];
    let para = &para[..para.find("\n- **").unwrap_or(para.len())];
    para.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_' || c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_lists_every_code_and_only_those() {
    let listed = readme_codes();
    let ours: BTreeSet<String> = Code::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    let missing: Vec<_> = ours.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "codes the README does not list: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "README codes that are no `Code`: {unknown:?}"
    );
}

#[test]
fn codes_are_distinct_snake_case() {
    let mut seen = BTreeSet::new();
    for c in Code::ALL {
        let s = c.as_str();
        assert!(seen.insert(s), "{s} twice");
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
        assert_eq!(*c, s);
    }
}
