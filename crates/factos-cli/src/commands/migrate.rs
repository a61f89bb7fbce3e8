//! `factos migrate`: create or upgrade the schema, saying what it found and
//! what it did.

use factos::admin::Admin;
use serde_json::json;

use crate::error::CliError;
use crate::output::print_json;
use crate::store::{CliStore, Target, schema_mismatch};

pub async fn run<S: CliStore>(store: &S, target: &Target, json: bool) -> Result<(), CliError> {
    let found = store
        .schema_version()
        .await
        .map_err(CliError::store("cannot read the schema version"))?;
    if found.found > found.supported {
        return Err(schema_mismatch(found));
    }
    let changed = !found.is_current();
    if changed {
        Admin::migrate(store)
            .await
            .map_err(CliError::store(format!("cannot migrate {}", target.display())))?;
    }
    if json {
        print_json(&json!({"found": found.found, "version": found.supported, "changed": changed}));
        return Ok(());
    }
    match found.found {
        0 => println!("{}: created the schema (version {})", target.display(), found.supported),
        _ if changed => println!(
            "{}: upgraded the schema from version {} to {}",
            target.display(),
            found.found,
            found.supported
        ),
        _ => println!(
            "{}: the schema is at version {}; nothing to do",
            target.display(),
            found.supported
        ),
    }
    Ok(())
}
