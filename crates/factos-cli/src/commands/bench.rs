use crate::cli::BenchArgs;
use crate::error::CliError;
use crate::store::CliStore;

pub async fn run<S: CliStore>(_store: &S, _args: &BenchArgs) -> Result<(), CliError> {
    Err(CliError::Usage("bench: not yet".into()))
}
