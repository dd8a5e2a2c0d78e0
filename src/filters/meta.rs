//! What a loaded filter says about itself, stored in the kernel with it.
//!
//! The description lives in a one-element array map (`pw_meta`) that the
//! filter program refers to, so it exists exactly as long as that version
//! of the filter does: `portwall list` in any later process reads it from
//! the kernel, and there is no state file that could drift from what runs.

use crate::lang::ir::Direction;
use serde::{Deserialize, Serialize};

/// The name of the map holding the description.
pub const META_MAP: &str = "pw_meta";

/// A filter's description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterMeta {
    /// Format version of this record.
    pub version: u32,
    /// The expression as the user wrote it.
    pub expression: String,
    /// Its canonical form.
    pub canonical: String,
    /// The direction it was loaded for; `None`: either.
    pub direction: Option<Direction>,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
    /// The portwall version that compiled it.
    pub portwall: String,
}

impl FilterMeta {
    pub fn new(expression: &str, canonical: String, direction: Option<Direction>) -> FilterMeta {
        let loaded_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        FilterMeta {
            version: 1,
            expression: expression.to_string(),
            canonical,
            direction,
            loaded_at,
            portwall: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The map value: JSON, zero-padded to a multiple of 8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("metadata serializes");
        bytes.resize(bytes.len().div_ceil(8) * 8, 0);
        bytes
    }

    /// Reads a map value written by `encode`.
    pub fn decode(value: &[u8]) -> Option<FilterMeta> {
        let end = value.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        serde_json::from_slice(&value[..end]).ok()
    }
}
