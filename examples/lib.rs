//! Runnable examples for factos (`cargo run --example NAME`; the backends
//! other than SQLite are features: `--features postgres`, `--features
//! kurrentdb`). This library holds no code; the README's code blocks are
//! compiled and run as doctests by `factos-readme`.
