//! `factos append`: events as JSON Lines (one event per line: `type`,
//! `tags`, `data` or `dataBase64`, optionally `id`, `version`, `metadata`)
//! appended to one stream in one atomic batch. Every line is checked
//! before anything is written.

use std::collections::HashMap;

use clap::ArgMatches;
use factos::{AppendCondition, AppendRequest, ExpectedRevision, Position, StreamId, StreamRevision};
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::cli::AppendArgs;
use crate::error::CliError;
use crate::output::print_json;
use crate::query;
use crate::record::EventIn;
use crate::store::CliStore;

pub async fn run<S: CliStore>(store: &S, args: &AppendArgs, flags: &ArgMatches) -> Result<(), CliError> {
    let stream = StreamId::new(args.stream.as_str())
        .map_err(|e| CliError::Invalid(format!("--stream {:?}: {e}", args.stream)))?;
    let expected = match &args.expect {
        Some(text) => parse_expected(text)?,
        None => ExpectedRevision::Any,
    };
    let condition = match args.fail_if_match {
        true => Some(AppendCondition::new(
            query::from_matches(flags)?,
            args.after.map(Position::new),
        )),
        false if !args.query.types.is_empty() || !args.query.tags.is_empty() => {
            return Err(CliError::Usage(
                "--type and --tag describe the --fail-if-match query; add --fail-if-match".into(),
            ));
        }
        false => None,
    };
    let events = match &args.file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(CliError::io(format!("cannot open {}", path.display())))?;
            events(BufReader::new(file)).await?
        }
        None => events(BufReader::new(tokio::io::stdin())).await?,
    };
    if events.is_empty() {
        return Err(CliError::Invalid("no events given: one JSON object per line".into()));
    }
    let mut request = AppendRequest::new(stream.clone(), events).expect(expected);
    if let Some(condition) = condition {
        request = request.condition(condition);
    }
    let committed = store
        .append(request)
        .await
        .map_err(CliError::store(format!("the append to {stream} was refused")))?;
    let positions: Vec<u64> = committed.records.iter().map(|r| r.position.value()).collect();
    if args.json {
        print_json(&json!({"positions": positions, "revision": committed.revision.value()}));
        return Ok(());
    }
    println!(
        "appended {} to {stream} (now at revision {}) at position{} {}",
        crate::output::count(positions.len() as u64, "event"),
        committed.revision,
        if positions.len() == 1 { "" } else { "s" },
        positions.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// `--expect`: a revision number, `no-stream`, `exists` or `any`.
fn parse_expected(text: &str) -> Result<ExpectedRevision, CliError> {
    match text {
        "any" => Ok(ExpectedRevision::Any),
        "no-stream" => Ok(ExpectedRevision::NoStream),
        "exists" => Ok(ExpectedRevision::StreamExists),
        number => number
            .parse::<u64>()
            .map(|r| ExpectedRevision::Exact(StreamRevision::new(r)))
            .map_err(|_| {
                CliError::Usage(format!(
                    "--expect {text:?}: give a revision number, no-stream, exists or any"
                ))
            }),
    }
}

/// Every line parsed and checked (blank lines skipped); the first bad one
/// is named by its number.
async fn events(input: impl AsyncBufRead + Unpin) -> Result<Vec<factos::NewEvent>, CliError> {
    let mut lines = input.lines();
    let mut events = Vec::new();
    let mut ids = HashMap::new();
    let mut number = 0u64;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(CliError::io(format!("cannot read line {}", number + 1)))?
    {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem: String| CliError::BadLine { line: number, problem };
        let event: EventIn = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let event = event.into_event().map_err(bad)?;
        if let Some(first) = ids.insert(event.id, number) {
            return Err(bad(format!("id {} is also on line {first}", event.id)));
        }
        events.push(event);
    }
    Ok(events)
}
