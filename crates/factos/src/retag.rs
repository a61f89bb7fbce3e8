//! Tags added to history: giving stored events a tag they were not
//! written with, so that a new rule can query them by it.
//!
//! A new rule often needs a tag that old events never got (a per-customer
//! limit over `OrderPlaced` events that carried only an order tag). A
//! [`Retag`] reads the log in delivery order, asks an application function
//! for each event's tags, and adds the ones the event lacks to the store's
//! tag index. The events themselves are never rewritten: their payload,
//! type, position, stream and metadata stay as written, and the store keeps
//! the added tags apart from the tags an event was written with. Every read
//! path reports an event's tags as both together, and queries match on
//! both.
//!
//! # The guarantee
//!
//! A retag works in two steps. It first *stages* the tags, batch by batch,
//! with its progress saved as a checkpoint: staged tags are invisible to
//! every query, so a decision taken meanwhile sees the history exactly as
//! before. It then *publishes* them, all at once: from that instant every
//! query sees them all. A decision whose context was read before the
//! publish never commits after it: either it commits first (on PostgreSQL
//! the publish waits for decisions in flight), or its append fails as a
//! conflict ([`StoreError::Contention`]) and the dispatcher decides again on
//! the tagged history. So a decision never accepts, after a retag, what the
//! retag makes it reject; and no decision ever sees part of a retag.
//!
//! A retag is resumable: killed while staging, it starts again from its
//! checkpoint (staging a tag twice is a no-op); killed before publishing,
//! the next run publishes what was staged. It is idempotent: a tag an event
//! already carries, written or added, is skipped, so running it again adds
//! nothing new; a later run covers only the events appended since. Events
//! appended after the last batch are not covered: write the tag on new
//! events (deploy that first), then retag the history. Followers are not
//! sent old events again: a projection that needs them is rebuilt.
//!
//! ```
//! use factos::retag::Retag;
//! use factos::{
//!     AppendRequest, EventId, EventStore, EventType, MemoryStore, NewEvent, Query, QueryItem, ReadOptions, StreamId,
//!     Tag,
//! };
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new();
//! // Orders written before anyone needed a customer tag.
//! for (order, customer) in [(1, 7), (2, 8), (3, 7)] {
//!     let payload = serde_json::to_vec(&serde_json::json!({ "customer": customer }))?;
//!     let placed = NewEvent::new(EventId::random(), EventType::new("OrderPlaced")?, payload)
//!         .with_tags([Tag::new(format!("order:{order}"))?]);
//!     store.append(AppendRequest::new(StreamId::new(format!("order-{order}"))?, vec![placed])).await?;
//! }
//!
//! let mut retag = Retag::new("customer-tags", |event: &factos::StoredEvent| {
//!     let payload: serde_json::Value = serde_json::from_slice(&event.event)?;
//!     let customer = payload["customer"].as_u64().ok_or("no customer")?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(vec![Tag::new(format!("customer:{customer}"))?])
//! });
//! let report = retag.run(&store).await?;
//! assert_eq!((report.examined, report.added), (3, 3));
//!
//! let customer_7 = Query::from(QueryItem::types([EventType::new("OrderPlaced")?]).with_tags([Tag::new("customer:7")?]));
//! assert_eq!(store.read(&customer_7, ReadOptions::forwards()).await?.len(), 2);
//! // Again: nothing left to add.
//! assert_eq!(retag.run(&store).await?.added, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeSet;

use crate::error::{BoxError, StoreError};
use crate::follow::{Delivered, LocalCheckpoints, LocalFollow, Subscription};
use crate::name::Tag;
use crate::position::Position;
use crate::query::Query;
use crate::recorded::StoredEvent;

/// A tag to add to the event at a position.
pub type AddedTag = (Position, Tag);

/// What a store offers to add tags to its history. Implemented by the
/// in-memory store, SQLite and PostgreSQL; [`Retag`] drives it. KurrentDB
/// has no tag index to add to and Cloudflare D1 does not implement it (yet):
/// code that retags does not compile against them.
#[trait_variant::make(TagHistory: Send)]
pub trait LocalTagHistory {
    /// Stages `tags` under the retag `name`: kept, invisible to every
    /// query, until [`publish_tags`](LocalTagHistory::publish_tags).
    /// Staging a tag twice is a no-op.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be written.
    async fn stage_tags(&self, name: &str, tags: Vec<AddedTag>) -> Result<(), StoreError>;

    /// Adds every tag staged under `name` to its event at once, and returns
    /// how many were added (a tag its event already carries is skipped).
    /// A decision that read its context before this never commits after it
    /// (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be written; nothing
    /// was published then.
    async fn publish_tags(&self, name: &str) -> Result<u64, StoreError>;
}

/// Why a retag stopped. What it staged and its checkpoint are kept: running
/// it again resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetagError {
    /// The store failed.
    #[error("the store failed during the retag")]
    Store(#[from] StoreError),
    /// The application's function found no tags for an event.
    #[error("cannot compute the tags of the event at position {position}")]
    Tags {
        /// The event's position.
        position: Position,
        /// What the function said.
        #[source]
        source: BoxError,
    },
}

/// What a [`Retag::run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetagReport {
    /// How many events this run examined.
    pub examined: u64,
    /// How many tags it staged (tags the events did not carry yet).
    pub staged: u64,
    /// How many tags the publish added (staged by this run or an earlier,
    /// interrupted one).
    pub added: u64,
}

/// Adds tags computed by an application function to the events of a log
/// (see the [module docs](self)).
pub struct Retag<F> {
    name: String,
    tags_of: F,
    batch: usize,
}

impl<F> std::fmt::Debug for Retag<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retag")
            .field("name", &self.name)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// Events examined per batch by default.
pub const DEFAULT_BATCH: usize = 1_000;

impl<F, E> Retag<F>
where
    F: FnMut(&StoredEvent) -> Result<Vec<Tag>, E>,
    E: Into<BoxError>,
{
    /// A retag called `name` (its staged tags and checkpoint are kept
    /// under it) computing each event's tags with `tags_of`.
    pub fn new(name: impl Into<String>, tags_of: F) -> Self {
        Self {
            name: name.into(),
            tags_of,
            batch: DEFAULT_BATCH,
        }
    }

    /// Examines `events` events per batch (at least one): each batch is
    /// one read, one staging write and one checkpoint.
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// The name of the checkpoint that keeps this retag's progress.
    pub fn checkpoint_name(&self) -> String {
        format!("factos.retag.{}", self.name)
    }

    /// Stages the tags of every event after the checkpoint committed
    /// before the call (on PostgreSQL it waits for the transactions running
    /// at the call, as [`Subscription::catch_up`] does), then publishes
    /// everything staged under this name.
    ///
    /// # Errors
    ///
    /// [`RetagError`]; what was staged and checkpointed is kept.
    pub async fn run<S>(&mut self, store: &S) -> Result<RetagReport, RetagError>
    where
        S: LocalTagHistory + LocalFollow + LocalCheckpoints,
    {
        let checkpoint = self.checkpoint_name();
        let after = store.load_checkpoint(&checkpoint).await?;
        let mut report = RetagReport::default();
        let Self { name, tags_of, batch } = self;
        let (name, checkpoint) = (&*name, &checkpoint);
        // Everything committed before the run started, waiting (PostgreSQL)
        // for the transactions that were running then.
        let mut log = Subscription::new(store, Query::all(), after).batch_size(*batch);
        log.catch_up_each(|batch: Vec<Delivered>, end| {
            report.examined += batch.len() as u64;
            let tags = missing_tags(tags_of, batch.iter().map(|delivered| &delivered.record));
            if let Ok(tags) = &tags {
                report.staged += tags.len() as u64;
            }
            async move {
                let tags = tags?;
                if !tags.is_empty() {
                    store.stage_tags(name, tags).await?;
                }
                store.save_checkpoint(checkpoint, end).await?;
                Ok::<_, RetagError>(())
            }
        })
        .await?;
        report.added = store.publish_tags(&self.name).await?;
        Ok(report)
    }
}

/// The tags `tags_of` gives `events` that they do not carry yet.
fn missing_tags<'e, F, E>(
    tags_of: &mut F,
    events: impl Iterator<Item = &'e StoredEvent>,
) -> Result<Vec<AddedTag>, RetagError>
where
    F: FnMut(&StoredEvent) -> Result<Vec<Tag>, E>,
    E: Into<BoxError>,
{
    let mut missing = Vec::new();
    for event in events {
        let computed = tags_of(event).map_err(|source| RetagError::Tags {
            position: event.position,
            source: source.into(),
        })?;
        let computed: BTreeSet<Tag> = computed.into_iter().collect();
        missing.extend(
            computed
                .into_iter()
                .filter(|tag| !event.tags.contains(tag))
                .map(|tag| (event.position, tag)),
        );
    }
    Ok(missing)
}

impl<F> Retag<F> {
    /// The retag's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The conflict a decision's append reports when tags were published after
/// its context was read (wrapped in [`StoreError::Contention`]): deciding
/// again reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tags were added to the history after the decision read its context")]
pub struct TagsPublished;
