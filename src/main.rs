//! The `cairn` command line. Parses arguments and hands over to the library.
use std::{collections::BTreeMap, process::ExitCode};

use cairn::{
    auth::{mint, Audience, Claims, Role},
    config::{Config, ConfigError, Provision, Settings},
    Application,
};
use clap::{Parser, Subcommand};

mod usage_cli;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: a multi-tenant artifact store on S3 and CloudFront",
    after_help = "`serve` and `migrate` create what is missing (the data dir, the SQLite catalog, \
                  development secrets). The other commands work on an existing deployment, with \
                  the server's settings: they create nothing and exit with 2 when it is missing."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending catalog migrations, then serve the HTTP API until SIGTERM or Ctrl-C.
    #[command(after_help = AWS_CHAIN_HELP)]
    Serve(Settings),
    /// Create the catalog or apply its pending migrations, and exit.
    Migrate(Settings),
    /// Mint a bearer token for local use, signed with the configured HS256 secret
    /// (`CAIRN_JWT_SECRET`, or the one `cairn serve` generated in the data dir).
    Token(TokenArgs),
    /// Lifecycle: retention, abandoned uploads, purges and orphan checks.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Usage per tenant and env, from the exact counters: objects, logical and physical bytes,
    /// uploads, download URLs issued, downloads and bytes actually served (Cairn's and
    /// CloudFront's, the egress), dedup savings, purges. With --from/--to the activity
    /// columns are that range's (UTC days, inclusive) with GB-days and an estimated cost.
    /// --reconcile recounts the catalog and reports counter drift (--fix corrects it; exit 3
    /// when drift is found and not fixed).
    Usage(UsageArgs),
}

/// The settings the AWS SDK reads itself (S3 and CloudFront), listed after `cairn serve`'s own.
const AWS_CHAIN_HELP: &str = "\
AWS chain (read by the AWS SDK for S3 and CloudFront, besides AWS_REGION and AWS_ENDPOINT_URL_S3):
      AWS_PROFILE                                a profile of ~/.aws/config and ~/.aws/credentials
      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   static credentials (AWS_SESSION_TOKEN: temporary)
  Instance and container roles need no setting.";

#[derive(clap::Args)]
struct UsageArgs {
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only this env.
    #[arg(long)]
    env: Option<String>,
    /// First day of the range, YYYY-MM-DD (UTC).
    #[arg(long)]
    from: Option<String>,
    /// Last day of the range, YYYY-MM-DD (default: today).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Print CSV (the columns of `GET /admin/usage` with Accept: text/csv).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print JSON rows.
    #[arg(long)]
    json: bool,
    /// Recount usage from the catalog and report counters that drifted.
    #[arg(long, conflicts_with_all = ["csv", "json", "from"])]
    reconcile: bool,
    /// With --reconcile: set drifted counters to the recount.
    #[arg(long, requires = "reconcile")]
    fix: bool,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum LifecycleCommand {
    /// Run one sweep now, as the schedule does: abandoned uploads become `failed`, expired and
    /// out-of-retention items `deleted`, deleted items past the grace period are purged and their
    /// objects removed once nothing references them; orphan objects (and the local store's
    /// temp files of interrupted uploads) are reported. Prints a summary table (`--json`: the
    /// run record). Exits 1 if the sweep failed, 2 if another sweep holds the lease or there is
    /// no deployment to sweep (it creates none).
    Run(LifecycleRunArgs),
}

#[derive(clap::Args)]
struct LifecycleRunArgs {
    /// Report what a real run would do; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Remove orphan objects (no blob row names them) and orphan temp files instead of only
    /// reporting them.
    #[arg(long)]
    fix_orphans: bool,
    /// Print the run record as JSON instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: Settings,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The user the token speaks for (`sub`).
    #[arg(long)]
    sub: String,
    /// A tenant membership as TENANT=ROLE (owner, admin, member, viewer); repeatable.
    #[arg(long = "tenant", value_parser = parse_membership)]
    tenants: Vec<(String, Role)>,
    /// Grant the operator API (`/admin`).
    #[arg(long)]
    operator: bool,
    /// Lifetime, like 90s, 30m, 1h or 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: i64,
    #[command(flatten)]
    settings: Settings,
}

fn parse_membership(s: &str) -> Result<(String, Role), String> {
    let (tenant, role) = s
        .split_once('=')
        .ok_or("expected TENANT=ROLE, e.g. acme=owner")?;
    cairn::domain::TenantId::parse(tenant).map_err(|e| e.detail)?;
    let role = Role::parse(role).ok_or("role must be owner, admin, member or viewer")?;
    Ok((tenant.to_owned(), role))
}

fn parse_ttl(s: &str) -> Result<i64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("unknown unit in `{s}`: use s, m, h or d")),
    };
    if secs <= 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(secs)
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("CAIRN_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A setting its parser refused reads as every other bad setting does, exit 1.
        Err(e) => match ConfigError::from_clap(&e) {
            Some(bad) => {
                eprintln!("error: {bad}");
                return ExitCode::FAILURE;
            }
            None => e.exit(),
        },
    };
    let result = match cli.command {
        Command::Usage(args) => usage_cli::run(args).await,
        Command::Lifecycle(LifecycleCommand::Run(args)) => lifecycle_run(args).await,
        command => run(command).await.map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        failure_code(&e)
    })
}

/// 2 when a command found no deployment to work on (and created none), else 1.
fn failure_code(e: &anyhow::Error) -> ExitCode {
    let no_deployment = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ConfigError>(),
            Some(ConfigError::NoDeployment(_))
        )
    });
    if no_deployment {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the sweep's progress on one terminal line (nothing when stderr is not a terminal).
fn progress_line() -> Option<cairn::lifecycle::Progress> {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(std::sync::Arc::new(|step: &'static str, done: u64| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{step}: {done}");
        let _ = err.flush();
    }))
}

async fn lifecycle_run(args: LifecycleRunArgs) -> anyhow::Result<ExitCode> {
    use cairn::{
        jobs::{self, RunError, Trigger},
        lifecycle::{self, SweepOptions},
    };
    let config = Config::from_settings(&args.settings)?.provision(Provision::Existing)?;
    let lc = cairn::lifecycle_for_cli(&config).await?;
    let progress = progress_line();
    let interactive = progress.is_some();
    let opts = SweepOptions {
        dry_run: args.dry_run,
        fix_orphans: args.fix_orphans,
        progress,
        ..Default::default()
    };
    let result = jobs::lifecycle::run(&lc, Trigger::Cli, &opts, chrono::Utc::now()).await;
    if interactive {
        eprint!("\r\x1b[2K");
    }
    let run = match result {
        Ok(run) => run,
        Err(e @ RunError::Busy(_)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&jobs::lifecycle::RunView::from(run.clone()))?
        );
    } else {
        let report: lifecycle::Report = serde_json::from_value(run.report.clone())?;
        println!(
            "lifecycle run {} ({}{}): {}",
            run.id,
            run.trigger,
            if run.dry_run { ", dry run" } else { "" },
            run.status
        );
        print!("{}", report.table(run.dry_run));
        if let Some(e) = &run.error {
            println!("error: {e}");
        }
    }
    Ok(if run.status == entity::lifecycle_run::STATUS_FAILED {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(settings) => {
            let config = Config::from_settings(&settings)?;
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate(settings) => {
            let config = Config::from_settings(&settings)?.provision(Provision::Create)?;
            let db = cairn::connect(&config).await?;
            cairn::migrate(&db).await?;
            tracing::info!("catalog is up to date");
        }
        Command::Token(args) => {
            let config = Config::from_settings(&args.settings)?.provision(Provision::Existing)?;
            let now = chrono::Utc::now().timestamp();
            let claims = Claims {
                sub: args.sub,
                exp: now + args.ttl,
                iat: Some(now),
                iss: config.jwt.issuer.clone(),
                aud: config.jwt.audience.clone().map(Audience::One),
                tenants: args.tenants.into_iter().collect::<BTreeMap<_, _>>(),
                operator: args.operator,
            };
            println!("{}", mint(&config.jwt, &claims)?);
        }
        Command::Lifecycle(_) | Command::Usage(_) => unreachable!("handled in main"),
    }
    Ok(())
}
