//! Config space that lies: enumeration finishes, records one clear error
//! line per fault, and never loops or panics.

use pci::regs::*;
use pci::sim::qemu::*;
use pci::sim::{SimConfig, SimFn};
use pci::topology::EnumErrorKind;
use pci::{Bdf, enumerate};

fn lines(topo: &pci::Topology) -> Vec<String> {
    topo.errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn capability_loop_is_cut() {
    let mut s = SimConfig::new();
    // PM at 0x40, MSI at 0x48: point MSI's next back at PM.
    s.at(0, 3, 0, SimFn::new(0x1234, 1).pm().msi().poke8(0x49, 0x40));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions.len(), 1);
    assert_eq!(topo.functions[0].caps.standard, [(PCI_CAP_ID_PM, 0x40), (PCI_CAP_ID_MSI, 0x48)]);
    assert_eq!(lines(&topo), ["0000:00:03.0: capability list loops back to 0x40; list cut there"]);
}

#[test]
fn extended_capability_loop_is_cut() {
    let mut s = SimConfig::new();
    // AER at 0x100 then ACS at 0x148; ACS's next points back to 0x100.
    s.at(0, 2, 0, root_port(true, 1, 1).poke8(0x14b, 0x10));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(topo.functions[0].caps.acs.is_some());
    assert_eq!(lines(&topo), ["0000:00:02.0: extended capability list loops back to 0x100; list cut there"]);
}

#[test]
fn capability_pointer_into_header() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, SimFn::new(0x1234, 1).pm().poke8(0x41, 0x10));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.errors.len(), 1);
    assert!(lines(&topo)[0].contains("inside the header"));
}

#[test]
fn all_ones_function_is_absent_and_garbage_header_is_reported() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, SimFn::all_ones());
    s.at(0, 4, 0, SimFn::all_ones().poke16(0, 0x8086).poke16(2, 0x1234));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(topo.functions.is_empty());
    assert_eq!(lines(&topo), ["0000:00:04.0: unknown header type 0x7f; ignored as Linux does"]);
}

fn bridge_error(primary_bus: u8, secondary: u8, subordinate: u8) -> Vec<String> {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, pci_bridge(primary_bus, secondary, subordinate));
    s.at(2, 0, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions.len(), 2, "nothing followed below the bad bridge");
    lines(&topo)
}

#[test]
fn secondary_not_above_own_bus() {
    assert_eq!(
        bridge_error(1, 1, 1),
        ["0000:01:00.0: bridge secondary bus 01 is not above its own bus 01; not scanned"]
    );
    // A bridge pointing back at the root bus cannot make a loop either.
    assert_eq!(bridge_error(1, 0, 1).len(), 1);
}

#[test]
fn subordinate_below_secondary() {
    assert_eq!(
        bridge_error(1, 5, 3),
        ["0000:01:00.0: bridge subordinate bus 03 is below its secondary bus 05; not scanned"]
    );
}

#[test]
fn child_range_outside_parent_range() {
    assert_eq!(
        bridge_error(1, 2, 7),
        ["0000:01:00.0: bridge buses 02-07 are not inside those of its parent 0000:00:02.0; not scanned"]
    );
}

#[test]
fn overlapping_sibling_ranges() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 3));
    s.at(0, 3, 0, root_port(true, 2, 2));
    s.at(1, 0, 0, edu());
    s.at(2, 0, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(lines(&topo), ["0000:00:03.0: bridge buses 02-02 overlap those of 0000:00:02.0; not scanned"]);
    // 00:02.0 leads only to its secondary bus 1; nothing leads to bus 2.
    assert!(topo.find(Bdf::new(0, 2, 0, 0)).is_none());
}

/// A root bus that a bridge scanned before already reached stays below
/// that bridge (x86 `pci_acpi_scan_root` reuses the bus): no second root.
#[test]
fn bridge_range_covering_a_root_bus() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 0x40, 0x40));
    s.at(0x40, 0, 0, edu());
    let topo = enumerate(&mut s, 0, &[0, 0x40], 0..=255);
    assert_eq!(topo.errors[0].kind, EnumErrorKind::RootBusBelowBridge { bridge: Bdf::new(0, 0, 2, 0) });
    assert_eq!(topo.functions.len(), 2, "bus 0x40 scanned once, below the root port");
    assert_eq!(topo.functions[1].parent, Some(0));
}

#[test]
fn bridge_outside_ecam_range_and_unconfigured() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 0x50, 0x50));
    s.at(0, 3, 0, root_port(true, 0, 0));
    let topo = enumerate(&mut s, 0, &[0, 0x80], 0..=0x3f);
    assert_eq!(
        lines(&topo),
        [
            "0000:00:02.0: bridge buses 50-50 leave the ECAM range 00-3f; not scanned",
            "0000:00:03.0: bridge has no bus numbers from firmware; not scanned (we never reprogram)",
            "root bus 80: outside the ECAM bus range 00-3f; not scanned",
        ]
    );
}

#[test]
fn only_device_0_below_a_downstream_port() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 1));
    s.at(1, 0, 0, edu());
    s.at(1, 3, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions.len(), 2);
}

#[test]
fn functions_above_0_need_multifunction_but_are_then_forced_multifunction() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.at(0, 3, 1, edu());
    s.at(0, 4, 0, edu().multifunction());
    s.at(0, 4, 2, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let found: Vec<String> = topo.functions.iter().map(|f| format!("{} {}", f.bdf, f.multifunction)).collect();
    assert_eq!(found, ["0000:00:03.0 false", "0000:00:04.0 true", "0000:00:04.2 true"]);
}

#[test]
fn port_type_fixups() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 3));
    // Claims downstream but sits below a root port: Linux means upstream,
    // but 6.1 ORs the type in unshifted, so it reads as an endpoint.
    s.at(1, 0, 0, dsp(1, 2, 3));
    // Claims upstream below that "endpoint": no correction applies.
    s.at(2, 0, 0, usp(2, 3, 3));
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    use pci::caps::PcieType::*;
    let types: Vec<_> = topo.functions.iter().map(|f| f.pcie_type).collect();
    assert_eq!(types, [Some(RootPort), Some(Endpoint), Some(Upstream)]);
    let meant: Vec<_> = topo.functions.iter().map(|f| f.port_type_bug).collect();
    assert_eq!(meant, [None, Some(Upstream), None]);
}

#[test]
fn zero_vendor_functions_are_not_devices_unless_linux_says_so() {
    let mut s = SimConfig::new();
    // All zeros: absent (Linux: "some broken boards return 0").
    s.at(0, 3, 0, SimFn::new(0x0000, 0x0000));
    // Vendor 0 with a device id passes Linux's presence test.
    s.at(0, 4, 0, SimFn::new(0x0000, 0x1234));
    s.at(0, 5, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions.iter().map(|f| f.bdf).collect::<Vec<_>>(), [Bdf::new(0, 0, 4, 0), Bdf::new(0, 0, 5, 0)]);
    assert!(topo.errors.is_empty());
}

#[test]
fn a_bridge_with_the_wrong_primary_bus_is_followed_and_reported() {
    let mut s = SimConfig::new();
    s.at(0, 2, 0, root_port(true, 1, 2));
    s.at(1, 0, 0, pci_bridge(7, 2, 2));
    s.at(2, 1, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(topo.functions.len(), 3, "followed anyway, as Linux reconfigures it");
    assert_eq!(
        topo.errors.iter().map(|e| (e.bdf, e.kind.clone())).collect::<Vec<_>>(),
        [(Bdf::new(0, 1, 0, 0), EnumErrorKind::PrimaryMismatch { primary: 7 })]
    );
}

#[test]
fn a_root_bus_named_twice_is_scanned_once() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.at(0x40, 0, 0, edu());
    let topo = enumerate(&mut s, 0, &[0, 0x40, 0], 0..=255);
    assert_eq!(topo.functions.len(), 2);
    assert_eq!(
        topo.errors.iter().map(|e| (e.bdf, e.kind.clone())).collect::<Vec<_>>(),
        [(Bdf::new(0, 0, 0, 0), EnumErrorKind::RootBusRepeated)]
    );
}
