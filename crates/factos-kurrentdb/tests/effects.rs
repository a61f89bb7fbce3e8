//! Effect runners on KurrentDB: checkpoints and parked effects live in the
//! database (streams of their own, hidden from the application's log), so
//! another client, as after a restart, goes on where the first stopped.

mod support;

use std::time::Duration;

use factos::{
    AppendRequest, Checkpoints, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, Recorded, StoredCodec,
    StoredEvent, StreamId, reactor,
};
use factos_effects::{EffectRunner, Retry};
use factos_kurrentdb::KurrentStore;
use support::fresh_target;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One effect per event: its payload.
fn effects() -> impl factos::Reactor<Event = StoredEvent, Effect = Vec<u8>> {
    reactor(|event: &Recorded<StoredEvent>| vec![event.event.event.clone()])
}

#[tokio::test]
async fn a_runner_on_another_client_goes_on_from_the_stored_checkpoint_and_sees_what_was_parked() -> TestResult {
    let (url, prefix) = fresh_target().await;
    let open = || -> Result<KurrentStore, factos_kurrentdb::KurrentError> {
        let store = KurrentStore::connect(&url)?;
        match &prefix {
            Some(prefix) => store.scoped(prefix),
            None => Ok(store),
        }
    };
    let store = open()?;
    for payload in [b"good".as_slice(), b"bad", b"fine"] {
        let event = NewEvent::new(EventId::random(), EventType::new("Mail")?, payload.to_vec());
        store
            .append(AppendRequest::new(StreamId::new("mails")?, vec![event]))
            .await?;
    }
    let quick = Retry::attempts(2).pauses(Duration::from_millis(1), Duration::from_millis(2));
    let runner = EffectRunner::new(&store, "mailer", Query::all(), effects(), StoredCodec).with_retry(quick);
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

    let restarted = open()?;
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
    let runner = EffectRunner::new(&restarted, "mailer", Query::all(), effects(), StoredCodec).with_retry(quick);
    let again = runner.run_available(|_, _| async { Ok::<(), String>(()) }).await?;
    assert_eq!((again.delivered, again.parked), (0, 0), "nothing is handed over twice");
    let parked = runner.parked().await?;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key.event, log[1].id);
    assert_eq!(
        (parked[0].attempts, parked[0].error.as_str()),
        (2, "refused by the mail server")
    );
    assert_eq!(parked[0].position, log[1].position);

    // Saving again keeps one stored checkpoint, the newest.
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
