//! The console of `factos serve` in a real browser (Debian's Chromium,
//! driven by `playwright-core` from `tests/console/console.mjs`), against a
//! real server on SQLite and on PostgreSQL: the query builder finds exactly
//! what `factos read` finds, the live view shows an appended event within a
//! second, the chart and the checkpoints render, a parked effect can be
//! discarded, a wrong token sees nothing,
//! and nothing is requested from anywhere but the server.
//!
//! Skipped, saying why, without Chromium or the script's `node_modules`
//! (`npm ci` in `tests/console`), unless `FACTOS_REQUIRE_BROWSER` is set
//! (CI sets it). With `FACTOS_CONSOLE_SCREENSHOTS=<dir>` the SQLite run
//! saves its screenshots there (the README's come from it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use factos::{Checkpoints, Cursor, EffectKey, EventId, ParkedEffect, Position};
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

/// Writes the log, a checkpoint behind its head and a parked effect through
/// `checkpoints`, serves the store and runs the script.
async fn run_console<C: Checkpoints>(store: &[String], checkpoints: &C, shots: Option<&Path>) -> TestResult {
    let Some(dir) = browser_ready()? else {
        return Ok(());
    };
    let mut append = vec!["append", "--stream", "orders"];
    append.extend(refs(store));
    ok(&append, &support::append_lines(150))?;
    checkpoints
        .save_checkpoint("mailer", Cursor::new(0, Position::new(100)))
        .await?;
    checkpoints
        .park_effect(ParkedEffect {
            runner: "mailer".into(),
            key: EffectKey {
                event: EventId::random(),
                index: 0,
            },
            position: Position::new(42),
            attempts: 5,
            error: "smtp: connection refused".into(),
        })
        .await?;
    let expected = read_positions(store)?;
    assert!(expected.len() >= 3, "the query finds more than one page of two");

    let server = Server::start(&refs(store), &["--token", TOKEN])?;
    let shots_arg = shots.map_or_else(|| "-".to_owned(), |p| p.display().to_string());
    let output = Command::new("node")
        .arg(dir.join("console.mjs"))
        .args([server.url(""), TOKEN.to_owned(), shots_arg])
        .current_dir(&dir)
        .output()?;
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
    assert_eq!(stream.len(), 150, "every event of the stream");
    assert!(stream.iter().all(|s| s.starts_with("orders @ ")));
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
    assert_eq!(report["health"]["parkedAfterDiscard"], 0, "a discarded effect is gone");
    assert!(
        checkpoints.parked_effects("mailer").await?.is_empty(),
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
