//! The explanation names the root-bus rules that placed a member: x86's
//! peer-bus probe, and a host bridge's bus that Linux reuses below the
//! bridge already leading to it.

use iommu::group::{RuleNote, group_all};
use pci::sim::SimConfig;
use pci::sim::qemu::*;
use pci::{Bdf, enumerate_with_peer_probe};

fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(0, bus, dev, func)
}

/// fixtures/peer-bus.qemu in small: a bridge at slot 1 below a root port,
/// which Linux never scans; its bus 02 is found by the peer probe.
#[test]
fn members_on_a_peer_bus_name_the_probe() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 2, 0, root_port(true, 1, 2));
    s.at(1, 0, 0, edu());
    s.at(1, 1, 0, pci_bridge(1, 2, 2));
    s.at(2, 1, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0], 0..=255, Some(0xff));
    let groups = group_all(&mut s, &topo);
    let member = |b: Bdf| {
        let i = topo.find(b).unwrap();
        groups.groups.iter().flat_map(|g| &g.members).find(|m| m.function == i).unwrap().clone()
    };
    let on_peer = member(bdf(2, 1, 0));
    assert_eq!(on_peer.rules, vec![RuleNote::PeerBus { bus: 2 }]);
    assert!(
        on_peer.to_string().ends_with(
            "; bus 02 is a root bus found by x86's peer-bus probe (pcibios_fixup_peer_bridges): \
             no bridge Linux scanned leads to it"
        ),
        "{on_peer}"
    );
    assert!(member(bdf(1, 0, 0)).rules.is_empty(), "a member on a scanned bus has no such note");
}

/// An expander's bus number inside a bridge's range: Linux keeps the bus
/// below the bridge, and the members there say so.
#[test]
fn members_on_a_reused_host_bridge_bus_name_the_bridge() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 1, 0, pxb_host());
    s.at(0, 2, 0, root_port(true, 1, 4));
    s.at(1, 0, 0, usp(1, 2, 4));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(3, 0, 0, edu());
    let topo = enumerate_with_peer_probe(&mut s, 0, &[0, 2], 0..=255, Some(0xff));
    let groups = group_all(&mut s, &topo);
    let i = topo.find(bdf(2, 0, 0)).unwrap();
    let dsp = groups.groups.iter().flat_map(|g| &g.members).find(|m| m.function == i).unwrap();
    assert_eq!(dsp.rules, vec![RuleNote::RootBusReused { bus: 2, bridge: bdf(1, 0, 0) }]);
    let below = topo.find(bdf(3, 0, 0)).unwrap();
    let edu = groups.groups.iter().flat_map(|g| &g.members).find(|m| m.function == below).unwrap();
    assert!(edu.rules.contains(&RuleNote::RootBusReused { bus: 2, bridge: bdf(1, 0, 0) }), "{:?}", edu.rules);
}
