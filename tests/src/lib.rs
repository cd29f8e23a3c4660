//! Helpers shared by the end-to-end tests.

pub mod crash;
pub mod redis;
pub mod shipper;
