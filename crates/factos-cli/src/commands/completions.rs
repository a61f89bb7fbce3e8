//! `factos completions SHELL`: a completion script on standard output.

use crate::cli::{CompletionsArgs, command};
use crate::error::CliError;

pub fn run(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout();
    clap_complete::generate(args.shell, &mut command(), "factos", &mut out);
    Ok(())
}
