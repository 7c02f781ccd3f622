//! Capability decoding against the register layouts of the PCIe spec.

use pci::caps::{CapError, PcieType, read_capabilities};
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

/// A conventional function whose standard list is given as (offset, id,
/// next) triples, starting at `first`.
fn std_list(first: u8, entries: &[(u8, u8, u8)]) -> SimFn {
    let mut f = SimFn::new(0x1234, 0x5678).legacy_only().poke16(PCI_STATUS, PCI_STATUS_CAP_LIST).poke8(0x34, first);
    for &(at, id, next) in entries {
        f = f.poke8(u16::from(at), id).poke8(u16::from(at) + 1, next);
    }
    f
}

fn walk(f: SimFn) -> (pci::caps::Capabilities, Vec<CapError>) {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, f);
    read_capabilities(&mut s, pci::Bdf::new(0, 0, 3, 0), PCI_HEADER_TYPE_NORMAL)
}

#[test]
fn standard_list_errors_cut_the_list_where_they_occur() {
    // A pointer into the header after one good entry.
    let (c, e) = walk(std_list(0x40, &[(0x40, PCI_CAP_ID_PM, 0x20)]));
    assert_eq!(c.standard, [(PCI_CAP_ID_PM, 0x40)]);
    assert_eq!(e, [CapError::PointerIntoHeader { at: 0x40, pointer: 0x20 }]);
    // The first pointer itself into the header.
    let (c, e) = walk(std_list(0x3c, &[]));
    assert!(c.standard.is_empty());
    assert_eq!(e, [CapError::PointerIntoHeader { at: 0x34, pointer: 0x3c }]);
    // An id of 0xff ends the list quietly (a vanished device mid-walk).
    let (c, e) = walk(std_list(0x40, &[(0x40, PCI_CAP_ID_MSI, 0x50), (0x50, 0xff, 0x60), (0x60, PCI_CAP_ID_PM, 0)]));
    assert_eq!(c.standard, [(PCI_CAP_ID_MSI, 0x40)]);
    assert!(e.is_empty());
    // Pointer bits 1:0 are reserved and ignored (Linux masks them).
    let (c, e) = walk(std_list(0x43, &[(0x40, PCI_CAP_ID_MSI, 0x52), (0x50, PCI_CAP_ID_PM, 0)]));
    assert_eq!(c.standard, [(PCI_CAP_ID_MSI, 0x40), (PCI_CAP_ID_PM, 0x50)]);
    assert!(e.is_empty());
}

/// A PCIe endpoint whose extended list is given as (offset, id, next).
fn ext_list(entries: &[(u16, u16, u16)]) -> SimFn {
    let mut f = SimFn::new(0x1234, 0x5678).pcie(PCI_EXP_TYPE_ENDPOINT);
    for &(at, id, next) in entries {
        f = f.poke32(at, u32::from(id) | (1 << 16) | (u32::from(next) << 20));
    }
    f
}

#[test]
fn extended_list_errors_cut_the_list_where_they_occur() {
    // The second entry points back into the legacy space.
    let (c, e) = walk(ext_list(&[(0x100, PCI_EXT_CAP_ID_ERR, 0x140), (0x140, PCI_EXT_CAP_ID_ACS, 0x80)]));
    assert_eq!(c.extended, [(PCI_EXT_CAP_ID_ERR, 0x100), (PCI_EXT_CAP_ID_ACS, 0x140)]);
    assert_eq!(e, [CapError::ExtPointerIntoLegacy { at: 0x140, pointer: 0x80 }]);
    // A header reading all ones in the middle of the list.
    let (c, e) = walk(ext_list(&[(0x100, PCI_EXT_CAP_ID_ERR, 0x140)]).poke32(0x140, u32::MAX));
    assert_eq!(c.extended, [(PCI_EXT_CAP_ID_ERR, 0x100)]);
    assert_eq!(e, [CapError::ExtAllOnes { offset: 0x140 }]);
    // A loop back to the first entry.
    let (c, e) = walk(ext_list(&[(0x100, PCI_EXT_CAP_ID_ERR, 0x140), (0x140, PCI_EXT_CAP_ID_ACS, 0x100)]));
    assert_eq!(c.extended.len(), 2);
    assert_eq!(e, [CapError::ExtLoop { offset: 0x100 }]);
}
