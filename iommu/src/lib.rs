//! Isolation: IOMMU groups formed as Linux 6.1 forms them, the ACPI DMAR
//! table, Intel VT-d programming, and the DMA-ownership model.
//!
//! Hardware is reached through traits only (PCI config space from the `pci`
//! crate, a VT-d register file, physical memory), so every rule runs in host
//! tests.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod driver_model;
pub mod group;
pub mod ownership;
pub mod vtd;
