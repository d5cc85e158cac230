//! Reading the event log: a scope's events newest first (by id: UUIDv7, so in recording order),
//! filtered by subject, type and time, a page at a time. The cursor is the id of the last event
//! of the previous page; the next page holds the events recorded before it.
use chrono::{DateTime, Utc};
use entity::dataset_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::auth::Scope;

/// The most events one page holds, and how many it holds unless asked.
pub const MAX_PAGE: u64 = 1000;
pub const DEFAULT_PAGE: u64 = 100;

/// Which event types a filter selects: one type (`artifact.created`) or a family of them
/// (`artifact`: every `artifact.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kinds {
    One(String),
    Family(String),
}

impl Kinds {
    /// `[a-z_]+(\.[a-z_]+)?`, at most 64 bytes.
    pub fn parse(s: &str) -> Option<Self> {
        let word =
            |w: &str| !w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase() || c == b'_');
        if s.len() > 64 {
            return None;
        }
        match s.split_once('.') {
            None if word(s) => Some(Self::Family(s.to_owned())),
            Some((family, name)) if word(family) && word(name) => Some(Self::One(s.to_owned())),
            _ => None,
        }
    }
}

/// What a page of events is filtered by.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub subject: Option<Uuid>,
    pub kinds: Option<Kinds>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// Events recorded before this one (the last of the previous page).
    pub cursor: Option<Uuid>,
}

/// A page of the scope's events, newest first, and the cursor of the next page when there is one.
pub async fn page(
    db: &impl ConnectionTrait,
    scope: &Scope,
    f: &Filter,
    limit: u64,
) -> Result<(Vec<dataset_event::Model>, Option<Uuid>), DbErr> {
    use dataset_event::Column;
    let mut q = dataset_event::Entity::find()
        .filter(Column::TenantId.eq(scope.tenant.as_str()))
        .filter(Column::Env.eq(scope.env.as_str()));
    if let Some(s) = f.subject {
        q = q.filter(Column::SubjectId.eq(s));
    }
    match &f.kinds {
        Some(Kinds::One(k)) => q = q.filter(Column::EventType.eq(k.as_str())),
        Some(Kinds::Family(k)) => q = q.filter(Column::EventType.starts_with(format!("{k}."))),
        None => {}
    }
    if let Some(from) = f.from {
        q = q.filter(Column::At.gte(from));
    }
    if let Some(to) = f.to {
        q = q.filter(Column::At.lt(to));
    }
    if let Some(c) = f.cursor {
        q = q.filter(Column::Id.lt(c));
    }
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = q.order_by_desc(Column::Id).limit(limit + 1).all(db).await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| e.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// Whether the scope's log has an event of `family` (`artifact`, `raw`) about `subject`: every
/// artifact and raw asset has one from its creation on, and keeps them after it is purged.
pub async fn knows(
    db: &impl ConnectionTrait,
    scope: &Scope,
    subject: Uuid,
    family: &str,
) -> Result<bool, DbErr> {
    use dataset_event::Column;
    Ok(dataset_event::Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::TenantId.eq(scope.tenant.as_str()))
        .filter(Column::Env.eq(scope.env.as_str()))
        .filter(Column::SubjectId.eq(subject))
        .filter(Column::EventType.starts_with(format!("{family}.")))
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_a_type_or_a_family() {
        assert_eq!(
            Kinds::parse("artifact.created"),
            Some(Kinds::One("artifact.created".into()))
        );
        assert_eq!(
            Kinds::parse("raw.upload_presigned"),
            Some(Kinds::One("raw.upload_presigned".into()))
        );
        assert_eq!(
            Kinds::parse("artifact"),
            Some(Kinds::Family("artifact".into()))
        );
        for bad in [
            "",
            ".",
            "a.",
            ".b",
            "a.b.c",
            "Artifact",
            "a%",
            "a b",
            &"a".repeat(65),
        ] {
            assert_eq!(Kinds::parse(bad), None, "{bad:?}");
        }
    }
}
