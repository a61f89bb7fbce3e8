//! One module per subcommand; [`run`] picks it and opens its store.

mod append;
mod bench;
mod check;
mod completions;
mod copy;
mod export;
mod import;
mod migrate;
mod read;
mod retag;
mod serve;
mod stats;
mod tail;

use clap::ArgMatches;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::store::{CliStore, Open, Target};
use crate::with_store;

/// Runs the parsed command line; `matches` gives the order of the query
/// flags.
pub async fn run(cli: Cli, matches: &ArgMatches) -> Result<(), CliError> {
    let flags = matches.subcommand().map(|(_, flags)| flags).unwrap_or(matches);
    match cli.command {
        Command::Completions(args) => completions::run(&args),
        Command::Copy(args) => copy::run(&args).await,
        command => {
            let target = Target::from_args(&cli.store)?;
            let open = match command {
                Command::Migrate(_) => Open::AnyVersion,
                // Like import and copy, a benchmark may start from nothing.
                Command::Import(_) | Command::Bench(_) => Open::Create,
                // Commands that only read: a copy the user cannot write
                // (a backup) can be inspected.
                Command::Stats(_)
                | Command::Read(_)
                | Command::Stream(_)
                | Command::Tail(_)
                | Command::Export(_)
                | Command::Check(_) => Open::ReadOnly,
                _ => Open::Existing,
            };
            let store = target.open(open).await?;
            with_store!(store, |store| on_store(&store, &target, command, flags).await)
        }
    }
}

async fn on_store<S: CliStore>(
    store: &S,
    target: &Target,
    command: Command,
    flags: &ArgMatches,
) -> Result<(), CliError> {
    match command {
        Command::Migrate(args) => migrate::run(store, target, args.json).await,
        Command::Stats(args) => stats::run(store, &args).await,
        Command::Read(args) => read::read(store, &args, flags).await,
        Command::Stream(args) => read::stream(store, &args).await,
        Command::Tail(args) => tail::run(store, &args, flags).await,
        Command::Append(args) => append::run(store, &args, flags).await,
        Command::Export(args) => export::run(store, &args).await,
        Command::Import(args) => import::run(store, &args).await,
        Command::Check(args) => check::run(store, args.json).await,
        Command::Retag(args) => retag::run(store, &args).await,
        Command::Serve(args) => serve::run(store.clone(), &args).await,
        Command::Bench(args) => bench::run(store, &args).await,
        Command::Completions(_) | Command::Copy(_) => Err(CliError::Usage("not a store command".into())),
    }
}
