//! What is particular to D1, on a real local D1 in `workerd`: payloads byte
//! for byte up to 1 MiB, batches that span several statements of one D1
//! batch (and stay atomic), D1's limits as typed errors, and a capacity
//! race of 32 concurrent HTTP buyers. Skipped, saying why, without the
//! toolchain (see `conformance.rs`).
#![cfg(not(target_arch = "wasm32"))]

use factos::{
    AppendCondition, AppendRequest, Dispatcher, Error, EventId, EventStore, EventType, InvalidAppend, JsonCodec,
    JsonEvent, NewEvent, Query, QueryItem, QueryLimit, ReadOptions, RetryPolicy, StoreError, StreamId, Tag, decider,
};
use factos_test_d1::{D1Client, D1Worker};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A fresh store, or `None` (with the reason printed) without the toolchain.
async fn fresh_store(test: &str) -> Result<Option<D1Client>, Box<dyn std::error::Error + Send + Sync>> {
    match D1Worker::shared() {
        Ok(worker) => Ok(Some(D1Client::fresh(worker).await?)),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            Ok(None)
        }
    }
}

fn event(
    event_type: &str,
    tags: &[String],
    data: Vec<u8>,
) -> Result<NewEvent, Box<dyn std::error::Error + Send + Sync>> {
    let tags = tags.iter().map(Tag::new).collect::<Result<Vec<_>, _>>()?;
    Ok(NewEvent::new(EventId::random(), EventType::new(event_type)?, data).with_tags(tags))
}

#[tokio::test]
async fn payloads_round_trip_byte_for_byte_up_to_a_mebibyte() -> TestResult {
    let Some(store) = fresh_store("payloads_round_trip_byte_for_byte_up_to_a_mebibyte").await? else {
        return Ok(());
    };
    let every_byte: Vec<u8> = (0..=255).collect();
    let mebibyte: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let payloads = [b"\xff\xfe\x00not utf-8".to_vec(), every_byte, Vec::new(), mebibyte];
    for payload in payloads {
        let committed = store
            .append(AppendRequest::new(
                StreamId::new("p")?,
                vec![event("Blob", &[], payload.clone())?],
            ))
            .await?;
        let read = store
            .read(
                &Query::all(),
                ReadOptions::forwards().from(committed.records[0].position).limit(1),
            )
            .await?;
        assert_eq!(read[0].event.len(), payload.len());
        assert!(read[0].event == payload, "the payload must come back byte for byte");
        assert_eq!(read, committed.records);
    }
    Ok(())
}

#[tokio::test]
async fn a_large_batch_spans_statements_and_stays_atomic() -> TestResult {
    let Some(store) = fresh_store("a_large_batch_spans_statements_and_stays_atomic").await? else {
        return Ok(());
    };
    let tags = |i: usize| (0..5).map(|t| format!("t{t}:{}", i % 7)).collect::<Vec<_>>();
    let boundary = Query::from(QueryItem::types([EventType::new("Line")?]).with_tags([Tag::new("order:1")?]));
    let batch = (0..100)
        .map(|i| {
            let mut tags = tags(i);
            tags.push("order:1".into());
            event("Line", &tags, format!("{i}").into_bytes())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let request =
        AppendRequest::new(StreamId::new("order-1")?, batch).condition(AppendCondition::new(boundary.clone(), None));
    let committed = store.append(request.clone()).await?;
    assert_eq!(committed.records.len(), 100);
    assert!(committed.records.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(store.read(&boundary, ReadOptions::forwards()).await?, committed.records);
    let t3 = Query::from(QueryItem::tags([Tag::new("t3:4")?]));
    assert_eq!(
        store.read(&t3, ReadOptions::forwards()).await?.len(),
        (0..100).filter(|i| i % 7 == 4).count()
    );
    // A re-send returns the original records, writing nothing.
    assert_eq!(store.append(request).await?, committed);

    // The same condition again: refused, and not one of 60 events written.
    let more = (0..60)
        .map(|i| event("Line", &["order:1".into()], vec![i]))
        .collect::<Result<Vec<_>, _>>()?;
    let late = AppendRequest::new(StreamId::new("order-1")?, more).condition(AppendCondition::new(
        boundary.clone(),
        committed.records.first().map(|r| r.position),
    ));
    assert!(matches!(store.append(late).await, Err(StoreError::ConditionFailed(_))));
    // A taken id in the third statement of the batch rolls all of it back.
    let mut mixed = (0..40)
        .map(|i| event("Other", &[], vec![i]))
        .collect::<Result<Vec<_>, _>>()?;
    mixed[35].id = committed.records[50].id;
    match store.append(AppendRequest::new(StreamId::new("other")?, mixed)).await {
        Err(StoreError::DuplicateEventId(duplicate)) => assert_eq!(duplicate.id, committed.records[50].id),
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 100);
    Ok(())
}

#[tokio::test]
async fn d1_limits_are_typed_errors() -> TestResult {
    let Some(store) = fresh_store("d1_limits_are_typed_errors").await? else {
        return Ok(());
    };
    let too_large = event("Blob", &[], vec![7; 2_000_001])?;
    let id = too_large.id;
    match store
        .append(AppendRequest::new(StreamId::new("p")?, vec![too_large]))
        .await
    {
        Err(StoreError::InvalidAppend(InvalidAppend::TooLarge { id: refused, limit, .. })) => {
            assert_eq!((refused, limit), (id, 2_000_000));
        }
        other => panic!("expected InvalidAppend::TooLarge, got {other:?}"),
    }
    // At the query limits, a query fits D1's 100 parameters: it travels as
    // one JSON parameter.
    let wide = Query::from(QueryItem::tags(
        (0..100)
            .map(|i| Tag::new(format!("t{i}")))
            .collect::<Result<Vec<_>, _>>()?,
    ));
    assert!(store.read(&wide, ReadOptions::forwards()).await?.is_empty());
    // Past them, the core refuses it before anything is sent.
    let wider = Query::from(QueryItem::tags(
        (0..101)
            .map(|i| Tag::new(format!("t{i}")))
            .collect::<Result<Vec<_>, _>>()?,
    ));
    match store.read(&wider, ReadOptions::forwards()).await {
        Err(StoreError::QueryTooLarge(too_large)) => assert_eq!(too_large.limit, QueryLimit::TagsPerItem),
        other => panic!("expected QueryTooLarge, got {other:?}"),
    }
    let condition = AppendCondition::new(wide, None);
    match store
        .append(AppendRequest::new(StreamId::new("p")?, vec![event("E", &[], vec![])?]).condition(condition))
        .await
    {
        Ok(committed) => assert_eq!(committed.records.len(), 1),
        other => panic!("a condition at the query limits must be checked, got {other:?}"),
    }
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct TicketSold {
    concert: u32,
    buyer: u32,
}

impl JsonEvent for TicketSold {
    fn event_type(&self) -> &'static str {
        "TicketSold"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("concert:{}", self.concert), format!("buyer:{}", self.buyer)]
    }
}

fn concert(concert: u32) -> Result<Query, Box<dyn std::error::Error + Send + Sync>> {
    Ok(Query::from(
        QueryItem::types([EventType::new("TicketSold")?]).with_tags([Tag::new(format!("concert:{concert}"))?]),
    ))
}

/// Buys a ticket for `concert` (capacity `capacity`) as `buyer`.
async fn buy(
    store: D1Client,
    concert_id: u32,
    buyer: u32,
    capacity: usize,
    retry: RetryPolicy,
) -> Result<bool, String> {
    let box_office = decider(
        0usize,
        move |buyer: &u32, sold: &usize| {
            if *sold < capacity {
                Ok(vec![TicketSold {
                    concert: concert_id,
                    buyer: *buyer,
                }])
            } else {
                Err(String::from("sold out"))
            }
        },
        |sold, _: &TicketSold| sold + 1,
    );
    let query = concert(concert_id).map_err(|e| e.to_string())?;
    let stream = StreamId::new(format!("sales-{concert_id}-{buyer}")).map_err(|e| e.to_string())?;
    match Dispatcher::new(&store, JsonCodec::new())
        .with_retry(retry)
        .dispatch_context(&box_office, &buyer, &query, &stream)
        .await
    {
        Ok(_) => Ok(true),
        Err(Error::Domain(_)) => Ok(false),
        Err(other) => Err(other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_buyers_never_oversell_and_unrelated_concerts_never_conflict() -> TestResult {
    let test = "thirty_two_concurrent_buyers_never_oversell_and_unrelated_concerts_never_conflict";
    let Some(store) = fresh_store(test).await? else {
        return Ok(());
    };
    let buyers: Vec<_> = (0..32)
        .map(|buyer| tokio::spawn(buy(store.clone(), 1, buyer, 10, RetryPolicy::default())))
        .collect();
    let mut accepted = 0;
    for buyer in buyers {
        accepted += usize::from(buyer.await??);
    }
    assert_eq!(accepted, 10, "exactly the capacity is sold");
    let sales = store.read(&concert(1)?, ReadOptions::forwards()).await?;
    assert_eq!(sales.len(), 10, "every accepted sale is stored, once");
    let mut ids: Vec<_> = sales.iter().map(|s| s.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 10);

    // One buyer per concert, all at once, none allowed a retry: unrelated
    // contexts never conflict.
    let unrelated: Vec<_> = (100..116)
        .map(|concert| tokio::spawn(buy(store.clone(), concert, 1, 1, RetryPolicy::none())))
        .collect();
    for buyer in unrelated {
        assert!(
            buyer.await??,
            "a sale on its own concert must succeed at the first attempt"
        );
    }
    Ok(())
}

#[tokio::test]
async fn long_reads_are_paged_without_losing_or_repeating_an_event() -> TestResult {
    let Some(store) = fresh_store("long_reads_are_paged_without_losing_or_repeating_an_event").await? else {
        return Ok(());
    };
    let mut committed = Vec::new();
    for batch in 0..11 {
        let events = (0..100)
            .map(|i| {
                event(
                    if i % 2 == 0 { "Even" } else { "Odd" },
                    &[format!("b:{batch}")],
                    vec![i],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        committed.extend(
            store
                .append(AppendRequest::new(StreamId::new("long")?, events))
                .await?
                .records,
        );
    }
    // 1,100 events: more than two pages of 500 rows.
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?, committed);
    let mut newest_first = committed.clone();
    newest_first.reverse();
    assert_eq!(store.read(&Query::all(), ReadOptions::backwards()).await?, newest_first);
    let from = committed[150].position;
    assert_eq!(
        store
            .read(&Query::all(), ReadOptions::forwards().from(from).limit(700))
            .await?,
        committed[150..850]
    );
    let odd = Query::from(QueryItem::types([EventType::new("Odd")?]));
    assert_eq!(store.read(&odd, ReadOptions::forwards()).await?.len(), 550);
    let stream = store
        .read_stream(&StreamId::new("long")?, factos::StreamRevision::new(90))
        .await?;
    assert_eq!(stream, committed[90..]);
    Ok(())
}
