//! The `cairn` binary itself: fail-fast configuration, the store `RAW_BUCKET` selects and the
//! start-up line naming it, `cairn token` with the generated dev secret, commands that work on
//! an existing deployment and never make one up, `.env.sample` against `--help`, and graceful
//! shutdown on SIGTERM.
use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{backend, new_postgres_database, SECRET};

fn cairn(dir: &std::path::Path) -> Command {
    let mut c = crate::helpers::cairn_command(dir);
    c.env("RUST_LOG", "info");
    c
}

#[test]
fn s3_without_a_bucket_stops_start_up_naming_raw_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(dir.path())
        .args(["serve"])
        .env("CAIRN_STORAGE", "s3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RAW_BUCKET is required"), "{stderr}");
}

#[test]
fn a_bad_value_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(dir.path())
        .args(["serve"])
        .env("CAIRN_PRESIGN_TTL_SECS", "an hour")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAIRN_PRESIGN_TTL_SECS is invalid"));
}

#[test]
fn serve_help_lists_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(dir.path())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "CAIRN_STORAGE",
        "RAW_BUCKET",
        "CAIRN_JWT_SECRET",
        "CAIRN_ENVS",
        "CAIRN_PRESIGN_TTL_SECS",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

/// `cairn serve` with no secret generates one; `cairn token` signs with it; the server accepts
/// the token; SIGTERM stops the server cleanly.
#[tokio::test]
async fn token_from_the_dev_secret_works_and_sigterm_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = cairn(dir.path())
        .args(["serve"])
        .env("CAIRN_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tx.send(line).ok();
        }
    });
    let mut log = vec![];
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start");
        log.push(line.clone());
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(
        log.iter()
            .any(|l| l.contains("generated a development token secret")),
        "{log:?}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("jwt-secret"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let out = cairn(dir.path())
        .args([
            "token",
            "--sub",
            "alice",
            "--tenant",
            "acme=viewer",
            "--ttl",
            "5m",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let res = reqwest::Client::new()
        .get(format!(
            "http://{addr}/storage/raw/{}",
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(&token)
        .header("x-tenant-id", "acme")
        .header("x-env", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the token was not accepted"
    );

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn token_refuses_a_bad_membership() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(dir.path())
        .args(["token", "--sub", "a", "--tenant", "acme=king"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role must be"));
}

/// `CAIRN_STORAGE=s3` start-up names each missing piece of the AWS configuration.
#[test]
fn s3_start_up_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = |extra: &[(&str, &str)]| {
        let mut c = cairn(dir.path());
        c.args(["serve"])
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("CAIRN_STORAGE", "s3")
            .env("RAW_BUCKET", "bucket")
            .env("CAIRN_LISTEN", "127.0.0.1:0");
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "started without {extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let secret = ("CAIRN_JWT_SECRET", "0123456789abcdef0123456789abcdef");
    assert!(s3(&[]).contains("CAIRN_JWT_SECRET is required"));
    let no_region = s3(&[secret]);
    assert!(no_region.contains("AWS_REGION is required"), "{no_region}");
    let no_credentials = s3(&[secret, ("AWS_REGION", "eu-west-1")]);
    assert!(
        no_credentials.contains("AWS credentials could not be resolved"),
        "{no_credentials}"
    );
    let bad_endpoint = s3(&[
        secret,
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_S3", "garage:3900"),
    ]);
    assert!(
        bad_endpoint.contains("AWS_ENDPOINT_URL_S3 is invalid"),
        "{bad_endpoint}"
    );
}

/// The secret key of [`with_unreachable_s3`]: it must never reach a log.
const DEAD_S3_SECRET_KEY: &str = "dead-store-secret-key-0123456789abcdef";

/// An S3 store that does not answer (nothing listens on port 1) in `eu-west-1`, bucket
/// `cairn-assets`, with static credentials and none of the machine's AWS configuration. Only
/// `RAW_BUCKET` says S3: `CAIRN_STORAGE` is unset.
fn with_unreachable_s3<'a>(c: &'a mut Command, dir: &Path) -> &'a mut Command {
    c.env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .env("RAW_BUCKET", "cairn-assets")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "AKIDCAIRNTESTONLY")
        .env("AWS_SECRET_ACCESS_KEY", DEAD_S3_SECRET_KEY)
        .env("CAIRN_JWT_SECRET", SECRET)
}

/// This run's catalog for a `cairn` a test starts: `None` (SQLite in the data dir) or a fresh
/// Postgres database.
async fn catalog_url() -> Option<String> {
    match backend().as_str() {
        "postgres" => Some(new_postgres_database().await),
        _ => None,
    }
}

/// `url` with a password in its user info, and that password (the one it had, or `password`).
/// Postgres on trust authentication never asks for it.
fn with_password(url: &str, password: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a database URL");
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (user, host) = authority
        .rsplit_once('@')
        .expect("CAIRN_TEST_POSTGRES_URL names a user");
    match user.split_once(':') {
        Some((_, had)) => (url.to_owned(), had.to_owned()),
        None => (
            format!("{scheme}://{user}:{password}@{host}{path}"),
            password.to_owned(),
        ),
    }
}

/// Starts `c` (`cairn serve`), collects its log until it listens, stops it.
fn log_until_listening(mut c: Command) -> Vec<String> {
    let mut server = c
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tx.send(line).ok();
        }
    });
    let mut log = vec![];
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.contains("cairn listening");
                log.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    server.kill().ok();
    server.wait().ok();
    assert!(listening, "the server did not start: {log:#?}");
    log
}

/// DESIGN §10: `RAW_BUCKET` alone stores in S3 (a container deployed as the AWS docs say keeps
/// its assets), and the first lines say which catalog and store a replica uses, never with
/// credentials. The store does not answer: start-up goes on (`/readyz` reports it).
#[tokio::test]
async fn raw_bucket_alone_selects_s3_and_start_up_names_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cairn(dir.path());
    with_unreachable_s3(&mut c, dir.path())
        .args(["serve"])
        .env("CAIRN_LISTEN", "127.0.0.1:0")
        .env("CAIRN_JOBS", "off")
        .env("CAIRN_LOG_FORMAT", "json");
    let catalog = catalog_url()
        .await
        .map(|u| with_password(&u, "catalog-password-never-logged"));
    if let Some((url, _)) = &catalog {
        c.env("DATABASE_URL", url);
    }
    let log = log_until_listening(c);
    let line = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "catalog and object store")
        .unwrap_or_else(|| panic!("no start-up line names the store: {log:#?}"));
    let f = &line["fields"];
    assert_eq!(f["storage"], "s3", "{line}");
    assert_eq!(f["bucket"], "cairn-assets", "{line}");
    assert_eq!(f["endpoint"], "http://127.0.0.1:1", "{line}");
    assert_eq!(f["region"], "eu-west-1", "{line}");
    let described = f["catalog"].as_str().unwrap();
    match &catalog {
        None => assert_eq!(
            described,
            format!("sqlite {}", dir.path().join("cairn.db").display())
        ),
        Some((url, _)) => {
            let database = url.rsplit('/').next().unwrap();
            assert!(
                described.starts_with("postgres://") && described.ends_with(database),
                "{described}"
            );
        }
    }
    let mut secrets = vec![DEAD_S3_SECRET_KEY.to_owned(), SECRET.to_owned()];
    secrets.extend(catalog.map(|(_, password)| password));
    for secret in &secrets {
        assert!(
            !log.iter().any(|l| l.contains(secret.as_str())),
            "`{secret}` is in the log"
        );
    }
    assert!(
        !dir.path().join("objects").exists() && !dir.path().join("url-signing.key").exists(),
        "the local store was opened"
    );
}

/// The case: `cairn token`, `usage` and `lifecycle` run outside the server's directory.
/// They used to make up a fresh `./cairn-data` (new secret, empty catalog), report nothing and
/// mint a token no server accepts; now they refuse with 2, naming where they looked.
#[test]
fn cli_commands_outside_a_deployment_refuse_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["usage"][..],
        &["usage", "--csv"],
        &["usage", "--reconcile", "--fix"],
        &["lifecycle", "run"],
        &["lifecycle", "run", "--dry-run"],
        &["token", "--sub", "alice", "--tenant", "acme=owner"],
    ] {
        // The default data dir, `./cairn-data` in the working directory.
        let out = cairn(dir.path())
            .env_remove("CAIRN_DATA_DIR")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("CAIRN_DATA_DIR=./cairn-data does not exist")
                && stderr.contains("DATABASE_URL"),
            "{args:?}: {stderr}"
        );
        if args[0] == "token" {
            assert!(stderr.contains("token secret (jwt-secret)"), "{stderr}");
        }
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

/// A deployment missing a piece: the piece is named, exit 2, and it is not made up again. The
/// catalog: a file that is gone, or (on this run's backend) a database no server migrated.
#[tokio::test]
async fn cli_commands_name_the_missing_piece_and_do_not_make_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], database_url: Option<&str>| {
        let mut c = cairn(dir.path());
        if let Some(url) = database_url {
            c.env("DATABASE_URL", url);
        }
        c.args(args).output().unwrap()
    };
    let refused = |args: &[&str], database_url: Option<&str>, named: &str| {
        let out = run(args, database_url);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("creates nothing"),
            "{args:?}: {stderr}"
        );
    };
    // What `cairn serve` would leave: SQLite catalog, objects, dev secrets.
    let out = run(&["migrate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = ["token", "--sub", "alice", "--tenant", "acme=owner"];

    // The catalog file gone: the commands that read it refuse; `cairn token` never opens it.
    let db = dir.path().join("cairn.db");
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{}{suffix}", db.display());
        std::fs::remove_file(&f)
            .or_else(|e| if suffix.is_empty() { Err(e) } else { Ok(()) })
            .unwrap();
    }
    let named = format!("the catalog {} does not exist", db.display());
    refused(&["usage"], None, &named);
    refused(&["lifecycle", "run", "--dry-run"], None, &named);
    assert!(!db.exists(), "the catalog was made up");
    assert!(run(&token, None).status.success());

    // The token secret gone: named, not generated again.
    let secret = dir.path().join("jwt-secret");
    std::fs::remove_file(&secret).unwrap();
    refused(&token, None, "jwt-secret does not exist");
    assert!(!secret.exists(), "a new token secret was made up");

    // A catalog that exists but no server or `cairn migrate` ever set up.
    let empty = match backend().as_str() {
        "postgres" => new_postgres_database().await,
        _ => {
            let f = dir.path().join("empty.db");
            std::fs::write(&f, b"").unwrap();
            format!("sqlite://{}?mode=rwc", f.display())
        }
    };
    std::fs::write(&secret, "s".repeat(64)).unwrap();
    refused(&["usage"], Some(&empty), "has no tables");
    refused(&["lifecycle", "run"], Some(&empty), "has no tables");
    let conn = sea_orm::Database::connect(&empty).await.unwrap();
    assert!(
        !migration::SchemaManager::new(&conn)
            .has_table("seaql_migrations")
            .await
            .unwrap(),
        "the empty catalog was given tables"
    );
    conn.close().await.unwrap();
}

/// `cairn usage` reads the catalog alone: with its S3 store down, it still prints an existing
/// catalog's usage. The sweep needs the store and says so.
#[tokio::test]
async fn usage_works_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_url().await;
    let run = |args: &[&str]| {
        let mut c = cairn(dir.path());
        with_unreachable_s3(&mut c, dir.path());
        if let Some(url) = &catalog {
            c.env("DATABASE_URL", url);
        }
        c.args(args).output().unwrap()
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = catalog
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rw", dir.path().join("cairn.db").display()));
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let d = cairn::usage::Delta::live(None, 4321).uploaded(4321, false);
    cairn::usage::record(&db, "storedown", "prod", Utc::now(), &d)
        .await
        .unwrap();
    db.close().await.unwrap();

    let out = run(&["usage"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("storedown") && stdout.contains("4.3 kB"),
        "{stdout}"
    );
    let out = run(&["usage", "--csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.contains("storedown,prod,1,4321,4321"), "{csv}");

    let out = run(&["lifecycle", "run", "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
}

/// `.env.sample` lists exactly the settings `cairn serve --help` names: its own (`[env: ...]`)
/// and the AWS chain's.
#[test]
fn env_sample_lists_the_settings_of_serve_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(dir.path())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let mut in_help: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().to_owned())
        .collect();
    in_help.extend(
        help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("AWS_"))
            .map(str::to_owned),
    );
    for var in ["DATABASE_URL", "CAIRN_METRICS_TOKEN", "AWS_PROFILE"] {
        assert!(in_help.contains(var), "--help does not name {var}: {help}");
    }
    let sample =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.sample")).unwrap();
    // `NAME=value` lines, set or commented out.
    let in_sample: BTreeSet<String> = sample
        .lines()
        .filter_map(|l| {
            let (name, _) = l.trim_start_matches('#').trim().split_once('=')?;
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| name.to_owned())
        })
        .collect();
    let missing: Vec<_> = in_help.difference(&in_sample).collect();
    let unknown: Vec<_> = in_sample.difference(&in_help).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        ".env.sample misses {missing:?}; --help does not name {unknown:?}"
    );
}
