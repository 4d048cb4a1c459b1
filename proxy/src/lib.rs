//! shardgate's network side.
//!
//! A statement flows one way: the client socket and [`wire`] decoding, a [`session`]
//! (its client side), [`router::decide`] against one [`topology`] snapshot loaded for
//! the statement, then the action: an answer of shardgate's own, a lease on one
//! [`backend`] connection, or a fan-out over several, whose result events go back
//! raw or through [`merge`]. [`shared`] holds what every session shares. With the
//! `playground` feature, the local MariaDB sandbox behind `shardgate playground`, the
//! tests and the benchmarks; production builds leave it out.
#![forbid(unsafe_code)]

pub mod admin_plane;
pub mod backend;
pub mod check_broadcast;
pub mod config;
pub mod control;
pub mod credential;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod host_guard;
pub mod http;
pub mod ids;
pub mod merge;
#[cfg(feature = "playground")]
pub mod playground;
pub mod promotion;
#[cfg(feature = "playground")]
pub mod sandbox;
pub mod scratch;
pub mod server;
pub mod session;
pub mod shared;
pub mod stats;
pub mod tls;
pub mod topology;
pub mod user_slots;
pub mod wire;
pub mod xa;
