//! Linux 6.1 `pci_quirk_enable_intel_pch_acs`: Intel 5- to 9-series, X79 and
//! X99 PCH root ports get their ACS equivalent through the LPC bridge's RCBA
//! (Upstream Peer Decode Configuration) and the port's MPC register, then
//! count as isolated. Run against a simulated RCBA behind the MMIO seam.

use std::collections::BTreeMap;

use pci::acs::{AcsEnableOutcome, AcsPass, ChipsetMmio, enable_acs_with, pci_acs_check};
use pci::acs_quirks::AcsQuirk;
use pci::sim::qemu::edu;
use pci::sim::{SimConfig, SimFn};
use pci::topology::DevFlags;
use pci::{Bdf, REQ_ACS_FLAGS, enumerate};

const RCBA: u64 = 0xfed1_c000;
const BSPR: u64 = RCBA + 0x1104;
const UPDCR: u64 = RCBA + 0x1014;
const MPC: u16 = 0xd8;
const IRBNCE: u32 = 1 << 26;

/// A chipset's RCBA window: registers by address; `mappable` false makes
/// every access fail (Linux `ioremap` returning NULL).
#[derive(Default)]
struct SimRcba {
    regs: BTreeMap<u64, u32>,
    writes: Vec<(u64, u32)>,
    unmappable: bool,
}

impl ChipsetMmio for SimRcba {
    fn read32(&mut self, addr: u64) -> Option<u32> {
        (!self.unmappable).then(|| self.regs.get(&addr).copied().unwrap_or(0))
    }
    fn write32(&mut self, addr: u64, value: u32) -> bool {
        if self.unmappable {
            return false;
        }
        self.writes.push((addr, value));
        self.regs.insert(addr, value);
        true
    }
}

/// A Cougar Point (6-series) machine: root port 00:1c.0 (8086:1c10, no ACS
/// capability) with an edu below, LPC bridge 00:1f.0 with `rcba` at 0xf0.
fn machine(rcba: u32, mpc: u32) -> SimConfig {
    let mut s = SimConfig::new();
    let port = SimFn::new(0x8086, 0x1c10)
        .class(0x060400)
        .bridge(0, 1, 1)
        .pcie(pci::regs::PCI_EXP_TYPE_ROOT_PORT)
        .poke32(MPC, mpc)
        .wmask16(MPC, 0xffff)
        .wmask16(MPC + 2, 0xffff);
    s.at(0, 0x1c, 0, port.multifunction());
    s.at(0, 0x1c, 1, SimFn::new(0x8086, 0x1c12).class(0x060400).bridge(0, 2, 2).pcie(4));
    s.at(0, 0x1f, 0, SimFn::new(0x8086, 0x1c44).class(0x060100).poke32(0xf0, rcba));
    s.at(1, 0, 0, edu());
    s
}

fn rcba_with(bspr: u32, updcr: u32) -> SimRcba {
    let mut m = SimRcba::default();
    m.regs.insert(BSPR, bspr);
    m.regs.insert(UPDCR, updcr);
    m
}

#[test]
fn peer_decodes_disabled_mpc_set_and_port_isolated() {
    let mut s = machine(RCBA as u32 | 1, 0x0000_0011);
    let mut rcba = rcba_with(0, 0x0000_013f);
    let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
    let records = enable_acs_with(&mut s, &mut rcba, &mut topo);
    let port = topo.find(Bdf::new(0, 0, 0x1c, 0)).unwrap();
    // UPDCR's peer-decode bits 5:0 cleared, the rest kept.
    assert_eq!(rcba.writes, [(UPDCR, 0x0000_0100)]);
    // MPC.IRBNCE set with a dword write (the 6.1 stable fix; 6.1.0 wrote a
    // word and lost bit 26).
    assert_eq!(s.peek32(Bdf::new(0, 0, 0x1c, 0), MPC), 0x0000_0011 | IRBNCE);
    assert!(topo.functions[port].dev_flags.contains(DevFlags::ACS_ENABLED_QUIRK));
    let rec = records.iter().find(|r| r.function == port).unwrap();
    assert_eq!(
        rec.outcome,
        AcsEnableOutcome::IntelPchEnabled { updcr: Some((0x13f, 0x100)), mpc: Some((0x11, 0x11 | IRBNCE)) }
    );
    assert_eq!(pci_acs_check(&mut s, &topo, port, REQ_ACS_FLAGS), Ok(AcsPass::Quirk(AcsQuirk::IntelPch)));
}

#[test]
fn bspr_strapped_against_peer_cycles_leaves_updcr_alone() {
    let mut s = machine(RCBA as u32 | 1, IRBNCE);
    let mut rcba = rcba_with(0x300, 0x3f);
    let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
    s.writes.clear();
    let records = enable_acs_with(&mut s, &mut rcba, &mut topo);
    assert!(rcba.writes.is_empty());
    let port = topo.find(Bdf::new(0, 0, 0x1c, 0)).unwrap();
    assert!(s.writes.iter().all(|w| w.bdf != topo.functions[port].bdf), "MPC already had IRBNCE");
    let rec = records.iter().find(|r| r.function == port).unwrap();
    assert_eq!(rec.outcome, AcsEnableOutcome::IntelPchEnabled { updcr: None, mpc: None });
    assert!(topo.functions[port].dev_flags.contains(DevFlags::ACS_ENABLED_QUIRK));
}

#[test]
fn rcba_disabled_or_unmappable_leaves_the_port_not_isolated() {
    for (rcba_reg, unmappable) in [(RCBA as u32, false), (RCBA as u32 | 1, true)] {
        let mut s = machine(rcba_reg, 0);
        let mut rcba = rcba_with(0, 0x3f);
        rcba.unmappable = unmappable;
        let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
        let records = enable_acs_with(&mut s, &mut rcba, &mut topo);
        let port = topo.find(Bdf::new(0, 0, 0x1c, 0)).unwrap();
        assert!(!topo.functions[port].dev_flags.contains(DevFlags::ACS_ENABLED_QUIRK));
        let rec = records.iter().find(|r| r.function == port).unwrap();
        assert!(matches!(rec.outcome, AcsEnableOutcome::QuirkNotApplied { quirk: "intel_pch", .. }), "{rec:?}");
        assert_eq!(
            pci_acs_check(&mut s, &topo, port, REQ_ACS_FLAGS),
            Err(pci::acs::AcsFail::Quirk(AcsQuirk::IntelPch))
        );
        // Nothing written to the port's MPC.
        assert_eq!(s.peek32(Bdf::new(0, 0, 0x1c, 0), MPC), 0);
    }
}

#[test]
fn groups_split_once_the_quirk_ran() {
    // With the quirk, the two PCH root ports of one multifunction slot are
    // isolated from each other (each passes ACS by the quirk).
    let mut s = machine(RCBA as u32 | 1, 0);
    let mut rcba = rcba_with(0, 0x3f);
    let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
    enable_acs_with(&mut s, &mut rcba, &mut topo);
    let p0 = topo.find(Bdf::new(0, 0, 0x1c, 0)).unwrap();
    let p1 = topo.find(Bdf::new(0, 0, 0x1c, 1)).unwrap();
    assert!(pci_acs_check(&mut s, &topo, p0, REQ_ACS_FLAGS).is_ok());
    assert!(pci_acs_check(&mut s, &topo, p1, REQ_ACS_FLAGS).is_ok());
}
