//! Upcasting on a real backend: events stored by an older version of the
//! ticket domain's code decode to today's shape through every path that
//! decodes (reads, dispatch, subscriptions), and an event written by newer
//! code is refused with a typed error.

use factos::upcast::{UpcastError, Upcasters, Upcasting, UpcastingError, json};
use factos::{
    AppendRequest, Dispatcher, Error, EventId, JsonCodec, LocalEventStore, LocalFollow, NewEvent, Query, ReadOptions,
    Subscription, decode, decode_delivered,
};

use crate::fixtures::{CaseResult, tag, ty};
use crate::tickets::{Buy, SoldOut, TicketSold, box_office, concert_query, concert_stream};

/// The upcasters of the ticket domain: version 1 of `TicketSold` called its
/// fields `show` and `customer` (version 2, today's, `concert` and `buyer`).
///
/// # Errors
///
/// Never: the type name is valid.
pub fn ticket_upcasters() -> Result<Upcasters, factos::InvalidName> {
    Upcasters::new().step("TicketSold", 1, |at| {
        json::rename("/show", "concert")(at)?;
        json::rename("/customer", "buyer")(at)
    })
}

/// A sale of `buyer` for `concert` as the code of `version` stored it,
/// with `payload`.
pub fn sale_stored_by(version: u32, payload: String, concert: u32, buyer: u32) -> NewEvent {
    NewEvent::new(EventId::random(), ty("TicketSold"), payload.into_bytes())
        .with_version(version)
        .with_tags([tag(&format!("concert:{concert}")), tag(&format!("buyer:{buyer}"))])
}

/// A sale of `buyer` for `concert` as version 1 of the code stored it.
pub fn sale_of_version_1(concert: u32, buyer: u32) -> NewEvent {
    sale_stored_by(1, format!(r#"{{"show":{concert},"customer":{buyer}}}"#), concert, buyer)
}

/// Two sales stored by version 1 of the code, then today's code with
/// upcasting: reading and decoding, a stream decision folding them (it
/// would stop at a decode error without upcasting) and a subscription all
/// see today's shape; a sale stored by a version newer than the code is
/// a typed `TooNew` error on every path.
pub async fn events_stored_by_older_code_decode_through_every_path<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    let old = (0..2).map(|buyer| sale_of_version_1(1, buyer)).collect();
    store.append(AppendRequest::new(concert_stream(1), old)).await?;
    let codec = Upcasting::new(JsonCodec::<TicketSold>::new(), ticket_upcasters()?);
    let expected = |buyer| TicketSold { concert: 1, buyer };

    // Without the upcasters the old payloads do not decode: the case
    // would prove nothing otherwise.
    let stored = store.read(&concert_query(1), ReadOptions::forwards()).await?;
    assert!(decode(&JsonCodec::<TicketSold>::new(), stored[0].clone()).is_err());

    // Reads.
    let decoded = stored
        .into_iter()
        .map(|record| decode(&codec, record).map(|r| r.event))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(decoded, vec![expected(0), expected(1)]);

    // Dispatch: the decider folds both old sales, so the third sale is the
    // last of three seats and a fourth is refused.
    let dispatcher = Dispatcher::new(store, codec.clone());
    let sold = dispatcher
        .dispatch_stream(&box_office(3), &Buy { concert: 1, buyer: 2 }, &concert_stream(1))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(sold[0].version, 2, "today's code writes today's version");
    let refused = dispatcher
        .dispatch_stream(&box_office(3), &Buy { concert: 1, buyer: 3 }, &concert_stream(1))
        .await;
    assert!(matches!(refused, Err(Error::Domain(SoldOut))), "got {refused:?}");

    // Subscriptions.
    let delivered = Subscription::new(store, concert_query(1), None).catch_up().await?;
    let followed: Vec<TicketSold> = decode_delivered(&codec, delivered)?
        .into_iter()
        .map(|d| d.record.event)
        .collect();
    assert_eq!(followed, vec![expected(0), expected(1), expected(2)]);

    // Newer code than this: refused, not guessed at.
    let newer = sale_stored_by(3, r#"{"concert":2,"buyer":0,"seat":"A1"}"#.into(), 2, 0);
    store.append(AppendRequest::new(concert_stream(2), vec![newer])).await?;
    let stored = store.read(&concert_query(2), ReadOptions::forwards()).await?;
    let error = decode(&codec, stored[0].clone())
        .err()
        .ok_or("a newer version decoded")?;
    let source = error.source.downcast_ref::<UpcastingError<factos::JsonCodecError>>();
    assert!(
        matches!(
            source,
            Some(UpcastingError::Upcast(UpcastError::TooNew {
                stored: 3,
                known: 2,
                ..
            }))
        ),
        "got {error:?}"
    );
    let refused = dispatcher
        .dispatch_stream(&box_office(3), &Buy { concert: 2, buyer: 1 }, &concert_stream(2))
        .await;
    assert!(matches!(refused, Err(Error::Decode(_))), "got {refused:?}");
    let all = Subscription::new(store, Query::all(), None).catch_up().await?;
    assert!(decode_delivered(&codec, all).is_err());
    Ok(())
}
