//! The enumeration, ACS and grouping stages, glued to the hardware: ECAM as
//! the config space, ACPI for the root buses. The rules themselves live in
//! the `pci` and `iommu` crates.

use crate::hw::clock::Clock;
use crate::hw::ecam::Ecam;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::group::{Groups, pci_device_groups};
use iommu::vtd::dmar::Dmar;
use iommu::vtd::dmar_scope::{UnitMatch, match_drhd_units, rmrr_scope_mismatches};
use pci::acs::{AcsEnableOutcome, AcsEnableRecord, enable_acs_with};
use pci::{Topology, enumerate_with_peer_probe};
use platform::acpi::{AcpiFacts, root_buses};
use platform::mcfg::{McfgRegion, pcibios_last_bus};

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
    pub roots: Vec<(u8, String)>,
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

/// Enumerate, enable ACS (when the DMAR has a usable DRHD) and form the
/// groups for every ECAM segment, of the functions a DRHD covers.
pub fn run(ecam: &mut Ecam, acpi: &AcpiFacts, dmar: Option<&Dmar>, clock: &mut Clock) -> Vec<Segment> {
    let iommu_present = dmar.is_some();
    let regions: Vec<McfgRegion> = ecam.regions().to_vec();
    let mut segments = Vec::new();
    for region in regions {
        let before = now(ecam);
        let mut notes = Vec::new();
        let mut roots = root_buses(acpi, &region, &mut notes);
        let range = region.start_bus..=region.end_bus;
        let root_numbers: Vec<u8> = roots.iter().map(|r| r.0).collect();
        // The peer-bus probe runs on segment 0 only.
        let last_bus = pcibios_last_bus(ecam.regions()).filter(|_| region.segment == 0);
        let mut topology = enumerate_with_peer_probe(ecam, region.segment, &root_numbers, range, last_bus);
        // A host bridge whose root bus a bridge had already reached adds no
        // root bus: named in a note, left out of the list.
        for e in &topology.errors {
            if let pci::topology::EnumErrorKind::RootBusBelowBridge { bridge } = e.kind
                && let Some(i) = roots.iter().position(|r| r.0 == e.bdf.bus)
            {
                let (bus, how) = roots.remove(i);
                notes
                    .push(format!("{how}: bus {bus:02x} is the secondary bus of {bridge}, kept there; no second root"));
            }
        }
        if let Some(p) = &topology.peer_probe {
            for &bus in &p.discovered {
                roots.push((bus, format!("PCI: Discovered peer bus {bus:02x} (pcibios_fixup_peer_bridges)")));
            }
            notes.push(format!(
                "peer-bus probe over buses 00-{:02x}: {} bus numbers without a bus probed, {} config reads{}",
                p.last_bus,
                p.buses_probed,
                p.reads,
                if p.outside_ecam > 0 {
                    format!(", {} outside ECAM not readable", p.outside_ecam)
                } else {
                    String::new()
                }
            ));
        }
        let enumerate_traffic = traffic_since(ecam, before);
        clock.mark("enumerate");

        // Linux `pci_msi_init`/`pci_msix_init` at scan: no function sends a
        // message firmware or a previous kernel programmed (any vector, NMI,
        // INIT) before a driver of this kernel sets up its own.
        for f in &topology.functions {
            let (msi, msix) = pci::msi::disable_left_enabled(ecam, f.bdf, f.caps.msi, f.caps.msix);
            for (on, what) in [(msi, "MSI"), (msix, "MSI-X")] {
                if on {
                    log::warn!("{}: {what} was left enabled: turned off until a driver sets it up", f.bdf);
                    notes.push(format!("{}: {what} was left enabled: turned off (pci_msi_init)", f.bdf));
                }
            }
        }

        let before = now(ecam);
        let acs = iommu_present.then(|| enable_acs_with(ecam, &mut crate::hw::mmio::ChipsetWindow, &mut topology));
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
        let units = dmar.map(|d| {
            let mut m = match_drhd_units(&d.drhds().collect::<Vec<_>>(), &topology);
            rmrr_scope_mismatches(&mut m, d.rmrrs(), &topology);
            m
        });
        for m in units.iter().flat_map(|u| &u.mismatches) {
            log::error!("{m}");
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
