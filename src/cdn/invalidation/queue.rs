//! The queue's rows: grouping claimed paths into CreateInvalidation batches with a deterministic
//! CallerReference, claiming free rows (with the claim token and lease), and settling them with
//! the outcome of their batch.
use super::*;

/// One CreateInvalidation: distinct paths and a CallerReference derived from the rows it
/// settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    pub(super) paths: Vec<String>,
    pub(super) caller_reference: String,
}

/// Deduplicates the claimed rows' paths (oldest first) into batches of at most `max` paths:
/// the plain paths first, then the wildcard paths ([`paths_for`]) in batches of at most
/// [`MAX_BATCH_WILDCARDS`], so that CloudFront's tighter limit on those (which a run meets as
/// `TooManyInvalidationsInProgress` and leaves for the next) never holds plain paths back.
pub(super) fn batches(rows: &[cdn_invalidation::Model], max: usize) -> Vec<Batch> {
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by(|a, b| (a.created_at, &a.path, a.id).cmp(&(b.created_at, &b.path, b.id)));
    let mut ids: HashMap<&str, Vec<Uuid>> = HashMap::new();
    let mut order = Vec::new();
    for r in rows {
        ids.entry(&r.path)
            .or_insert_with(|| {
                order.push(r.path.as_str());
                Vec::new()
            })
            .push(r.id);
    }
    let (wildcards, plain): (Vec<&str>, Vec<&str>) =
        order.into_iter().partition(|p| is_wildcard(p));
    plain
        .chunks(max)
        .chain(wildcards.chunks(max.min(MAX_BATCH_WILDCARDS)))
        .map(|paths| {
            let mut row_ids: Vec<Uuid> = paths.iter().flat_map(|p| ids[p].clone()).collect();
            row_ids.sort();
            let mut h = sha2::Sha256::new();
            for id in &row_ids {
                h.update(id.as_bytes());
            }
            Batch {
                paths: paths.iter().map(|p| p.to_string()).collect(),
                caller_reference: format!("cairn-{}", &hex::encode(h.finalize())[..40]),
            }
        })
        .collect()
}

/// Rows no sender holds: queued, and unclaimed or with an expired lease.
pub(super) fn free(now: DateTime<Utc>) -> Condition {
    Condition::all().add(Column::State.eq(STATE_QUEUED)).add(
        Condition::any()
            .add(Column::ClaimedUntil.is_null())
            .add(Column::ClaimedUntil.lt(now)),
    )
}

/// Claims every free row of the oldest `MAX_PATHS_PER_RUN` free paths for `token`.
pub(super) async fn claim(
    db: &DatabaseConnection,
    token: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<cdn_invalidation::Model>, DbErr> {
    let until = now + chrono::Duration::seconds(LEASE.as_secs() as i64);
    let oldest_paths = Query::select()
        .column(Column::Path)
        .from(Entity)
        .cond_where(free(now))
        .group_by_col(Column::Path)
        .order_by_expr(Expr::col(Column::CreatedAt).min(), sea_orm::Order::Asc)
        .order_by(Column::Path, sea_orm::Order::Asc)
        .limit(MAX_PATHS_PER_RUN as u64)
        .to_owned();
    let txn = db.begin().await?;
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({CLAIM_LOCK})"))
            .await?;
    }
    Entity::update_many()
        .col_expr(Column::ClaimToken, Expr::value(token))
        .col_expr(Column::ClaimedUntil, Expr::value(until))
        .filter(free(now))
        .filter(Column::Path.in_subquery(oldest_paths))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Entity::find()
        .filter(Column::State.eq(STATE_QUEUED))
        .filter(Column::ClaimToken.eq(token))
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await
}

/// Settles the claimed rows of `paths`: `sent` with the invalidation id, `failed`, or back to the
/// queue (`state` stays `queued`) with the error.
pub(super) async fn settle(
    db: &DatabaseConnection,
    token: Uuid,
    paths: &[String],
    outcome: Result<&str, (&str, &str)>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut q = Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::ClaimedUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::ClaimToken, Expr::value(None::<Uuid>));
    q = match outcome {
        Ok(id) => q
            .col_expr(Column::State, Expr::value(STATE_SENT))
            .col_expr(Column::InvalidationId, Expr::value(id))
            .col_expr(Column::SentAt, Expr::value(now))
            .col_expr(Column::Error, Expr::value(None::<String>)),
        Err((state, error)) => q
            .col_expr(Column::State, Expr::value(state))
            .col_expr(Column::Error, Expr::value(error)),
    };
    let res = q
        .filter(Column::State.eq(STATE_QUEUED))
        .filter(Column::ClaimToken.eq(token))
        .filter(Column::Path.is_in(paths.iter().cloned()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
