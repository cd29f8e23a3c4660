//! `runlog-shipper` as a library: the Redis key schema (`spec/redis.md`), and the pieces the
//! `runlog-shipper` binary is made of. The CLI and the tests read Redis with [`schema`].

pub mod confirm;
pub mod conn;
pub mod diagnose;
pub mod eviction;
pub mod prepare;
pub mod repair;
pub mod schema;
pub mod ship;
pub mod upload;
pub mod wake;
