//! `runlog-shipper`: ships committed runs from the journal to Redis.

fn main() {}
