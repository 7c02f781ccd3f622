//! Groups below a port Linux 6.1's `set_pcie_port_type` bug turned into an
//! endpoint, and the explanation naming that rule and NO_EXTCFG.

mod common;

use common::*;
use iommu::group::{canonical, group_all};
use pci::acs::enable_acs;
use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::{Bdf, enumerate};

/// fixtures/port-type-bug.qemu's first half, as SeaBIOS numbers it.
fn machine() -> SimConfig {
    let mut s = SimConfig::new();
    q35_base(&mut s);
    s.at(0, 2, 0, root_port(true, 1, 6));
    s.at(1, 0, 0, usp(1, 2, 6));
    s.at(2, 0, 0, usp(2, 3, 6));
    s.at(3, 0, 0, dsp(3, 4, 4));
    s.at(3, 1, 0, dsp(3, 5, 5));
    // A root port with ACS, on the NO_EXTCFG bus: Linux sees no ACS on it.
    s.at(3, 2, 0, root_port(true, 6, 6).poke8(0x18, 3));
    s.at(4, 0, 0, e1000e());
    s.at(5, 0, 0, edu());
    s.at(6, 0, 0, edu());
    s
}

#[test]
fn groups_below_the_corrected_port_match_linux_6_1() {
    let mut s = machine();
    let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
    enable_acs(&mut s, &mut topo);
    let groups = group_all(&mut s, &topo);
    // fixtures/port-type-bug.linux-6.1.groups, for these functions.
    assert_eq!(
        canonical(&groups, &topo),
        "0000:00:00.0\n0000:00:02.0\n0000:00:1f.0 0000:00:1f.2 0000:00:1f.3\n0000:01:00.0\n0000:02:00.0\n\
         0000:03:00.0 0000:04:00.0\n0000:03:01.0 0000:05:00.0\n0000:03:02.0 0000:06:00.0\n"
    );
    let why = |bus, dev| {
        let i = topo.find(Bdf::new(0, bus, dev, 0)).unwrap();
        let m = groups.group_of(i).unwrap().members.iter().find(|m| m.function == i).unwrap();
        format!("{m}")
    };
    assert!(why(2, 0).contains("Linux 6.1 set_pcie_port_type bug: 0000:02:00.0 claims upstream port"), "{}", why(2, 0));
    let edu = why(6, 0);
    assert!(edu.starts_with("root port 0000:03:02.0 above it has no ACS capability"), "{edu}");
    assert!(edu.contains("PCI_BUS_FLAGS_NO_EXTCFG below 0000:02:00.0"), "{edu}");
    // Nothing of the kind above the corrected port.
    assert!(!why(1, 0).contains(';'), "{}", why(1, 0));
}

/// Below a PCH root port the RCBA quirk enabled, the explanation names it.
#[test]
fn explanation_names_the_intel_pch_quirk() {
    use pci::acs::ChipsetMmio;
    struct Rcba;
    impl ChipsetMmio for Rcba {
        fn read32(&mut self, _addr: u64) -> Option<u32> {
            Some(0)
        }
        fn write32(&mut self, _addr: u64, _value: u32) -> bool {
            true
        }
    }
    let mut s = SimConfig::new();
    s.at(0, 0x1c, 0, pci::sim::SimFn::new(0x8086, 0x1c10).class(0x060400).bridge(0, 1, 1).pcie(4));
    s.at(0, 0x1f, 0, pci::sim::SimFn::new(0x8086, 0x1c44).class(0x060100).poke32(0xf0, 0xfed1_c001));
    s.at(1, 0, 0, edu());
    let mut topo = enumerate(&mut s, 0, &[0], 0..=255);
    pci::acs::enable_acs_with(&mut s, &mut Rcba, &mut topo);
    let groups = group_all(&mut s, &topo);
    let i = topo.find(Bdf::new(0, 1, 0, 0)).unwrap();
    let m = groups.group_of(i).unwrap().members.iter().find(|m| m.function == i).unwrap();
    let text = format!("{m}");
    assert!(text.starts_with("own group (isolated: ACS path to root complete)"), "{text}");
    assert!(text.contains("Intel PCH ACS quirk: 0000:00:1c.0 isolated through the chipset's RCBA"), "{text}");
}
