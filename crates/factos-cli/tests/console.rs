//! The console of `factos serve` in a real browser (Debian's Chromium,
//! driven by `playwright-core` from `tests/console/console.mjs`), against a
//! real server on SQLite and on PostgreSQL: the query builder finds exactly
//! what `factos read` finds, the live view shows an appended event within a
//! second, the chart and the checkpoints render, a parked effect can be
//! retried (an effect runner running beside the server hands it over
//! again) or discarded, a wrong token sees nothing, and nothing is
//! requested from anywhere but the server.
//!
//! Skipped, saying why, without Chromium or the script's `node_modules`
//! (`npm ci` in `tests/console`), unless `FACTOS_REQUIRE_BROWSER` is set
//! (CI sets it). With `FACTOS_CONSOLE_SCREENSHOTS=<dir>` the SQLite run
//! saves its screenshots there (the README's come from it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use factos::{Checkpoints, Cursor, EventStore, Follow, Position, Query, Recorded, StoredCodec, StoredEvent, reactor};
use factos_effects::{EffectRunner, Retry};
use serde_json::Value;
use support::{Scratch, Server, TestResult, ok, postgres_store, refs, sqlite_store};

const TOKEN: &str = "console-t0ken";

/// The script's directory, when it can run here.
fn browser_ready() -> Result<Option<PathBuf>, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let chromium =
        std::env::var_os("FACTOS_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let missing = if !chromium.exists() {
        Some("no Chromium (apt-get install chromium)")
    } else if !dir.join("node_modules/playwright-core").exists() {
        Some("no playwright-core (npm ci in crates/factos-cli/tests/console)")
    } else if Command::new("node").arg("--version").output().is_err() {
        Some("no node")
    } else {
        None
    };
    match missing {
        None => Ok(Some(dir)),
        Some(why) if std::env::var_os("FACTOS_REQUIRE_BROWSER").is_some() => {
            Err(format!("FACTOS_REQUIRE_BROWSER is set but there is {why}").into())
        }
        Some(why) => {
            eprintln!("SKIPPED: {why}");
            Ok(None)
        }
    }
}

/// The positions `factos read` finds for the query the script builds,
/// newest first.
fn read_positions(store: &[String]) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let mut args = vec!["read"];
    args.extend(refs(store));
    args.extend([
        "--type",
        "Placed",
        "--tag",
        "order:1",
        "--item",
        "--type",
        "Shipped",
        "--tag",
        "order:2",
        "--tag",
        "batch:x",
        "--all",
        "--backwards",
        "--json",
    ]);
    let out = ok(&args, "")?;
    out.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line)?;
            record["position"]
                .as_u64()
                .ok_or_else(|| "a record without a position".into())
        })
        .collect()
}

/// Writes the log and a checkpoint behind its head through `checkpoints`;
/// an effect runner on it parks the receipts of the events at positions 42
/// and 43; serves the store and runs the script while the runner runs.
async fn run_console<C>(store: &[String], checkpoints: &C, shots: Option<&Path>) -> TestResult
where
    C: EventStore + Follow + Checkpoints + Sync,
{
    let Some(dir) = browser_ready()? else {
        return Ok(());
    };
    let mut append = vec!["append", "--stream", "orders"];
    append.extend(refs(store));
    ok(&append, &support::append_lines(150))?;
    checkpoints
        .save_checkpoint("mailer", Cursor::new(0, Position::new(100)))
        .await?;
    let receipts = reactor(|event: &Recorded<StoredEvent>| vec![event.position.value()]);
    let runner = EffectRunner::new(checkpoints, "receipts", Query::all(), receipts, StoredCodec)
        .with_retry(Retry::attempts(1))
        .with_retry_poll(Duration::from_millis(100));
    let report = runner
        .run_available(|_, position| async move {
            if matches!(position, 42 | 43) {
                Err("smtp: connection refused")
            } else {
                Ok(())
            }
        })
        .await?;
    assert_eq!(report.parked, 2);
    let parked = checkpoints.parked_effects("receipts").await?;
    let expected = read_positions(store)?;
    assert!(expected.len() >= 3, "the query finds more than one page of two");

    // Pages of 100 events: the stream of 150 takes two.
    let server = Server::start(&refs(store), &["--token", TOKEN, "--max-read", "100"])?;
    let shots_arg = shots.map_or_else(|| "-".to_owned(), |p| p.display().to_string());
    let mut script = Command::new("node");
    script
        .arg(dir.join("console.mjs"))
        .args([server.url(""), TOKEN.to_owned(), shots_arg])
        .current_dir(&dir);
    let script = tokio::task::spawn_blocking(move || script.output());
    // The runner, now that the mail server answers, runs while the
    // operator works in the browser.
    let mut handed = Vec::new();
    let delivering = runner.run(|key, position| {
        handed.push((key, position));
        async { Ok::<(), String>(()) }
    });
    let output = tokio::select! {
        output = script => output??,
        stopped = delivering => return Err(format!("the effect runner stopped: {stopped:?}").into()),
    };
    assert!(
        output.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout)?;

    assert_eq!(report["wrongToken"]["rows"], 0, "a wrong token sees no events");
    assert_eq!(report["wrongToken"]["healthCards"], 0, "nor the store's health");
    assert!(
        report["wrongToken"]["alert"]
            .as_str()
            .is_some_and(|a| a.contains("token"))
    );
    let found: Vec<u64> = serde_json::from_value(report["newestFirst"].clone())?;
    assert_eq!(
        found, expected,
        "the query builder finds exactly what `factos read` finds"
    );
    assert!(
        report["detail"]["payload"]
            .as_str()
            .is_some_and(|p| p.contains("\"i\""))
    );
    let stream: Vec<String> = serde_json::from_value(report["stream"].clone())?;
    assert_eq!(report["streamFirstPage"], 100, "the stream's first page");
    assert_eq!(stream.len(), 150, "every event of the stream, over two pages");
    let revisions: Vec<u64> = stream
        .iter()
        .filter_map(|s| s.strip_prefix("orders @ ")?.parse().ok())
        .collect();
    assert_eq!(revisions, (0..150).collect::<Vec<_>>(), "in revision order, each once");
    assert_eq!(report["live"]["shownPosition"], report["live"]["position"]);
    assert!(
        report["live"]["millis"].as_u64().is_some_and(|ms| ms < 1_000),
        "the live view showed the appended event within a second: {}",
        report["live"]
    );
    assert_eq!(report["live"]["rowsWhilePaused"], 1, "paused, the new event waits");
    assert_eq!(report["live"]["rowsAfterResume"], 2, "resumed, it shows");
    let cards = report["health"]["cards"].to_string();
    assert!(cards.contains("152events"), "the event count: {cards}");
    assert_eq!(report["health"]["bars"], 60, "ten minutes of ten-second bars");
    assert!(
        report["health"]["busiestRate"].as_f64().is_some_and(|rate| rate > 0.0),
        "the chart shows the appends"
    );
    let runners = report["health"]["runners"].to_string();
    assert!(
        runners.contains("mailer") && runners.contains("52"),
        "the checkpoint, 52 positions behind: {runners}"
    );
    assert!(
        report["health"]["parked"]
            .to_string()
            .contains("smtp: connection refused")
    );
    let retried = report["health"]["retried"].as_str().ok_or("a retried effect")?;
    let retried = parked
        .iter()
        .find(|p| p.key.to_string() == retried)
        .ok_or("the retried effect was one of the parked")?;
    let handed_again: Vec<_> = handed
        .iter()
        .filter(|(key, _)| parked.iter().any(|p| p.key == *key))
        .collect();
    assert_eq!(
        handed_again,
        vec![&(retried.key, retried.position().value())],
        "the runner handed over the retried effect, once, and not the other"
    );
    assert_eq!(
        report["health"]["parkedAfterRetry"], 1,
        "a retried effect is gone once handed over"
    );
    assert_eq!(report["health"]["parkedAfterDiscard"], 0, "a discarded effect is gone");
    assert!(
        checkpoints.parked_effects("receipts").await?.is_empty(),
        "from the store too"
    );
    assert_eq!(report["outside"], serde_json::json!([]), "no request left the machine");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_a_sqlite_store() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let checkpoints = factos_sqlite::SqliteStore::open(scratch.db("served.db"))?;
    let shots = std::env::var_os("FACTOS_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    run_console(&store, &checkpoints, shots.as_deref()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_a_postgres_store() -> TestResult {
    let store = postgres_store()?;
    let checkpoints = factos_postgres::PgStore::connect(support::pg_url()?)?.with_schema(&store[3])?;
    run_console(&store, &checkpoints, None).await
}
