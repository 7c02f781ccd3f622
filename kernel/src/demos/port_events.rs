//! Demonstrations 6 and 7: the port services at work while the group below
//! the port is owned. The kernel asks the machine for each event with a
//! `QMP-REQUEST` line on serial (the runner performs it over QMP and prints
//! QEMU's replies and events on stderr); the services are polled with a
//! TSC deadline from before the request is printed, so nothing the port
//! latches can be missed.
//!
//! 6. AER: an uncorrectable error injected at a switch downstream port
//!    (`pcie_aer_inject_error`) reaches the root port; its AER service
//!    reads Root Error Status and Error Source Id, decodes the source's
//!    AER registers (Linux's names), clears them and reports the owner of
//!    the source's group; ownership is unchanged.
//! 7. pciehp: `device_del` of the owned edu presses the slot's attention
//!    button; pciehp unbinds the device, takes it out of its group and the
//!    VT-d tables and powers the slot off (QEMU then reports
//!    DEVICE_DELETED). `device_add` of a new edu in the same slot: pciehp
//!    powers it on, waits for it, enumerates the segment again, assigns its
//!    BAR in the bridge window firmware left, and groups it by Linux's
//!    rules: it joins the owned group with no domain (Linux 6.1
//!    `iommu_probe_device`: no default domain attach while the group has an
//!    owner), so its DMA faults and the edu kernel driver is refused with
//!    EBUSY; the owner's vfio-pci takes it. Linux waits 5 s after a button
//!    press for a cancelling second press and 1 s after power off; QEMU
//!    needs neither, and this kernel acts at once.

use super::ownership::Stage;
use crate::drivers::edu::{Direction, EDU_DEVICE, EDU_VENDOR, Edu};
use crate::drivers::portdrv::{LOST_INTERRUPT, PortDrv, ServiceEvent, wait_10ms};
use crate::drivers::{EDU, PCIEPORT, VFIO_PCI};
use crate::hw::clock::{Deadline, cycles_to_us};
use crate::println;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pci::caps::PcieType;
use pci::pciehp::{self, Step};
use pci::regs::*;
use pci::{Bdf, ConfigSpace};

/// How long a requested event may take to show (virtual time under TCG is
/// close to wall time; QEMU answers in milliseconds).
const EVENT_MS: u64 = 4000;
const PCI_BASE_ADDRESS_0: u16 = 0x10;
/// An IOVA nothing maps, for the new edu's DMA.
const NO_DOMAIN_IOVA: u64 = 0x7e_0000;

/// Where the two demonstrations play: a hot-plug capable downstream port
/// bound to pcieport, the edu below it, their (claimed) group and the root
/// port above with the AER service.
struct Site {
    port: usize,
    edu: usize,
    group: usize,
    root: usize,
}

fn find_site(stage: &Stage, pd: &PortDrv) -> Option<Site> {
    let topo = stage.ctx.topo;
    for p in &pd.ports {
        let f = &topo.functions[p.index];
        if f.pcie_type != Some(PcieType::Downstream) || p.slot.is_none() {
            continue;
        }
        if stage.drivers.driver_name(p.index) != Some(PCIEPORT) {
            continue;
        }
        let Some(edu) = (0..topo.functions.len()).find(|&i| {
            topo.functions[i].parent == Some(p.index)
                && topo.functions[i].vendor == EDU_VENDOR
                && topo.functions[i].device == EDU_DEVICE
        }) else {
            continue;
        };
        let Some(group) = stage.group_pos(edu).filter(|&g| stage.group_pos(p.index) == Some(g)) else { continue };
        let root = core::iter::successors(Some(p.index), |&i| topo.functions[i].parent)
            .find(|&i| pd.port(i).is_some_and(|rp| rp.aer_root.is_some()))?;
        return Some(Site { port: p.index, edu, group, root });
    }
    None
}

/// Play 6 and 7; returns why each was skipped, if it was.
pub(super) fn play(stage: &mut Stage, pd: Option<&mut PortDrv>, on: bool, claimed: &[usize]) -> [Option<String>; 2] {
    let skip = |why: &str| [Some(String::from(why)), Some(String::from(why))];
    if !on {
        return skip("events=off");
    }
    let Some(pd) = pd else { return skip("no port services run (translation off or no IOMMU)") };
    let Some(hz) = stage.tsc_hz else { return skip("no TSC calibration for the bounded waits") };
    let Some(site) = find_site(stage, pd) else {
        return skip(
            "no hot-plug downstream port on pcieport sharing its group with an edu below a root port with the AER service",
        );
    };
    if !claimed.contains(&site.group) {
        return skip("the owner could not take this group in demonstration 1 (see its claim)");
    }
    // The owner takes the group again (demonstration 5 gave it back).
    let e = site.edu;
    if stage.drivers.driver_name(e).is_some() {
        let _ = stage.drivers.unbind(stage.ctx, e);
    }
    stage.bind(6, e, VFIO_PCI, "ok");
    if !stage.claim(6, site.group, "ok") {
        return [Some(String::from("the owner could not claim the group (see the event)")), None];
    }
    let why6 = aer_demo(stage, pd, &site, hz);
    // A slot with a device below that reads empty or unpowered is not under
    // native control: QEMU 7.2 q35 leaves ports on pcie.0 to ACPI hot-plug
    // unless acpi-pci-hotplug-with-bridge-support=off (its _OSC then keeps
    // native hot-plug from the OS; Linux reads that in _OSC, which this
    // kernel cannot evaluate without an AML interpreter).
    let native = pd.port(site.port).and_then(|p| p.slot).is_some_and(|s| s.slot.state == pciehp::SlotState::On);
    let mut why7 = None;
    if native {
        match hotplug_demo(stage, pd, &site, hz) {
            Ok(()) => {}
            Err(e) if e == NO_ANSWER => why7 = Some(e),
            Err(e) => stage.event(7, String::from("hot-plug"), Some(site.group), "ok", String::from("error"), e),
        }
    } else {
        why7 = Some(format!(
            "the slot of {} reads empty or unpowered with a device below: not under native hot-plug control (QEMU's ACPI hot-plug; the default scenario turns it off with -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off)",
            topo_bdf(stage, site.port)
        ));
    }
    // Leave the group as demonstration 5 did: released, the edu on its
    // kernel driver.
    for i in stage.members(site.group) {
        stage.drivers.vfio_disable(stage.ctx, i);
    }
    stage.release(7, site.group);
    if stage.drivers.driver_name(e).is_some() {
        let _ = stage.drivers.unbind(stage.ctx, e);
    }
    stage.bind(7, e, EDU, "ok");
    [why6, why7]
}

fn topo_bdf(stage: &Stage, i: usize) -> Bdf {
    stage.ctx.topo.functions[i].bdf
}

/// Why a demonstration did not happen: the machine never answered the
/// request (no event at all within the bound).
const NO_ANSWER: &str = "no event within the bound after the request: the runner could not perform it (it needs the device's qdev id=; see the 'qmp:' lines on stderr) or no runner answers (QEMU started without run-qemu.sh)";

fn aer_demo(stage: &mut Stage, pd: &mut PortDrv, site: &Site, hz: u64) -> Option<String> {
    let topo = stage.ctx.topo;
    let (port, root) = (topo.functions[site.port].bdf, topo.functions[site.root].bdf);
    let before = stage.snapshot(site.group);
    // Armed: Root Error Status latches; the poll starts after the request.
    pd.arm();
    println!("QMP-REQUEST aer {port} POISON_TLP");
    let r = pd.poll(stage.ctx, hz, EVENT_MS, |e| matches!(e, ServiceEvent::Aer { port, .. } if *port == site.root));
    let (outcome, reason) = match r {
        Ok(ServiceEvent::Aer { error, source, detail, .. }) => {
            let src = source.map_or(String::from("?"), |s| format!("{s}"));
            let owner = source
                .and_then(|s| topo.find(s))
                .and_then(|i| stage.group_pos(i))
                .map_or(String::from("no group"), |g| {
                    format!("group {} owned by {}", stage.group_id(g), stage.owner_state(g))
                });
            let names = detail.as_ref().map(|d| d.names().join(", ")).unwrap_or_default();
            let summary = detail.as_ref().map(|d| d.summary()).unwrap_or_default();
            let line = format!(
                "{root} AER: {summary}, source {src} ({owner}): {names}; Root Error Status {:#x}, Error Source Id {:#x}; source status cleared",
                error.status, error.source
            );
            log::info!("{line}");
            pd.events.push(line.clone());
            let ok = source == Some(port) && detail.as_ref().is_some_and(|d| d.status & (1 << 12) != 0);
            (String::from(if ok { "reported" } else { "wrong source or error" }), line)
        }
        Ok(_) => (String::from("error"), String::from("unexpected event")),
        // The error reached the root port but its interrupt did not: the
        // demonstration ran and failed.
        Err(e) if e.starts_with(LOST_INTERRUPT) => (String::from("error"), e),
        Err(e) => {
            log::warn!("AER: {e} after the request for {port}");
            return Some(String::from(NO_ANSWER));
        }
    };
    stage.event(
        6,
        format!("AER error injected at {port} reported by the AER service of root port {root}"),
        Some(site.group),
        "reported",
        outcome,
        reason,
    );
    let unchanged = stage.snapshot(site.group) == before;
    stage.event(
        6,
        format!("group {} after the AER error", stage.group_id(site.group)),
        Some(site.group),
        "unchanged",
        String::from(if unchanged { "unchanged" } else { "changed" }),
        String::from("ownership, drivers and context entries compared"),
    );
    None
}

/// Wait for a slot event on `port` whose step `want` accepts.
fn wait_slot(
    stage: &mut Stage,
    pd: &mut PortDrv,
    port: usize,
    hz: u64,
    want: impl Fn(Step) -> bool,
) -> Result<(u16, Step), String> {
    match pd.poll(
        stage.ctx,
        hz,
        EVENT_MS,
        |e| matches!(e, ServiceEvent::Slot { port: p, step, .. } if *p == port && want(*step)),
    )? {
        ServiceEvent::Slot { events, step, .. } => Ok((events, step)),
        _ => Err(String::from("unexpected event")),
    }
}

/// Run a Slot Control command sequence of `pci::pciehp` on `port`'s slot.
fn commands(
    stage: &mut Stage,
    pd: &PortDrv,
    port: usize,
    hz: u64,
    seq: impl FnOnce(pciehp::SlotCap) -> Vec<(u16, u16)>,
) -> Result<(), String> {
    let cap = pd.port(port).and_then(|p| p.slot).ok_or("no slot")?.cap;
    for (cmd, mask) in seq(cap) {
        pd.slot_command(stage.ctx, port, cmd, mask, hz)?;
    }
    Ok(())
}

fn set_state(pd: &mut PortDrv, port: usize, f: impl FnOnce(&mut pciehp::Slot)) {
    if let Some(hp) = pd.port_mut(port).and_then(|p| p.slot.as_mut()) {
        f(&mut hp.slot);
    }
}

fn vendor(stage: &mut Stage, bdf: Bdf) -> u16 {
    stage.ctx.ecam.read16(bdf, PCI_VENDOR_ID)
}

fn hotplug_demo(stage: &mut Stage, pd: &mut PortDrv, site: &Site, hz: u64) -> Result<(), String> {
    let topo = stage.ctx.topo;
    let (port, e) = (site.port, site.edu);
    let (pbdf, ebdf) = (topo.functions[port].bdf, topo.functions[e].bdf);
    let gid = stage.group_id(site.group);

    // The owner uses the group as VFIO's container does: its own domain
    // attached to every member, so the edu has a present context entry
    // that the removal must take out (a blocked group has none to check).
    let d = stage.ctx.vtd.create_owner_domain(gid, e)?;
    let tag = u32::from(stage.ctx.vtd.domains[d].domain.id().0);
    if let Err(x) = stage.drivers.model.attach_domain(site.group, tag) {
        let _ = stage.ctx.vtd.destroy_owner_domain(d);
        return Err(format!("attach of the owner's domain refused: {}", x.errno()));
    }
    for i in stage.members(site.group) {
        if let Err(x) = stage.ctx.vtd.attach_to(topo, i, d) {
            owner_detach(stage, site.group, d);
            return Err(x);
        }
    }
    let present = |stage: &Stage| stage.ctx.vtd.hardware_context(topo, e).iter().filter(|(_, c)| c.present()).count();
    let before = present(stage);

    // Hot-remove: the button (device_del), pciehp_disable_slot.
    pd.arm();
    println!("QMP-REQUEST device_del {ebdf}");
    let (events, step) = match wait_slot(stage, pd, port, hz, |s| matches!(s, Step::BlinkOff | Step::Disable)) {
        Ok(v) => v,
        Err(e) => {
            owner_detach(stage, site.group, d);
            // A lost interrupt fails the demonstration; silence skips it.
            return Err(if e.starts_with(LOST_INTERRUPT) { e } else { String::from(NO_ANSWER) });
        }
    };
    if step == Step::BlinkOff {
        commands(stage, pd, port, hz, pciehp::button_blink)?;
        let mut next = Step::Nothing;
        set_state(pd, port, |s| next = s.button_work());
        if next != Step::Disable {
            return Err(format!("button work gave {next:?}"));
        }
    }
    // pciehp_unconfigure_device: the driver goes, then the device leaves
    // its group and every VT-d table.
    let driver = stage.drivers.driver_name(e).unwrap_or("none");
    stage.drivers.unbind(stage.ctx, e)?;
    stage.ctx.vtd.detach(topo, e, &[])?;
    stage.drivers.removed[e] = true;
    let context = present(stage);
    let sids: Vec<_> = stage.ctx.vtd.hardware_context(topo, e).into_iter().map(|(sid, _)| sid).collect();
    let in_domain = stage.ctx.vtd.domains[d].attached.iter().any(|s| sids.contains(s));
    commands(stage, pd, port, hz, pciehp::power_off_sequence)?;
    set_state(pd, port, |s| s.disabled());
    // QEMU removes the device once the slot is off with its power indicator off.
    let gone_by = Deadline::after_ms(hz, 2000);
    while vendor(stage, ebdf) != 0xffff && !gone_by.passed() {
        wait_10ms(hz);
    }
    let gone = vendor(stage, ebdf) == 0xffff;
    let in_group = stage.members(site.group).contains(&e);
    let ok = gone && !in_group && before > 0 && context == 0 && !in_domain;
    stage.event(
        7,
        format!("hot-remove of {ebdf} by pciehp on {pbdf}"),
        Some(site.group),
        "removed",
        String::from(if ok { "removed" } else { "not removed" }),
        format!(
            "slot events {}; {driver} unbound; left group {gid}: {}; {before} context entr{} to the owner's domain before, {context} context entr{} left{}; slot powered off, power indicator off; device {}",
            pciehp::event_names(events),
            if in_group { "NO" } else { "yes" },
            if before == 1 { "y" } else { "ies" },
            if context == 1 { "y" } else { "ies" },
            if in_domain { ", STILL in the owner's domain" } else { "" },
            if gone { "gone (vendor id reads 0xffff)" } else { "STILL THERE" }
        ),
    );

    // The owner detaches its domain: the group is blocked again, so the
    // device added next joins it with no domain (Linux 6.1
    // iommu_group_add_device attaches a new member to group->domain, here
    // the blocking domain; iommu_probe_device gives it no default domain).
    owner_detach(stage, site.group, d);

    // Hot-add: presence and the button (device_add), pciehp_enable_slot.
    let t0 = crate::arch::rdtsc();
    pd.arm();
    println!("QMP-REQUEST device_add edu {pbdf}");
    let (events, _) = wait_slot(stage, pd, port, hz, |s| s == Step::Enable)?;
    if let Err(why) = commands(stage, pd, port, hz, pciehp::power_on_sequence) {
        set_state(pd, port, |s| s.enabled(false));
        return Err(why);
    }
    let configured = (|| {
        let there_by = Deadline::after_ms(hz, 1000);
        while vendor(stage, ebdf) == 0xffff && !there_by.passed() {
            wait_10ms(hz);
        }
        if vendor(stage, ebdf) == 0xffff {
            return Err(format!("no device answered at {ebdf} within 1 s of power on"));
        }
        // pciehp_configure_device: scan, then the same grouping rules as boot.
        let joined = rescan_and_group(stage, e)?;
        let bar = assign_bar(stage, port, ebdf)?;
        Ok((joined, bar))
    })();
    let (joined, bar) = match configured {
        Ok(v) => v,
        Err(why) => {
            // board_added's err_exit: set_slot_off (power off, power
            // indicator off, attention on); the slot is off again.
            let off = commands(stage, pd, port, hz, pciehp::set_slot_off_sequence);
            set_state(pd, port, |s| s.enabled(false));
            return Err(match off {
                Ok(()) => format!("{why}; slot turned off (power off, attention indicator on)"),
                Err(e) => format!("{why}; turning the slot off failed: {e}"),
            });
        }
    };
    stage.drivers.removed[e] = false;
    commands(stage, pd, port, hz, pciehp::configured_sequence)?;
    set_state(pd, port, |s| s.enabled(true));
    let context = stage.ctx.vtd.hardware_context(topo, e).iter().filter(|(_, c)| c.present()).count();
    let added_us = cycles_to_us(crate::arch::rdtsc() - t0, hz);
    stage.event(
        7,
        format!("hot-add of an edu at {ebdf} by pciehp on {pbdf}"),
        Some(site.group),
        "joined, no domain",
        String::from(if context == 0 { "joined, no domain" } else { "joined with a domain" }),
        format!(
            "slot events {}; powered on; {joined}; BAR0 {bar:#x} in the port's window; {context} context entr{}; {added_us} us from the request",
            pciehp::event_names(events),
            if context == 1 { "y" } else { "ies" }
        ),
    );
    pd.log.push(format!("hot-add: request to device enumerated and grouped: {added_us} us"));

    // A kernel DMA driver is refused; the owner takes the device.
    stage.bind(7, e, EDU, "EBUSY");
    let t1 = crate::arch::rdtsc();
    stage.bind(7, e, VFIO_PCI, "ok");
    let bound_us = added_us + cycles_to_us(crate::arch::rdtsc() - t1, hz);
    pd.log.push(format!("hot-add: request to device bound (vfio-pci, the owner's driver): about {bound_us} us"));
    // Its DMA faults: nothing is attached to it (the owner has attached no
    // domain to it yet, and the kernel gave it none). The owner drives it
    // through vfio-pci, whose MSI setup signals the completion.
    let edu = Edu::probe(stage.ctx.ecam, ebdf).map_err(|x| format!("{x}"))?;
    stage.ctx.vtd.enable_bus_master(stage.ctx.ecam, topo, e)?;
    let faults = stage.dma(&edu, Direction::FromDevice, NO_DOMAIN_IOVA)?;
    let last = stage.ctx.vtd.faults.last().map(|f| format!("{}", f.record)).unwrap_or_default();
    let cmd = stage.ctx.ecam.read16(ebdf, PCI_COMMAND);
    stage.ctx.ecam.write16(ebdf, PCI_COMMAND, cmd & !PCI_COMMAND_MASTER);
    stage.event(
        7,
        format!("DMA from the hot-added {ebdf} (no domain)"),
        Some(site.group),
        "fault",
        String::from(if faults == 1 { "fault" } else { "no fault" }),
        format!("{faults} fault(s) {last}"),
    );
    pd.hotplug_to_bound_us = Some(bound_us);
    Ok(())
}

/// The owner detaches its domain `d` from group `g` (`iommu_detach_group`:
/// back to the blocking domain while owned) and frees it.
fn owner_detach(stage: &mut Stage, g: usize, d: usize) {
    stage.drivers.model.detach_domain(g);
    if let Err(e) = stage.drivers.set_core_domain(stage.ctx, g) {
        log::warn!("demonstration 7: blocking group {} again: {e}", stage.group_id(g));
    }
    if let Err(e) = stage.ctx.vtd.destroy_owner_domain(d) {
        log::warn!("demonstration 7: freeing the owner's domain: {e}");
    }
}

/// `pci_scan_slot` + `pci_device_add` + `iommu_probe_device`: enumerate the
/// segment again and form its groups with the boot's code; the new
/// function must sit where the removed one did (this kernel's tables are
/// indexed by the boot topology) and its group must be the owned group.
fn rescan_and_group(stage: &mut Stage, e: usize) -> Result<String, String> {
    let topo = stage.ctx.topo;
    let mut roots: Vec<u8> = Vec::new();
    for f in topo.functions.iter().filter(|f| f.parent.is_none()) {
        if !roots.contains(&f.bdf.bus) {
            roots.push(f.bdf.bus);
        }
    }
    let seg = topo.functions[e].bdf.segment;
    let fresh = pci::enumerate(stage.ctx.ecam, seg, &roots, 0..=255);
    let bdf = topo.functions[e].bdf;
    let Some(n) = fresh.find(bdf) else { return Err(format!("the rescan did not find {bdf}")) };
    let f = &fresh.functions[n];
    if n != e || fresh.functions.len() != topo.functions.len() || (f.vendor, f.device) != (EDU_VENDOR, EDU_DEVICE) {
        return Err(format!(
            "{bdf} came back as {:04x}:{:04x} at position {n} of {}: only the same kind of device in the same place is supported",
            f.vendor,
            f.device,
            fresh.functions.len()
        ));
    }
    let groups = iommu::group::group_all(stage.ctx.ecam, &fresh);
    let new_members: Vec<Bdf> = groups
        .group_of(n)
        .map(|g| g.members.iter().map(|m| fresh.functions[m.function].bdf).collect())
        .unwrap_or_default();
    let g = stage.group_pos(e).ok_or("no group")?;
    let mut old_members: Vec<Bdf> =
        stage.ctx.groups.groups[g].members.iter().map(|m| topo.functions[m.function].bdf).collect();
    let mut sorted = new_members.clone();
    sorted.sort();
    old_members.sort();
    if sorted != old_members {
        return Err(format!("Linux's rules put {bdf} with {sorted:?}, not the owned group {old_members:?}"));
    }
    let reason = groups
        .group_of(n)
        .and_then(|g| g.members.iter().find(|m| m.function == n))
        .map(|m| format!("{}", m.reason))
        .unwrap_or_default();
    Ok(format!("joined group {} (owner {}) by Linux's rules: {reason}", stage.group_id(g), stage.owner_state(g)))
}

/// Assign BAR0 of the new function inside the memory window firmware left
/// on the port (`pci_assign_unassigned_bridge_resources` in small: the
/// window's base, aligned to the BAR's size).
fn assign_bar(stage: &mut Stage, port: usize, bdf: Bdf) -> Result<u64, String> {
    let pbdf = stage.ctx.topo.functions[port].bdf;
    let ecam = &mut *stage.ctx.ecam;
    let base = u64::from(ecam.read16(pbdf, PCI_MEMORY_BASE) & 0xfff0) << 16;
    let limit = (u64::from(ecam.read16(pbdf, PCI_MEMORY_LIMIT) & 0xfff0) << 16) | 0xf_ffff;
    let cmd = ecam.read16(bdf, PCI_COMMAND);
    ecam.write16(bdf, PCI_COMMAND, cmd & !PCI_COMMAND_MEMORY);
    ecam.write32(bdf, PCI_BASE_ADDRESS_0, 0xffff_ffff);
    let probe = ecam.read32(bdf, PCI_BASE_ADDRESS_0);
    if probe & 1 != 0 || probe & 0x6 != 0 {
        return Err(format!("{bdf} BAR0 {probe:#x} is not a 32-bit memory BAR"));
    }
    let size = u64::from(!(probe & !0xf)) + 1;
    let at = base.next_multiple_of(size);
    if limit <= base || at + size - 1 > limit {
        return Err(format!("{bdf} BAR0 of {size:#x} bytes does not fit the window {base:#x}-{limit:#x} of {pbdf}"));
    }
    ecam.write32(bdf, PCI_BASE_ADDRESS_0, at as u32);
    Ok(at)
}
