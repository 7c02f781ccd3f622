//! The VT-d stage, glued to the hardware: each DRHD's registers over MMIO,
//! table memory from the frame allocator, one domain per IOMMU group, RMRR
//! identity maps, translation on. The programming rules live in
//! `iommu::vtd`; this module decides which device goes where.
//!
//! Policy (issue "VT-d: one domain per group"):
//! - bus mastering is off on every function until translation is on;
//! - every group gets a domain on the unit that covers it;
//! - a device has a present context entry only while a driver uses it (or
//!   an RMRR names it): a device without a driver has its DMA blocked;
//! - every requester id a device's DMA can carry (its own, quirk aliases,
//!   bridge aliases) points at its group's domain;
//! - a device whose DRHD failed gets no DMA (no context entry, bus
//!   mastering never enabled), never another unit's context entries
//!   (`iommu::vtd::unit_failure`, stricter than Linux, which drops the
//!   IOMMU entirely); if no unit comes up at all the kernel runs without
//!   an IOMMU, as Linux does.

use crate::hw::memory;
use crate::hw::mmio;
use crate::pipeline::fault_irq;
use crate::pipeline::topology::Segment;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering, fence};
use iommu::group::Groups;
use iommu::vtd::dmar::{self, Dmar, Drhd};
use iommu::vtd::dmar_scope::{DeviceScope, match_drhd_units, scope_function};
use iommu::vtd::fault::FaultRecord;
use iommu::vtd::geometry::{Geometry, PageSize};
use iommu::vtd::inval::InvalidationKind;
use iommu::vtd::irq_remap::{IrTable, Irte, IrteRouteError, SourceValidation, msi_source_validation};
use iommu::vtd::mem::{CACHE_LINE, FRAME_SIZE};
use iommu::vtd::pagetable::Perms;
use iommu::vtd::rmrr_devices;
use iommu::vtd::tables::{ContextEntry, RootTable, SourceId};
use iommu::vtd::unit_failure::{self, NoDma, Route};
use iommu::vtd::{Domain, DomainIdAllocator, FrameAlloc, Handoff, PhysMem, PollLimit, RegisterFile, Unit, UnitError};
use pci::alias::dma_requester_ids;
use pci::{ConfigSpace, Topology};

/// A DRHD's register page(s), identity-mapped uncached (`boot.s`).
pub struct Mmio {
    base: u64,
    size: usize,
}

impl Mmio {
    /// Accept a register block only inside the uncached 2-4 GiB window.
    pub(crate) fn new(drhd: &Drhd) -> Result<Self, String> {
        let size = drhd.register_size();
        let end = drhd.register_base.checked_add(size as u64);
        if drhd.register_base < (2 << 30)
            || end.is_none_or(|e| e > memory::IDENTITY_LIMIT)
            || !drhd.register_base.is_multiple_of(4096)
        {
            return Err(format!(
                "DRHD register base {:#x} (+{size:#x}) is not a page in the uncached 2-4 GiB window; unit not used",
                drhd.register_base
            ));
        }
        Ok(Self { base: drhd.register_base, size })
    }

    fn addr(&self, offset: usize, width: usize) -> Option<u64> {
        (offset.is_multiple_of(width) && offset + width <= self.size).then(|| self.base + offset as u64)
    }
}

impl RegisterFile for Mmio {
    fn read32(&self, offset: usize) -> u32 {
        match self.addr(offset, 4) {
            // SAFETY: inside the DRHD's register pages, checked in `new`
            // and `addr`; uncached identity mapping.
            Some(a) => unsafe { mmio::read(a) },
            None => u32::MAX,
        }
    }
    fn read64(&self, offset: usize) -> u64 {
        match self.addr(offset, 8) {
            // SAFETY: as `read32`.
            Some(a) => unsafe { mmio::read(a) },
            None => u64::MAX,
        }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        if let Some(a) = self.addr(offset, 4) {
            // SAFETY: as `read32`; the iommu crate writes only registers
            // whose effect it intends.
            unsafe { mmio::write(a, value) }
        }
    }
    fn write64(&mut self, offset: usize, value: u64) {
        if let Some(a) = self.addr(offset, 8) {
            // SAFETY: as `write32`.
            unsafe { mmio::write(a, value) }
        }
    }
    fn size(&self) -> usize {
        self.size
    }
}

/// Physical memory for tables and queues: identity-mapped RAM from the
/// frame allocator. Table writes are pushed out of the CPU cache with
/// `clflush` unless every unit's page walks snoop it (ECAP.C = 1); QEMU
/// reports C = 0, as do many real units (Linux `domain_flush_cache`).
pub struct KernelMemory;

/// Whether every unit in use snoops the CPU cache on page walks. False
/// (flush) until the units have been read, so no table written during
/// bring-up is missed.
static PAGE_WALKS_SNOOP: AtomicBool = AtomicBool::new(false);

fn clflush(pa: u64) {
    // SAFETY: `pa` is identity-mapped RAM (checked by the callers against
    // IDENTITY_LIMIT); clflush writes the line back and has no other effect.
    unsafe { core::arch::asm!("clflush [{}]", in(reg) pa, options(nostack, preserves_flags)) };
}

impl PhysMem for KernelMemory {
    fn read_u64(&self, pa: u64) -> u64 {
        if !pa.is_multiple_of(8) || pa >= memory::IDENTITY_LIMIT {
            return u64::MAX;
        }
        // SAFETY: table frames come from the frame allocator: RAM below
        // 4 GiB, identity-mapped; volatile so the unit's view is honoured.
        unsafe { core::ptr::read_volatile(pa as *const u64) }
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        if !pa.is_multiple_of(8) || pa >= memory::IDENTITY_LIMIT {
            return;
        }
        // SAFETY: as `read_u64`; the frame belongs to the iommu crate.
        unsafe { core::ptr::write_volatile(pa as *mut u64, value) };
        fence(Ordering::SeqCst);
    }
    fn flush_for_device(&mut self, pa: u64) {
        if PAGE_WALKS_SNOOP.load(Ordering::Relaxed) || pa >= memory::IDENTITY_LIMIT {
            return;
        }
        clflush(pa);
        fence(Ordering::SeqCst);
    }
    fn flush_frame_for_device(&mut self, pa: u64) {
        if PAGE_WALKS_SNOOP.load(Ordering::Relaxed) || pa >= memory::IDENTITY_LIMIT {
            return;
        }
        fence(Ordering::SeqCst);
        for line in (pa..pa + FRAME_SIZE).step_by(CACHE_LINE as usize) {
            clflush(line);
        }
        fence(Ordering::SeqCst);
    }
}

impl FrameAlloc for KernelMemory {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        memory::alloc_zeroed_frame().ok()
    }
    fn free(&mut self, pa: u64) {
        if let Err(e) = memory::free_frame(pa) {
            log::error!("VT-d: {e}");
        }
    }
}

/// One remapping unit in use.
pub struct UnitState {
    pub drhd: Drhd,
    pub unit: Unit<Mmio>,
    pub root: RootTable,
    pub ids: DomainIdAllocator,
    pub inval: InvalidationKind,
    pub geometry: Geometry,
    pub translation: bool,
    /// What firmware had left running, undone at bring-up.
    pub handoff: Handoff,
    /// The interrupt remapping table, when IR is on (GSTS.IRES).
    pub ir: Option<IrTable>,
    /// Why IR is off on this unit (empty when on).
    pub ir_note: String,
    /// Index-selective IEC invalidations issued after IRTE changes.
    pub iec_selective: u32,
    /// TSC cycles enabling interrupt remapping took (table, IRTA, SIRTP,
    /// global IEC, IRE).
    pub ir_cycles: u64,
}

/// A mapping as the report shows it.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub iova: u64,
    pub phys: u64,
    pub size: PageSize,
    pub perms: Perms,
}

/// Who a domain belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainUse {
    /// The group's default domain (kernel DMA API).
    Default,
    /// A user owner's domain, attached after it claimed the group.
    Owner,
}

/// A domain of one IOMMU group on one unit.
pub struct GroupDomain {
    pub group: u32,
    pub unit: usize,
    pub kind: DomainUse,
    pub domain: Domain,
    pub mappings: Vec<Mapping>,
    /// Requester ids whose context entries point here.
    pub attached: Vec<SourceId>,
    /// Next IOVA the DMA API hands out (bump allocation, 4 KiB pages).
    next_iova: u64,
}

/// IOVAs the DMA API hands out start here and stay below the 28-bit edu
/// DMA mask; IOVA 0 is never mapped.
const DMA_API_IOVA_START: u64 = 0x100_0000;
const DMA_API_IOVA_END: u64 = 0x1000_0000;

impl GroupDomain {
    fn new(group: u32, unit: usize, kind: DomainUse, domain: Domain) -> Self {
        Self { group, unit, kind, domain, mappings: Vec::new(), attached: Vec::new(), next_iova: DMA_API_IOVA_START }
    }
}

/// A fault record with the unit it came from.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub unit: usize,
    pub record: FaultRecord,
}

pub struct Vtd {
    pub units: Vec<UnitState>,
    /// For each function of the segment, the unit covering it.
    pub unit_of: Vec<Option<usize>>,
    pub domains: Vec<GroupDomain>,
    pub faults: Vec<Fault>,
    pub lost_faults: bool,
    pub problems: Vec<String>,
    /// Functions whose Bus Master Enable firmware had left on.
    pub bus_master_cleared: usize,
    /// Per function: named by an RMRR that is identity-mapped (Linux
    /// `device_has_rmrr`, a named bridge covering the devices below it).
    pub rmrr: Vec<bool>,
    /// Functions left mastering at take-over because an RMRR names them
    /// or a device below them.
    pub bus_master_kept: usize,
    /// Fault records taken by the fault-event interrupt handler, and by a
    /// polling sweep (what the handler had not taken yet, or everything
    /// when the interrupt is unavailable).
    pub faults_by_interrupt: usize,
    pub faults_polled: usize,
    /// Why faults are polled (the fault-event interrupt is not in use).
    pub fault_irq_note: Option<String>,
    /// TSC cycles setting up the fault event interrupt took.
    pub fault_irq_cycles: u64,
}

/// Where a function's interrupt goes: the message it is programmed with
/// and, when its unit remaps interrupts, the IRTE block behind it.
#[derive(Clone, Copy, Debug)]
pub struct IrqRoute {
    pub message: pci::msi::MsiMessage,
    /// (unit, first IRTE index, entries) when remapped.
    pub irte: Option<(usize, u16, u16)>,
    /// First vector and count.
    pub vector: u8,
    pub count: u32,
    /// The IRTEs' source-id check (Linux `set_msi_sid`), when remapped.
    pub source: Option<SourceValidation>,
}

/// Parse the DMAR table and report what is wrong with it. A table with no
/// DRHD is unusable: Linux then requests no ACS and forms no groups.
pub fn parse(bytes: &[u8], problems: &mut Vec<String>) -> Option<Dmar> {
    match dmar::parse(bytes) {
        Ok(d) => {
            for e in &d.errors {
                problems.push(format!("DMAR: {e}"));
            }
            if d.drhds().next().is_none() {
                problems.push(String::from("DMAR: no DRHD unit; DMA remapping is off"));
                return None;
            }
            Some(d)
        }
        Err(e) => {
            problems.push(format!("DMAR: {e}; DMA remapping is off"));
            None
        }
    }
}

const PCI_COMMAND: u16 = 0x04;
const PCI_COMMAND_MASTER: u16 = 1 << 2;

/// The function a scope path names, matched as Linux matches it
/// (`iommu::vtd::dmar_scope::dmar_match_pci_path`).
fn resolve(scope: &DeviceScope, topo: &Topology) -> Option<usize> {
    scope_function(topo, scope)
}

/// Which unit covers each function: Linux's rule
/// (`iommu::vtd::dmar_scope::match_drhd_units`, after `device_to_iommu`).
fn assign_units(drhds: &[&Drhd], seg: &Segment) -> Vec<Option<usize>> {
    match_drhd_units(drhds, &seg.topology).unit_of
}

/// Which unit translates each function, by the failed-unit rule of
/// `iommu::vtd::unit_failure` on top of the scope matching: a device whose
/// DRHD did not come up gets no unit (no context entry, and the bus-master
/// gate never lets it master), never the INCLUDE_PCI_ALL unit's; when the
/// DMAR lost DRHDs, devices only the fallback covers get none either.
fn route_devices(
    dmar: &Dmar,
    drhds: &[&Drhd],
    up: &[Option<usize>],
    seg: &Segment,
    problems: &mut Vec<String>,
) -> Vec<Option<usize>> {
    let mut covering = assign_units(drhds, seg);
    // A mistyped DRHD or RMRR scope failed Linux's scope init: no function
    // has an IOMMU (the groups stage says so), so none is translated here
    // either - an RMRR device then loses the mastering it kept.
    if seg.units.as_ref().is_some_and(|u| !u.mismatches.is_empty()) {
        covering.fill(None);
    }
    let named: Vec<Drhd> =
        drhds.iter().map(|d| Drhd { flags: d.flags - dmar::DrhdFlags::INCLUDE_PCI_ALL, ..(*d).clone() }).collect();
    let explicit = assign_units(&named.iter().collect::<Vec<_>>(), seg);
    let unknown = dmar.drhd_coverage_unknown();
    let routes = unit_failure::route(&covering, &explicit, up, unknown);
    if up.iter().all(Option::is_none) {
        // No unit at all: the caller runs without an IOMMU, as Linux does.
        return alloc::vec![None; routes.len()];
    }
    for (f, r) in seg.topology.functions.iter().zip(&routes) {
        match r {
            Route::NoDma(NoDma::UnitDown { drhd }) => problems.push(format!(
                "VT-d: {} is covered by DRHD {:#x}, which did not come up: no DMA (no context entry, bus mastering off and never enabled)",
                f.bdf, drhds[*drhd].register_base
            )),
            Route::NoDma(NoDma::CoverageUnknown) => problems.push(format!(
                "VT-d: {} may belong to a DRHD the DMAR lost: no DMA (no context entry, bus mastering off and never enabled)",
                f.bdf
            )),
            // Not an error: a device outside every DRHD's scope (QEMU's
            // bypass_iommu) is a legal machine; Linux's probe just returns
            // -ENODEV. The tree and JSON say "no IOMMU".
            Route::Uncovered => log::info!(
                "VT-d: no DRHD covers {}: no DMA (no unit translates it, so bus mastering is never enabled)",
                f.bdf
            ),
            Route::Unit(_) => {}
        }
    }
    routes.into_iter().map(Route::unit).collect()
}

/// Per function: whether an RMRR that will be identity-mapped (it passes
/// `Rmrr::check`) names it, directly or through a bridge above it.
fn rmrr_devices(dmar: &Dmar, seg: &Segment, ram: &[(u64, u64)]) -> Vec<bool> {
    let topo = &seg.topology;
    let named: Vec<usize> = dmar
        .rmrrs()
        .filter(|r| r.segment == topo.segment && r.check(ram.iter().copied()).is_ok())
        .flat_map(|r| r.scopes.iter().filter_map(|s| resolve(s, topo)))
        .collect();
    rmrr_devices::devices_with_rmrr(topo, &named)
}

impl Vtd {
    /// Bring up every DRHD of the segment, give every group a domain, clear
    /// bus mastering, and identity-map RMRRs; translation stays off.
    /// `ram` is usable RAM as `[start, end)` (the boot memory map), which
    /// no RMRR may cover.
    pub fn setup(dmar: &Dmar, seg: &Segment, ecam: &mut dyn ConfigSpace, ram: &[(u64, u64)]) -> Self {
        let mut problems = Vec::new();
        let topo = &seg.topology;
        let mut mm = KernelMemory;

        // Bus mastering off until translation is on: nothing masters while
        // units are taken over from firmware (which may mean turning its
        // translation off) and programmed. Stricter than Linux, which
        // leaves bus mastering alone at IOMMU init; but, as there, the DMA
        // firmware keeps doing for devices an RMRR names (legacy USB,
        // integrated graphics) is not stopped: those devices and the
        // bridges above them keep it, and get their identity map and
        // context entry before translation is on.
        let rmrr = rmrr_devices(dmar, seg, ram);
        let mut mastering = Vec::new();
        let mut kept = 0;
        for (i, f) in topo.functions.iter().enumerate() {
            let cmd = ecam.read16(f.bdf, PCI_COMMAND);
            if cmd == u16::MAX || cmd & PCI_COMMAND_MASTER == 0 {
                continue;
            }
            if (0..topo.functions.len()).any(|d| rmrr[d] && topo.is_at_or_below(d, i)) {
                kept += 1;
                continue;
            }
            ecam.write16(f.bdf, PCI_COMMAND, cmd & !PCI_COMMAND_MASTER);
            mastering.push((f.bdf, cmd));
        }

        let mut units = Vec::new();
        let mut drhds = Vec::new();
        // Per DRHD of this segment: the unit that came up for it.
        let mut up = Vec::new();
        for drhd in dmar.drhds() {
            if drhd.segment != topo.segment {
                problems.push(format!(
                    "DRHD {:#x} covers PCI segment {:04x}, which is not enumerated here; unit not used",
                    drhd.register_base, drhd.segment
                ));
                continue;
            }
            drhds.push(drhd);
            match bring_up(drhd, dmar.host_address_width, &mut mm) {
                Ok(state) => {
                    units.push(state);
                    up.push(Some(units.len() - 1));
                }
                Err(e) => {
                    problems.push(format!("DRHD {:#x}: {e}", drhd.register_base));
                    up.push(None);
                }
            }
        }
        PAGE_WALKS_SNOOP.store(!units.is_empty() && units.iter().all(|u| u.unit.ecap().c()), Ordering::Relaxed);

        let unit_of = route_devices(dmar, &drhds, &up, seg, &mut problems);
        let mut vtd = Self {
            units,
            unit_of,
            domains: Vec::new(),
            faults: Vec::new(),
            lost_faults: false,
            problems,
            bus_master_cleared: mastering.len(),
            rmrr,
            bus_master_kept: kept,
            faults_by_interrupt: 0,
            faults_polled: 0,
            fault_irq_note: None,
            fault_irq_cycles: 0,
        };
        // No unit came up: the caller runs as without an IOMMU, so bus
        // mastering goes back to what firmware left, and there are no
        // domains to make or RMRRs to map.
        if vtd.units.is_empty() {
            for &(bdf, cmd) in &mastering {
                ecam.write16(bdf, PCI_COMMAND, cmd);
            }
            return vtd;
        }
        // An RMRR device whose unit did not come up gets no DMA like any
        // other device of that unit: the bus mastering it kept for
        // firmware's DMA goes off, and its RMRR is not honoured.
        for (i, f) in topo.functions.iter().enumerate() {
            if vtd.rmrr[i] && vtd.unit_of[i].is_none() {
                vtd.rmrr[i] = false;
                let cmd = ecam.read16(f.bdf, PCI_COMMAND);
                if cmd != u16::MAX && cmd & PCI_COMMAND_MASTER != 0 {
                    ecam.write16(f.bdf, PCI_COMMAND, cmd & !PCI_COMMAND_MASTER);
                    vtd.bus_master_cleared += 1;
                    vtd.bus_master_kept = vtd.bus_master_kept.saturating_sub(1);
                }
                vtd.problems.push(format!(
                    "VT-d: {} is named by an RMRR but no unit translates it: bus mastering off, RMRR not honoured",
                    f.bdf
                ));
            }
        }
        if let Some(groups) = &seg.groups {
            vtd.create_domains(groups);
        }
        vtd.map_rmrrs(dmar, seg, ram);
        let t = crate::arch::rdtsc();
        vtd.enable_fault_interrupts();
        vtd.fault_irq_cycles = crate::arch::rdtsc() - t;
        vtd
    }

    /// Deliver DMA faults by the fault event interrupt (FEDATA = vector,
    /// FEADDR = this CPU, FECTL.IM cleared after stale records are drained).
    /// Without interrupts, faults are polled and the report says so.
    fn enable_fault_interrupts(&mut self) {
        if !crate::arch::interrupts::available() {
            self.fault_irq_note = Some("interrupts unavailable: fault records are polled".into());
            return;
        }
        for state in &self.units {
            let cap = state.unit.cap();
            if fault_irq::add_unit(state.drhd.register_base, cap.fro(), cap.nfr()).is_none() {
                self.fault_irq_note = Some("more units than the fault handler serves: fault records are polled".into());
                return;
            }
        }
        let vector = match fault_irq::enable() {
            Ok(v) => v,
            Err(e) => {
                self.fault_irq_note = Some(format!("no vector for the fault event ({e}): fault records are polled"));
                return;
            }
        };
        let msg = crate::arch::interrupts::compat_message(vector);
        // Interrupts off while draining: the handler of a unit unmasked
        // earlier in this loop reads every unit's records and would take
        // the same record again.
        let units = &mut self.units;
        let stale: Vec<Fault> = crate::arch::interrupts::without_interrupts(|| {
            let mut stale = Vec::new();
            for (u, state) in units.iter_mut().enumerate() {
                state.unit.program_fault_event(msg.data, msg.address);
                let log = state.unit.drain_faults();
                stale.extend(log.records.into_iter().map(|record| Fault { unit: u, record }));
                state.unit.set_fault_event_masked(false);
            }
            stale
        });
        self.faults.extend(stale);
    }

    /// One domain per (group, unit).
    fn create_domains(&mut self, groups: &Groups) {
        let mut mm = KernelMemory;
        for g in &groups.groups {
            let mut units: Vec<usize> = g.members.iter().filter_map(|m| self.unit_of[m.function]).collect();
            units.sort_unstable();
            units.dedup();
            for u in units {
                let state = &mut self.units[u];
                let Some(id) = state.ids.alloc() else {
                    self.problems.push(format!("VT-d: out of domain ids (CAP.ND) for group {}", g.id));
                    continue;
                };
                match Domain::new(&mut mm, id, state.geometry) {
                    Ok(domain) => self.domains.push(GroupDomain::new(g.id, u, DomainUse::Default, domain)),
                    Err(e) => self.problems.push(format!("VT-d: domain for group {}: {e}", g.id)),
                }
            }
        }
    }

    /// RMRR regions (VT-d spec §8.4): identity-mapped in the domain of each
    /// device that has the RMRR (named by a scope, or below a named bridge:
    /// Linux `device_has_rmrr`), which is attached now because firmware
    /// keeps doing that DMA before any driver runs.
    fn map_rmrrs(&mut self, dmar: &Dmar, seg: &Segment, ram: &[(u64, u64)]) {
        let Some(groups) = &seg.groups else { return };
        // An RMRR of another segment names functions there, not here (as
        // `rmrr_devices` decides which devices keep their DMA).
        for rmrr in dmar.rmrrs().filter(|r| r.segment == seg.topology.segment) {
            if let Err(e) = rmrr.check(ram.iter().copied()) {
                self.problems.push(format!("RMRR {:#x}-{:#x}: {e}; not mapped", rmrr.base, rmrr.limit));
                continue;
            }
            let mut named = Vec::new();
            for scope in &rmrr.scopes {
                match resolve(scope, &seg.topology) {
                    Some(i) => named.push(i),
                    None => self
                        .problems
                        .push(format!("RMRR {:#x}-{:#x}: a scope names no enumerated device", rmrr.base, rmrr.limit)),
                }
            }
            let has = rmrr_devices::devices_with_rmrr(&seg.topology, &named);
            // Devices no unit translates get no DMA (reported in setup).
            let translated: Vec<usize> = (0..has.len()).filter(|&i| has[i] && self.unit_of[i].is_some()).collect();
            for i in translated {
                let Some(group) = groups.group_of(i).map(|g| g.id) else { continue };
                let mut page = rmrr.base;
                if page == 0 {
                    self.problems.push(format!(
                        "RMRR {:#x}-{:#x}: page 0 left unmapped (IOVA 0 is never mapped)",
                        rmrr.base, rmrr.limit
                    ));
                    page = 4096;
                }
                while page <= rmrr.limit {
                    match self.map(group, i, page, page, Perms::READ | Perms::WRITE) {
                        Ok(()) => {}
                        // Overlapping RMRRs, or two scoped devices in one
                        // group: the page is already identity-mapped.
                        Err(_) if self.identity_mapped(group, i, page) => {}
                        Err(e) => {
                            self.problems.push(format!("RMRR identity map of {page:#x}: {e}"));
                            break;
                        }
                    }
                    page += 4096;
                }
                if let Err(e) = self.attach(&seg.topology, groups, i) {
                    self.problems.push(format!("RMRR device {}: {e}", seg.topology.functions[i].bdf));
                }
            }
        }
    }

    /// Whether `group`'s domain for function `index` translates `page` to
    /// itself.
    fn identity_mapped(&self, group: u32, index: usize, page: u64) -> bool {
        self.domain_index(group, index)
            .and_then(|d| self.domains[d].domain.translate(&KernelMemory, page))
            .is_some_and(|t| t.phys == page)
    }

    /// The default domain of `group` on the unit covering function `index`.
    pub fn domain_index(&self, group: u32, index: usize) -> Option<usize> {
        let unit = self.unit_of.get(index).copied().flatten()?;
        self.domains.iter().position(|d| d.group == group && d.unit == unit && d.kind == DomainUse::Default)
    }

    /// A new, empty domain for a user owner of `group`, on the unit that
    /// covers function `index`.
    pub fn create_owner_domain(&mut self, group: u32, index: usize) -> Result<usize, String> {
        let unit = self.unit_of.get(index).copied().flatten().ok_or("no DRHD covers the device")?;
        let state = &mut self.units[unit];
        let id = state.ids.alloc().ok_or("out of domain ids (CAP.ND)")?;
        let domain = Domain::new(&mut KernelMemory, id, state.geometry).map_err(|e| format!("{e}"))?;
        self.domains.push(GroupDomain::new(group, unit, DomainUse::Owner, domain));
        Ok(self.domains.len() - 1)
    }

    /// Destroy a user owner's domain once nothing points at it (its table
    /// frames are freed after the detach invalidations completed).
    pub fn destroy_owner_domain(&mut self, d: usize) -> Result<(), String> {
        if self.domains[d].kind != DomainUse::Owner || !self.domains[d].attached.is_empty() {
            return Err(String::from("domain is not an unattached owner domain"));
        }
        let gd = self.domains.remove(d);
        self.units[gd.unit].ids.free(gd.domain.id());
        gd.domain.destroy(&mut KernelMemory);
        Ok(())
    }

    /// Point every requester id of function `index` at its group's default
    /// domain.
    pub fn attach(&mut self, topo: &Topology, groups: &Groups, index: usize) -> Result<(), String> {
        let group = groups.group_of(index).ok_or("device has no group")?.id;
        let d = self.domain_index(group, index).ok_or("no domain for the device's group")?;
        self.attach_to(topo, index, d)
    }

    /// Point every requester id of function `index` at domain `d`.
    pub fn attach_to(&mut self, topo: &Topology, index: usize, d: usize) -> Result<(), String> {
        let unit = self.domains[d].unit;
        // A domain lives on one unit: its context entries must go into the
        // root table of the unit that covers the device.
        if self.unit_of.get(index).copied().flatten() != Some(unit) {
            return Err(format!(
                "{} is not covered by unit {unit}, which holds domain {}",
                topo.functions[index].bdf,
                self.domains[d].domain.id().0
            ));
        }
        let mut mm = KernelMemory;
        for alias in dma_requester_ids(topo, index) {
            let r = alias.requester_id;
            let sid = SourceId::new(r.bus, r.device, r.function);
            let (units, domains) = (&mut self.units, &mut self.domains);
            let state = &mut units[unit];
            state.unit.attach_device(&mut mm, &mut state.root, sid, &domains[d].domain).map_err(|e| format!("{e}"))?;
            for (i, other) in domains.iter_mut().enumerate() {
                if i != d {
                    other.attached.retain(|s| *s != sid);
                }
            }
            if !domains[d].attached.contains(&sid) {
                domains[d].attached.push(sid);
            }
        }
        Ok(())
    }

    /// The context entries the unit's root table holds now for every
    /// requester id of function `index`: what its DMA would be translated
    /// with (read from the table, not from the kernel's bookkeeping).
    pub fn hardware_context(&self, topo: &Topology, index: usize) -> Vec<(SourceId, ContextEntry)> {
        let Some(unit) = self.unit_of.get(index).copied().flatten() else { return Vec::new() };
        let state = &self.units[unit];
        dma_requester_ids(topo, index)
            .iter()
            .map(|a| {
                let r = a.requester_id;
                let sid = SourceId::new(r.bus, r.device, r.function);
                (sid, state.root.context_entry(&KernelMemory, sid))
            })
            .collect()
    }

    /// Clear the context entries of function `index`'s requester ids: its
    /// DMA is blocked again. Ids shared with another attached device of the
    /// same group (a bridge alias) stay while that device is attached.
    pub fn detach(&mut self, topo: &Topology, index: usize, still_attached: &[usize]) -> Result<(), String> {
        let mut keep: Vec<SourceId> = Vec::new();
        for &other in still_attached.iter().filter(|&&o| o != index) {
            keep.extend(
                dma_requester_ids(topo, other)
                    .iter()
                    .map(|a| SourceId::new(a.requester_id.bus, a.requester_id.device, a.requester_id.function)),
            );
        }
        let Some(unit) = self.unit_of.get(index).copied().flatten() else { return Ok(()) };
        let mut mm = KernelMemory;
        for alias in dma_requester_ids(topo, index) {
            let r = alias.requester_id;
            let sid = SourceId::new(r.bus, r.device, r.function);
            if keep.contains(&sid) {
                continue;
            }
            let state = &mut self.units[unit];
            state.unit.detach_device(&mut mm, &mut state.root, sid).map_err(|e| format!("{e}"))?;
            for d in &mut self.domains {
                d.attached.retain(|s| *s != sid);
            }
        }
        Ok(())
    }

    /// Map one 4 KiB page in the default domain of `group` (on `index`'s unit).
    pub fn map(&mut self, group: u32, index: usize, iova: u64, phys: u64, perms: Perms) -> Result<(), UnitError> {
        let d = self.domain_index(group, index).ok_or(UnitError::Unsupported { feature: "a domain for this group" })?;
        self.map_in(d, iova, phys, perms)
    }

    /// Map one 4 KiB page in domain `d`.
    pub fn map_in(&mut self, d: usize, iova: u64, phys: u64, perms: Perms) -> Result<(), UnitError> {
        let mut mm = KernelMemory;
        let (units, domains) = (&mut self.units, &mut self.domains);
        let gd = &mut domains[d];
        units[gd.unit].unit.map(&mut mm, &mut gd.domain, iova, phys, PageSize::Size4K, perms)?;
        gd.mappings.push(Mapping { iova, phys, size: PageSize::Size4K, perms });
        Ok(())
    }

    /// Unmap one 4 KiB page; when this returns the IOTLB has forgotten it.
    pub fn unmap(&mut self, group: u32, index: usize, iova: u64) -> Result<(), UnitError> {
        let d = self.domain_index(group, index).ok_or(UnitError::Unsupported { feature: "a domain for this group" })?;
        self.unmap_in(d, iova)
    }

    /// Unmap one 4 KiB page from domain `d`.
    pub fn unmap_in(&mut self, d: usize, iova: u64) -> Result<(), UnitError> {
        let mut mm = KernelMemory;
        let (units, domains) = (&mut self.units, &mut self.domains);
        let gd = &mut domains[d];
        units[gd.unit].unit.unmap(&mut mm, &mut gd.domain, iova, PageSize::Size4K)?;
        gd.mappings.retain(|m| m.iova != iova);
        Ok(())
    }

    /// The kernel DMA API (`dma_map_single`): map `phys` in the default
    /// domain of function `index`'s group at a fresh IOVA and return it.
    pub fn dma_map(&mut self, groups: &Groups, index: usize, phys: u64, perms: Perms) -> Result<u64, String> {
        let group = groups.group_of(index).ok_or("device has no group")?.id;
        let d = self.domain_index(group, index).ok_or("no domain for the device's group")?;
        let iova = self.domains[d].next_iova;
        if iova >= DMA_API_IOVA_END {
            return Err(String::from("DMA API IOVA space exhausted"));
        }
        self.map_in(d, iova, phys, perms).map_err(|e| format!("{e}"))?;
        self.domains[d].next_iova += 4096;
        Ok(iova)
    }

    /// `dma_unmap_single`: unmap and invalidate before the page is reused.
    pub fn dma_unmap(&mut self, groups: &Groups, index: usize, iova: u64) -> Result<(), String> {
        let group = groups.group_of(index).ok_or("device has no group")?.id;
        let d = self.domain_index(group, index).ok_or("no domain for the device's group")?;
        self.unmap_in(d, iova).map_err(|e| format!("{e}"))
    }

    /// GCMD.TE on every unit, then PMEN off (VT-d spec §10.4.4, §11.4.16).
    pub fn enable_translation(&mut self) {
        for state in &mut self.units {
            match state.unit.enable_translation().and_then(|_| state.unit.disable_protected_memory()) {
                Ok(()) => state.translation = true,
                Err(e) => {
                    self.problems.push(format!("DRHD {:#x}: enabling translation: {e}", state.drhd.register_base))
                }
            }
        }
    }

    /// The one gate to bus mastering: every path that lets a device DMA
    /// (a driver starting DMA, the owner driving its device, the DMA
    /// proofs) comes through here. Refused, with the reason, unless a unit
    /// covers the device and translation is on there: a device never
    /// masters the bus while its DMA would reach memory untranslated.
    pub fn enable_bus_master(&self, ecam: &mut dyn ConfigSpace, topo: &Topology, index: usize) -> Result<(), String> {
        let bdf = topo.functions[index].bdf;
        let unit = self
            .unit_of
            .get(index)
            .copied()
            .flatten()
            .ok_or_else(|| format!("{bdf}: no remapping unit translates its DMA; bus mastering stays off"))?;
        if !self.units[unit].translation {
            return Err(format!("{bdf}: translation is not on in its unit; bus mastering stays off"));
        }
        set_bus_master(ecam, topo, index);
        Ok(())
    }

    /// Linux `device_is_rmrr_locked`: an RMRR device that is neither USB
    /// nor graphics, which must keep its identity map (no claim).
    pub fn rmrr_locked(&self, topo: &Topology, index: usize) -> bool {
        rmrr_devices::device_is_rmrr_locked(self.rmrr.get(index).copied().unwrap_or(false), topo.functions[index].class)
    }

    /// Whether every unit in use translates (and at least one is in use).
    pub fn translation_enabled(&self) -> bool {
        !self.units.is_empty() && self.units.iter().all(|u| u.translation)
    }

    /// The message function `index` must send for `count` vectors from
    /// `vector` (an aligned block): compatibility format when its unit
    /// does not remap interrupts.
    ///
    /// With IR on the device's unit: `count` IRTEs (an aligned block, Linux
    /// `alloc_irte`), each delivering `vector + n` to this CPU with the
    /// source-id check of Linux `set_msi_sid`, written, then invalidated
    /// index-selectively in the IEC; the message is remappable (handle =
    /// first entry, SHV=1, subhandle 0).
    pub fn interrupt_route(
        &mut self,
        topo: &Topology,
        index: usize,
        vector: u8,
        count: u32,
    ) -> Result<IrqRoute, String> {
        let compat = IrqRoute {
            message: crate::arch::interrupts::compat_message(vector),
            irte: None,
            vector,
            count,
            source: None,
        };
        let Some(u) = self.unit_of.get(index).copied().flatten() else {
            return Ok(compat);
        };
        let state = &mut self.units[u];
        let Some(table) = state.ir.as_mut() else {
            return Ok(compat);
        };
        let mut mm = KernelMemory;
        let n = u16::try_from(count).map_err(|_| format!("{count} vectors"))?;
        let sv = msi_source_validation(topo, index);
        let dest = crate::arch::interrupts::apic_id();
        // On failure nothing stays present (`install_irtes` gives the
        // block back): the caller frees the vectors.
        let base = state
            .unit
            .install_irtes(&mut mm, table, n, |i| Irte::remapped(vector + i as u8, dest, sv))
            .map_err(|e| format!("{e}"))?;
        state.iec_selective += 1;
        Ok(IrqRoute {
            message: pci::msi::MsiMessage::remappable(base, 0),
            irte: Some((u, base, n)),
            vector,
            count,
            source: Some(sv),
        })
    }

    /// Give back the IRTEs of a route: cleared, invalidated, then freed
    /// (nothing without remapping). Returns false when the unit may still
    /// cache the old entries (the IEC invalidation failed): the block stays
    /// allocated and the caller must not hand the vectors to anyone else.
    pub fn free_interrupt_route(&mut self, route: &IrqRoute) -> bool {
        let Some((u, base, n)) = route.irte else { return true };
        let mut mm = KernelMemory;
        let state = &mut self.units[u];
        let Some(table) = state.ir.as_mut() else { return true };
        match state.unit.remove_irtes(&mut mm, table, base, n) {
            Ok(()) => {
                state.iec_selective += 1;
                true
            }
            Err(e @ IrteRouteError::Table(_)) => {
                self.problems.push(format!("VT-d: freeing IRTE {base}: {e}"));
                true
            }
            Err(e) => {
                self.problems
                    .push(format!("VT-d: IRTE {base}: {e}; the entries and their vectors are kept out of use"));
                false
            }
        }
    }

    /// IRTE `index` of unit `u` as the table holds it.
    pub fn irte(&self, u: usize, index: u16) -> Option<Irte> {
        self.units.get(u)?.ir.as_ref()?.get(&KernelMemory, index)
    }

    /// Whether interrupt remapping is on for function `index`'s unit:
    /// VFIO's condition for handing its group to user space.
    pub fn interrupt_remapping_for(&self, index: usize) -> bool {
        self.unit_of.get(index).copied().flatten().is_some_and(|u| self.units[u].ir.is_some())
    }

    /// Read and clear every unit's fault records; returns how many were new.
    /// With the fault event interrupt on, the records come from its
    /// handler; a polling sweep follows (with interrupts off) and counts
    /// anything the handler had not taken.
    pub fn collect_faults(&mut self) -> usize {
        let before = self.faults.len();
        if fault_irq::enabled() {
            let mut got = Vec::new();
            let overflow = fault_irq::drain(|u, index, lo, hi| got.push((u, index, lo, hi)));
            self.lost_faults |= overflow;
            for (u, index, lo, hi) in got {
                if let Some(record) = FaultRecord::decode(index, lo, hi) {
                    log::debug!("DMAR (interrupt): {record}");
                    self.faults.push(Fault { unit: u, record });
                    self.faults_by_interrupt += 1;
                }
            }
        }
        let polled_before = self.faults.len();
        let units = &mut self.units;
        let logs: Vec<_> =
            crate::arch::interrupts::without_interrupts(|| units.iter_mut().map(|s| s.unit.drain_faults()).collect());
        for (u, log) in logs.into_iter().enumerate() {
            self.lost_faults |= log.overflow;
            for record in log.records {
                log::debug!("DMAR: {record}");
                self.faults.push(Fault { unit: u, record });
            }
        }
        self.faults_polled += self.faults.len() - polled_before;
        self.faults.len() - before
    }
}

/// Probe one DRHD: take it over from firmware, then registers,
/// invalidation interface, root table. Page-table leaves are limited to the
/// platform's host address width `haw` (DMAR).
fn bring_up(drhd: &Drhd, haw: u8, mm: &mut KernelMemory) -> Result<UnitState, String> {
    let regs = Mmio::new(drhd)?;
    let mut unit = Unit::new(regs, PollLimit::default()).map_err(|e| format!("{e}"))?;
    let handoff = unit.take_over().map_err(|e| format!("taking over from firmware: {e}"))?;
    if !handoff.is_clean() {
        log::warn!("DRHD {:#x}: {handoff}", drhd.register_base);
    }
    let inval = unit.setup_invalidation(mm).map_err(|e| format!("invalidation: {e}"))?;
    // Interrupt remapping after QI (Linux's order). A unit that cannot
    // remap still translates DMA; its devices get compatibility-format
    // messages, and VFIO-style claims of their groups are refused.
    let t_ir = crate::arch::rdtsc();
    let (ir, ir_note) = if !unit.ecap().ir() {
        (None, String::from("ECAP.IR clear: the unit cannot remap interrupts"))
    } else {
        match IrTable::new(mm).and_then(|t| unit.enable_interrupt_remapping(mm, &t).map(|_| t)) {
            Ok(t) => (Some(t), String::new()),
            Err(e) => {
                log::error!("DRHD {:#x}: interrupt remapping: {e}", drhd.register_base);
                (None, format!("enabling failed: {e}"))
            }
        }
    };
    let root = RootTable::new(mm).map_err(|e| format!("root table: {e}"))?;
    unit.set_root_table(mm, &root).map_err(|e| format!("root table: {e}"))?;
    let ir_cycles = crate::arch::rdtsc() - t_ir;
    let geometry = Geometry::for_unit(unit.cap(), unit.ecap(), Geometry::DEFAULT_NEED_BITS)
        .map_err(|e| format!("{e}"))?
        .with_host_address_width(haw);
    let ids = DomainIdAllocator::new(unit.cap());
    Ok(UnitState {
        drhd: drhd.clone(),
        unit,
        root,
        ids,
        inval,
        geometry,
        translation: false,
        handoff,
        ir,
        ir_note,
        iec_selective: 0,
        ir_cycles,
    })
}

/// Whether a bridge on `index`'s path carries Linux's PCIE_BRIDGE_ALIAS
/// quirk (8086:244e below a PCIe port). Linux then expects the device's DMA
/// under (secondary bus, 00.0), as the real 82801 DMI-to-PCI bridge sends
/// it; QEMU's model of that bridge is conventional PCI and sends the
/// bridge's own requester id instead. The context entries follow Linux; the
/// DMA demonstrations avoid such devices, whose DMA QEMU and Linux route
/// differently.
pub fn alias_quirk_on_path(topo: &Topology, index: usize) -> bool {
    core::iter::successors(topo.functions[index].parent, |&p| topo.functions[p].parent)
        .any(|p| topo.functions[p].dev_flags.contains(pci::topology::DevFlags::PCIE_BRIDGE_ALIAS))
}

/// Set Bus Master Enable on `index` and every bridge above it (Linux
/// `pci_set_master` with `pci_enable_bridge` on the way up). Private: the
/// only way in is [`Vtd::enable_bus_master`], which checks translation.
fn set_bus_master(ecam: &mut dyn ConfigSpace, topo: &Topology, index: usize) {
    let mut at = Some(index);
    for _ in 0..topo.functions.len() {
        let Some(i) = at else { break };
        let bdf = topo.functions[i].bdf;
        let cmd = ecam.read16(bdf, PCI_COMMAND);
        if cmd != u16::MAX && cmd & PCI_COMMAND_MASTER == 0 {
            ecam.write16(bdf, PCI_COMMAND, cmd | PCI_COMMAND_MASTER);
        }
        at = topo.functions[i].parent;
    }
}
