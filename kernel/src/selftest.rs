//! In-kernel self-tests chosen with `test=NAME` on the command line. Each
//! ends the run through the path it tests; the runner asserts the message
//! and the failing exit status. `no-translation` instead leaves VT-d
//! translation off (as a failed GCMD.TE would) and lets the boot go on, to
//! show that nothing needing translation runs. `rmrr:BDF,...` and
//! `drhd-fail:BDF,...` (joinable with `+`) edit the firmware's DMAR, to
//! show RMRR devices and a failed unit next to QEMU's real one.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::vtd::dmar::{Dmar, Drhd, DrhdFlags, Rmrr, Structure};
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
        // Acted on once the DMAR is parsed (`edit_dmar`).
        dmar if edits_dmar(dmar) => log::info!("self-test {dmar}: the firmware's DMAR is edited"),
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

/// The register base of the DRHD `test=drhd-fail:BDF,...` adds: RAM below
/// the uncached window, so bring-up refuses it (`Mmio::new`).
const TEST_FAILED_DRHD: u64 = 0x1000;

/// Whether `test=NAME` edits the DMAR (parts joined with `+`).
fn edits_dmar(name: &str) -> bool {
    name.split('+').all(|p| p.starts_with("rmrr:") || p.starts_with("drhd-fail:"))
}

/// Endpoint scopes (start bus = the function's bus, one path hop) for
/// `BDF,BDF,...`; what does not parse is reported and left out.
fn scopes(what: &str, list: &str, problems: &mut Vec<String>) -> Vec<DeviceScope> {
    let mut out = Vec::new();
    for s in list.split(',') {
        match Bdf::parse(s) {
            Some(b) => out.push(DeviceScope {
                offset: 0,
                kind: ScopeType::Endpoint,
                flags: 0,
                enumeration_id: 0,
                start_bus: b.bus,
                path: alloc::vec![PathEntry { device: b.device, function: b.function }],
            }),
            None => problems.push(format!("self-test {what}: {s:?} is not a BDF; left out")),
        }
    }
    out
}

/// The DMAR self-tests, on the parsed firmware table (QEMU's has no RMRR
/// and one unit, and a second DMAR given with `-acpitable` is ignored).
/// Each edit is reported as a problem line so that no report hides it.
///
/// - `rmrr:BDF,...`: an RMRR over [`TEST_RMRR`] naming those functions;
/// - `drhd-fail:BDF,...`: a DRHD at [`TEST_FAILED_DRHD`] naming them,
///   placed first (its scopes win), which cannot come up.
pub fn edit_dmar(dmar: &mut Dmar, test: &str, problems: &mut Vec<String>) {
    if !edits_dmar(test) {
        return;
    }
    for part in test.split('+') {
        if let Some(list) = part.strip_prefix("rmrr:") {
            let scopes = scopes("rmrr", list, problems);
            let (base, limit) = TEST_RMRR;
            problems
                .push(format!("self-test rmrr: RMRR {base:#x}-{limit:#x} naming {list} added to the firmware's DMAR"));
            dmar.structures.push(Structure::Rmrr(Rmrr { offset: 0, segment: 0, base, limit, scopes }));
        } else if let Some(list) = part.strip_prefix("drhd-fail:") {
            let scopes = scopes("drhd-fail", list, problems);
            problems.push(format!(
                "self-test drhd-fail: DRHD {TEST_FAILED_DRHD:#x} naming {list} added first to the firmware's DMAR"
            ));
            let drhd = Drhd {
                offset: 0,
                flags: DrhdFlags::empty(),
                size: 0,
                segment: 0,
                register_base: TEST_FAILED_DRHD,
                scopes,
            };
            dmar.structures.insert(0, Structure::Drhd(drhd));
        }
    }
}
