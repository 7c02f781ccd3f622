//! DMAR device scopes (VT-d spec rev 4.1 §8.3.1) and their resolution to a
//! PCI function by walking bridges (§8.3.2; Linux `dmar_match_pci_path`
//! walks the same path from the device upwards).

use alloc::vec::Vec;
use core::fmt;

use pci::{Bdf, Function, Topology};

use super::dmar::{DmarError, DmarErrorKind, Drhd, DrhdFlags, Rmrr};

/// Device scope entry type (§8.3.1 table 8-3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScopeType {
    /// 1: a PCI endpoint device.
    Endpoint,
    /// 2: a PCI-PCI bridge and everything below it.
    SubHierarchy,
    /// 3: an I/O APIC; enumeration id = its APIC id.
    IoApic,
    /// 4: an MSI-capable HPET; enumeration id = its HPET number.
    Hpet,
    /// 5: an ACPI namespace device; enumeration id = its ANDD number.
    AcpiNamespace,
    /// Reserved types are kept, not interpreted.
    Reserved(u8),
}

impl ScopeType {
    pub const fn from_raw(raw: u8) -> Self {
        match raw {
            1 => Self::Endpoint,
            2 => Self::SubHierarchy,
            3 => Self::IoApic,
            4 => Self::Hpet,
            5 => Self::AcpiNamespace,
            other => Self::Reserved(other),
        }
    }
}

/// One hop of a scope path: a device and function on the current bus.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PathEntry {
    pub device: u8,
    pub function: u8,
}

/// A device scope (§8.3.1):
///
/// ```text
///  byte 0     type
///  byte 1     length (6 + 2 × path entries)
///  byte 2     flags (§8.3.1, rev 3.x+; 0 on QEMU)
///  byte 3     reserved
///  byte 4     enumeration id
///  byte 5     start bus number
///  bytes 6..  path: (device, function) pairs
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceScope {
    /// Byte offset of the scope in the DMAR table.
    pub offset: usize,
    pub kind: ScopeType,
    pub flags: u8,
    pub enumeration_id: u8,
    pub start_bus: u8,
    /// At least one entry.
    pub path: Vec<PathEntry>,
}

/// Why a scope path does not lead to a function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResolveError {
    /// No path entries (the parser never produces this).
    EmptyPath,
    /// Hop `hop` names a function that is not a bridge (or is absent): the
    /// path points nowhere.
    NotABridge { hop: usize, at: Bdf },
    /// Hop `hop`'s bridge reports a secondary bus not below its own bus: a
    /// loop or a misprogrammed bridge.
    NotDownstream { hop: usize, at: Bdf, secondary: u8 },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPath => write!(f, "DMAR scope has an empty path"),
            Self::NotABridge { hop, at } => {
                write!(f, "DMAR scope path hop {hop}: {at} is not a bridge")
            }
            Self::NotDownstream { hop, at, secondary } => {
                write!(f, "DMAR scope path hop {hop}: bridge {at} has secondary bus {secondary:#04x}, not below it")
            }
        }
    }
}

impl DeviceScope {
    /// The function the path names: start at `start_bus`, and for every
    /// entry but the last, continue on that bridge's secondary bus. The
    /// walk is bounded by the path length (at most 124 hops).
    pub fn resolve(
        &self,
        segment: u16,
        mut secondary_bus_of: impl FnMut(Bdf) -> Option<u8>,
    ) -> Result<Bdf, ResolveError> {
        let mut bus = self.start_bus;
        let (last, hops) = self.path.split_last().ok_or(ResolveError::EmptyPath)?;
        for (hop, e) in hops.iter().enumerate() {
            let at = Bdf::new(segment, bus, e.device, e.function);
            let secondary = secondary_bus_of(at).ok_or(ResolveError::NotABridge { hop, at })?;
            if secondary <= bus {
                return Err(ResolveError::NotDownstream { hop, at, secondary });
            }
            bus = secondary;
        }
        Ok(Bdf::new(segment, bus, last.device, last.function))
    }
}

/// Parse the scopes filling `bytes`, which start at table offset `base`.
pub(crate) fn parse_scopes(bytes: &[u8], base: usize) -> Result<Vec<DeviceScope>, DmarError> {
    let mut scopes = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let offset = base + pos;
        let err = |kind| Err(DmarError { offset, kind });
        let rest = &bytes[pos..];
        if rest.len() < 6 {
            return err(DmarErrorKind::ScopeTruncated { remaining: rest.len() });
        }
        let length = usize::from(rest[1]);
        if length < 6 {
            return err(DmarErrorKind::ScopeTooShort { length });
        }
        if length > rest.len() {
            return err(DmarErrorKind::ScopePastStructureEnd { length, remaining: rest.len() });
        }
        if (length - 6) % 2 != 0 {
            return err(DmarErrorKind::ScopeOddPath { length });
        }
        if length == 6 {
            return err(DmarErrorKind::ScopeEmptyPath);
        }
        let path: Vec<PathEntry> =
            rest[6..length].chunks_exact(2).map(|p| PathEntry { device: p[0], function: p[1] }).collect();
        if let Some(bad) = path.iter().find(|p| p.device > 31 || p.function > 7) {
            return err(DmarErrorKind::ScopeBadPathEntry { device: bad.device, function: bad.function });
        }
        scopes.push(DeviceScope {
            offset,
            kind: ScopeType::from_raw(rest[0]),
            flags: rest[2],
            enumeration_id: rest[4],
            start_bus: rest[5],
            path,
        });
        pos += length;
    }
    Ok(scopes)
}

/// Which DRHD unit translates each PCI function, as Linux 6.1 decides it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitMatch {
    /// For each function of the topology, the index (into the DRHD list
    /// given) of the unit that covers it; `None`: no unit does, so Linux's
    /// `intel_iommu_probe_device` returns -ENODEV and the device gets no
    /// IOMMU group.
    pub unit_of: Vec<Option<usize>>,
    /// Per DRHD: ignored as Linux's `init_no_remapping_devices` ignores a
    /// unit without INCLUDE_PCI_ALL none of whose scopes names a present
    /// device.
    pub ignored: Vec<bool>,
    /// Per DRHD: the functions its PCI scopes took (Linux's active
    /// `drhd->devices`: a function enters the first unit in list order
    /// whose scope names it, and no other), in function order.
    pub scope_devices: Vec<Vec<usize>>,
    /// Scopes that name a present function of the wrong kind (Linux
    /// `dmar_insert_dev_scope`: "Device scope type does not match"). Any
    /// one fails Linux's `dmar_dev_scope_init` and with it
    /// `intel_iommu_init`: then no function has a unit (`unit_of` is all
    /// `None`), so none gets a group.
    pub mismatches: Vec<ScopeMismatch>,
}

/// A PCI scope whose type does not fit the function it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeMismatch {
    /// Index of the DRHD (or, from [`rmrr_scope_mismatches`], the RMRR) in
    /// the list given.
    pub drhd: usize,
    /// Byte offset of the scope in the DMAR table.
    pub scope_offset: usize,
    pub at: Bdf,
}

impl fmt::Display for ScopeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMAR scope at offset {:#x}: device scope type does not match {}: Linux's dmar_dev_scope_init fails and intel-iommu does not initialise, so no device gets an IOMMU group",
            self.scope_offset, self.at
        )
    }
}

/// Linux `dmar_insert_dev_scope`'s type check: an endpoint scope must name
/// a type 0 header; a bridge scope a bridge header or a bridge class.
fn scope_type_fits(kind: ScopeType, f: &Function) -> bool {
    const PCI_BASE_CLASS_BRIDGE: u32 = 0x06;
    match kind {
        ScopeType::Endpoint => f.header_type == pci::regs::PCI_HEADER_TYPE_NORMAL,
        ScopeType::SubHierarchy => {
            f.header_type != pci::regs::PCI_HEADER_TYPE_NORMAL || f.class >> 16 == PCI_BASE_CLASS_BRIDGE
        }
        _ => false,
    }
}

/// Linux `is_downstream_to_pci_bridge(dev, bridge)`: `dev` sits on a bus
/// inside the range of the bus Linux created below `bridge` (its number to
/// `busn_res.end`, the subordinate bus).
fn is_downstream_to_pci_bridge(topo: &Topology, dev: usize, bridge: usize) -> bool {
    let b = &topo.functions[bridge];
    let bus = topo.functions[dev].bdf.bus;
    b.secondary_scanned && b.bridge.is_some_and(|r| (r.secondary..=r.subordinate).contains(&bus))
}

/// Linux `dmar_match_pci_path`: whether `scope`'s path names function
/// `dev`. The path is compared with the function's own path from its root
/// bus (the root bus number, then the device and function of each bridge
/// on the way down and of the function itself), so a path of more than
/// one hop must start on the root bus. A one-hop path whose bus is the
/// function's own also names it: Linux's workaround for firmware that
/// writes RMRR scopes that way ("RMRR entry ... is broken").
pub fn dmar_match_pci_path(topo: &Topology, dev: usize, scope: &DeviceScope) -> bool {
    // The function and the bridges above it, bottom up (bounded: a parent
    // chain is never longer than the topology).
    let chain: Vec<usize> =
        core::iter::successors(Some(dev), |&i| topo.functions[i].parent).take(topo.functions.len()).collect();
    let f = &topo.functions[dev].bdf;
    let root_bus = chain.last().map(|&r| topo.functions[r].bdf.bus);
    let full = root_bus == Some(scope.start_bus)
        && chain.len() == scope.path.len()
        && chain.iter().rev().zip(&scope.path).all(|(&i, e)| {
            let b = topo.functions[i].bdf;
            b.device == e.device && b.function == e.function
        });
    full || matches!(scope.path[..], [e] if f.bus == scope.start_bus && f.device == e.device && f.function == e.function)
}

/// The function `scope` names (the first whose path matches, as Linux
/// inserts the device that matches), if any is present.
pub fn scope_function(topo: &Topology, scope: &DeviceScope) -> Option<usize> {
    (0..topo.functions.len()).find(|&i| dmar_match_pci_path(topo, i, scope))
}

/// Linux 6.1's choice of unit for every function of `topo`
/// (drivers/iommu/intel/dmar.c `dmar_find_matched_drhd_unit`, and
/// iommu.c `device_to_iommu`, which `intel_iommu_probe_device` calls).
///
/// - A DRHD's PCI scopes (endpoint and sub-hierarchy) name functions by
///   their path from the root bus ([`dmar_match_pci_path`]). A function
///   enters the scope of the first unit in list order that names it, in
///   that unit's first scope naming it (`dmar_pci_bus_add_dev` stops at
///   the first `dmar_insert_dev_scope` that answers). A scope of the wrong
///   type for what it names fails the whole scope set-up, so Linux runs
///   without the IOMMU and no function has a unit. An INCLUDE_PCI_ALL
///   unit's scopes are not read at all (`dmar_parse_one_drhd`).
/// - A unit without INCLUDE_PCI_ALL whose scopes name no present device is
///   ignored (`init_no_remapping_devices`); a device whose first match is
///   an ignored unit has no IOMMU (`iommu_is_dummy`). With no present
///   device in its scopes such a unit matches nothing, so this only matters
///   for units Linux ignores for other reasons (graphics-only units with
///   `intel_iommu=igfx_off`, not modelled).
/// - Units are searched in Linux's list order (`dmar_register_drhd_unit`:
///   each unit without INCLUDE_PCI_ALL is added at the head, so they come
///   in reverse table order, INCLUDE_PCI_ALL units at the tail); within a
///   unit, a function matches a scope device that is the function itself
///   or a bridge whose bus range holds the function's bus
///   (`is_downstream_to_pci_bridge`), then the unit's INCLUDE_PCI_ALL for
///   the function's segment.
///
/// Not modelled: ACPI namespace scopes (ANDD; they never name a PCI
/// function), SR-IOV VFs (none are enumerated), VMD's `pci_real_dma_dev`
/// and `iommu_is_dummy`'s Sandy Bridge I/OAT check.
pub fn match_drhd_units(drhds: &[&Drhd], topo: &Topology) -> UnitMatch {
    let mut m = UnitMatch {
        unit_of: alloc::vec![None; topo.functions.len()],
        ignored: alloc::vec![false; drhds.len()],
        scope_devices: alloc::vec![Vec::new(); drhds.len()],
        mismatches: Vec::new(),
    };
    // dmar_drhd_units: scoped units in reverse table order, then the
    // INCLUDE_PCI_ALL units in table order.
    let scoped: Vec<usize> =
        (0..drhds.len()).rev().filter(|&u| !drhds[u].flags.contains(DrhdFlags::INCLUDE_PCI_ALL)).collect();
    let all = (0..drhds.len()).filter(|&u| drhds[u].flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
    // Each scoped unit's PCI scopes, resolved to functions, in scope order.
    let named: Vec<Vec<(&DeviceScope, Option<usize>)>> = drhds
        .iter()
        .map(|d| {
            d.scopes
                .iter()
                .filter(|s| matches!(s.kind, ScopeType::Endpoint | ScopeType::SubHierarchy))
                .map(|s| (s, scope_function(topo, s)))
                .collect()
        })
        .collect();
    // `dmar_pci_bus_add_dev` for every function: the scoped units in list
    // order; in a unit, the first scope naming it decides
    // (`dmar_insert_dev_scope`): of the right type it enters that unit's
    // scope and the search stops (`if (ret) break`); of the wrong type the
    // search stops with -EINVAL.
    for dev in 0..topo.functions.len() {
        for &u in scoped.iter().filter(|&&u| drhds[u].segment == topo.segment) {
            let Some(&(scope, _)) = named[u].iter().find(|(_, i)| *i == Some(dev)) else { continue };
            if scope_type_fits(scope.kind, &topo.functions[dev]) {
                m.scope_devices[u].push(dev);
            } else {
                m.mismatches.push(ScopeMismatch { drhd: u, scope_offset: scope.offset, at: topo.functions[dev].bdf });
            }
            break;
        }
    }
    for &u in scoped.iter().filter(|&&u| drhds[u].segment == topo.segment) {
        m.ignored[u] = m.scope_devices[u].is_empty();
    }
    // That -EINVAL is kept in `dmar_dev_scope_status`, so
    // `dmar_dev_scope_init` fails and `intel_iommu_init` gives up: no
    // IOMMU, no device has a group.
    if !m.mismatches.is_empty() {
        return m;
    }
    // `device_to_iommu` walks every unit (`for_each_iommu`); a match on an
    // ignored unit is a "dummy" (`iommu_is_dummy`): no IOMMU, even if a
    // later unit would cover it.
    let order: Vec<usize> = scoped.iter().copied().chain(all).collect();
    for dev in 0..topo.functions.len() {
        let first = order.iter().copied().find(|&u| {
            drhds[u].segment == topo.segment
                && (m.scope_devices[u].iter().any(|&t| t == dev || is_downstream_to_pci_bridge(topo, dev, t))
                    || drhds[u].flags.contains(DrhdFlags::INCLUDE_PCI_ALL))
        });
        m.unit_of[dev] = first.filter(|&u| !m.ignored[u]);
    }
    m
}

/// Linux `dmar_iommu_notify_scope_dev`, which `dmar_pci_bus_add_dev` runs
/// for every function after the DRHD scopes: each RMRR's scopes go through
/// the same `dmar_insert_dev_scope` (in an RMRR, the first scope naming
/// the function decides), so a scope of the wrong type there fails
/// `dmar_dev_scope_init` as well, and `intel_iommu_init` gives up: no
/// function has an IOMMU. Adds those mismatches to `m` (`drhd` is then the
/// RMRR's index) and clears `m.unit_of` if there is any. RMRRs of another
/// segment name nothing here. Not modelled: ATSR and SATC scopes, which
/// take the same path.
pub fn rmrr_scope_mismatches<'a>(m: &mut UnitMatch, rmrrs: impl IntoIterator<Item = &'a Rmrr>, topo: &Topology) {
    for (r, rmrr) in rmrrs.into_iter().enumerate().filter(|(_, r)| r.segment == topo.segment) {
        let named: Vec<(&DeviceScope, usize)> = rmrr
            .scopes
            .iter()
            .filter(|s| matches!(s.kind, ScopeType::Endpoint | ScopeType::SubHierarchy))
            .filter_map(|s| Some((s, scope_function(topo, s)?)))
            .collect();
        for dev in 0..topo.functions.len() {
            if let Some(&(scope, _)) = named.iter().find(|(_, i)| *i == dev)
                && !scope_type_fits(scope.kind, &topo.functions[dev])
            {
                m.mismatches.push(ScopeMismatch { drhd: r, scope_offset: scope.offset, at: topo.functions[dev].bdf });
            }
        }
    }
    if !m.mismatches.is_empty() {
        m.unit_of.iter_mut().for_each(|u| *u = None);
    }
}
