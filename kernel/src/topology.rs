//! The enumeration, ACS and grouping stages, glued to the hardware: ECAM as
//! the config space, ACPI for the root buses. The rules themselves live in
//! the `pci` and `iommu` crates.

use crate::clock::Clock;
use crate::ecam::Ecam;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::group::{Groups, pci_device_groups};
use iommu::vtd::dmar::Dmar;
use iommu::vtd::dmar_scope::{UnitMatch, match_drhd_units};
use pci::acs::{AcsEnableOutcome, AcsEnableRecord, enable_acs_with};
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
    /// Which DRHD covers each function (indices into `Dmar::drhds()`),
    /// present with a DMAR table.
    pub units: Option<UnitMatch>,
    /// Present when there is an IOMMU to form groups for; a function no
    /// DRHD covers has none (Linux `intel_iommu_probe_device`: -ENODEV).
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

/// Enumerate, enable ACS (when the DMAR has a usable DRHD) and form the
/// groups for every ECAM segment, of the functions a DRHD covers.
pub fn run(ecam: &mut Ecam, acpi: &AcpiFacts, dmar: Option<&Dmar>, clock: &mut Clock) -> Vec<Segment> {
    let iommu_present = dmar.is_some();
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
        let acs = iommu_present.then(|| enable_acs_with(ecam, &mut crate::mmio::ChipsetWindow, &mut topology));
        let acs_traffic = traffic_since(ecam, before);
        for r in acs.iter().flatten() {
            let bdf = topology.functions[r.function].bdf;
            match r.outcome {
                AcsEnableOutcome::QuirkNotApplied { quirk, reason } => {
                    notes.push(format!("{bdf}: ACS enable quirk {quirk} failed ({reason}); not isolated, as in Linux"))
                }
                AcsEnableOutcome::IntelPchEnabled { updcr, mpc } => notes.push(format!(
                    "{bdf}: Intel PCH ACS quirk enabled (UPDCR {}, MPC {})",
                    updcr.map_or("left".into(), |(b, a)| format!("{b:#x} -> {a:#x}")),
                    mpc.map_or("left".into(), |(b, a)| format!("{b:#x} -> {a:#x}")),
                )),
                _ => {}
            }
        }
        clock.mark("acs");

        // Linux probes every device in `device_add` order; one no DRHD
        // covers fails the probe and gets no group.
        let units = dmar.map(|d| match_drhd_units(&d.drhds().collect::<Vec<_>>(), &topology));
        for m in units.iter().flat_map(|u| &u.mismatches) {
            notes.push(format!("{m}"));
        }
        let before = now(ecam);
        let groups = units.as_ref().map(|u| {
            let order: Vec<usize> = (0..topology.functions.len()).filter(|&i| u.unit_of[i].is_some()).collect();
            pci_device_groups(ecam, &topology, &order)
        });
        let group_traffic = traffic_since(ecam, before);
        clock.mark("groups");

        segments.push(Segment {
            region,
            roots,
            topology,
            acs,
            units,
            groups,
            enumerate: enumerate_traffic,
            acs_traffic,
            group_traffic,
            notes,
        });
    }
    segments
}
