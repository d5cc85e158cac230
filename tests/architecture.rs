//! The layers point down (issue 16 §2): this test reads the sources and fails when a module
//! uses one it must not — in any form: `use crate::http::…`, `use crate::{ app::App, … }` over
//! several lines, `super::super::http::…`, or a path like `crate::app::App` inside code.
//!
//! From the top: `http` and `app` (the server) → `jobs` → `lifecycle`, `metering` → `domain`
//! (services over a `core::Core`) → `core`, `events`, `auth` → `cdn` → `storage`, `usage` →
//! `values` → `problem`; beside them `telemetry` and `config` → `signer`. `error` is the HTTP
//! edge: only `http` and `app` use it. Besides the rules below, the top-level modules must form
//! no cycle at all ([`the_modules_form_no_cycle`]).
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// (files under this part of `src/`, the top-level modules they must not use).
const RULES: &[(&str, &[&str])] = &[
    ("domain", &["app", "http", "error"]),
    ("core.rs", &["app", "http", "error", "domain"]),
    ("auth", &["app", "http", "error", "domain", "core"]),
    ("events", &["app", "http", "error", "domain", "core"]),
    ("error.rs", &["app", "http"]),
    ("telemetry.rs", &["app", "http", "error", "domain"]),
    (
        "problem.rs",
        &["app", "http", "error", "domain", "storage", "cdn"],
    ),
    (
        "problem",
        &["app", "http", "error", "domain", "storage", "cdn"],
    ),
    (
        "storage",
        &["app", "http", "error", "cdn", "domain", "core"],
    ),
    (
        "usage",
        &[
            "app",
            "http",
            "error",
            "domain",
            "core",
            "metering",
            "lifecycle",
        ],
    ),
    // The shared values: below everything but the problem codes their refusals carry.
    (
        "values",
        &[
            "app",
            "http",
            "error",
            "domain",
            "core",
            "auth",
            "events",
            "cdn",
            "storage",
            "lifecycle",
            "metering",
            "jobs",
            "usage",
            "telemetry",
            "config",
            "signer",
        ],
    ),
    ("cdn", &["app", "http", "error", "domain", "core"]),
    ("metering/quota", &["app", "http", "error"]),
    // The job runner sits above the work it runs; the work never reaches up to it, and
    // metering and lifecycle do not use each other's runs or leases.
    ("jobs", &["app", "http", "error"]),
    ("lifecycle", &["app", "http", "error", "jobs"]),
    ("metering", &["app", "http", "error", "jobs", "lifecycle"]),
    // Configuration is read before anything is built: it uses only the CloudFront signer (a
    // leaf) to parse keys once.
    (
        "config",
        &[
            "app",
            "http",
            "error",
            "domain",
            "core",
            "auth",
            "events",
            "cdn",
            "storage",
            "lifecycle",
            "metering",
            "problem",
            "telemetry",
        ],
    ),
    (
        "signer",
        &[
            "app",
            "http",
            "error",
            "domain",
            "core",
            "auth",
            "events",
            "cdn",
            "storage",
            "lifecycle",
            "metering",
            "problem",
            "telemetry",
            "config",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_owned());
        return;
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/domain/artifacts/mod.rs` → `[domain, artifacts]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "mod.rs" | "lib.rs" | "main.rs" => {}
        file => parts.push(file.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The source without comments and string literals (so doc text never counts as a use).
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r'
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && b[i + 1..]
                .iter()
                .position(|c| *c != b'#')
                .is_some_and(|n| b[i + 1 + n] == b'"')
        {
            // A raw string, r"…" or r#"…"#: no escapes; it ends at `"` and as many `#`.
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            i = src[start..]
                .find(&close)
                .map_or(b.len(), |e| start + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\n'); lifetimes ('a) pass through.
            let end = src[i + 1..].find('\'').map_or(b.len(), |e| i + 2 + e);
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn ident(s: &[u8], i: usize) -> (String, usize) {
    let mut j = i;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
        j += 1;
    }
    (String::from_utf8_lossy(&s[i..j]).into_owned(), j)
}

/// The first segments of the paths in a `{…}` group starting at `s[i] == '{'` (top level only).
fn group_heads(s: &[u8], i: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = false;
    let mut j = i;
    while j < s.len() {
        match s[j] {
            b'{' => {
                depth += 1;
                expect_head = depth == 1;
                j += 1;
            }
            b'}' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            b',' => {
                expect_head = depth == 1;
                j += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let (name, k) = ident(s, j);
                if expect_head {
                    heads.push(name);
                    expect_head = false;
                }
                j = k;
            }
            _ => j += 1,
        }
    }
    heads
}

/// The top-level modules of the crate `code` (in module `module`) names.
fn crate_modules_used(code: &str, module: &[String]) -> BTreeSet<String> {
    let s = code.as_bytes();
    let mut used = BTreeSet::new();
    let mut i = 0;
    while i < s.len() {
        let word_start = i == 0 || !(s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_');
        let (base, after) = if word_start && s[i..].starts_with(b"crate") {
            (Some(0usize), i + 5)
        } else if word_start && s[i..].starts_with(b"super") {
            // Count the `super::` chain.
            let mut ups = 0;
            let mut j = i;
            loop {
                if !s[j..].starts_with(b"super") {
                    break;
                }
                let k = skip_ws(s, j + 5);
                if !s[k..].starts_with(b"::") {
                    break;
                }
                ups += 1;
                j = skip_ws(s, k + 2);
            }
            // `super` of a file module is its parent; `mod.rs` files are their module already.
            let depth = module.len();
            (depth.checked_sub(ups).filter(|d| *d == 0).map(|_| 0), j)
        } else {
            (None, i + 1)
        };
        let Some(_) = base else {
            i = after.max(i + 1);
            continue;
        };
        let mut j = skip_ws(s, after);
        if s[i..].starts_with(b"crate") {
            if !s[j..].starts_with(b"::") {
                i = j.max(i + 1);
                continue;
            }
            j = skip_ws(s, j + 2);
        }
        if j < s.len() && s[j] == b'{' {
            used.extend(group_heads(s, j));
        } else {
            let (name, _) = ident(s, j);
            if !name.is_empty() {
                used.insert(name);
            }
        }
        i = j.max(i + 1);
    }
    used
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (part, forbidden) in RULES {
        let root = src.join(part);
        if !root.exists() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let module = module_of(rel);
            let code = code_only(&std::fs::read_to_string(&file).unwrap());
            for used in crate_modules_used(&code, &module) {
                if forbidden.contains(&used.as_str()) {
                    found.push(format!("src/{} uses crate::{used}", rel.display()));
                }
            }
        }
    }
    found
}

#[test]
fn layers_only_point_down() {
    let found = violations();
    assert!(found.is_empty(), "forbidden edges:\n{}", found.join("\n"));
}

#[test]
fn every_form_of_use_is_seen() {
    let m = |p: &str| p.split('/').map(str::to_owned).collect::<Vec<_>>();
    let used = |code: &str, module: &str| crate_modules_used(&code_only(code), &m(module));
    let multi_line = "use crate::{\n    auth::Scope,\n    app::{\n        App, AppState},\n    http::metrics::record_outcome,\n};";
    assert_eq!(
        used(multi_line, "domain/artifacts/x"),
        ["app", "auth", "http"].map(String::from).into()
    );
    assert!(used("fn f() { crate::http::metrics::x(); }", "domain/x").contains("http"));
    assert!(used("use crate :: app :: App;", "domain/x").contains("app"));
    // `super::super` from `domain/artifacts/x.rs` is `domain`; once more is the crate.
    assert!(used("use super::super::http::x;", "domain/artifacts/x").is_empty());
    assert!(used("use super::super::super::http::x;", "domain/artifacts/x").contains("http"));
    assert!(used("use super::{app::App, x};", "domain").contains("app"));
    // Comments and strings are not uses.
    assert!(used("// crate::http::x\nlet s = \"crate::app\";", "domain/x").is_empty());
    // A raw string ends at its quote, backslash or not.
    let raw = "let s = r\"dir\\\"; use crate::http::x; let t = r#\"crate::app\"#;";
    assert_eq!(used(raw, "domain/x"), ["http".to_owned()].into());
}

/// Below the HTTP edge (`http/`, `error.rs`, `app.rs`, and `lib.rs`/`main.rs` that start it) no
/// module knows axum: scopes, problems and services are plain values.
#[test]
fn only_the_http_edge_knows_axum() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let edge = ["http", "error.rs", "app.rs", "lib.rs", "main.rs"];
    let found: Vec<String> = files
        .iter()
        .filter(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            !edge.iter().any(|e| rel.starts_with(e))
        })
        .filter(|f| {
            let code = code_only(&std::fs::read_to_string(f).unwrap());
            code.match_indices("axum").any(|(i, _)| {
                let b = code.as_bytes();
                (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
                    && code[i + 4..].trim_start().starts_with("::")
            })
        })
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(found.is_empty(), "axum below the HTTP edge: {found:?}");
}

/// Which top-level modules each top-level module of `src/` uses (the crate root, `lib.rs` and
/// `main.rs`, assembles everything and is left out).
fn module_graph() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let module = module_of(rel);
        let top = module[0].clone();
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let used = crate_modules_used(&code, &module);
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(used.into_iter().filter(|u| *u != top));
    }
    graph
}

/// A cycle of the graph, if it has one (depth-first search).
fn find_cycle(graph: &std::collections::BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// No two top-level modules point at each other, directly or around a longer loop (issue 16
/// §2: `app` ↔ `domain`, `lifecycle` ↔ `metering`, `config` ↔ `storage`, `domain` ↔ `storage`
/// through the values, and the rest).
#[test]
fn the_modules_form_no_cycle() {
    let graph = module_graph();
    // The graph was read: the server's top modules and their main edges are in it.
    for (from, to) in [("http", "app"), ("domain", "core"), ("storage", "values")] {
        assert!(
            graph[from].contains(to),
            "{from} -> {to} not seen: {graph:?}"
        );
    }
    assert_eq!(find_cycle(&graph), None, "the module graph has a cycle");
}

#[test]
fn a_cycle_is_found() {
    let graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(
            std::collections::BTreeMap::<String, BTreeSet<String>>::new(),
            |mut g, (f, t)| {
                g.entry(f.into()).or_default().insert(t.into());
                g
            },
        );
    assert_eq!(
        find_cycle(&graph),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&acyclic), None);
}
