//! Which DMA-remapping unit covers each PCI function (Linux
//! `dmar_find_matched_drhd_unit`, VT-d spec rev 4.1 §8.3 and §8.3.1): a PCI
//! endpoint scope names the function; a PCI sub-hierarchy scope names a
//! bridge and covers it and everything below it; a unit with
//! INCLUDE_PCI_ALL takes every function of its segment that no other unit
//! names. A function no unit covers is outside every IOMMU (Linux gives it
//! no group).

use alloc::vec;
use alloc::vec::Vec;

use pci::Topology;

use super::dmar::{Drhd, DrhdFlags};
use super::dmar_scope::{DeviceScope, ScopeType};

/// Resolve a scope path to a function of the topology, through the
/// bridges' secondary bus numbers.
fn resolve(scope: &DeviceScope, topo: &Topology) -> Option<usize> {
    let bdf = scope.resolve(topo.segment, |b| topo.find(b).and_then(|i| topo.functions[i].secondary_bus())).ok()?;
    topo.find(bdf)
}

/// Whether `index` is `bridge` or below it.
fn is_at_or_below(topo: &Topology, mut index: usize, bridge: usize) -> bool {
    for _ in 0..topo.functions.len() {
        if index == bridge {
            return true;
        }
        match topo.functions[index].parent {
            Some(p) => index = p,
            None => return false,
        }
    }
    false
}

/// For each function of `topo`, the position in `drhds` of the unit that
/// covers it, or `None`. Units of other segments are skipped; the first
/// unit whose scope names a function wins, as in the DMAR's order.
pub fn unit_of_each(drhds: &[&Drhd], topo: &Topology) -> Vec<Option<usize>> {
    let mut unit_of = vec![None; topo.functions.len()];
    for (u, drhd) in drhds.iter().enumerate() {
        if drhd.segment != topo.segment {
            continue;
        }
        for scope in &drhd.scopes {
            let Some(target) = resolve(scope, topo) else { continue };
            for (i, slot) in unit_of.iter_mut().enumerate() {
                let hit = match scope.kind {
                    ScopeType::Endpoint => i == target,
                    ScopeType::SubHierarchy => is_at_or_below(topo, i, target),
                    _ => false,
                };
                if hit && slot.is_none() {
                    *slot = Some(u);
                }
            }
        }
    }
    if let Some(all) =
        drhds.iter().position(|d| d.segment == topo.segment && d.flags.contains(DrhdFlags::INCLUDE_PCI_ALL))
    {
        for slot in unit_of.iter_mut().filter(|s| s.is_none()) {
            *slot = Some(all);
        }
    }
    unit_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::dmar_scope::PathEntry;
    use pci::sim::{SimConfig, qemu};

    fn drhd(flags: DrhdFlags, scopes: Vec<DeviceScope>) -> Drhd {
        Drhd { offset: 0, flags, size: 0, segment: 0, register_base: 0xfed9_0000, scopes }
    }

    fn scope(kind: ScopeType, start_bus: u8, path: &[(u8, u8)]) -> DeviceScope {
        DeviceScope {
            offset: 0,
            kind,
            flags: 0,
            enumeration_id: 0,
            start_bus,
            path: path.iter().map(|&(device, function)| PathEntry { device, function }).collect(),
        }
    }

    #[test]
    fn scopes_name_endpoints_and_subtrees_and_include_all_takes_the_rest() {
        let mut sim = SimConfig::new();
        sim.at(0, 0, 0, qemu::q35_host());
        sim.at(0, 2, 0, qemu::root_port(true, 1, 1));
        sim.at(1, 0, 0, qemu::edu());
        sim.at(0, 3, 0, qemu::edu());
        sim.at(0, 4, 0, qemu::edu());
        let topo = pci::enumerate(&mut sim, 0, &[0], 0..=255);
        let gfx = drhd(DrhdFlags::empty(), vec![scope(ScopeType::Endpoint, 0, &[(3, 0)])]);
        let sub = drhd(DrhdFlags::empty(), vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0)])]);
        let units = unit_of_each(&[&gfx, &sub], &topo);
        let at = |b: u8, d: u8| units[topo.find(pci::Bdf::new(0, b, d, 0)).unwrap()];
        assert_eq!((at(0, 3), at(0, 2), at(1, 0)), (Some(0), Some(1), Some(1)));
        assert_eq!((at(0, 0), at(0, 4)), (None, None), "no INCLUDE_PCI_ALL unit: not covered");
        let all = drhd(DrhdFlags::INCLUDE_PCI_ALL, vec![]);
        let units = unit_of_each(&[&gfx, &all], &topo);
        let at = |b: u8, d: u8| units[topo.find(pci::Bdf::new(0, b, d, 0)).unwrap()];
        assert_eq!((at(0, 3), at(0, 4), at(1, 0)), (Some(0), Some(1), Some(1)));
    }
}
