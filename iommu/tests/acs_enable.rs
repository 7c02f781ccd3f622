//! Linux 6.1 ACS enabling (`pci_std_enable_acs`) on the simulated QEMU
//! scenarios: SV|RR|CR|UF where implemented, nothing cleared, nothing
//! written without a change.

mod common;

use common::*;
use pci::acs::{AcsEnableOutcome, enable_acs, pci_std_enable_acs};
use pci::caps::PcieType;
use pci::enumerate;
use pci::regs::PCI_ACS_CTRL;
use pci::sim::SimConfig;
use pci::sim::qemu::root_port;

fn check(mut sim: SimConfig, roots: &[u8]) {
    let mut topo = enumerate(&mut sim, 0, roots, 0..=255);
    sim.writes.clear();
    enable_acs(&mut sim, &mut topo);
    let mut written = 0;
    for f in &topo.functions {
        match f.caps.acs {
            Some(acs) => {
                assert_eq!(f.pcie_type, Some(PcieType::RootPort), "{}", f.bdf);
                assert_eq!(sim.peek16(f.bdf, acs.offset + PCI_ACS_CTRL), 0x001d, "{}", f.bdf);
                assert_eq!(acs.offset, 0x148);
                written += 1;
            }
            None => assert!(sim.writes.iter().all(|w| w.bdf != f.bdf), "write to {} without ACS", f.bdf),
        }
    }
    assert_eq!(sim.writes.len(), written, "one write per ACS capability");
    // Enabling again changes nothing and writes nothing.
    sim.writes.clear();
    enable_acs(&mut sim, &mut topo);
    assert!(sim.writes.is_empty());
}

#[test]
fn qemu_root_ports_get_sv_rr_cr_uf() {
    check(basic(), &[0]);
    check(expander(), EXPANDER_ROOTS);
    check(no_acs_multifunction(), &[0]);
    check(pcie_pci_bridge_scenario(), &[0]);
    check(switch(), &[0]);
}

#[test]
fn enable_never_clears_firmware_bits() {
    let mut sim = SimConfig::new();
    // Firmware left DT (0x40) on; TB is implemented but not ours to set.
    sim.at(0, 2, 0, root_port(false, 1, 1).acs(0x5f, 0x40));
    let topo = enumerate(&mut sim, 0, &[0], 0..=255);
    let outcome = pci_std_enable_acs(&mut sim, &topo.functions[0]);
    assert_eq!(outcome, AcsEnableOutcome::Written { before: 0x40, after: 0x5d });
}

/// The control word reported is what config space holds after enabling,
/// not what was meant: a port whose RR control bit is hardwired to 0 (cap
/// says RR, the bit does not stick) reports 0x0019, not 0x001d.
#[test]
fn control_word_is_read_back_after_enabling() {
    let mut sim = SimConfig::new();
    let rr_stuck = root_port(true, 1, 1).wmask16(0x148 + PCI_ACS_CTRL, 0x005b);
    sim.at(0, 2, 0, rr_stuck);
    sim.at(0, 3, 0, root_port(true, 2, 2));
    let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
    let records = enable_acs(&mut sim, &mut topo);
    let stuck = topo.find(pci::Bdf::new(0, 0, 2, 0)).unwrap();
    let fine = topo.find(pci::Bdf::new(0, 0, 3, 0)).unwrap();
    let rec = |i: usize| records.iter().find(|r| r.function == i).unwrap();
    assert_eq!(rec(stuck).outcome, AcsEnableOutcome::Written { before: 0, after: 0x1d });
    assert_eq!(rec(stuck).ctrl_readback, Some(0x0019));
    assert_eq!(rec(fine).ctrl_readback, Some(0x001d));
}
