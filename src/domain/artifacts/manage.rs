//! Managing artifacts: lineage, soft delete and legal hold.
use std::collections::{HashMap, HashSet};

use chrono::Utc;
use entity::{artifact, raw_asset};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::ev;
use super::*;
use crate::domain::catalog_time;

/// Soft delete: the artifact becomes invisible to reads; the lifecycle sweep purges it (and its
/// object, once no other item references the blob) after the grace period. Legal hold refuses.
pub async fn delete(core: &Core, scope: &Scope, id: Uuid) -> Result<()> {
    scope.require_write()?;
    // The update names the status it read, so the counters learn exactly what was deleted; a
    // status that changed meanwhile is read again.
    for _ in 0..3 {
        let a = get(core, scope, id).await?;
        if a.legal_hold {
            return Err(Problem::conflict(
                Code::LegalHold,
                "the artifact is under legal hold; release the hold first",
            ));
        }
        let now = catalog_time(Utc::now());
        let txn = core.db.begin().await?;
        let res = artifact::Entity::update_many()
            .col_expr(
                artifact::Column::Status,
                Expr::value(artifact::STATUS_DELETED),
            )
            .col_expr(artifact::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
            .filter(artifact::Column::ArtifactId.eq(id))
            .filter(artifact::Column::Status.eq(a.status.as_str()))
            .filter(artifact::Column::LegalHold.eq(false))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            // Settled, deleted or put on hold meanwhile: look again.
            continue;
        }
        let mut e = artifact_event(ev::DELETED, scope, &a, now);
        e.detail = json!({ "previous_status": a.status });
        e.record(&txn).await?;
        if a.status == artifact::STATUS_AVAILABLE {
            count(&txn, scope, now, &live_delta(&a).negated()).await?;
        }
        txn.commit().await?;
        core.changes.notify(id);
        tracing::info!(tenant.id = %scope.tenant, artifact.id = %id, "artifact deleted");
        return Ok(());
    }
    Err(Problem::contention(
        "the artifact changed state repeatedly; retry",
    ))
}

pub async fn set_legal_hold(
    core: &Core,
    scope: &Scope,
    id: Uuid,
    hold: bool,
) -> Result<artifact::Model> {
    scope.require_write()?;
    let mut a = get(core, scope, id).await?;
    if a.legal_hold == hold {
        return Ok(a);
    }
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let res = artifact::Entity::update_many()
        .col_expr(artifact::Column::LegalHold, Expr::value(hold))
        .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
        .filter(artifact::Column::ArtifactId.eq(id))
        .filter(artifact::Column::Status.ne(artifact::STATUS_DELETED))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(Problem::not_found());
    }
    a.legal_hold = hold;
    a.updated_at = now;
    let mut e = artifact_event(ev::LEGAL_HOLD, scope, &a, now);
    e.detail = json!({ "hold": hold });
    e.record(&txn).await?;
    txn.commit().await?;
    Ok(a)
}

/// One item of a lineage chain: an artifact with what it was derived from, or a raw asset.
pub enum LineageNode {
    Artifact(Box<artifact::Model>, Vec<LineageNode>),
    RawAsset(Box<raw_asset::Model>),
    /// Named by an item but no longer readable (deleted), or beyond the depth limit.
    Missing(Uuid),
}

/// How deep a chain is followed, and how many items one answer holds at most.
const MAX_DEPTH: usize = 16;
const MAX_NODES: usize = 512;

/// The `derived_from` chain of `a`, within the scope's tenant and env, breadth-first by level.
pub async fn lineage_chain(
    core: &Core,
    scope: &Scope,
    a: &artifact::Model,
) -> Result<Vec<LineageNode>> {
    let mut artifacts: HashMap<Uuid, artifact::Model> = HashMap::new();
    let mut assets: HashMap<Uuid, raw_asset::Model> = HashMap::new();
    let mut seen: HashSet<Uuid> = HashSet::from([a.artifact_id]);
    let mut level = derived(a);
    for _ in 0..MAX_DEPTH {
        level.retain(|id| seen.insert(*id));
        if level.is_empty() || seen.len() > MAX_NODES {
            break;
        }
        let found = artifact::Entity::find()
            .filter(artifact::Column::ArtifactId.is_in(level.clone()))
            .filter(artifact::Column::TenantId.eq(scope.tenant.as_str()))
            .filter(artifact::Column::Env.eq(scope.env.as_str()))
            .filter(super::visible(chrono::Utc::now()))
            .all(&core.read)
            .await?;
        for r in raw_asset::Entity::find()
            .filter(raw_asset::Column::AssetId.is_in(level.clone()))
            .filter(raw_asset::Column::TenantId.eq(scope.tenant.as_str()))
            .filter(raw_asset::Column::Env.eq(scope.env.as_str()))
            .filter(raw_asset::Column::Status.ne(raw_asset::STATUS_DELETED))
            .all(&core.read)
            .await?
        {
            assets.insert(r.asset_id, r);
        }
        level = found.iter().flat_map(derived).collect();
        for f in found {
            artifacts.insert(f.artifact_id, f);
        }
    }
    let mut budget = MAX_NODES;
    Ok(build(
        &derived(a),
        &artifacts,
        &assets,
        &mut vec![a.artifact_id],
        &mut budget,
    ))
}

fn derived(a: &artifact::Model) -> Vec<Uuid> {
    serde_json::from_value(a.derived_from.clone()).unwrap_or_default()
}

/// Expands `ids` depth-first. An item shared by two branches appears in both; a cycle (which
/// creation order makes impossible, but the chain does not rely on it) or an exhausted budget
/// ends a branch with `Missing`.
fn build(
    ids: &[Uuid],
    artifacts: &HashMap<Uuid, artifact::Model>,
    assets: &HashMap<Uuid, raw_asset::Model>,
    path: &mut Vec<Uuid>,
    budget: &mut usize,
) -> Vec<LineageNode> {
    ids.iter()
        .map(|id| {
            if *budget == 0 || path.contains(id) {
                return LineageNode::Missing(*id);
            }
            *budget -= 1;
            if let Some(r) = assets.get(id) {
                LineageNode::RawAsset(Box::new(r.clone()))
            } else if let Some(a) = artifacts.get(id) {
                path.push(*id);
                let parents = build(&derived(a), artifacts, assets, path, budget);
                path.pop();
                LineageNode::Artifact(Box::new(a.clone()), parents)
            } else {
                LineageNode::Missing(*id)
            }
        })
        .collect()
}
