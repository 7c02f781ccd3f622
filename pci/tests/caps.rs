//! Capability decoding against the register layouts of the PCIe spec.

use pci::caps::PcieType;
use pci::enumerate;
use pci::regs::*;
use pci::sim::qemu::*;
use pci::sim::{SimConfig, SimFn};

#[test]
fn qemu_root_port_capabilities() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let c = &topo.functions[0].caps;
    let pcie = c.pcie.expect("PCIe cap");
    assert_eq!(pcie.port_type, PcieType::RootPort);
    assert!(pcie.hotplug_capable());
    assert!(pcie.ari_forwarding_supported());
    assert_eq!(pcie.version(), 2);
    assert_eq!(pcie.max_link(), (1, 1));
    assert_eq!(c.aer, Some(0x100));
    let acs = c.acs.expect("ACS cap");
    assert_eq!((acs.offset, acs.cap, acs.ctrl), (0x148, 0x5f, 0));
    assert!(c.msi.is_some() && c.pm.is_some() && c.msix.is_none());
    assert_eq!(topo.functions[0].class, 0x060400);
}

#[test]
fn ari_sriov_dpc_decoded() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, SimFn::new(0x8086, 0x1572).pcie(PCI_EXP_TYPE_RC_END).msix().ari(0).sriov(64, 32).dpc());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let c = &topo.functions[0].caps;
    assert_eq!(c.ari.map(|a| a.next_function), Some(0));
    assert_eq!(c.sriov.map(|v| (v.total_vfs, v.initial_vfs)), Some((64, 32)));
    assert!(c.dpc.is_some() && c.msix.is_some());
}

#[test]
fn no_extended_walk_without_ecam_or_pcie() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1).legacy_only());
    s.at(0, 3, 0, SimFn::new(0x1234, 1).aer());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(topo.functions[0].caps.extended.is_empty());
    assert!(topo.functions[1].caps.extended.is_empty(), "conventional: 256-byte space");
}

#[test]
fn capability_walk_is_bounded() {
    // 0xfc points to itself: a one-entry loop.
    let mut s = SimConfig::new();
    s.at(0, 3, 0, SimFn::new(0x1234, 1).pm().poke8(0x34, 0xfc).poke8(0xfc, 0x09).poke8(0xfd, 0xfc));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions[0].caps.standard.len(), 1);
    assert_eq!(topo.errors.len(), 1);
}
