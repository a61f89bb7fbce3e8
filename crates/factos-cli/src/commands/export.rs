//! `factos export`: every event as one JSON line, in position order,
//! a page at a time (constant memory for any size).

use std::io::Write;

use factos::Position;

use crate::cli::ExportArgs;
use crate::error::CliError;
use crate::output::store_progress;
use crate::record::RecordOut;
use crate::store::CliStore;
use crate::transfer::{Source, StoreSource};

pub async fn run<S: CliStore>(store: &S, args: &ExportArgs) -> Result<(), CliError> {
    let (mut out, what): (Box<dyn Write>, String) = match &args.output {
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(CliError::io(format!("cannot create {}", path.display())))?;
            (Box::new(file), path.display().to_string())
        }
        None => (Box::new(std::io::stdout()), "standard output".to_owned()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, &mut out);
    let bar = store_progress(store, "exporting").await;
    let mut source = StoreSource::new(store, args.from.map(Position::new));
    let mut exported = 0u64;
    loop {
        let batch = source.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            writeln!(out, "{}", RecordOut::new(record).line())
                .map_err(CliError::io(format!("cannot write to {what}")))?;
        }
        exported += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }
    out.flush().map_err(CliError::io(format!("cannot write to {what}")))?;
    bar.finish_and_clear();
    eprintln!("exported {}", crate::output::count(exported, "event"));
    Ok(())
}
