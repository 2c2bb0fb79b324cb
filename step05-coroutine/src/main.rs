//! Placeholder: this step is being written.
fn main() {}
