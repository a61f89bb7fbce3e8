//! `factos stats`: counts, types, tags, first and last event, size.

use factos::Position;
use factos::Timestamp;
use serde_json::json;

use crate::cli::StatsArgs;
use crate::error::CliError;
use crate::output::{bytes, plain_table, print_json, table};
use crate::record::format_time;
use crate::store::CliStore;

pub async fn run<S: CliStore>(store: &S, args: &StatsArgs) -> Result<(), CliError> {
    let stats = store
        .stats(args.top)
        .await
        .map_err(CliError::store("cannot read the store's statistics"))?;
    let end = |end: Option<(Position, Timestamp)>| {
        end.map(|(position, at)| json!({"position": position.value(), "recordedAt": format_time(at)}))
    };
    if args.json {
        let counts = |counts: &[(String, u64)]| {
            counts
                .iter()
                .map(|(name, count)| json!({"name": name, "events": count}))
                .collect::<Vec<_>>()
        };
        print_json(&json!({
            "events": stats.events,
            "streams": stats.streams,
            "eventTypes": counts(&stats.event_types),
            "topTags": counts(&stats.top_tags),
            "first": end(stats.first),
            "last": end(stats.last),
            "sizeBytes": stats.size_bytes,
        }));
        return Ok(());
    }
    let mut summary = plain_table();
    summary.add_row(["events".to_owned(), stats.events.to_string()]);
    summary.add_row(["streams".to_owned(), stats.streams.to_string()]);
    for (label, end) in [("first", stats.first), ("last", stats.last)] {
        if let Some((position, at)) = end {
            summary.add_row([label.to_owned(), format!("position {position} at {}", format_time(at))]);
        }
    }
    if let Some(size) = stats.size_bytes {
        summary.add_row(["size on disk".to_owned(), bytes(size)]);
    }
    println!("{summary}");
    for (title, counts) in [("event type", &stats.event_types), ("tag", &stats.top_tags)] {
        if counts.is_empty() {
            continue;
        }
        let mut counted = table([title, "events"]);
        for (name, count) in counts {
            counted.add_row([name.clone(), count.to_string()]);
        }
        println!("{counted}");
    }
    Ok(())
}
