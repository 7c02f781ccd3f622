//! Intel VT-d: DMAR parsing and DMA-remapping unit programming.
//!
//! One file per step, in the order the kernel uses them (VT-d spec rev 4.1,
//! "Intel Virtualization Technology for Directed I/O Architecture
//! Specification", chapters in brackets):
//!
//! - [`dmar`], [`dmar_scope`]: the ACPI DMAR table (ch. 8) and device-scope
//!   paths resolved through bridges.
//! - [`regs`], [`cap`]: the register block (ch. 11) with access rights in the
//!   types, and the decoded CAP/ECAP registers.
//! - [`unit`]: one remapping unit (a DRHD): GCMD/GSTS handshakes (§11.4.4),
//!   root table, translation enable, write-buffer flush.
//! - [`tables`], [`pagetable`]: root and context tables (§9.1, §9.3) and
//!   second-level page tables (§9.8, §3.7).
//! - [`domain`]: domain ids (CAP.ND) and a domain's table.
//! - [`attach`]: device attach/detach and map/unmap, each followed by the
//!   invalidations of §6.5.3.3 and caching mode (Linux
//!   `domain_context_mapping_one`).
//! - [`inval`], [`qi`]: register-based (§6.5.1) and queued (§6.5.2)
//!   invalidation; a unit uses exactly one of them.
//! - [`fault`]: primary fault recording (§7.3, §11.4.14).
//! - [`irq_remap`]: interrupt remapping (ch. 5, §9.10): IRTE encoding,
//!   Linux `set_msi_sid`, the table and its allocator, IEC invalidation,
//!   enabling IR after QI.
//! - [`rmrr_devices`]: which devices an RMRR names and which of them may
//!   not be handed out (Linux `device_is_rmrr_locked`).
//! - [`unit_failure`]: which devices may DMA when a DRHD fails (stricter
//!   than Linux's "no IOMMU at all").
//!
//! Hardware is reached through two traits: [`regs::RegisterFile`] (the MMIO
//! register page) and [`mem::PhysMem`] + [`mem::FrameAlloc`] (physical
//! memory for tables and the invalidation queue). Host tests run the same
//! code over a simulated QEMU 7.2 unit (`sim`).

pub mod attach;
pub mod cap;
pub mod dmar;
pub mod dmar_scope;
pub mod domain;
pub mod error;
pub mod fault;
pub mod geometry;
pub mod inval;
pub mod irq_remap;
pub mod mem;
pub mod pagetable;
pub mod qi;
pub mod regs;
pub mod rmrr_devices;
pub mod tables;
pub mod unit;
pub mod unit_failure;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use cap::{Cap, Ecap};
pub use domain::{Domain, DomainId, DomainIdAllocator};
pub use error::UnitError;
pub use mem::{FrameAlloc, PhysMem};
pub use regs::RegisterFile;
pub use unit::{Handoff, PollLimit, Unit};
