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
