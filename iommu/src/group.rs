//! Linux 6.1 IOMMU groups for PCI devices (drivers/iommu/iommu.c
//! `pci_device_group`, `get_pci_alias_group`, `get_pci_function_alias_group`,
//! `iommu_group_get_for_dev`).
//!
//! Devices are probed one at a time, in an order the caller gives (Linux:
//! `device_add` order per DRHD unit); each either joins a group an earlier
//! device already has, or gets a new one with the lowest free id. Every
//! member keeps the [`Reason`] it landed where it did.

mod canonical;
mod device_group;
mod ida;
mod reason;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use pci::{ConfigSpace, Topology};

pub use canonical::{canonical, report};
pub use device_group::pci_device_group;
pub use ida::Ida;
pub use reason::{Reason, RuleNote, rule_notes};

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Index into `Topology::functions`.
    pub function: usize,
    pub reason: Reason,
    /// Linux 6.1 rules outside the grouping code that shaped the placement
    /// (the port-type bug, NO_EXTCFG buses), from [`rule_notes`].
    pub rules: Vec<RuleNote>,
}

impl core::fmt::Display for Member {
    /// The reason, then each rule note after "; ".
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.reason)?;
        for r in &self.rules {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}

/// An IOMMU group: its id and members in the order they were added
/// (`list_add_tail` in `iommu_group_add_device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: u32,
    pub members: Vec<Member>,
}

/// Every group formed so far, with a function → group map.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    /// Groups in creation order.
    pub groups: Vec<Group>,
    /// For each function index, the position of its group in `groups`.
    group_of: Vec<Option<usize>>,
    /// For each function index, the functions on its bus in `device_add`
    /// order (an index into `on_bus`). Linux scans the global device list
    /// and skips other buses; scanning only the bus gives the same first
    /// match at a cost bounded by 256 per device instead of by the
    /// machine's size.
    bus_of: Vec<usize>,
    on_bus: Vec<Vec<usize>>,
    ida: Ida,
}

impl Groups {
    /// No groups yet, for a topology of `topo.functions.len()` functions.
    pub fn new(topo: &Topology) -> Self {
        let mut slots: BTreeMap<(u16, u8), usize> = BTreeMap::new();
        let mut on_bus: Vec<Vec<usize>> = Vec::new();
        let bus_of = topo
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let slot = *slots.entry((f.bdf.segment, f.bdf.bus)).or_insert_with(|| {
                    on_bus.push(Vec::new());
                    on_bus.len() - 1
                });
                on_bus[slot].push(i);
                slot
            })
            .collect();
        Self { groups: Vec::new(), group_of: alloc::vec![None; topo.functions.len()], bus_of, on_bus, ida: Ida::new() }
    }

    /// The functions on `index`'s bus (itself included), in `device_add`
    /// order.
    pub(crate) fn on_same_bus(&self, index: usize) -> &[usize] {
        self.bus_of.get(index).map_or(&[], |&b| self.on_bus[b].as_slice())
    }

    /// The group of function `index`, if it was probed.
    pub fn group_of(&self, index: usize) -> Option<&Group> {
        self.group_of.get(index).copied().flatten().map(|g| &self.groups[g])
    }

    /// Position in `groups` of function `index`'s group.
    pub(crate) fn position_of(&self, index: usize) -> Option<usize> {
        self.group_of.get(index).copied().flatten()
    }

    /// Take an id for a group that is not a PCI group (Linux allocates
    /// platform-bus groups before PCI ones from the same IDA).
    pub fn reserve_id(&mut self) -> u32 {
        self.ida.alloc()
    }

    /// Linux `iommu_group_get_for_dev` for PCI function `index`: its
    /// existing group, or `pci_device_group` and add. Returns the group id.
    pub fn probe_device(&mut self, cfg: &mut dyn ConfigSpace, topo: &Topology, index: usize) -> u32 {
        if let Some(g) = self.position_of(index) {
            return self.groups[g].id;
        }
        let (existing, reason) = pci_device_group(cfg, topo, self, index);
        let g = match existing {
            Some(g) => g,
            None => {
                let id = self.ida.alloc();
                self.groups.push(Group { id, members: Vec::new() });
                self.groups.len() - 1
            }
        };
        let rules = rule_notes(topo, index);
        self.groups[g].members.push(Member { function: index, reason, rules });
        self.group_of[index] = Some(g);
        self.groups[g].id
    }
}

/// Group the functions in `order` (indices into `topo.functions`). With one
/// DRHD covering everything Linux probes in `device_add` order, i.e.
/// `0..topo.functions.len()`; see [`group_all`].
///
/// ACS is judged from live config reads, so call `pci::acs::enable_acs`
/// first when an IOMMU is present (Linux does it during enumeration).
pub fn pci_device_groups(cfg: &mut dyn ConfigSpace, topo: &Topology, order: &[usize]) -> Groups {
    let mut groups = Groups::new(topo);
    for &index in order {
        if index < topo.functions.len() {
            groups.probe_device(cfg, topo, index);
        }
    }
    groups
}

/// Group every function in `device_add` order (one DRHD covering all).
pub fn group_all(cfg: &mut dyn ConfigSpace, topo: &Topology) -> Groups {
    let order: Vec<usize> = (0..topo.functions.len()).collect();
    pci_device_groups(cfg, topo, &order)
}
