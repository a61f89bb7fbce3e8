//! An effect-runner case for stores that keep checkpoints and parked
//! effects ([`factos::Checkpoints`]).

use std::time::Duration;

use factos::{
    AppendRequest, Checkpoints, EventId, EventStore, EventType, Follow, NewEvent, Query, ReadOptions, Recorded,
    StoredCodec, StoredEvent, StreamId, reactor,
};
use factos_effects::{EffectRunner, Retry};

use crate::CaseResult;

/// One effect per event: its payload.
fn effects() -> impl factos::Reactor<Event = StoredEvent, Effect = Vec<u8>> {
    reactor(|event: &Recorded<StoredEvent>| vec![event.event.event.clone()])
}

/// Appends one `Mail` event per payload to `stream`, one append each.
async fn append_mails<S: EventStore>(store: &S, stream: &str, payloads: &[&[u8]]) -> CaseResult {
    for payload in payloads {
        let event = NewEvent::new(EventId::random(), EventType::new("Mail")?, payload.to_vec());
        store
            .append(AppendRequest::new(StreamId::new(stream)?, vec![event]))
            .await?;
    }
    Ok(())
}

/// A runner on `store` delivers two mails and parks the one the handler
/// keeps refusing; a runner on `restarted` (the same database reached
/// again, as after a restart) goes on from the stored checkpoint, hands
/// nothing over twice, and sees the parked effect with its attempts and
/// error.
pub async fn runners_go_on_from_their_stored_checkpoint<S>(store: &S, restarted: &S) -> CaseResult
where
    S: EventStore + Follow + Checkpoints + Sync,
{
    append_mails(store, "mails", &[b"good", b"bad", b"fine"]).await?;
    let quick = Retry::attempts(2).pauses(Duration::from_millis(1), Duration::from_millis(2));
    let runner = EffectRunner::new(store, "mailer", Query::all(), effects(), StoredCodec).with_retry(quick);
    let report = runner
        .run_available(|_, mail: Vec<u8>| async move {
            if mail == b"bad" {
                Err("refused by the mail server")
            } else {
                Ok(())
            }
        })
        .await?;
    assert_eq!((report.delivered, report.parked), (2, 1));

    let log = restarted.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(
        log.len(),
        3,
        "checkpoints and parked effects stay out of the log: {log:?}"
    );
    let checkpoint = restarted
        .load_checkpoint("mailer")
        .await?
        .ok_or("a stored checkpoint")?;
    assert_eq!(checkpoint.position(), log[2].position);
    let again = EffectRunner::new(restarted, "mailer", Query::all(), effects(), StoredCodec).with_retry(quick);
    let report = again.run_available(|_, _| async { Ok::<(), String>(()) }).await?;
    assert_eq!(
        (report.delivered, report.parked),
        (0, 0),
        "nothing is handed over twice"
    );
    let parked = again.parked().await?;
    assert_eq!(parked.len(), 1);
    assert_eq!(
        (parked[0].key.event, parked[0].position()),
        (log[1].id, log[1].position)
    );
    assert!(!parked[0].retry_requested);
    assert_eq!(
        (parked[0].attempts, parked[0].error.as_str()),
        (2, "refused by the mail server")
    );

    // Saving again keeps the newest checkpoint; an unknown name has none.
    restarted
        .save_checkpoint("mailer", factos::Cursor::new(0, log[0].position))
        .await?;
    assert_eq!(
        restarted.load_checkpoint("mailer").await?.map(|c| c.position()),
        Some(log[0].position)
    );
    assert_eq!(restarted.load_checkpoint("nobody").await?, None);
    Ok(())
}

/// Mails `a`, `b` and `c`; the server refuses `b` and `c`, so both are
/// parked. An operator asks for `b` again: a run while the server still
/// refuses it parks it again with the new error and the attempts added; a
/// second request, once the server accepts, hands it over again with the
/// same key, made again from its event, before the mails that came after
/// it, and removes it. Discarding `c` removes it. Neither request names an
/// effect that is not parked, and a run without requests hands over none.
pub async fn parked_effects_are_retried_or_discarded_on_request<S>(store: &S) -> CaseResult
where
    S: EventStore + Follow + Checkpoints + Sync,
{
    append_mails(store, "retried-mails", &[b"a", b"b", b"c"]).await?;
    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let quick = Retry::attempts(2).pauses(Duration::from_millis(1), Duration::from_millis(2));
    let runner = EffectRunner::new(store, "retrier", Query::all(), effects(), StoredCodec).with_retry(quick);
    let refuse_b_and_c = |_, mail: Vec<u8>| async move { if mail == b"a" { Ok(()) } else { Err("mailbox full") } };
    let report = runner.run_available(refuse_b_and_c).await?;
    assert_eq!((report.delivered, report.parked, report.retried), (1, 2, 0));
    let parked = runner.parked().await?;
    let key = |event: &StoredEvent| factos::EffectKey {
        event: event.id,
        index: 0,
    };
    let (b, c) = (key(&log[1]), key(&log[2]));
    assert_eq!(
        parked
            .iter()
            .map(|p| (p.key, p.position(), p.retry_requested))
            .collect::<Vec<_>>(),
        vec![(b, log[1].position, false), (c, log[2].position, false)]
    );

    assert!(store.retry_parked("retrier", b).await?, "b is parked");
    assert!(!store.retry_parked("retrier", key(&log[0])).await?, "a was delivered");
    assert!(
        !store.retry_parked("someone else", b).await?,
        "another runner parked nothing"
    );
    let flags: Vec<_> = runner.parked().await?.iter().map(|p| p.retry_requested).collect();
    assert_eq!(flags, vec![true, false]);
    let report = runner
        .run_available(|_, _| async { Err::<(), _>("still full") })
        .await?;
    assert_eq!((report.delivered, report.parked, report.retried), (0, 1, 0));
    let parked = runner.parked().await?;
    let b_again = parked.iter().find(|p| p.key == b).ok_or("b is parked again")?;
    assert_eq!(
        (b_again.attempts, b_again.error.as_str(), b_again.retry_requested),
        (4, "still full", false)
    );
    let c_still = parked.iter().find(|p| p.key == c).ok_or("c is still parked")?;
    assert_eq!((c_still.attempts, c_still.error.as_str()), (2, "mailbox full"));

    append_mails(store, "retried-mails", &[b"d"]).await?;
    assert!(store.retry_parked("retrier", b).await?);
    let mut handed = Vec::new();
    let report = runner
        .run_available(|key, mail: Vec<u8>| {
            handed.push((key, mail));
            async { Ok::<(), String>(()) }
        })
        .await?;
    assert_eq!((report.delivered, report.parked, report.retried), (2, 0, 1));
    assert_eq!(handed[0], (b, b"b".to_vec()), "b again, with its key, first");
    assert_eq!(handed[1].1, b"d".to_vec());
    let parked = runner.parked().await?;
    assert_eq!(parked.iter().map(|p| p.key).collect::<Vec<_>>(), vec![c]);

    assert!(store.discard_parked("retrier", c).await?);
    assert!(!store.discard_parked("retrier", c).await?, "c is gone");
    assert!(!store.retry_parked("retrier", c).await?, "c is gone");
    assert!(runner.parked().await?.is_empty());
    let report = runner.run_available(|_, _| async { Ok::<(), String>(()) }).await?;
    assert_eq!(report, factos_effects::Report::default(), "nothing was asked for");
    Ok(())
}

/// Two sales stored by version 1 of the ticket domain's code (see
/// [`crate::cases::ticket_upcasters`]): an effect runner whose codec
/// upcasts hands over one effect per sale, made from today's shape; a sale
/// stored by newer code stops the runner with a decode error before its
/// checkpoint.
pub async fn runners_decode_events_stored_by_older_code<S>(store: &S) -> CaseResult
where
    S: EventStore + Follow + Checkpoints + Sync,
{
    use factos::JsonCodec;
    use factos::upcast::Upcasting;

    use crate::cases::{sale_of_version_1, sale_stored_by};
    use crate::tickets::{TicketSold, concert_query, concert_stream};

    let old = (0..2).map(|buyer| sale_of_version_1(1, buyer)).collect();
    store.append(AppendRequest::new(concert_stream(1), old)).await?;
    let codec = Upcasting::new(JsonCodec::<TicketSold>::new(), crate::cases::ticket_upcasters()?);
    let thanks = reactor(|sold: &Recorded<TicketSold>| vec![format!("thanks, buyer {}", sold.event.buyer)]);
    let runner = EffectRunner::new(store, "thanks", concert_query(1), thanks, codec);
    let mut sent = Vec::new();
    runner
        .run_available(|_, mail: String| {
            sent.push(mail);
            async { Ok::<(), String>(()) }
        })
        .await?;
    assert_eq!(sent, vec!["thanks, buyer 0", "thanks, buyer 1"]);

    let newer = sale_stored_by(3, r#"{"concert":1,"buyer":2,"seat":"A1"}"#.into(), 1, 2);
    store.append(AppendRequest::new(concert_stream(1), vec![newer])).await?;
    let stopped = runner.run_available(|_, _| async { Ok::<(), String>(()) }).await;
    assert!(
        matches!(stopped, Err(factos_effects::EffectError::Decode { .. })),
        "got {stopped:?}"
    );
    let checkpoint = store.load_checkpoint("thanks").await?.ok_or("a checkpoint")?;
    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(
        checkpoint.position(),
        log[1].position,
        "the checkpoint stays before the newer event"
    );
    Ok(())
}
