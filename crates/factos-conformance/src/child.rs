//! Child processes for crash tests: the running test binary started again
//! to run only its ignored `child_process` test, which reads what to do
//! from the environment.

use std::process::{Child, Command, Stdio};

/// This test binary, set to run only its `child_process` test (which must
/// be `#[ignore]`d, so normal runs skip it), with `env` set: a command the
/// caller can still give its own stdio before it spawns it.
///
/// # Errors
///
/// When the running binary cannot be found.
pub fn child_process_command(env: &[(&str, &str)]) -> std::io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args([
        "--ignored",
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ]);
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(command)
}

/// Starts this test binary again, running only its `child_process` test
/// (see [`child_process_command`]), with `env` set and its output
/// discarded, ready to be killed.
///
/// # Errors
///
/// When the binary cannot be found or started.
pub fn spawn_child_process(env: &[(&str, &str)]) -> std::io::Result<Child> {
    child_process_command(env)?.stdout(Stdio::null()).spawn()
}
