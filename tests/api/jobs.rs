//! The job runner (`cairn::jobs`): every scheduled job — the lifecycle sweep, the metering job
//! and the CDN invalidation queue — claims its tick before its lease (a tick another run holds
//! the lease for is recorded `skipped`), renews its lease during a long run, stops on shutdown
//! and closes the runs a crash left `running`. And the operator routes: every job's runs, and
//! requeueing refused invalidations.
use std::{sync::Arc, time::Duration};

use aws_config::BehaviorVersion;
use aws_sdk_cloudfront::config::{Credentials, Region};
use cairn::{
    cdn::invalidation::{self, Invalidator},
    config::InvalidationConfig,
    jobs::{
        self,
        invalidations::InvalidationsJob,
        lifecycle::SweepJob,
        metering::MeteringJob,
        record::{self, JobRunView},
        Crash, Job, Outcome, RunContext, RunError, RunLog, Runner, Schedule, Trigger,
    },
};
use chrono::{DateTime, Utc};
use entity::{cdn_invalidation, job_lease};
use reqwest::StatusCode;
use sea_orm::{sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::{problem, TestApp};

/// A CloudFront client nobody answers: the jobs here find the queue empty and never send.
async fn idle_invalidator() -> Invalidator {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Invalidator::from_sdk_config(
        &sdk,
        &InvalidationConfig {
            distribution_id: "E2EXAMPLE".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        },
    )
}

/// The scheduled jobs, as another process on the app's catalog would build them.
#[derive(Clone, Copy, Debug)]
enum Which {
    Lifecycle,
    Metering,
    Invalidations,
}

const EVERY_JOB: [Which; 3] = [Which::Lifecycle, Which::Metering, Which::Invalidations];

/// One job whatever its kind: the real job, optionally held back before it works (a long run)
/// and with another lease TTL.
struct Under {
    which: Which,
    lifecycle: SweepJob,
    metering: MeteringJob,
    invalidations: InvalidationsJob,
    ttl: Option<chrono::Duration>,
    hold: Duration,
}

async fn job(app: &TestApp, which: Which) -> Under {
    let mut lc = (*app.state.lifecycle).clone();
    lc.holder = jobs::holder_id();
    let mut m = (*app.state.metering).clone();
    m.holder = jobs::holder_id();
    Under {
        which,
        lifecycle: SweepJob {
            lc,
            opts: Default::default(),
        },
        metering: MeteringJob {
            m,
            opts: Default::default(),
        },
        invalidations: InvalidationsJob {
            db: app.state.db.clone(),
            inv: idle_invalidator().await,
            holder: jobs::holder_id(),
        },
        ttl: None,
        hold: Duration::ZERO,
    }
}

impl Under {
    fn real(&self) -> &dyn Described {
        match self.which {
            Which::Lifecycle => &self.lifecycle,
            Which::Metering => &self.metering,
            Which::Invalidations => &self.invalidations,
        }
    }
}

/// What the tests read of a job without running it.
trait Described {
    fn name(&self) -> &'static str;
    fn runs(&self) -> RunLog;
    fn ttl(&self) -> chrono::Duration;
    fn holder(&self) -> &str;
}

impl<J: Job> Described for J {
    fn name(&self) -> &'static str {
        Job::name(self)
    }
    fn runs(&self) -> RunLog {
        Job::runs(self)
    }
    fn ttl(&self) -> chrono::Duration {
        Job::lease_ttl(self)
    }
    fn holder(&self) -> &str {
        Job::holder(self)
    }
}

impl Job for Under {
    type Report = Value;

    fn name(&self) -> &'static str {
        self.real().name()
    }
    fn lease_ttl(&self) -> chrono::Duration {
        self.ttl.unwrap_or_else(|| self.real().ttl())
    }
    fn runs(&self) -> RunLog {
        self.real().runs()
    }
    fn catalog(&self) -> &DatabaseConnection {
        &self.invalidations.db
    }
    fn holder(&self) -> &str {
        self.real().holder()
    }

    async fn run(
        &self,
        cx: &RunContext,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<Outcome<Value>, Crash> {
        tokio::select! {
            _ = cx.stop.cancelled() => {}
            _ = tokio::time::sleep(self.hold) => {}
        }
        fn json<R: serde::Serialize>(o: Outcome<R>) -> Outcome<Value> {
            Outcome {
                status: o.status,
                report: serde_json::json!(o.report),
                error: o.error,
            }
        }
        Ok(match self.which {
            Which::Lifecycle => json(self.lifecycle.run(cx, trigger, now).await?),
            Which::Metering => json(self.metering.run(cx, trigger, now).await?),
            Which::Invalidations => json(self.invalidations.run(cx, trigger, now).await?),
        })
    }
}

async fn runs_of(app: &TestApp, j: &Under) -> Vec<JobRunView> {
    record::list(&app.state.db, Job::runs(j), 100, None)
        .await
        .unwrap()
}

async fn lease_row(db: &DatabaseConnection, name: &str) -> Option<job_lease::Model> {
    job_lease::Entity::find_by_id(name.to_owned())
        .one(db)
        .await
        .unwrap()
}

/// A whole second, so that a tick is the same on every backend.
fn tick() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

#[tokio::test]
async fn a_tick_is_claimed_before_the_lease_and_recorded_skipped_when_busy() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    for which in EVERY_JOB {
        let (a, b) = (job(&app, which).await, job(&app, which).await);
        let name = Job::name(&a);
        // Another run holds the job's lease.
        job_lease::Entity::insert(job_lease::ActiveModel {
            name: Set(name.into()),
            holder: Set("elsewhere:1:abc".into()),
            expires_at: Set(Utc::now() + chrono::Duration::minutes(5)),
        })
        .exec(db)
        .await
        .unwrap();
        let t = tick();
        let stop = CancellationToken::new();
        let busy = jobs::execute(&a, Trigger::Schedule(t), t, &stop).await;
        assert!(
            matches!(busy, Err(RunError::Busy(_))),
            "{which:?}: {busy:?}"
        );
        // The tick was claimed first: its row says it was skipped, and by whom.
        let runs = runs_of(&app, &a).await;
        assert_eq!(runs.len(), 1, "{which:?}");
        assert_eq!(runs[0].status, jobs::STATUS_SKIPPED, "{which:?}");
        assert_eq!(runs[0].tick, Some(t), "{which:?}");
        assert!(
            runs[0]
                .error
                .as_deref()
                .unwrap()
                .contains("elsewhere:1:abc"),
            "{which:?}: {:?}",
            runs[0].error
        );
        // Another replica firing the same tick stands aside without touching the lease.
        let taken = jobs::execute(&b, Trigger::Schedule(t), t, &stop).await;
        assert!(matches!(taken, Err(RunError::TickTaken)), "{which:?}");
        assert_eq!(
            lease_row(db, name).await.unwrap().holder,
            "elsewhere:1:abc",
            "{which:?}"
        );
        assert_eq!(runs_of(&app, &a).await.len(), 1, "{which:?}");

        // The lease free, the next tick runs, on whichever replica claims it.
        job_lease::Entity::delete_many().exec(db).await.unwrap();
        let next = t + chrono::Duration::seconds(1);
        let done = jobs::execute(&b, Trigger::Schedule(next), next, &stop)
            .await
            .unwrap();
        assert_eq!(done.status, jobs::STATUS_SUCCEEDED, "{which:?}");
        assert!(lease_row(db, name).await.is_none(), "{which:?}: released");
        let runs = runs_of(&app, &a).await;
        assert_eq!(runs.len(), 2, "{which:?}");
        assert_eq!(runs[0].holder, Job::holder(&b), "{which:?}");
    }
}

#[tokio::test]
async fn the_lease_is_renewed_during_a_long_run() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    for which in EVERY_JOB {
        let mut long = job(&app, which).await;
        // A 1 s lease, renewed every 100 ms, through a run of 2.5 s.
        long.ttl = Some(chrono::Duration::seconds(1));
        long.hold = Duration::from_millis(2500);
        let name = Job::name(&long);
        let long = Arc::new(long);
        let running = tokio::spawn({
            let long = long.clone();
            async move {
                jobs::execute(&*long, Trigger::Api, Utc::now(), &CancellationToken::new()).await
            }
        });
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let lease = lease_row(db, name).await.expect("the lease is held");
        assert!(
            lease.expires_at > Utc::now(),
            "{which:?}: renewed past its first expiry"
        );
        // Its lease keeps another process out for the whole run.
        let other = job(&app, which).await;
        let busy = jobs::execute(&other, Trigger::Api, Utc::now(), &CancellationToken::new()).await;
        assert!(
            matches!(busy, Err(RunError::Busy(_))),
            "{which:?}: {busy:?}"
        );
        let done = running.await.unwrap().unwrap();
        assert_eq!(done.status, jobs::STATUS_SUCCEEDED, "{which:?}");
        assert!(lease_row(db, name).await.is_none(), "{which:?}");
    }
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_stops_and_is_recorded_failed() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    for which in EVERY_JOB {
        let mut long = job(&app, which).await;
        long.ttl = Some(chrono::Duration::seconds(1));
        long.hold = Duration::from_secs(30);
        let name = Job::name(&long);
        let long = Arc::new(long);
        let running = tokio::spawn({
            let long = long.clone();
            async move {
                jobs::execute(&*long, Trigger::Api, Utc::now(), &CancellationToken::new()).await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Another replica took the lease over (as if ours had expired).
        job_lease::Entity::update_many()
            .col_expr(job_lease::Column::Holder, Expr::value("thief:1:abc"))
            .filter(job_lease::Column::Name.eq(name))
            .exec(db)
            .await
            .unwrap();
        let done = tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the run stops")
            .unwrap()
            .unwrap();
        assert_eq!(done.status, jobs::STATUS_FAILED, "{which:?}");
        let runs = runs_of(&app, &long).await;
        assert!(
            runs[0].error.as_deref().unwrap().contains("lease was lost"),
            "{which:?}: {:?}",
            runs[0].error
        );
        // The thief's lease is left alone.
        assert_eq!(lease_row(db, name).await.unwrap().holder, "thief:1:abc");
        job_lease::Entity::delete_many().exec(db).await.unwrap();
    }
}

#[tokio::test]
async fn scheduled_runs_stop_on_shutdown() {
    let app = TestApp::spawn().await;
    for which in EVERY_JOB {
        let mut long = job(&app, which).await;
        long.hold = Duration::from_secs(60);
        let log = Job::runs(&long);
        let shutdown = CancellationToken::new();
        let mut runner = Runner::new(shutdown.clone()).await.unwrap();
        runner
            .add(Schedule::Every(Duration::from_millis(100)), long)
            .await
            .unwrap();
        let stopped = runner.start().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while record::list(&app.state.db, log, 1, None)
            .await
            .unwrap()
            .first()
            .is_none_or(|r| r.status != jobs::STATUS_RUNNING)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{which:?} never ran"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), stopped)
            .await
            .expect("the runner stops on shutdown")
            .unwrap();
        let runs = record::list(&app.state.db, log, 100, None).await.unwrap();
        assert_eq!(runs.len(), 1, "{which:?}: one run, stopped");
        assert_eq!(runs[0].status, jobs::STATUS_FAILED, "{which:?}");
        assert_eq!(
            runs[0].error.as_deref(),
            Some("stopped by shutdown"),
            "{which:?}"
        );
        // Nothing fires once stopped.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            record::list(&app.state.db, log, 100, None)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn runs_a_crash_left_running_are_closed_by_the_next_run() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    for which in EVERY_JOB {
        let j = job(&app, which).await;
        let log = Job::runs(&j);
        // A run whose process died: its row stays `running`; its lease has expired.
        let dead = record::start(
            db,
            log,
            &Trigger::Api,
            false,
            "dead:1:abc",
            serde_json::json!({}),
        )
        .await
        .unwrap()
        .unwrap();
        let done = jobs::execute(&j, Trigger::Api, Utc::now(), &CancellationToken::new())
            .await
            .unwrap();
        let runs = runs_of(&app, &j).await;
        let closed = runs.iter().find(|r| r.run_id == dead).unwrap();
        assert_eq!(closed.status, jobs::STATUS_FAILED, "{which:?}");
        assert!(
            closed.error.as_deref().unwrap().starts_with("interrupted"),
            "{which:?}"
        );
        assert!(closed.finished_at.is_some());
        let ours = runs.iter().find(|r| r.run_id == done.id).unwrap();
        assert_eq!(ours.status, jobs::STATUS_SUCCEEDED, "{which:?}");
    }
    // Each job closes its own runs only.
    let sweep = job(&app, Which::Lifecycle).await;
    let left = record::start(
        db,
        RunLog::Shared(jobs::invalidations::NAME),
        &Trigger::Api,
        false,
        "dead:1:abc",
        serde_json::json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    jobs::execute(&sweep, Trigger::Api, Utc::now(), &CancellationToken::new())
        .await
        .unwrap();
    let inv = record::list(db, RunLog::Shared(jobs::invalidations::NAME), 10, None)
        .await
        .unwrap();
    let row = inv.iter().find(|r| r.run_id == left).unwrap();
    assert_eq!(row.status, jobs::STATUS_RUNNING);
}

// ---- the operator routes ----

#[tokio::test]
async fn operators_see_every_jobs_runs() {
    let app = TestApp::spawn().await;
    for which in EVERY_JOB {
        let j = job(&app, which).await;
        jobs::execute(&j, Trigger::Api, Utc::now(), &CancellationToken::new())
            .await
            .unwrap();
    }
    let get = |q: &'static str| {
        let (client, base, token) = (app.client.clone(), app.base.clone(), app.operator_token());
        async move {
            client
                .get(format!("{base}/admin/jobs/runs{q}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let res = get("").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let runs = body["runs"].as_array().unwrap();
    let mut names: Vec<&str> = runs.iter().map(|r| r["job"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["invalidations", "lifecycle", "metering"], "{body}");
    for r in runs {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["trigger"], "api");
        assert!(r["run_id"].is_string() && r["report"].is_object(), "{r}");
    }
    // Newest first.
    let started: Vec<&str> = runs
        .iter()
        .map(|r| r["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = started.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(started, sorted);

    let body: Value = get("?job=metering&limit=5").await.json().await.unwrap();
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["job"], "metering");
    let body: Value = get("?limit=1").await.json().await.unwrap();
    assert_eq!(body["runs"].as_array().unwrap().len(), 1);

    for q in ["?job=nope", "?limit=0", "?before=yesterday", "?force=1"] {
        problem(get(q).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn operators_requeue_refused_invalidations() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let paths: Vec<String> = (0..3).map(|i| format!("/public/p{i}.png")).collect();
    invalidation::enqueue(db, &paths, Utc::now()).await.unwrap();
    cdn_invalidation::Entity::update_many()
        .col_expr(
            cdn_invalidation::Column::State,
            Expr::value(cdn_invalidation::STATE_FAILED),
        )
        .col_expr(cdn_invalidation::Column::Error, Expr::value("AccessDenied"))
        .filter(cdn_invalidation::Column::Path.ne("/public/p0.png"))
        .exec(db)
        .await
        .unwrap();
    let requeue = || {
        app.client
            .post(format!("{}/admin/cdn/invalidations/requeue", app.base))
            .bearer_auth(app.operator_token())
    };
    let res = requeue().send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["requeued"], 2, "{body}");
    let rows = cdn_invalidation::Entity::find().all(db).await.unwrap();
    assert!(rows
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_QUEUED));
    let body: Value = requeue().send().await.unwrap().json().await.unwrap();
    assert_eq!(body["requeued"], 0);
}

#[tokio::test]
async fn job_routes_are_for_operators_only() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    invalidation::enqueue(db, &["/public/p.png".to_owned()], Utc::now())
        .await
        .unwrap();
    cdn_invalidation::Entity::update_many()
        .col_expr(
            cdn_invalidation::Column::State,
            Expr::value(cdn_invalidation::STATE_FAILED),
        )
        .exec(db)
        .await
        .unwrap();
    let owner = app.token("alice", &[("acme", cairn::auth::Role::Owner)]);
    for (method, path) in [
        (reqwest::Method::GET, "/admin/jobs/runs"),
        (reqwest::Method::POST, "/admin/cdn/invalidations/requeue"),
    ] {
        for (token, status, code) in [
            (None, StatusCode::UNAUTHORIZED, "unauthorized"),
            (Some(owner.clone()), StatusCode::FORBIDDEN, "forbidden"),
        ] {
            let mut req = app
                .client
                .request(method.clone(), format!("{}{path}", app.base));
            if let Some(t) = token {
                req = req
                    .bearer_auth(t)
                    .header("x-tenant-id", "acme")
                    .header("x-env", "dev");
            }
            problem(req.send().await.unwrap(), status, code).await;
        }
    }
    // Nothing was requeued.
    let rows = cdn_invalidation::Entity::find().all(db).await.unwrap();
    assert_eq!(rows[0].state, cdn_invalidation::STATE_FAILED);
}

/// A server with `CAIRN_JOBS` on schedules the sweep and metering (each fires every second
/// here); stopping it stops them, and no run is left `running`.
#[tokio::test]
async fn a_stopping_server_leaves_no_run_running() {
    let mut app = TestApp::spawn_with(|s| {
        let every_second = |var| cairn::config::Schedule::parse(var, "* * * * * *").unwrap();
        s.jobs.jobs = true;
        s.jobs.lifecycle_cron = every_second("CAIRN_LIFECYCLE_CRON");
        s.jobs.metering_cron = every_second("CAIRN_METERING_CRON");
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for log in [RunLog::Lifecycle, RunLog::Metering] {
        while !record::list(&app.state.db, log, 100, None)
            .await
            .unwrap()
            .iter()
            .any(|r| r.trigger == "schedule" && r.status == jobs::STATUS_SUCCEEDED)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{log:?}: no scheduled run"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.stop().await;
    let db = cairn::connect(&app.state.config).await.unwrap();
    for log in [RunLog::Lifecycle, RunLog::Metering] {
        let runs = record::list(&db, log, 500, None).await.unwrap();
        assert!(
            runs.iter().all(|r| r.status != jobs::STATUS_RUNNING),
            "{log:?}: {runs:?}"
        );
        // One row per tick, whatever became of it.
        let mut ticks: Vec<_> = runs.iter().filter_map(|r| r.tick).collect();
        let n = ticks.len();
        ticks.dedup();
        assert_eq!(ticks.len(), n, "{log:?}");
    }
    db.close().await.ok();
}
