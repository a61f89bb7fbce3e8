//! What is particular to KurrentDB: positions of multi-event batches, events
//! written by other tools, payload content types, reserved names, scoped
//! stores, followers woken by the native subscription, and a stream race
//! between real tasks.

mod support;

use std::time::Duration;

use bytes::Bytes;
use factos::{
    AppendRequest, Dispatcher, EventId, EventStore, EventType, InvalidAppend, JsonCodec, JsonEvent, NewEvent, Query,
    QueryItem, ReadOptions, RetryPolicy, StoreError, StreamId, StreamRevision, Subscription, Tag, decider,
};
use factos_kurrentdb::KurrentStore;
use kurrentdb::{Client, EventData};
use support::{fresh_store, fresh_target};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn event(event_type: &str, tags: &[&str], data: &[u8]) -> Result<NewEvent, Box<dyn std::error::Error + Send + Sync>> {
    let tags = tags.iter().map(|t| Tag::new(*t)).collect::<Result<Vec<_>, _>>()?;
    Ok(NewEvent::new(EventId::random(), EventType::new(event_type)?, data.to_vec()).with_tags(tags))
}

/// A store and a raw client on one fresh database, with the stream-name
/// prefix the store's streams carry in it.
async fn store_and_client() -> Result<(KurrentStore, Client, String), Box<dyn std::error::Error + Send + Sync>> {
    let (url, prefix) = fresh_target().await;
    let store = KurrentStore::connect(&url)?;
    let store = match &prefix {
        Some(prefix) => store.scoped(prefix)?,
        None => store,
    };
    let client = Client::new(url.parse()?).map_err(|e| e.to_string())?;
    Ok((store, client, prefix.unwrap_or_default()))
}

#[tokio::test]
async fn every_event_of_a_batch_gets_its_own_position_and_reads_resume_exactly_there() -> TestResult {
    let store = fresh_store().await;
    let mut committed = Vec::new();
    for (stream, size) in [("a", 3), ("b", 1), ("a", 4), ("c", 2)] {
        let events = (0..size)
            .map(|i| event(if i % 2 == 0 { "Even" } else { "Odd" }, &[], b"{}"))
            .collect::<Result<_, _>>()?;
        committed.extend(
            store
                .append(AppendRequest::new(StreamId::new(stream)?, events))
                .await?
                .records,
        );
    }
    assert!(
        committed.windows(2).all(|w| w[0].position < w[1].position),
        "unique, increasing positions"
    );
    let odd = Query::from(QueryItem::types([EventType::new("Odd")?]));
    for (index, record) in committed.iter().enumerate() {
        let forwards = store
            .read(&Query::all(), ReadOptions::forwards().from(record.position))
            .await?;
        assert_eq!(forwards, committed[index..], "forwards from {}", record.position);
        let backwards = store
            .read(&Query::all(), ReadOptions::backwards().from(record.position))
            .await?;
        let mut expected = committed[..=index].to_vec();
        expected.reverse();
        assert_eq!(backwards, expected, "backwards from {}", record.position);
        let typed = store
            .read(&odd, ReadOptions::forwards().from(record.position).limit(2))
            .await?;
        let expected: Vec<_> = committed[index..]
            .iter()
            .filter(|r| r.event_type.as_str() == "Odd")
            .take(2)
            .cloned()
            .collect();
        assert_eq!(typed, expected, "the type filter resumes there too");
    }
    Ok(())
}

#[tokio::test]
async fn events_of_other_tools_read_with_no_tags_and_version_zero_and_system_events_stay_hidden() -> TestResult {
    let (store, client, prefix) = store_and_client().await?;
    let foreign = [
        EventData::binary("Imported", Bytes::from_static(b"raw")),
        EventData::json("Imported", &serde_json::json!({"a": 1}))?.metadata(Bytes::from_static(b"not json")),
        EventData::binary("Imported", Bytes::new()).metadata(Bytes::from_static(br#"{"$correlationId":"c1"}"#)),
    ];
    client
        .append_to_stream(format!("{prefix}legacy"), &Default::default(), foreign.to_vec())
        .await?;
    let read = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(
        read.len(),
        3,
        "the three foreign events and nothing else (no system event): {read:?}"
    );
    for record in &read {
        assert!(record.tags.is_empty() && record.version == 0 && record.metadata.iter().count() == 0);
        assert_eq!(record.stream.as_str(), "legacy");
    }
    assert_eq!(read[0].event, b"raw");
    let stream = store
        .read_stream(&StreamId::new("legacy")?, StreamRevision::FIRST)
        .await?;
    assert_eq!(stream, read);
    Ok(())
}

#[tokio::test]
async fn payloads_keep_their_bytes_and_only_exact_json_is_marked_json() -> TestResult {
    let (store, client, prefix) = store_and_client().await?;
    let payloads: [&[u8]; 4] = [br#"{"total": 12}"#, b" {}", b"\xff\x00binary", b""];
    let events = payloads
        .iter()
        .map(|p| event("Payload", &[], p))
        .collect::<Result<_, _>>()?;
    let committed = store.append(AppendRequest::new(StreamId::new("p")?, events)).await?;
    for (record, payload) in committed.records.iter().zip(payloads) {
        assert_eq!(record.event, payload);
    }
    let mut raw = client.read_stream(format!("{prefix}p"), &Default::default()).await?;
    let mut is_json = Vec::new();
    while let Some(event) = raw.next().await? {
        is_json.push(event.get_original_event().is_json);
    }
    assert_eq!(is_json, [true, false, false, false]);
    Ok(())
}

#[tokio::test]
async fn names_kurrentdb_reserves_are_refused_before_anything_is_written() -> TestResult {
    let store = fresh_store().await;
    for request in [
        AppendRequest::new(
            StreamId::new("s")?,
            vec![event("Fine", &[], b"")?, event("$Internal", &[], b"")?],
        ),
        AppendRequest::new(StreamId::new("$system")?, vec![event("Fine", &[], b"")?]),
    ] {
        match store.append(request).await {
            Err(StoreError::InvalidAppend(InvalidAppend::ReservedName { name, .. })) => assert!(name.starts_with('$')),
            other => panic!("expected ReservedName, got {other:?}"),
        }
    }
    assert!(store.read(&Query::all(), ReadOptions::forwards()).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn scoped_stores_share_a_database_without_seeing_each_other() -> TestResult {
    let (url, _) = fresh_target().await;
    let blue = KurrentStore::connect(&url)?.scoped(&format!("blue-{}-", uuid::Uuid::new_v4().simple()))?;
    let green = KurrentStore::connect(&url)?.scoped(&format!("green-{}-", uuid::Uuid::new_v4().simple()))?;
    let stream = StreamId::new("orders")?;
    blue.append(AppendRequest::new(stream.clone(), vec![event("Placed", &["x"], b"b")?]))
        .await?;
    green
        .append(AppendRequest::new(stream.clone(), vec![event("Placed", &["x"], b"g")?]))
        .await?;
    for (store, payload) in [(&blue, b"b"), (&green, b"g")] {
        let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
        assert_eq!(all.iter().map(|r| r.event.as_slice()).collect::<Vec<_>>(), [payload]);
        assert_eq!(all[0].stream, stream);
        assert_eq!(store.read_stream(&stream, StreamRevision::FIRST).await?, all);
    }
    for bad in ["", "$tenant-", "a\nb"] {
        assert!(
            KurrentStore::connect(&url)?.scoped(bad).is_err(),
            "{bad:?} must be refused"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_waiting_follower_is_woken_by_the_subscription_not_by_polling() -> TestResult {
    let (url, prefix) = fresh_target().await;
    let scoped = |store: KurrentStore| match &prefix {
        Some(prefix) => store.scoped(prefix),
        None => Ok(store),
    };
    // Polling alone would take a minute; only the subscription is quick.
    let follower = scoped(KurrentStore::connect(&url)?)?.with_poll_interval(Duration::from_secs(60));
    // Another client, as another process would be: its appends reach the
    // follower only through the server.
    let writer = scoped(KurrentStore::connect(&url)?)?;
    let mut subscription = Subscription::new(&follower, Query::all(), None);
    assert!(subscription.catch_up().await?.is_empty());
    let waiting = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch());
    let written = async {
        // Let the follower start waiting (and subscribing) first, then write
        // a few times, as the subscription is made on its first call.
        let mut last = None;
        for round in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let event = event("Ping", &[], format!("{round}").as_bytes())?;
            last = Some(
                writer
                    .append(AppendRequest::new(StreamId::new("pings")?, vec![event]))
                    .await?,
            );
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(last)
    };
    let (woken, written) = tokio::join!(waiting, written);
    written?;
    let batch = woken.map_err(|_| "the follower was not woken within 10 s")??;
    assert!(!batch.is_empty());
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct LineAdded {
    line: u32,
}

impl JsonEvent for LineAdded {
    fn event_type(&self) -> &'static str {
        "LineAdded"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("line:{}", self.line)]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_dispatching_on_one_order_stream_lose_nothing() -> TestResult {
    let store = fresh_store().await;
    let order = StreamId::new("order-1")?;
    let tasks: Vec<_> = (0..32u32)
        .map(|line| {
            let store = store.clone();
            let order = order.clone();
            tokio::spawn(async move {
                let add = decider(
                    Vec::<u32>::new(),
                    |line: &u32, lines: &Vec<u32>| {
                        if lines.contains(line) {
                            Err(format!("line {line} is on the order already"))
                        } else {
                            Ok(vec![LineAdded { line: *line }])
                        }
                    },
                    |mut lines: Vec<u32>, added: &LineAdded| {
                        lines.push(added.line);
                        lines
                    },
                );
                // Every round of the race has a winner: 33 runs suffice.
                Dispatcher::new(&store, JsonCodec::<LineAdded>::new())
                    .with_retry(RetryPolicy::attempts(33))
                    .dispatch_stream(&add, &line, &order)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await??);
    }
    assert_eq!(accepted.len(), 32, "every command accepted");
    let stored = store.read_stream(&order, StreamRevision::FIRST).await?;
    assert_eq!(
        stored.iter().map(|r| r.revision.value()).collect::<Vec<_>>(),
        (0..32).collect::<Vec<_>>(),
        "consecutive revisions"
    );
    let mut lines: Vec<u32> = stored
        .iter()
        .map(|r| serde_json::from_slice::<LineAdded>(&r.event).map(|e| e.line))
        .collect::<Result<_, _>>()?;
    lines.sort_unstable();
    assert_eq!(lines, (0..32).collect::<Vec<_>>(), "each accepted line exactly once");
    let mut ids: Vec<_> = accepted.iter().map(|r| r.id).collect();
    ids.sort();
    let mut stored_ids: Vec<_> = stored.iter().map(|r| r.id).collect();
    stored_ids.sort();
    assert_eq!(ids, stored_ids, "what the dispatches returned is what the stream holds");
    Ok(())
}

/// An append whose future is dropped (a timeout, a cancelled request) at a
/// random moment leaves its batch whole or absent, never a prefix of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_append_leaves_its_batch_whole_or_absent() -> TestResult {
    let store = fresh_store().await;
    let payload = vec![b'x'; 64 * 1024];
    let mut whole = 0;
    let mut absent = 0;
    for seed in 0..3u64 {
        for round in 0..20u64 {
            let stream = StreamId::new(format!("dropped-{seed}-{round}"))?;
            let batch: Vec<NewEvent> = (0..16)
                .map(|_| event("Chunk", &[], &payload))
                .collect::<Result<_, _>>()?;
            // A deterministic spread of moments, from before the first
            // message to after the answer.
            let after = Duration::from_micros((seed * 7_919 + round * 104_729) % 20_000);
            let _ = tokio::time::timeout(after, store.append(AppendRequest::new(stream.clone(), batch))).await;
            // Let a server that is still receiving finish what it does.
            tokio::time::sleep(Duration::from_millis(20)).await;
            match store.read_stream(&stream, StreamRevision::FIRST).await?.len() {
                0 => absent += 1,
                16 => whole += 1,
                partial => panic!("seed {seed}, round {round}: {partial} of 16 events were written"),
            }
        }
    }
    eprintln!("{whole} batches whole, {absent} absent");
    Ok(())
}
