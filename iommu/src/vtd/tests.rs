//! Host tests of the VT-d library over the simulated QEMU 7.2 unit.

mod attach;
mod dmar;
mod fault;
mod inval;
mod irq_remap;
mod pagetable;
mod unit;

use super::sim::Sim;
use super::unit::{PollLimit, Unit};

/// A unit over a fresh simulated QEMU 7.2 intel-iommu, and the handle the
/// test keeps (memory, events, knobs).
fn qemu_unit() -> (Unit<Sim>, Sim) {
    unit_with(Sim::qemu())
}

fn unit_with(sim: Sim) -> (Unit<Sim>, Sim) {
    let unit = Unit::new(sim.clone(), PollLimit(64)).expect("simulated unit probes");
    (unit, sim)
}
