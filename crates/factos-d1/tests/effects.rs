//! An effect runner on D1: its checkpoint and parked effects live in the
//! D1 database (the SQLite backend's tables), so a second runner goes on
//! where the first stopped. Skipped, saying why, without the toolchain.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use factos::{
    AppendRequest, Checkpoints, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, Recorded, StoredCodec,
    StoredEvent, StreamId, reactor,
};
use factos_effects::{EffectRunner, Retry};
use factos_test_d1::{D1Client, D1Worker};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One effect per event: its payload.
fn effects() -> impl factos::Reactor<Event = StoredEvent, Effect = Vec<u8>> {
    reactor(|event: &Recorded<StoredEvent>| vec![event.event.event.clone()])
}

#[tokio::test]
async fn a_second_runner_goes_on_from_the_stored_checkpoint_and_sees_what_was_parked() -> TestResult {
    let worker = match D1Worker::shared() {
        Ok(worker) => worker,
        Err(why) => {
            eprintln!("SKIPPED a_second_runner_goes_on_from_the_stored_checkpoint_and_sees_what_was_parked: {why}");
            return Ok(());
        }
    };
    let store = D1Client::fresh(worker).await?;
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

    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let checkpoint = store.load_checkpoint("mailer").await?.ok_or("a stored checkpoint")?;
    assert_eq!(checkpoint.position(), log[2].position);
    let again = EffectRunner::new(&store, "mailer", Query::all(), effects(), StoredCodec).with_retry(quick);
    let report = again.run_available(|_, _| async { Ok::<(), String>(()) }).await?;
    assert_eq!(
        (report.delivered, report.parked),
        (0, 0),
        "nothing is handed over twice"
    );
    let parked = again.parked().await?;
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].key.event, parked[0].position), (log[1].id, log[1].position));
    assert_eq!(
        (parked[0].attempts, parked[0].error.as_str()),
        (2, "refused by the mail server")
    );
    assert_eq!(store.load_checkpoint("nobody").await?, None);
    Ok(())
}
