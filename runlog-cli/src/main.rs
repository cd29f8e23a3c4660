//! The `runlog` command (being written).
fn main() {}
