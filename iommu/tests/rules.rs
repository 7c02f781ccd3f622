//! One test per grouping rule of Linux 6.1; each fails if its rule is
//! removed from the implementation.

mod common;

use common::*;
use iommu::group::{Reason, canonical, group_all, pci_device_groups};
use pci::acs::AcsFail;
use pci::alias::{dma_requester_ids, pci_for_each_dma_alias};
use pci::enumerate;
use pci::regs::*;
use pci::sim::qemu::*;
use pci::sim::{SimConfig, SimFn};
use pci::topology::DevFlags;

fn rids(topo: &pci::Topology, i: usize) -> Vec<String> {
    dma_requester_ids(topo, i).iter().map(|a| format!("{}", a.requester_id)).collect()
}

fn reason(_topo: &pci::Topology, groups: &iommu::group::Groups, i: usize) -> Reason {
    let g = groups.group_of(i).expect("grouped");
    g.members.iter().find(|m| m.function == i).expect("member").reason.clone()
}

#[test]
fn alias_through_pcie_to_pci_bridge() {
    let (topo, groups) = run(&mut pcie_pci_bridge_scenario(), &[0]);
    let edu = idx(&topo, 2, 1, 0);
    assert_eq!(rids(&topo, edu), ["0000:02:01.0", "0000:02:00.0"]);
    assert_eq!(gid(&topo, &groups, 2, 1, 0), gid(&topo, &groups, 1, 0, 0));
    let r = reason(&topo, &groups, edu);
    assert!(matches!(r, Reason::BehindBridge { requester_id, .. } if requester_id == bdf(2, 0, 0)), "{r:?}");
    assert_eq!(r.to_string(), "behind PCIe-to-PCI bridge 0000:01:00.0, requester id 0000:02:00.0");
}

fn conventional_bridge_machine() -> SimConfig {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 0x1e, 0, pci_bridge(0, 1, 2));
    s.at(1, 1, 0, pci_bridge(1, 2, 2));
    s.at(1, 2, 0, edu());
    s.at(2, 1, 0, edu());
    s
}

#[test]
fn conventional_bridge_forwards_as_itself() {
    let (topo, groups) = run(&mut conventional_bridge_machine(), &[0]);
    let edu = idx(&topo, 1, 2, 0);
    assert_eq!(rids(&topo, edu), ["0000:01:02.0", "0000:00:1e.0"]);
    assert_eq!(gid(&topo, &groups, 1, 2, 0), gid(&topo, &groups, 0, 0x1e, 0));
    assert_eq!(
        reason(&topo, &groups, edu).to_string(),
        "conventional PCI bridge 0000:00:1e.0 forwards its requests as its own"
    );
}

#[test]
fn nested_conventional_bridges_topmost_wins() {
    let mut sim = conventional_bridge_machine();
    let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
    pci::acs::enable_acs(&mut sim, &mut topo);
    let deep = idx(&topo, 2, 1, 0);
    let mut last = None;
    pci_for_each_dma_alias(&topo, deep, |a| {
        last = Some(a);
        false
    });
    assert_eq!(last.map(|a| a.requester_id), Some(bdf(0, 0x1e, 0)));
    // Probed before its bridges, the device's "P" is the top-most bridge.
    let groups = pci_device_groups(&mut sim, &topo, &[deep]);
    assert_eq!(reason(&topo, &groups, deep), Reason::OwnBelowUngrouped { top: bdf(0, 0x1e, 0) });
    // In device_add order everything below 00:1e.0 is one group.
    let groups = group_all(&mut sim, &topo);
    assert_eq!(canonical(&groups, &topo), "0000:00:00.0\n0000:00:1e.0 0000:01:01.0 0000:01:02.0 0000:02:01.0\n");
}

#[test]
fn acs_climb_stops_at_dsp_without_acs_and_absorbs_subtree() {
    let (topo, groups) = run(&mut switch(), &[0]);
    let ep = idx(&topo, 3, 0, 0);
    assert_eq!(gid(&topo, &groups, 3, 0, 0), gid(&topo, &groups, 2, 0, 0));
    let r = reason(&topo, &groups, ep);
    assert!(
        matches!(r, Reason::AcsPathBroken { joined, failed_at, why: AcsFail::NoAcsCap, .. }
            if joined == bdf(2, 0, 0) && failed_at == bdf(2, 0, 0)),
        "{r:?}"
    );
    assert_eq!(r.to_string(), "downstream port 0000:02:00.0 above it has no ACS capability");
}

#[test]
fn switch_dsps_without_acs_are_not_merged() {
    let (topo, groups) = run(&mut switch(), &[0]);
    let usp = gid(&topo, &groups, 1, 0, 0);
    let d = [gid(&topo, &groups, 2, 0, 0), gid(&topo, &groups, 2, 1, 0), gid(&topo, &groups, 2, 2, 0)];
    assert!(d[0] != d[1] && d[1] != d[2] && d[0] != d[2]);
    assert!(!d.contains(&usp));
}

/// A bridge's own ACS never decides its own group: the ACS-less DSP is
/// isolated from the USP above it, and an ACS-less root port on the root
/// bus gets a group of its own.
#[test]
fn own_acs_never_checked() {
    let (topo, groups) = run(&mut switch(), &[0]);
    assert_eq!(reason(&topo, &groups, idx(&topo, 2, 0, 0)), Reason::OwnAcsPathComplete);
    let (topo, groups) = run(&mut no_acs_multifunction(), &[0]);
    assert_eq!(reason(&topo, &groups, idx(&topo, 0, 3, 0)), Reason::OwnRootBus);
}

#[test]
fn multifunction_root_port_slot_without_acs_merges() {
    let (topo, groups) = run(&mut no_acs_multifunction(), &[0]);
    assert_eq!(gid(&topo, &groups, 0, 2, 0), gid(&topo, &groups, 0, 2, 1));
    let r = reason(&topo, &groups, idx(&topo, 0, 2, 1));
    assert_eq!(r.to_string(), "shares slot 00:02 with 0000:00:02.0; no ACS (no ACS capability)");
}

#[test]
fn multifunction_endpoint_without_acs_merges_functions() {
    let (topo, groups) = run(&mut no_acs_multifunction(), &[0]);
    assert_eq!(gid(&topo, &groups, 4, 0, 0), gid(&topo, &groups, 4, 0, 1));
    assert_ne!(gid(&topo, &groups, 4, 0, 0), gid(&topo, &groups, 0, 4, 0));
}

#[test]
fn acs_cap_reading_zero_passes() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, e1000e().acs(0, 0).multifunction());
    s.at(1, 0, 1, e1000e().acs(0, 0));
    let (topo, groups) = run(&mut s, &[0]);
    assert_ne!(gid(&topo, &groups, 1, 0, 0), gid(&topo, &groups, 1, 0, 1));
}

#[test]
fn root_port_acs_not_enabled_fails_until_enable_acs() {
    let mut sim = basic();
    let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
    let before = group_all(&mut sim, &topo);
    assert_eq!(gid(&topo, &before, 1, 0, 0), gid(&topo, &before, 0, 2, 0));
    assert_eq!(gid(&topo, &before, 0, 2, 1), gid(&topo, &before, 0, 2, 0));
    let r = reason(&topo, &before, idx(&topo, 1, 0, 0));
    assert_eq!(r.to_string(), "root port 0000:00:02.0 above it lacks ACS SV/RR/CR/UF (cap 0x005f, ctrl 0x0000)");
    pci::acs::enable_acs(&mut sim, &mut topo);
    let after = group_all(&mut sim, &topo);
    assert_eq!(canonical(&after, &topo), BASIC_GROUPS);
}

/// ARI device with 16 functions: function grouping works per devfn >> 3.
#[test]
fn function_grouping_per_8_function_block_with_ari() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    for func in 0u8..16 {
        let next = if func == 15 { 0 } else { func + 1 };
        let mut f = e1000e().ari(next);
        if func == 0 {
            f = f.multifunction();
        }
        s.add(pci::Bdf::from_devfn(0, 1, func), f);
    }
    let (topo, groups) = run(&mut s, &[0]);
    assert_eq!(topo.functions.len(), 17, "ARI chain followed past function 7");
    assert_eq!(
        canonical(&groups, &topo),
        "0000:00:02.0\n\
         0000:01:00.0 0000:01:00.1 0000:01:00.2 0000:01:00.3 0000:01:00.4 0000:01:00.5 0000:01:00.6 0000:01:00.7\n\
         0000:01:01.0 0000:01:01.1 0000:01:01.2 0000:01:01.3 0000:01:01.4 0000:01:01.5 0000:01:01.6 0000:01:01.7\n"
    );
}

#[test]
fn quirk_mf_endpoint_isolates_functions() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, SimFn::new(0x8086, 0x10c9).pcie(PCI_EXP_TYPE_ENDPOINT).multifunction());
    s.at(1, 0, 1, SimFn::new(0x8086, 0x10c9).pcie(PCI_EXP_TYPE_ENDPOINT));
    let (topo, groups) = run(&mut s, &[0]);
    assert_ne!(gid(&topo, &groups, 1, 0, 0), gid(&topo, &groups, 1, 0, 1));
}

#[test]
fn quirk_rciep_isolates_intel_rc_endpoints_only() {
    let mut s = SimConfig::new();
    s.at(0, 5, 0, SimFn::new(0x8086, 0x1234).pcie(PCI_EXP_TYPE_RC_END).multifunction());
    s.at(0, 5, 1, SimFn::new(0x8086, 0x1235).pcie(PCI_EXP_TYPE_RC_END));
    s.at(0, 6, 0, SimFn::new(0x1b36, 0x1234).pcie(PCI_EXP_TYPE_RC_END).multifunction());
    s.at(0, 6, 1, SimFn::new(0x1b36, 0x1235).pcie(PCI_EXP_TYPE_RC_END));
    let (topo, groups) = run(&mut s, &[0]);
    assert_eq!(canonical(&groups, &topo), "0000:00:05.0\n0000:00:05.1\n0000:00:06.0 0000:00:06.1\n");
}

/// Zhaoxin ports outside the known id ranges are "not isolated" even with
/// a standard, enabled ACS capability; inside the ranges they are isolated
/// without one.
#[test]
fn quirk_zhaoxin_outside_range_not_isolated() {
    let port = |dev: u16, acs: bool| {
        let f = SimFn::new(0x1d17, dev).class(0x060400).pcie(PCI_EXP_TYPE_ROOT_PORT);
        if acs { f.acs(QEMU_ACS_CAP, 0) } else { f }
    };
    let mut s = SimConfig::new();
    s.at(0, 2, 0, port(0x0800, true).bridge(0, 1, 1));
    s.at(0, 3, 0, port(0x0715, false).bridge(0, 2, 2));
    s.at(1, 0, 0, e1000e());
    s.at(2, 0, 0, e1000e());
    let (topo, groups) = run(&mut s, &[0]);
    assert_eq!(canonical(&groups, &topo), "0000:00:02.0 0000:01:00.0\n0000:00:03.0\n0000:02:00.0\n");
}

#[test]
fn quirk_func1_alias_ghost_function() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, SimFn::new(0x1b4b, 0x9123).pcie(PCI_EXP_TYPE_ENDPOINT));
    let (topo, _) = run(&mut s, &[0]);
    let marvell = idx(&topo, 1, 0, 0);
    assert_eq!(topo.functions.len(), 2, "function 1 does not exist");
    assert_eq!(rids(&topo, marvell), ["0000:01:00.0", "0000:01:00.1"]);
}

#[test]
fn quirk_func1_alias_merges_with_present_function() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, SimFn::new(0x1b4b, 0x9123).pcie(PCI_EXP_TYPE_ENDPOINT).acs(0, 0).multifunction());
    s.at(1, 0, 1, SimFn::new(0x1b4b, 0x91a4).pcie(PCI_EXP_TYPE_ENDPOINT).acs(0, 0));
    let (topo, groups) = run(&mut s, &[0]);
    assert_eq!(gid(&topo, &groups, 1, 0, 0), gid(&topo, &groups, 1, 0, 1));
    let r = reason(&topo, &groups, idx(&topo, 1, 0, 1));
    assert_eq!(r.to_string(), "DMA alias quirk (func1) with 0000:01:00.0");
}

#[test]
fn quirk_pcie_bridge_alias_for_82801_below_root_port_not_on_root_bus() {
    let mut s = SimConfig::new();
    s.at(0, 0x1c, 0, root_port(true, 1, 2));
    s.at(1, 0, 0, i82801b11(1, 2, 2));
    s.at(2, 1, 0, edu());
    s.at(0, 0x1e, 0, i82801b11(0, 3, 3));
    s.at(3, 1, 0, edu());
    let (topo, groups) = run(&mut s, &[0]);
    let below_rp = idx(&topo, 1, 0, 0);
    let on_root = idx(&topo, 0, 0x1e, 0);
    assert!(topo.functions[below_rp].dev_flags.contains(DevFlags::PCIE_BRIDGE_ALIAS));
    assert!(!topo.functions[on_root].dev_flags.contains(DevFlags::PCIE_BRIDGE_ALIAS));
    assert_eq!(rids(&topo, idx(&topo, 2, 1, 0)), ["0000:02:01.0", "0000:02:00.0"]);
    assert_eq!(rids(&topo, idx(&topo, 3, 1, 0)), ["0000:03:01.0", "0000:00:1e.0"]);
    assert_eq!(gid(&topo, &groups, 2, 1, 0), gid(&topo, &groups, 1, 0, 0));
}

#[test]
fn quirk_bridge_xlate_root_stops_alias_walk() {
    let mut s = SimConfig::new();
    s.at(0, 1, 0, pci_bridge(0, 1, 2));
    s.at(1, 0, 0, SimFn::new(0x14e4, 0x9000).class(0x060400).bridge(1, 2, 2).pcie(PCI_EXP_TYPE_DOWNSTREAM));
    s.at(2, 0, 0, edu());
    let (topo, _) = run(&mut s, &[0]);
    assert!(topo.functions[idx(&topo, 1, 0, 0)].dev_flags.contains(DevFlags::BRIDGE_XLATE_ROOT));
    assert_eq!(rids(&topo, idx(&topo, 2, 0, 0)), ["0000:02:00.0"]);
    // Without the quirk the conventional bridge above would be visited.
    assert_eq!(rids(&topo, idx(&topo, 1, 0, 0)), ["0000:01:00.0", "0000:00:01.0"]);
}

#[test]
fn quirk_plx_ntb_aliases_all_devfns() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, SimFn::new(0x10b5, 0x87b0).pcie(PCI_EXP_TYPE_ENDPOINT));
    let (topo, _) = run(&mut s, &[0]);
    assert_eq!(dma_requester_ids(&topo, idx(&topo, 1, 0, 0)).len(), 256);
}

/// Intel PCH root ports (pci_quirk_intel_pch_acs_ids) have no ACS
/// capability; without the RCBA-based enable (MMIO, not applied here) the
/// quirk answers "not isolated", so two such ports in one slot and
/// everything below them form one group. An id outside the table gets no
/// quirk answer (the generic rules decide).
#[test]
fn quirk_intel_pch_root_ports_answer_not_isolated_without_the_enable() {
    let pch = |dev: u16, sec: u8| {
        SimFn::new(0x8086, dev).class(0x060400).pcie(PCI_EXP_TYPE_ROOT_PORT).bridge(0, sec, sec).multifunction()
    };
    let mut s = SimConfig::new();
    s.at(0, 0x1c, 0, pch(0x1c10, 1));
    s.at(0, 0x1c, 1, pch(0x1c12, 2));
    s.at(1, 0, 0, e1000e());
    s.at(2, 0, 0, e1000e());
    let (topo, groups) = run(&mut s, &[0]);
    let port = &topo.functions[idx(&topo, 0, 0x1c, 0)];
    let answer = pci::acs_quirks::pci_dev_specific_acs_enabled(&mut s, port, REQ_ACS_FLAGS);
    assert_eq!(answer, Some((pci::acs_quirks::AcsQuirk::IntelPch, false)));
    assert_eq!(
        pci::acs_quirks::pci_dev_specific_acs_enabled(&mut s, port, pci::AcsFlags::empty()).map(|a| a.1),
        Some(true),
        "nothing requested: enabled"
    );
    // Two functions of one slot without isolation: one group with both
    // subtrees.
    assert_eq!(canonical(&groups, &topo), "0000:00:1c.0 0000:00:1c.1 0000:01:00.0 0000:02:00.0\n");
    // An id just outside the table gets no quirk answer.
    let mut other = SimConfig::new();
    other.at(0, 0x1c, 0, pch(0x1c20, 1));
    let (t2, _) = run(&mut other, &[0]);
    assert_eq!(pci::acs_quirks::pci_dev_specific_acs_enabled(&mut other, &t2.functions[0], REQ_ACS_FLAGS), None);
}

/// Sunrise Point PCH root ports keep ACS control in a dword at cap + 8
/// (an erratum): the quirk must read there, not the standard word at +6.
#[test]
fn quirk_intel_spt_reads_acs_control_at_offset_8() {
    let spt = |std_ctrl: u16, spt_ctrl: u32| {
        let f = SimFn::new(0x8086, 0xa110).class(0x060400).pcie(PCI_EXP_TYPE_ROOT_PORT).bridge(0, 1, 1);
        f.acs(QEMU_ACS_CAP, std_ctrl).poke32(0x100 + INTEL_SPT_ACS_CTRL, spt_ctrl)
    };
    for (std_ctrl, spt_ctrl, isolated) in [(0x1d, 0, false), (0, 0x1d, true)] {
        let mut s = SimConfig::new();
        s.at(0, 0x1c, 0, spt(std_ctrl, spt_ctrl));
        let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
        assert_eq!(topo.functions[0].caps.acs.map(|a| a.offset), Some(0x100));
        let port = topo.functions.remove(0);
        let answer = pci::acs_quirks::pci_dev_specific_acs_enabled(&mut s, &port, REQ_ACS_FLAGS);
        assert_eq!(
            answer,
            Some((pci::acs_quirks::AcsQuirk::IntelSptPch, isolated)),
            "ctrl +6 {std_ctrl:#x}, +8 {spt_ctrl:#x}"
        );
    }
}

/// A PCI/PCI-X-to-PCIe ("reverse") bridge forwards requests from its PCIe
/// side as its own id (pci_for_each_dma_alias, PCI_EXP_TYPE_PCIE_BRIDGE).
#[test]
fn alias_through_a_pci_to_pcie_reverse_bridge() {
    let mut s = SimConfig::new();
    s.at(0, 0x1e, 0, pci_bridge(0, 1, 2));
    s.at(1, 1, 0, SimFn::new(0x10e3, 0x8114).class(0x060400).bridge(1, 2, 2).pcie(PCI_EXP_TYPE_PCIE_BRIDGE));
    s.at(2, 0, 0, SimFn::new(0x8086, 0x10d3).pcie(PCI_EXP_TYPE_ENDPOINT));
    let (topo, _) = run(&mut s, &[0]);
    assert_eq!(rids(&topo, idx(&topo, 2, 0, 0)), ["0000:02:00.0", "0000:01:01.0", "0000:00:1e.0"]);
}
