//! The metering schedule (`CAIRN_METERING_CRON`): fires on every replica; [`super::run`] claims
//! the tick in the catalog, so one replica samples each tick.
use std::sync::Arc;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::{run, Metering, RunError, RunOptions};
use crate::lifecycle::{schedule::tick_of, Trigger};

/// Starts the schedule; it stops when `shutdown` is cancelled.
pub async fn start(m: Arc<Metering>, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Parsed once, by the configuration.
    let (expr, cron) = (
        m.config.cron.as_str().to_owned(),
        m.config.cron.cron().clone(),
    );
    let mut sched = JobScheduler::new().await?;
    let job = Job::new_async(expr.as_str(), move |_id, _sched| {
        let m = m.clone();
        let cron = cron.clone();
        Box::pin(async move {
            let now = Utc::now();
            let tick = tick_of(&cron, now);
            match run(&m, Trigger::Schedule(tick), RunOptions::default(), now).await {
                Ok(r) => tracing::debug!(run.id = %r.id, %tick, "scheduled metering run done"),
                Err(RunError::TickTaken) => {
                    tracing::debug!(%tick, "another replica runs this metering tick")
                }
                Err(e @ RunError::Busy(_)) => tracing::info!(%tick, "{e}"),
                Err(e) => tracing::error!(%tick, error = %e, "scheduled metering run failed"),
            }
        })
    })?;
    sched.add(job).await?;
    sched.start().await?;
    tracing::info!(cron = %expr, "metering schedule started");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(e) = sched.shutdown().await {
            tracing::warn!(error = %e, "stopping the metering schedule");
        }
    });
    Ok(())
}
