//! The `cru` binary: parses arguments, sets up logging, runs the library, maps the outcome to an exit code.
fn main() {}
