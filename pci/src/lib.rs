//! PCIe topology facts: configuration space, enumeration, capabilities, ACS
//! and DMA aliases, following Linux 6.1 (drivers/pci/).
//!
//! Everything here talks to hardware through one narrow trait,
//! [`ConfigSpace`]; the kernel implements it over ECAM, the host tests over a
//! simulated configuration space ([`sim`], feature `sim`). The crate holds
//! no `unsafe`.
//!
//! Where each rule lives:
//! - register names: [`regs`]; capability walks: [`caps`]
//! - enumeration order and bus-number checks: [`enumerate`], result: [`topology`]
//! - ACS judgement and enabling: [`acs`]; ACS quirk table: [`acs_quirks`]
//! - MSI/MSI-X capabilities and message formats: [`msi`]
//! - DMA alias walk: [`alias`]; DMA alias quirk table: [`dma_alias_fixups`]
//! - SR-IOV virtual functions of enabled physical functions: [`sriov`]
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod acs;
pub mod acs_quirks;
pub mod aer;
pub mod alias;
pub mod caps;
pub mod config;
pub mod devfn_mask;
pub mod dma_alias_fixups;
pub mod enumerate;
pub mod ids;
pub mod msi;
pub mod pciehp;
pub mod port_services;
pub mod regs;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sriov;
pub mod topology;

pub use config::{Bdf, ConfigSpace};
pub use devfn_mask::DevfnMask;
pub use enumerate::{enumerate, enumerate_with_peer_probe};
pub use regs::{AcsFlags, REQ_ACS_FLAGS};
pub use topology::{Function, PeerProbe, Topology};
