//! Second-level page tables in legacy mode (VT-d spec rev 4.1 §3.7, §9.8).
//!
//! A table has 3, 4 or 5 levels of 512 64-bit entries, chosen from CAP.SAGAW
//! as Linux does (`iommu_calculate_agaw`, `prepare_domain_attach_device`).
//! Mapping rejects IOVA 0 (a null guard), addresses beyond the domain's
//! width, misalignment, and large pages the unit does not support
//! (CAP.SLLPS); SNP is only set when ECAP.SC allows it. Unmapping returns the
//! range the IOTLB must forget; table frames are only freed by
//! [`SecondLevelTable::destroy`], after the caller has invalidated.

use bitflags::bitflags;
use core::fmt;

pub use super::geometry::{AddressWidth, Geometry, PageSize};

use super::geometry::{LEVEL_STRIDE, PAGE_SHIFT};
use super::mem::{FRAME_SIZE, FrameAlloc, PhysMem, alloc_table};

/// Entries per table.
const ENTRIES: u64 = 512;

bitflags! {
    /// Access a mapping grants (second-level R and W; §9.8).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Perms: u8 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        /// Snoop behaviour (SNP): only when ECAP.SC is set.
        const SNOOP = 1 << 2;
    }
}

/// A second-level paging entry (spec §9.8, table "Format of Second-Level
/// Paging Entries"):
///
/// ```text
///  bit  0     R    read permission (non-leaf: must allow, hardware ANDs levels)
///  bit  1     W    write permission
///  bit  2     X    execute (ignored: execute requests are not enabled)
///  bits 5:3   EMT  memory type (leaf; ignored unless ECAP.MTS)
///  bit  6     IPAT ignore PAT (leaf)
///  bit  7     PS   page size: leaf at level 2 (2 MiB) or 3 (1 GiB)
///  bit  11    SNP  snoop (leaf; reserved unless ECAP.SC — QEMU faults on it)
///  bits 51:12 ADDR next-level table or page frame
///  bit  62    TM   transient mapping (reserved unless ECAP.DT)
/// ```
///
/// An entry with R = W = 0 is not present (QEMU 7.2 reports an all-zero
/// entry as fault reason 5, "PTE Write access is not set", for a write).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SlPte(u64);

impl SlPte {
    const R: u64 = 1 << 0;
    const W: u64 = 1 << 1;
    const PS: u64 = 1 << 7;
    const SNP: u64 = 1 << 11;
    const ADDR_MASK: u64 = ((1 << 52) - 1) & !((1 << 12) - 1);

    pub const fn raw(self) -> u64 {
        self.0
    }
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
    /// R or W set.
    pub const fn is_present(self) -> bool {
        self.0 & (Self::R | Self::W) != 0
    }
    pub const fn read(self) -> bool {
        self.0 & Self::R != 0
    }
    pub const fn write(self) -> bool {
        self.0 & Self::W != 0
    }
    pub const fn page_size(self) -> bool {
        self.0 & Self::PS != 0
    }
    pub const fn snoop(self) -> bool {
        self.0 & Self::SNP != 0
    }
    pub const fn address(self) -> u64 {
        self.0 & Self::ADDR_MASK
    }
    pub const fn with_read(self, on: bool) -> Self {
        self.with(Self::R, on)
    }
    pub const fn with_write(self, on: bool) -> Self {
        self.with(Self::W, on)
    }
    pub const fn with_page_size(self, on: bool) -> Self {
        self.with(Self::PS, on)
    }
    pub const fn with_snoop(self, on: bool) -> Self {
        self.with(Self::SNP, on)
    }
    /// ADDR 51:12; `pa` must be 4 KiB aligned and below 2^52.
    pub const fn with_address(self, pa: u64) -> Self {
        Self((self.0 & !Self::ADDR_MASK) | (pa & Self::ADDR_MASK))
    }
    const fn with(self, bit: u64, on: bool) -> Self {
        if on { Self(self.0 | bit) } else { Self(self.0 & !bit) }
    }
    /// A non-leaf entry: R and W set so that the leaf alone decides access
    /// (Linux `pfn_to_dma_pte` sets `DMA_PTE_READ | DMA_PTE_WRITE`).
    pub const fn table(pa: u64) -> Self {
        Self(0).with_read(true).with_write(true).with_address(pa)
    }
}

impl fmt::Debug for SlPte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SlPte({:#x}: addr {:#x} R={} W={} PS={} SNP={})",
            self.0,
            self.address(),
            self.read() as u8,
            self.write() as u8,
            self.page_size() as u8,
            self.snoop() as u8
        )
    }
}

/// Why a page-table operation was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    /// IOVA 0 is never mapped (null-DMA guard, as Zircon does).
    IovaZero,
    /// IOVA or physical address not aligned to the page size.
    Misaligned { iova: u64, phys: u64, size: u64 },
    /// The IOVA range exceeds the domain's address width.
    BeyondAddressWidth { iova: u64, bits: u8 },
    /// The physical address is beyond the host address width.
    PhysTooWide { phys: u64, bits: u8 },
    /// The unit does not support this large-page size (CAP.SLLPS).
    PageSizeUnsupported { size: u64 },
    /// SNP requested but ECAP.SC is clear.
    SnoopUnsupported,
    /// No R or W: such an entry would be "not present".
    NoAccess,
    /// Something is already mapped at (or covers) this IOVA.
    AlreadyMapped { iova: u64 },
    /// Nothing is mapped at this IOVA.
    NotMapped { iova: u64 },
    /// Unmap with a size different from the mapping's.
    SizeMismatch { iova: u64, mapped: u64 },
    /// CAP.SAGAW offers no width usable for the request.
    NoSupportedWidth { sagaw: u8 },
    /// The frame allocator is exhausted.
    OutOfFrames,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IovaZero => write!(f, "IOVA 0 is never mapped"),
            Self::Misaligned { iova, phys, size } => {
                write!(f, "iova {iova:#x} / phys {phys:#x} not aligned to {size:#x}")
            }
            Self::BeyondAddressWidth { iova, bits } => {
                write!(f, "iova {iova:#x} beyond the {bits}-bit domain width")
            }
            Self::PhysTooWide { phys, bits } => write!(f, "phys {phys:#x} beyond the {bits}-bit host address width"),
            Self::PageSizeUnsupported { size } => {
                write!(f, "page size {size:#x} not supported (CAP.SLLPS)")
            }
            Self::SnoopUnsupported => write!(f, "SNP requested but ECAP.SC is clear"),
            Self::NoAccess => write!(f, "mapping without read or write access"),
            Self::AlreadyMapped { iova } => write!(f, "iova {iova:#x} already mapped"),
            Self::NotMapped { iova } => write!(f, "iova {iova:#x} not mapped"),
            Self::SizeMismatch { iova, mapped } => {
                write!(f, "iova {iova:#x} is mapped with size {mapped:#x}")
            }
            Self::NoSupportedWidth { sagaw } => {
                write!(f, "CAP.SAGAW {sagaw:#07b} offers no usable address width")
            }
            Self::OutOfFrames => write!(f, "out of frames for page tables"),
        }
    }
}

/// A range the IOTLB must forget: `2^am` 4 KiB pages at `addr` (the
/// page-selective ADDR/AM pair of §6.5.1.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IovaRange {
    pub addr: u64,
    pub am: u8,
}

/// A software walk's answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Translation {
    pub phys: u64,
    /// R/W after ANDing every level, as hardware does.
    pub perms: Perms,
    pub size: PageSize,
}

/// One domain's second-level page table.
#[derive(Debug)]
pub struct SecondLevelTable {
    root: u64,
    geometry: Geometry,
}

impl SecondLevelTable {
    /// Allocate the top-level table.
    pub fn new<M: PhysMem + FrameAlloc>(mm: &mut M, geometry: Geometry) -> Result<Self, MapError> {
        let root = alloc_table(mm).ok_or(MapError::OutOfFrames)?;
        Ok(Self { root, geometry })
    }

    /// Physical address of the top-level table (context entry SLPTPTR).
    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Map `size` bytes at `iova` to `phys` with `perms`. Returns the range
    /// to invalidate under caching mode (non-present → present).
    pub fn map<M: PhysMem + FrameAlloc>(
        &mut self,
        mm: &mut M,
        iova: u64,
        phys: u64,
        size: PageSize,
        perms: Perms,
    ) -> Result<IovaRange, MapError> {
        self.check(iova, size)?;
        if !phys.is_multiple_of(size.bytes()) {
            return Err(MapError::Misaligned { iova, phys, size: size.bytes() });
        }
        let bits = self.geometry.host_address_bits;
        if phys.checked_add(size.bytes()).is_none_or(|end| end > 1 << bits) {
            return Err(MapError::PhysTooWide { phys, bits });
        }
        if !perms.intersects(Perms::READ | Perms::WRITE) {
            return Err(MapError::NoAccess);
        }
        if perms.contains(Perms::SNOOP) && !self.geometry.snoop_control {
            return Err(MapError::SnoopUnsupported);
        }
        let mut table = self.root;
        for level in (size.level() + 1..=self.geometry.width.levels()).rev() {
            let slot = table + index(iova, level) * 8;
            let pte = SlPte(mm.read_u64(slot));
            table = if !pte.is_present() {
                let next = alloc_table(mm).ok_or(MapError::OutOfFrames)?;
                mm.write_u64(slot, SlPte::table(next).raw());
                mm.flush_for_device(slot);
                next
            } else if pte.page_size() {
                return Err(MapError::AlreadyMapped { iova });
            } else {
                pte.address()
            };
        }
        let slot = table + index(iova, size.level()) * 8;
        if SlPte(mm.read_u64(slot)).is_present() {
            return Err(MapError::AlreadyMapped { iova });
        }
        let leaf = SlPte::default()
            .with_read(perms.contains(Perms::READ))
            .with_write(perms.contains(Perms::WRITE))
            .with_snoop(perms.contains(Perms::SNOOP))
            .with_page_size(size != PageSize::Size4K)
            .with_address(phys);
        mm.write_u64(slot, leaf.raw());
        mm.flush_for_device(slot);
        Ok(IovaRange { addr: iova, am: size.address_mask() })
    }

    /// Clear the leaf of `size` at `iova`. The caller must invalidate the
    /// returned range (IOTLB, then a wait) before reusing the IOVA or the
    /// frame it pointed to.
    pub fn unmap<M: PhysMem>(&mut self, mm: &mut M, iova: u64, size: PageSize) -> Result<IovaRange, MapError> {
        self.check(iova, size)?;
        let (slot, found) = self.leaf_slot(mm, iova).ok_or(MapError::NotMapped { iova })?;
        if found != size {
            return Err(MapError::SizeMismatch { iova, mapped: found.bytes() });
        }
        mm.write_u64(slot, 0);
        mm.flush_for_device(slot);
        Ok(IovaRange { addr: iova, am: size.address_mask() })
    }

    /// Walk the tables as hardware does (spec §3.7): `None` if any level is
    /// not present.
    pub fn translate<M: PhysMem>(&self, mm: &M, iova: u64) -> Option<Translation> {
        if iova >> self.geometry.address_bits != 0 {
            return None;
        }
        let mut table = self.root;
        let mut perms = Perms::READ | Perms::WRITE;
        for level in (1..=self.geometry.width.levels()).rev() {
            let pte = SlPte(mm.read_u64(table + index(iova, level) * 8));
            if !pte.is_present() {
                return None;
            }
            if !pte.read() {
                perms.remove(Perms::READ);
            }
            if !pte.write() {
                perms.remove(Perms::WRITE);
            }
            let leaf_size = match level {
                1 => Some(PageSize::Size4K),
                2 if pte.page_size() => Some(PageSize::Size2M),
                3 if pte.page_size() => Some(PageSize::Size1G),
                _ => None,
            };
            if let Some(size) = leaf_size {
                if pte.snoop() {
                    perms.insert(Perms::SNOOP);
                }
                let offset = iova & (size.bytes() - 1);
                return Some(Translation { phys: pte.address() + offset, perms, size });
            }
            table = pte.address();
        }
        None
    }

    /// Free every table frame. Call only after the domain is detached from
    /// all devices and the context cache and IOTLB were invalidated.
    pub fn destroy<M: PhysMem + FrameAlloc>(self, mm: &mut M) {
        free_table(mm, self.root, self.geometry.width.levels());
    }

    fn check(&self, iova: u64, size: PageSize) -> Result<(), MapError> {
        if iova == 0 {
            return Err(MapError::IovaZero);
        }
        if !self.geometry.supports(size) {
            return Err(MapError::PageSizeUnsupported { size: size.bytes() });
        }
        if !iova.is_multiple_of(size.bytes()) {
            return Err(MapError::Misaligned { iova, phys: 0, size: size.bytes() });
        }
        let last = iova + (size.bytes() - 1);
        if last >> self.geometry.address_bits != 0 {
            return Err(MapError::BeyondAddressWidth { iova, bits: self.geometry.address_bits });
        }
        Ok(())
    }

    /// The slot of the leaf covering `iova` and its size.
    fn leaf_slot<M: PhysMem>(&self, mm: &M, iova: u64) -> Option<(u64, PageSize)> {
        let mut table = self.root;
        for level in (1..=self.geometry.width.levels()).rev() {
            let slot = table + index(iova, level) * 8;
            let pte = SlPte(mm.read_u64(slot));
            if !pte.is_present() {
                return None;
            }
            match level {
                1 => return Some((slot, PageSize::Size4K)),
                2 if pte.page_size() => return Some((slot, PageSize::Size2M)),
                3 if pte.page_size() => return Some((slot, PageSize::Size1G)),
                _ => table = pte.address(),
            }
        }
        None
    }
}

/// Index of `iova` in a table of `level` (1 = last level).
fn index(iova: u64, level: u8) -> u64 {
    (iova >> (PAGE_SHIFT + LEVEL_STRIDE * (u32::from(level) - 1))) & (ENTRIES - 1)
}

/// Free a table and, below level 1, every non-leaf table it points to.
/// Recursion depth is the level count (at most 5).
fn free_table<M: PhysMem + FrameAlloc>(mm: &mut M, table: u64, level: u8) {
    if level > 1 {
        for i in 0..ENTRIES {
            let pte = SlPte(mm.read_u64(table + i * 8));
            if pte.is_present() && !pte.page_size() {
                free_table(mm, pte.address(), level - 1);
            }
        }
    }
    debug_assert_eq!(table % FRAME_SIZE, 0);
    mm.free(table);
}
