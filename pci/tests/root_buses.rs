//! Root buses as x86 Linux 6.1 finds them: host bridges' buses scanned in
//! turn (a bus a bridge already reached stays below that bridge), then the
//! peer-bus probe `pcibios_fixup_peer_bridges` over `0..=pcibios_last_bus`.

use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::topology::EnumErrorKind;
use pci::{Bdf, ConfigSpace, PeerProbe, enumerate, enumerate_with_peer_probe};

fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(0, bus, dev, func)
}

/// QEMU's peer-bus case: a conventional bridge at device 1 below a root
/// port. Firmware numbered its bus (2); Linux scans only device 0 below
/// the port, so bus 2 has no `pci_bus` until the peer probe finds it.
fn bridge_at_slot_1_below_a_root_port() -> SimConfig {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 2, 0, root_port(true, 1, 2));
    s.at(1, 0, 0, edu());
    s.at(1, 1, 0, pci_bridge(1, 2, 2));
    s.at(2, 1, 0, edu());
    s.at(2, 2, 0, edu());
    s
}

#[test]
fn peer_probe_finds_the_bus_behind_a_bridge_below_a_port_that_linux_skips() {
    let mut s = bridge_at_slot_1_below_a_root_port();
    let without = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(without.find(bdf(2, 1, 0)).is_none());
    assert!(without.peer_probe.is_none());

    let topo = enumerate_with_peer_probe(&mut s, 0, &[0], 0..=255, Some(0xff));
    assert!(topo.errors.is_empty(), "{:?}", topo.errors);
    let order: Vec<String> = topo.functions.iter().map(|f| f.bdf.to_string()).collect();
    assert_eq!(
        order,
        ["0000:00:00.0", "0000:00:02.0", "0000:01:00.0", "0000:02:01.0", "0000:02:02.0"],
        "the bridge at 01:01.0 is never seen; its bus comes last, as a root"
    );
    let f = &topo.functions[topo.find(bdf(2, 1, 0)).unwrap()];
    assert!(f.is_root_bus && f.parent.is_none());
    // Buses 0 and 1 exist; 254 are probed, 32 reads each except bus 2,
    // which answers at its second slot.
    assert_eq!(
        topo.peer_probe,
        Some(PeerProbe {
            last_bus: 0xff,
            buses_probed: 254,
            outside_ecam: 0,
            reads: 253 * 32 + 2,
            discovered: vec![2]
        })
    );
}

/// `pcibios_last_bus <= 0`: Linux does not probe at all.
#[test]
fn no_peer_probe_when_the_last_bus_is_0() {
    let mut s = bridge_at_slot_1_below_a_root_port();
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0], 0..=255, Some(0));
    assert!(topo.find(bdf(2, 1, 0)).is_none());
    assert_eq!(topo.peer_probe, Some(PeerProbe { last_bus: 0, ..PeerProbe::default() }));
}

/// Only bus numbers up to `pcibios_last_bus` and inside ECAM are read.
#[test]
fn peer_probe_stops_at_the_last_bus_and_counts_what_ecam_cannot_reach() {
    let mut s = bridge_at_slot_1_below_a_root_port();
    s.at(0x30, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0], 0..=0x1f, Some(0x3f));
    let p = topo.peer_probe.clone().unwrap();
    assert_eq!(p.discovered, vec![2]);
    assert_eq!((p.buses_probed, p.outside_ecam), (0x20 - 2, 0x20));
    assert!(topo.find(bdf(0x30, 0, 0)).is_none());
}

/// Linux's probe reads 16-bit vendor ids of function 0 only: a device
/// whose function 0 is absent is not found (and 0x0000 means absent).
#[test]
fn peer_probe_reads_function_0_vendor_ids() {
    struct Count<'a>(&'a mut SimConfig, Vec<(Bdf, u16, u8)>);
    impl ConfigSpace for Count<'_> {
        fn read8(&mut self, b: Bdf, o: u16) -> u8 {
            self.1.push((b, o, 1));
            self.0.read8(b, o)
        }
        fn read16(&mut self, b: Bdf, o: u16) -> u16 {
            self.1.push((b, o, 2));
            self.0.read16(b, o)
        }
        fn read32(&mut self, b: Bdf, o: u16) -> u32 {
            self.1.push((b, o, 4));
            self.0.read32(b, o)
        }
        fn write8(&mut self, b: Bdf, o: u16, v: u8) {
            self.0.write8(b, o, v)
        }
        fn write16(&mut self, b: Bdf, o: u16, v: u16) {
            self.0.write16(b, o, v)
        }
        fn write32(&mut self, b: Bdf, o: u16, v: u32) {
            self.0.write32(b, o, v)
        }
        fn has_extended_space(&self, b: Bdf) -> bool {
            self.0.has_extended_space(b)
        }
    }
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(5, 3, 1, edu()); // function 1 without function 0: not probed
    let mut c = Count(&mut s, Vec::new());
    let topo = enumerate_with_peer_probe(&mut c, 0, &[0], 0..=255, Some(7));
    assert_eq!(topo.peer_probe.clone().unwrap().discovered, Vec::<u8>::new());
    let probe_reads: Vec<_> = c.1.iter().filter(|r| r.0.bus != 0).collect();
    assert_eq!(probe_reads.len(), 7 * 32);
    assert!(probe_reads.iter().all(|&&(b, o, w)| b.function == 0 && o == 0 && w == 2));
}

/// The overlap: an expander's bus number (2) inside a root port's
/// range. The root port is scanned first (PCI0 comes first in the
/// namespace); its switch's secondary bus is 2, so bus 2 exists and x86
/// `pci_acpi_scan_root` reuses it: the switch keeps its subtree, no second
/// root bus, and an error line says so.
#[test]
fn an_expander_bus_inside_a_bridge_range_stays_below_the_bridge() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 1, 0, pxb_host());
    s.at(0, 2, 0, root_port(true, 1, 4));
    s.at(1, 0, 0, usp(1, 2, 4));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(2, 1, 0, dsp(2, 4, 4));
    s.at(3, 0, 0, edu());
    s.at(4, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0, 2], 0..=255, Some(0xff));
    assert_eq!(topo.errors.len(), 1, "{:?}", topo.errors);
    assert_eq!(topo.errors[0].kind, EnumErrorKind::RootBusBelowBridge { bridge: bdf(1, 0, 0) });
    assert_eq!(
        topo.errors[0].to_string(),
        "root bus 02: a host bridge's bus number is already the secondary bus of bridge 0000:01:00.0; \
         kept below that bridge as Linux does (pci_acpi_scan_root reuses the bus), not a second root"
    );
    assert_eq!(topo.functions.len(), 8);
    let dsp = &topo.functions[topo.find(bdf(2, 0, 0)).unwrap()];
    assert!(!dsp.is_root_bus);
    assert_eq!(dsp.parent, topo.find(bdf(1, 0, 0)));
    assert_eq!(topo.buses.iter().filter(|b| b.bridge.is_none()).count(), 1, "one root bus");
}

/// A host bridge's bus inside a bridge's range that no bridge reaches is a
/// root bus (Linux: `pci_find_bus` fails, a root is created); bridges on it
/// may use numbers of the bridge whose range holds it, as Linux does not
/// check them. The peer probe then finds nothing more.
#[test]
fn an_unreached_bus_inside_a_bridge_range_is_a_root_with_its_bridges() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 2, 0, root_port(true, 1, 5));
    s.at(1, 0, 0, edu());
    s.at(3, 0, 0, root_port(true, 4, 4).poke8(0x18, 3));
    s.at(4, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0, 3], 0..=255, Some(0xff));
    assert!(topo.errors.is_empty(), "{:?}", topo.errors);
    assert!(topo.functions[topo.find(bdf(3, 0, 0)).unwrap()].is_root_bus);
    assert!(topo.find(bdf(4, 0, 0)).is_some());
    assert_eq!(topo.peer_probe.clone().unwrap().discovered, Vec::<u8>::new());
}

/// The same machine with the expander bus not declared (or its host bridge
/// hidden): the peer probe finds bus 3 and scans it the same way.
#[test]
fn the_peer_probe_finds_an_undeclared_host_bridge_bus() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 2, 0, root_port(true, 1, 5));
    s.at(1, 0, 0, edu());
    s.at(3, 0, 0, root_port(true, 4, 4).poke8(0x18, 3));
    s.at(4, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0], 0..=255, Some(0xff));
    assert!(topo.errors.is_empty(), "{:?}", topo.errors);
    assert_eq!(topo.peer_probe.clone().unwrap().discovered, vec![3]);
    assert!(topo.find(bdf(4, 0, 0)).is_some());
}

/// The other order (QEMU's DSDT lists a later expander first): root bus
/// 0x12 is scanned before the bridge whose range holds it. Linux scans
/// that bridge anyway (`pci_scan_bridge_extend` checks no ranges) and,
/// reaching bus 0x12, reuses it: the bridge keeps everything else in its
/// range, bus 0x12 stays a root bus, and the range's overlap with it is
/// reported, not fatal. The switch's upstream port, whose secondary bus is
/// that root bus, leads nowhere new.
#[test]
fn a_bridge_whose_range_holds_an_earlier_root_bus_is_still_followed() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0x10, 0, 0, ioh3420(0x11, 0x13).poke8(0x18, 0x10));
    s.at(0x11, 0, 0, usp(0x11, 0x12, 0x13));
    s.at(0x12, 0, 0, root_port(true, 0x13, 0x13).poke8(0x18, 0x12));
    s.at(0x13, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0, 0x12, 0x10], 0..=255, Some(0xff));
    let usp_fn = &topo.functions[topo.find(bdf(0x11, 0, 0)).unwrap()];
    assert_eq!(usp_fn.parent, topo.find(bdf(0x10, 0, 0)), "the switch stays below the port: {:?}", topo.errors);
    assert!(topo.functions[topo.find(bdf(0x12, 0, 0)).unwrap()].is_root_bus);
    assert_eq!(topo.peer_probe.clone().unwrap().discovered, Vec::<u8>::new());
    let lines: Vec<String> = topo.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "0000:10:00.0: bridge buses 11-13 include root bus 12; followed, bus 12 stays a root bus (Linux reuses it)",
            "0000:11:00.0: bridge leads to bus 12, already scanned; not followed",
        ]
    );
}
