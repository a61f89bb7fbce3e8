//! Lock keys derived from queries and events, and taking them.
//!
//! The scheme (see the crate docs for the argument): an event of type `t`
//! with tags `S` *touches* `(t, s)` and `(*, s)` for every `s` in `S`, plus
//! `(t, *)` and `(*, *)`. A query item with types `T` and tags `G` *guards*
//! `(t, g)` for each `t` in `T` with `g` the smallest tag of `G`; `(t, *)`
//! when `G` is empty; `(*, g)` when `T` is empty; `(*, *)` when both are.
//! Every event that matches an item touches the key the item guards.
//!
//! Writers take touched keys shared before they take positions; readers and
//! deciders take guarded keys exclusively before they read or check. Keys
//! are 64-bit hashes seeded with the schema, so stores in different schemas
//! of one database never contend; a collision only causes a false wait.

use std::collections::BTreeMap;
use std::time::Duration;

use factos::{NewEvent, Query, QueryItem, StreamId};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Statement};
use xxhash_rust::xxh3::Xxh3;

use crate::error::PgError;
use crate::statements;

/// How lock keys are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Transaction-scoped advisory locks (`pg_advisory_xact_lock*`): nothing
    /// stored, released at commit or rollback. The default.
    #[default]
    Advisory,
    /// `LOCK TABLE events IN EXCLUSIVE MODE` for every read, append and
    /// decision: one writer at a time, whatever the contexts. This is the
    /// serialising design other DCB stores use; it is here as the baseline
    /// the benchmarks compare the key-based modes against, not for
    /// production.
    TableLock,
    /// Row locks (`FOR UPDATE` / `FOR SHARE`) on the fixed rows of a
    /// `factos_locks` table (4,096, created by `migrate`; keys fold onto
    /// them), for connection poolers in transaction mode (PgBouncer, RDS
    /// Proxy), which pin or break on advisory locks. Behind a pooler that
    /// does not track prepared statements, also turn those off
    /// ([`crate::PgStore::with_prepared_statements`]).
    ///
    /// Followers pay for it: a row lock gives a transaction its id before
    /// its insert, so the transaction-id order followers use in the other
    /// modes could put a stream's events out of revision order. In this
    /// mode followers read in position order while holding the key every
    /// writer touches, waiting for the writers in flight (see
    /// [`crate::follow`]).
    RowLocks,
}

/// How many rows `factos_locks` has for [`LockMode::RowLocks`]; keys fold
/// onto them (a shared row only costs a false wait, never a missed one).
pub(crate) const LOCK_ROWS: i64 = 4_096;

/// A batch touching more keys than this takes the bulk key exclusively
/// instead, so a large batch never exhausts the server's lock table.
pub(crate) const MAX_SHARED_KEYS: usize = 64;

/// A query guarding more keys than this guards the key every event
/// touches, `(*, *)`, instead: one lock, however large the query, so no
/// request can exhaust the server's lock table (shared by every database,
/// 64 × `max_connections` entries by default). It waits for every writer
/// in flight and holds new ones off while it reads, which is the price of
/// a query that large.
pub(crate) const MAX_GUARD_KEYS: usize = 64;

/// How one store takes its locks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Locking {
    pub(crate) keys: Keys,
    pub(crate) mode: LockMode,
    /// How long a decision waits for each lock it needs after its read.
    pub(crate) decision_lock_timeout: Duration,
    /// Whether to put the session's `lock_timeout` back after such a wait.
    pub(crate) restore_timeout: bool,
}

/// The keys of one store (one schema).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    seed: u64,
}

/// A key and whether it is taken exclusively.
pub(crate) type Lock = (i64, bool);

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            seed: xxhash_rust::xxh3::xxh3_64(namespace.as_bytes()),
        }
    }

    fn key(&self, domain: u8, first: Option<&str>, second: Option<&str>) -> i64 {
        let mut h = Xxh3::with_seed(self.seed);
        h.update(&[domain]);
        for part in [first, second] {
            match part {
                None => h.update(&[0]),
                Some(text) => {
                    h.update(&[1]);
                    h.update(&(text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
            }
        }
        i64::from_ne_bytes(h.digest().to_ne_bytes())
    }

    fn type_tag(&self, event_type: Option<&str>, tag: Option<&str>) -> i64 {
        self.key(b'k', event_type, tag)
    }

    /// The key that bulk writers take exclusively and guards take shared.
    pub(crate) fn bulk(&self) -> i64 {
        self.key(b'b', None, None)
    }

    /// The key that serialises appends to one stream.
    pub(crate) fn stream(&self, stream: &StreamId) -> i64 {
        self.key(b's', Some(stream.as_str()), None)
    }

    /// The LISTEN/NOTIFY channel that announces commits to this schema's
    /// followers, in every process.
    pub(crate) fn channel(&self) -> String {
        format!("factos_{:016x}", self.seed)
    }

    /// The key that serialises the batches of projection `name`.
    pub(crate) fn projection(&self, name: &str) -> i64 {
        self.key(b'p', Some(name), None)
    }

    /// The key that serialises migrations.
    pub(crate) fn migration(&self) -> i64 {
        self.key(b'm', None, None)
    }

    /// The keys the events touch, sorted and without duplicates.
    pub(crate) fn touched(&self, events: &[NewEvent]) -> Vec<i64> {
        let mut keys = vec![self.type_tag(None, None)];
        for event in events {
            let t = Some(event.event_type.as_str());
            keys.push(self.type_tag(t, None));
            for tag in &event.tags {
                keys.push(self.type_tag(t, Some(tag.as_str())));
                keys.push(self.type_tag(None, Some(tag.as_str())));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The keys the query guards, sorted and without duplicates.
    pub(crate) fn guarded(&self, query: &Query) -> Vec<i64> {
        if query.matches_all() {
            return vec![self.type_tag(None, None)];
        }
        let mut keys: Vec<i64> = query.items().iter().flat_map(|item| self.item_keys(item)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() > MAX_GUARD_KEYS {
            return vec![self.type_tag(None, None)];
        }
        keys
    }

    fn item_keys(&self, item: &QueryItem) -> Vec<i64> {
        let tag = item.required_tags().iter().next().map(|t| t.as_str());
        if item.event_types().is_empty() {
            return vec![self.type_tag(None, tag)];
        }
        item.event_types()
            .iter()
            .map(|t| self.type_tag(Some(t.as_str()), tag))
            .collect()
    }

    /// Adds what a reader or decider on `query` takes: the guarded keys
    /// exclusively, the bulk key shared.
    pub(crate) fn guard(&self, set: &mut LockSet, query: &Query) {
        set.add(self.bulk(), false);
        for key in self.guarded(query) {
            set.add(key, true);
        }
    }

    /// Adds what a writer of `events` to `stream` takes: the touched keys
    /// shared (or the bulk key exclusively for a large batch), and the
    /// stream key exclusively.
    pub(crate) fn write(&self, set: &mut LockSet, events: &[NewEvent], stream: &StreamId) {
        let touched = self.touched(events);
        if touched.len() > MAX_SHARED_KEYS {
            set.add(self.bulk(), true);
        } else {
            for key in touched {
                set.add(key, false);
            }
        }
        set.add(self.stream(stream), true);
    }
}

impl Keys {
    /// Adds the stream key, exclusively: what a stream decision holds.
    pub(crate) fn lock_stream(&self, set: &mut LockSet, stream: &StreamId) {
        set.add(self.stream(stream), true);
    }
}

/// Keys to take together, each once, exclusive if any use needs it.
///
/// Taking a whole set in one sorted pass is what keeps readers, writers and
/// conditional appends free of deadlocks: everyone waits in the same key
/// order and nobody asks for more while holding some. Only a decision,
/// which learns its events after its read, takes a second set.
#[derive(Debug, Default)]
pub(crate) struct LockSet(BTreeMap<i64, bool>);

impl LockSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, key: i64, exclusive: bool) {
        let entry = self.0.entry(key).or_insert(exclusive);
        *entry |= exclusive;
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The locks in key order.
    pub(crate) fn locks(&self) -> Vec<Lock> {
        self.0.iter().map(|(k, x)| (*k, *x)).collect()
    }

    /// The locks in key order that `held` does not already cover.
    pub(crate) fn without(&self, held: &LockSet) -> Vec<Lock> {
        self.0
            .iter()
            .filter(|(k, x)| held.0.get(k).is_none_or(|held_exclusive| **x && !held_exclusive))
            .map(|(k, x)| (*k, *x))
            .collect()
    }
}

impl LockMode {
    /// Whether this mode takes any set of locks in one statement, so the
    /// statement can be pipelined with the reads that must follow it.
    pub(crate) fn is_one_statement(self) -> bool {
        !matches!(self, LockMode::RowLocks)
    }
}

/// Sets `lock_timeout` for the rest of the transaction and returns the
/// previous setting.
///
/// A decision's second lock pass (the keys its events touch, its stream) is
/// the one place where a transaction asks for locks while holding others
/// (its guards), so every wait cycle between transactions includes a
/// decision waiting there. A short timeout breaks such a cycle quickly
/// (SQLSTATE 55P03, reported as contention; the dispatch retries) instead of
/// after PostgreSQL's one-second deadlock check.
pub(crate) async fn set_lock_timeout<C: GenericClient + Sync>(
    client: &C,
    setting: &str,
    prepared: Option<&Statement>,
) -> Result<String, PgError> {
    Ok(statements::query(
        client,
        prepared,
        statements::SET_LOCK_TIMEOUT,
        &[(&setting, Type::TEXT)],
    )
    .await?
    .first()
    .map(|row| row.try_get(0))
    .transpose()?
    .unwrap_or_default())
}

/// `timeout` as a `lock_timeout` setting.
pub(crate) fn timeout_setting(timeout: Duration) -> String {
    format!("{}ms", timeout.as_millis().max(1))
}

/// What taking `locks` in `mode` locks, in the order to take it: the keys
/// themselves for advisory locks; for row locks the lock rows they fold
/// onto, each once (exclusive if any of its keys needs it), in row order;
/// nothing for the table lock, which is one lock on the events table.
///
/// The client-side path ([`acquire`]) and the append function both take
/// exactly this, so both take the same locks in the same order.
pub(crate) fn plan(mode: LockMode, locks: &[Lock]) -> Vec<Lock> {
    match mode {
        LockMode::Advisory => locks.to_vec(),
        LockMode::TableLock => Vec::new(),
        LockMode::RowLocks => {
            let mut buckets = LockSet::new();
            for (key, exclusive) in locks {
                buckets.add(key.rem_euclid(LOCK_ROWS), *exclusive);
            }
            buckets.locks()
        }
    }
}

/// Takes what [`plan`] made of some locks, in its order; advisory locks
/// with the `prepared` lock statement when there is one. The first
/// statement is sent when the future is first polled.
pub(crate) async fn acquire<C: GenericClient + Sync>(
    client: &C,
    mode: LockMode,
    planned: &[Lock],
    prepared: Option<&Statement>,
) -> Result<(), PgError> {
    match mode {
        LockMode::TableLock => {
            client.batch_execute("LOCK TABLE events IN EXCLUSIVE MODE").await?;
        }
        LockMode::Advisory => {
            let keys: Vec<i64> = planned.iter().map(|(k, _)| *k).collect();
            let exclusive: Vec<bool> = planned.iter().map(|(_, x)| *x).collect();
            statements::query(
                client,
                prepared,
                statements::ADVISORY_LOCKS,
                &[(&keys, Type::INT8_ARRAY), (&exclusive, Type::BOOL_ARRAY)],
            )
            .await?;
        }
        LockMode::RowLocks => {
            // Row locks cannot mix modes in one statement: each run of
            // equal mode is one statement, runs in order.
            for run in planned.chunk_by(|a, b| a.1 == b.1) {
                let rows: Vec<i64> = run.iter().map(|(k, _)| *k).collect();
                let sql = if run[0].1 {
                    include_str!("sql/lock_rows_exclusive.sql")
                } else {
                    include_str!("sql/lock_rows_shared.sql")
                };
                client.execute_typed(sql, &[(&rows, Type::INT8_ARRAY)]).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::{EventId, EventType, Tag};
    use proptest::prelude::*;

    fn event(t: &str, tags: &[String]) -> NewEvent {
        NewEvent::new(
            EventId::from_bytes([0; 16]),
            EventType::new(t).expect("type"),
            Vec::new(),
        )
        .with_tags(tags.iter().map(|g| Tag::new(g.as_str()).expect("tag")))
    }

    fn item(types: &[String], tags: &[String]) -> QueryItem {
        QueryItem::types(types.iter().map(|t| EventType::new(t.as_str()).expect("type")))
            .with_tags(tags.iter().map(|g| Tag::new(g.as_str()).expect("tag")))
    }

    proptest! {
        /// The property the whole scheme rests on: an event that matches a
        /// query touches at least one key the query guards.
        #[test]
        fn every_matching_event_touches_a_guarded_key(
            event_type in "[ABC]",
            tags in proptest::collection::vec("[xyz]", 0..4),
            items in proptest::collection::vec(
                (proptest::collection::vec("[ABC]", 0..3), proptest::collection::vec("[xyz]", 0..3)), 0..3),
        ) {
            let keys = Keys::new("schema");
            let query = Query::new(items.iter().map(|(t, g)| item(t, g)));
            let new = event(&event_type, &tags);
            if query.matches(&new.event_type, &new.tags) {
                let touched = keys.touched(std::slice::from_ref(&new));
                let guarded = keys.guarded(&query);
                prop_assert!(guarded.iter().any(|k| touched.contains(k)));
            }
        }
    }

    #[test]
    fn keys_differ_between_schemas_and_kinds() {
        let (a, b) = (Keys::new("a"), Keys::new("b"));
        assert_ne!(a.bulk(), b.bulk());
        assert_ne!(a.bulk(), a.migration());
        assert_ne!(a.type_tag(Some("x"), None), a.type_tag(None, Some("x")));
    }

    #[test]
    fn a_large_batch_takes_the_bulk_key_instead_of_its_many_keys() {
        let keys = Keys::new("s");
        let tags: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let stream = StreamId::new("s").expect("stream");
        let mut large = LockSet::new();
        keys.write(&mut large, &[event("A", &tags)], &stream);
        let mut expected = vec![(keys.bulk(), true), (keys.stream(&stream), true)];
        expected.sort_unstable();
        assert_eq!(large.locks(), expected);
        let mut small = LockSet::new();
        keys.write(&mut small, &[event("A", &tags[..2])], &stream);
        let small = small.locks();
        assert_eq!(small.len(), 2 * 2 + 2 + 1);
        assert_eq!(small.iter().filter(|(_, exclusive)| *exclusive).count(), 1);
    }

    #[test]
    fn a_large_query_guards_the_key_every_event_touches_instead_of_its_many_keys() {
        let keys = Keys::new("s");
        let tags: Vec<String> = (0..=MAX_GUARD_KEYS).map(|i| format!("t{i}")).collect();
        let large = Query::new(tags.iter().map(|t| item(&[], std::slice::from_ref(t))));
        assert_eq!(keys.guarded(&large), vec![keys.type_tag(None, None)]);
        let small = Query::new(
            tags[..MAX_GUARD_KEYS]
                .iter()
                .map(|t| item(&[], std::slice::from_ref(t))),
        );
        assert_eq!(keys.guarded(&small).len(), MAX_GUARD_KEYS);
        // Every event touches it, so the large query still guards whatever
        // it matches.
        let touched = keys.touched(&[event("A", &tags[..1])]);
        assert!(touched.contains(&keys.type_tag(None, None)));
    }

    #[test]
    fn a_lock_set_is_sorted_and_exclusive_wins() {
        let mut set = LockSet::new();
        set.add(5, false);
        set.add(-3, false);
        set.add(5, true);
        set.add(5, false);
        assert_eq!(set.locks(), vec![(-3, false), (5, true)]);
    }
}
