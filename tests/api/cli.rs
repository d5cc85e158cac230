//! The `cairn` binary itself: fail-fast configuration, `cairn token` with the generated dev
//! secret, and graceful shutdown on SIGTERM.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;

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
