//! Upcasting: chains of steps per type and version, renames, and the
//! refusals (too new, failing step, a chain without end).

use std::borrow::Cow;

use factos::upcast::{UpcastError, Upcasters, Upcasting, UpcastingError, json, rename_type};
use factos::{
    Codec, EventId, EventType, JsonCodec, JsonEvent, Position, Recorded, StoredEvent, StreamId, StreamRevision,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn stored(
    event_type: &str,
    version: u32,
    payload: serde_json::Value,
) -> Result<StoredEvent, Box<dyn std::error::Error>> {
    Ok(Recorded {
        position: Position::new(1),
        id: EventId::random(),
        stream: StreamId::new("orders")?,
        revision: StreamRevision::FIRST,
        event_type: EventType::new(event_type)?,
        version,
        tags: Default::default(),
        metadata: Default::default(),
        recorded_at: Timestamp::UNIX_EPOCH,
        event: serde_json::to_vec(&payload)?,
    })
}

fn payload(event: &StoredEvent) -> serde_json::Value {
    serde_json::from_slice(&event.event).unwrap_or_default()
}

fn orders() -> Result<Upcasters, factos::InvalidName> {
    Upcasters::new()
        .step("OrderPlaced", 1, json::rename("/amount", "total"))?
        .step("OrderPlaced", 2, json::add("/currency", json!("EUR")))?
        .step(
            "OrderPlaced",
            3,
            json::map("/total", |total| {
                Ok(json!({ "cents": total.as_u64().unwrap_or(0) * 100 }))
            }),
        )?
        .step("OrderWithdrawn", 1, rename_type("OrderCancelled")?)?
        .step("OrderCancelled", 2, json::add("/reason", json!("unknown")))
}

#[test]
fn each_old_version_is_brought_to_the_current_one_step_by_step() -> TestResult {
    let upcasters = orders()?;
    let v1 = stored("OrderPlaced", 1, json!({ "amount": 3 }))?;
    let v3 = stored("OrderPlaced", 3, json!({ "total": 3, "currency": "USD" }))?;
    let up = upcasters.upcast(&v1)?;
    assert_eq!(up.version, 4);
    assert_eq!(payload(&up), json!({ "total": { "cents": 300 }, "currency": "EUR" }));
    assert_eq!(
        (up.position, up.id, &up.stream),
        (v1.position, v1.id, &v1.stream),
        "only type, version and payload change"
    );
    let up = upcasters.upcast(&v3)?;
    assert_eq!(
        payload(&up),
        json!({ "total": { "cents": 300 }, "currency": "USD" }),
        "a step adds a field only where it is missing"
    );
    Ok(())
}

#[test]
fn a_current_event_is_passed_through_without_a_copy() -> TestResult {
    let upcasters = orders()?;
    let current = stored("OrderPlaced", 4, json!({ "total": { "cents": 1 }, "currency": "EUR" }))?;
    assert!(matches!(upcasters.upcast(&current)?, Cow::Borrowed(_)));
    let unknown = stored("Shipped", 7, json!({}))?;
    assert!(
        matches!(upcasters.upcast(&unknown)?, Cow::Borrowed(_)),
        "types without steps are not the upcasters' business"
    );
    Ok(())
}

#[test]
fn a_renamed_type_goes_on_with_the_new_types_steps() -> TestResult {
    let up = orders()?
        .upcast(&stored("OrderWithdrawn", 1, json!({ "order": 9 }))?)?
        .into_owned();
    assert_eq!(up.event_type.as_str(), "OrderCancelled");
    assert_eq!(up.version, 3);
    assert_eq!(payload(&up), json!({ "order": 9, "reason": "unknown" }));
    Ok(())
}

#[test]
fn a_version_newer_than_the_code_knows_is_refused() -> TestResult {
    let upcasters = orders()?.current("Shipped", 2)?;
    let error = upcasters.upcast(&stored("OrderPlaced", 5, json!({}))?).err();
    assert!(
        matches!(
            error,
            Some(UpcastError::TooNew {
                stored: 5,
                known: 4,
                ..
            })
        ),
        "{error:?}"
    );
    let error = upcasters.upcast(&stored("Shipped", 3, json!({}))?).err();
    assert!(
        matches!(
            error,
            Some(UpcastError::TooNew {
                stored: 3,
                known: 2,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(upcasters.upcast(&stored("Shipped", 2, json!({}))?).is_ok());
    Ok(())
}

#[test]
fn a_failing_step_names_its_type_and_version() -> TestResult {
    let error = orders()?.upcast(&stored("OrderPlaced", 1, json!([1, 2]))?).err();
    assert!(
        matches!(&error, Some(UpcastError::Step { event_type, version: 1, .. }) if event_type.as_str() == "OrderPlaced"),
        "{error:?}"
    );
    let error = orders()?
        .upcast(&stored("OrderPlaced", 3, json!({ "currency": "EUR" }))?)
        .err();
    assert!(
        matches!(error, Some(UpcastError::Step { version: 3, .. })),
        "a missing field to map: {error:?}"
    );
    Ok(())
}

#[test]
fn a_chain_longer_than_any_history_is_refused() -> TestResult {
    let upcasters =
        Upcasters::new()
            .step("A", 1, rename_type("B")?)?
            .step("B", 2, |at: &mut factos::upcast::Upcast| {
                at.event_type = EventType::new("A")?;
                Err("never reached".into())
            })?;
    // A1 -> B2 fails in the step: not endless.
    assert!(matches!(
        upcasters.upcast(&stored("A", 1, json!({}))?),
        Err(UpcastError::Step { .. })
    ));
    let mut circle = Upcasters::new();
    for version in 1..=2_000 {
        circle = circle.step(
            if version % 2 == 1 { "A" } else { "B" },
            version,
            rename_type(if version % 2 == 1 { "B" } else { "A" })?,
        )?;
    }
    assert!(matches!(
        circle.upcast(&stored("A", 1, json!({}))?),
        Err(UpcastError::Endless { .. })
    ));
    Ok(())
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum OrderEvent {
    OrderPlaced { total: Cents, currency: String },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Cents {
    cents: u64,
}

impl JsonEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        "OrderPlaced"
    }
    fn tags(&self) -> Vec<String> {
        Vec::new()
    }
    fn version(&self) -> u32 {
        4
    }
}

#[test]
fn the_upcasting_codec_decodes_what_the_first_version_stored_and_encodes_the_current_one() -> TestResult {
    let upcasters = Upcasters::new()
        .step("OrderPlaced", 1, json::rename("/OrderPlaced/amount", "total"))?
        .step("OrderPlaced", 2, json::add("/OrderPlaced/currency", json!("EUR")))?
        .step(
            "OrderPlaced",
            3,
            json::map("/OrderPlaced/total", |t| Ok(json!({ "cents": t }))),
        )?;
    let codec = Upcasting::new(JsonCodec::<OrderEvent>::new(), upcasters);
    let old = stored("OrderPlaced", 1, json!({ "OrderPlaced": { "amount": 250 } }))?;
    let expected = OrderEvent::OrderPlaced {
        total: Cents { cents: 250 },
        currency: "EUR".into(),
    };
    assert_eq!(codec.decode(&old)?, expected);
    assert_eq!(codec.encode(&expected)?.version, 4);
    let broken = stored("OrderPlaced", 4, json!({ "OrderPlaced": { "total": "x" } }))?;
    assert!(matches!(codec.decode(&broken), Err(UpcastingError::Codec(_))));
    let newer = stored("OrderPlaced", 5, json!({}))?;
    assert!(matches!(
        codec.decode(&newer),
        Err(UpcastingError::Upcast(UpcastError::TooNew { .. }))
    ));
    Ok(())
}
