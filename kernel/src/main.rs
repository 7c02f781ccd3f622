//! A freestanding kernel that enumerates PCIe, forms IOMMU groups as Linux
//! 6.1 does and programs Intel VT-d so that every group is isolated.
//!
//! Boot pipeline (one pass, one direction): firmware facts → enumeration →
//! ACS → groups → DMAR → VT-d → drivers → report. Each stage takes the
//! previous stage's values; the report is built from those values alone.
#![no_std]
#![no_main]

extern crate alloc;

mod arch; // the CPU: PVH entry, GDT/IDT/TSS, page tables, exception stubs
mod demos; // the ownership story, the DMA isolation proofs, failure-path self-tests
mod drivers; // the driver core's bindings: pcieport, edu, the vfio-pci and shpchp stand-ins
mod hw; // hardware access: serial console, ECAM, MMIO, TSC clock, memory, ACPI glue, exit
mod pipeline; // the boot stages: topology (enumeration, ACS, groups), VT-d
mod report; // the text report, the JSON, device names

use demos::{dmatest, irq_isolation, ownership, selftest};
use hw::{clock, console, ecam, exit, firmware, memory};
use pipeline::{topology, vtd};

use alloc::format;
use alloc::vec::Vec;
use arch::cpu::{TrapFrame, exception_name};
use clock::Clock;
use exit::{ExitCode, exit};
use platform::acpi::{AcpiFacts, RsdpSource};
use platform::cmdline::{Options, wants_early_exit};
use platform::frames::Reserved;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Entered from `boot.s` in long mode with the physical address of
/// `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info: u64) -> ! {
    let entry_tsc = arch::rdtsc();
    let boot = firmware::read_start_info(start_info);
    // The benchmark floor: leave at the first Rust instruction that can know.
    if boot.as_ref().is_ok_and(|b| wants_early_exit(b.cmdline)) {
        exit(ExitCode::Pass);
    }
    console::init();
    let t_console = arch::rdtsc();
    let boot = match boot {
        Ok(b) => b,
        Err(e) => {
            println!("[ERROR] no usable PVH start info: {e}");
            exit(ExitCode::Fail);
        }
    };
    arch::cpu::init();
    arch::paging::unmap_stack_guard();
    // The interrupt stack: PICs and LINT0 masked, the xAPIC on, then `sti`.
    let irq = arch::interrupts::init();
    let mut clock = Clock::new(entry_tsc);
    clock.mark_at("console", t_console);
    clock.mark("cpu");

    // Memory: the frame allocator and the heap. Firmware data above 1 MiB
    // (it normally sits below) is kept out of the allocator.
    let map = firmware::MemoryMap::read(&boot.info);
    let keep = |addr: u64, len: u64| Reserved { start: addr, end: addr + len };
    let firmware_data = [
        keep(start_info, platform::start_info::HVM_START_INFO_SIZE as u64),
        keep(boot.info.memmap_paddr, boot.info.memmap_len() as u64),
        keep(boot.info.cmdline_paddr, boot.cmdline.len() as u64 + 1),
    ];
    let mem = match memory::init(map.regions(), &firmware_data) {
        Ok(m) => m,
        Err(e) => {
            println!("[ERROR] memory: {e}; no heap, cannot continue");
            exit(ExitCode::Fail);
        }
    };
    let map = map.to_vec();
    clock.mark("memory");
    let options = match Options::parse(boot.cmdline) {
        Ok(o) => o,
        Err(e) => {
            console::init_log(log::LevelFilter::Info);
            log::error!("command line: {e}");
            exit(ExitCode::Fail);
        }
    };
    console::init_log(options.log_level);
    for word in &options.unknown {
        log::warn!("command line: ignoring unknown word {word:?}");
    }
    println!("vtd-kernel {VERSION}: PCIe enumeration, Linux 6.1 IOMMU groups, Intel VT-d");
    if let Err(e) = &irq {
        log::error!("interrupts unavailable ({e}): every wait polls instead");
    }
    clock.mark("banner");
    if let Some(test) = options.test {
        selftest::run(test);
    }

    // Firmware facts.
    let source = match boot.info.rsdp_paddr {
        0 => RsdpSource::BiosScan,
        a => RsdpSource::StartInfo(a),
    };
    // SAFETY: `IdentityMap` maps all of [4 KiB, 4 GiB), the range given.
    let acpi: AcpiFacts =
        unsafe { platform::acpi::discover(firmware::IdentityMap, source, &(0x1000..memory::IDENTITY_LIMIT)) };
    if let Some(port) = acpi.pm_timer_port {
        clock.set_pm_timer(port);
    }
    clock.mark("acpi");

    let (mut ecam, mut problems) = ecam::Ecam::new(&acpi.mcfg);
    ecam.set_pm_timer(acpi.pm_timer_port);
    problems.extend(acpi.problems.iter().cloned());

    // The DMAR table decides whether there is an IOMMU. Like Linux
    // (detect_intel_iommu → pci_request_acs), ACS is enabled and groups are
    // formed only when it has a usable DRHD.
    let mut dmar = acpi.dmar.as_ref().and_then(|bytes| vtd::parse(bytes, &mut problems));
    if let (Some(d), Some(test)) = (dmar.as_mut(), options.test) {
        selftest::edit_dmar(d, test, &mut problems);
    }
    clock.mark("dmar");
    let mut segments = topology::run(&mut ecam, &acpi, dmar.as_ref(), &mut clock);
    for seg in &segments {
        for e in &seg.topology.errors {
            log::error!("PCI: {e}");
        }
    }

    // VT-d: domains for every group, translation on, then the DMA proofs.
    // One PCI segment (q35 has one); a DRHD of another segment is reported.
    if let (true, Some(d), Some(seg)) = (options.test == Some("firmware-left-on"), &dmar, segments.first()) {
        match selftest::firmware_left_on(d, &seg.topology, &mut ecam, clock.tsc_hz()) {
            Ok(what) => problems.push(format!("self-test firmware-left-on: {what}")),
            Err(e) => problems.push(format!("self-test firmware-left-on: could not set up: {e}")),
        }
    }
    let mut vtd = match (&dmar, segments.first()) {
        (Some(d), Some(seg)) => {
            let ram: Vec<(u64, u64)> = platform::memmap::ram_ranges(&map).collect();
            Some(vtd::Vtd::setup(d, seg, &mut ecam, &ram))
        }
        _ => None,
    };
    // No DRHD came up: run as without an IOMMU, as Linux does when
    // intel-iommu fails to initialise (no groups, nothing translated, bus
    // mastering as firmware left it). ACS stays enabled, as in Linux, which
    // requests it when it finds the DMAR table.
    if let Some(v) = vtd.take_if(|v| v.units.is_empty()) {
        problems.extend(v.problems);
        problems.push("VT-d: no DRHD unit came up; running without an IOMMU (no groups, no translation)".into());
        for seg in &mut segments {
            seg.groups = None;
        }
    }
    clock.mark("vtd-tables");

    // Drivers bind while translation is still off: their context entries
    // are in place when it turns on, and no device masters the bus yet.
    let mut bound = None;
    let mut setup = None;
    if let (Some(v), Some(seg)) = (vtd.as_mut(), segments.first())
        && let Some(groups) = &seg.groups
    {
        let mut drv = drivers::Drivers::new(&seg.topology, groups, &v.rmrr);
        let mut ctx = drivers::Ctx { vtd: v, ecam: &mut ecam, topo: &seg.topology, groups };
        setup = Some(ownership::bind(&mut ctx, &mut drv, &options.assign, &options.bind_shpc, &mut problems));
        bound = Some(drv);
    }
    clock.mark("drivers");
    if let Some(v) = vtd.as_mut() {
        if options.test == Some("no-translation") {
            v.problems.push("self-test no-translation: GCMD.TE not set, as if enabling translation had failed".into());
        } else {
            v.enable_translation();
        }
        v.collect_faults();
    }
    clock.mark("translation");
    let tsc_hz = clock.tsc_hz();

    // pcieport's services start once translation is on: a port masters the
    // bus (for its own MSI) only through the bus-master gate.
    let mut ports = None;
    if let (Some(v), Some(seg), Some(drv), Some(hz)) = (vtd.as_mut(), segments.first(), bound.as_ref(), tsc_hz)
        && let Some(groups) = &seg.groups
        && v.translation_enabled()
    {
        let mut ctx = drivers::Ctx { vtd: v, ecam: &mut ecam, topo: &seg.topology, groups };
        let pd = drivers::portdrv::PortDrv::register(&mut ctx, drv, hz, options.port_irq);
        if options.test == Some("lost-port-irq") {
            pd.mute_slot_interrupts(&mut ctx, hz);
        }
        ports = Some(pd);
        clock.mark("port-services");
    }

    // The ownership story, then the VT-d isolation proofs on the edu
    // devices the kernel driver holds. `--groups` asks for the group list
    // only, so it runs no demonstration.
    // Nothing that needs translation runs without it: the demonstrations
    // and proofs would let devices master the bus with their DMA reaching
    // memory untranslated. They are reported skipped, with the reason, and
    // the run fails: the machine is not isolated.
    let demos = options.demos && options.report != platform::cmdline::ReportFormat::Groups;
    let mut dma_cases = Vec::new();
    let mut story = None;
    let mut isolation = None;
    let untranslated = vtd.as_ref().is_some_and(|v| !v.translation_enabled());
    if untranslated {
        let why = "VT-d translation is not on (see the errors above): no demonstration or DMA proof runs, and no device is let master the bus";
        problems.push(why.into());
        if demos {
            story = Some(ownership::skipped(why));
            dma_cases.push(dmatest::Case::skipped("dma", why));
        }
    }
    if let (Some(v), Some(seg), Some(drv), Some(setup), true) =
        (vtd.as_mut(), segments.first(), bound.as_mut(), setup, demos && !untranslated)
        && let Some(groups) = &seg.groups
    {
        let mut ctx = drivers::Ctx { vtd: v, ecam: &mut ecam, topo: &seg.topology, groups };
        story = Some(ownership::demonstrate(
            &mut ctx,
            drv,
            setup,
            options.dma_demos,
            tsc_hz,
            ports.as_mut(),
            options.events,
        ));
        clock.mark("ownership");
        if let (true, Some(hz)) = (options.dma_demos, tsc_hz) {
            let edus: Vec<usize> = (0..seg.topology.functions.len())
                .filter(|&i| drv.driver_name(i) == Some(drivers::EDU) && !vtd::alias_quirk_on_path(&seg.topology, i))
                .collect();
            let mut runner = dmatest::Runner { vtd: v, ecam: &mut ecam, topo: &seg.topology, groups, tsc_hz: hz };
            dma_cases = runner.run(&edus);
            clock.mark("dma-proofs");
        }
        let mut ctx = drivers::Ctx { vtd: v, ecam: &mut ecam, topo: &seg.topology, groups };
        isolation = Some(irq_isolation::run(&mut ctx, drv, tsc_hz));
        clock.mark("irq-isolation");
    }
    if let Some(v) = &vtd {
        problems.extend(v.problems.iter().cloned());
    }
    for p in &problems {
        log::error!("{p}");
    }
    if console::dropped() > 0 {
        problems.push(format!("console: {} bytes could not be sent (transmitter stuck)", console::dropped()));
    }
    let failed = untranslated
        || dma_cases.iter().any(|c| matches!(c.outcome, dmatest::Outcome::Fail(_)))
        || story.as_ref().is_some_and(|s| s.failed())
        || isolation.as_ref().is_some_and(|i: &irq_isolation::Isolation| i.failed());

    let report = report::Report {
        options: &options,
        memory_map: &map,
        memory: mem,
        acpi: &acpi,
        ecam: &ecam,
        segments: &segments,
        dmar: dmar.as_ref(),
        vtd: vtd.as_ref(),
        dma_cases: &dma_cases,
        drivers: bound.as_ref(),
        ports: ports.as_ref(),
        story: story.as_ref(),
        isolation: isolation.as_ref(),
        problems,
    };
    clock.mark("report");
    report.print(&mut clock);
    exit(if failed { ExitCode::Fail } else { ExitCode::Pass })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::force_unlock();
    match info.location() {
        Some(l) => println!("KERNEL PANIC at {}:{}: {}", l.file(), l.line(), info.message()),
        None => println!("KERNEL PANIC: {}", info.message()),
    }
    exit(ExitCode::Fail)
}

/// Called by the exception stubs in `traps.s` with the saved state.
#[unsafe(no_mangle)]
extern "C" fn exception_handler(frame: &TrapFrame) -> ! {
    console::force_unlock();
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    println!(
        "CPU EXCEPTION {} ({}): error code {:#x}, RIP {:#018x}, CR2 {:#018x}",
        frame.vector,
        exception_name(frame.vector),
        frame.error_code,
        frame.rip,
        cr2
    );
    let guard = arch::paging::stack_guard();
    if frame.vector == 14 && (guard..guard + 4096).contains(&cr2) {
        println!("  the address is the stack guard page: kernel stack overflow");
    }
    println!("  RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}", frame.rax, frame.rbx, frame.rcx, frame.rdx);
    println!("  RSI {:#018x} RDI {:#018x} RBP {:#018x} RSP {:#018x}", frame.rsi, frame.rdi, frame.rbp, frame.rsp);
    println!("  R8  {:#018x} R9  {:#018x} R10 {:#018x} R11 {:#018x}", frame.r8, frame.r9, frame.r10, frame.r11);
    println!("  R12 {:#018x} R13 {:#018x} R14 {:#018x} R15 {:#018x}", frame.r12, frame.r13, frame.r14, frame.r15);
    println!("  CS {:#x} SS {:#x} RFLAGS {:#x}", frame.cs, frame.ss, frame.rflags);
    exit(ExitCode::Fail)
}
