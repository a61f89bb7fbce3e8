//! Following the log on KurrentDB: the follow contract.
//!
//! `$all` is one log that a single leader appends to and readers see in
//! log order up to what is committed, so delivery order is position order
//! and a follower's cursor is the position of the last event it examined:
//! nothing can appear below it later. A follower reads `$all` after its
//! cursor with the same server-side filter as a read (event types, or the
//! store's stream prefix; system events never) and matches tags here. When
//! the server leaves events out by type, the follower first asks for the
//! newest event of the store, and a read that reaches the end moves the
//! cursor there: the filter saw every event up to it, so the next read
//! does not make the server scan them again. The events the server left
//! out are not counted in [`FollowBatch::examined`].
//!
//! Followers are woken by KurrentDB's native catch-up subscription: the
//! store keeps one subscription to `$all` from its end (started by the
//! first follower that waits, ended when the last clone of the store is
//! dropped) and counts the events it announces; appends through this
//! store count at once. If the subscription fails (a server without it, a
//! dropped connection), it is made again after a second, and followers
//! poll every [`KurrentStore::with_poll_interval`] meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use factos::{CommitSignal, Cursor, Follow, FollowBatch, Position, Query, StoreError};
use kurrentdb::{Client, StreamPosition, SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter};

use crate::filter::refuse_predicates;
use crate::mapping::{from_recorded, kurrent_position};
use crate::store::KurrentStore;

/// How long the watcher waits before it subscribes again after a failure.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What the store's clones share to wake followers.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    signal: Arc<CommitSignal>,
    /// The subscription task, once a follower waited.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Watch {
    /// Counts a commit this store made.
    pub(crate) fn committed(&self) {
        self.signal.bump();
    }

    /// Starts the subscription unless it runs.
    fn ensure_started(&self, client: &Client, filter: SubscriptionFilter) {
        let mut task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if task.is_some() {
            return;
        }
        // Outside tokio there is no task to run it: followers poll.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let watching = watch(client.clone(), filter, Arc::clone(&self.signal));
            *task = Some(runtime.spawn(watching).abort_handle());
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Bumps `signal` for every event a subscription to `$all` from its end
/// announces, subscribing again after failures.
async fn watch(client: Client, filter: SubscriptionFilter, signal: Arc<CommitSignal>) {
    let options = SubscribeToAllOptions::default()
        .position(StreamPosition::End)
        .filter(filter);
    loop {
        let mut subscription = client.subscribe_to_all(&options).await;
        loop {
            match subscription.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(_)) => signal.bump(),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "the $all subscription waking followers failed; subscribing again");
                    break;
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

impl Follow for KurrentStore {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.query_limits().check(query)?;
        refuse_predicates(query)?;
        let mut batch = FollowBatch::default();
        if limit == 0 {
            return Ok(batch);
        }
        // When the server leaves non-matching events out, the newest event
        // of the scope, taken first, is where a read that reaches the end
        // leaves the cursor: every event up to it was there to filter.
        let tip = if self.scope().narrows(query) {
            self.read_all_page(StreamPosition::End, true, &self.scope().server_filter(&Query::all()), 1)
                .await?
                .first()
                .map(|event| Position::new(event.position.commit))
        } else {
            None
        };
        let start = after.map_or(StreamPosition::Start, |cursor| {
            StreamPosition::Position(kurrent_position(cursor.position()))
        });
        // A read from a position includes the event there: the cursor's.
        let count = limit + usize::from(after.is_some());
        let page = self
            .read_all_page(start, false, &self.scope().server_filter(query), count)
            .await?;
        let reached_end = page.len() < count;
        for event in &page {
            let position = Position::new(event.position.commit);
            if after.is_some_and(|cursor| position <= cursor.position()) {
                continue;
            }
            if batch.examined == limit {
                break;
            }
            batch.examined += 1;
            let cursor = Cursor::new(0, position);
            batch.end = Some(cursor);
            if let Some(stream) = self.scope().sees(event) {
                let (record, _) = from_recorded(event, stream)?;
                if record.matches(query) {
                    batch.events.push(factos::Delivered { cursor, record });
                }
            }
        }
        if reached_end
            && let Some(tip) = tip
            && batch.end.is_none_or(|end| end.position() < tip)
            && after.is_none_or(|cursor| cursor.position() < tip)
        {
            batch.end = Some(Cursor::new(0, tip));
        }
        Ok(batch)
    }

    fn commit_count(&self) -> u64 {
        self.watch().signal.count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        // `$all` readers see every acknowledged append.
        Ok(0)
    }

    async fn settled(&self, _mark: u64) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn wait_for_commit(&self, seen: u64) {
        let watch = self.watch();
        watch.ensure_started(self.client(), self.scope().server_filter(&Query::all()));
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let _ = tokio::time::timeout(self.poll_interval(), watch.signal.changed_since(seen)).await;
    }
}
