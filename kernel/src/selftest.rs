//! In-kernel self-tests chosen with `test=NAME` on the command line. Each
//! ends the run through the path it tests; the runner asserts the message
//! and the failing exit status. `no-translation` instead leaves VT-d
//! translation off (as a failed GCMD.TE would) and lets the boot go on, to
//! show that nothing needing translation runs. `rmrr:BDF,...` adds an RMRR
//! to the firmware's DMAR (QEMU's has none, and a second DMAR table is
//! ignored), to show RMRR devices on a real unit.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::vtd::dmar::{Dmar, Rmrr, Structure};
use iommu::vtd::dmar_scope::{DeviceScope, PathEntry, ScopeType};
use pci::Bdf;

/// Above the 4 GiB identity map: never mapped.
const UNMAPPED: u64 = 0x10_0000_0000;

pub fn run(name: &str) {
    log::info!("self-test {name}");
    match name {
        "panic" => panic!("self-test: deliberate panic"),
        "page-fault" => {
            // SAFETY: deliberately not safe: nothing is mapped there and
            // the read faults; the handler ends the run.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            log::error!("self-test page-fault: read {v:#x} from an unmapped page without a fault");
        }
        "stack-overflow" => {
            let depth = recurse(0);
            log::error!("self-test stack-overflow: recursed {depth} times without a fault");
        }
        "alloc-fail" => {
            let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(1 << 40);
            log::error!("self-test alloc-fail: got {} bytes", v.capacity());
        }
        "hang" => {
            log::info!("self-test hang: halting with interrupts off; the runner's timeout must end this");
            crate::arch::halt_forever();
        }
        // Acted on by the VT-d stage: GCMD.TE is not set, as if enabling
        // translation had failed, and the boot goes on with what is safe.
        "no-translation" => log::info!("self-test no-translation: translation will not be enabled"),
        // Acted on once the DMAR is parsed (`add_rmrr`).
        rmrr if rmrr.starts_with("rmrr:") => log::info!("self-test {rmrr}: an RMRR is added to the firmware's DMAR"),
        other => log::error!("unknown self-test {other:?}; continuing"),
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = [depth; 64];
    core::hint::black_box(&pad);
    if depth == u64::MAX { depth } else { recurse(depth + 1) + 1 }
}

/// The RMRR `test=rmrr:BDF,...` adds: the BIOS area, which the PVH memory
/// map reserves on q35 (never RAM, so `Rmrr::check` accepts it).
const TEST_RMRR: (u64, u64) = (0xf_0000, 0xf_ffff);

/// `test=rmrr:BDF,...`: add to the parsed DMAR an RMRR over [`TEST_RMRR`]
/// with one endpoint scope per function named (start bus = its bus, one
/// path hop), reported as a problem so that no report hides it. Functions
/// that do not parse are reported and left out.
pub fn add_rmrr(dmar: &mut Dmar, spec: &str, problems: &mut Vec<String>) {
    let mut scopes = Vec::new();
    for s in spec.split(',') {
        match Bdf::parse(s) {
            Some(b) => scopes.push(DeviceScope {
                offset: 0,
                kind: ScopeType::Endpoint,
                flags: 0,
                enumeration_id: 0,
                start_bus: b.bus,
                path: alloc::vec![PathEntry { device: b.device, function: b.function }],
            }),
            None => problems.push(format!("self-test rmrr: {s:?} is not a BDF; left out")),
        }
    }
    let (base, limit) = TEST_RMRR;
    problems.push(format!("self-test rmrr: RMRR {base:#x}-{limit:#x} naming {spec} added to the firmware's DMAR"));
    dmar.structures.push(Structure::Rmrr(Rmrr { offset: 0, segment: 0, base, limit, scopes }));
}
