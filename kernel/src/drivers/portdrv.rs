//! The PCIe port-service driver at work: what Linux 6.1's
//! `pcie_port_device_register` does once `pcieport` is bound, and the
//! services it starts. The register rules are host-tested in `pci`
//! (`port_services::irq_plan`, `pciehp`, `aer`); this module does the
//! writes and the waiting.
//!
//! - enable the device (`pci_enable_device`: memory and I/O decoding) and
//!   `pci_set_master` through the one bus-master gate
//!   (`Vtd::enable_bus_master`): a port's only upstream writes are its own
//!   MSI messages, which QEMU drops unless the port masters;
//! - vectors as `pcie_init_service_irqs` chooses them (MSI-X, then MSI,
//!   then INTx; polling, with hot-plug alone, when there is none);
//! - pciehp on hot-plug capable root and downstream ports (`pcie_init`:
//!   clear the events firmware left, `pcie_enable_notification`);
//! - AER on root ports and RCECs (`aer_enable_rootport`, with reporting
//!   enabled on the ports below);
//! - PME on root ports (`pcie_pme_probe`: clear PME status, enable PMEIE),
//!   DPC and bandwidth notification where listed. QEMU 7.2 raises none of
//!   these three (PMEIE is read-only, no device has DPC, LBMS/LABS never
//!   set); the report says so.
//!
//! Vectors are programmed through `drivers::irq` (a remappable-format
//! message through an IRTE when interrupt remapping is on), as Linux does
//! it: allocate the most the port offers, read the message numbers the
//! services use, reallocate exactly max + 1. The services then run from
//! their interrupts: [`PortDrv::arm`] snapshots the vectors' counters
//! before a request, [`PortDrv::poll`] waits for one of them (TSC
//! deadline) and runs the handlers' work (`pciehp_isr`/`pciehp_ist`,
//! `aer_irq`/`aer_isr`). Without interrupts (the stack did not come up, a
//! port with INTx only: this kernel has no IOAPIC driver, or with
//! neither) the same work runs in poll mode every 10 ms, and the report
//! says so.

use super::irq::{self, IrqSetup};
use super::{Ctx, Drivers, PCIEPORT};
use crate::arch::interrupts;
use crate::hw::clock::Deadline;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pci::aer::{self, DeviceError, RootError};
use pci::caps::PcieType;
use pci::pciehp::{self, Slot, SlotCap, SlotRegs, Step};
use pci::port_services::{IrqMode, IrqPlan, PortIrqFacts, PortServices, irq_plan};
use pci::regs::*;
use pci::{Bdf, ConfigSpace};

/// Tries of 10 ms for a Slot Control command (Linux `pcie_poll_cmd`: 1 s).
const CMD_TRIES: u32 = 100;

/// Root Control: PME Interrupt Enable; Root Status: PME Status (W1C).
const PCI_EXP_RTCTL_PMEIE: u16 = 0x0008;
const PCI_EXP_RTSTA: u16 = 0x20;
const PCI_EXP_RTSTA_PME: u32 = 0x0001_0000;
/// Link Control: bandwidth management and autonomous bandwidth interrupt
/// enables; Link Status: the two change bits (W1C).
const PCI_EXP_LNKCTL: u16 = 0x10;
const PCI_EXP_LNKCTL_LBMIE: u16 = 0x0400;
const PCI_EXP_LNKCTL_LABIE: u16 = 0x0800;
const PCI_EXP_LNKSTA: u16 = 0x12;
const PCI_EXP_LNKSTA_LBMS: u16 = 0x4000;
const PCI_EXP_LNKSTA_LABS: u16 = 0x8000;

/// A hot-plug slot served by pciehp.
#[derive(Clone, Copy, Debug)]
pub struct HotplugSlot {
    pub regs: SlotRegs,
    pub cap: SlotCap,
    pub slot: Slot,
}

/// One port whose services run.
#[derive(Clone, Debug)]
pub struct Port {
    pub index: usize,
    pub bdf: Bdf,
    pub plan: IrqPlan,
    pub slot: Option<HotplugSlot>,
    /// The AER capability, when the AER service driver serves this port
    /// (root ports and RCECs: `aer_probe`).
    pub aer_root: Option<u16>,
    /// The MSI/MSI-X vectors, when the services run from interrupts.
    pub irq: Option<IrqSetup>,
}

impl Port {
    /// The CPU vectors the port's services use (hot-plug/PME/bwnotif, AER).
    pub fn vectors(&self) -> Vec<u8> {
        let Some(s) = &self.irq else { return Vec::new() };
        let mut v: Vec<u8> = [self.plan.pcie_vector, self.plan.aer_vector]
            .iter()
            .filter_map(|&n| s.vectors.get(usize::from(n)).copied())
            .collect();
        v.dedup();
        v
    }
}

/// The handler of a port-service vector: the interrupt layer counts it and
/// sends the EOI; the work (reading and clearing status) runs in
/// [`PortDrv::poll`], as Linux's threaded handlers do it.
fn port_irq(_vector: u8) {}

/// Something a service saw.
#[derive(Clone, Debug)]
pub enum ServiceEvent {
    /// pciehp: Slot Status events and what the state machine asks next.
    Slot { port: usize, events: u16, step: Step },
    /// AER: an error message received by a root port, its source's status.
    Aer { port: usize, error: RootError, source: Option<Bdf>, detail: Option<DeviceError> },
}

/// The start of a wait's error when the event was latched in the port but
/// its interrupt never arrived (found by the last look after the deadline).
pub const LOST_INTERRUPT: &str = "event latched in the port but its interrupt never arrived";

/// The running port services.
#[derive(Default)]
pub struct PortDrv {
    pub ports: Vec<Port>,
    /// What registration did, one line per port and service, for the report.
    pub log: Vec<String>,
    /// Every event the services handled, as log lines.
    pub events: Vec<String>,
    /// Demonstration 7: from the hot-add request to the device bound.
    pub hotplug_to_bound_us: Option<u64>,
    /// Counters of every port vector when the current wait was armed.
    armed: Vec<(u8, u64)>,
    /// Interrupts that woke a wait, and waits that ran by polling.
    pub woken_by_irq: u64,
    pub polled_waits: u64,
}

fn facts(ecam: &mut dyn ConfigSpace, f: &pci::Function, aer: Option<u16>, dpc: Option<u16>) -> PortIrqFacts {
    let bdf = f.bdf;
    let msix_entries = f.caps.msix.map(|c| (ecam.read16(bdf, c + 2) & 0x07ff) + 1);
    let msi_vectors = f.caps.msi.map(|c| 1u8 << ((ecam.read16(bdf, c + 2) & 0x000e) >> 1).min(5));
    let pcie = f.caps.pcie.map(|p| p.flags).unwrap_or(0);
    PortIrqFacts {
        msix_entries,
        msi_vectors,
        intx: ecam.read8(bdf, PCI_INTERRUPT_PIN) != 0,
        pcie_message: ((pcie & PCI_EXP_FLAGS_IRQ) >> 9) as u8,
        aer_message: aer.map_or(0, |a| RootError::message_number(ecam.read32(bdf, a + PCI_ERR_ROOT_STATUS))),
        dpc_message: dpc.map_or(0, |d| (ecam.read16(bdf, d + PCI_EXP_DPC_CAP) & PCI_EXP_DPC_IRQ) as u8),
    }
}

/// `pcie_init_service_irqs`: allocate the most MSI-X (then MSI) vectors
/// the port offers, read the message numbers with them enabled (ioh3420
/// moves AER to message 1 only once both its MSI vectors are on), and
/// reallocate exactly max + 1. Returns the plan, the vectors when the
/// services run from interrupts, and how they run.
fn vectors(ctx: &mut Ctx, index: usize, services: PortServices, use_irq: bool) -> (IrqPlan, Option<IrqSetup>, String) {
    let f = &ctx.topo.functions[index];
    let (aer, dpc) = (f.caps.aer, f.caps.dpc);
    let first = facts(ctx.ecam, f, aer, dpc);
    let polled = |why: &str| format!("services polled with a TSC deadline ({why})");
    if !interrupts::available() {
        return (irq_plan(services, first), None, polled("interrupts unavailable"));
    }
    if !use_irq {
        return (irq_plan(services, first), None, polled("port-irq=off"));
    }
    let enable = |ctx: &mut Ctx, mode: IrqMode, n: u32| match mode {
        IrqMode::MsiX => irq::enable_msix(ctx, index, n, "pcieport", port_irq),
        _ => irq::enable_msi(ctx, index, n, "pcieport", port_irq),
    };
    let (mode, max) = match (first.msix_entries, first.msi_vectors) {
        (Some(n), _) if n > 0 => (IrqMode::MsiX, u32::from(n).min(32)),
        (_, Some(n)) if n > 0 => (IrqMode::Msi, u32::from(n).min(32)),
        _ => {
            let plan = irq_plan(services, first);
            let why =
                if plan.mode == IrqMode::Intx { "INTx only: no IOAPIC driver here" } else { "no MSI, MSI-X or INTx" };
            return (plan, None, polled(why));
        }
    };
    let setup = match enable(ctx, mode, max) {
        Ok(s) => s,
        Err(e) => return (irq_plan(services, first), None, polled(&format!("MSI setup failed: {e}"))),
    };
    let f = &ctx.topo.functions[index];
    let plan = irq_plan(services, facts(ctx.ecam, f, aer, dpc));
    if !matches!(plan.mode, IrqMode::MsiX | IrqMode::Msi) {
        irq::disable(ctx, setup);
        return (plan, None, polled("the message numbers do not fit the vectors"));
    }
    // Reallocate exactly what the message numbers need (MSI: a power of two).
    let need = match mode {
        IrqMode::MsiX => u32::from(plan.vectors),
        _ => u32::from(plan.vectors).next_power_of_two(),
    };
    let setup = if setup.vectors.len() as u32 != need {
        irq::disable(ctx, setup);
        match enable(ctx, mode, u32::from(plan.vectors)) {
            Ok(s) => s,
            Err(e) => return (plan, None, polled(&format!("MSI reallocation failed: {e}"))),
        }
    } else {
        setup
    };
    let how = format!(
        "CPU vector{} {:?}, {}",
        if setup.vectors.len() == 1 { "" } else { "s" },
        setup.vectors,
        if setup.routes.iter().any(|r| r.irte.is_some()) { "remapped through IRTEs" } else { "compatibility format" }
    );
    (plan, Some(setup), how)
}

/// Set `bits` in a 16-bit register, writing only when something changes.
fn set_bits16(ecam: &mut dyn ConfigSpace, bdf: Bdf, reg: u16, bits: u16) {
    let v = ecam.read16(bdf, reg);
    if v != u16::MAX && v & bits != bits {
        ecam.write16(bdf, reg, v | bits);
    }
}

/// Wait about 10 ms (a TSC deadline; no timer interrupt).
pub fn wait_10ms(hz: u64) {
    let d = Deadline::after_ms(hz, 10);
    while !d.passed() {
        core::hint::spin_loop();
    }
}

impl PortDrv {
    /// `pcie_port_device_register` for every function bound to pcieport.
    /// Runs once translation is on (the bus-master gate requires it).
    /// `use_irq` false (`port-irq=off`) keeps every port in poll mode.
    pub fn register(ctx: &mut Ctx, drivers: &Drivers, hz: u64, use_irq: bool) -> Self {
        let mut me = Self::default();
        let topo = ctx.topo;
        for index in 0..topo.functions.len() {
            if drivers.driver_name(index) != Some(PCIEPORT) {
                continue;
            }
            let Some(services) = drivers.services[index] else { continue };
            let f = &topo.functions[index];
            let bdf = f.bdf;
            if services.is_empty() {
                me.log.push(format!("{bdf}: no services"));
                continue;
            }
            let Some(pcie) = f.caps.pcie.map(|p| p.offset) else { continue };
            // pci_enable_device: a bridge decodes memory and I/O for its
            // windows (firmware has normally done it). Every write of a
            // bridge's Command register makes QEMU re-render every address
            // space, so only a change is written.
            set_bits16(ctx.ecam, bdf, PCI_COMMAND, PCI_COMMAND_MEMORY | 0x1);
            // pci_set_master, through the gate.
            let master = match ctx.vtd.enable_bus_master(ctx.ecam, topo, index) {
                Ok(()) => String::from("bus master on"),
                Err(e) => format!("bus master refused: {e}"),
            };
            let (plan, irq, how) = vectors(ctx, index, services, use_irq);
            me.log.push(format!(
                "{bdf}: services {} ({}); vectors: {} x{} (hot-plug/PME/bwnotif message {}, AER message {}): {how}",
                plan.services, master, plan.mode, plan.vectors, plan.pcie_vector, plan.aer_vector
            ));
            let poll_mode = irq.is_none();
            let mut port = Port { index, bdf, plan, slot: None, aer_root: None, irq };
            if plan.services.contains(PortServices::HP) {
                let regs = SlotRegs { port: bdf, pcie };
                let cap = regs.cap(ctx.ecam);
                // pcie_init: clear the events firmware left.
                ctx.ecam.write16(bdf, pcie + PCI_EXP_SLTSTA, pciehp::SLOT_EVENTS | PCI_EXP_SLTSTA_MRLSC);
                let (cmd, mask) = pciehp::enable_notification(cap, poll_mode);
                let r = regs.command(ctx.ecam, cmd, mask, CMD_TRIES, || wait_10ms(hz));
                let slot = Slot::new(regs.present(ctx.ecam), regs.powered(ctx.ecam));
                me.log.push(format!(
                    "{bdf}: pciehp: {cap}; notification {} ({}: ABPE {}, PDCE {}); slot {:?}",
                    match r {
                        Ok(v) => format!("Slot Control {v:#06x}"),
                        Err(e) => format!("command timed out (Slot Control {:#06x})", e.sltctl),
                    },
                    if poll_mode { "poll mode" } else { "HPIE and CCIE on" },
                    if cmd & PCI_EXP_SLTCTL_ABPE != 0 { "on" } else { "off" },
                    if cmd & PCI_EXP_SLTCTL_PDCE != 0 { "on" } else { "off" },
                    slot.state
                ));
                port.slot = Some(HotplugSlot { regs, cap, slot });
            }
            if plan.services.contains(PortServices::AER)
                && matches!(f.pcie_type, Some(PcieType::RootPort | PcieType::RcEc))
                && let Some(a) = f.caps.aer
            {
                me.enable_aer(ctx, index, pcie, a);
                port.aer_root = Some(a);
            } else if plan.services.contains(PortServices::AER) {
                me.log.push(format!("{bdf}: AER listed; the AER driver serves root ports and RCECs only (aer_probe)"));
            }
            if plan.services.contains(PortServices::PME) {
                let rtctl = ctx.ecam.read16(bdf, pcie + PCI_EXP_RTCTL);
                ctx.ecam.write16(bdf, pcie + PCI_EXP_RTCTL, rtctl & !PCI_EXP_RTCTL_PMEIE);
                ctx.ecam.write32(bdf, pcie + PCI_EXP_RTSTA, PCI_EXP_RTSTA_PME);
                ctx.ecam.write16(bdf, pcie + PCI_EXP_RTCTL, rtctl | PCI_EXP_RTCTL_PMEIE);
                let back = ctx.ecam.read16(bdf, pcie + PCI_EXP_RTCTL) & PCI_EXP_RTCTL_PMEIE != 0;
                me.log.push(format!(
                    "{bdf}: PME: status cleared, PMEIE set (reads back {}){}",
                    if back { "set" } else { "clear" },
                    if back { "" } else { ": QEMU 7.2 does not emulate PME (PMEIE is read-only), no PME can arrive" }
                ));
            }
            if plan.services.contains(PortServices::DPC) {
                me.log.push(format!("{bdf}: DPC listed (no QEMU 7.2 device has the capability)"));
            }
            if plan.services.contains(PortServices::BWNOTIF) {
                ctx.ecam.write16(bdf, pcie + PCI_EXP_LNKSTA, PCI_EXP_LNKSTA_LBMS | PCI_EXP_LNKSTA_LABS);
                let ctl = ctx.ecam.read16(bdf, pcie + PCI_EXP_LNKCTL);
                ctx.ecam.write16(bdf, pcie + PCI_EXP_LNKCTL, ctl | PCI_EXP_LNKCTL_LBMIE | PCI_EXP_LNKCTL_LABIE);
                me.log.push(format!("{bdf}: bandwidth notification enabled (QEMU 7.2 never sets LBMS/LABS)"));
            }
            me.ports.push(port);
        }
        me
    }

    /// `aer_enable_rootport`, plus the SERR# forwarding QEMU's model needs
    /// to carry an error message up to the root port: Bridge Control SERR#
    /// on every bridge (Linux `pci_configure_serr` does that at
    /// enumeration) and Command SERR# on the ports (QEMU's
    /// `pcie_aer_msg_alldev` drops a message from a function without it;
    /// Linux sets none, so under Linux on QEMU an injected error stays local).
    fn enable_aer(&mut self, ctx: &mut Ctx, root: usize, pcie: u16, aer_off: u16) {
        let topo = ctx.topo;
        let below: Vec<usize> = (0..topo.functions.len())
            .filter(|&i| {
                i == root
                    || core::iter::successors(topo.functions[i].parent, |&p| topo.functions[p].parent)
                        .any(|p| p == root)
            })
            .collect();
        let mut ports = 0;
        for &i in &below {
            let f = &topo.functions[i];
            if !matches!(f.pcie_type, Some(PcieType::RootPort | PcieType::Upstream | PcieType::Downstream)) {
                continue;
            }
            set_bits16(ctx.ecam, f.bdf, PCI_BRIDGE_CONTROL, PCI_BRIDGE_CTL_SERR);
            set_bits16(ctx.ecam, f.bdf, PCI_COMMAND, PCI_COMMAND_SERR);
            if i != root
                && aer::reports_errors(f.pcie_type, f.caps.aer)
                && let Some(p) = f.caps.pcie
            {
                aer::enable_error_reporting(ctx.ecam, f.bdf, p.offset);
                ports += 1;
            }
        }
        aer::enable_rootport(ctx.ecam, topo.functions[root].bdf, pcie, aer_off);
        self.log.push(format!(
            "{}: AER: aer_enable_rootport (Root Error Command {:#x}), error reporting on {ports} port(s) below, SERR# forwarding on",
            topo.functions[root].bdf,
            ctx.ecam.read32(topo.functions[root].bdf, aer_off + PCI_ERR_ROOT_COMMAND)
        ));
    }

    pub fn port(&self, index: usize) -> Option<&Port> {
        self.ports.iter().find(|p| p.index == index)
    }

    pub fn port_mut(&mut self, index: usize) -> Option<&mut Port> {
        self.ports.iter_mut().find(|p| p.index == index)
    }

    /// One pass over every service (what an interrupt would trigger):
    /// pciehp reads and clears slot events and runs its state machine;
    /// AER takes Root Error Status and decodes the source.
    pub fn poll_once(&mut self, ctx: &mut Ctx) -> Vec<ServiceEvent> {
        let mut out = Vec::new();
        for p in &mut self.ports {
            if let Some(hp) = p.slot.as_mut()
                && let Some(events) = hp.regs.read_events(ctx.ecam)
            {
                let ev = events & !PCI_EXP_SLTSTA_CC;
                if ev != 0 {
                    let present = hp.regs.present(ctx.ecam);
                    let step = hp.slot.on_events(ev, present);
                    out.push(ServiceEvent::Slot { port: p.index, events: ev, step });
                }
            }
            if let Some(a) = p.aer_root
                && let Some(error) = RootError::take(ctx.ecam, p.bdf, a)
            {
                let seg = p.bdf.segment;
                let source = error.uncorrectable_source(seg).or(error.correctable_source(seg));
                let severity = if error.status & aer::ROOT_UNCOR_RCV != 0 {
                    error.uncorrectable_severity()
                } else {
                    aer::Severity::Corrected
                };
                let detail = source.and_then(|s| {
                    let i = ctx.topo.find(s)?;
                    let off = ctx.topo.functions[i].caps.aer?;
                    let d = DeviceError::read(ctx.ecam, s, off, severity)?;
                    d.clear(ctx.ecam, s, off);
                    Some(d)
                });
                out.push(ServiceEvent::Aer { port: p.index, error, source, detail });
            }
        }
        out
    }

    /// `test=lost-port-irq`: clear Hot-Plug Interrupt Enable on every
    /// slot, so that slot events latch in Slot Status and no MSI is sent -
    /// what a lost interrupt looks like to the waits.
    pub fn mute_slot_interrupts(&self, ctx: &mut Ctx, hz: u64) {
        for p in &self.ports {
            if let Some(hp) = p.slot {
                let _ = self.slot_command(ctx, p.index, 0, PCI_EXP_SLTCTL_HPIE, hz);
                log::info!("self-test lost-port-irq: {} Slot Control HPIE cleared", hp.regs.port);
            }
        }
    }

    /// Arm the next wait: snapshot every port vector's counter, before the
    /// request that will raise the interrupt is made.
    pub fn arm(&mut self) {
        self.armed = self.ports.iter().flat_map(|p| p.vectors()).map(|v| (v, interrupts::count(v))).collect();
    }

    /// Wait (armed by [`Self::arm`]) until `done` accepts an event or `ms`
    /// pass. With interrupts: each time one of the ports' vectors fires,
    /// run the services' work; every port without vectors is polled every
    /// 10 ms as well (poll mode).
    pub fn poll(
        &mut self,
        ctx: &mut Ctx,
        hz: u64,
        ms: u64,
        mut done: impl FnMut(&ServiceEvent) -> bool,
    ) -> Result<ServiceEvent, String> {
        let deadline = Deadline::after_ms(hz, ms);
        let all_irq = !self.armed.is_empty() && self.ports.iter().all(|p| p.irq.is_some());
        if all_irq {
            loop {
                let fired = |armed: &[(u8, u64)]| armed.iter().any(|&(v, seen)| interrupts::count(v) > seen);
                if !interrupts::wait_until(deadline, || fired(&self.armed)) {
                    // A last look: an event the port latched while its
                    // interrupt never came is a lost interrupt, not a
                    // machine that did nothing.
                    let latched = self.poll_once(ctx);
                    if latched.is_empty() {
                        return Err(format!("no service interrupt within {ms} ms"));
                    }
                    for e in &latched {
                        self.events.push(describe(ctx, e));
                    }
                    return Err(format!("{LOST_INTERRUPT} within {ms} ms"));
                }
                self.woken_by_irq += 1;
                self.arm();
                let mut found = None;
                for e in self.poll_once(ctx) {
                    self.events.push(describe(ctx, &e));
                    if found.is_none() && done(&e) {
                        found = Some(e);
                    }
                }
                if let Some(e) = found {
                    return Ok(e);
                }
            }
        }
        self.polled_waits += 1;
        loop {
            let mut found = None;
            for e in self.poll_once(ctx) {
                self.events.push(describe(ctx, &e));
                if found.is_none() && done(&e) {
                    found = Some(e);
                }
            }
            if let Some(e) = found {
                return Ok(e);
            }
            if deadline.passed() {
                return Err(format!("no service event within {ms} ms"));
            }
            wait_10ms(hz);
        }
    }

    /// A Slot Control command on `port`'s slot, waiting for completion
    /// (polled: the completion interrupt also arrives and is counted).
    pub fn slot_command(&self, ctx: &mut Ctx, port: usize, cmd: u16, mask: u16, hz: u64) -> Result<u16, String> {
        let hp = self.port(port).and_then(|p| p.slot).ok_or("not a hot-plug port")?;
        if mask == 0 {
            return Ok(hp.regs.control(ctx.ecam));
        }
        hp.regs
            .command(ctx.ecam, cmd, mask, CMD_TRIES, || wait_10ms(hz))
            .map_err(|e| format!("hot-plug command timed out (Slot Control {:#06x})", e.sltctl))
    }
}

/// One line for the report.
fn describe(ctx: &Ctx, e: &ServiceEvent) -> String {
    match e {
        ServiceEvent::Slot { port, events, step } => format!(
            "{} pciehp: slot events {} -> {step:?}",
            ctx.topo.functions[*port].bdf,
            pciehp::event_names(*events)
        ),
        ServiceEvent::Aer { port, error, source, .. } => format!(
            "{} AER: Root Error Status {:#x}, Error Source Id {:#x} (source {})",
            ctx.topo.functions[*port].bdf,
            error.status,
            error.source,
            source.map_or(String::from("?"), |s| format!("{s}"))
        ),
    }
}
