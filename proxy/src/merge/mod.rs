//! Merging several shards' text results into one, as the router's merge plan says.
//! Pure: the session feeds rows in and writes rows out.

pub mod combine;
pub mod row;
pub mod value;

pub use combine::{MergeError, Merger};
pub use row::Row;
pub use value::ColumnInfo;
