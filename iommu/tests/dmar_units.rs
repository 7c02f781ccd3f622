//! Which DRHD covers each function (Linux `dmar_find_matched_drhd_unit` /
//! `device_to_iommu`), and what a device no unit covers gets: no group.

mod common;

use common::*;
use iommu::group::{canonical, pci_device_groups};
use iommu::vtd::dmar::{Drhd, DrhdFlags};
use iommu::vtd::dmar_scope::{DeviceScope, PathEntry, ScopeType, match_drhd_units};
use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::{Topology, enumerate};

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

fn drhd(base: u64, include_all: bool, scopes: Vec<DeviceScope>) -> Drhd {
    let flags = if include_all { DrhdFlags::INCLUDE_PCI_ALL } else { DrhdFlags::empty() };
    Drhd { offset: 0, flags, size: 0, segment: 0, register_base: base, scopes }
}

/// QEMU's `bypass-pxb` shape: bus 0 with a root port (bus 1), a pxb-pcie
/// at 00:05.0 opening root bus 0x20 whose root port leads to 0x21, and a
/// second pxb at 00:06.0 (bus 0x40/0x41).
fn two_pxb_machine() -> (SimConfig, Vec<u8>) {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, edu());
    s.at(0, 5, 0, pxb_host());
    s.at(0, 6, 0, pxb_host());
    s.at(0x20, 0, 0, root_port(true, 0x21, 0x21).poke8(0x18, 0x20));
    s.at(0x21, 0, 0, edu());
    s.at(0x40, 0, 0, root_port(true, 0x41, 0x41).poke8(0x18, 0x40));
    s.at(0x41, 0, 0, edu());
    (s, vec![0, 0x20, 0x40])
}

fn topo_of(s: &mut SimConfig, roots: &[u8]) -> Topology {
    enumerate(s, 0, roots, 0..=255)
}

fn covered(topo: &Topology, unit_of: &[Option<usize>]) -> Vec<String> {
    unit_of.iter().enumerate().filter(|(_, u)| u.is_some()).map(|(i, _)| format!("{}", topo.functions[i].bdf)).collect()
}

/// QEMU's DMAR for `pxb-pcie,bypass_iommu=true` on bus 0x20: one DRHD,
/// flags 0, a scope for each device on every non-bypassed root bus (bridges
/// as sub-hierarchies).
fn qemu_bypass_pxb_drhd() -> Drhd {
    use ScopeType::*;
    drhd(
        0xfed9_0000,
        false,
        vec![
            scope(Endpoint, 0, &[(0, 0)]),
            scope(SubHierarchy, 0, &[(2, 0)]),
            scope(Endpoint, 0, &[(5, 0)]),
            scope(Endpoint, 0, &[(6, 0)]),
            scope(Endpoint, 0, &[(0x1f, 0)]),
            scope(Endpoint, 0, &[(0x1f, 2)]),
            scope(Endpoint, 0, &[(0x1f, 3)]),
            scope(SubHierarchy, 0x40, &[(0, 0)]),
        ],
    )
}

#[test]
fn bypassed_root_bus_is_not_covered_and_gets_no_group() {
    let (mut s, roots) = two_pxb_machine();
    let mut topo = topo_of(&mut s, &roots);
    pci::acs::enable_acs(&mut s, &mut topo);
    let d = qemu_bypass_pxb_drhd();
    let m = match_drhd_units(&[&d], &topo);
    assert_eq!(
        covered(&topo, &m.unit_of),
        [
            "0000:00:00.0",
            "0000:00:02.0",
            "0000:00:05.0",
            "0000:00:06.0",
            "0000:00:1f.0",
            "0000:00:1f.2",
            "0000:00:1f.3",
            "0000:01:00.0",
            "0000:40:00.0",
            "0000:41:00.0"
        ]
    );
    assert_eq!(m.ignored, [false]);
    let order: Vec<usize> = (0..topo.functions.len()).filter(|&i| m.unit_of[i].is_some()).collect();
    let groups = pci_device_groups(&mut s, &topo, &order);
    // What Linux 6.1 printed for fixtures/no-iommu-bypass-pxb.qemu.
    assert_eq!(
        canonical(&groups, &topo),
        "0000:00:00.0\n0000:00:02.0\n0000:00:05.0\n0000:00:06.0\n0000:00:1f.0 0000:00:1f.2 0000:00:1f.3\n\
         0000:01:00.0\n0000:40:00.0\n0000:41:00.0\n"
    );
}

#[test]
fn include_pci_all_covers_the_rest_and_comes_last() {
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    // Table order: the catch-all first, then a unit scoped to bus 0x20's port.
    let all = drhd(0xfed9_0000, true, vec![scope(ScopeType::SubHierarchy, 0x20, &[(0, 0)])]);
    let pxb = drhd(0xfed9_1000, false, vec![scope(ScopeType::SubHierarchy, 0x20, &[(0, 0)])]);
    let m = match_drhd_units(&[&all, &pxb], &topo);
    for (i, f) in topo.functions.iter().enumerate() {
        let want = if f.bdf.bus >= 0x20 && f.bdf.bus < 0x40 { 1 } else { 0 };
        assert_eq!(m.unit_of[i], Some(want), "{}", f.bdf);
    }
    // The catch-all's own scopes are never read (dmar_parse_one_drhd).
    assert!(m.scope_devices[0].is_empty());
}

#[test]
fn scoped_units_are_searched_in_reverse_table_order() {
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    // Both name bus 0's root port 00:02.0; Linux's list has the later one first.
    let a = drhd(0xfed9_0000, false, vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0)])]);
    let b = drhd(0xfed9_1000, false, vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0)])]);
    let m = match_drhd_units(&[&a, &b], &topo);
    let edu = topo.find(pci::Bdf::new(0, 1, 0, 0)).unwrap();
    assert_eq!(m.unit_of[edu], Some(1));
}

#[test]
fn unit_naming_no_present_device_is_ignored() {
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    let ghost = drhd(0xfed9_1000, false, vec![scope(ScopeType::Endpoint, 0, &[(0x10, 0)])]);
    let all = drhd(0xfed9_0000, true, vec![]);
    let m = match_drhd_units(&[&ghost, &all], &topo);
    assert_eq!(m.ignored, [true, false]);
    assert!(m.unit_of.iter().all(|u| *u == Some(1)));
}

/// Linux 6.1 `dmar_insert_dev_scope` returns -EINVAL for a scope of the
/// wrong type; `dmar_pci_bus_add_dev` records it in
/// `dmar_dev_scope_status`, `dmar_dev_scope_init` returns it and
/// `intel_iommu_init` gives up ("goto out_free_dmar"): no IOMMU at all, so
/// no device has a group - not only the mistyped one.
#[test]
fn scope_of_the_wrong_type_fails_the_whole_scope_init() {
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    // An endpoint scope naming the root port 00:02.0 (a bridge header).
    let d = drhd(
        0xfed9_0000,
        false,
        vec![scope(ScopeType::Endpoint, 0, &[(2, 0)]), scope(ScopeType::Endpoint, 0, &[(0, 0)])],
    );
    let all = drhd(0xfed9_1000, true, vec![]);
    let m = match_drhd_units(&[&d, &all], &topo);
    assert_eq!(m.mismatches.len(), 1);
    assert_eq!(m.mismatches[0].at, pci::Bdf::new(0, 0, 2, 0));
    assert!(covered(&topo, &m.unit_of).is_empty(), "{:?}", covered(&topo, &m.unit_of));
}

/// RMRR scopes go through the same `dmar_insert_dev_scope`
/// (`dmar_iommu_notify_scope_dev`): one of the wrong type fails the scope
/// init too, and no function has an IOMMU. A well-typed RMRR changes
/// nothing.
#[test]
fn a_mistyped_rmrr_scope_fails_the_scope_init_too() {
    use iommu::vtd::dmar::Rmrr;
    use iommu::vtd::dmar_scope::rmrr_scope_mismatches;
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    let all = drhd(0xfed9_0000, true, vec![]);
    let rmrr = |kind, path: &[(u8, u8)]| Rmrr {
        offset: 0x40,
        segment: 0,
        base: 0xf_0000,
        limit: 0xf_ffff,
        scopes: vec![scope(kind, 0, path)],
    };
    let mut m = match_drhd_units(&[&all], &topo);
    rmrr_scope_mismatches(&mut m, [&rmrr(ScopeType::Endpoint, &[(0x1f, 2)])], &topo);
    assert!(m.mismatches.is_empty() && m.unit_of.iter().all(Option::is_some), "an endpoint named as one");
    rmrr_scope_mismatches(&mut m, [&rmrr(ScopeType::Endpoint, &[(2, 0)])], &topo);
    assert_eq!(m.mismatches.len(), 1);
    assert_eq!(m.mismatches[0].at, pci::Bdf::new(0, 0, 2, 0));
    assert!(m.unit_of.iter().all(Option::is_none), "no function has an IOMMU");
}

/// `dmar_pci_bus_add_dev` stops at the first unit (in list order: scoped
/// units in reverse table order) whose scope takes the device (`if (ret)
/// break`): a device two scoped units name is in the first one's scope
/// only, so the other, naming nothing else, is ignored
/// (`init_no_remapping_devices`).
#[test]
fn a_device_enters_one_unit_s_scope_only() {
    let (mut s, roots) = two_pxb_machine();
    let topo = topo_of(&mut s, &roots);
    let a = drhd(0xfed9_0000, false, vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0)])]);
    let b = drhd(0xfed9_1000, false, vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0)])]);
    let m = match_drhd_units(&[&a, &b], &topo);
    let port = topo.find(pci::Bdf::new(0, 0, 2, 0)).unwrap();
    assert_eq!(m.scope_devices, [vec![], vec![port]]);
    assert_eq!(m.ignored, [true, false]);
}

#[test]
fn bridge_scope_covers_its_bus_range_not_only_its_children() {
    // A scope naming the switch's upstream port covers every bus in its
    // secondary..subordinate range (is_downstream_to_pci_bridge), but not
    // the root port above it.
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 3));
    s.at(1, 0, 0, usp(1, 2, 3));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(3, 0, 0, edu());
    let topo = topo_of(&mut s, &[0]);
    let d = drhd(0xfed9_0000, false, vec![scope(ScopeType::SubHierarchy, 0, &[(2, 0), (0, 0)])]);
    let m = match_drhd_units(&[&d], &topo);
    assert_eq!(covered(&topo, &m.unit_of), ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]);
}

/// Linux `dmar_match_pci_path` compares a scope with the device's own path
/// from its root bus (`info->bus` is the root bus, each level the devfn of
/// the device or bridge there), not with bus numbers read from bridges: a
/// path of more than one hop that starts on a bus that is not the root
/// bus names nothing. Only a one-hop path on the device's own bus is
/// taken as well (the "RMRR entry ... is broken" workaround).
#[test]
fn scope_paths_start_at_the_root_bus() {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 3));
    s.at(1, 0, 0, usp(1, 2, 3));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(3, 0, 0, edu());
    let topo = topo_of(&mut s, &[0]);
    // From bus 1 (the root port's secondary): upstream port, then the
    // downstream port. Linux: bus 1 is not the root bus, two hops: no match.
    let from_bus_1 = drhd(0xfed9_0000, false, vec![scope(ScopeType::SubHierarchy, 1, &[(0, 0), (0, 0)])]);
    let m = match_drhd_units(&[&from_bus_1], &topo);
    assert!(covered(&topo, &m.unit_of).is_empty(), "{:?}", covered(&topo, &m.unit_of));
    // The same downstream port by its full path from bus 0, and by one hop
    // on its own bus 2 (the workaround): both name it.
    for sc in
        [scope(ScopeType::SubHierarchy, 0, &[(2, 0), (0, 0), (0, 0)]), scope(ScopeType::SubHierarchy, 2, &[(0, 0)])]
    {
        let d = drhd(0xfed9_0000, false, vec![sc]);
        let m = match_drhd_units(&[&d], &topo);
        assert_eq!(covered(&topo, &m.unit_of), ["0000:02:00.0", "0000:03:00.0"]);
    }
}
