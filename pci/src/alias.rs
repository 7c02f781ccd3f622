//! DMA requester-id aliases (drivers/pci/search.c `pci_for_each_dma_alias`,
//! drivers/pci/pci.c `pci_devs_are_dma_aliases`).
//!
//! A device's DMA may reach the IOMMU under another requester id: its own
//! quirk aliases (`dma_alias_mask`), or the id a bridge on its path
//! substitutes. Grouping cares which *devices* are visited; VT-d context
//! entries care which *ids* appear.

use alloc::vec::Vec;

use crate::caps::PcieType;
use crate::config::Bdf;
use crate::topology::{DevFlags, Topology};

/// One step of the alias walk: the device the id is attributed to, and
/// the requester id itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAlias {
    pub device: usize,
    pub requester_id: Bdf,
}

/// Linux `pci_for_each_dma_alias`: call `visit` for the device's own id,
/// each id in its `dma_alias_mask` (attributed to the device itself), then
/// for each bridge on the way to the root that substitutes an id. Stops
/// when `visit` returns true, or at a `BRIDGE_XLATE_ROOT` bridge (without
/// visiting it). Returns whether `visit` stopped the walk.
///
/// `pci_real_dma_dev` is the identity here: Intel VMD domains are not
/// modelled.
pub fn pci_for_each_dma_alias(topo: &Topology, index: usize, mut visit: impl FnMut(DmaAlias) -> bool) -> bool {
    let dev = &topo.functions[index];
    let seg = dev.bdf.segment;
    if visit(DmaAlias { device: index, requester_id: dev.bdf }) {
        return true;
    }
    for devfn in dev.dma_alias_mask.iter() {
        if visit(DmaAlias { device: index, requester_id: Bdf::from_devfn(seg, dev.bdf.bus, devfn) }) {
            return true;
        }
    }
    let mut bridge = dev.parent;
    // Bounded by the number of functions: parents always precede children.
    for _ in 0..topo.functions.len() {
        let Some(t) = bridge else { break };
        let tmp = &topo.functions[t];
        if tmp.dev_flags.contains(DevFlags::BRIDGE_XLATE_ROOT) {
            return false;
        }
        let secondary_00_0 = tmp.secondary_bus().map(|bus| Bdf::new(seg, bus, 0, 0));
        let rid = match tmp.pcie_type {
            // PCIe ports pass requester ids through unchanged.
            Some(PcieType::RootPort | PcieType::Upstream | PcieType::Downstream) => None,
            // PCIe-to-PCI bridge spec r1.0 §2.3: transactions from the
            // conventional side take (secondary bus, 00.0).
            Some(PcieType::PciBridge) => secondary_00_0,
            Some(PcieType::PcieBridge) => Some(tmp.bdf),
            Some(_) => None,
            // Conventional bridge: its own id, unless a quirk says it is
            // really a PCIe-to-PCI bridge.
            None if tmp.dev_flags.contains(DevFlags::PCIE_BRIDGE_ALIAS) => secondary_00_0,
            None => Some(tmp.bdf),
        };
        if let Some(requester_id) = rid
            && visit(DmaAlias { device: t, requester_id })
        {
            return true;
        }
        bridge = tmp.parent;
    }
    false
}

/// Linux `pci_devs_are_dma_aliases`: devfn-only comparison (callers keep
/// both on one bus).
pub fn pci_devs_are_dma_aliases(topo: &Topology, a: usize, b: usize) -> bool {
    let (fa, fb) = (&topo.functions[a], &topo.functions[b]);
    fa.dma_alias_mask.contains(fb.devfn()) || fb.dma_alias_mask.contains(fa.devfn())
}

/// Every requester id the device's DMA can carry when it reaches the
/// IOMMU, with the device each is attributed to: the device's own id, its
/// quirk aliases, and the ids bridges on its path substitute. Duplicates
/// removed, walk order kept. These are the context entries VT-d needs.
pub fn dma_requester_ids(topo: &Topology, index: usize) -> Vec<DmaAlias> {
    let mut out: Vec<DmaAlias> = Vec::new();
    pci_for_each_dma_alias(topo, index, |a| {
        if !out.iter().any(|o| o.requester_id == a.requester_id) {
            out.push(a);
        }
        false
    });
    out
}
