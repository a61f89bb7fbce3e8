//! The server, driven by the unmodified official client, against the rules
//! KurrentDB documents: revisions, expected states, idempotent re-sends,
//! one `$all` order, reads in both directions, filters, system events.

use bytes::Bytes;
use factos_test_kurrentdb::FakeKurrentDb;
use kurrentdb::{
    AppendToStreamOptions, Client, EventData, Position, ReadAllOptions, ReadStreamOptions, ResolvedEvent,
    StreamPosition, StreamState, SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn connect() -> Result<(FakeKurrentDb, Client), Box<dyn std::error::Error>> {
    let server = FakeKurrentDb::start().await?;
    let client = Client::new(server.connection_string().parse()?)?;
    Ok((server, client))
}

fn event(event_type: &str, data: &'static [u8]) -> EventData {
    EventData::binary(event_type, Bytes::from_static(data))
}

async fn drain(mut stream: kurrentdb::ReadStream) -> Result<Vec<ResolvedEvent>, kurrentdb::Error> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await? {
        events.push(event);
    }
    Ok(events)
}

#[tokio::test]
async fn revisions_count_from_zero_and_positions_increase_within_and_across_batches() -> TestResult {
    let (_server, client) = connect().await?;
    let first = client
        .append_to_stream(
            "s",
            &AppendToStreamOptions::default(),
            vec![event("A", b"1"), event("B", b"2")],
        )
        .await?;
    assert_eq!(first.next_expected_version, 1);
    let second = client
        .append_to_stream("s", &Default::default(), event("C", b"3"))
        .await?;
    assert_eq!(second.next_expected_version, 2);
    let read = drain(client.read_stream("s", &ReadStreamOptions::default()).await?).await?;
    let revisions: Vec<u64> = read.iter().map(|e| e.get_original_event().revision).collect();
    assert_eq!(revisions, vec![0, 1, 2]);
    let positions: Vec<u64> = read.iter().map(|e| e.get_original_event().position.commit).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(read[2].get_original_event().data, Bytes::from_static(b"3"));
    Ok(())
}

#[tokio::test]
async fn each_expected_state_is_checked_and_a_mismatch_reports_the_actual_revision() -> TestResult {
    let (_server, client) = connect().await?;
    let expect = |state| AppendToStreamOptions::default().stream_state(state);
    match client
        .append_to_stream("s", &expect(StreamState::StreamExists), event("A", b""))
        .await
    {
        Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
            assert_eq!(current, kurrentdb::CurrentRevision::NoStream)
        }
        other => panic!("a missing stream does not exist: {other:?}"),
    }
    client
        .append_to_stream("s", &expect(StreamState::NoStream), event("A", b""))
        .await?;
    match client
        .append_to_stream("s", &expect(StreamState::NoStream), event("A", b""))
        .await
    {
        Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
            assert_eq!(current, kurrentdb::CurrentRevision::Current(0))
        }
        other => panic!("the stream exists now: {other:?}"),
    }
    client
        .append_to_stream("s", &expect(StreamState::StreamRevision(0)), event("B", b""))
        .await?;
    match client
        .append_to_stream("s", &expect(StreamState::StreamRevision(0)), event("C", b""))
        .await
    {
        Err(kurrentdb::Error::WrongExpectedVersion { current, expected }) => {
            assert_eq!(current, kurrentdb::CurrentRevision::Current(1));
            assert_eq!(expected, StreamState::StreamRevision(0));
        }
        other => panic!("the stream moved on: {other:?}"),
    }
    client
        .append_to_stream("s", &expect(StreamState::StreamExists), event("D", b""))
        .await?;
    client
        .append_to_stream("s", &expect(StreamState::Any), event("E", b""))
        .await?;
    assert_eq!(
        drain(client.read_stream("s", &Default::default()).await?).await?.len(),
        4
    );
    Ok(())
}

#[tokio::test]
async fn re_sending_a_written_batch_writes_nothing_again() -> TestResult {
    let (_server, client) = connect().await?;
    let ids = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    let batch = || vec![event("A", b"1").id(ids[0]), event("B", b"2").id(ids[1])];
    let first = client.append_to_stream("s", &Default::default(), batch()).await?;
    let again = client.append_to_stream("s", &Default::default(), batch()).await?;
    assert_eq!(again.next_expected_version, first.next_expected_version);
    assert_eq!(again.position, first.position);
    let read = drain(client.read_stream("s", &Default::default()).await?).await?;
    assert_eq!(
        read.iter().map(|e| e.get_original_event().id).collect::<Vec<_>>(),
        ids.to_vec()
    );
    Ok(())
}

#[tokio::test]
async fn partial_and_misplaced_re_sends_are_refused_and_other_streams_write_anew() -> TestResult {
    let (_server, client) = connect().await?;
    let ids = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    client
        .append_to_stream(
            "s",
            &Default::default(),
            vec![event("A", b"1").id(ids[0]), event("B", b"2").id(ids[1])],
        )
        .await?;
    let wrong = |result: Result<kurrentdb::WriteResult, kurrentdb::Error>| {
        matches!(result, Err(kurrentdb::Error::WrongExpectedVersion { .. }))
    };
    // A known first id followed by a new one: corrupted idempotency.
    let partial = vec![event("A", b"1").id(ids[0]), event("C", b"3")];
    assert!(wrong(client.append_to_stream("s", &Default::default(), partial).await));
    // An exact expectation the stream passed, with other ids after it.
    let exact = AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(0));
    assert!(wrong(
        client
            .append_to_stream("s", &exact, vec![event("A", b"1").id(ids[0])])
            .await
    ));
    // ...and with the ids that are there: a re-send.
    let again = client
        .append_to_stream("s", &exact, vec![event("B", b"2").id(ids[1])])
        .await?;
    assert_eq!(again.next_expected_version, 1);
    // The same id in another stream is a new event there.
    client
        .append_to_stream("t", &Default::default(), vec![event("A", b"1").id(ids[0])])
        .await?;
    let s = drain(client.read_stream("s", &Default::default()).await?).await?;
    let t = drain(client.read_stream("t", &Default::default()).await?).await?;
    assert_eq!((s.len(), t.len()), (2, 1));
    Ok(())
}

#[tokio::test]
async fn streams_read_from_a_revision_in_both_directions_and_a_missing_one_is_not_found() -> TestResult {
    let (_server, client) = connect().await?;
    let events: Vec<EventData> = (0..5).map(|_| event("A", b"")).collect();
    client.append_to_stream("s", &Default::default(), events).await?;
    let revisions = |read: Vec<ResolvedEvent>| read.iter().map(|e| e.get_original_event().revision).collect::<Vec<_>>();
    let from_two = ReadStreamOptions::default()
        .position(StreamPosition::Position(2))
        .max_count(2);
    assert_eq!(
        revisions(drain(client.read_stream("s", &from_two).await?).await?),
        vec![2, 3]
    );
    let newest = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(2);
    assert_eq!(
        revisions(drain(client.read_stream("s", &newest).await?).await?),
        vec![4, 3]
    );
    let down_from_two = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::Position(2));
    assert_eq!(
        revisions(drain(client.read_stream("s", &down_from_two).await?).await?),
        vec![2, 1, 0]
    );
    match drain(client.read_stream("missing", &Default::default()).await?).await {
        Err(kurrentdb::Error::ResourceNotFound) => {}
        other => panic!("a missing stream is not found: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn all_holds_every_event_once_in_one_order_system_events_included_and_filters_narrow_it() -> TestResult {
    let (_server, client) = connect().await?;
    client
        .append_to_stream(
            "orders-1",
            &Default::default(),
            vec![event("OrderPlaced", b""), event("OrderPaid", b"")],
        )
        .await?;
    client
        .append_to_stream("users-1", &Default::default(), event("UserJoined", b""))
        .await?;

    let all = drain(client.read_all(&ReadAllOptions::default()).await?).await?;
    let types: Vec<String> = all.iter().map(|e| e.get_original_event().event_type.clone()).collect();
    assert!(
        types.iter().any(|t| t.starts_with('$')),
        "a real server's $all holds system events: {types:?}"
    );
    let positions: Vec<u64> = all.iter().map(|e| e.get_original_event().position.commit).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));

    let user_events = ReadAllOptions::default().filter(SubscriptionFilter::on_event_type().exclude_system_events());
    let types: Vec<String> = drain(client.read_all(&user_events).await?)
        .await?
        .iter()
        .map(|e| e.get_original_event().event_type.clone())
        .collect();
    assert_eq!(types, vec!["OrderPlaced", "OrderPaid", "UserJoined"]);

    let orders = ReadAllOptions::default().filter(SubscriptionFilter::on_stream_name().add_prefix("orders-"));
    assert_eq!(drain(client.read_all(&orders).await?).await?.len(), 2);
    let paid = ReadAllOptions::default().filter(SubscriptionFilter::on_event_type().regex("^Order(Paid|Shipped)$"));
    assert_eq!(drain(client.read_all(&paid).await?).await?.len(), 1);
    // The .NET dialect real clients send: the Python client's default
    // exclusion (a negative look-ahead), and a backreference.
    let excluded = ReadAllOptions::default()
        .filter(SubscriptionFilter::on_event_type().regex(r"^(?!(\$.+$|PersistentConfig\d+$|Result$))"));
    let types: Vec<String> = drain(client.read_all(&excluded).await?)
        .await?
        .iter()
        .map(|e| e.get_original_event().event_type.clone())
        .collect();
    assert_eq!(types, vec!["OrderPlaced", "OrderPaid", "UserJoined"]);
    let backreference =
        ReadAllOptions::default().filter(SubscriptionFilter::on_event_type().regex(r"^(Order)(Paid|\1Placed)$"));
    assert_eq!(drain(client.read_all(&backreference).await?).await?.len(), 1);

    // From a position: forwards includes it, backwards starts below it.
    let second = all[all.len() - 2].get_original_event().position;
    let forwards = ReadAllOptions::default().position(StreamPosition::Position(second));
    assert_eq!(drain(client.read_all(&forwards).await?).await?.len(), 2);
    let backwards = ReadAllOptions::default()
        .backwards()
        .position(StreamPosition::Position(Position {
            commit: second.commit,
            prepare: second.prepare,
        }))
        .max_count(1);
    let before = drain(client.read_all(&backwards).await?).await?;
    assert!(before[0].get_original_event().position.commit < second.commit);
    let newest = ReadAllOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(1);
    assert_eq!(
        drain(client.read_all(&newest).await?).await?[0]
            .get_original_event()
            .event_type,
        "UserJoined"
    );
    Ok(())
}

#[tokio::test]
async fn all_subscriptions_replay_history_then_go_live_filtered_and_resume_after_a_position() -> TestResult {
    let (_server, client) = connect().await?;
    let first = client
        .append_to_stream("s", &Default::default(), vec![event("A", b"1"), event("B", b"2")])
        .await?;
    let no_system = SubscriptionFilter::on_event_type().exclude_system_events();
    let mut from_start = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(no_system.clone()))
        .await;
    let mut seen = Vec::new();
    loop {
        match from_start.next_subscription_event().await? {
            SubscriptionEvent::Confirmed(_) => assert!(seen.is_empty(), "the confirmation comes first"),
            SubscriptionEvent::EventAppeared(e) => seen.push(e.get_original_event().event_type.clone()),
            SubscriptionEvent::CaughtUp(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["A", "B"], "history, without the system event");
    // From a position: only what comes after it; from the end: only new events.
    let after_first = Position {
        commit: first.position.commit - 1,
        prepare: first.position.prepare - 1,
    };
    let mut resumed = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default()
                .position(StreamPosition::Position(after_first))
                .filter(no_system.clone()),
        )
        .await;
    let mut live = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default()
                .position(StreamPosition::End)
                .filter(SubscriptionFilter::on_event_type().regex("^C$")),
        )
        .await;
    // A subscription is made on its first call; wait for it before writing.
    assert!(matches!(
        live.next_subscription_event().await?,
        SubscriptionEvent::Confirmed(_)
    ));
    assert!(matches!(
        live.next_subscription_event().await?,
        SubscriptionEvent::CaughtUp(_)
    ));
    client
        .append_to_stream("t", &Default::default(), vec![event("C", b"3"), event("D", b"4")])
        .await?;
    assert_eq!(from_start.next().await?.get_original_event().event_type, "C");
    assert_eq!(from_start.next().await?.get_original_event().event_type, "D");
    assert_eq!(resumed.next().await?.get_original_event().event_type, "B");
    assert_eq!(resumed.next().await?.get_original_event().event_type, "C");
    assert_eq!(live.next().await?.get_original_event().event_type, "C");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_append_writes_nothing_and_a_finished_one_everything() -> TestResult {
    let (_server, client) = connect().await?;
    let payload: &'static [u8] = Box::leak(vec![b'p'; 64 * 1024].into_boxed_slice());
    for round in 0..20u64 {
        let stream = format!("cancelled-{round}");
        let batch: Vec<EventData> = (0..16).map(|_| event("Chunk", payload)).collect();
        let after = std::time::Duration::from_micros(round * 997 % 20_000);
        let _ = tokio::time::timeout(
            after,
            client.append_to_stream(stream.as_str(), &Default::default(), batch),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let written = match client.read_stream(stream.as_str(), &Default::default()).await {
            Ok(read) => drain(read).await.map(|events| events.len()).unwrap_or(0),
            Err(_) => 0,
        };
        assert!(
            written == 0 || written == 16,
            "round {round}: {written} of 16 events were written"
        );
    }
    Ok(())
}

#[tokio::test]
async fn batch_appends_write_each_batch_whole_through_the_same_rules() -> TestResult {
    let (_server, client) = connect().await?;
    let batches = client.batch_append(&kurrentdb::BatchAppendOptions::default()).await?;
    let written = batches
        .append_to_stream(
            "batched-1",
            StreamState::NoStream,
            vec![event("A", b"1"), event("B", b"2"), event("C", b"3")],
        )
        .await?;
    assert_eq!(written.current_revision(), Some(2));
    let position = written
        .current_position()
        .ok_or("a written batch reports its position")?;
    let read = drain(client.read_stream("batched-1", &ReadStreamOptions::default()).await?).await?;
    let types: Vec<&str> = read
        .iter()
        .map(|e| e.get_original_event().event_type.as_str())
        .collect();
    assert_eq!(types, vec!["A", "B", "C"]);
    assert_eq!(
        read[2].get_original_event().position.commit,
        position.commit,
        "the batch reports its last event"
    );
    // The same expected-state rule as Append: nothing written on a mismatch.
    let refused = batches
        .append_to_stream("batched-1", StreamState::NoStream, vec![event("D", b"4")])
        .await;
    assert!(
        refused.is_err(),
        "a stream that exists is not at no-stream: {refused:?}"
    );
    // A new session (the failed batch ended the last one) goes on at the
    // actual revision.
    let batches = client.batch_append(&kurrentdb::BatchAppendOptions::default()).await?;
    let next = batches
        .append_to_stream("batched-1", StreamState::StreamRevision(2), vec![event("D", b"4")])
        .await?;
    assert_eq!(next.current_revision(), Some(3));
    assert_eq!(
        drain(client.read_stream("batched-1", &ReadStreamOptions::default()).await?)
            .await?
            .len(),
        4
    );
    Ok(())
}

#[tokio::test]
async fn filtered_subscriptions_send_checkpoints_while_nothing_matches() -> TestResult {
    let (_server, client) = connect().await?;
    let noise: Vec<EventData> = (0..10).map(|_| event("Noise", b"")).collect();
    let written = client.append_to_stream("noisy", &Default::default(), noise).await?;
    let wanted = SubscriptionFilter::on_event_type().add_prefix("Wanted").max(3);
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(wanted))
        .await;
    let mut checkpoints = Vec::new();
    loop {
        match subscription.next_subscription_event().await? {
            SubscriptionEvent::Confirmed(_) => {}
            SubscriptionEvent::Checkpoint(position) => checkpoints.push(position.commit),
            SubscriptionEvent::CaughtUp(_) => break,
            other => panic!("nothing matches, yet {other:?}"),
        }
    }
    // Eleven events examined (the system event and the ten), a window of
    // three: a checkpoint after every third, each further along.
    assert_eq!(checkpoints.len(), 3, "{checkpoints:?}");
    assert!(checkpoints.windows(2).all(|w| w[0] < w[1]));
    assert!(checkpoints.iter().all(|c| *c <= written.position.commit));
    // Live, too: three more non-matching events bring one more checkpoint.
    let more: Vec<EventData> = (0..3).map(|_| event("Noise", b"")).collect();
    let later = client.append_to_stream("noisy", &Default::default(), more).await?;
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        subscription.next_subscription_event(),
    )
    .await??;
    match next {
        SubscriptionEvent::Checkpoint(position) => assert!(position.commit <= later.position.commit),
        other => panic!("expected a live checkpoint, got {other:?}"),
    }
    Ok(())
}
