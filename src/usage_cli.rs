//! `cairn usage` (the binary's module): the usage table (or CSV/JSON) and the reconcile check, straight from the
//! catalog (the object store is not opened: the report works while it is down).
use std::process::ExitCode;

use cairn::{
    config::{Config, Provision},
    metering::{
        reconcile,
        report::{self, Filter, UsageRow},
    },
};
use chrono::{NaiveDate, Utc};

use super::UsageArgs;

pub async fn run(args: UsageArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_settings(&args.settings)?.provision(Provision::Existing)?;
    if let Some(t) = &args.tenant {
        cairn::domain::TenantId::parse(t).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))?;
    }
    if let Some(e) = &args.env {
        anyhow::ensure!(
            config.envs.contains(e),
            "--env: `{e}` is not one of CAIRN_ENVS ({})",
            config.envs.join(",")
        );
    }
    let range = match (&args.from, &args.to) {
        (None, _) => None,
        (Some(f), t) => {
            let from = date("--from", f)?;
            let to = match t {
                Some(t) => date("--to", t)?,
                None => Utc::now().date_naive(),
            };
            anyhow::ensure!(from <= to, "--from is after --to");
            Some((from, to))
        }
    };
    let db = cairn::usage_catalog_for_cli(&config).await?;
    if args.reconcile {
        let drift = reconcile::reconcile(&db, args.fix, Utc::now()).await?;
        if drift.is_empty() {
            println!("usage counters match the catalog");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<24} {:<10} {:<16} {:>16} {:>16}",
            "TENANT", "ENV", "COUNTER", "COUNTED", "ACTUAL"
        );
        for d in &drift {
            println!(
                "{:<24} {:<10} {:<16} {:>16} {:>16}",
                d.tenant_id, d.env, d.counter, d.counted, d.actual
            );
        }
        return Ok(if args.fix {
            println!("{} counters corrected", drift.len());
            ExitCode::SUCCESS
        } else {
            println!(
                "{} counters drifted; run with --fix to correct them",
                drift.len()
            );
            ExitCode::from(3)
        });
    }
    let filter = Filter {
        tenant: args.tenant,
        env: args.env,
        range,
    };
    let rows = report::rows(&db, &filter, &config.metering.prices).await?;
    if args.csv {
        print!("{}", report::csv(&rows));
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows, range));
    }
    Ok(ExitCode::SUCCESS)
}

fn date(flag: &str, v: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("{flag}: `{v}` is not a date like 2026-11-01"))
}

/// Bytes for people: 1.5 GB (powers of 1000, as storage is billed).
fn human(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v.abs() >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn table(rows: &[UsageRow], range: Option<(NaiveDate, NaiveDate)>) -> String {
    let mut out = String::new();
    match range {
        Some((f, t)) => out.push_str(&format!("activity from {f} to {t} (UTC)\n")),
        None => out.push_str("activity since counting began\n"),
    }
    out.push_str(&format!(
        "{:<24} {:<8} {:>9} {:>10} {:>10} {:>10} {:>8} {:>11} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
        "TENANT",
        "ENV",
        "OBJECTS",
        "LOGICAL",
        "PHYSICAL",
        "DEDUP",
        "UPLOADS",
        "URLS-ISSUED",
        "DOWNLOADS",
        "SERVED",
        "CDN",
        "GB-DAYS",
        "COST"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:<8} {:>9} {:>10} {:>10} {:>10} {:>8} {:>11} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
            r.tenant_id,
            r.env,
            r.objects,
            human(r.logical_bytes),
            human(r.physical_bytes),
            human(r.dedup_bytes_saved),
            r.uploads,
            r.download_urls,
            r.downloads,
            human(r.download_bytes),
            human(r.cdn_bytes),
            r.gb_days.map_or("-".into(), |g| format!("{g:.3}")),
            r.estimated_cost.map_or("-".into(), |c| format!("{c:.2}")),
        ));
    }
    if rows.is_empty() {
        out.push_str("(no usage recorded)\n");
    }
    out.push_str(
        "URLS-ISSUED: download URLs handed out. DOWNLOADS, SERVED: downloads actually served and \
         their bytes (Cairn's own and CloudFront's), priced as egress; CDN: CloudFront's part.\n",
    );
    out
}
