//! Garage: a geo-distributed, self-hosted S3 object store.
//!
//! The crate is organised in layers (see DESIGN.md §2); a lower layer never imports a higher one:
//! `util` → `db` → `net` → `rpc` → `layout` → `table` → `block` → `model` → `api`/`web`/`admin`.

pub mod admin;
pub mod api;
pub mod block;
pub mod cli;
pub mod config;
pub mod db;
pub mod layout;
pub mod model;
pub mod net;
pub mod rpc;
pub mod server;
pub mod table;
pub mod util;
pub mod web;
