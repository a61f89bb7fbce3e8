//! # factos: the command-line tool
//!
//! Inspect, follow, verify, back up, copy and serve a factos event store,
//! on SQLite (`--database events.db`) or PostgreSQL
//! (`--database-url postgres://…`). `factos --help` lists the commands;
//! the workspace README has a tour with real output.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;
mod follow;
mod output;
mod query;
mod record;
mod store;
mod transfer;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::error::{CliError, one_line};

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let parsed = cli::Cli::from_arg_matches(&matches).map_err(|e| CliError::Usage(e.to_string()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the async runtime"));
    let outcome = parsed.and_then(|cli| {
        let runtime = runtime?;
        runtime.block_on(commands::run(cli, &matches))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`factos read | head`) is not an error.
        Err(CliError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
        }
    }
}
