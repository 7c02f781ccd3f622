//! The report the kernel and `iommu-explain` both produce: one schema
//! ([`schema`], serde types) and one text rendering of its PCI part
//! ([`render`]: the `lspci -tv`-style tree with ACS words and groups, the
//! groups with each member's rule), so the two read the same.
//!
//! `no_std` + `alloc`: the kernel serializes a [`Report`] with `serde_json`
//! (alloc feature), the tool with std; tests and benches read it back with
//! the same types.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod names;
pub mod render;
pub mod schema;

pub use schema::*;
