//! `factos read` (a context query) and `factos stream NAME`.

use clap::ArgMatches;
use factos::{Position, ReadOptions, StoredEvent, StreamId, StreamRevision};

use crate::cli::{ReadArgs, StreamArgs};
use crate::error::CliError;
use crate::output::{Out, events_table};
use crate::query;
use crate::record::RecordOut;
use crate::store::CliStore;

pub async fn read<S: CliStore>(store: &S, args: &ReadArgs, flags: &ArgMatches) -> Result<(), CliError> {
    let query = query::from_matches(flags)?;
    let mut options = match args.backwards {
        true => ReadOptions::backwards(),
        false => ReadOptions::forwards(),
    };
    options.from = args.from.map(Position::new);
    options.limit = args.limit;
    let events = store
        .read(&query, options)
        .await
        .map_err(CliError::store("cannot read the store"))?;
    print(&events, args.json)
}

pub async fn stream<S: CliStore>(store: &S, args: &StreamArgs) -> Result<(), CliError> {
    let stream =
        StreamId::new(args.name.as_str()).map_err(|e| CliError::Invalid(format!("stream {:?}: {e}", args.name)))?;
    let events = store
        .read_stream(&stream, StreamRevision::new(args.from))
        .await
        .map_err(CliError::store(format!("cannot read stream {stream}")))?;
    print(&events, args.json)
}

/// JSON Lines, or a table (with the count under it).
fn print(events: &[StoredEvent], json: bool) -> Result<(), CliError> {
    let mut out = Out::stdout();
    if json {
        for event in events {
            out.line(RecordOut::new(event).line())?;
        }
    } else {
        out.line(events_table(events))?;
        out.line(format!("{} events", events.len()))?;
    }
    out.flush()
}
