//! Test support shared by the integration tests: real servers started on loopback ports.
#![allow(dead_code)]

pub mod fake;
pub mod registry;
