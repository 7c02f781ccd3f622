//! Firmware facts and boot logic that need no hardware: the PVH start info,
//! the memory map, the physical frame allocator, the kernel command line,
//! ACPI tables (MCFG, FADT, DMAR, the `_BBN` of host bridges) and ECAM
//! address math.
//!
//! The kernel hands this crate bytes and physical addresses; everything here
//! runs in host tests over crafted inputs.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod aml;
pub mod cmdline;
pub mod frames;
pub mod mcfg;
pub mod memmap;
pub mod start_info;
pub mod vectors;
