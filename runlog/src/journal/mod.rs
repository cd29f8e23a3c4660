//! The crash-safe local journal: per-run segment files of CRC-checked frames.
//!
//! The format is normative in `spec/journal.md`.

pub mod faultfs;
pub mod frame;
pub mod layout;
pub mod payload;
pub mod reader;
pub mod retention;
pub mod shared;
pub mod shipped;
mod sigbus;
pub mod storage;
pub(crate) mod writer;
