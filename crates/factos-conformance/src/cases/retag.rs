//! Tags added to history ([`factos::retag`]): every read path sees them,
//! a retag resumes and never adds a tag twice, and a decision never sees
//! part of one or commits after one on a context read before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use factos::retag::{LocalTagHistory, Retag, RetagError};
use factos::{
    AppendRequest, DecisionScope, Dispatcher, EventId, JsonCodec, JsonEvent, LocalCheckpoints, LocalEventStore,
    LocalFollow, NewEvent, Query, ReadOptions, StoredEvent, Tag, decider,
};
use serde::{Deserialize, Serialize};

use crate::fixtures::{CaseResult, item, query, stream, tag, ty};
use crate::tickets::SoldOut;

/// An order, as today's code writes it: tagged with its customer. Older
/// code wrote the same payload with only the order tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order's number.
    pub order: u32,
    /// Who placed it.
    pub customer: u32,
    /// How many orders of the customer the decision saw.
    pub seen: u32,
}

impl JsonEvent for OrderPlaced {
    fn event_type(&self) -> &'static str {
        "OrderPlaced"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("order:{}", self.order), format!("customer:{}", self.customer)]
    }
}

/// The orders of `customer`: the context of the per-customer rule.
pub fn customer_query(customer: u32) -> Query {
    query([item(&["OrderPlaced"], &[&format!("customer:{customer}")])])
}

/// Order `order` of `customer` as code from before the customer tag wrote
/// it: the same payload, only the order tag.
pub fn order_without_customer_tag(order: u32, customer: u32) -> NewEvent {
    let payload = format!(r#"{{"order":{order},"customer":{customer},"seen":0}}"#);
    NewEvent::new(EventId::random(), ty("OrderPlaced"), payload.into_bytes())
        .with_tags([tag(&format!("order:{order}"))])
}

/// The application's function: an order's customer tag, from its payload.
///
/// # Errors
///
/// When the payload is not an order.
pub fn customer_tag(event: &StoredEvent) -> Result<Vec<Tag>, Box<dyn std::error::Error + Send + Sync>> {
    let order: OrderPlaced = serde_json::from_slice(&event.event)?;
    Ok(vec![Tag::new(format!("customer:{}", order.customer))?])
}

async fn place_old_orders<S: LocalEventStore>(store: &S, customers: &[u32]) -> CaseResult {
    for (order, customer) in (1..).zip(customers) {
        let request = AppendRequest::new(
            stream(&format!("order-{order}")),
            vec![order_without_customer_tag(order, *customer)],
        );
        store.append(request).await?;
    }
    Ok(())
}

/// The per-customer rule: places an order (command: order, customer),
/// recording in the event how many orders of the customer it saw.
pub fn order_rule()
-> impl factos::Decider<Command = (u32, u32), State = u32, Event = OrderPlaced, Error = SoldOut> + Clone {
    decider(
        0u32,
        |&(order, customer): &(u32, u32), seen: &u32| {
            Ok::<_, SoldOut>(vec![OrderPlaced {
                order,
                customer,
                seen: *seen,
            }])
        },
        |seen, _: &OrderPlaced| seen + 1,
    )
}

/// What placing an order returns.
pub type Placed = Result<Vec<factos::Recorded<OrderPlaced>>, factos::Error<SoldOut>>;

/// Places order `order` of `customer` through the per-customer rule.
async fn place_order<S: LocalEventStore>(store: &S, order: u32, customer: u32) -> Placed {
    Dispatcher::new(store, JsonCodec::<OrderPlaced>::new())
        .dispatch_context(
            &order_rule(),
            &(order, customer),
            &customer_query(customer),
            &stream(&format!("order-{order}")),
        )
        .await
}

/// Orders written without a customer tag get it from a retag: reads by
/// tag, stream reads, followers and decisions all see it, reads report it
/// among the event's tags, and running the retag again adds nothing.
pub async fn tags_added_to_history_are_seen_by_every_read_path<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow + LocalCheckpoints + LocalTagHistory,
{
    place_old_orders(store, &[1, 2, 1]).await?;
    assert!(
        store
            .read(&customer_query(1), ReadOptions::forwards())
            .await?
            .is_empty()
    );

    let mut retag = Retag::new("customers", customer_tag).batch(2);
    let report = retag.run(store).await?;
    assert_eq!((report.examined, report.staged, report.added), (3, 3, 3), "{report:?}");

    let read = store.read(&customer_query(1), ReadOptions::forwards()).await?;
    let orders: Vec<_> = read.iter().map(|e| e.position.value()).collect();
    assert_eq!(orders.len(), 2, "reads by the added tag find both orders of customer 1");
    assert!(
        read.iter()
            .all(|e| e.tags.contains(&tag("customer:1")) && e.tags.len() == 2)
    );
    let first = store
        .read_stream(&stream("order-1"), factos::StreamRevision::FIRST)
        .await?;
    assert!(
        first[0].tags.contains(&tag("customer:1")),
        "a stream read reports the added tag"
    );
    let followed = store.read_after(&customer_query(1), None, 100).await?;
    assert_eq!(followed.events.len(), 2, "followers match on the added tag");

    let placed = place_order(store, 4, 1).await?;
    assert_eq!(
        placed[0].event.seen, 2,
        "a decision's context holds the retagged orders"
    );

    let again = retag.run(store).await?;
    assert_eq!(
        (again.staged, again.added),
        (0, 0),
        "a second run adds nothing: {again:?}"
    );
    Ok(())
}

/// A retag whose function fails stops with the event's position and
/// publishes nothing; run again, it resumes from its checkpoint and
/// publishes what both runs staged.
pub async fn a_retag_resumes_from_its_checkpoint_and_publishes_what_it_staged<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow + LocalCheckpoints + LocalTagHistory,
{
    place_old_orders(store, &[1, 1, 1, 1, 1]).await?;
    let orders = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let broken_at = orders[3].position;
    let failing = |event: &StoredEvent| match event.position == broken_at {
        true => Err("the payload cannot be read".into()),
        false => customer_tag(event),
    };
    let stopped = Retag::new("customers", failing).batch(2).run(store).await;
    match stopped {
        Err(RetagError::Tags { position, .. }) => assert_eq!(position, broken_at),
        other => panic!("expected the function's failure at {broken_at}, got {other:?}"),
    }
    assert!(
        store
            .read(&customer_query(1), ReadOptions::forwards())
            .await?
            .is_empty(),
        "staged tags are invisible until published"
    );

    let report = Retag::new("customers", customer_tag).batch(2).run(store).await?;
    assert_eq!(
        report.examined, 3,
        "the second run resumes after the first batch: {report:?}"
    );
    assert_eq!(report.added, 5, "it publishes the first run's tags too: {report:?}");
    assert_eq!(store.read(&customer_query(1), ReadOptions::forwards()).await?.len(), 5);
    Ok(())
}

/// A decision reads its context, tags are published meanwhile, then it
/// appends: it may commit only if the publish waited for it (then the
/// decision came first); a publish that finished before the append makes
/// the append a conflict. Deciding again sees the tagged orders. The
/// context holds an order placed after the old ones, so the append's
/// condition starts after every retagged event: the condition alone
/// cannot catch the publish.
pub async fn a_decision_that_read_before_a_publish_never_commits_after_it<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalTagHistory,
{
    place_old_orders(store, &[1, 1]).await?;
    let old = store.read(&Query::all(), ReadOptions::forwards()).await?;
    store
        .stage_tags(
            "customers",
            old.iter().map(|e| (e.position, tag("customer:1"))).collect(),
        )
        .await?;
    place_order(store, 3, 1).await?;
    let scope = DecisionScope::Query(customer_query(1));
    let (decision, seen) = store.begin_decision(&scope).await?;
    assert_eq!(seen.len(), 1, "staged tags are invisible");

    let published = AtomicBool::new(false);
    let publish = async {
        let added = store.publish_tags("customers").await;
        published.store(true, Ordering::SeqCst);
        added
    };
    let commit = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let published_first = published.load(Ordering::SeqCst);
        let new = NewEvent::new(
            EventId::random(),
            ty("OrderPlaced"),
            br#"{"order":4,"customer":1,"seen":1}"#.to_vec(),
        )
        .with_tags([tag("order:4"), tag("customer:1")]);
        let request = AppendRequest::new(stream("order-4"), vec![new])
            .condition(factos::AppendCondition::new(customer_query(1), Some(seen[0].position)));
        (published_first, store.commit_decision(decision, request).await)
    };
    let (added, (published_first, committed)) = tokio::join!(publish, commit);
    assert_eq!(added?, 2);
    match (published_first, &committed) {
        (true, Err(conflict)) => assert!(conflict.is_conflict(), "expected a conflict, got {conflict}"),
        (true, Ok(_)) => panic!("a decision that read before a publish committed after it"),
        (false, _) => {
            committed.as_ref().map_err(|e| e.to_string())?;
        }
    }
    let placed = place_order(store, 5, 1).await?;
    let expected = if committed.is_ok() { 4 } else { 3 };
    assert_eq!(placed[0].event.seen, expected, "deciding again sees the tagged orders");
    Ok(())
}

/// Four dispatchers place orders of one customer through the per-customer
/// rule while a retag tags the customer's six old orders. Every accepted
/// decision saw either none of the old orders (it came before the publish)
/// or all of them (after it), never a part; and no decision that saw none
/// committed after one that saw all.
pub async fn a_retag_under_concurrent_dispatches_is_seen_whole_or_not_at_all<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow + LocalCheckpoints + LocalTagHistory + Sync,
{
    retag_under_dispatches(store, |order, customer| place_order(store, order, customer)).await
}

/// Runs a retag while 4 dispatchers place orders of customer 1 with
/// `place`, then checks that every accepted decision saw none or all of the
/// retagged orders, and that none that saw none committed after one that
/// saw all.
pub async fn retag_under_dispatches<S, P, F>(store: &S, place: P) -> CaseResult
where
    S: LocalEventStore + LocalFollow + LocalCheckpoints + LocalTagHistory + Sync,
    P: Fn(u32, u32) -> F,
    F: Future<Output = Placed>,
{
    const OLD: u32 = 6;
    const DISPATCHERS: u32 = 4;
    const ORDERS: u32 = 15;
    place_old_orders(store, &[1; OLD as usize]).await?;
    let place = &place;
    let dispatchers = (0..DISPATCHERS).map(|d| async move {
        for n in 0..ORDERS {
            place(100 + d * ORDERS + n, 1).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    });
    let retag = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Retag::new("customers", customer_tag).batch(2).run(store).await
    };
    let (dispatched, retagged) = tokio::join!(futures::future::join_all(dispatchers), retag);
    dispatched.into_iter().collect::<Result<Vec<()>, String>>()?;
    assert_eq!(retagged?.added, u64::from(OLD));

    let context = store.read(&customer_query(1), ReadOptions::forwards()).await?;
    assert_eq!(context.len() as u32, OLD + DISPATCHERS * ORDERS);
    let mut saw_all_before = false;
    for (new_before, event) in context.iter().skip(OLD as usize).enumerate() {
        let placed: OrderPlaced = serde_json::from_slice(&event.event)?;
        let new_before = new_before as u32;
        let saw_all = match placed.seen {
            seen if seen == new_before => false,
            seen if seen == new_before + OLD => true,
            seen => panic!(
                "the order at {} saw {seen} orders: {new_before} new ones and a part of the {OLD} retagged",
                event.position
            ),
        };
        assert!(
            saw_all || !saw_all_before,
            "the order at {} was decided before the publish but committed after a decision that saw it",
            event.position
        );
        saw_all_before |= saw_all;
    }
    Ok(())
}

/// The integrity check over a retagged log finds nothing wrong: the tag
/// index holds a row for every added tag and every read reports it (a read
/// that left added tags out would make each of their rows a stray).
pub async fn the_integrity_check_covers_tags_added_to_history<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow + LocalCheckpoints + LocalTagHistory + factos::admin::LocalAdmin,
{
    place_old_orders(store, &[1, 2, 1]).await?;
    Retag::new("customers", customer_tag).run(store).await?;
    let events = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let rows = store.tag_rows(None, None).await?;
    assert_eq!(rows.len(), 6, "an order tag and a customer tag per event: {rows:?}");
    let problems = factos::admin::IntegrityCheck::new().page(&events, &rows);
    assert!(problems.is_empty(), "{problems:?}");
    Ok(())
}
