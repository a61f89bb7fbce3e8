use crate::cli::ServeArgs;
use crate::error::CliError;
use crate::store::CliStore;

pub async fn run<S: CliStore>(_store: S, _args: &ServeArgs) -> Result<(), CliError> {
    Err(CliError::Usage("serve: not yet".into()))
}
