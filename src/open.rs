//! Opening what a process works on: the catalog (connected, migrated, or required to exist for
//! CLI commands) and the object store, and the contexts of the sweep and the metering job built
//! from them. The server ([`crate::Application`]) and the CLI commands share these.
use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use crate::{
    config::{self, Config, Secret, StorageConfig},
    jobs, lifecycle, metering,
    storage::{self, local::LocalStore, s3::S3Store, ObjectStore},
};

/// Connects to the catalog's writer. SQLite runs in WAL mode on a single writer connection: one
/// writer is all SQLite allows, and a single one never meets `SQLITE_BUSY` (reads outside a
/// transaction go to [`connect_reader`]'s connections).
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(if sqlite { 1 } else { 16 })
        .min_connections(if sqlite { 1 } else { 0 });
    let db = Database::connect(opts)
        .await
        .with_context(|| "cannot connect to the catalog (DATABASE_URL)")?;
    if sqlite {
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    Ok(db)
}

/// Read connections of a SQLite file catalog beside its one writer: WAL lets them read the last
/// commit while the writer writes, so reads neither queue behind writes nor on one another.
const SQLITE_READERS: u32 = 4;

/// The catalog's read side, for reads that are not part of a write's transaction. On a SQLite
/// file it is a pool of read-only connections beside the writer [`connect`] opened; a read
/// sees every commit made before it started, as on the writer, so a request that follows a
/// 2xx reads what that request wrote. Elsewhere it is `writer` itself: Postgres's pool already
/// reads in parallel, and an in-memory SQLite catalog exists only on its one connection.
pub async fn connect_reader(
    config: &Config,
    writer: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    if config::sqlite_file(url).is_none() {
        return Ok(writer.clone());
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(SQLITE_READERS)
        .min_connections(1)
        // A manifest's rows come through in one go, not 50 at a time with a wake-up each.
        .map_sqlx_sqlite_opts(|o| {
            o.read_only(true)
                .create_if_missing(false)
                .row_buffer_size(1024)
        });
    Database::connect(opts)
        .await
        .with_context(|| "cannot open read connections to the catalog (DATABASE_URL)")
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migration::Migrator::up(db, None)
        .await
        .context("applying catalog migrations")
}

/// What `cairn lifecycle run` needs: the store and the existing catalog, without a server.
/// `config` as start-up left it ([`Config::provision`]): the local store's key read.
pub async fn lifecycle_for_cli(config: &Config) -> anyhow::Result<lifecycle::Lifecycle> {
    let (store, _) = open_store(config).await?;
    let db = existing_catalog(config).await?;
    Ok(lifecycle_of(db, store, config))
}

/// The object store of a CLI command (checked to answer), and on S3 the S3 store it is.
pub(crate) async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn ObjectStore>, Option<Arc<S3Store>>)> {
    let (store, s3): (Arc<dyn ObjectStore>, _) = match &config.storage {
        StorageConfig::S3(s3) => {
            let store = storage::s3::connect(s3, config.multipart_threshold).await?;
            store.check_ready().await.with_context(|| {
                format!("the object store (bucket {}) does not answer", s3.bucket)
            })?;
            let store = Arc::new(store);
            (store.clone(), Some(store))
        }
        StorageConfig::Local { root, signing_key } => {
            let public_url = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            (
                Arc::new(open_local(root, &public_url, signing_key.secret()?)?),
                None,
            )
        }
    };
    Ok((store, s3))
}

/// What `cairn usage` needs: the existing catalog with its usage counters. Not the store:
/// reports and the reconcile check read the catalog alone, so they work while the store is down.
pub async fn usage_catalog_for_cli(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = existing_catalog(config).await?;
    metering::backfill_if_new(&db).await?;
    Ok(db)
}

/// The catalog of a command other than `serve` and `migrate`: it must exist and have been
/// migrated (by a server or `cairn migrate`), else [`config::ConfigError::NoDeployment`]; a
/// SQLite file is never created and an empty database never given tables. Migrations the
/// catalog lacks are applied, as a server would.
pub async fn existing_catalog(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    if let Some(file) = config::sqlite_file(url) {
        if !file.is_file() {
            return Err(config::ConfigError::NoDeployment(format!(
                "the catalog {} does not exist (DATABASE_URL; unset: cairn.db in CAIRN_DATA_DIR)",
                file.display()
            ))
            .into());
        }
    }
    let db = connect(config).await?;
    let migrated = migration::SchemaManager::new(&db)
        .has_table("seaql_migrations")
        .await
        .context("reading the catalog (DATABASE_URL)")?;
    if !migrated {
        db.close().await.ok();
        return Err(config::ConfigError::NoDeployment(format!(
            "the catalog {} has no tables: no server or `cairn migrate` ever ran on it",
            config::describe_catalog(url)
        ))
        .into());
    }
    migrate(&db).await?;
    Ok(db)
}

/// The store CloudFront's logs are read from: the log bucket `CAIRN_CDN_LOG_PREFIX` names
/// (`s3://<bucket>/...`) through the S3 store's own client and credentials, else the object
/// store. [`Config`] refuses a log bucket without the S3 store.
pub(crate) fn cdn_log_store(
    config: &Config,
    store: &Arc<dyn ObjectStore>,
    s3: Option<&Arc<S3Store>>,
) -> Arc<dyn ObjectStore> {
    match (&config.metering.cdn_log_bucket, s3) {
        (Some(bucket), Some(s3)) => Arc::new(s3.for_bucket(bucket)),
        _ => store.clone(),
    }
}

pub(crate) fn open_local(
    root: &Path,
    public_url: &str,
    signing_key: &Secret,
) -> anyhow::Result<LocalStore> {
    LocalStore::open(root, public_url, signing_key.expose().as_bytes())
        .with_context(|| format!("cannot open the object directory {}", root.display()))
}

/// The sweep's context for this process (the server's scheduler and API, or the CLI).
pub(crate) fn lifecycle_of(
    db: DatabaseConnection,
    store: Arc<dyn ObjectStore>,
    config: &Config,
) -> lifecycle::Lifecycle {
    lifecycle::Lifecycle {
        db,
        store,
        config: config.lifecycle.clone(),
        invalidate: config.cdn.invalidation.is_some(),
        holder: jobs::holder_id(),
    }
}

/// The metering job's context for this process; `logs`: the store CloudFront's logs are in
/// ([`cdn_log_store`]).
pub(crate) fn metering_of(
    db: DatabaseConnection,
    logs: Arc<dyn ObjectStore>,
    config: &Config,
) -> metering::Metering {
    metering::Metering {
        db,
        store: logs,
        config: config.metering.clone(),
        envs: config.envs.clone(),
        holder: jobs::holder_id(),
    }
}
