//! Helpers shared by the integration tests (`mod common;` in each).

#![allow(dead_code)]

pub mod packets;
