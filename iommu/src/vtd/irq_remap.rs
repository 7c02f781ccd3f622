//! Interrupt remapping (VT-d spec rev 4.1 ch. 5 and §9.10; Linux 6.1
//! drivers/iommu/intel/irq_remapping.c).
//!
//! - [`Irte`]: the 128-bit interrupt remapping table entry of §9.10 in
//!   remapped format (xAPIC destination: EIME = 0, so the 8-bit APIC id
//!   sits in bits 47:40, Linux `IRTE_DEST`).
//! - [`msi_source_validation`]: which requester ids may use an entry,
//!   exactly as Linux `set_msi_sid`: SVT=01b/SQ=0 with the requester id,
//!   or SVT=10b (bus range, start bus in SID 15:8, end bus in 7:0) for a
//!   device behind a PCIe-to-PCI bridge or with several same-bus aliases.
//!   QEMU 7.2 decodes SVT=10b with start and end swapped (`vtd_irte_get`
//!   takes bits 15:8 as the maximum): identical buses work there, a real
//!   range is refused. This module follows the spec.
//! - [`IrTable`]: the table (IRTA.S: 2^(S+1) entries) and its allocator
//!   (aligned power-of-two blocks, as Linux `alloc_irte`).
//! - [`Descriptor::iec`]: interrupt entry cache invalidation through the
//!   queue (§6.5.2.7; Linux `qi_flush_iec`, `qi_global_iec`).
//! - [`Unit::enable_interrupt_remapping`]: Linux's order (QI first), IRTA,
//!   SIRTP/IRTPS, global IEC, CFI cleared and CFIS checked clear, IRE/IRES.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use pci::Topology;
use pci::alias::pci_for_each_dma_alias;

use super::error::UnitError;
use super::inval::InvalMode;
use super::mem::{FrameAlloc, PhysMem};
use super::qi::Descriptor;
use super::regs::{self, GlobalCommand, GlobalStatus, RegisterFile};
use super::unit::Unit;

/// How a remapping entry checks the requester id of an interrupt request
/// (IRTE bits 83:64: SVT 83:82, SQ 81:80, SID 79:64).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SourceValidation {
    /// SVT=00b: no check (Linux never uses it for MSI).
    None,
    /// SVT=01b, SQ=00b: the requester id must equal `sid` in all 16 bits.
    RequesterId(u16),
    /// SVT=10b: the requester's bus must lie in `start..=end` (spec: SID
    /// 15:8 start bus, 7:0 end bus; Linux `set_irte_verify_bus`).
    BusRange { start: u8, end: u8 },
}

impl SourceValidation {
    /// (SVT, SQ, SID) as the IRTE holds them.
    pub const fn fields(self) -> (u8, u8, u16) {
        match self {
            Self::None => (0, 0, 0),
            Self::RequesterId(sid) => (1, 0, sid),
            Self::BusRange { start, end } => (2, 0, (start as u16) << 8 | end as u16),
        }
    }

    /// Whether a request from `sid` passes, as the spec (§9.10, table 9-x)
    /// defines it.
    pub const fn accepts(self, sid: u16) -> bool {
        match self {
            Self::None => true,
            Self::RequesterId(s) => s == sid,
            Self::BusRange { start, end } => {
                let bus = (sid >> 8) as u8;
                start <= bus && bus <= end
            }
        }
    }

    /// Whether QEMU 7.2 lets a request from `sid` through: the same,
    /// except SVT=10b, where `vtd_irte_get` takes SID 15:8 as the maximum
    /// and 7:0 as the minimum (swapped against the spec).
    pub const fn qemu_7_2_accepts(self, sid: u16) -> bool {
        match self {
            Self::BusRange { start, end } => {
                let bus = (sid >> 8) as u8;
                let (max, min) = (start, end);
                !(bus > max || bus < min)
            }
            other => other.accepts(sid),
        }
    }
}

impl fmt::Display for SourceValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("no source-id check"),
            Self::RequesterId(sid) => {
                write!(f, "requester id {:02x}:{:02x}.{} (SVT=01b SQ=0)", sid >> 8, (sid >> 3) & 0x1f, sid & 7)
            }
            Self::BusRange { start, end } => write!(f, "buses {start:02x}-{end:02x} (SVT=10b)"),
        }
    }
}

/// Linux `set_msi_sid`: walk the device's DMA aliases
/// (`pci_for_each_dma_alias`, every alias visited), keeping the last
/// alias, the device it belongs to, the count and how many aliases share
/// the previous alias's bus (`set_msi_sid_cb`), then:
/// 1. the last alias is on another bus than its device (a PCIe-to-PCI
///    bridge's secondary-bus alias): verify the bus range alias bus..=the
///    device's bus;
/// 2. two or more aliases, all on one bus (NTB proxy ids): verify the
///    device's bus alone;
/// 3. the alias's device is on another bus than the device (a topology
///    alias): the alias's requester id;
/// 4. otherwise (a DMA quirk alias, or none): the device's own id.
pub fn msi_source_validation(topo: &Topology, index: usize) -> SourceValidation {
    let dev_bus = topo.functions[index].bdf.bus;
    let mut count = 0u32;
    let mut busmatch = 0u32;
    let mut last: Option<(usize, u16)> = None;
    pci_for_each_dma_alias(topo, index, |a| {
        let alias = a.requester_id.requester_id();
        if count == 0 || last.is_some_and(|(_, prev)| prev >> 8 == alias >> 8) {
            busmatch += 1;
        }
        last = Some((a.device, alias));
        count += 1;
        false
    });
    let (pdev, alias) = last.unwrap_or((index, topo.functions[index].bdf.requester_id()));
    let pdev_bus = topo.functions[pdev].bdf.bus;
    let alias_bus = (alias >> 8) as u8;
    if alias_bus != pdev_bus {
        SourceValidation::BusRange { start: alias_bus, end: dev_bus }
    } else if count >= 2 && busmatch == count {
        SourceValidation::BusRange { start: dev_bus, end: dev_bus }
    } else if pdev_bus != dev_bus {
        SourceValidation::RequesterId(alias)
    } else {
        SourceValidation::RequesterId(topo.functions[index].bdf.requester_id())
    }
}

/// One interrupt remapping table entry, remapped format (spec §9.10):
///
/// ```text
///  bit  0       P    present
///  bit  1       FPD  fault processing disable
///  bit  2       DM   destination mode (0 physical)
///  bit  3       RH   redirection hint
///  bit  4       TM   trigger mode (0 edge)
///  bits 7:5     DLM  delivery mode (000 fixed)
///  bits 11:8    AVL  available
///  bits 14:12   reserved
///  bit  15      IM   IRTE mode (0 remapped, 1 posted)
///  bits 23:16   V    vector
///  bits 31:24   reserved
///  bits 63:32   DST  destination (xAPIC: APIC id in 47:40)
///  bits 79:64   SID, bits 81:80 SQ, bits 83:82 SVT
///  bits 127:84  reserved
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Irte {
    pub lo: u64,
    pub hi: u64,
}

impl Irte {
    /// A present entry delivering `vector` to the xAPIC with id `dest`,
    /// physical destination, fixed, edge, as Linux `prepare_irte` does
    /// (Linux also sets RH, which selects among the destinations a logical
    /// mode addresses; with one physical destination it changes nothing,
    /// so it stays 0 here), checked by `sv`.
    pub const fn remapped(vector: u8, dest: u8, sv: SourceValidation) -> Self {
        let (svt, sq, sid) = sv.fields();
        Self {
            lo: 1 | (vector as u64) << 16 | (dest as u64) << 40,
            hi: sid as u64 | (sq as u64) << 16 | (svt as u64) << 18,
        }
    }

    pub const fn present(&self) -> bool {
        self.lo & 1 != 0
    }

    pub const fn vector(&self) -> u8 {
        (self.lo >> 16) as u8
    }

    /// The xAPIC destination id (EIME = 0).
    pub const fn dest(&self) -> u8 {
        (self.lo >> 40) as u8
    }

    /// The source validation the entry holds (SVT=11b, reserved, reads as
    /// `None` with the raw fields kept in `hi`).
    pub const fn source_validation(&self) -> SourceValidation {
        let sid = self.hi as u16;
        match (self.hi >> 18) & 3 {
            1 => SourceValidation::RequesterId(sid),
            2 => SourceValidation::BusRange { start: (sid >> 8) as u8, end: sid as u8 },
            _ => SourceValidation::None,
        }
    }

    /// Reserved bits set, by §9.10 for xAPIC destinations (EIME = 0): 14:12,
    /// 31:24, DST 39:32 and 63:48, and 127:84 (real VT-d: fault reason
    /// 0x24). QEMU 7.2's `vtd_irte_get` checks all but the two DST ranges.
    pub const fn reserved_bits(&self) -> bool {
        self.lo & 0xffff_00ff_ff00_7000 != 0 || self.hi & !0xf_ffff != 0
    }
}

/// Bytes per IRTE.
pub const IRTE_SIZE: u64 = 16;
/// IRTA.S this kernel uses: 2^(7+1) = 256 entries, one 4 KiB frame
/// (Linux uses S=15, 65536 entries in 1 MiB; a frame holds every vector
/// a CPU has).
pub const IRTA_SIZE_FIELD: u8 = 7;
/// IRTA.EIME (bit 11): 0, xAPIC destinations (no x2APIC under TCG).
pub const IRTA_EIME: u64 = 1 << 11;

/// Why an entry could not be had.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IrteError {
    /// No free aligned block of that size.
    Full { count: u16 },
    /// Not a power of two, or larger than the table.
    BadCount(u16),
    /// The index is outside the table or not allocated.
    BadIndex(u16),
}

impl fmt::Display for IrteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { count } => write!(f, "interrupt remapping table has no free block of {count} entries"),
            Self::BadCount(n) => write!(f, "{n} IRTEs: a block is a power of two within the table"),
            Self::BadIndex(i) => write!(f, "IRTE {i} is not allocated"),
        }
    }
}

/// One unit's interrupt remapping table in one frame, and its allocator.
#[derive(Clone, Debug)]
pub struct IrTable {
    phys: u64,
    /// Per entry: allocated.
    used: Vec<bool>,
}

impl IrTable {
    /// A zeroed table (every entry not present), flushed for the unit.
    pub fn new<M: PhysMem + FrameAlloc>(mm: &mut M) -> Result<Self, UnitError> {
        let phys = mm.alloc_zeroed().ok_or(UnitError::OutOfFrames)?;
        mm.flush_frame_for_device(phys);
        Ok(Self { phys, used: vec![false; Self::entries() as usize] })
    }

    /// 2^(S+1).
    pub const fn entries() -> u16 {
        1 << (IRTA_SIZE_FIELD + 1)
    }

    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The IRTA value: table address 63:12, EIME 11 (0), S 3:0.
    pub fn irta(&self) -> u64 {
        self.phys | u64::from(IRTA_SIZE_FIELD)
    }

    /// Linux `alloc_irte`: `count` entries (a power of two), aligned to
    /// `count` so that a multi-message MSI's message number added to the
    /// handle stays in the block. Entries stay not present until [`Self::set`].
    pub fn alloc(&mut self, count: u16) -> Result<u16, IrteError> {
        if !count.is_power_of_two() || count > Self::entries() {
            return Err(IrteError::BadCount(count));
        }
        let n = usize::from(count);
        let base = (0..self.used.len())
            .step_by(n)
            .find(|&b| self.used[b..b + n].iter().all(|u| !u))
            .ok_or(IrteError::Full { count })?;
        self.used[base..base + n].iter_mut().for_each(|u| *u = true);
        Ok(base as u16)
    }

    pub fn is_allocated(&self, index: u16) -> bool {
        self.used.get(usize::from(index)).copied().unwrap_or(false)
    }

    /// Entries in use.
    pub fn in_use(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }

    fn at(&self, index: u16) -> u64 {
        self.phys + u64::from(index) * IRTE_SIZE
    }

    /// Write entry `index` (allocated): the high half first and the low
    /// half (with P) last, each flushed, so the unit never sees a present
    /// entry with a stale source-id. The caller invalidates the entry's IEC.
    pub fn set<M: PhysMem>(&self, mm: &mut M, index: u16, irte: Irte) -> Result<(), IrteError> {
        if !self.is_allocated(index) {
            return Err(IrteError::BadIndex(index));
        }
        let at = self.at(index);
        mm.write_u64(at, irte.lo & !1);
        mm.write_u64(at + 8, irte.hi);
        mm.flush_for_device(at);
        mm.write_u64(at, irte.lo);
        mm.flush_for_device(at);
        Ok(())
    }

    /// Read entry `index` back from memory.
    pub fn get<M: PhysMem>(&self, mm: &M, index: u16) -> Option<Irte> {
        (index < Self::entries()).then(|| Irte { lo: mm.read_u64(self.at(index)), hi: mm.read_u64(self.at(index) + 8) })
    }

    /// Linux `free_irte`: clear the block (P first) and give it back; the
    /// caller invalidates the IEC for it.
    pub fn free<M: PhysMem>(&mut self, mm: &mut M, index: u16, count: u16) -> Result<(), IrteError> {
        self.clear(mm, index, count)?;
        let range = usize::from(index)..usize::from(index) + usize::from(count);
        self.used[range].iter_mut().for_each(|u| *u = false);
        Ok(())
    }

    /// Clear an allocated block (P first) without giving it back.
    fn clear<M: PhysMem>(&self, mm: &mut M, index: u16, count: u16) -> Result<(), IrteError> {
        let range = usize::from(index)..usize::from(index) + usize::from(count);
        if range.end > self.used.len() || !self.used[range.clone()].iter().all(|u| *u) {
            return Err(IrteError::BadIndex(index));
        }
        for i in range {
            let at = self.at(i as u16);
            mm.write_u64(at, 0);
            mm.write_u64(at + 8, 0);
            mm.flush_for_device(at);
        }
        Ok(())
    }
}

/// Why a block of IRTEs could not be installed or removed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IrteRouteError {
    Table(IrteError),
    /// The IEC invalidation failed (queue error or timeout).
    Invalidation(UnitError),
}

impl fmt::Display for IrteRouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(e) => write!(f, "{e}"),
            Self::Invalidation(e) => write!(f, "IEC invalidation: {e}"),
        }
    }
}

/// Which IEC entries an invalidation covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IecScope {
    Global,
    /// `2^mask` entries from `index` (aligned).
    Index {
        index: u16,
        mask: u8,
    },
}

impl Descriptor {
    /// Interrupt entry cache invalidate descriptor (spec §6.5.2.7, Linux
    /// `qi_flush_iec`):
    ///
    /// ```text
    ///  bits 3:0    type = 4
    ///  bit  4      G: 0 global, 1 index-selective
    ///  bits 26:5   reserved
    ///  bits 31:27  IM (index mask: 2^IM entries)
    ///  bits 47:32  IIDX (interrupt index)
    ///  bits 127:48 reserved
    /// ```
    pub fn iec(scope: IecScope) -> Self {
        match scope {
            IecScope::Global => Self { lo: 0x4, hi: 0 },
            IecScope::Index { index, mask } => {
                Self { lo: 0x4 | 1 << 4 | u64::from(mask & 0x1f) << 27 | u64::from(index) << 32, hi: 0 }
            }
        }
    }
}

impl<R: RegisterFile> Unit<R> {
    /// Invalidate the interrupt entry cache through the queue (the only
    /// way: register-based invalidation has no IEC command).
    pub fn invalidate_iec<M: PhysMem>(&mut self, mm: &mut M, scope: IecScope) -> Result<(), UnitError> {
        self.qi_submit(mm, Descriptor::iec(scope))
    }

    /// Turn interrupt remapping on with `table`, in Linux's order
    /// (`intel_setup_irq_remapping` → `iommu_set_irq_remapping` →
    /// `iommu_enable_irq_remapping`), every wait bounded:
    /// 1. ECAP.IR required, and queued invalidation already on (Linux
    ///    enables QI before IR; the spec's IEC invalidation needs it);
    /// 2. IRTA = table | EIME 0 | S, then GCMD.SIRTP, wait for GSTS.IRTPS;
    /// 3. global IEC invalidation;
    /// 4. GCMD.CFI cleared (compatibility-format interrupts blocked) and
    ///    GSTS.CFIS checked clear;
    /// 5. GCMD.IRE, wait for GSTS.IRES; CFIS checked clear again. If
    ///    either fails, IRE is cleared again before the error returns.
    pub fn enable_interrupt_remapping<M: PhysMem>(&mut self, mm: &mut M, table: &IrTable) -> Result<(), UnitError> {
        if !self.ecap.ir() {
            return Err(UnitError::Unsupported { feature: "interrupt remapping (ECAP.IR)" });
        }
        if !matches!(self.inval, InvalMode::Queued(_)) {
            return Err(UnitError::Unsupported { feature: "queued invalidation enabled before interrupt remapping" });
        }
        regs::IRTA.write(&mut self.regs, table.irta());
        self.one_shot(GlobalCommand::SIRTP, GlobalStatus::IRTPS, "IRTPS")?;
        self.invalidate_iec(mm, IecScope::Global)?;
        if self.status().contains(GlobalStatus::CFIS) {
            self.set_enable(GlobalCommand::CFI, GlobalStatus::CFIS, false, "CFIS")?;
        }
        if self.status().contains(GlobalStatus::CFIS) {
            return Err(UnitError::CompatibilityFormatOn);
        }
        let on = self.set_enable(GlobalCommand::IRE, GlobalStatus::IRES, true, "IRES").and_then(|_| {
            if self.status().contains(GlobalStatus::CFIS) { Err(UnitError::CompatibilityFormatOn) } else { Ok(()) }
        });
        if on.is_err() {
            // As Linux's `intel_cleanup_irq_remapping` after a failed
            // enable: IRE goes back off, so that the caller's fallback
            // (compatibility-format messages for this unit's devices) is
            // not blocked by a remapping it believes is off.
            let _ = self.set_enable(GlobalCommand::IRE, GlobalStatus::IRES, false, "IRES");
        }
        on
    }

    /// Linux `intel_irq_remapping_alloc` for one MSI block: `count`
    /// entries (`alloc_irte`: aligned), entry `base + i` written with
    /// `irte(i)`, then the block invalidated in the IEC. Returns the first
    /// index (the handle). On any failure the block is cleared and given
    /// back: no entry stays present that no caller holds a handle for
    /// (its vector would go to whoever is given that vector next).
    pub fn install_irtes<M: PhysMem>(
        &mut self,
        mm: &mut M,
        table: &mut IrTable,
        count: u16,
        irte: impl Fn(u16) -> Irte,
    ) -> Result<u16, IrteRouteError> {
        let base = table.alloc(count).map_err(IrteRouteError::Table)?;
        let r = (0..count).try_for_each(|i| table.set(mm, base + i, irte(i)).map_err(IrteRouteError::Table)).and_then(
            |_| {
                let scope = IecScope::Index { index: base, mask: count.trailing_zeros() as u8 };
                self.invalidate_iec(mm, scope).map_err(IrteRouteError::Invalidation)
            },
        );
        match r {
            Ok(()) => Ok(base),
            Err(e) => {
                let _ = table.free(mm, base, count);
                Err(e)
            }
        }
    }

    /// Linux `free_irte`: clear the block, invalidate it in the IEC, give
    /// it back. If the invalidation fails the unit may still hold the old
    /// entries in its cache, so the block stays allocated (never handed
    /// to another device) and the error says so; the caller should not
    /// reuse the vectors either.
    pub fn remove_irtes<M: PhysMem>(
        &mut self,
        mm: &mut M,
        table: &mut IrTable,
        base: u16,
        count: u16,
    ) -> Result<(), IrteRouteError> {
        table.clear(mm, base, count).map_err(IrteRouteError::Table)?;
        let scope = IecScope::Index { index: base, mask: count.trailing_zeros() as u8 };
        self.invalidate_iec(mm, scope).map_err(IrteRouteError::Invalidation)?;
        table.free(mm, base, count).map_err(IrteRouteError::Table)
    }

    /// Whether GSTS.IRES is set.
    pub fn interrupt_remapping_enabled(&self) -> bool {
        self.status().contains(GlobalStatus::IRES)
    }
}
