//! Helpers shared by the integration tests (`mod common;` in each).

#![allow(dead_code)]

pub mod bpffs;
pub mod cli;
pub mod generate;
pub mod kernel;
pub mod packets;
pub mod systemd;
pub mod traffic;
