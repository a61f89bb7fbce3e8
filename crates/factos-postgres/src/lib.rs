//! # factos-postgres: DCB appends that let unrelated writers run in parallel
//!
//! The factos store contract on PostgreSQL, with the same guarantee as a
//! table lock (`FailIfEventsMatch(query, after)` is checked and the events
//! inserted atomically; no decision is accepted that a concurrently
//! committed matching event would have changed) while writers whose
//! contexts do not overlap proceed in parallel.
//!
//! ## Getting started
//!
//! Connect with a URL, give the store a schema of its own (created by
//! `migrate`), and dispatch:
//!
//! ```
//! use factos::{decider, Dispatcher, JsonCodec, JsonEvent, Query, QueryItem, StreamId, Tag};
//! use factos_postgres::PgStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Reserved { name: String }
//! impl JsonEvent for Reserved {
//!     fn event_type(&self) -> &'static str { "Reserved" }
//!     fn tags(&self) -> Vec<String> { vec![format!("username:{}", self.name)] }
//! }
//!
//! let reserve = decider(
//!     false,
//!     |name: &String, taken: &bool| if *taken { Err("taken") } else { Ok(vec![Reserved { name: name.clone() }]) },
//!     |_, _: &Reserved| true,
//! );
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! # let url = factos_test_postgres::Cluster::shared()?.connection_string();
//! // `url` is like "postgres://app:secret@localhost:5432/app".
//! let store = PgStore::connect(url.as_str())?.with_schema("usernames")?;
//! store.migrate().await?; // creates the schema and its tables, or upgrades them
//!
//! let dispatcher = Dispatcher::new(&store, JsonCodec::new());
//! let boundary = Query::from(QueryItem::tags([Tag::new("username:ada")?]));
//! let committed = dispatcher.dispatch_context(&reserve, &"ada".to_string(), &boundary, &StreamId::new("user-1")?).await?;
//! assert_eq!(committed.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`PgStore::connect`] takes a URL, a key-value string
//! (`host=localhost dbname=app`) or a [`Config`]; [`PgStore::connect_with`]
//! sizes the pool and its time limits ([`PoolOptions`]); [`PgStore::new`]
//! takes a `deadpool_postgres::Pool` the application already has.
//!
//! ## Client
//!
//! [`tokio-postgres`](tokio_postgres) with a [`deadpool_postgres`] pool:
//! the mainstream async client, it links no SQLite (so it shares a
//! workspace with `factos-sqlite`), and it pipelines: requests issued
//! together leave in one write and the client waits once. Bring your own
//! pool with [`PgStore::new`].
//!
//! ## Round trips
//!
//! * An append outside a decision is **one** round trip and **one**
//!   statement, as cheap on the wire as a bare `INSERT`: a call of the
//!   `factos_append_alone` function that [`PgStore::migrate`] installs,
//!   alone, in autocommit (no `BEGIN`, `SET LOCAL` or `COMMIT`). The
//!   function carries what the transaction used to set: the store's schema
//!   (`SET search_path` in its definition) and READ COMMITTED (it refuses,
//!   SQLSTATE `FX001`, on a connection whose default isolation is stricter;
//!   the store then sends `BEGIN ISOLATION LEVEL READ COMMITTED`, the call
//!   and `COMMIT` in one pipeline from then on). The statement time limit
//!   is kept by the client: past it, the store cancels the statement (the
//!   server answers SQLSTATE 57014, reported as
//!   [`Limit::Statement`]). A connection lost before the answer leaves the
//!   outcome unknown; the store sends the same call again on another
//!   connection, and since it carries the same event ids the function
//!   answers with the original records if the first one committed. The
//!   function (`factos_append`, inside) takes the locks the client
//!   computed, in the client's order
//!   (the same keys and order as a decision's own lock statement), then
//!   checks taken ids, the stream's revision and the condition, each in a
//!   fresh READ COMMITTED snapshot, and inserts events and tag rows; it
//!   returns what it found, and the client turns that into the contract's
//!   typed errors in the contract's order. (A condition whose query
//!   carries SQL predicates is checked by the client under the same locks
//!   first: one more round trip.)
//! * A decision is **two**: `BEGIN`, its guard locks and its read; then the
//!   second pass's lock timeout, the append call and `COMMIT` (which rolls
//!   back if the call failed).
//! * A `read` is one: `BEGIN`, its guard locks, the read, `COMMIT`.
//! * The fixed statements (the lock statement, the append call, the lock
//!   timeout) are prepared once per connection and run by name;
//!   [`PgStore::with_prepared_statements`]`(false)` sends them unnamed.
//!
//! ## How appends stay correct without a table lock
//!
//! Every event maps to a few 64-bit lock keys it *touches* (its type with
//! each tag, each tag alone, its type alone, and "everything"); every query
//! item maps to one key per type it *guards* (type with its first tag, or
//! the type alone, or the tag alone, or "everything"). Every event that
//! matches an item touches the key the item guards.
//!
//! * A writer takes the keys its events touch in **shared** mode, then its
//!   stream's key exclusively, before it takes positions from the sequence.
//!   Unrelated writers never block each other.
//! * A decision (and every `read`) takes the keys its query guards
//!   **exclusively**, sorted, before it reads. READ COMMITTED gives the read
//!   a snapshot taken after the locks: every writer of a matching event that
//!   had taken a position has committed and is seen, and no new one can take
//!   a position until the decision ends. A matching writer that comes later
//!   takes a position greater than anything the decision saw, so the
//!   `after` check would catch it. Positions are handed out at insert and
//!   become visible at commit, but for *matching* events, the only ones a
//!   condition or a query reader cares about, never out of order.
//! * Deciders with overlapping queries serialise on a shared key; disjoint
//!   ones run in parallel. A decider that appends events touching a key
//!   another decider guards can deadlock with it; PostgreSQL detects that
//!   (40P01), nothing is written, and the dispatch retries.
//! * A batch touching more than 64 keys takes one bulk key exclusively
//!   instead (which every guard holder takes shared), so bulk appends never
//!   exhaust the server's lock table.
//! * [`LockMode::RowLocks`] holds the same keys as row locks on a small
//!   table, for poolers that refuse advisory locks altogether.
//!
//! ## Wait cycles and retries
//!
//! Only a decision asks for locks while holding others (its guards, then
//! the keys its new events touch), so every wait cycle contains a decision
//! in that second pass, which waits at most
//! [`PgStore::with_decision_lock_timeout`] (50 ms). But PostgreSQL may
//! break a cycle first, aborting whichever member's deadlock check runs
//! (SQLSTATE 40P01): a read, an append, a decision's first pass. Each of
//! those wrote nothing, so the store runs it again, up to 8 times with
//! jittered exponential pauses (2 ms doubling to 200 ms); a caller sees
//! [`factos::StoreError::Contention`] only when that budget is spent. A
//! decision's append cannot be re-run alone (its read is void after the
//! rollback): it reports `Contention` after a short random pause, and the
//! dispatch flow re-runs the whole decision. The same holds for a decision
//! whose large batch needs the bulk key exclusively while its read holds it
//! shared: two such decisions wait for each other until one times out.
//!
//! ## Time limits
//!
//! Nothing waits forever; every limit surfaces as [`PgError::Timeout`]
//! naming the [`Limit`]:
//!
//! | limit | default | set with |
//! |---|---|---|
//! | opening a connection, PostgreSQL's startup included | 5 s ([`DEFAULT_CONNECT_TIMEOUT`]) | [`PoolOptions::connect_timeout`] |
//! | waiting for a free pooled connection | 10 s ([`DEFAULT_POOL_WAIT_TIMEOUT`]) | [`PoolOptions::wait_timeout`] |
//! | a decision, from its read to its append | 5 s ([`DEFAULT_DECISION_TIMEOUT`]) | [`PgStore::with_decision_timeout`] |
//! | one statement (`statement_timeout`; a client-side cancel for an append, which runs alone) | 30 s ([`DEFAULT_STATEMENT_TIMEOUT`]) | [`PgStore::with_statement_timeout`] |
//! | a decision's second lock pass (`lock_timeout`) | 50 ms | [`PgStore::with_decision_lock_timeout`] |
//! | re-sending an append whose connection was lost before its answer | 30 s ([`DEFAULT_RESEND_WINDOW`]) | [`PgStore::with_resend_window`] |
//!
//! The decision limit is enforced by the server too
//! (`idle_in_transaction_session_timeout` on the decision's transaction
//! only): a decider that hangs loses its session, and with it its locks,
//! so it blocks matching writers for at most that long. A pool passed to
//! [`PgStore::new`] keeps its own connect and wait limits.
//!
//! ## Size limits
//!
//! | limit | default | set with |
//! |---|---|---|
//! | a query's items, types and tags per item, bytes ([`factos::QueryLimits`]) | 10,000; 100; 100; 1 MiB | [`PgStore::with_query_limits`] |
//! | lock keys a query guards before it guards `(*, *)` instead | 64 | fixed |
//! | lock keys a batch touches before it takes the bulk key instead | 64 | fixed |
//!
//! A query over its limits is refused with
//! [`StoreError::QueryTooLarge`](factos::StoreError::QueryTooLarge) before
//! anything is sent. The lock bounds keep every request, whatever its size,
//! within a few entries of the server's lock table (shared by every
//! database, `max_locks_per_transaction` × `max_connections`): a huge
//! query or batch costs its own waiting, never another request's failure.
//! A large query is sent as one JSON parameter, never as thousands of
//! terms ([`factos_sql::matching`]).
//!
//! ## Connections
//!
//! A decision that appends nothing (a rejection, no events, a decode
//! error) rolls back and returns its connection to the pool. A pooled
//! connection that the server closed while idle (a restart, a terminated
//! backend, an idle-session timeout) is replaced when the first statement
//! of a transaction finds it gone, since nothing has run yet.
//!
//! ## On a cluster: failover and replicas
//!
//! Give [`PgStore::connect`] every node of a streaming-replication cluster
//! (`postgres://h1:5432,h2:5432,h3:5432/db?target_session_attrs=read-write`):
//! connections go to the primary, and after a failover the lost ones are
//! replaced by connections to the new primary. An append or a decision's
//! commit whose connection was lost before its answer is sent again with
//! the same event ids until a primary answers
//! ([`PgStore::with_resend_window`]): the caller gets the original records
//! or a fresh append, never a duplicate, never a second decision. What
//! survives a failover is what the cluster's `synchronous_commit`
//! acknowledged: with a synchronous standby that alone may be promoted
//! (Patroni's `synchronous_mode`), every acknowledged append.
//!
//! [`PgReplica`] puts readers on a hot standby: followers read up to the
//! standby's settled transaction-id horizon and deliver the same events in
//! the same order as on the primary, later by the replay lag; reads are
//! stale by that lag and never show what the primary has not committed;
//! [`PgReplica::wait_for_primary`] gives read-your-writes; checkpoints and
//! parked effects stay on the primary. Decisions and conditions run on the
//! primary only.
//!
//! ## Behind a transaction-mode pooler
//!
//! With [`PgStore::with_prepared_statements`]`(false)` every statement is
//! unnamed (no prepared statement outlives its transaction); every setting
//! is `SET LOCAL`, no temporary table is used, and all locks, advisory or
//! row, are transaction-scoped. So both lock modes are correct behind
//! PgBouncer in `pool_mode = transaction`; the conformance suite, the
//! capacity race and the positional checks run through one in the tests.
//! (A pooler that tracks prepared statements, as PgBouncer does from 1.21
//! with `max_prepared_statements` set, should work with the default; that
//! is not tested here, where PgBouncer is 1.18.) Choose
//! [`LockMode::RowLocks`] for poolers or proxies that refuse or pin on
//! advisory-lock functions.
//!
//! ## Schema versions
//!
//! The first operation of a store checks, once, that its schema has the
//! version this crate writes: [`PgError::NotMigrated`] when it has none or
//! an older one (call [`PgStore::migrate`]), [`PgError::SchemaTooNew`] when
//! a newer factos-postgres wrote it (nothing is read or written).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
pub mod follow;
mod in_transaction;
mod limits;
mod locks;
mod projection;
mod replica;
mod retry;
pub mod schema;
mod session;
mod statements;
mod store;

pub use config::IntoConfig;
pub use error::{Limit, PgError};
pub use follow::{DEFAULT_NOTIFY_INTERVAL, DEFAULT_POLL_INTERVAL};
pub use in_transaction::{PgTransactionDecision, PgTransactionStore};
pub use limits::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DECISION_TIMEOUT, DEFAULT_POOL_WAIT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT,
    PoolOptions,
};
pub use locks::LockMode;
pub use projection::PgProjection;
pub use replica::PgReplica;
pub use store::{DEFAULT_RESEND_WINDOW, PgDecision, PgStore};
/// The driver, re-exported for [`PgStore::in_transaction`] and the pool's
/// connections.
pub use tokio_postgres;
/// The connection configuration [`PgStore::connect`] takes, re-exported so
/// that building one needs no direct dependency on `tokio-postgres`.
pub use tokio_postgres::Config;
