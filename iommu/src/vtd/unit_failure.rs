//! Which devices may DMA when a remapping unit fails: the policy on top of
//! DRHD scope matching (which DRHD covers which device is decided
//! elsewhere; this module only decides what a failure means).
//!
//! Linux 6.1 aborts DMA remapping entirely when any DRHD fails:
//! `dmar_parse_one_drhd` → `alloc_iommu` returning an error makes
//! `parse_dmar_table` fail, and `intel_iommu_init` then runs with no IOMMU
//! at all (every device's DMA reaches all memory). It never moves a
//! device to another unit.
//!
//! The rule here is stricter, and keeps the good units:
//!
//! - a device covered by a DRHD that did not come up (bring-up timeout,
//!   register base outside the identity map, ...) gets **no DMA**: no
//!   context entry anywhere, bus mastering off and never enabled. Its DMA
//!   would go through its real, unprogrammed unit, so handing its context
//!   entries to another unit (the INCLUDE_PCI_ALL one) would isolate
//!   nothing;
//! - when the DMAR lost DRHDs whose scopes are unknown (a DRHD skipped by
//!   the parser, or the structure walk cut short), any device that only
//!   the INCLUDE_PCI_ALL fallback covers might belong to one of them: it
//!   gets no DMA too. Devices named explicitly by a good unit's scope keep
//!   working;
//! - when no unit comes up at all the kernel runs without an IOMMU, as
//!   Linux does (that decision is the caller's).
//!
//! Why stricter: with Linux's rule one broken DRHD on a multi-unit machine
//! leaves every device untranslated; here the devices of the good units
//! stay isolated and the others cannot DMA at all, which is safe.

use alloc::vec::Vec;

/// Why a device gets no DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDma {
    /// The DRHD (index in the DMAR's DRHD list) covering it did not come up.
    UnitDown { drhd: usize },
    /// Only the INCLUDE_PCI_ALL fallback covers it, and the DMAR lost DRHDs
    /// whose scopes are unknown.
    CoverageUnknown,
}

/// Where one device's DMA goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Translated by this unit (index among the units that came up).
    Unit(usize),
    /// Blocked: no context entry, bus mastering never enabled.
    NoDma(NoDma),
    /// No DRHD covers it (reported; its bus mastering is never enabled
    /// either, since no unit translates it).
    Uncovered,
}

impl Route {
    pub fn unit(self) -> Option<usize> {
        match self {
            Self::Unit(u) => Some(u),
            _ => None,
        }
    }
}

/// Apply the rule to every device. Per device: `covering` is the DRHD
/// that covers it by the matching rules with the INCLUDE_PCI_ALL fallback,
/// `explicit` the one whose scopes name it (no fallback); both index the
/// DMAR's DRHD list. `up` maps a DRHD index to the unit that came up for
/// it. `coverage_unknown`: the parser dropped a DRHD or stopped early.
pub fn route(
    covering: &[Option<usize>],
    explicit: &[Option<usize>],
    up: &[Option<usize>],
    coverage_unknown: bool,
) -> Vec<Route> {
    covering
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            None => Route::Uncovered,
            Some(drhd) => match up.get(drhd).copied().flatten() {
                None => Route::NoDma(NoDma::UnitDown { drhd }),
                Some(_) if coverage_unknown && explicit.get(i).copied().flatten().is_none() => {
                    Route::NoDma(NoDma::CoverageUnknown)
                }
                Some(u) => Route::Unit(u),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::sim::Sim;
    use crate::vtd::tables::RootTable;
    use crate::vtd::{PollLimit, Unit, UnitError};

    /// Bring a simulated unit up as the kernel does: probe, take over,
    /// root table.
    fn bring_up(sim: &Sim) -> Result<Unit<Sim>, UnitError> {
        let mut unit = Unit::new(sim.clone(), PollLimit(64))?;
        unit.take_over()?;
        let mut mm = sim.clone();
        let root = RootTable::new(&mut mm).map_err(|_| UnitError::Unsupported { feature: "frames" })?;
        unit.set_root_table(&mut mm, &root)?;
        Ok(unit)
    }

    /// DRHD 0 is INCLUDE_PCI_ALL and comes up; DRHD 1 names device 0
    /// explicitly and never completes a handshake. Device 0 must get no
    /// DMA, not fall to unit 0, whose context entries its DMA would never
    /// reach.
    #[test]
    fn a_failed_unit_s_devices_get_no_dma_and_stay_off_the_other_unit() {
        let sims = [Sim::qemu(), Sim::qemu()];
        sims[1].inner().stuck = true;
        let mut units = Vec::new();
        let up: Vec<Option<usize>> = sims
            .iter()
            .map(|s| {
                bring_up(s).ok().map(|u| {
                    units.push(u);
                    units.len() - 1
                })
            })
            .collect();
        assert_eq!(up, [Some(0), None], "the stuck unit fails bring-up");
        // Device 0: scoped by DRHD 1. Device 1: only the fallback.
        // Device 2: named by DRHD 0's own scope. Device 3: nobody.
        let covering = [Some(1), Some(0), Some(0), None];
        let explicit = [Some(1), None, Some(0), None];
        let r = route(&covering, &explicit, &up, false);
        assert_eq!(r, [Route::NoDma(NoDma::UnitDown { drhd: 1 }), Route::Unit(0), Route::Unit(0), Route::Uncovered]);
        assert_eq!(r[0].unit(), None, "never routed to the INCLUDE_PCI_ALL unit");
    }

    /// The INCLUDE_PCI_ALL unit fails: everything it covers gets no DMA,
    /// devices explicitly scoped by the good unit keep it.
    #[test]
    fn a_failed_include_all_unit_blocks_the_rest_of_the_segment() {
        let sims = [Sim::qemu(), Sim::qemu()];
        sims[0].inner().all_ones = true;
        let up: Vec<Option<usize>> = sims.iter().map(|s| bring_up(s).ok().map(|_| 0)).collect();
        assert_eq!(up, [None, Some(0)]);
        let r = route(&[Some(0), Some(1)], &[None, Some(1)], &up, false);
        assert_eq!(r, [Route::NoDma(NoDma::UnitDown { drhd: 0 }), Route::Unit(0)]);
    }

    /// A DRHD the parser dropped may have named any device the fallback
    /// covers: those get no DMA; explicitly scoped ones keep their unit.
    #[test]
    fn unknown_coverage_blocks_fallback_devices_only() {
        let up = [Some(0), Some(1)];
        let r = route(&[Some(0), Some(1), Some(0)], &[None, Some(1), Some(0)], &up, true);
        assert_eq!(r, [Route::NoDma(NoDma::CoverageUnknown), Route::Unit(1), Route::Unit(0)]);
        let r = route(&[Some(0), Some(1), Some(0)], &[None, Some(1), Some(0)], &up, false);
        assert_eq!(r, [Route::Unit(0), Route::Unit(1), Route::Unit(0)], "with full coverage the fallback holds");
    }
}
