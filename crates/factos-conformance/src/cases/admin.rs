//! Operating a store ([`factos::admin::LocalAdmin`]): imports keep records
//! as they were and refuse what would break the log; stats and the raw tag
//! index agree with what was written.
//!
//! Stamped by [`crate::admin_tests!`] for stores that implement the admin
//! contract.

use factos::admin::{ImportRefused, LocalAdmin, TagRow};
use factos::{
    AppendRequest, LocalEventStore, Metadata, Position, Query, ReadOptions, Recorded, StoreError, StoredEvent,
    StreamRevision, Timestamp,
};

use crate::fixtures::{CaseResult, event, rng, stream};

/// Records as an export of another store would hold them: positions with
/// gaps, two streams, old times, metadata and tags.
fn exported() -> Vec<StoredEvent> {
    let mut rng = rng(41);
    let specs: [(u64, &str, u64, &str, &[&str]); 4] = [
        (3, "orders-1", 0, "Placed", &["order:1", "customer:7"]),
        (4, "orders-2", 0, "Placed", &["order:2"]),
        (9, "orders-1", 1, "Shipped", &["order:1"]),
        (12, "orders-2", 1, "Cancelled", &[]),
    ];
    specs
        .into_iter()
        .map(|(position, name, revision, event_type, tags)| {
            let new = event(&mut rng, event_type, tags, format!("{{\"at\":{position}}}").as_bytes())
                .with_metadata(Metadata::new().with("source", "export"));
            Recorded {
                position: Position::new(position),
                id: new.id,
                stream: stream(name),
                revision: StreamRevision::new(revision),
                event_type: new.event_type,
                version: 2,
                tags: new.tags,
                metadata: new.metadata,
                recorded_at: Timestamp::from_unix_micros(1_600_000_000_123_456 + position as i64),
                event: new.data,
            }
        })
        .collect()
}

/// An import writes records exactly as given (positions, ids, streams,
/// revisions, times), indexes their tags, and the store carries on after
/// them: a later append gets a greater position and the next revision.
pub async fn imported_records_read_back_as_they_were<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalAdmin,
{
    let records = exported();
    store.import(records[..2].to_vec()).await?;
    store.import(records[2..].to_vec()).await?;
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?, records);

    let rows = store.tag_rows(None, None).await?;
    let expected: Vec<TagRow> = records
        .iter()
        .flat_map(|r| {
            r.tags.iter().map(|tag| TagRow {
                position: r.position,
                tag: tag.to_string(),
                event_type: r.event_type.to_string(),
            })
        })
        .collect();
    assert_eq!(rows, expected, "the tag index after an import");
    let window = store.tag_rows(Some(Position::new(3)), Some(Position::new(9))).await?;
    assert_eq!(window, expected[2..].to_vec(), "tag rows after 3, up to 9");

    let stats = store.stats(1).await?;
    assert_eq!((stats.events, stats.streams), (4, 2));
    assert_eq!(stats.event_types[0], ("Placed".to_owned(), 2));
    assert_eq!(stats.top_tags, vec![("order:1".to_owned(), 2)]);
    assert_eq!(
        stats.first,
        Some((Position::new(3), records[0].recorded_at)),
        "first event"
    );
    assert_eq!(stats.last.map(|(p, _)| p), Some(Position::new(12)));

    let mut rng = rng(42);
    let next = AppendRequest::new(
        stream("orders-1"),
        vec![event(&mut rng, "Delivered", &["order:1"], b"{}")],
    );
    let committed = store.append(next).await?;
    assert!(
        committed.records[0].position > Position::new(12),
        "appends continue after imports"
    );
    assert_eq!(committed.revision, StreamRevision::new(2));
    Ok(())
}

/// An import refuses a batch whose positions are not after the store's
/// last, whose revisions skip one, or whose ids are taken, and writes none
/// of it.
pub async fn imports_refuse_what_would_break_the_log<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalAdmin,
{
    let records = exported();
    store.import(records[..2].to_vec()).await?;

    let mut behind = records[2].clone();
    behind.position = Position::new(4);
    let refused = store.import(vec![records[3].clone(), behind]).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::ImportRefused(ImportRefused::PositionNotAfter { .. }))
        ),
        "{refused:?}"
    );

    let mut gap = records[2].clone();
    gap.revision = StreamRevision::new(2);
    let refused = store.import(vec![gap]).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::ImportRefused(ImportRefused::RevisionGap { .. }))
        ),
        "{refused:?}"
    );

    let mut taken = records[2].clone();
    taken.id = records[0].id;
    let refused = store
        .import(vec![records[3].clone().with_position(13), taken.with_position(14)])
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::ImportRefused(ImportRefused::DuplicateId { .. }))
        ),
        "{refused:?}"
    );

    assert_eq!(
        store.read(&Query::all(), ReadOptions::forwards()).await?,
        records[..2].to_vec(),
        "refused imports wrote nothing"
    );
    assert_eq!(store.tag_rows(None, None).await?.len(), 3);
    Ok(())
}

trait WithPosition {
    fn with_position(self, position: u64) -> Self;
}

impl WithPosition for StoredEvent {
    fn with_position(mut self, position: u64) -> Self {
        self.position = Position::new(position);
        self
    }
}

/// The schema version of a migrated store is the one the backend writes.
pub async fn a_migrated_store_reports_its_schema_version_as_current<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalAdmin,
{
    let version = store.schema_version().await?;
    assert!(version.is_current(), "{version:?}");
    store.migrate().await?;
    assert!(store.schema_version().await?.is_current());
    Ok(())
}
