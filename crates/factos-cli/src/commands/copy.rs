//! `factos copy --from SRC --to DST`: every event of one store into
//! another (SQLite → PostgreSQL, say), resumable like `import`, then
//! verified: both logs must have the same count and checksum.

use serde_json::json;

use crate::cli::CopyArgs;
use crate::error::CliError;
use crate::output::{print_json, progress, store_progress};
use crate::store::{CliStore, Open, Target};
use crate::transfer::{StoreSource, digest, interrupt_flag, transfer};
use crate::with_store;

pub async fn run(args: &CopyArgs) -> Result<(), CliError> {
    let from = Target::parse(&args.from, args.from_schema.clone())?;
    let to = Target::parse(&args.to, args.to_schema.clone())?;
    if from == to {
        return Err(CliError::Usage("--from and --to name the same store".into()));
    }
    let source = from.open(Open::ReadOnly).await?;
    let target = to.open(Open::Create).await?;
    with_store!(source, |source| with_store!(&target, |target| copy(
        &source, target, args
    )
    .await))
}

async fn copy<S: CliStore, T: CliStore>(source: &S, target: &T, args: &CopyArgs) -> Result<(), CliError> {
    let interrupted = interrupt_flag();
    let bar = store_progress(source, "copying").await;
    let done = transfer(target, &mut StoreSource::new(source, None), false, &bar, &interrupted).await;
    bar.finish_and_clear();
    let done = done?;
    let bar = progress(None, "verifying");
    let (source_digest, target_digest) = (digest(source, &bar).await?, digest(target, &bar).await?);
    bar.finish_and_clear();
    let verified = source_digest == target_digest;
    if args.json {
        print_json(&json!({
            "copied": done.imported,
            "skipped": done.skipped,
            "verified": verified,
            "source": {"events": source_digest.count, "checksum": format!("{:032x}", source_digest.checksum)},
            "target": {"events": target_digest.count, "checksum": format!("{:032x}", target_digest.checksum)},
        }));
    } else {
        println!(
            "copied {}{}",
            crate::output::count(done.imported, "event"),
            match done.skipped {
                0 => String::new(),
                skipped => format!(" ({skipped} already there, skipped)"),
            }
        );
    }
    if !verified {
        return Err(CliError::Failed(format!(
            "verification failed: the source has {} events (checksum {:032x}), the target {} (checksum {:032x})",
            source_digest.count, source_digest.checksum, target_digest.count, target_digest.checksum
        )));
    }
    if !args.json {
        println!(
            "verified: {} events, checksum {:032x} on both",
            source_digest.count, source_digest.checksum
        );
    }
    Ok(())
}
