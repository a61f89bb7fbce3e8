//! `factos read` (a context query) and `factos stream NAME`.

use clap::ArgMatches;
use factos::{Position, ReadOptions, StoredEvent, StreamId, StreamRevision};

use crate::cli::{ReadArgs, StreamArgs};
use crate::error::CliError;
use crate::output::{Out, count, events_table};
use crate::query;
use crate::record::RecordOut;
use crate::store::CliStore;

/// Events per page read and printed: what the tool holds in memory at once
/// (a page also ends at [`PAGE_BYTES`]).
const PAGE: usize = 1_000;

/// Bytes of events per page read and printed.
const PAGE_BYTES: usize = 8 * 1024 * 1024;

pub async fn read<S: CliStore>(store: &S, args: &ReadArgs, flags: &ArgMatches) -> Result<(), CliError> {
    let query = query::from_matches(flags)?;
    let mut options = match args.backwards {
        true => ReadOptions::backwards(),
        false => ReadOptions::forwards(),
    };
    options.from = args.from.map(Position::new);
    let mut left = if args.all { usize::MAX } else { args.limit };
    let mut out = Out::stdout();
    let mut printed = 0usize;
    let mut next = Some(options);
    // Page by page: each is printed before the next is read.
    while let Some(page_options) = next.filter(|_| left > 0) {
        let page_options = page_options.limit(left.min(PAGE)).max_bytes(PAGE_BYTES);
        let page = store
            .read(&query, page_options)
            .await
            .map_err(CliError::store("cannot read the store"))?;
        next = page_options.next_page(&page);
        left -= page.len();
        printed += page.len();
        print_page(&mut out, &page, args.json)?;
    }
    if !args.json {
        out.line(count(printed as u64, "event"))?;
    }
    out.flush()?;
    if let Some(more) = next {
        // The limit ended the read where more may match.
        let from = more.from.map_or(0, |p| p.value());
        eprintln!("showing the first {printed}; more may match: add --from {from} to continue, or --all");
    }
    Ok(())
}

pub async fn stream<S: CliStore>(store: &S, args: &StreamArgs) -> Result<(), CliError> {
    let stream =
        StreamId::new(args.name.as_str()).map_err(|e| CliError::Invalid(format!("stream {:?}: {e}", args.name)))?;
    let events = store
        .read_stream(&stream, StreamRevision::new(args.from))
        .await
        .map_err(CliError::store(format!("cannot read stream {stream}")))?;
    if events.is_empty() {
        let exists = args.from > 0
            && !store
                .read_stream(&stream, StreamRevision::FIRST)
                .await
                .map_err(CliError::store(format!("cannot read stream {stream}")))?
                .is_empty();
        if !exists {
            return Err(CliError::Invalid(format!("stream {stream} does not exist")));
        }
    }
    let mut out = Out::stdout();
    print_page(&mut out, &events, args.json)?;
    if !args.json {
        out.line(count(events.len() as u64, "event"))?;
    }
    out.flush()
}

/// JSON Lines, or a table.
fn print_page(out: &mut Out, events: &[StoredEvent], json: bool) -> Result<(), CliError> {
    if json {
        for event in events {
            out.line(RecordOut::new(event).line())?;
        }
    } else if !events.is_empty() {
        out.line(events_table(events))?;
    }
    Ok(())
}
