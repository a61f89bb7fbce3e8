//! The forgetting cases, over any store that keeps its subjects' keys and
//! snapshots: each test binary runs them on one backend.

use std::collections::BTreeMap;

use factos::forget::SubjectKeys;
use factos::snapshot::{JsonState, SnapshotStore, Snapshotting};
use factos::{
    Checkpoints, DecisionScope, Dispatcher, Error, EventStore, ExpectedRevision, Follow, InvalidAppend, JsonCodec,
    JsonEvent, Query, QueryItem, ReadOptions, StoreError, StreamId, StreamRevision, Subscription, Tag, decider, decode,
};
use factos_shredding::{Personal, PersonalData, Shredding, SubjectFrom};
use serde::{Deserialize, Serialize};

pub type CaseResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What every case needs of a store.
pub trait Backend:
    EventStore<Transaction: Send> + SubjectKeys + SnapshotStore + Follow + Checkpoints + Clone + Sync
{
}
impl<S> Backend for S where
    S: EventStore<Transaction: Send> + SubjectKeys + SnapshotStore + Follow + Checkpoints + Clone + Sync
{
}

/// A customer's registration, with personal fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub customer: u32,
    pub name: Personal<String>,
    pub email: Personal<String>,
    pub plan: String,
}

impl JsonEvent for Registered {
    fn event_type(&self) -> &'static str {
        "Registered"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("customer:{}", self.customer), "registrations".into()]
    }
}

fn registered(customer: u32, n: u32) -> Registered {
    Registered {
        customer,
        name: format!("Name {customer}-{n}").into(),
        email: format!("secret-{customer}-{n}@example.org").into(),
        plan: "gold".into(),
    }
}

fn personal() -> PersonalData {
    PersonalData::new()
        .event(
            "Registered",
            SubjectFrom::TagPrefix("customer:".into()),
            &["/name", "/email"],
        )
        .unwrap_or_else(|e| panic!("a valid rule: {e}"))
}

fn shredding<S: Backend>(store: &S) -> Shredding<S> {
    Shredding::new(store.clone(), store.clone(), personal())
}

fn customer(customer: u32) -> Query {
    Query::from(QueryItem::tags([
        Tag::new(format!("customer:{customer}")).unwrap_or_else(|e| panic!("{e}"))
    ]))
}

fn stream(customer: u32) -> StreamId {
    StreamId::new(format!("customer-{customer}")).unwrap_or_else(|e| panic!("{e}"))
}

async fn register<S: Backend>(store: &Shredding<S>, who: u32, n: u32) -> Result<(), Error<std::convert::Infallible>> {
    Dispatcher::new(store, JsonCodec::new())
        .append(&stream(who), vec![registered(who, n)], ExpectedRevision::Any, None)
        .await
        .map(|_| ())
}

/// The registrations of `who` through every read path of `store`: a read,
/// a stream read, a decision's context and a follower.
async fn every_path<S: Backend>(
    store: &Shredding<S>,
    who: u32,
) -> Result<Vec<Vec<Registered>>, Box<dyn std::error::Error + Send + Sync>> {
    let codec = JsonCodec::<Registered>::new();
    let dispatcher = Dispatcher::new(store, codec);
    let read = dispatcher.read::<Registered>(&customer(who)).await?.events;
    let by_stream = store.read_stream(&stream(who), StreamRevision::FIRST).await?;
    let seen = decider(
        Vec::new(),
        |_: &(), seen: &Vec<Registered>| Err(seen.clone()),
        |mut seen: Vec<Registered>, e: &Registered| {
            seen.push(e.clone());
            seen
        },
    );
    let decided = dispatcher
        .dispatch_context(&seen, &(), &customer(who), &StreamId::new("decisions")?)
        .await
        .err()
        .and_then(Error::into_domain)
        .ok_or("the decision did not reject with what it saw")?;
    let followed = Subscription::new(store, customer(who), None).catch_up().await?;
    let decode_all = |records: Vec<factos::StoredEvent>| {
        records
            .into_iter()
            .map(|r| decode(&codec, r).map(|r| r.event))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(vec![
        read.into_iter().map(|r| r.event).collect(),
        decode_all(by_stream)?,
        decided,
        decode_all(followed.into_iter().map(|d| d.record).collect())?,
    ])
}

/// Personal fields are ciphertext in the store underneath and plaintext
/// through every read path of the wrapper.
pub async fn personal_data_is_encrypted_at_rest_and_read_back_through_every_path<S: Backend>(store: &S) -> CaseResult {
    let shredding = shredding(store);
    register(&shredding, 1, 0).await?;
    register(&shredding, 2, 0).await?;
    let raw = EventStore::read(store, &Query::all(), ReadOptions::forwards()).await?;
    for event in &raw {
        let text = String::from_utf8_lossy(&event.event);
        assert!(
            !text.contains("secret-") && !text.contains("Name "),
            "plaintext at rest: {text}"
        );
        assert!(
            text.contains("gold"),
            "a field that is not personal was encrypted: {text}"
        );
    }
    for path in every_path(&shredding, 1).await? {
        assert_eq!(path, vec![registered(1, 0)]);
    }
    Ok(())
}

/// After a forget every read path returns the subject's events with their
/// personal fields forgotten (tags, positions and other fields as they
/// were), other subjects are untouched, no new personal data of the
/// subject can be written, and snapshots are retired.
pub async fn a_forgotten_subject_reads_as_forgotten_everywhere_and_is_never_written_again<S: Backend>(
    store: &S,
) -> CaseResult {
    let shredding = shredding(store);
    register(&shredding, 1, 0).await?;
    register(&shredding, 2, 0).await?;
    register(&shredding, 1, 1).await?;
    let before = EventStore::read(store, &Query::all(), ReadOptions::forwards()).await?;
    let scope = DecisionScope::Query(customer(1));
    let counter = Snapshotting::new(
        decider(
            0u32,
            |_: &(), _: &u32| Ok::<Vec<Registered>, ()>(vec![]),
            |n, _: &Registered| n + 1,
        ),
        "count",
        1,
        JsonState,
    );
    let (decision, read) = store.begin_decision_from_snapshot(&scope, &counter.key(&scope)).await?;
    factos::LocalEventStore::abandon_decision(store, decision).await;
    let snapshot = factos::snapshot::Snapshot {
        key: counter.key(&scope),
        position: before[2].position,
        revision: before[2].revision,
        stamp: read.stamp,
        state: b"2".to_vec(),
    };
    assert!(store.save_snapshot(snapshot).await?);

    assert!(shredding.forget("customer:1").await?);
    assert!(
        !shredding.forget("customer:1").await?,
        "a second forget destroyed a key"
    );

    for path in every_path(&shredding, 1).await? {
        assert_eq!(path.len(), 2);
        for event in path {
            assert_eq!((event.name, event.email), (Personal::Forgotten, Personal::Forgotten));
            assert_eq!((event.customer, event.plan.as_str()), (1, "gold"));
        }
    }
    for path in every_path(&shredding, 2).await? {
        assert_eq!(path, vec![registered(2, 0)], "another subject's data changed");
    }
    let after = shredding.read(&Query::all(), ReadOptions::forwards()).await?;
    let shape = |events: &[factos::StoredEvent]| {
        events
            .iter()
            .map(|e| (e.position, e.id, e.tags.clone(), e.stream.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&after), shape(&before), "positions, ids, tags or streams changed");

    match register(&shredding, 1, 2).await {
        Err(Error::Store {
            source: StoreError::InvalidAppend(InvalidAppend::SubjectForgotten { .. }),
            ..
        }) => {}
        other => panic!("expected SubjectForgotten for a forgotten subject, got {other:?}"),
    }
    let (decision, read) = store.begin_decision_from_snapshot(&scope, &counter.key(&scope)).await?;
    factos::LocalEventStore::abandon_decision(store, decision).await;
    assert_eq!(read.snapshot, None, "a snapshot survived the forget");
    Ok(())
}

/// A projection of customers' e-mail addresses, rebuilt from the log after
/// a forget, holds no trace of the forgotten subject's data.
pub async fn a_projection_rebuilt_after_a_forget_holds_no_trace_of_it<S: Backend>(store: &S) -> CaseResult {
    let shredding = shredding(store);
    for who in 1..=3 {
        register(&shredding, who, 0).await?;
    }
    let project = || async {
        let codec = JsonCodec::<Registered>::new();
        let mut emails = BTreeMap::new();
        for delivered in Subscription::new(&shredding, Query::all(), None).catch_up().await? {
            let event = decode(&codec, delivered.record)?.event;
            emails.insert(event.customer, serde_json::to_string(&event)?);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(serde_json::to_string(&emails)?)
    };
    let built = project().await?;
    assert!(built.contains("secret-2-0@example.org"));
    shredding.forget("customer:2").await?;
    let rebuilt = project().await?;
    assert!(
        !rebuilt.contains("secret-2") && !rebuilt.contains("Name 2"),
        "a trace in the rebuilt projection: {rebuilt}"
    );
    assert!(rebuilt.contains("secret-1-0@example.org") && rebuilt.contains("secret-3-0@example.org"));
    Ok(())
}

/// Eight writers register updates of one customer (and of another) while
/// the first is forgotten, and keep writing after it: every accepted write
/// is there once, the writes after the forget are refused as written for a
/// forgotten subject, and nothing of the forgotten customer reads in clear,
/// whatever it raced.
pub async fn a_forget_racing_writes_for_the_subject_leaves_nothing_readable<S: Backend>(store: &S) -> CaseResult {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    const WRITERS: u32 = 8;
    let shredding = shredding(store);
    register(&shredding, 1, 0).await?;
    let (shredding, done, writes) = (&shredding, &AtomicBool::new(false), &AtomicU32::new(0));
    let writers = (0..WRITERS).map(|w| async move {
        let who = if w % 2 == 0 { 1 } else { 2 };
        let (mut accepted, mut refused, mut after) = (0u32, 0u32, 0u32);
        for n in 0..1_000 {
            let forgotten_before = done.load(Ordering::SeqCst);
            match register(shredding, who, 1 + w * 1_000 + n).await {
                Ok(()) => accepted += 1,
                Err(Error::Store {
                    source: StoreError::InvalidAppend(InvalidAppend::SubjectForgotten { .. }),
                    ..
                }) if who == 1 => refused += 1,
                Err(other) => return Err(other.to_string()),
            }
            writes.fetch_add(1, Ordering::SeqCst);
            after += u32::from(forgotten_before);
            // Lets the forget in between writes, on a store that never
            // waits (the in-memory one).
            tokio::task::yield_now().await;
            if after >= 3 {
                break;
            }
        }
        Ok((who, accepted, refused))
    });
    let forget = async {
        while writes.load(Ordering::SeqCst) < 2 * WRITERS {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let forgotten = shredding.forget("customer:1").await;
        done.store(true, Ordering::SeqCst);
        forgotten
    };
    let (written, forgotten) = tokio::join!(futures::future::join_all(writers), forget);
    assert!(forgotten?);
    let (mut accepted, mut refused) = (BTreeMap::new(), 0);
    for outcome in written {
        let (who, ok, no) = outcome?;
        *accepted.entry(who).or_insert(0) += ok;
        refused += no;
    }
    assert!(
        refused >= WRITERS / 2 * 3,
        "writes after the forget were not refused ({refused})"
    );
    let raw = EventStore::read(store, &Query::all(), ReadOptions::forwards()).await?;
    let count = |who: u32| raw.iter().filter(|e| e.stream == stream(who)).count() as u32;
    assert_eq!(count(1), 1 + accepted[&1], "customer 1's accepted writes, each once");
    assert_eq!(count(2), accepted[&2], "customer 2's accepted writes, each once");
    for path in every_path(shredding, 1).await? {
        for event in path {
            assert!(
                event.email.is_forgotten() && event.name.is_forgotten(),
                "readable after the forget: {event:?}"
            );
        }
    }
    for path in every_path(shredding, 2).await? {
        assert!(
            path.iter().all(|e| !e.email.is_forgotten()),
            "another customer's data was forgotten"
        );
    }
    Ok(())
}

/// Re-sending a batch with personal data (same ids and content) returns
/// the original records: the encryption is deterministic per event.
pub async fn a_resent_batch_with_personal_data_returns_the_original_records<S: Backend>(store: &S) -> CaseResult {
    let shredding = shredding(store);
    let new = JsonCodec::<Registered>::new();
    let event = factos::Codec::encode(&new, &registered(1, 0))?;
    let request = factos::AppendRequest::new(stream(1), vec![event]);
    let first = shredding.append(request.clone()).await?;
    let again = shredding.append(request).await?;
    assert_eq!(again, first);
    assert_eq!(
        EventStore::read(store, &Query::all(), ReadOptions::forwards())
            .await?
            .len(),
        1
    );
    Ok(())
}

/// Stamps each case as a `#[tokio::test]` over `$fresh` (an async function
/// returning a fresh store).
#[macro_export]
macro_rules! forget_cases {
    ($fresh:expr) => {
        $crate::forget_cases!(@each $fresh;
            personal_data_is_encrypted_at_rest_and_read_back_through_every_path,
            a_forgotten_subject_reads_as_forgotten_everywhere_and_is_never_written_again,
            a_projection_rebuilt_after_a_forget_holds_no_trace_of_it,
            a_forget_racing_writes_for_the_subject_leaves_nothing_readable,
            a_resent_batch_with_personal_data_returns_the_original_records
        );
    };
    (@each $fresh:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> cases::CaseResult {
                let store = ($fresh)().await?;
                cases::$case(&store.0).await
            }
        )*
    };
}
