//! Lookup structures for large sets, built at compile time: their bytes
//! become read-only maps the program indexes directly (see
//! `codegen::sets` for the code that reads them).

pub mod bitmap;
pub mod range;

pub use bitmap::Bitmap;
pub use range::{RangeTable, RangeTableError};
