//! Volatile access to identity-mapped, uncached device memory (ECAM, VT-d
//! registers, BARs), through the `volatile` crate.

use core::ptr::NonNull;
use volatile::VolatilePtr;

/// Read a `T` from device memory at physical address `addr`.
///
/// # Safety
/// `addr` must be a naturally aligned device register below 4 GiB inside a
/// region the boot page tables map uncached, with reads free of side
/// effects the caller does not expect.
pub unsafe fn read<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller's contract; the identity map makes `addr` a valid
    // virtual address.
    unsafe { VolatilePtr::new_read_only(NonNull::new_unchecked(addr as *mut T)).read() }
}

/// Write a `T` to device memory at physical address `addr`.
///
/// # Safety
/// As [`read`], for writes.
pub unsafe fn write<T: Copy>(addr: u64, value: T) {
    // SAFETY: the caller's contract.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut T)).write(value) }
}

/// Chipset registers outside config space for the `pci` crate's quirks
/// (the Intel LPC bridge's RCBA window), reachable only inside the
/// uncached 2-4 GiB identity window that `boot.s` maps for device memory.
/// An address outside it counts as unmappable (Linux's `ioremap` failing),
/// so the quirk fails cleanly instead of touching RAM.
pub struct ChipsetWindow;

impl ChipsetWindow {
    fn check(addr: u64) -> Option<u64> {
        (addr >= (2 << 30) && addr.is_multiple_of(4) && addr + 4 <= crate::memory::IDENTITY_LIMIT).then_some(addr)
    }
}

impl pci::acs::ChipsetMmio for ChipsetWindow {
    fn read32(&mut self, addr: u64) -> Option<u32> {
        let addr = Self::check(addr)?;
        // SAFETY: `check` keeps `addr` 4-byte aligned inside the uncached
        // 2-4 GiB identity map, which holds device memory only; the caller
        // reads chipset registers (BSPR, UPDCR) that have no read side effects.
        Some(unsafe { read::<u32>(addr) })
    }
    fn write32(&mut self, addr: u64, value: u32) -> bool {
        let Some(addr) = Self::check(addr) else { return false };
        // SAFETY: as for `read32`; the one write is UPDCR's peer-decode
        // clear, which Linux does at the same point.
        unsafe { write::<u32>(addr, value) };
        true
    }
}
