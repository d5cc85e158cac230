//! The configuration's tests: every setting's parse and its errors naming the variable, the
//! checks across settings, and what start-up creates (or refuses to create) in the data dir.
use std::path::{Path, PathBuf};

use super::*;

mod cdn;
mod jobs;

/// Valid settings in `dir` (every other setting at its default).
pub(super) fn settings(dir: &Path) -> Settings {
    Settings::from_vars([
        ("CAIRN_DATA_DIR", dir.to_str().unwrap()),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1000"),
        ("CAIRN_ENVS", "dev,prod"),
    ])
    .unwrap()
}

/// The configuration `cairn serve` starts with: checked, then provisioned.
pub(super) fn load(s: &Settings) -> Result<Config, ConfigError> {
    Config::from_settings(s)?.provision(Provision::Create)
}

pub(super) fn err(s: &Settings) -> String {
    load(s).unwrap_err().to_string()
}

/// The error of `settings(dir)` with `vars` set: at parse, or where they are checked together.
pub(super) fn err_with(dir: &Path, vars: &[(&str, &str)]) -> String {
    let mut s = settings(dir);
    for (var, value) in vars {
        if let Err(e) = s.try_set(var, value) {
            return e.to_string();
        }
    }
    err(&s)
}

#[test]
fn s3_without_bucket_names_raw_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.set("CAIRN_STORAGE", "s3");
    s.set("CAIRN_JWT_SECRET", &"x".repeat(32));
    assert!(err(&s).starts_with("RAW_BUCKET is required"), "{}", err(&s));
}

/// DESIGN §10: `RAW_BUCKET` alone means S3, as the AWS docs deploy it; nothing lands on
/// local disk.
#[test]
fn raw_bucket_alone_selects_s3() {
    let dir = tempfile::tempdir().unwrap();
    for storage in [None, Some(""), Some(" "), Some("s3")] {
        let mut s = settings(dir.path());
        s.set("RAW_BUCKET", "assets");
        s.set("AWS_REGION", "eu-west-1");
        s.set("CAIRN_JWT_SECRET", &"x".repeat(32));
        if let Some(storage) = storage {
            s.set("CAIRN_STORAGE", storage);
        }
        let c = load(&s).unwrap();
        let StorageConfig::S3(s3) = &c.storage else {
            panic!("CAIRN_STORAGE={storage:?} with RAW_BUCKET: {:?}", c.storage);
        };
        assert_eq!(s3.bucket, "assets");
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
    }
    assert!(!dir.path().join("url-signing.key").exists());
    assert!(!dir.path().join("objects").exists());
    // No bucket (or a blank one): local, as before.
    for bucket in [None, Some("")] {
        let mut s = settings(dir.path());
        s.set("CAIRN_JWT_SECRET", &"x".repeat(32));
        if let Some(bucket) = bucket {
            s.set("RAW_BUCKET", bucket);
        }
        let c = load(&s).unwrap();
        assert!(
            matches!(c.storage, StorageConfig::Local { .. }),
            "RAW_BUCKET={bucket:?}"
        );
    }
}

#[test]
fn local_storage_with_a_bucket_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.set("RAW_BUCKET", "assets");
    s.set("CAIRN_JWT_SECRET", &"x".repeat(32));
    for local in ["local", " local "] {
        s.set("CAIRN_STORAGE", local);
        let msg = err(&s);
        assert!(msg.starts_with("CAIRN_STORAGE is invalid"), "{msg}");
        assert!(
            msg.contains("RAW_BUCKET") && msg.contains("`assets`"),
            "{msg}"
        );
    }
    assert!(!dir.path().join("url-signing.key").exists());
}

/// Parsing never touches the disk: the data dir and its secrets are start-up's.
#[test]
fn parsing_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("cairn-data");
    let c = Config::from_settings(&settings(&data)).unwrap();
    assert!(!data.exists(), "parsing created the data dir");
    assert!(matches!(c.jwt.key, JwtKey::InDataDir(_)));
    let c = c.provision(Provision::Create).unwrap();
    assert!(data.join("jwt-secret").is_file() && data.join("url-signing.key").is_file());
    assert!(matches!(c.jwt.key, JwtKey::Hs256(_)));
}

/// Commands other than `serve` and `migrate` never make a data dir or a secret up.
#[test]
fn an_existing_deployment_is_used_never_created() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("cairn-data");
    let s = settings(&data);
    let existing = |s: &Settings| Config::from_settings(s)?.provision(Provision::Existing);
    let msg = match existing(&s) {
        Err(e @ ConfigError::NoDeployment(_)) => e.to_string(),
        other => panic!("expected NoDeployment: {other:?}"),
    };
    for named in ["CAIRN_DATA_DIR=", "jwt-secret", "cairn.db", "DATABASE_URL"] {
        assert!(msg.contains(named), "{named} not in: {msg}");
    }
    assert!(!data.exists(), "the data dir was created");

    // S3 with the token secret from the environment: nothing in the data dir is needed to
    // load (a default SQLite catalog is checked where it is opened), and nothing is made.
    let mut s3 = s.clone();
    s3.set("RAW_BUCKET", "assets");
    s3.set("CAIRN_JWT_SECRET", &"x".repeat(32));
    existing(&s3).unwrap();
    assert!(!data.exists(), "the data dir was created for S3");

    // What `cairn serve` generated is what the others use.
    let served = load(&s).unwrap();
    let used = existing(&s).unwrap();
    let (JwtKey::Hs256(a), JwtKey::Hs256(b)) = (&served.jwt.key, &used.jwt.key) else {
        panic!("expected HS256");
    };
    assert_eq!(a, b);

    // A secret gone is named, not made up again.
    for (file, what) in [
        ("jwt-secret", "token secret"),
        ("url-signing.key", "URL signing key"),
    ] {
        let path = data.join(file);
        let kept = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let msg = match existing(&s) {
            Err(e @ ConfigError::NoDeployment(_)) => e.to_string(),
            other => panic!("expected NoDeployment without {file}: {other:?}"),
        };
        assert!(msg.contains(what) && msg.contains(file), "{msg}");
        assert!(!path.exists(), "{file} was generated again");
        std::fs::write(&path, kept).unwrap();
    }
}
#[test]
fn catalogs_are_described_without_credentials() {
    for (url, want) in [
        (
            "postgres://cairn:hunter2@db.internal:5432/cairn?sslmode=require",
            "postgres://db.internal:5432/cairn",
        ),
        (
            "postgresql://cairn@db/cairn?password=hunter2",
            "postgresql://db/cairn",
        ),
        ("postgres://u:p%40ss@h", "postgres://h"),
        (
            "postgres:///cairn?host=/run/postgresql",
            "postgres:///cairn",
        ),
        (
            "sqlite://./cairn-data/cairn.db?mode=rwc",
            "sqlite ./cairn-data/cairn.db",
        ),
        (
            "sqlite:///var/lib/cairn/a%3Fb.db",
            "sqlite /var/lib/cairn/a?b.db",
        ),
        ("sqlite::memory:", "sqlite in memory"),
    ] {
        assert_eq!(describe_catalog(url), want, "{url}");
    }
    for (url, want) in [
        (
            "sqlite://./cairn-data/cairn.db?mode=rwc",
            Some("./cairn-data/cairn.db"),
        ),
        ("sqlite:cairn.db", Some("cairn.db")),
        ("sqlite:///abs/c.db?mode=rw", Some("/abs/c.db")),
        ("sqlite::memory:", None),
        ("sqlite://:memory:", None),
        ("sqlite://x.db?mode=memory", None),
        ("sqlite://?mode=rwc", None),
        ("postgres://h/db", None),
    ] {
        assert_eq!(sqlite_file(url), want.map(PathBuf::from), "{url}");
    }
}

#[test]
fn server_limits_parse() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let c = load(&s).unwrap();
    let secs = std::time::Duration::from_secs;
    // The defaults, as `cairn serve --help` states them.
    assert_eq!(
        c.server,
        ServerLimits {
            header_timeout: secs(10),
            keepalive_timeout: secs(75),
            body_timeout: secs(30),
            body_min_rate: 1024,
            max_connections: 10_000,
        }
    );
    assert!(c.metrics_token.is_none());
    s.set("CAIRN_HEADER_TIMEOUT_SECS", "3");
    s.set("CAIRN_KEEPALIVE_TIMEOUT_SECS", " 20 ");
    s.set("CAIRN_BODY_TIMEOUT_SECS", "5");
    s.set("CAIRN_BODY_MIN_RATE", "0");
    s.set("CAIRN_MAX_CONNECTIONS", "64");
    s.set("CAIRN_METRICS_TOKEN", &"m".repeat(16));
    let c = load(&s).unwrap();
    assert_eq!(
        c.server,
        ServerLimits {
            header_timeout: secs(3),
            keepalive_timeout: secs(20),
            body_timeout: secs(5),
            body_min_rate: 0,
            max_connections: 64,
        }
    );
    assert_eq!(c.metrics_token.unwrap().expose(), "m".repeat(16));
}

#[test]
fn bad_values_name_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("CAIRN_PRESIGN_TTL_SECS", "soon"),
        ("CAIRN_PRESIGN_TTL_SECS", "0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "-5"),
        ("CAIRN_LISTEN", "nowhere"),
        ("CAIRN_STORAGE", "ftp"),
        ("CAIRN_ENVS", ","),
        ("CAIRN_JWT_SECRET", "short"),
        ("CAIRN_JWT_PUBLIC_KEY", "-----BEGIN nonsense"),
        ("DATABASE_URL", "mysql://x"),
        ("CAIRN_PUBLIC_URL", "ftp://x"),
        ("CAIRN_JOBS", "sometimes"),
        ("CAIRN_LIFECYCLE_CRON", "every day"),
        ("CAIRN_METERING_CRON", "hourly"),
        ("CAIRN_CDN_LOG_PREFIX", "logs//cf"),
        ("CAIRN_PRICE_STORAGE_GB_MONTH", "-1"),
        ("CAIRN_PRICE_EGRESS_GB", "cheap"),
        ("CAIRN_PRICE_REQUESTS_PER_1000", "NaN"),
        ("CAIRN_USAGE_FLUSH_SECS", "0"),
        ("CAIRN_USAGE_FLUSH_SECS", "3601"),
        ("CAIRN_LIFECYCLE_CRON", "0 0 25 * * *"),
        ("CAIRN_PENDING_TTL_SECS", "0"),
        ("CAIRN_PURGE_GRACE_SECS", "-1"),
        ("CAIRN_RETENTION_DAYS", "0"),
        ("CAIRN_PURGE_CONCURRENCY", "0"),
        ("CAIRN_PURGE_CONCURRENCY", "33"),
        ("CAIRN_HEADER_TIMEOUT_SECS", "0"),
        ("CAIRN_KEEPALIVE_TIMEOUT_SECS", "forever"),
        ("CAIRN_BODY_TIMEOUT_SECS", "-1"),
        ("CAIRN_BODY_MIN_RATE", "fast"),
        ("CAIRN_MAX_CONNECTIONS", "0"),
        ("CAIRN_METRICS_TOKEN", "short"),
    ];
    for (var, value) in cases {
        let msg = err_with(dir.path(), &[(var, value)]);
        assert!(msg.starts_with(var), "expected {var}: {msg}");
    }
}

#[test]
fn local_mode_generates_a_private_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = load(&settings(dir.path())).unwrap();
    let b = load(&settings(dir.path())).unwrap();
    let (JwtKey::Hs256(sa), JwtKey::Hs256(sb)) = (&a.jwt.key, &b.jwt.key) else {
        panic!("expected HS256");
    };
    assert_eq!(sa, sb);
    assert_eq!(sa.expose().len(), 64);
    assert!(
        !format!("{a:?}").contains(sa.expose()),
        "secret leaked into Debug"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
