//! [`Shredding`]: a store whose writes encrypt personal data and whose
//! reads decrypt it, or mark it forgotten.

use std::collections::BTreeSet;
use std::sync::Arc;

use factos::forget::{KEY_LEN, SubjectKey, SubjectKeys};
use factos::{
    AppendRequest, Checkpoints, Committed, Cursor, DecisionScope, EffectKey, EventStore, Follow, FollowBatch,
    InvalidAppend, NewEvent, ParkedEffect, Query, ReadOptions, StoreError, StoredEvent, StreamId, StreamRevision,
};
use serde_json::Value;

use crate::envelope::{self, each_envelope, may_hold_envelopes, subject_of};
use crate::error::ShreddingError;
use crate::rules::PersonalData;

/// A store (`S`) whose appends encrypt the personal parts of events with
/// their subject's data key, kept by `K` (often the same store), and whose
/// every read (reads, stream reads, decisions, followers, hence projections
/// and effect runners) decrypts them, or returns the forgotten marker
/// ([`crate::Personal::Forgotten`]) for a forgotten subject. Types, tags,
/// positions, streams and metadata are never encrypted or changed.
///
/// The store underneath only ever holds ciphertext: whatever reads it
/// directly (`factos export`, `factos copy`, a backup) never sees a
/// decrypted payload.
#[derive(Debug, Clone)]
pub struct Shredding<S, K = S> {
    store: S,
    keys: K,
    personal: Arc<PersonalData>,
}

impl<S, K> Shredding<S, K> {
    /// `store` with the personal data `personal` describes encrypted under
    /// keys kept by `keys`.
    pub fn new(store: S, keys: K, personal: PersonalData) -> Self {
        Self {
            store,
            keys,
            personal: Arc::new(personal),
        }
    }

    /// The store underneath, holding ciphertext.
    pub fn inner(&self) -> &S {
        &self.store
    }
}

impl<S, K: SubjectKeys + Sync> Shredding<S, K> {
    /// Forgets `subject`: destroys its key, so its personal data reads as
    /// forgotten everywhere from now on and can never be written again.
    /// Returns whether a key was destroyed. Rebuild the projections that
    /// copied the subject's data: rebuilt, they hold no trace of it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the key cannot be destroyed; then it
    /// was not.
    pub async fn forget(&self, subject: &str) -> Result<bool, StoreError> {
        self.keys.forget(subject).await
    }

    /// Encrypts the personal parts of `request`'s events.
    async fn seal(&self, mut request: AppendRequest) -> Result<AppendRequest, StoreError> {
        if self.personal.is_empty() {
            return Ok(request);
        }
        // The events with personal data: index, parsed payload, subject,
        // personal fields.
        let mut personal = Vec::new();
        for (index, event) in request.events.iter().enumerate() {
            let refuse = |reason: String| InvalidAppend::PersonalData { id: event.id, reason };
            if !self.personal.covers(event) {
                continue;
            }
            let Ok(payload) = serde_json::from_slice::<Value>(&event.data) else {
                return Err(refuse("the payload is not JSON".into()).into());
            };
            if let Some(found) = self.personal.personal(event, &payload) {
                let (subject, fields) = found.map_err(refuse)?;
                personal.push((index, payload, subject, fields));
            }
        }
        if personal.is_empty() {
            return Ok(request);
        }
        let subjects: Vec<String> = personal
            .iter()
            .map(|(_, _, s, _)| s.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let keys = self.keys_for_writing(&subjects).await?;
        for (index, mut payload, subject, fields) in personal {
            let event: &mut NewEvent = &mut request.events[index];
            let key = subjects.iter().position(|s| *s == subject).map(|i| &keys[i]);
            let Some(SubjectKey::Key(key)) = key else {
                return Err(InvalidAppend::SubjectForgotten { id: event.id }.into());
            };
            for field in fields {
                if let Some(value) = payload.pointer_mut(field) {
                    *value = envelope::seal(key, &subject, &event.id, field, value).map_err(StoreError::backend)?;
                }
            }
            event.data = serde_json::to_vec(&payload).map_err(|e| StoreError::backend(ShreddingError::Json(e)))?;
        }
        Ok(request)
    }

    /// The keys to encrypt for `subjects` with: the known ones as they are
    /// read (the common case, a read); a fresh random key offered to the
    /// key store for each subject without one.
    async fn keys_for_writing(&self, subjects: &[String]) -> Result<Vec<SubjectKey>, StoreError> {
        let known = self.keys.keys_for_reading(subjects).await?;
        if known.iter().all(Option::is_some) {
            return Ok(known.into_iter().flatten().collect());
        }
        let mut wanted = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let mut fresh = [0u8; KEY_LEN];
            getrandom::fill(&mut fresh).map_err(|e| StoreError::backend(ShreddingError::Random(e)))?;
            wanted.push((subject.clone(), fresh));
        }
        self.keys.keys_for_writing(wanted).await
    }

    /// Decrypts the personal parts of `events` in place, or marks them
    /// forgotten.
    async fn open(&self, events: &mut [StoredEvent]) -> Result<(), StoreError> {
        let mut parsed = Vec::new();
        let mut subjects = BTreeSet::new();
        for (index, event) in events.iter().enumerate() {
            if !may_hold_envelopes(&event.event) {
                continue;
            }
            let Ok(mut payload) = serde_json::from_slice::<Value>(&event.event) else {
                continue;
            };
            each_envelope(&mut payload, &mut |value: &mut Value| {
                subjects.extend(subject_of(value).map(str::to_owned));
                Ok::<_, ShreddingError>(())
            })
            .map_err(StoreError::backend)?;
            parsed.push((index, payload));
        }
        if parsed.is_empty() {
            return Ok(());
        }
        let subjects: Vec<String> = subjects.into_iter().collect();
        let keys = self.keys.keys_for_reading(&subjects).await?;
        for (index, mut payload) in parsed {
            let event = &mut events[index];
            let id = event.id;
            each_envelope(&mut payload, &mut |value: &mut Value| {
                let key = subject_of(value)
                    .and_then(|s| subjects.iter().position(|known| known == s))
                    .and_then(|i| keys[i].as_ref());
                *value = match key {
                    Some(SubjectKey::Key(key)) => envelope::open(key, &id, value)?,
                    Some(SubjectKey::Forgotten) | None => envelope::forgotten(),
                };
                Ok::<_, ShreddingError>(())
            })
            .map_err(StoreError::backend)?;
            event.event = serde_json::to_vec(&payload).map_err(|e| StoreError::backend(ShreddingError::Json(e)))?;
        }
        Ok(())
    }

    async fn opened(&self, mut events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>, StoreError> {
        self.open(&mut events).await?;
        Ok(events)
    }

    async fn opened_committed(&self, mut committed: Committed) -> Result<Committed, StoreError> {
        self.open(&mut committed.records).await?;
        Ok(committed)
    }
}

impl<S, K> EventStore for Shredding<S, K>
where
    S: EventStore<Transaction: Send> + Sync,
    K: SubjectKeys + Sync,
{
    type Transaction = S::Transaction;

    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.store.read(query, options).await?;
        self.opened(events).await
    }

    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.store.read_stream(stream, from).await?;
        self.opened(events).await
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.store.read_stream_page(stream, from, limit).await?;
        self.opened(events).await
    }

    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        let sealed = self.seal(request).await?;
        let committed = self.store.append(sealed).await?;
        self.opened_committed(committed).await
    }

    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(S::Transaction, Vec<StoredEvent>), StoreError> {
        let (transaction, events) = self.store.begin_decision(scope).await?;
        match self.opened(events).await {
            Ok(events) => Ok((transaction, events)),
            Err(error) => {
                self.store.abandon_decision(transaction).await;
                Err(error)
            }
        }
    }

    async fn abandon_decision(&self, transaction: S::Transaction) {
        self.store.abandon_decision(transaction).await;
    }

    async fn commit_decision(
        &self,
        transaction: S::Transaction,
        request: AppendRequest,
    ) -> Result<Committed, StoreError> {
        let sealed = match self.seal(request).await {
            Ok(sealed) => sealed,
            Err(error) => {
                self.store.abandon_decision(transaction).await;
                return Err(error);
            }
        };
        let committed = self.store.commit_decision(transaction, sealed).await?;
        self.opened_committed(committed).await
    }
}

impl<S, K> Follow for Shredding<S, K>
where
    S: Follow + Sync,
    K: SubjectKeys + Sync,
{
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        let mut batch = self.store.read_after(query, after, limit).await?;
        let (cursors, records): (Vec<_>, Vec<_>) = batch.events.into_iter().map(|d| (d.cursor, d.record)).unzip();
        let records = self.opened(records).await?;
        batch.events = cursors
            .into_iter()
            .zip(records)
            .map(|(cursor, record)| factos::Delivered { cursor, record })
            .collect();
        Ok(batch)
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
        self.store.wait_for_commit(seen).await;
    }
}

impl<S, K> Checkpoints for Shredding<S, K>
where
    S: Checkpoints + Sync,
    K: Send + Sync,
{
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

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.store.retry_parked(runner, key).await
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.store.discard_parked(runner, key).await
    }
}
