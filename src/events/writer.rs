//! Group commit for events written on their own (a signed download URL's event): requests hand
//! their row to one writer task and await its commit; the writer inserts every row waiting at
//! that moment in one multi-row statement, so 32 concurrent requests cost one statement (one
//! trip to the catalog's connection) instead of 32. A request answers only after its row is
//! committed: `append` returns when the statement that carried it has, or with its error.
//!
//! Events written with other rows (an upload's blob and asset, a sweep's purge) keep writing them
//! in their own transaction; this is for events that are the request's only write.
use entity::dataset_event;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use super::Event;
use crate::problem::Problem;

/// Rows per statement: 13 values a row, well under SQLite's 32,766 and Postgres's 65,535 binds.
const MAX_BATCH: usize = 512;

/// Why a batch was not committed, told to each of its requests: the catalog could not be
/// reached (503, retry) or refused the statement (500).
#[derive(Clone)]
enum Failed {
    Unreachable(String),
    Refused(String),
}

type Waiting = (
    dataset_event::ActiveModel,
    oneshot::Sender<Result<(), Failed>>,
);

/// The handle requests append through; cheap to clone. The writer task ends when every handle
/// is dropped.
#[derive(Clone)]
pub struct EventWriter(mpsc::UnboundedSender<Waiting>);

impl EventWriter {
    /// Starts the writer on `db`.
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(db, rx));
        Self(tx)
    }

    /// Records `event`; returns once it is committed (or with the error that kept it out).
    pub async fn append(&self, event: Event<'_>) -> Result<(), Problem> {
        let stopped = || Problem::internal("the event writer has stopped");
        let (done, committed) = oneshot::channel();
        self.0.send((event.row(), done)).map_err(|_| stopped())?;
        match committed.await.map_err(|_| stopped())? {
            Ok(()) => Ok(()),
            Err(Failed::Unreachable(cause)) => Err(Problem::CatalogUnavailable { cause }),
            Err(Failed::Refused(cause)) => Err(Problem::internal(cause)),
        }
    }
}

async fn write_batches(db: DatabaseConnection, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (rows, waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let result = dataset_event::Entity::insert_many(rows)
            .exec_without_returning(&db)
            .await
            .map(|_| ())
            .map_err(|e| match Problem::from(e) {
                Problem::CatalogUnavailable { cause } => Failed::Unreachable(cause),
                other => Failed::Refused(format!("recording events: {other:?}")),
            });
        for done in waiters {
            // A request that gave up waiting has nobody to tell.
            let _ = done.send(result.clone());
        }
    }
}
