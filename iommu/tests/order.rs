//! Where Linux's partition does not depend on probe order, ours must not
//! either: any order that probes each bridge before what is below it
//! (several DRHD units may interleave buses) gives the same groups.

mod common;

use common::*;
use iommu::group::{canonical, pci_device_groups};
use pci::acs::enable_acs;
use pci::enumerate;
use pci::sim::SimConfig;

/// Deterministic pseudo-random topological orders (parents first).
fn orders(topo: &pci::Topology, count: usize) -> Vec<Vec<usize>> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::new();
    for _ in 0..count {
        let mut done = vec![false; topo.functions.len()];
        let mut order = Vec::new();
        while order.len() < topo.functions.len() {
            let ready: Vec<usize> = (0..topo.functions.len())
                .filter(|&i| !done[i] && topo.functions[i].parent.is_none_or(|p| done[p]))
                .collect();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = ready[(seed >> 33) as usize % ready.len()];
            done[pick] = true;
            order.push(pick);
        }
        out.push(order);
    }
    out
}

fn check(mut sim: SimConfig, roots: &[u8], expected: &str) {
    let mut topo = enumerate(&mut sim, 0, roots, 0..=255);
    enable_acs(&mut sim, &mut topo);
    for order in orders(&topo, 50) {
        let groups = pci_device_groups(&mut sim, &topo, &order);
        assert_eq!(canonical(&groups, &topo), expected, "order {order:?}");
    }
}

#[test]
fn partition_is_order_independent() {
    check(basic(), &[0], BASIC_GROUPS);
    check(expander(), EXPANDER_ROOTS, EXPANDER_GROUPS);
    check(no_acs_multifunction(), &[0], NO_ACS_MULTIFUNCTION_GROUPS);
    check(pcie_pci_bridge_scenario(), &[0], PCIE_PCI_BRIDGE_GROUPS);
    check(switch(), &[0], SWITCH_GROUPS);
}

/// With every function isolated, even fully reversed order (children
/// first) gives Linux's partition.
#[test]
fn isolated_topology_any_order() {
    let mut sim = basic();
    let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
    enable_acs(&mut sim, &mut topo);
    let order: Vec<usize> = (0..topo.functions.len()).rev().collect();
    let groups = pci_device_groups(&mut sim, &topo, &order);
    assert_eq!(canonical(&groups, &topo), BASIC_GROUPS);
}
