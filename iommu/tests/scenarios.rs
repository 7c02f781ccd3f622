//! The five shared QEMU scenarios, simulated: the canonical group list must
//! be byte-identical to what Linux 6.1 printed for the same machine
//! (/work/shared/scenarios/*.linux-6.1.groups, copied here).

mod common;

use common::*;
use iommu::group::canonical;

fn check(mut sim: pci::sim::SimConfig, roots: &[u8], expected: &str) {
    let (topo, groups) = run(&mut sim, roots);
    assert!(topo.errors.is_empty(), "enumeration errors: {:?}", topo.errors);
    assert_eq!(canonical(&groups, &topo), expected);
}

#[test]
fn basic_matches_linux() {
    check(basic(), &[0], BASIC_GROUPS);
}

#[test]
fn expander_matches_linux() {
    check(expander(), EXPANDER_ROOTS, EXPANDER_GROUPS);
}

#[test]
fn no_acs_multifunction_matches_linux() {
    check(no_acs_multifunction(), &[0], NO_ACS_MULTIFUNCTION_GROUPS);
}

#[test]
fn pcie_pci_bridge_matches_linux() {
    check(pcie_pci_bridge_scenario(), &[0], PCIE_PCI_BRIDGE_GROUPS);
}

#[test]
fn switch_matches_linux() {
    check(switch(), &[0], SWITCH_GROUPS);
}

/// Linux numbers groups in probe order: 00:00.0 is probed first and gets 0.
#[test]
fn group_ids_follow_device_add_order() {
    let (topo, groups) = run(&mut basic(), &[0]);
    let ids: Vec<(String, u32)> =
        groups.groups.iter().map(|g| (format!("{}", topo.functions[g.members[0].function].bdf), g.id)).collect();
    assert_eq!(ids[0], ("0000:00:00.0".into(), 0));
    assert_eq!(ids[1], ("0000:00:02.0".into(), 1));
    assert!(ids.iter().enumerate().all(|(i, (_, id))| *id == i as u32));
}

/// The expander's root bus is found because its host bridge is listed;
/// when it is not, x86 Linux's peer-bus probe finds it, and finds nothing
/// more when it is.
#[test]
fn unlisted_root_bus_is_found_by_the_peer_probe() {
    let mut sim = expander();
    let topo = pci::enumerate(&mut sim, 0, &[0], 0..=255);
    assert!(topo.find(bdf(0x40, 0, 0)).is_none());
    let topo = pci::enumerate_with_peer_probe(&mut sim, 0, &[0], 0..=255, Some(0xff));
    assert_eq!(topo.peer_probe.as_ref().map(|p| p.discovered.clone()), Some(vec![0x40]));
    assert!(topo.find(bdf(0x41, 0, 0)).is_some(), "bus 0x41 is below the root port on 0x40, not probed");
    let topo = pci::enumerate_with_peer_probe(&mut sim, 0, EXPANDER_ROOTS, 0..=255, Some(0xff));
    assert_eq!(topo.peer_probe.map(|p| p.discovered), Some(vec![]));
}

/// The report names each member's rule in words.
#[test]
fn report_explains_switch() {
    let (topo, groups) = run(&mut switch(), &[0]);
    let report = iommu::group::report(&groups, &topo);
    for line in [
        "group 1: 0000:00:02.0 own group (on a root bus; no alias or non-isolated sibling)",
        "group 3: 0000:01:00.0 own group (isolated: ACS path to root complete)",
        "0000:03:00.0 downstream port 0000:02:00.0 above it has no ACS capability",
        "0000:00:1f.2 shares slot 00:1f with 0000:00:1f.0; no ACS (conventional PCI, no ACS)",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
}
