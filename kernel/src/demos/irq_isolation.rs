//! Demonstration 8, interrupt isolation: what interrupt remapping stops.
//!
//! On a kernel-driven edu (A) whose MSI is remapped through its own IRTE:
//! 1. its DMA completion interrupt arrives through that IRTE (the entry
//!    read back: present, A's vector, Linux's source-id check);
//! 2. A programmed with another device's (B's) interrupt handle: the
//!    source-id check blocks it, nothing is delivered on any vector;
//! 3. a handle whose IRTE is not present: blocked;
//! 4. a handle beyond the table (IRTA.S): blocked.
//!
//! After each blocked case A's own message is written back and one more
//! interrupt is raised: it must arrive (the path itself still works).
//! "Nothing delivered" is measured on every vector's counter and the
//! unexpected-vector counter over a 20 ms TSC deadline (QEMU delivers an
//! MSI during the MMIO write that raises it).
//!
//! What QEMU 7.2 does not check is listed apart ([`Gap`]) with what real
//! VT-d does, and never counted as a pass: compatibility-format messages
//! pass with IR on (observed here), DMA writes into 0xFEEx_xxxx carry no
//! requester id, blocked interrupts leave no fault record (observed here),
//! and SVT=10b is decoded with start and end swapped.

use crate::arch::interrupts;
use crate::demos::dmatest::{Case, Outcome};
use crate::drivers::edu::{Direction, Edu};
use crate::drivers::{Ctx, Drivers, EDU};
use crate::hw::clock::Deadline;
use crate::hw::memory;
use crate::pipeline::vtd::IrqRoute;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::vtd::irq_remap::{IrTable, SourceValidation};
use iommu::vtd::pagetable::Perms;
use pci::msi::{MsiCap, MsiMessage};
use pci::regs::PCI_CAP_ID_MSI;
use pci::{Bdf, ConfigSpace};

/// A QEMU 7.2 gap: what the emulator lets through, what real VT-d does.
#[derive(Clone, Debug)]
pub struct Gap {
    pub what: &'static str,
    /// What this run observed on QEMU (or why it was not exercised).
    pub observed: String,
    pub real_vtd: &'static str,
}

pub struct Isolation {
    pub cases: Vec<Case>,
    pub gaps: Vec<Gap>,
}

impl Isolation {
    pub fn failed(&self) -> bool {
        self.cases.iter().any(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    fn skipped(why: &str) -> Self {
        let names = [CASE_DELIVERED, CASE_FORGED, CASE_ABSENT, CASE_RANGE, CASE_MSIX];
        Self {
            cases: names
                .iter()
                .map(|&name| Case {
                    name,
                    device: String::new(),
                    outcome: Outcome::Skipped(why.into()),
                    detail: String::new(),
                })
                .collect(),
            gaps: gaps_stated(),
        }
    }
}

const CASE_DELIVERED: &str = "the edu's completion interrupt arrives remapped through its IRTE";
const CASE_FORGED: &str = "another device's interrupt handle is blocked by the source-id check";
const CASE_ABSENT: &str = "a handle whose IRTE is not present is blocked";
const CASE_RANGE: &str = "a handle beyond the interrupt remapping table is blocked";
const CASE_MSIX: &str = "an MSI-X message (table in its BAR) arrives remapped through its IRTE";

/// e1000e (82574) registers in BAR0 (QEMU hw/net/e1000e_core.c): interrupt
/// cause set, mask set/clear, cause read (write 1 to clear), and IVAR,
/// whose "other" field (bits 19:16: valid 0x8 | MSI-X entry) routes the
/// OTHER cause to an MSI-X entry.
const E1000E_ICR: u64 = 0xc0;
const E1000E_ICS: u64 = 0xc8;
const E1000E_IMS: u64 = 0xd0;
const E1000E_IMC: u64 = 0xd8;
const E1000E_IVAR: u64 = 0xe4;

const E1000E_ICR_OTHER: u32 = 1 << 24;
const E1000E_IVAR_OTHER_ENTRY0: u32 = 0x8 << 16;
const E1000E_IVAR_INT_ALLOC_VALID: u32 = 1 << 31;

fn e1000e_write(bar0: u64, reg: u64, value: u32) {
    // SAFETY: `bar0` is the e1000e's memory BAR0, checked to lie in the
    // uncached 2-4 GiB window; these registers only set, mask and route
    // the device's interrupt causes.
    unsafe { crate::hw::mmio::write(bar0 + reg, value) }
}

/// The MSI-X path end to end on an e1000e no driver holds: one MSI-X
/// entry (the table in BAR3, written through the uncached window) with its
/// own IRTE, the OTHER cause routed to it, raised once with ICS. Bus
/// mastering is on only for the raise (through the gate) and goes back off.
fn msix_case(ctx: &mut Ctx, drivers: &Drivers, hz: u64) -> Case {
    let name = CASE_MSIX;
    let n = ctx.topo.functions.len();
    let Some(i) = (0..n).find(|&i| {
        let f = &ctx.topo.functions[i];
        (f.vendor, f.device) == (0x8086, 0x10d3)
            && drivers.driver_name(i).is_none()
            && f.caps.find(pci::regs::PCI_CAP_ID_MSIX).is_some()
            && ctx.vtd.interrupt_remapping_for(i)
    }) else {
        return Case {
            name,
            device: String::new(),
            outcome: Outcome::Skipped(String::from("no driverless e1000e with MSI-X behind a remapping unit")),
            detail: String::new(),
        };
    };
    let bdf = ctx.topo.functions[i].bdf;
    let device = format!("{bdf}");
    let r = (|| -> Result<String, String> {
        let bar0 = pci::msi::memory_bar(ctx.ecam, bdf, 0).map_err(|e| format!("{e}"))?;
        if !(2 << 30..(4 << 30) - 0x2_0000).contains(&bar0) {
            return Err(format!("BAR0 {bar0:#x} is outside the uncached 2-4 GiB window"));
        }
        let setup = crate::drivers::irq::enable_msix(ctx, i, 1, "msix-test", |_| {})?;
        let route = setup.routes[0];
        let v = setup.vectors[0];
        e1000e_write(bar0, E1000E_IMC, u32::MAX);
        e1000e_write(bar0, E1000E_ICR, u32::MAX);
        e1000e_write(bar0, E1000E_IVAR, E1000E_IVAR_INT_ALLOC_VALID | E1000E_IVAR_OTHER_ENTRY0);
        e1000e_write(bar0, E1000E_IMS, E1000E_ICR_OTHER);
        let master = ctx.vtd.enable_bus_master(ctx.ecam, ctx.topo, i);
        let seen = interrupts::count(v);
        if master.is_ok() {
            e1000e_write(bar0, E1000E_ICS, E1000E_ICR_OTHER);
        }
        let arrived = master.is_ok() && interrupts::wait_for(v, seen, Deadline::after_ms(hz, 200));
        e1000e_write(bar0, E1000E_IMC, u32::MAX);
        e1000e_write(bar0, E1000E_ICR, u32::MAX);
        let cmd = ctx.ecam.read16(bdf, 0x04);
        ctx.ecam.write16(bdf, 0x04, cmd & !0x4);
        let table = pci::msi::MsixCap::read(
            ctx.ecam,
            bdf,
            ctx.topo.functions[i].caps.find(pci::regs::PCI_CAP_ID_MSIX).unwrap_or(0),
        )
        .and_then(|c| c.table_address(ctx.ecam, bdf))
        .map_err(|e| format!("{e}"))?;
        // QEMU 7.2's e1000e arms a throttling timer on every MSI-X message
        // (EITR is at least E1000E_MIN_XITR) whose callback asserts MSI-X is
        // still enabled: the function stays enabled, masked.
        crate::drivers::irq::quiesce_msix(ctx, setup);
        master?;
        let (u, index, _) = route.irte.ok_or("not remapped")?;
        if !arrived {
            return Err(format!("MSI-X entry 0 (IRTE {index} on unit {u}, vector {v:#04x}) did not deliver"));
        }
        Ok(format!(
            "MSI-X table at {table:#x} (BAR3, uncached window), entry 0 -> handle {index} (remappable, {}), vector {v:#04x}: ICS OTHER delivered once (count {seen} -> {}); then the function masked (MSI-X left enabled: QEMU's e1000e asserts it from its throttling timer), IRTE freed, bus mastering off again",
            route.source.map(|s| format!("{s}")).unwrap_or_default(),
            interrupts::count(v)
        ))
    })();
    match r {
        Ok(detail) => Case { name, device, outcome: Outcome::Pass, detail },
        Err(e) => Case { name, device, outcome: Outcome::Fail(e), detail: String::new() },
    }
}

/// How long "nothing delivered" is watched.
const QUIET_MS: u64 = 20;
/// The bit demonstration 8 raises in the edu's interrupt status.
const RAISE: u32 = 0x1;

fn gaps_stated() -> Vec<Gap> {
    alloc::vec![
        Gap {
            what: "compatibility-format interrupts with remapping on",
            observed: String::from("not exercised"),
            real_vtd: "blocked while GSTS.CFIS is clear (fault reason 0x25); QEMU 7.2 ignores GCMD.CFI and delivers them",
        },
        Gap {
            what: "device DMA writes into the interrupt range 0xFEEx_xxxx",
            observed: String::from(
                "not exercised: the edu's 28-bit DMA mask cannot address 0xFEE00000 (QEMU 7.2 tags such a write with no requester id, so no source-id check applies: a blocked device can forge any vector, or NMI/INIT)"
            ),
            real_vtd: "every write to the interrupt range is an interrupt request, remapped through an IRTE with the requester id checked",
        },
        Gap {
            what: "fault records for blocked interrupts",
            observed: String::from("not exercised"),
            real_vtd: "a primary fault record with the source id and reason 0x21 (index beyond the table), 0x22 (not present) or 0x26 (source-id check), and the fault event interrupt",
        },
        Gap {
            what: "bus-range source validation (SVT=10b)",
            observed: String::from(
                "QEMU 7.2 takes SID 15:8 as the highest bus and 7:0 as the lowest, the reverse of the spec: identical start and end buses (a device behind a PCIe-to-PCI bridge) work, a real range (a device below a PCI bridge under a PCIe-to-PCI bridge) would be refused"
            ),
            real_vtd: "SID 15:8 is the start bus, 7:0 the end bus (Linux set_irte_verify_bus)",
        },
        Gap {
            what: "MSI from a device behind an 82801 (i82801b11) bridge below a PCIe port",
            observed: String::from(
                "QEMU's bridge model sends its own requester id; the entry checks (secondary bus, 00.0)'s bus as Linux's PCIE_BRIDGE_ALIAS quirk expects, so QEMU blocks these interrupts"
            ),
            real_vtd: "the real 82801 bridge sends (secondary bus, 00.0), which the bus check accepts",
        },
    ]
}

/// Every vector's counter summed, and the unexpected-vector counter.
fn delivered_total() -> u64 {
    interrupts::counters().iter().map(|c| c.count).sum::<u64>() + interrupts::unexpected()
}

struct Dev<'a> {
    edu: &'a Edu,
    bdf: Bdf,
    cap: MsiCap,
    route: IrqRoute,
}

impl Dev<'_> {
    fn program(&self, ecam: &mut dyn ConfigSpace, msg: MsiMessage) {
        self.cap.write_message(ecam, self.bdf, msg);
    }

    /// Raise once with `msg` programmed and report whether anything was
    /// delivered within the quiet window; A's own message goes back after.
    fn raise_with(&self, ecam: &mut dyn ConfigSpace, hz: u64, msg: MsiMessage) -> bool {
        self.program(ecam, msg);
        let before = delivered_total();
        self.edu.raise(RAISE);
        let delivered = interrupts::wait_until(Deadline::after_ms(hz, QUIET_MS), || delivered_total() != before);
        self.edu.ack(self.edu.irq_status());
        self.program(ecam, self.route.message);
        delivered
    }

    /// The control: A's own message delivers on A's vector.
    fn control(&self, hz: u64) -> bool {
        let v = self.route.vector;
        let seen = interrupts::count(v);
        self.edu.raise(RAISE);
        let ok = interrupts::wait_for(v, seen, Deadline::after_ms(hz, 200));
        crate::drivers::edu::take_status(v);
        ok
    }
}

/// Run demonstration 8 on the first kernel-driven edu with a remapped MSI,
/// forging the handle of another function's remapped route.
pub fn run(ctx: &mut Ctx, drivers: &Drivers, tsc_hz: Option<u64>) -> Isolation {
    let Some(hz) = tsc_hz else {
        return Isolation::skipped("no TSC calibration for the deadlines");
    };
    if !interrupts::available() {
        return Isolation::skipped("interrupts unavailable");
    }
    let remapped =
        |i: usize| drivers.irqs[i].as_ref().and_then(|s| s.routes.first().copied()).filter(|r| r.irte.is_some());
    let n = ctx.topo.functions.len();
    // The edu must be one whose remapped interrupts QEMU 7.2 delivers: a
    // bus-range check with distinct buses (decoded swapped by QEMU) or an
    // 82801 bridge alias (QEMU's model sends the bridge's own id) would
    // block even its own interrupt there, though the IRTE is right.
    let deliverable = |i: usize| {
        remapped(i).is_some_and(|r| {
            crate::drivers::edu::missing(r.vector) == 0
                && !matches!(r.source, Some(SourceValidation::BusRange { start, end }) if start != end)
        }) && !crate::pipeline::vtd::alias_quirk_on_path(ctx.topo, i)
    };
    let kernel_edus: Vec<usize> = (0..n).filter(|&i| drivers.driver_name(i) == Some(EDU)).collect();
    // Prefer an edu checked by its exact requester id.
    let exact = |i: usize| matches!(remapped(i).and_then(|r| r.source), Some(SourceValidation::RequesterId(_)));
    let a = kernel_edus
        .iter()
        .copied()
        .find(|&i| deliverable(i) && exact(i))
        .or_else(|| kernel_edus.iter().copied().find(|&i| deliverable(i)));
    let Some(a) = a else {
        let why = if kernel_edus.is_empty() {
            "no edu bound to the kernel driver"
        } else if !kernel_edus.iter().any(|&i| remapped(i).is_some()) {
            "no kernel-driven edu has a remapped MSI (interrupt remapping is off)"
        } else {
            "every kernel-driven edu's remapped interrupt depends on what QEMU 7.2 decodes differently from the spec (bus-range check or 82801 bridge alias; see the interrupt section)"
        };
        return Isolation::skipped(why);
    };
    // The other device's entry must refuse A's requester id: devices
    // behind one conventional PCI bridge all send the bridge's id (and
    // share a group), so their entries rightly accept each other.
    let a_sid = match remapped(a).and_then(|r| r.source) {
        Some(SourceValidation::RequesterId(s)) => s,
        _ => ctx.topo.functions[a].bdf.requester_id(),
    };
    let Some(b) = (0..n).find(|&i| {
        i != a && remapped(i).and_then(|r| r.source).is_some_and(|s| !s.accepts(a_sid) && !s.qemu_7_2_accepts(a_sid))
    }) else {
        return Isolation::skipped(
            "no other device with a remapped interrupt whose source-id check refuses this edu's requester id",
        );
    };
    // What this run saw of the two decoding differences.
    let mut swapped = Vec::new();
    let mut aliased = Vec::new();
    for i in 0..n {
        if let Some(r) = drivers.irqs[i].as_ref().and_then(|s| s.routes.first()) {
            let lost = crate::drivers::edu::missing(r.vector);
            if lost == 0 {
                continue;
            }
            let line = format!(
                "{} ({}): {lost} completion interrupt(s) never delivered",
                ctx.topo.functions[i].bdf,
                r.source.map(|s| format!("{s}")).unwrap_or_default()
            );
            if matches!(r.source, Some(SourceValidation::BusRange { start, end }) if start != end) {
                swapped.push(line);
            } else if crate::pipeline::vtd::alias_quirk_on_path(ctx.topo, i) {
                aliased.push(line);
            }
        }
    }
    let route = remapped(a).expect("checked");
    let other = remapped(b).expect("checked");
    let bdf = ctx.topo.functions[a].bdf;
    let device = format!("{bdf}");
    let mut cases = Vec::new();
    let mut gaps = gaps_stated();
    if !swapped.is_empty() {
        gaps[3].observed = format!("{}; observed: {}", gaps[3].observed, swapped.join("; "));
    }
    if !aliased.is_empty() {
        gaps[4].observed = format!("{}; observed: {}", gaps[4].observed, aliased.join("; "));
    }
    let fail_all = |why: String| Isolation {
        cases: [CASE_DELIVERED, CASE_FORGED, CASE_ABSENT, CASE_RANGE]
            .iter()
            .map(|&name| Case {
                name,
                device: device.clone(),
                outcome: Outcome::Fail(why.clone()),
                detail: String::new(),
            })
            .collect(),
        gaps: gaps_stated(),
    };
    let cap = match ctx.topo.functions[a]
        .caps
        .find(PCI_CAP_ID_MSI)
        .ok_or(String::from("no MSI capability"))
        .and_then(|off| MsiCap::read(ctx.ecam, bdf, off).map_err(|e| format!("{e}")))
    {
        Ok(c) => c,
        Err(e) => return fail_all(e),
    };
    let edu = match drivers.edu_for_dma(ctx, a) {
        Ok(e) => e,
        Err(e) => return fail_all(e),
    };
    let dev = Dev { edu, bdf, cap, route };
    let (unit, handle, _) = route.irte.expect("remapped");

    // 1. The completion interrupt through A's IRTE.
    let entry = ctx.vtd.irte(unit, handle);
    let first = (|| -> Result<String, String> {
        let e = entry.ok_or("IRTE unreadable")?;
        if !e.present() || e.vector() != route.vector || Some(e.source_validation()) != route.source {
            return Err(format!("IRTE {handle} holds {e:x?}, not A's vector {:#04x} and check", route.vector));
        }
        let frame = memory::filled_frame(0x3c).map_err(|e| format!("{e}"))?;
        let iova = ctx.vtd.dma_map(ctx.groups, a, frame, Perms::READ)?;
        let seen = interrupts::count(route.vector);
        let r = dev.edu.dma(Direction::ToDevice, iova, 0, 64, Deadline::after_ms(hz, 2000));
        let after = interrupts::count(route.vector);
        let _ = ctx.vtd.dma_unmap(ctx.groups, a, iova);
        let _ = memory::free_frame(frame);
        match r {
            Ok(crate::drivers::edu::Completion::Interrupt) if after == seen + 1 => Ok(format!(
                "IRTE {handle}: present, vector {:#04x}, destination APIC {}, {}; DMA completion interrupt taken on {:#04x} (count {seen} -> {after}); message address {:#x} (remappable, handle {handle})",
                e.vector(),
                e.dest(),
                e.source_validation(),
                route.vector,
                route.message.address
            )),
            Ok(c) => Err(format!("completion seen as {c:?}, vector count {seen} -> {after}")),
            Err(e) => Err(format!("{e}")),
        }
    })();
    let path_ok = first.is_ok();
    cases.push(match first {
        Ok(detail) => Case { name: CASE_DELIVERED, device: device.clone(), outcome: Outcome::Pass, detail },
        Err(e) => {
            Case { name: CASE_DELIVERED, device: device.clone(), outcome: Outcome::Fail(e), detail: String::new() }
        }
    });

    // 2-4. Forged handles: nothing delivered, then the control delivers.
    let free = (0..IrTable::entries()).rev().find(|&i| ctx.vtd.irte(unit, i).is_some_and(|e| !e.present()));
    let (o_unit, o_handle, _) = other.irte.expect("remapped");
    let forged: [(&'static str, Option<(MsiMessage, String)>); 3] = [
        (
            CASE_FORGED,
            (o_unit == unit).then(|| {
                (
                    other.message,
                    format!(
                        "{bdf} sent {}'s handle {o_handle} (vector {:#04x}, checked {})",
                        ctx.topo.functions[b].bdf,
                        other.vector,
                        other.source.map(|s| format!("{s}")).unwrap_or_default()
                    ),
                )
            }),
        ),
        (
            CASE_ABSENT,
            free.map(|i| (MsiMessage::remappable(i, 0), format!("{bdf} sent handle {i}, an IRTE that is not present"))),
        ),
        (
            CASE_RANGE,
            Some((
                MsiMessage::remappable(IrTable::entries(), 0),
                format!("{bdf} sent handle {}, beyond the {}-entry table", IrTable::entries(), IrTable::entries()),
            )),
        ),
    ];
    for (name, forge) in forged {
        let Some((msg, what)) = forge else {
            let why = if name == CASE_FORGED { "the other device is on another unit" } else { "no free IRTE" };
            cases.push(Case {
                name,
                device: device.clone(),
                outcome: Outcome::Skipped(why.into()),
                detail: String::new(),
            });
            continue;
        };
        if !path_ok {
            cases.push(Case {
                name,
                device: device.clone(),
                outcome: Outcome::Fail(String::from("the remapped path itself does not deliver (case 1)")),
                detail: what,
            });
            continue;
        }
        let delivered = dev.raise_with(ctx.ecam, hz, msg);
        let control = dev.control(hz);
        let detail = format!(
            "{what}: {}; A's own handle restored: {}",
            if delivered { "an interrupt was delivered" } else { "nothing delivered on any vector" },
            if control { "delivered" } else { "NOT delivered" }
        );
        let outcome = match (delivered, control) {
            (false, true) => Outcome::Pass,
            (true, _) => Outcome::Fail(String::from("the forged interrupt was delivered")),
            (false, false) => Outcome::Fail(String::from("the restored handle does not deliver either")),
        };
        cases.push(Case { name, device: device.clone(), outcome, detail });
    }

    // The gaps, observed where this run can.
    let faults_before = ctx.vtd.faults.len();
    if path_ok {
        let delivered = dev.raise_with(ctx.ecam, hz, interrupts::compat_message(route.vector));
        gaps[0].observed = format!(
            "{bdf} programmed with a compatibility-format message for vector {:#04x} while IRE=1 and CFIS=0: {}",
            route.vector,
            if delivered { "delivered by QEMU 7.2" } else { "not delivered" }
        );
    }
    ctx.vtd.collect_faults();
    let ir_faults =
        ctx.vtd.faults[faults_before..].iter().filter(|f| (0x20..=0x26).contains(&f.record.reason.0)).count();
    let all_ir_faults = ctx.vtd.faults.iter().filter(|f| (0x20..=0x26).contains(&f.record.reason.0)).count();
    gaps[2].observed = format!(
        "{} interrupt remapping fault record(s) after the blocked requests above ({all_ir_faults} in the whole run; FSTS/FRCD stay clear on QEMU 7.2, which prints one line per cause on its stderr instead){}",
        ir_faults,
        if ir_faults == 0 { "" } else { " - QEMU recorded some" }
    );
    cases.push(msix_case(ctx, drivers, hz));
    Isolation { cases, gaps }
}
