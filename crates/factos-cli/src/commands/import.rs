//! `factos import`: JSON Lines written by `export` into a store, keeping
//! positions, ids, streams, revisions and times; resumable (see
//! [`crate::transfer`]).

use serde_json::json;
use tokio::io::BufReader;

use crate::cli::ImportArgs;
use crate::error::CliError;
use crate::output::{print_json, progress};
use crate::store::CliStore;
use crate::transfer::{LinesSource, interrupt_flag, transfer};

pub async fn run<S: CliStore>(store: &S, args: &ImportArgs) -> Result<(), CliError> {
    let interrupted = interrupt_flag();
    let bar = progress(records_in(args.input.as_deref()), "importing");
    let done = match &args.input {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(CliError::io(format!("cannot open {}", path.display())))?;
            let mut source = LinesSource::new(BufReader::with_capacity(1 << 16, file));
            transfer(store, &mut source, args.append, &bar, &interrupted).await
        }
        None => {
            let mut source = LinesSource::new(BufReader::with_capacity(1 << 16, tokio::io::stdin()));
            transfer(store, &mut source, args.append, &bar, &interrupted).await
        }
    };
    bar.finish_and_clear();
    let done = done?;
    if args.json {
        print_json(&json!({"imported": done.imported, "skipped": done.skipped}));
    } else {
        println!(
            "imported {}{}",
            crate::output::count(done.imported, "event"),
            match done.skipped {
                0 => String::new(),
                skipped => format!(" ({skipped} already there, skipped)"),
            }
        );
    }
    Ok(())
}

/// How many records a file holds (its non-blank lines), for the progress
/// bar: counted only when one is drawn and the input is a file.
fn records_in(input: Option<&std::path::Path>) -> Option<u64> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let file = std::fs::File::open(input?).ok()?;
    let mut lines = 0u64;
    for line in std::io::BufReader::with_capacity(1 << 16, file).split(b'\n') {
        if !line.ok()?.iter().all(u8::is_ascii_whitespace) {
            lines += 1;
        }
    }
    Some(lines)
}
