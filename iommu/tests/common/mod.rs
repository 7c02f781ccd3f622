//! Simulated versions of the shared QEMU scenarios (q35 -nodefaults +
//! intel-iommu, SeaBIOS bus numbering), and helpers to run the pipeline.
#![allow(dead_code)]

use iommu::group::{Groups, group_all};
use pci::acs::enable_acs;
use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::{Bdf, Topology, enumerate};

/// What every q35 machine has on bus 0: host bridge and ICH9 functions.
pub fn q35_base(sim: &mut SimConfig) {
    sim.at(0, 0, 0, q35_host());
    sim.at(0, 0x1f, 0, ich9_lpc());
    sim.at(0, 0x1f, 2, ich9_ahci());
    sim.at(0, 0x1f, 3, ich9_smbus());
}

/// scenarios/basic.qemu
pub fn basic() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 1).multifunction());
    s.at(0, 2, 1, root_port(true, 2, 2));
    s.at(0, 3, 0, root_port(true, 3, 3));
    s.at(0, 5, 0, edu());
    s.at(1, 0, 0, edu());
    s.at(2, 0, 0, e1000e());
    s.at(3, 0, 0, nvme());
    s
}
pub const BASIC_GROUPS: &str = "\
0000:00:00.0
0000:00:02.0
0000:00:02.1
0000:00:03.0
0000:00:05.0
0000:00:1f.0 0000:00:1f.2 0000:00:1f.3
0000:01:00.0
0000:02:00.0
0000:03:00.0
";

/// scenarios/expander.qemu: pxb-pcie opens root bus 0x40.
pub fn expander() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(0, 6, 0, pxb_host());
    s.at(1, 0, 0, edu());
    s.at(0x40, 0, 0, root_port(true, 0x41, 0x41).bridge(0x40, 0x41, 0x41));
    s.at(0x41, 0, 0, edu());
    s
}
pub const EXPANDER_ROOTS: &[u8] = &[0, 0x40];
pub const EXPANDER_GROUPS: &str = "\
0000:00:00.0
0000:00:02.0
0000:00:06.0
0000:00:1f.0 0000:00:1f.2 0000:00:1f.3
0000:01:00.0
0000:40:00.0
0000:41:00.0
";

/// scenarios/no-acs-multifunction.qemu
pub fn no_acs_multifunction() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(false, 1, 1).multifunction());
    s.at(0, 2, 1, root_port(false, 2, 2));
    s.at(0, 3, 0, root_port(false, 3, 3));
    s.at(0, 4, 0, root_port(true, 4, 4));
    s.at(1, 0, 0, e1000e());
    s.at(2, 0, 0, edu());
    s.at(3, 0, 0, e1000e().multifunction());
    s.at(3, 0, 1, e1000e());
    s.at(3, 0, 2, nvme());
    s.at(4, 0, 0, e1000e().multifunction());
    s.at(4, 0, 1, e1000e());
    s
}
pub const NO_ACS_MULTIFUNCTION_GROUPS: &str = "\
0000:00:00.0
0000:00:02.0 0000:00:02.1 0000:01:00.0 0000:02:00.0
0000:00:03.0 0000:03:00.0 0000:03:00.1 0000:03:00.2
0000:00:04.0
0000:00:1f.0 0000:00:1f.2 0000:00:1f.3
0000:04:00.0 0000:04:00.1
";

/// scenarios/pcie-pci-bridge.qemu
pub fn pcie_pci_bridge_scenario() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 2));
    s.at(1, 0, 0, pcie_pci_bridge(1, 2, 2));
    s.at(2, 1, 0, edu());
    s.at(2, 2, 0, pci_testdev());
    s.at(0, 3, 0, root_port(true, 3, 3));
    s.at(3, 0, 0, edu());
    s
}
pub const PCIE_PCI_BRIDGE_GROUPS: &str = "\
0000:00:00.0
0000:00:02.0
0000:00:03.0
0000:00:1f.0 0000:00:1f.2 0000:00:1f.3
0000:01:00.0 0000:02:01.0 0000:02:02.0
0000:03:00.0
";

/// scenarios/switch.qemu
pub fn switch() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 5));
    s.at(1, 0, 0, usp(1, 2, 5));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(2, 1, 0, dsp(2, 4, 4));
    s.at(2, 2, 0, dsp(2, 5, 5));
    s.at(3, 0, 0, edu());
    s.at(4, 0, 0, edu());
    s.at(5, 0, 0, e1000e());
    s
}
pub const SWITCH_GROUPS: &str = "\
0000:00:00.0
0000:00:02.0
0000:00:1f.0 0000:00:1f.2 0000:00:1f.3
0000:01:00.0
0000:02:00.0 0000:03:00.0
0000:02:01.0 0000:04:00.0
0000:02:02.0 0000:05:00.0
";

/// Enumerate from `roots`, enable ACS (an IOMMU is present), group in
/// `device_add` order.
pub fn run(sim: &mut SimConfig, roots: &[u8]) -> (Topology, Groups) {
    let mut topo = enumerate(sim, 0, roots, 0..=255);
    enable_acs(sim, &mut topo);
    let groups = group_all(sim, &topo);
    (topo, groups)
}

pub fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(0, bus, dev, func)
}

pub fn idx(topo: &Topology, bus: u8, dev: u8, func: u8) -> usize {
    topo.find(bdf(bus, dev, func)).unwrap_or_else(|| panic!("{} not enumerated", bdf(bus, dev, func)))
}

/// Group id of a function.
pub fn gid(topo: &Topology, groups: &Groups, bus: u8, dev: u8, func: u8) -> u32 {
    groups.group_of(idx(topo, bus, dev, func)).expect("grouped").id
}
