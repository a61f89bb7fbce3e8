//! The SQLite store passes the shared conformance suite and the model-based
//! property test, each case on its own database file.

use factos::admin::{Admin, SchemaVersion, StoreStats, TagRow};
use factos::retag::{AddedTag, TagHistory};
use factos::snapshot::{Snapshot, SnapshotKey, SnapshotRead, SnapshotStore};
use factos::{
    AppendRequest, Checkpoints, Committed, Cursor, DecisionScope, EventStore, Follow, FollowBatch, ParkedEffect,
    Position, Query, ReadOptions, StoreError, StoredEvent, StreamId, StreamRevision,
};
use factos_sqlite::{SqliteDecision, SqliteStore};
use tempfile::TempDir;

/// A store on a fresh file in a temporary directory that lives as long as
/// the store.
struct FileStore {
    store: SqliteStore,
    _dir: TempDir,
}

async fn fresh_store() -> FileStore {
    let dir = tempfile::Builder::new()
        .prefix("factos-sqlite-")
        .tempdir()
        .expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("events.db")).expect("open a fresh database");
    store.migrate().await.expect("migrate a fresh database");
    FileStore { store, _dir: dir }
}

impl EventStore for FileStore {
    type Transaction = SqliteDecision;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read(query, options).await
    }
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read_stream(stream, from).await
    }
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read_stream_page(stream, from, limit).await
    }
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.store.append(request).await
    }
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(SqliteDecision, Vec<StoredEvent>), StoreError> {
        self.store.begin_decision(scope).await
    }
    async fn abandon_decision(&self, decision: SqliteDecision) {
        self.store.abandon_decision(decision).await
    }
    async fn commit_decision(&self, decision: SqliteDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        self.store.commit_decision(decision, request).await
    }
}

impl Follow for FileStore {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.store.read_after(query, after, limit).await
    }
    fn commit_count(&self) -> u64 {
        self.store.commit_count()
    }
    async fn commit_mark(&self) -> Result<u64, StoreError> {
        self.store.commit_mark().await
    }
    async fn settled(&self, mark: u64) -> Result<bool, StoreError> {
        self.store.settled(mark).await
    }
    async fn wait_for_commit(&self, seen: u64) {
        self.store.wait_for_commit(seen).await
    }
}

impl Checkpoints for FileStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        self.store.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        self.store.save_checkpoint(name, cursor).await
    }
    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        self.store.park_effect(parked).await
    }
    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        self.store.parked_effects(runner).await
    }
    async fn retry_parked(&self, runner: &str, key: factos::EffectKey) -> Result<bool, StoreError> {
        self.store.retry_parked(runner, key).await
    }
    async fn discard_parked(&self, runner: &str, key: factos::EffectKey) -> Result<bool, StoreError> {
        self.store.discard_parked(runner, key).await
    }
}

impl TagHistory for FileStore {
    async fn stage_tags(&self, name: &str, tags: Vec<AddedTag>) -> Result<(), StoreError> {
        self.store.stage_tags(name, tags).await
    }
    async fn publish_tags(&self, name: &str) -> Result<u64, StoreError> {
        self.store.publish_tags(name).await
    }
}

impl SnapshotStore for FileStore {
    async fn begin_decision_from_snapshot(
        &self,
        scope: &DecisionScope,
        key: &SnapshotKey,
    ) -> Result<(SqliteDecision, SnapshotRead), StoreError> {
        self.store.begin_decision_from_snapshot(scope, key).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<bool, StoreError> {
        self.store.save_snapshot(snapshot).await
    }
    fn offer_snapshot(&self, snapshot: Snapshot) {
        self.store.offer_snapshot(snapshot)
    }
}

impl Admin for FileStore {
    async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        self.store.schema_version().await
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        Admin::migrate(&self.store).await
    }
    async fn stats(&self, top_tags: usize) -> Result<StoreStats, StoreError> {
        self.store.stats(top_tags).await
    }
    async fn checkpoints(&self) -> Result<Vec<(String, factos::Cursor)>, StoreError> {
        self.store.checkpoints().await
    }
    async fn tag_rows(&self, after: Option<Position>, up_to: Option<Position>) -> Result<Vec<TagRow>, StoreError> {
        self.store.tag_rows(after, up_to).await
    }
    async fn import(&self, records: Vec<StoredEvent>) -> Result<(), StoreError> {
        self.store.import(records).await
    }
}

factos_conformance::conformance_tests!(fresh_store);
factos_conformance::follow_tests!(fresh_store);
factos_conformance::admin_tests!(fresh_store);
factos_conformance::retag_tests!(fresh_store, with_admin);
factos_conformance::snapshot_tests!(fresh_store);
