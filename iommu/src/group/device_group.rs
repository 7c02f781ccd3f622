//! `pci_device_group` and its helpers, step for step as in Linux 6.1
//! drivers/iommu/iommu.c.

use pci::acs::{pci_acs_check, pci_acs_path_check};
use pci::alias::{pci_devs_are_dma_aliases, pci_for_each_dma_alias};
use pci::regs::pci_slot;
use pci::topology::DevFlags;
use pci::{ConfigSpace, DevfnMask, REQ_ACS_FLAGS, Topology};

use super::{Groups, Reason};

/// Linux `pci_device_group` for function `index`, given the groups formed
/// so far. Returns the position in `groups.groups` of the group to join,
/// or `None` for a new group, with the reason either way.
///
/// 1. Alias walk (`get_pci_alias_or_group`): the first device on the
///    `pci_for_each_dma_alias` walk that has a group gives it; otherwise
///    `P` is the last device visited.
/// 2. ACS climb: from `P`'s bus upwards, while the bridge above fails
///    `pci_acs_path_enabled(bridge, NULL, REQ_ACS_FLAGS)`, `P` becomes that
///    bridge; a grouped `P` gives its group. `P`'s own ACS is never checked.
/// 3. `get_pci_alias_group(P)`, then `get_pci_function_alias_group(P)`,
///    sharing one devfn bitmap.
pub fn pci_device_group(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    groups: &Groups,
    index: usize,
) -> (Option<usize>, Reason) {
    // Step 2 of Linux: the alias walk.
    let mut last = None;
    let mut found = None;
    pci_for_each_dma_alias(topo, index, |a| {
        last = Some(a);
        found = groups.position_of(a.device);
        found.is_some()
    });
    if let (Some(g), Some(a)) = (found, last) {
        let bridge = &topo.functions[a.device];
        let reason = Reason::BehindBridge {
            bridge: bridge.bdf,
            bridge_kind: bridge.kind(),
            requester_id: a.requester_id,
            pcie_bridge_alias_quirk: bridge.dev_flags.contains(DevFlags::PCIE_BRIDGE_ALIAS),
        };
        return (Some(g), reason);
    }
    let mut p = last.map_or(index, |a| a.device);

    // Step 3: climb while the path above is not isolated.
    let mut above = topo.functions[p].parent;
    while let Some(bridge) = above {
        let Err(brk) = pci_acs_path_check(cfg, topo, bridge, None, REQ_ACS_FLAGS) else {
            break;
        };
        p = bridge;
        if let Some(g) = groups.position_of(p) {
            let (joined, failed) = (&topo.functions[p], &topo.functions[brk.at]);
            let reason = Reason::AcsPathBroken {
                joined: joined.bdf,
                joined_kind: joined.kind(),
                failed_at: failed.bdf,
                failed_kind: failed.kind(),
                why: brk.why,
            };
            return (Some(g), reason);
        }
        above = topo.functions[p].parent;
    }

    // Steps 4 and 5: aliases and non-isolated functions on P's bus.
    let mut devfns = DevfnMask::new();
    if let Some((g, holder)) = get_pci_alias_group(cfg, topo, groups, p, &mut devfns) {
        let with = &topo.functions[holder];
        let quirk = topo.functions[p].fixups.first().or_else(|| with.fixups.first()).copied();
        return (Some(g), Reason::DmaAlias { with: with.bdf, quirk });
    }
    // Only a function without ACS can share its slot; its failure is the reason.
    if let Err(why) = pci_acs_check(cfg, topo, p, REQ_ACS_FLAGS)
        && let Some((g, holder)) = get_pci_function_alias_group(cfg, topo, groups, p, &mut devfns)
    {
        let with = topo.functions[holder].bdf;
        return (Some(g), Reason::SharesSlot { with, why });
    }

    let reason = if p != index {
        Reason::OwnBelowUngrouped { top: topo.functions[p].bdf }
    } else if topo.functions[index].parent.is_none() {
        Reason::OwnRootBus
    } else {
        Reason::OwnAcsPathComplete
    };
    (None, reason)
}

/// Linux `get_pci_alias_group`: `P`'s group, or that of a DMA alias of `P`
/// on the same bus (recursively, with their non-isolated functions).
/// Returns the group position and the device that holds it.
fn get_pci_alias_group(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    groups: &Groups,
    p: usize,
    devfns: &mut DevfnMask,
) -> Option<(usize, usize)> {
    if devfns.test_and_set(topo.functions[p].devfn()) {
        return None;
    }
    if let Some(g) = groups.position_of(p) {
        return Some((g, p));
    }
    for &t in groups.on_same_bus(p) {
        if t == p || !pci_devs_are_dma_aliases(topo, p, t) {
            continue;
        }
        if let Some(found) = get_pci_alias_group(cfg, topo, groups, t, devfns) {
            return Some(found);
        }
        if let Some(found) = get_pci_function_alias_group(cfg, topo, groups, t, devfns) {
            return Some(found);
        }
    }
    None
}

/// Linux `get_pci_function_alias_group`: for a multifunction `P` without
/// ACS, the group of another function in the same slot without ACS. "Same
/// slot" is `devfn >> 3`, so ARI functions merge only within blocks of 8.
fn get_pci_function_alias_group(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    groups: &Groups,
    p: usize,
    devfns: &mut DevfnMask,
) -> Option<(usize, usize)> {
    let pf = &topo.functions[p];
    if !pf.multifunction || pci_acs_check(cfg, topo, p, REQ_ACS_FLAGS).is_ok() {
        return None;
    }
    let slot = pci_slot(pf.devfn());
    for &t in groups.on_same_bus(p) {
        if t == p || pci_slot(topo.functions[t].devfn()) != slot {
            continue;
        }
        if pci_acs_check(cfg, topo, t, REQ_ACS_FLAGS).is_ok() {
            continue;
        }
        if let Some(found) = get_pci_alias_group(cfg, topo, groups, t, devfns) {
            return Some(found);
        }
    }
    None
}
