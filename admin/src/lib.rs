//! The admin model: staged vs runtime config, admin statements and their result rows.
//!
//! Not built yet: the admin port arrives with its own issue. The crate exists now so the
//! workspace layout is fixed from the first commit.
#![forbid(unsafe_code)]
