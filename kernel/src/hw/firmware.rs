//! The kernel's view of firmware: the PVH start info, read once at entry,
//! and the ACPI tables through an identity-mapping `AcpiHandler`.

use crate::hw::memory::{self, IDENTITY_LIMIT};
use acpi::{AcpiHandler, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;
use platform::memmap::MemoryRegion;
use platform::start_info::{HVM_START_INFO_SIZE, MAX_MEMMAP_ENTRIES, StartInfo, StartInfoError, memmap_entries};

/// Longest command line read.
const MAX_CMDLINE: usize = 1024;

/// The start info, and the command line as a `'static` string (it lives in
/// low memory the frame allocator never hands out).
pub struct Boot {
    pub info: StartInfo,
    pub cmdline: &'static str,
}

/// Read `hvm_start_info` at the physical address QEMU passed in `%ebx`.
pub fn read_start_info(paddr: u64) -> Result<Boot, StartInfoError> {
    if paddr == 0 || paddr.checked_add(HVM_START_INFO_SIZE as u64).is_none_or(|end| end > IDENTITY_LIMIT) {
        return Err(StartInfoError::Truncated { len: 0 });
    }
    // SAFETY: the PVH ABI places the structure at `paddr`, in low RAM.
    let info = StartInfo::parse(unsafe { memory::read_phys(paddr, HVM_START_INFO_SIZE) })?;
    let cmdline_fits = info.cmdline_paddr.checked_add(MAX_CMDLINE as u64).is_some_and(|end| end < IDENTITY_LIMIT);
    let cmdline = if info.cmdline_paddr != 0 && cmdline_fits {
        // SAFETY: the loader wrote a NUL-terminated string there; at most
        // MAX_CMDLINE bytes are read.
        let bytes = unsafe { memory::read_phys(info.cmdline_paddr, MAX_CMDLINE) };
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_CMDLINE);
        core::str::from_utf8(&bytes[..len]).unwrap_or("")
    } else {
        ""
    };
    Ok(Boot { info, cmdline })
}

/// The memory map the start info points at, in a fixed array: it is read
/// before the heap exists.
pub struct MemoryMap {
    entries: [MemoryRegion; MAX_MEMMAP_ENTRIES as usize],
    len: usize,
}

impl MemoryMap {
    pub fn read(info: &StartInfo) -> Self {
        let empty = MemoryRegion { start: 0, len: 0, kind: platform::memmap::MemoryKind::Reserved };
        let mut map = Self { entries: [empty; MAX_MEMMAP_ENTRIES as usize], len: 0 };
        let len = info.memmap_len();
        let fits = info.memmap_paddr.checked_add(len as u64).is_some_and(|end| end < IDENTITY_LIMIT);
        if info.memmap_paddr != 0 && fits {
            // SAFETY: the PVH loader wrote `memmap_entries` entries there
            // (at most MAX_MEMMAP_ENTRIES, checked when parsing).
            for region in memmap_entries(unsafe { memory::read_phys(info.memmap_paddr, len) }) {
                map.entries[map.len] = region;
                map.len += 1;
            }
        }
        map
    }

    pub fn regions(&self) -> &[MemoryRegion] {
        &self.entries[..self.len]
    }

    pub fn to_vec(&self) -> Vec<MemoryRegion> {
        self.regions().to_vec()
    }
}

/// Physical memory below 4 GiB is identity-mapped, so mapping is the
/// identity and unmapping does nothing.
#[derive(Clone, Copy)]
pub struct IdentityMap;

impl AcpiHandler for IdentityMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        // SAFETY: the only caller, platform::acpi, maps only ranges it has
        // checked against [4 KiB, IDENTITY_LIMIT), which the boot page
        // tables map one-to-one (so the address is never 0).
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(physical_address as *mut T).expect("ACPI table at physical address 0"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}
