//! The enumeration, ACS and grouping stages, glued to the hardware: ECAM as
//! the config space, ACPI for the root buses. The rules themselves live in
//! the `pci` and `iommu` crates.

use crate::hw::clock::Clock;
use crate::hw::ecam::Ecam;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::group::{Groups, group_all};
use pci::acs::{AcsEnableRecord, enable_acs};
use pci::{Topology, enumerate, find_unreached_root_buses};
use platform::acpi::AcpiFacts;
use platform::mcfg::McfgRegion;

/// PCI class code of a host bridge (base 0x06, sub 0x00).
const CLASS_HOST_BRIDGE: u32 = 0x06_0000;

/// Config-space traffic of one stage.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub reads: u64,
    pub writes: u64,
}

/// One PCI segment as the later stages see it.
pub struct Segment {
    pub region: McfgRegion,
    /// Root buses in scan order, and how each was found.
    pub roots: Vec<(u8, &'static str)>,
    pub topology: Topology,
    /// Present when an IOMMU asked for ACS (Linux `pci_request_acs`).
    pub acs: Option<Vec<AcsEnableRecord>>,
    /// Present when there is an IOMMU to form groups for.
    pub groups: Option<Groups>,
    pub enumerate: Traffic,
    pub acs_traffic: Traffic,
    pub group_traffic: Traffic,
    pub notes: Vec<String>,
}

fn traffic_since(ecam: &Ecam, before: Traffic) -> Traffic {
    Traffic { reads: ecam.reads - before.reads, writes: ecam.writes - before.writes }
}

fn now(ecam: &Ecam) -> Traffic {
    Traffic { reads: ecam.reads, writes: ecam.writes }
}

/// Root buses of a segment: the MCFG start bus (the main host bridge), then
/// every constant `_BBN` in the DSDT/SSDTs inside the decoded range.
fn declared_roots(region: &McfgRegion, acpi: &AcpiFacts) -> Vec<(u8, &'static str)> {
    let mut roots = alloc::vec![(region.start_bus, "MCFG start bus")];
    for &bus in &acpi.host_bridge_buses {
        if (region.start_bus..=region.end_bus).contains(&bus) && !roots.iter().any(|r| r.0 == bus) {
            roots.push((bus, "ACPI _BBN"));
        }
    }
    roots
}

/// Enumerate, enable ACS (when an IOMMU is present) and form the groups for
/// every ECAM segment.
pub fn run(ecam: &mut Ecam, acpi: &AcpiFacts, iommu_present: bool, clock: &mut Clock) -> Vec<Segment> {
    let regions: Vec<McfgRegion> = ecam.regions().to_vec();
    let mut segments = Vec::new();
    for region in regions {
        let before = now(ecam);
        let mut roots = declared_roots(&region, acpi);
        let range = region.start_bus..=region.end_bus;
        let root_numbers: Vec<u8> = roots.iter().map(|r| r.0).collect();
        let mut topology = enumerate(ecam, region.segment, &root_numbers, range.clone());
        let mut notes = Vec::new();
        // Every extra host bridge function on a root bus (QEMU's pxb-pcie
        // shows as one) opens a root bus of its own. If ACPI declared fewer
        // than that, fall back to probing the unreached bus numbers.
        let host_bridges = topology
            .functions
            .iter()
            .filter(|f| f.is_root_bus && f.class >> 8 == CLASS_HOST_BRIDGE >> 8 && f.bdf.devfn() != 0)
            .count();
        if roots.len() < 1 + host_bridges {
            notes.push(format!(
                "{} host bridge(s) on the root bus but {} _BBN declaration(s): probing unreached bus numbers",
                host_bridges,
                roots.len() - 1
            ));
            let extra = find_unreached_root_buses(ecam, region.segment, range.clone(), &topology);
            if !extra.is_empty() {
                roots.extend(extra.iter().map(|&b| (b, "probe of unreached buses")));
                let root_numbers: Vec<u8> = roots.iter().map(|r| r.0).collect();
                topology = enumerate(ecam, region.segment, &root_numbers, range);
            }
        }
        let enumerate_traffic = traffic_since(ecam, before);
        clock.mark("enumerate");

        let before = now(ecam);
        let acs = iommu_present.then(|| enable_acs(ecam, &mut topology));
        let acs_traffic = traffic_since(ecam, before);
        clock.mark("acs");

        let before = now(ecam);
        let groups = iommu_present.then(|| group_all(ecam, &topology));
        let group_traffic = traffic_since(ecam, before);
        clock.mark("groups");

        segments.push(Segment {
            region,
            roots,
            topology,
            acs,
            groups,
            enumerate: enumerate_traffic,
            acs_traffic,
            group_traffic,
            notes,
        });
    }
    segments
}
