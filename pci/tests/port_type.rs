//! Linux 6.1's `set_pcie_port_type` (with its unshifted-type bug) and
//! `pci_cfg_space_size` / `PCI_BUS_FLAGS_NO_EXTCFG`, over simulated
//! config space.

use pci::caps::PcieType;
use pci::regs::*;
use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::{Bdf, Topology, enumerate};

fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(0, bus, dev, func)
}

fn func(topo: &Topology, bus: u8, dev: u8, f: u8) -> &pci::Function {
    &topo.functions[topo.find(bdf(bus, dev, f)).unwrap_or_else(|| panic!("{bus:02x}:{dev:02x}.{f} not found"))]
}

/// QEMU's `x3130-upstream` plugged into another upstream port's bus, and an
/// `xio3130-downstream` plugged straight into a root port (the shape of
/// fixtures/port-type-bug.qemu).
fn port_type_machine() -> SimConfig {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    // 00:02.0 -> 01:00.0 USP -> 02:00.0 USP (claims upstream below upstream)
    s.at(0, 2, 0, root_port(true, 1, 5));
    s.at(1, 0, 0, usp(1, 2, 5));
    s.at(2, 0, 0, usp(2, 3, 5));
    // On bus 3, below the "corrected" port: two downstream ports (slots 0
    // and 1) - Linux 6.1 scans the whole bus.
    s.at(3, 0, 0, dsp(3, 4, 4).acs(QEMU_ACS_CAP, 0));
    s.at(3, 1, 0, dsp(3, 5, 5));
    s.at(4, 0, 0, e1000e());
    s.at(5, 0, 0, edu());
    // 00:03.0 -> 06:00.0 DSP (claims downstream below a root port)
    s.at(0, 3, 0, root_port(true, 6, 7));
    s.at(6, 0, 0, dsp(6, 7, 7));
    s.at(7, 0, 0, e1000e());
    s.at(7, 1, 0, edu());
    s
}

#[test]
fn upstream_below_upstream_reads_as_endpoint_in_linux_6_1() {
    let mut s = port_type_machine();
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let f = func(&topo, 2, 0, 0);
    assert_eq!(f.caps.pcie.map(|c| c.port_type), Some(PcieType::Upstream), "the register says upstream");
    assert_eq!(f.pcie_type, Some(PcieType::Endpoint), "6.1 ORs the unshifted type: type 0");
    assert_eq!(f.port_type_bug, Some(PcieType::Downstream));
    // The genuine upstream port above it is untouched.
    assert_eq!(func(&topo, 1, 0, 0).pcie_type, Some(PcieType::Upstream));
    assert_eq!(func(&topo, 1, 0, 0).port_type_bug, None);
}

#[test]
fn downstream_below_root_port_reads_as_endpoint_in_linux_6_1() {
    let mut s = port_type_machine();
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let f = func(&topo, 6, 0, 0);
    assert_eq!(f.pcie_type, Some(PcieType::Endpoint));
    assert_eq!(f.port_type_bug, Some(PcieType::Upstream));
}

#[test]
fn bus_below_a_corrected_port_is_scanned_in_full() {
    let mut s = port_type_machine();
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    // Not a downstream port in Linux's eyes: no only-one-child rule.
    assert!(topo.find(bdf(3, 1, 0)).is_some(), "03:01.0 below the corrected upstream port");
    assert!(topo.find(bdf(7, 1, 0)).is_some(), "07:01.0 below the corrected downstream port");
    // Below a real root port only device 0 is scanned.
    assert!(topo.find(bdf(5, 0, 0)).is_some());
}

#[test]
fn child_bus_of_a_corrected_port_has_no_extended_config_space() {
    let mut s = port_type_machine();
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    // 03:00.0 has an ACS capability at 0x100 in hardware, but its bus is
    // PCI_BUS_FLAGS_NO_EXTCFG: 256 bytes, no extended capability at all.
    let dsp = func(&topo, 3, 0, 0);
    assert!(dsp.bus_no_extcfg);
    assert_eq!(dsp.cfg_size, 256);
    assert_eq!(dsp.caps.acs, None);
    assert!(dsp.caps.extended.is_empty());
    // The flag is inherited by every bus below.
    let below = func(&topo, 4, 0, 0);
    assert!(below.bus_no_extcfg);
    assert_eq!(below.cfg_size, 256);
    assert_eq!(below.caps.aer, None);
    // The corrected port itself sits on a normal bus.
    let port = func(&topo, 2, 0, 0);
    assert!(!port.bus_no_extcfg);
    assert_eq!(port.cfg_size, 4096);
    let d = func(&topo, 7, 0, 0);
    assert!(d.bus_no_extcfg && d.cfg_size == 256);
    // A genuine switch keeps extended space.
    assert!(!func(&topo, 1, 0, 0).bus_no_extcfg);
    assert_eq!(func(&topo, 1, 0, 0).cfg_size, 4096);
}

#[test]
fn conventional_function_has_256_bytes_unless_pci_x_mode_2() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 1, 0, edu());
    s.at(0, 2, 0, edu().pcix(PCI_X_STATUS_266MHZ));
    s.at(0, 3, 0, edu().pcix(PCI_X_STATUS_533MHZ));
    s.at(0, 4, 0, edu().pcix(0));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(func(&topo, 0, 1, 0).cfg_size, 256, "not PCIe, no PCI-X");
    assert_eq!(func(&topo, 0, 2, 0).cfg_size, 4096, "PCI-X 266");
    assert_eq!(func(&topo, 0, 3, 0).cfg_size, 4096, "PCI-X 533");
    assert_eq!(func(&topo, 0, 4, 0).cfg_size, 256, "PCI-X mode 1");
    // A host bridge is checked for extended space even when conventional.
    assert_eq!(func(&topo, 0, 0, 0).cfg_size, 4096);
}

#[test]
fn extended_space_all_ones_or_aliased_is_256_bytes() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host().legacy_only());
    s.at(0, 1, 0, e1000e());
    s.at(0, 2, 0, e1000e().legacy_only());
    // Extended space that mirrors the header: every 256-byte block from
    // 0x100 repeats the vendor/device dword.
    let mut aliased = aliased_endpoint();
    for off in (0x100u16..0x1000).step_by(0x100) {
        aliased = aliased.poke32(off, 0x10d3_8086);
    }
    s.at(0, 3, 0, aliased);
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(func(&topo, 0, 0, 0).cfg_size, 256, "host bridge, 0x100 reads all ones");
    assert_eq!(func(&topo, 0, 1, 0).cfg_size, 4096);
    assert_eq!(func(&topo, 0, 2, 0).cfg_size, 256, "no ECAM reach");
    assert_eq!(func(&topo, 0, 3, 0).cfg_size, 256, "aliased");
    assert!(func(&topo, 0, 3, 0).caps.extended.is_empty());
}

fn aliased_endpoint() -> pci::sim::SimFn {
    pci::sim::SimFn::new(0x8086, 0x10d3).class(0x020000).pcie(PCI_EXP_TYPE_ENDPOINT)
}
