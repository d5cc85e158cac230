//! The catalog's write side: group commit. Requests hand their writes to one writer task and
//! await its commit; the writer runs everything waiting at that moment in one transaction and
//! inserts the events all of it recorded in one multi-row statement, so 32 concurrent requests
//! cost one `BEGIN`/`COMMIT`, one WAL append of the pages they share and one event statement
//! instead of 32 of each. A request answers only after the commit that carried its writes: an
//! answer is never ahead of the catalog.
//!
//! On SQLite, whose one writer connection serialises every write anyway, both kinds of work are
//! batched. On Postgres, whose pool writes in parallel, a request's [`Work`] runs in its own
//! transaction on the pool (batching would serialise it), and events that are a request's only
//! write are still batched.
//!
//! A [`Work`] that fails (a quota refusal, a conflict, a lost connection) rolls the batch back;
//! the writer then runs the batch's works again one by one, each in its own transaction, so the
//! others commit and the failed one answers with its own error, none of its writes kept. A
//! work may therefore run twice: it must take every id and timestamp from its inputs, not make
//! them as it runs, and write only through the [`Batch`] it is given.
use std::sync::Mutex;

use entity::dataset_event;
use futures_util::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, EntityTrait,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::{events::Event, problem::Problem};

/// Requests per batch; event rows per statement: 13 values a row, well under SQLite's 32,766
/// and Postgres's 65,535 binds.
const MAX_BATCH: usize = 512;

/// Writes a request hands to the writer: run in a transaction shared with other requests'.
pub trait Work: Send + Sync + 'static {
    type Output: Send + 'static;
    /// Writes through `batch`. An error rolls back everything this run wrote.
    fn run<'t>(&'t self, batch: &'t Batch<'t>) -> BoxFuture<'t, Result<Self::Output, Problem>>;
}

/// The transaction a [`Work`] writes in, and the events it records, inserted with the batch's.
pub struct Batch<'t> {
    txn: &'t DatabaseTransaction,
    events: Mutex<Vec<dataset_event::ActiveModel>>,
}

impl<'t> Batch<'t> {
    fn new(txn: &'t DatabaseTransaction) -> Self {
        Self {
            txn,
            events: Mutex::new(Vec::new()),
        }
    }

    pub fn txn(&self) -> &'t DatabaseTransaction {
        self.txn
    }

    /// Records `event` with the batch: inserted before it commits, in one statement with the
    /// others.
    pub fn record(&self, event: Event<'_>) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.row());
    }

    /// Inserts the recorded events, then commits.
    async fn commit(self) -> Result<(), Failed> {
        let events = self.events.into_inner().unwrap_or_else(|e| e.into_inner());
        insert_events(self.txn, events).await
    }
}

async fn insert_events(
    txn: &DatabaseTransaction,
    mut events: Vec<dataset_event::ActiveModel>,
) -> Result<(), Failed> {
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(MAX_BATCH));
        dataset_event::Entity::insert_many(std::mem::replace(&mut events, rest))
            .exec_without_returning(txn)
            .await
            .map_err(Failed::from)?;
    }
    Ok(())
}

/// Why a batch was not committed, told to each of its requests: the catalog could not be
/// reached (503, retry) or refused a statement (500).
#[derive(Clone, Debug)]
enum Failed {
    Unreachable(String),
    Refused(String),
}

impl From<sea_orm::DbErr> for Failed {
    fn from(e: sea_orm::DbErr) -> Self {
        match Problem::from(e) {
            Problem::CatalogUnavailable { cause } => Failed::Unreachable(cause),
            other => Failed::Refused(format!("committing writes: {other:?}")),
        }
    }
}

impl From<Failed> for Problem {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Unreachable(cause) => Problem::CatalogUnavailable { cause },
            Failed::Refused(cause) => Problem::internal(cause),
        }
    }
}

/// A request's work as the writer holds it, its output type erased.
trait Queued: Send {
    /// Runs the work in `batch`; false when it failed (its result kept for its answer).
    fn run<'t>(&'t mut self, batch: &'t Batch<'t>) -> BoxFuture<'t, bool>;
    /// Answers the request: its own error if its last run failed, else its output if
    /// `committed`, else why the commit failed.
    fn answer(self: Box<Self>, committed: Result<(), Failed>);
}

struct Request<W: Work> {
    work: W,
    result: Option<Result<W::Output, Problem>>,
    done: oneshot::Sender<Result<W::Output, Problem>>,
}

impl<W: Work> Queued for Request<W> {
    fn run<'t>(&'t mut self, batch: &'t Batch<'t>) -> BoxFuture<'t, bool> {
        Box::pin(async move {
            let result = self.work.run(batch).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn answer(self: Box<Self>, committed: Result<(), Failed>) {
        let answer = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(out)), Ok(())) => Ok(out),
            (_, Err(f)) => Err(f.into()),
            (None, Ok(())) => Err(Problem::internal("a write was never run")),
        };
        // A request that gave up waiting has nobody to tell.
        let _ = self.done.send(answer);
    }
}

enum Item {
    Event(
        Box<dataset_event::ActiveModel>,
        oneshot::Sender<Result<(), Failed>>,
    ),
    Work(Box<dyn Queued>),
}

/// The handle requests write through; cheap to clone. The writer task ends when every handle
/// is dropped.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Item>,
    db: DatabaseConnection,
    /// Whether works are batched (SQLite) or run on the pool (Postgres).
    batch_works: bool,
}

impl Writer {
    /// Starts the writer on `db`.
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let batch_works = db.get_database_backend() == DatabaseBackend::Sqlite;
        if batch_works {
            // SQLite: on a thread of its own (sqlx's SQLite connections are runtime-agnostic
            // worker threads), so that each statement's answer resumes the writer at once
            // instead of in the queue of a runtime busy with every request.
            let on_thread = db.clone();
            std::thread::Builder::new()
                .name("cairn-writer".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a current-thread runtime for the catalog writer");
                    rt.block_on(write_batches(on_thread, rx));
                })
                .expect("a thread for the catalog writer");
        } else {
            // Postgres: its connections' sockets belong to the runtime that opened them, so the
            // writer stays on the server's runtime.
            tokio::spawn(write_batches(db.clone(), rx));
        }
        Self {
            queue,
            db,
            batch_works,
        }
    }

    fn stopped() -> Problem {
        Problem::internal("the catalog writer has stopped")
    }

    /// Records `event`, a request's only write; returns once it is committed (or with the error
    /// that kept it out).
    pub async fn append(&self, event: Event<'_>) -> Result<(), Problem> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Item::Event(Box::new(event.row()), done))
            .map_err(|_| Self::stopped())?;
        committed.await.map_err(|_| Self::stopped())??;
        Ok(())
    }

    /// Runs `work`; returns its output once its writes are committed, or its error with none of
    /// them kept.
    pub async fn write<W: Work>(&self, work: W) -> Result<W::Output, Problem> {
        if !self.batch_works {
            return run_alone(&self.db, &work).await;
        }
        let (done, answer) = oneshot::channel();
        let request = Request {
            work,
            result: None,
            done,
        };
        self.queue
            .send(Item::Work(Box::new(request)))
            .map_err(|_| Self::stopped())?;
        answer.await.map_err(|_| Self::stopped())?
    }
}

/// `work` in a transaction of its own.
async fn run_alone<W: Work>(db: &DatabaseConnection, work: &W) -> Result<W::Output, Problem> {
    let txn = db.begin().await?;
    let batch = Batch::new(&txn);
    match work.run(&batch).await {
        Ok(out) => {
            batch.commit().await?;
            txn.commit().await?;
            Ok(out)
        }
        Err(e) => {
            drop(batch);
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

async fn write_batches(db: DatabaseConnection, mut rx: mpsc::UnboundedReceiver<Item>) {
    let mut items = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut items, MAX_BATCH).await > 0 {
        let mut events = Vec::new();
        let mut waiting = Vec::new();
        let mut works = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Event(row, done) => {
                    events.push(*row);
                    waiting.push(done);
                }
                Item::Work(work) => works.push(work),
            }
        }
        match commit_all(&db, &events, &mut works).await {
            Ok(true) => answer_all(waiting, works, Ok(())),
            Err(f) => answer_all(waiting, works, Err(f)),
            // A work failed and the batch was rolled back: the others again, each alone.
            Ok(false) => {
                if !events.is_empty() {
                    let committed = commit_all(&db, &events, &mut []).await.map(|_| ());
                    answer_all(waiting, Vec::new(), committed);
                }
                for mut work in works {
                    let one = std::slice::from_mut(&mut work);
                    let committed = commit_all(&db, &[], one).await.map(|_| ());
                    work.answer(committed);
                }
            }
        }
    }
}

/// Runs `works` and inserts `events` in one transaction and commits it. `Ok(false)`: a work
/// failed, and nothing was committed.
async fn commit_all(
    db: &DatabaseConnection,
    events: &[dataset_event::ActiveModel],
    works: &mut [Box<dyn Queued>],
) -> Result<bool, Failed> {
    let txn = db.begin().await.map_err(Failed::from)?;
    let batch = Batch::new(&txn);
    for work in works.iter_mut() {
        if !work.run(&batch).await {
            drop(batch);
            txn.rollback().await.map_err(Failed::from)?;
            return Ok(false);
        }
    }
    batch
        .events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(events.iter().cloned());
    batch.commit().await?;
    txn.commit().await.map_err(Failed::from)?;
    Ok(true)
}

fn answer_all(
    waiting: Vec<oneshot::Sender<Result<(), Failed>>>,
    works: Vec<Box<dyn Queued>>,
    committed: Result<(), Failed>,
) {
    for done in waiting {
        let _ = done.send(committed.clone());
    }
    for work in works {
        work.answer(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use entity::dataset_event;
    use futures_util::future::join_all;
    use migration::MigratorTrait;
    use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
    use uuid::Uuid;

    use super::*;
    use crate::{auth::Scope, problem::Code};

    /// Records one event about `subject` through the batch and one straight through its
    /// transaction; fails after writing both when `fail`.
    struct TwoEvents {
        subject: Uuid,
        fail: bool,
    }

    impl Work for TwoEvents {
        type Output = Uuid;
        fn run<'t>(&'t self, batch: &'t Batch<'t>) -> BoxFuture<'t, Result<Uuid, Problem>> {
            Box::pin(async move {
                let scope = Scope::system("acme", "dev", "test").unwrap();
                let now = Utc::now();
                Event::new("test.direct", &scope, self.subject, now)
                    .record(batch.txn())
                    .await?;
                batch.record(Event::new("test.batched", &scope, self.subject, now));
                if self.fail {
                    return Err(Problem::conflict(Code::AssetConflict, "refused"));
                }
                Ok(self.subject)
            })
        }
    }

    async fn catalog() -> DatabaseConnection {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        migration::Migrator::up(&db, None).await.unwrap();
        db
    }

    async fn events_of(db: &DatabaseConnection, subject: Uuid) -> Vec<String> {
        let mut kinds: Vec<String> = dataset_event::Entity::find()
            .filter(dataset_event::Column::SubjectId.eq(subject))
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        kinds.sort();
        kinds
    }

    #[tokio::test]
    async fn a_failing_work_keeps_none_of_its_writes_and_the_batch_commits_the_rest() {
        let db = catalog().await;
        let writer = Writer::spawn(db.clone());
        assert!(writer.batch_works, "SQLite batches works");
        let subjects: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
        let scope = Scope::system("acme", "dev", "test").unwrap();
        let alone = Uuid::now_v7();
        // All queued before the writer runs (one thread): one batch, the 8th work failing.
        let works = subjects.iter().enumerate().map(|(i, s)| {
            writer.write(TwoEvents {
                subject: *s,
                fail: i == 7,
            })
        });
        let append = writer.append(Event::new("test.alone", &scope, alone, Utc::now()));
        let (answers, appended) = tokio::join!(join_all(works), append);
        appended.unwrap();
        assert_eq!(events_of(&db, alone).await, ["test.alone"]);
        for (i, (answer, subject)) in answers.into_iter().zip(&subjects).enumerate() {
            if i == 7 {
                let e = answer.unwrap_err();
                assert!(matches!(e, Problem::Conflict { .. }), "{e:?}");
                assert!(events_of(&db, *subject).await.is_empty(), "rolled back");
            } else {
                assert_eq!(answer.unwrap(), *subject);
                assert_eq!(
                    events_of(&db, *subject).await,
                    ["test.batched", "test.direct"]
                );
            }
        }
    }

    #[tokio::test]
    async fn a_closed_catalog_is_unavailable_to_every_request() {
        let db = catalog().await;
        let writer = Writer::spawn(db.clone());
        db.clone().close().await.unwrap();
        let scope = Scope::system("acme", "dev", "test").unwrap();
        let (work, append) = tokio::join!(
            writer.write(TwoEvents {
                subject: Uuid::now_v7(),
                fail: false,
            }),
            writer.append(Event::new("test.alone", &scope, Uuid::now_v7(), Utc::now()))
        );
        assert!(
            matches!(work, Err(Problem::CatalogUnavailable { .. })),
            "{work:?}"
        );
        assert!(
            matches!(append, Err(Problem::CatalogUnavailable { .. })),
            "{append:?}"
        );
    }
}
