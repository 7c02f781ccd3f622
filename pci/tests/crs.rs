//! Linux `pci_bus_read_dev_vendor_id`: the presence test and the bounded
//! wait for a function answering Configuration Request Retry Status.

use pci::enumerate::{CRS_TIMEOUT_MS, VendorId, pci_bus_read_dev_vendor_id};
use pci::sim::qemu::*;
use pci::sim::{SimConfig, SimFn};
use pci::topology::EnumErrorKind;
use pci::{Bdf, enumerate};

fn bdf(dev: u8) -> Bdf {
    Bdf::new(0, 0, dev, 0)
}

#[test]
fn a_function_in_crs_is_waited_for_with_doubling_delays() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.crs(bdf(3), 3);
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(topo.find(bdf(3)).is_some(), "ready after 7 ms: enumerated");
    assert_eq!(s.delays, [1, 2, 4]);
    assert!(topo.errors.is_empty(), "{:?}", topo.errors);
}

#[test]
fn a_function_that_stays_in_crs_is_given_up_after_linux_timeout() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.crs(bdf(3), u32::MAX);
    s.at(0, 4, 0, edu());
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    assert!(topo.find(bdf(3)).is_none());
    assert!(topo.find(bdf(4)).is_some(), "the scan goes on");
    // 1 + 2 + ... + 32768 ms: the next delay (65536) is past 60 s.
    assert_eq!(s.delays.len(), 16);
    assert_eq!(s.delays.iter().sum::<u32>(), 65_535);
    assert_eq!(topo.errors.len(), 1);
    assert_eq!(topo.errors[0].kind, EnumErrorKind::NotReady { waited_ms: 65_535 });
    assert_eq!(
        topo.errors[0].to_string(),
        "0000:00:03.0: not ready after 65535 ms (Configuration Request Retry); giving up, as Linux does"
    );
}

#[test]
fn no_wait_when_the_caller_wants_none() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.crs(bdf(3), 1);
    assert_eq!(pci_bus_read_dev_vendor_id(&mut s, bdf(3), 0), VendorId::NotReady { waited_ms: 0 });
    assert!(s.delays.is_empty());
    assert_eq!(pci_bus_read_dev_vendor_id(&mut s, bdf(3), CRS_TIMEOUT_MS), VendorId::Present(0x11e8_1234));
}

#[test]
fn presence_test_is_linux_s() {
    let mut s = SimConfig::new();
    // Linux rejects exactly ~0, 0, 0x0000ffff and 0xffff0000.
    s.at(0, 1, 0, SimFn::new(0x0000, 0x0000));
    s.at(0, 2, 0, SimFn::new(0xffff, 0x0000));
    s.at(0, 3, 0, SimFn::new(0x0000, 0xffff));
    // Vendor 0 with another device id is a device to Linux.
    s.at(0, 4, 0, SimFn::new(0x0000, 0x1234));
    for (dev, want) in [
        (1, VendorId::Absent),
        (2, VendorId::Absent),
        (3, VendorId::Absent),
        (4, VendorId::Present(0x1234_0000)),
        (5, VendorId::Absent),
    ] {
        assert_eq!(pci_bus_read_dev_vendor_id(&mut s, bdf(dev), CRS_TIMEOUT_MS), want, "device {dev}");
    }
}

#[test]
fn the_wait_ends_even_with_an_endless_timeout() {
    let mut s = SimConfig::new();
    s.at(0, 3, 0, edu());
    s.crs(bdf(3), u32::MAX);
    assert!(matches!(pci_bus_read_dev_vendor_id(&mut s, bdf(3), u32::MAX), VendorId::NotReady { .. }));
    assert_eq!(s.delays.len(), 32);
}
