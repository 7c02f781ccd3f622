//! PCIe topology facts: configuration space, enumeration, capabilities, ACS
//! and DMA aliases.
//!
//! Everything here talks to hardware through one narrow trait,
//! [`ConfigSpace`]; the kernel implements it over ECAM, the host tests over a
//! simulated configuration space. The crate holds no `unsafe`.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod config;

pub use config::{Bdf, ConfigSpace};
