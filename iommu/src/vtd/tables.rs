//! Root and context tables in legacy mode (VT-d spec rev 4.1 §3.4.2, §9.1,
//! §9.3): a 4 KiB root table of 256 root entries (one per bus), each
//! pointing at a 4 KiB context table of 256 context entries (one per devfn).

use core::fmt;

use pci::Bdf;

use super::domain::DomainId;
use super::mem::{FrameAlloc, PhysMem, alloc_table};
use super::pagetable::{AddressWidth, MapError};

/// A requester id as the unit sees it (spec §3.4.1 "source-id"):
/// bus 15:8, device 7:3, function 2:0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u16);

impl SourceId {
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Self(((bus as u16) << 8) | (((device & 0x1f) as u16) << 3) | (function & 7) as u16)
    }
    /// The requester id of a PCI function (the segment selects the unit).
    pub const fn from_bdf(bdf: Bdf) -> Self {
        Self(bdf.requester_id())
    }
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub const fn devfn(self) -> u8 {
        self.0 as u8
    }
    pub const fn device(self) -> u8 {
        self.devfn() >> 3
    }
    pub const fn function(self) -> u8 {
        self.devfn() & 7
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus(), self.device(), self.function())
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({self})")
    }
}

/// A legacy-mode root entry (spec §9.1):
///
/// ```text
///  bit  0      P    present
///  bits 11:1   reserved (0)
///  bits 63:12  CTP  context-table pointer
///  bits 127:64 reserved (0)
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct RootEntry {
    lo: u64,
    hi: u64,
}

impl RootEntry {
    const P: u64 = 1;
    const CTP_MASK: u64 = !0xfff;

    pub const fn raw(self) -> (u64, u64) {
        (self.lo, self.hi)
    }
    pub const fn present(self) -> bool {
        self.lo & Self::P != 0
    }
    pub const fn context_table_pointer(self) -> u64 {
        self.lo & Self::CTP_MASK
    }
    pub const fn with_present(mut self, on: bool) -> Self {
        self.lo = if on { self.lo | Self::P } else { self.lo & !Self::P };
        self
    }
    pub const fn with_context_table_pointer(mut self, pa: u64) -> Self {
        self.lo = (self.lo & !Self::CTP_MASK) | (pa & Self::CTP_MASK);
        self
    }
}

/// Context-entry translation type (spec §9.3, T field).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TranslationType {
    /// 00: untranslated requests go through second-level tables; translated
    /// and translation requests are blocked (no device-TLB).
    UntranslatedOnly,
    /// 01: device-TLB allowed (ECAP.DT).
    AllRequests,
    /// 10: pass-through (ECAP.PT); address width must be the largest AGAW.
    PassThrough,
}

impl TranslationType {
    const fn encoding(self) -> u64 {
        match self {
            Self::UntranslatedOnly => 0b00,
            Self::AllRequests => 0b01,
            Self::PassThrough => 0b10,
        }
    }
}

/// A legacy-mode context entry (spec §9.3):
///
/// ```text
///  bit  0      P        present
///  bit  1      FPD      fault processing disable (kept 0: faults are recorded)
///  bits 3:2    T        translation type (TranslationType)
///  bits 11:4   reserved (0)
///  bits 63:12  SLPTPTR  second-level page-table pointer
///  bits 66:64  AW       address width (AGAW: 1 = 39, 2 = 48, 3 = 57 bits)
///  bits 70:67  ignored
///  bit  71     reserved (0)
///  bits 87:72  DID      domain identifier
///  bits 127:88 reserved (0)
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct ContextEntry {
    lo: u64,
    hi: u64,
}

impl ContextEntry {
    const P: u64 = 1 << 0;
    const FPD: u64 = 1 << 1;
    const T_SHIFT: u32 = 2;
    const T_MASK: u64 = 0b11 << Self::T_SHIFT;
    const SLPTPTR_MASK: u64 = !0xfff;
    const AW_MASK: u64 = 0b111;
    const DID_SHIFT: u32 = 8;
    const DID_MASK: u64 = 0xffff << Self::DID_SHIFT;

    pub const fn raw(self) -> (u64, u64) {
        (self.lo, self.hi)
    }
    pub const fn from_raw(lo: u64, hi: u64) -> Self {
        Self { lo, hi }
    }
    pub const fn present(self) -> bool {
        self.lo & Self::P != 0
    }
    pub const fn fault_processing_disable(self) -> bool {
        self.lo & Self::FPD != 0
    }
    pub const fn slptptr(self) -> u64 {
        self.lo & Self::SLPTPTR_MASK
    }
    /// The AW field (AGAW encoding).
    pub const fn address_width(self) -> u8 {
        (self.hi & Self::AW_MASK) as u8
    }
    pub const fn domain_id(self) -> DomainId {
        DomainId(((self.hi & Self::DID_MASK) >> Self::DID_SHIFT) as u16)
    }
    /// The T field, raw.
    pub const fn translation_type_bits(self) -> u8 {
        ((self.lo & Self::T_MASK) >> Self::T_SHIFT) as u8
    }

    pub const fn with_present(mut self, on: bool) -> Self {
        self.lo = if on { self.lo | Self::P } else { self.lo & !Self::P };
        self
    }
    pub const fn with_fault_processing_disable(mut self, on: bool) -> Self {
        self.lo = if on { self.lo | Self::FPD } else { self.lo & !Self::FPD };
        self
    }
    pub const fn with_translation_type(mut self, t: TranslationType) -> Self {
        self.lo = (self.lo & !Self::T_MASK) | (t.encoding() << Self::T_SHIFT);
        self
    }
    pub const fn with_slptptr(mut self, pa: u64) -> Self {
        self.lo = (self.lo & !Self::SLPTPTR_MASK) | (pa & Self::SLPTPTR_MASK);
        self
    }
    pub const fn with_address_width(mut self, aw: AddressWidth) -> Self {
        self.hi = (self.hi & !Self::AW_MASK) | aw.agaw() as u64;
        self
    }
    pub const fn with_domain_id(mut self, did: DomainId) -> Self {
        self.hi = (self.hi & !Self::DID_MASK) | ((did.0 as u64) << Self::DID_SHIFT);
        self
    }
}

/// Write a 128-bit entry whose present bit is in the low half: when it
/// becomes present, the high half first; otherwise the low half first, so
/// hardware never sees a present entry with a stale other half.
fn write_entry<M: PhysMem>(mm: &mut M, pa: u64, (lo, hi): (u64, u64), present: bool) {
    if present {
        mm.write_u64(pa + 8, hi);
        mm.write_u64(pa, lo);
    } else {
        mm.write_u64(pa, lo);
        mm.write_u64(pa + 8, hi);
    }
    mm.flush_for_device(pa);
}

/// The root table of one unit and the context tables under it.
#[derive(Debug)]
pub struct RootTable {
    phys: u64,
}

impl RootTable {
    /// Allocate an empty root table (all entries not present: every DMA
    /// faults with reason 1 once translation is enabled).
    pub fn new<M: PhysMem + FrameAlloc>(mm: &mut M) -> Result<Self, MapError> {
        let phys = alloc_table(mm).ok_or(MapError::OutOfFrames)?;
        Ok(Self { phys })
    }

    /// Physical address for RTADDR.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    pub fn root_entry<M: PhysMem>(&self, mm: &M, bus: u8) -> RootEntry {
        let pa = self.phys + u64::from(bus) * 16;
        RootEntry { lo: mm.read_u64(pa), hi: mm.read_u64(pa + 8) }
    }

    /// The context entry for `sid`; not present if its bus has no table.
    pub fn context_entry<M: PhysMem>(&self, mm: &M, sid: SourceId) -> ContextEntry {
        let root = self.root_entry(mm, sid.bus());
        if !root.present() {
            return ContextEntry::default();
        }
        let pa = root.context_table_pointer() + u64::from(sid.devfn()) * 16;
        ContextEntry { lo: mm.read_u64(pa), hi: mm.read_u64(pa + 8) }
    }

    /// Store `entry` for `sid`, allocating the bus's context table if needed.
    /// Invalidation is the caller's job (see `Unit::attach_device`).
    pub fn set_context_entry<M: PhysMem + FrameAlloc>(
        &mut self,
        mm: &mut M,
        sid: SourceId,
        entry: ContextEntry,
    ) -> Result<(), MapError> {
        let root = self.root_entry(mm, sid.bus());
        let table = if root.present() {
            root.context_table_pointer()
        } else {
            let table = alloc_table(mm).ok_or(MapError::OutOfFrames)?;
            let new_root = RootEntry::default().with_context_table_pointer(table).with_present(true);
            write_entry(mm, self.phys + u64::from(sid.bus()) * 16, new_root.raw(), true);
            table
        };
        let pa = table + u64::from(sid.devfn()) * 16;
        write_entry(mm, pa, entry.raw(), entry.present());
        Ok(())
    }

    /// Free the context tables and the root table. Call only after
    /// translation is disabled or RTADDR points elsewhere.
    pub fn destroy<M: PhysMem + FrameAlloc>(self, mm: &mut M) {
        for bus in 0..=255u8 {
            let root = self.root_entry(mm, bus);
            if root.present() {
                mm.free(root.context_table_pointer());
            }
        }
        mm.free(self.phys);
    }
}
