//! The CDN invalidation queue against moto's CloudFront (`scripts/lib/moto.sh` exports
//! `AWS_ENDPOINT_URL_CLOUDFRONT`; without it these tests are skipped, and fail under `CI=true`,
//! except the enqueue one, which needs only the catalog). Each test creates its own distribution in moto. Faults come
//! from `CfProxy`, a one-request-per-connection HTTP proxy in front of moto that can answer
//! CloudFront-style errors or swallow moto's answer.
use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_sdk_cloudfront::{
    config::{BehaviorVersion, Credentials, Region},
    types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    },
    Client,
};
use cairn::{
    cdn::invalidation::{self, Invalidator, Summary},
    config::InvalidationConfig,
    domain::ObjectKey,
    storage::retry::Backoff,
};
use chrono::{DateTime, Utc};
use entity::cdn_invalidation;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::helpers::TestApp;

fn moto() -> String {
    crate::helpers::required_tool("AWS_ENDPOINT_URL_CLOUDFRONT", "moto's CloudFront")
}

/// AWS configuration with static credentials: moto accepts any, and the process environment
/// (Garage's credentials, or none) stays untouched.
async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("moto", "moto", None, None, "test"))
        .load()
        .await
}

/// A client that talks to moto directly, to set up and inspect.
async fn cloudfront(endpoint: &str) -> Client {
    Client::from_conf(
        aws_sdk_cloudfront::config::Builder::from(&sdk().await)
            .endpoint_url(endpoint)
            .build(),
    )
}

/// Cairn's sender, reaching CloudFront at `endpoint` (moto or a proxy), with short backoff.
async fn invalidator(endpoint: &str, distribution_id: &str) -> Invalidator {
    let cfg = InvalidationConfig {
        distribution_id: distribution_id.into(),
        endpoint_url: Some(endpoint.into()),
    };
    Invalidator::from_sdk_config(&sdk().await, &cfg).with_backoff(Backoff {
        attempts: 5,
        base: Duration::from_millis(5),
        max: Duration::from_millis(40),
    })
}

async fn create_distribution(cf: &Client) -> String {
    let origin = Origin::builder()
        .id("cairn")
        .domain_name("cairn-test.s3.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(uuid::Uuid::now_v7().to_string())
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("cairn")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .comment("cairn invalidation test")
        .enabled(true)
        .build()
        .unwrap();
    let out = cf
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .expect("moto creates a distribution");
    out.distribution().unwrap().id().to_owned()
}

/// The ids of the distribution's invalidations, as moto lists them.
async fn listed(cf: &Client, dist: &str) -> BTreeSet<String> {
    let out = cf
        .list_invalidations()
        .distribution_id(dist)
        .send()
        .await
        .unwrap();
    out.invalidation_list()
        .map(|l| l.items().iter().map(|i| i.id().to_owned()).collect())
        .unwrap_or_default()
}

/// An invalidation's CallerReference and paths, as moto received them.
async fn received(cf: &Client, dist: &str, id: &str) -> (String, Vec<String>) {
    let out = cf
        .get_invalidation()
        .distribution_id(dist)
        .id(id)
        .send()
        .await
        .unwrap();
    let batch = out.invalidation().unwrap().invalidation_batch().unwrap();
    let paths = batch
        .paths()
        .map(|p| p.items().to_vec())
        .unwrap_or_default();
    (batch.caller_reference().to_owned(), paths)
}

/// `n` distinct CDN paths of public artifacts, with characters that need encoding.
fn paths(n: usize) -> Vec<String> {
    let run = uuid::Uuid::now_v7();
    (0..n)
        .map(|i| {
            let key = format!(
                "public/tenants/acme/dev/runs/{run}/image/{}/hero {i} ü+.png",
                uuid::Uuid::now_v7()
            );
            invalidation::path_for(&ObjectKey::parse(&key).unwrap())
        })
        .collect()
}

async fn rows(db: &DatabaseConnection) -> Vec<cdn_invalidation::Model> {
    cdn_invalidation::Entity::find().all(db).await.unwrap()
}

fn secs(now: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    now + chrono::Duration::seconds(s)
}

/// Every invalidation's paths: none in two invalidations, at most 1000 in each.
async fn paths_sent(cf: &Client, dist: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for id in listed(cf, dist).await {
        let (_, paths) = received(cf, dist, &id).await;
        assert!(paths.len() <= 1000, "{} paths in {id}", paths.len());
        for p in paths {
            assert!(all.insert(p.clone()), "{p} was invalidated twice");
        }
    }
    all
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn queued_paths_go_out_deduplicated_in_batches_of_at_most_1000_and_once() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let inv = invalidator(&moto, &dist).await;
    let now = Utc::now();
    let distinct = paths(2500);
    invalidation::enqueue(db, &distinct, now).await.unwrap();
    // A purge retried later queues every fifth path again.
    let again: Vec<String> = distinct.iter().step_by(5).cloned().collect();
    invalidation::enqueue(db, &again, secs(now, 1))
        .await
        .unwrap();

    let s = invalidation::run(db, &inv, secs(now, 2)).await.unwrap();
    assert_eq!(
        (s.batches, s.paths, s.rows, s.failed, s.deferred),
        (3, 2500, 3000, 0, 0),
        "{s:?}"
    );
    let ids: BTreeSet<String> = s.invalidation_ids.iter().cloned().collect();
    assert_eq!(listed(&cf, &dist).await, ids);
    let mut by_id: HashMap<String, HashSet<String>> = HashMap::new();
    let mut refs = HashSet::new();
    for id in &ids {
        let (caller_ref, paths) = received(&cf, &dist, id).await;
        refs.insert(caller_ref);
        by_id.insert(id.clone(), paths.into_iter().collect());
    }
    assert_eq!(refs.len(), 3, "one CallerReference per batch");
    assert_eq!(
        paths_sent(&cf, &dist).await,
        distinct.iter().cloned().collect::<BTreeSet<_>>()
    );
    let all = rows(db).await;
    assert_eq!(all.len(), 3000);
    for r in &all {
        assert_eq!(r.state, cdn_invalidation::STATE_SENT);
        assert_eq!(r.attempts, 1);
        assert!(r.claim_token.is_none() && r.claimed_until.is_none() && r.error.is_none());
        assert!(r.sent_at.is_some());
        let id = r.invalidation_id.as_ref().expect("an invalidation id");
        assert!(by_id[id].contains(&r.path), "{id} does not name {}", r.path);
    }

    // Nothing is sent twice.
    let second = invalidation::run(db, &inv, secs(now, 3)).await.unwrap();
    assert_eq!(second, Summary::default());
    assert_eq!(listed(&cf, &dist).await.len(), 3);

    // The record of sent paths is kept for 30 days.
    let later = invalidation::run(db, &inv, now + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(later.pruned, 3000);
    assert!(rows(db).await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn transient_errors_are_retried_with_backoff_without_duplicate_invalidations() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let proxy = CfProxy::start(
        &moto,
        [
            Fault::Answer(503, "ServiceUnavailable"),
            Fault::Answer(400, "Throttling"),
            Fault::Answer(400, "TooManyInvalidationsInProgress"),
        ],
    )
    .await;
    let inv = invalidator(&proxy.url(), &dist).await;
    let now = Utc::now();
    let distinct = paths(1200);
    invalidation::enqueue(db, &distinct, now).await.unwrap();

    let s = invalidation::run(db, &inv, now).await.unwrap();
    assert_eq!((s.batches, s.paths, s.rows, s.failed), (2, 1200, 1200, 0));
    // Three refused attempts, then the first batch, then the second.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen[..4]
        .iter()
        .all(|r| r.caller_reference == seen[0].caller_reference));
    assert_ne!(seen[4].caller_reference, seen[0].caller_reference);
    // The refused requests never reached CloudFront: two invalidations, each path once.
    assert_eq!(listed(&cf, &dist).await.len(), 2);
    assert_eq!(
        paths_sent(&cf, &dist).await,
        distinct.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(rows(db)
        .await
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_SENT && r.attempts == 1));
    assert_eq!(
        invalidation::run(db, &inv, now).await.unwrap(),
        Summary::default()
    );
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn a_lost_answer_is_retried_with_the_same_caller_reference() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let proxy = CfProxy::start(&moto, [Fault::LoseAnswer]).await;
    let inv = invalidator(&proxy.url(), &dist).await;
    let now = Utc::now();
    invalidation::enqueue(db, &paths(10), now).await.unwrap();

    let s = invalidation::run(db, &inv, now).await.unwrap();
    assert_eq!((s.batches, s.rows), (1, 10));
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the retry repeats the request");
    // CloudFront answers a repeated CallerReference with the first invalidation; moto records a
    // second one, identical, which shows the request was repeated byte for byte.
    for id in listed(&cf, &dist).await {
        assert_eq!(received(&cf, &dist, &id).await.0, seen[0].caller_reference);
    }
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn an_outage_longer_than_the_backoff_leaves_the_paths_queued_for_the_next_run() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let proxy = CfProxy::start(&moto, [Fault::Answer(503, "ServiceUnavailable"); 5]).await;
    let inv = invalidator(&proxy.url(), &dist).await;
    let now = Utc::now();
    invalidation::enqueue(db, &paths(1500), now).await.unwrap();

    let s = invalidation::run(db, &inv, now).await.unwrap();
    assert_eq!((s.batches, s.failed, s.deferred), (0, 0, 1500), "{s:?}");
    // Five attempts at the first batch; the second is not tried while CloudFront is away.
    assert_eq!(proxy.seen().len(), 5);
    let all = rows(db).await;
    let tried: Vec<_> = all.iter().filter(|r| r.attempts == 1).collect();
    assert_eq!(tried.len(), 1000);
    assert!(tried.iter().all(|r| r
        .error
        .as_deref()
        .unwrap()
        .starts_with("ServiceUnavailable")));
    assert!(all.iter().all(|r| r.state == cdn_invalidation::STATE_QUEUED
        && r.claim_token.is_none()
        && r.claimed_until.is_none()));
    assert!(listed(&cf, &dist).await.is_empty());

    // CloudFront is back: the next run sends everything.
    let s = invalidation::run(db, &inv, secs(now, 60)).await.unwrap();
    assert_eq!((s.batches, s.rows, s.deferred), (2, 1500, 0));
    assert!(rows(db)
        .await
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_SENT && r.error.is_none()));
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn a_permanent_error_fails_the_rows_once_without_retrying() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let proxy = CfProxy::start(&moto, []).await;
    let inv = invalidator(&proxy.url(), "EDFDVBD6EXAMPLE").await;
    let now = Utc::now();
    invalidation::enqueue(db, &paths(1500), now).await.unwrap();

    let s = invalidation::run(db, &inv, now).await.unwrap();
    assert_eq!((s.batches, s.rows, s.failed, s.deferred), (0, 0, 1500, 0));
    assert_eq!(proxy.seen().len(), 2, "one request per batch, no retry");
    for r in rows(db).await {
        assert_eq!(r.state, cdn_invalidation::STATE_FAILED);
        assert_eq!(r.attempts, 1);
        assert!(r.invalidation_id.is_none() && r.claim_token.is_none());
        let error = r.error.unwrap();
        assert!(error.starts_with("NoSuchDistribution"), "{error}");
    }
    // Failed rows wait for an operator; later runs do not send them.
    let again = invalidation::run(db, &inv, secs(now, 60)).await.unwrap();
    assert_eq!(again, Summary::default());
    assert_eq!(proxy.seen().len(), 2);

    // The operator fixes the distribution id and puts the rows back in the queue.
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    assert_eq!(invalidation::requeue_failed(db).await.unwrap(), 1500);
    let fixed = invalidator(&moto, &dist).await;
    let s = invalidation::run(db, &fixed, secs(now, 120)).await.unwrap();
    assert_eq!((s.batches, s.rows, s.failed), (2, 1500, 0));
    assert!(rows(db)
        .await
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_SENT && r.attempts == 2 && r.error.is_none()));
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn concurrent_runs_send_each_path_once() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let (a, b) = (
        invalidator(&moto, &dist).await,
        invalidator(&moto, &dist).await,
    );
    let now = Utc::now();
    // More than one run claims (3,000 paths), so both runners get work; duplicates of a path
    // must go to one of them.
    let distinct = paths(3500);
    invalidation::enqueue(db, &distinct, now).await.unwrap();
    let again: Vec<String> = distinct.iter().step_by(3).cloned().collect();
    invalidation::enqueue(db, &again, now).await.unwrap();

    let (x, y) = tokio::join!(
        invalidation::run(db, &a, secs(now, 1)),
        invalidation::run(db, &b, secs(now, 1))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.paths + y.paths, 3500, "{x:?} {y:?}");
    assert_eq!(x.rows + y.rows, (3500 + again.len()) as u64);
    assert_eq!(x.batches + y.batches, 4);
    assert_eq!(
        paths_sent(&cf, &dist).await,
        distinct.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(rows(db)
        .await
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_SENT));
}

#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn the_worker_sends_what_is_queued_until_shutdown() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    // The job as the server schedules it, every 50 ms instead of every minute.
    let mut runner = cairn::jobs::Runner::new(shutdown.clone()).await.unwrap();
    let job = cairn::jobs::invalidations::InvalidationsJob {
        db: db.clone(),
        inv: invalidator(&moto, &dist).await,
        holder: cairn::jobs::holder_id(),
    };
    runner
        .add(cairn::jobs::Schedule::Every(Duration::from_millis(50)), job)
        .await
        .unwrap();
    let worker = runner.start().await.unwrap();
    for round in 0..2 {
        let queued = paths(20);
        invalidation::enqueue(db, &queued, Utc::now())
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while rows(db)
            .await
            .iter()
            .any(|r| r.state != cdn_invalidation::STATE_SENT)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round} not sent"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(paths_sent(&cf, &dist).await.len(), 40);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
}

/// `Invalidator::connect` takes credentials and region from the AWS chain (scripts/test.sh's S3
/// runs export Garage's credentials, which moto accepts).
#[tokio::test]
#[ignore = "S3 only: scripts/test.sh selects it on the S3 runs"]
async fn connect_uses_the_aws_chain() {
    crate::helpers::require_backend(None, "s3");
    let moto = moto();
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let inv = Invalidator::connect(&InvalidationConfig {
        distribution_id: dist.clone(),
        endpoint_url: Some(moto.clone()),
    })
    .await
    .unwrap();
    assert_eq!(inv.distribution_id(), dist);
    invalidation::enqueue(db, &paths(3), Utc::now())
        .await
        .unwrap();
    let s = invalidation::run(db, &inv, Utc::now()).await.unwrap();
    assert_eq!((s.batches, s.rows), (1, 3));
    assert_eq!(listed(&cf, &dist).await.len(), 1);
}

#[tokio::test]
async fn enqueue_commits_or_rolls_back_with_the_callers_transaction() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let now = Utc::now();
    let count = || async { cdn_invalidation::Entity::find().count(db).await.unwrap() };

    let txn = db.begin().await.unwrap();
    invalidation::enqueue(&txn, &paths(3), now).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(count().await, 0);

    let txn = db.begin().await.unwrap();
    invalidation::enqueue(&txn, &paths(3), now).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(count().await, 3);
    assert!(rows(db)
        .await
        .iter()
        .all(|r| r.state == cdn_invalidation::STATE_QUEUED && r.attempts == 0));

    // Only encoded CDN paths are accepted: an unencoded key would not match what clients request.
    for bad in ["public/no-leading-slash", "/public/a b.png", "/public/*"] {
        assert!(invalidation::enqueue(db, &[bad.to_owned()], now)
            .await
            .is_err());
    }
    assert_eq!(count().await, 3);
}

/// A purged public item queues every path CloudFront may cache it under for a URL Cairn handed
/// out: CloudFront's own encoding of its key and, when it differs, the URL path Cairn gave out
/// (`/content`'s `?response-content-disposition=` adds no entry: the public cache key is the
/// path alone). A name with `*` gets its artifact's directory, wildcarded.
#[tokio::test]
async fn a_purge_queues_every_path_cairn_handed_out_in_cloudfronts_encoding() {
    let app = TestApp::spawn().await;
    purge_three_public_items(&app).await;
}

/// With moto: the plain paths and the wildcard of [`purge_three_public_items`] go out in
/// separate invalidations, exactly the paths queued.
#[tokio::test]
#[ignore = "needs moto: scripts/test.sh selects it on every backend once moto runs"]
async fn a_purges_paths_are_sent_with_the_wildcard_apart() {
    let moto = moto();
    let app = TestApp::spawn().await;
    let queued = purge_three_public_items(&app).await;
    let cf = cloudfront(&moto).await;
    let dist = create_distribution(&cf).await;
    let inv = invalidator(&moto, &dist).await;
    let s = invalidation::run(&app.state.db, &inv, Utc::now() + chrono::Duration::days(8))
        .await
        .unwrap();
    assert_eq!((s.batches, s.paths, s.failed), (2, 4, 0), "{s:?}");
    assert_eq!(paths_sent(&cf, &dist).await, queued);
    let mut sizes = Vec::new();
    for id in &s.invalidation_ids {
        let (_, paths) = received(&cf, &dist, id).await;
        sizes.push((
            paths.len(),
            paths.iter().filter(|p| p.ends_with('*')).count(),
        ));
    }
    assert_eq!(
        sizes,
        [(3, 0), (1, 1)],
        "plain paths first, the wildcard apart"
    );
}

/// Three public artifacts (a name CloudFront encodes differently, a name with `*`, a plain one)
/// deleted and purged: checks the paths queued and answers them.
async fn purge_three_public_items(app: &TestApp) -> BTreeSet<String> {
    let acme = app.owner("acme", "dev");
    let png = "image/png";
    let mut items = Vec::new();
    for (i, name) in ["hero (1) ü~.png", "frame*.png", "plain.png"]
        .into_iter()
        .enumerate()
    {
        let a = app
            .stream_artifact(
                &acme,
                png,
                &crate::helpers::sample(png, 700 + i),
                serde_json::json!({"visibility": "public", "filename": name}),
            )
            .await;
        // The URL Cairn hands out (`/content` redirects to it plus a query the CDN ignores).
        let url = a["url"].as_str().unwrap().to_owned();
        let id = a["artifact_id"].as_str().unwrap().to_owned();
        let path = url
            .strip_prefix(&format!("{}/cdn", app.base))
            .unwrap()
            .to_owned();
        items.push((name, id, path));
    }
    for (_, id, _) in &items {
        let res = app
            .request(&acme, reqwest::Method::DELETE, &format!("/artifacts/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    }
    let lc = cairn::lifecycle::Lifecycle {
        db: app.state.db.clone(),
        store: app.state.store.clone(),
        config: app.state.config.lifecycle.clone(),
        invalidate: true,
        holder: cairn::jobs::holder_id(),
    };
    let run = cairn::jobs::lifecycle::run(
        &lc,
        cairn::jobs::Trigger::Cli,
        &cairn::lifecycle::SweepOptions::default(),
        Utc::now() + chrono::Duration::days(8),
    )
    .await
    .unwrap();
    assert_eq!(run.report["invalidations_queued"], 4, "{}", run.report);
    let queued: BTreeSet<String> = rows(&app.state.db)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();

    let (hero, frame, plain) = (&items[0].2, &items[1].2, &items[2].2);
    let dir = |p: &str| p.rsplit_once('/').unwrap().0.to_owned();
    assert_eq!(
        queued,
        BTreeSet::from([
            // CloudFront's rule: space, non-ASCII and `~` encoded, `(` `)` not.
            format!("{}/hero%20(1)%20%C3%BC%7E.png", dir(hero)),
            // The URL Cairn handed out.
            hero.clone(),
            format!("{}/*", dir(frame)),
            plain.clone(),
        ])
    );
    assert!(hero.ends_with("/hero%20%281%29%20%C3%BC~.png"), "{hero}");
    assert!(frame.ends_with("/frame%2A.png"), "{frame}");

    queued
}

/// What the proxy does with the next request.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answer this status with a CloudFront error body of this code.
    Answer(u16, &'static str),
    /// Forward the request, then close the connection without answering.
    LoseAnswer,
}

#[derive(Clone, Debug)]
struct Seen {
    body: String,
    caller_reference: String,
}

/// An HTTP proxy in front of moto that serves one request per connection (so faults apply to
/// requests, whatever the client's connection pooling) and records what it saw.
#[derive(Clone)]
struct CfProxy {
    addr: SocketAddr,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl CfProxy {
    async fn start(upstream: &str, faults: impl IntoIterator<Item = Fault>) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("moto's endpoint is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            faults: Arc::new(Mutex::new(faults.into_iter().collect())),
            seen: Arc::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let _ = p.serve(client, upstream).await;
                });
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn serve(&self, mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
        let (head, body) = read_message(&mut client).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let caller_reference = text
            .split_once("<CallerReference>")
            .and_then(|(_, rest)| rest.split_once("</CallerReference>"))
            .map(|(r, _)| r.to_owned())
            .unwrap_or_default();
        self.seen.lock().unwrap().push(Seen {
            body: text,
            caller_reference,
        });
        let fault = self.faults.lock().unwrap().pop_front();
        match fault {
            Some(Fault::Answer(status, code)) => {
                let xml = format!(
                    "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
                );
                let res = format!(
                    "HTTP/1.1 {status} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
                client.write_all(res.as_bytes()).await?;
            }
            Some(Fault::LoseAnswer) => {
                forward(&head, &body, upstream).await?;
            }
            None => {
                let (head, body) = forward(&head, &body, upstream).await?;
                client.write_all(&head).await?;
                client.write_all(&body).await?;
            }
        }
        client.shutdown().await
    }
}

/// Sends one request upstream on a fresh connection; returns the answer's head (rewritten to
/// close the connection) and body.
async fn forward(
    head: &[u8],
    body: &[u8],
    upstream: SocketAddr,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&closing(head)).await?;
    server.write_all(body).await?;
    let (head, body) = read_message(&mut server).await?;
    Ok((closing(&head), body))
}

/// `head` with `Connection: close` in place of any connection header.
fn closing(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

/// Reads one HTTP/1.1 message with a `Content-Length` body (or none).
async fn read_message(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let body_len = String::from_utf8_lossy(&buf[..end])
        .split("\r\n")
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < end + body_len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[end..end + body_len].to_vec();
    buf.truncate(end);
    Ok((buf, body))
}
