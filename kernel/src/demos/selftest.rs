//! In-kernel self-tests chosen with `test=NAME` on the command line. Each
//! ends the run through the path it tests; the runner asserts the message
//! and the failing exit status. `no-translation` instead leaves VT-d
//! translation off (as a failed GCMD.TE would) and lets the boot go on, to
//! show that nothing needing translation runs. `rmrr:BDF,...` and
//! `drhd-fail:BDF,...` (joinable with `+`) edit the firmware's DMAR, to
//! show RMRR devices and a failed unit next to QEMU's real one.
//! `firmware-left-on` leaves every unit as a previous kernel might before
//! the VT-d stage takes it over.

use crate::drivers::edu::{Direction, Edu};
use crate::hw::clock::Deadline;
use crate::pipeline::vtd::{KernelMemory, Mmio};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::vtd::dmar::{Dmar, Drhd, DrhdFlags, Rmrr, Structure};
use iommu::vtd::dmar_scope::{DeviceScope, PathEntry, ScopeType};
use iommu::vtd::regs::{self, GlobalCommand, GlobalStatus};
use iommu::vtd::tables::RootTable;
use iommu::vtd::{PollLimit, Unit};
use pci::{Bdf, ConfigSpace, Topology};

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
            // black_box: an allocation whose result is never used may be
            // elided by the optimiser, and then nothing fails.
            let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(core::hint::black_box(1 << 40));
            let v = core::hint::black_box(v);
            log::error!("self-test alloc-fail: got {} bytes", v.capacity());
        }
        "hang" => {
            log::info!("self-test hang: halting with interrupts off; the runner's timeout must end this");
            crate::arch::halt_forever();
        }
        // Acted on by the VT-d stage: GCMD.TE is not set, as if enabling
        // translation had failed, and the boot goes on with what is safe.
        "no-translation" => log::info!("self-test no-translation: translation will not be enabled"),
        "lost-port-irq" => log::info!("self-test lost-port-irq: hot-plug slots will send no interrupt"),
        // Acted on just before the VT-d stage (`firmware_left_on`).
        "firmware-left-on" => {
            log::info!("self-test firmware-left-on: units will be left running as by a previous kernel")
        }
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
            // The RMRR's segment is the first function's (scopes hold
            // no segment).
            let segment = list.split(',').find_map(Bdf::parse).map_or(0, |b| b.segment);
            dmar.structures.push(Structure::Rmrr(Rmrr { offset: 0, segment, base, limit, scopes }));
        } else if let Some(list) = part.strip_prefix("drhd-fail:") {
            let scopes = scopes("drhd-fail", list, problems);
            problems.push(format!(
                "self-test drhd-fail: DRHD {TEST_FAILED_DRHD:#x} naming {list} added after the firmware's DRHDs"
            ));
            let drhd = Drhd {
                offset: 0,
                flags: DrhdFlags::empty(),
                size: 0,
                segment: 0,
                register_base: TEST_FAILED_DRHD,
                scopes,
            };
            // Linux searches scoped DRHDs in reverse table order
            // (`dmar_register_drhd_unit` adds each at the head), so the one
            // added last is found first for a device two units name.
            let after_last_drhd =
                dmar.structures.iter().rposition(|s| matches!(s, Structure::Drhd(_))).map_or(0, |i| i + 1);
            dmar.structures.insert(after_last_drhd, Structure::Drhd(drhd));
        }
    }
}

/// The bus address the `firmware-left-on` edu DMA targets (below the edu's
/// 28-bit mask, used by no proof).
pub const PRE_BOOT_DMA_ADDRESS: u64 = 0x7f_0000;

/// `test=firmware-left-on`: play a previous kernel (kexec without kdump)
/// on every unit of the segment: translation on through an empty root
/// table, interrupt remapping on with a table at IRTA, and one fault
/// logged by the first edu's DMA hitting the empty table (reason 1). The
/// VT-d stage must then take each unit over (TE and IRE off, IRTA
/// cleared, the fault reported as pre-boot, not as this boot's). Returns
/// what was set up, or why not.
pub fn firmware_left_on(
    dmar: &Dmar,
    topo: &Topology,
    ecam: &mut dyn ConfigSpace,
    tsc_hz: Option<u64>,
) -> Result<String, String> {
    let mut mm = KernelMemory;
    let mut done = Vec::new();
    for drhd in dmar.drhds().filter(|d| d.segment == topo.segment) {
        let mut regs = Mmio::new(drhd)?;
        let mut unit = Unit::new(Mmio::new(drhd)?, PollLimit::default()).map_err(|e| format!("{e}"))?;
        let root = RootTable::new(&mut mm).map_err(|e| format!("{e}"))?;
        unit.set_root_table(&mut mm, &root).map_err(|e| format!("{e}"))?;
        unit.enable_translation().map_err(|e| format!("{e}"))?;
        // IRTA: a zeroed table of 2^(0+1) entries; SIRTP, then IRE, each
        // with TE kept (GCMD is written whole, spec §11.4.4).
        let irt = crate::hw::memory::alloc_zeroed_frame().map_err(|e| format!("{e}"))?;
        regs::IRTA.write(&mut regs, irt);
        for (cmd, status) in [
            (GlobalCommand::TE | GlobalCommand::SIRTP, GlobalStatus::IRTPS),
            (GlobalCommand::TE | GlobalCommand::IRE, GlobalStatus::IRES),
        ] {
            regs::GCMD.write(&mut regs, cmd.bits());
            let set = (0..1_000_000).any(|_| GlobalStatus::from_bits_retain(regs::GSTS.read(&regs)).contains(status));
            if !set {
                return Err(format!("DRHD {:#x}: {status:?} never set", drhd.register_base));
            }
        }
        done.push(format!("{:#x}", drhd.register_base));
    }
    let hz = tsc_hz.ok_or("no TSC calibration for the edu DMA")?;
    let i = topo
        .functions
        .iter()
        .position(|f| f.vendor == crate::drivers::edu::EDU_VENDOR && f.device == crate::drivers::edu::EDU_DEVICE)
        .ok_or("no edu to fault")?;
    let bdf = topo.functions[i].bdf;
    let edu = Edu::probe(ecam, bdf).map_err(|e| format!("{e}"))?;
    // Firmware-style: bus mastering straight on (the VT-d stage clears it).
    let cmd = ecam.read16(bdf, 0x04);
    ecam.write16(bdf, 0x04, cmd | 0x04);
    let deadline = Deadline::after_ms(hz, 2000);
    edu.dma(Direction::FromDevice, PRE_BOOT_DMA_ADDRESS, 0, 16, deadline).map_err(|e| format!("{e}"))?;
    Ok(format!(
        "units {} left translating through an empty root table with interrupt remapping on; {bdf} DMA at {PRE_BOOT_DMA_ADDRESS:#x} faulted",
        done.join(", ")
    ))
}
