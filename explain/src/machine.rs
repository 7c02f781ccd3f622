//! The kernel's pipeline on a snapshot: root buses from the input, the same
//! enumeration (`pci::enumerate`), ACS enabling (`pci::acs::enable_acs`),
//! SR-IOV virtual functions (`pci::sriov`) and grouping
//! (`iommu::group::pci_device_groups`) as the kernel runs over ECAM.

use std::collections::{BTreeMap, BTreeSet};

use iommu::group::{Groups, pci_device_groups};
use iommu::vtd::dmar::Drhd;
use iommu::vtd::dmar_scope::match_drhd_units;
use pci::acs::{ChipsetMmio, enable_acs_with};
use pci::caps::{PcieType, read_capabilities, read_function_caps};
use pci::regs::{PCI_CLASS_REVISION, PCI_VENDOR_ID};
use pci::regs::{
    PCI_HEADER_TYPE, PCI_HEADER_TYPE_MASK, PCI_HEADER_TYPE_NORMAL, PCI_SECONDARY_BUS, PCI_SUBORDINATE_BUS,
};
use pci::sriov::{add_virtual_functions, virtual_function_addresses};
use pci::topology::EnumErrorKind;
use pci::{Bdf, ConfigSpace, Topology, enumerate_with_peer_probe};

use crate::input::Input;
use crate::snapshot::{Snapshot, Space};

/// One PCI segment after the pipeline.
pub struct Segment {
    pub number: u16,
    pub roots: Vec<u8>,
    pub topology: Topology,
    pub groups: Groups,
    /// Added to this segment's group ids: Linux hands ids out from one
    /// allocator for every segment (`iommu_group_ida`), segments probed in
    /// order, so a segment's ids follow the previous segments' groups.
    pub id_base: u32,
}

impl Segment {
    /// The machine-wide id of this segment's function `index`'s group.
    pub fn group_id(&self, index: usize) -> Option<u32> {
        self.groups.group_of(index).map(|g| g.id + self.id_base)
    }
}

/// The whole machine after the pipeline.
pub struct Machine {
    pub snapshot: Snapshot,
    pub segments: Vec<Segment>,
    /// Functions of the input that enumeration did not reach.
    pub unreached: Vec<Bdf>,
    /// Functions left out of grouping: the input carries Linux's groups and
    /// names none for them, or (without groups) no DMAR unit covers them.
    pub not_covered: BTreeSet<Bdf>,
    /// The register base of the DMAR unit covering each function, when the
    /// input has a DMAR table (`iommu::vtd::dmar_scope::match_drhd_units`).
    pub unit_of: BTreeMap<Bdf, u64>,
}

/// Root buses of one segment, as the input lets them be known (ACPI's
/// host bridges are not in it):
///
/// - every bus holding a function that no bridge's secondary..subordinate
///   range covers;
/// - every bus holding a root port, a root-complex integrated endpoint or
///   event collector although a bridge's range covers it: such functions
///   sit on a root complex's bus (an expander whose bus number a bridge's
///   range overlaps). `pci::enumerate` then keeps it below the bridge when
///   the bridge reached it first, as x86 `pci_acpi_scan_root` does;
///
/// in the order QEMU's DSDT lists host bridges: the segment's lowest bus
/// (the main host bridge) first, then the others from the highest bus down.
/// The order changes groups only when ranges overlap; Linux's own order is
/// ACPI's, which the input does not show. Buses that neither rule finds
/// and no bridge reaches are left to the peer-bus probe (see [`build`]).
pub fn root_buses(snapshot: &mut Snapshot, segment: u16) -> Vec<u8> {
    let bdfs: Vec<Bdf> = snapshot.spaces.keys().copied().filter(|b| b.segment == segment).collect();
    let mut covered = [false; 256];
    let mut root_complex = [false; 256];
    for &b in &bdfs {
        let header = snapshot.read8(b, PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
        if header > 2 {
            continue;
        }
        let class = snapshot.read32(b, PCI_CLASS_REVISION) >> 8;
        let (caps, _, _) = read_function_caps(snapshot, b, header, class, false);
        if caps.pcie.is_some_and(|p| matches!(p.port_type, PcieType::RootPort | PcieType::RcEnd | PcieType::RcEc)) {
            root_complex[usize::from(b.bus)] = true;
        }
        if header == PCI_HEADER_TYPE_NORMAL {
            continue;
        }
        let (sec, sub) = (snapshot.read8(b, PCI_SECONDARY_BUS), snapshot.read8(b, PCI_SUBORDINATE_BUS));
        if sec > b.bus && sub >= sec {
            for n in sec..=sub {
                covered[usize::from(n)] = true;
            }
        }
    }
    let buses: BTreeSet<u8> =
        bdfs.iter().map(|b| b.bus).filter(|&n| !covered[usize::from(n)] || root_complex[usize::from(n)]).collect();
    let mut order: Vec<u8> = buses.iter().copied().take(1).collect();
    order.extend(buses.iter().rev().copied().take(buses.len().saturating_sub(1)));
    order
}

/// A VF does not answer a configuration scan (its vendor id reads all
/// ones; lspci names it from sysfs): make every enabled VF of the input
/// read so, whatever the input showed, so that enumeration skips it and
/// `pci::sriov` adds it as Linux does.
fn hide_virtual_functions(snapshot: &mut Snapshot) {
    let bdfs: Vec<Bdf> = snapshot.spaces.keys().copied().collect();
    let mut vfs = Vec::new();
    for pf in bdfs {
        let header = snapshot.read8(pf, PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
        if header != PCI_HEADER_TYPE_NORMAL {
            continue;
        }
        let (caps, _) = read_capabilities(snapshot, pf, header);
        if let Some(sriov) = caps.sriov {
            vfs.extend(virtual_function_addresses(snapshot, pf, sriov.offset));
        }
    }
    for vf in vfs {
        snapshot.write32(vf, PCI_VENDOR_ID, u32::MAX);
    }
}

/// The chipset MMIO the Intel PCH root-port quirk reaches
/// (`pci::acs::ChipsetMmio`, for `pci_quirk_enable_intel_lpc_acs`). The
/// RCBA window's registers are not in any input; on the machine Linux's
/// `ioremap` of it succeeded, and what they hold decides only whether
/// Linux wrote UPDCR, not whether the port was flagged. So every read
/// succeeds with BSPR's two "peer cycles off" straps set (nothing to
/// write), and whether the quirk applied follows from the LPC bridge's
/// RCBA enable bit, which is in config space: known from a hex dump or
/// sysfs, unknown (read as clear) from decoded text.
struct InputChipset;

impl ChipsetMmio for InputChipset {
    fn read32(&mut self, _addr: u64) -> Option<u32> {
        // BSPR.BPNPD | BSPR.BPPD (and no UPDCR peer-decode bit).
        Some((1 << 8) | (1 << 9))
    }
    fn write32(&mut self, _addr: u64, _value: u32) -> bool {
        true
    }
}

/// Run the pipeline on an input.
pub fn build(input: &Input) -> Machine {
    let mut snapshot = Snapshot::default();
    for d in &input.devices {
        if let Some(bdf) = d.bdf {
            snapshot.insert(bdf, Space::new(&d.config));
        }
    }
    let has_groups = input.has_linux_groups();
    let covered: BTreeSet<Bdf> =
        input.devices.iter().filter(|d| d.linux_group.is_some()).filter_map(|d| d.bdf).collect();
    let segment_numbers: BTreeSet<u16> = snapshot.spaces.keys().map(|b| b.segment).collect();
    let mut segments = Vec::new();
    let mut reached = BTreeSet::new();
    let mut not_covered = BTreeSet::new();
    let mut unit_of = BTreeMap::new();
    let dmar = input.dmar.as_deref().and_then(|b| iommu::vtd::dmar::parse(b).ok());
    hide_virtual_functions(&mut snapshot);
    for number in segment_numbers {
        let roots = root_buses(&mut snapshot, number);
        // x86 Linux's peer-bus probe (`pcibios_fixup_peer_bridges`) finds
        // buses nothing reached (bridges below a port's device 0), on
        // segment 0 up to `pcibios_last_bus` (MCFG's last bus: 0xff here).
        let last_bus = (number == 0).then_some(0xff);
        let mut topology = enumerate_with_peer_probe(&mut snapshot, number, &roots, 0..=255, last_bus);
        // The root buses here are guesses from the input, not ACPI host
        // bridges: a guess that a bridge already leads to is simply not a
        // root bus, so it is no error and no rule note (`RootBusReused`).
        topology.errors.retain(|e| !matches!(e.kind, EnumErrorKind::RootBusBelowBridge { .. }));
        enable_acs_with(&mut snapshot, &mut InputChipset, &mut topology);
        add_virtual_functions(&mut snapshot, &mut topology);
        // Without Linux's groups, a DMAR table says which functions an
        // IOMMU covers; Linux groups no other.
        let dmar_units = match (&dmar, has_groups) {
            (Some(d), false) => Some(match_drhd_units(&d.drhds().collect::<Vec<_>>(), &topology).unit_of),
            _ => None,
        };
        let order: Vec<usize> = (0..topology.functions.len())
            .filter(|&i| {
                let bdf = topology.functions[i].bdf;
                let keep = match &dmar_units {
                    Some(units) => units[i].is_some(),
                    None => !has_groups || covered.contains(&bdf),
                };
                if !keep {
                    not_covered.insert(bdf);
                }
                keep
            })
            .collect();
        let groups = pci_device_groups(&mut snapshot, &topology, &order);
        if let Some(d) = &dmar {
            let drhds: Vec<&Drhd> = d.drhds().collect();
            for (i, unit) in match_drhd_units(&drhds, &topology).unit_of.into_iter().enumerate() {
                if let Some(u) = unit {
                    unit_of.insert(topology.functions[i].bdf, drhds[u].register_base);
                }
            }
        }
        reached.extend(topology.functions.iter().map(|f| f.bdf));
        let id_base = segments.iter().map(|s: &Segment| s.groups.groups.len() as u32).sum();
        segments.push(Segment { number, roots, topology, groups, id_base });
    }
    let unreached = snapshot.spaces.keys().copied().filter(|b| !reached.contains(b)).collect();
    Machine { snapshot, segments, unreached, not_covered, unit_of }
}

impl Machine {
    /// Every function's position: (segment index, function index).
    pub fn index(&self) -> BTreeMap<Bdf, (usize, usize)> {
        let mut out = BTreeMap::new();
        for (s, seg) in self.segments.iter().enumerate() {
            for (i, f) in seg.topology.functions.iter().enumerate() {
                out.insert(f.bdf, (s, i));
            }
        }
        out
    }
}
