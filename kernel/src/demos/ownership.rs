//! The drivers stage and the DMA-ownership story of the Linux review "PCI:
//! portdrv: Suppress kernel DMA ownership auto-claiming", played on real
//! VT-d domains:
//!
//! 1. a group holding a switch downstream port bound to portdrv and an edu
//!    is claimed by the passthrough owner while portdrv stays bound;
//! 2. a claim of a group where the edu kernel driver is bound fails (EPERM)
//!    and nothing changes; binding the edu kernel driver inside a claimed
//!    group fails (EBUSY);
//! 3. with the shpchp-like driver bound to a bridge, the claim of its group
//!    fails: the review's counter-example (`bind-shpc=BDF`);
//! 4. inside a claimed group the edu reaches only the owner's mappings;
//!    DMA aimed at kernel memory faults and changes nothing;
//! 5. release puts every member back on the default domain in the
//!    hardware, whatever domain the owner left attached (it exits without
//!    detaching): no context entry points at the owner's domain and DMA to
//!    the owner's old IOVA faults; the kernel driver binds again and its
//!    DMA works.
//!
//! The passthrough owner (VFIO-like) takes the groups named by
//! `assign=BDF,...`, or by default every group holding an edu below a
//! switch downstream port.

use crate::drivers::edu::{Direction, Edu};
use crate::drivers::{Ctx, Drivers, EDU, SHPCHP, VFIO_PCI};
use crate::hw::clock::Deadline;
use crate::hw::memory;
use crate::pipeline::vtd::alias_quirk_on_path;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::driver_model::ClaimError;
use iommu::ownership::{OwnerToken, OwnershipError};
use iommu::vtd::pagetable::Perms;
use iommu::vtd::tables::{ContextEntry, SourceId};
use pci::alias::dma_requester_ids;
use pci::caps::PcieType;
use pci::{Bdf, ConfigSpace};

/// The passthrough owner's token (Linux: the `struct vfio_group *`).
pub(super) const PASSTHROUGH: OwnerToken = OwnerToken(1);
pub(super) const OWNER_NAME: &str = "passthrough";

const PCI_COMMAND: u16 = 0x04;
const PCI_COMMAND_MASTER: u16 = 1 << 2;

const OWNER_IOVA_SRC: u64 = 0x40_0000;
const OWNER_IOVA_DST: u64 = 0x40_1000;
const LEN: u64 = 2048;

/// The demonstrations' titles, in order.
const TITLES: [&str; 7] = [
    "a group with a portdrv-bound switch port and an edu is claimed while portdrv stays bound",
    "claiming a group with a kernel DMA driver bound fails, and a kernel DMA driver cannot bind into an owned group",
    "a bridge bound to the shpchp-like driver (no driver_managed_dma) stops the claim",
    "inside an owned group the edu reaches only the owner's mappings; DMA at kernel memory faults",
    "release puts the group back on the default domain in the hardware (DMA to the owner's old IOVA faults); the kernel driver binds again and its DMA works",
    "an AER error injected at a switch downstream port in an owned group reaches the root port, whose AER service reports it (source, error, owner) while ownership is unchanged",
    "in the owned group a device is hot-removed by pciehp on the pcieport-bound port, then one hot-added to the same slot joins the group with no domain: its DMA faults, a kernel DMA driver gets EBUSY, the owner takes it",
];

/// One step of the story.
#[derive(Clone, Debug)]
pub struct Event {
    /// Which demonstration (0 = setup).
    pub demo: u8,
    pub action: String,
    pub group: Option<u32>,
    /// Members of the group, each with its driver.
    pub devices: Vec<String>,
    /// The group's DMA owner after the step: "passthrough", "kernel (N)"
    /// for N kernel DMA users, or "none".
    pub owner: String,
    pub expected: &'static str,
    pub outcome: String,
    pub reason: String,
}

impl Event {
    pub fn as_expected(&self) -> bool {
        self.outcome == self.expected
    }
}

#[derive(Clone, Debug)]
pub struct Demo {
    pub number: u8,
    pub title: &'static str,
    /// `None` when the topology or command line does not set it up.
    pub skipped: Option<String>,
}

pub struct Story {
    pub demos: Vec<Demo>,
    pub events: Vec<Event>,
}

impl Story {
    /// Every step of `demo` went as expected, and it had steps: a
    /// demonstration that ran nothing is no pass.
    pub fn passed(&self, demo: u8) -> bool {
        let mut steps = self.events.iter().filter(|e| e.demo == demo).peekable();
        steps.peek().is_some() && steps.all(Event::as_expected)
    }

    /// A demonstration went otherwise than expected. Setup binds (demo 0)
    /// do not count: a driver whose probe fails is reported, as Linux logs
    /// it, and the boot goes on.
    pub fn failed(&self) -> bool {
        self.events.iter().any(|e| e.demo != 0 && !e.as_expected())
            || self.demos.iter().any(|d| d.skipped.is_none() && !self.passed(d.number))
    }
}

fn errno(e: OwnershipError) -> String {
    String::from(e.errno())
}

pub(super) struct Stage<'a, 'b> {
    pub(super) ctx: &'a mut Ctx<'b>,
    pub(super) drivers: &'a mut Drivers,
    pub(super) events: Vec<Event>,
    pub(super) tsc_hz: Option<u64>,
}

impl Stage<'_, '_> {
    pub(super) fn group_pos(&self, index: usize) -> Option<usize> {
        self.drivers.model.group_of(index)
    }

    pub(super) fn group_id(&self, pos: usize) -> u32 {
        self.ctx.groups.groups[pos].id
    }

    /// The group's members, less those hot-removed.
    pub(super) fn members(&self, pos: usize) -> Vec<usize> {
        self.ctx.groups.groups[pos].members.iter().map(|m| m.function).filter(|&i| !self.drivers.removed[i]).collect()
    }

    pub(super) fn describe(&self, pos: usize) -> Vec<String> {
        self.members(pos)
            .into_iter()
            .map(|i| {
                let bdf = self.ctx.topo.functions[i].bdf;
                match self.drivers.driver_name(i) {
                    Some(d) => format!("{bdf} ({d})"),
                    None => format!("{bdf} (no driver)"),
                }
            })
            .collect()
    }

    pub(super) fn owner_state(&self, pos: usize) -> String {
        let o = self.drivers.model.ownership(pos);
        match o.owner() {
            Some(t) if t == PASSTHROUGH => String::from(OWNER_NAME),
            Some(t) => format!("token {}", t.0),
            None if o.owner_cnt() > 0 => {
                format!("kernel ({} DMA user{})", o.owner_cnt(), if o.owner_cnt() == 1 { "" } else { "s" })
            }
            None => String::from("none"),
        }
    }

    pub(super) fn event(
        &mut self,
        demo: u8,
        action: String,
        pos: Option<usize>,
        expected: &'static str,
        outcome: String,
        reason: String,
    ) {
        let e = Event {
            demo,
            action,
            group: pos.map(|p| self.group_id(p)),
            devices: pos.map(|p| self.describe(p)).unwrap_or_default(),
            owner: pos.map_or(String::from("-"), |p| self.owner_state(p)),
            expected,
            outcome,
            reason,
        };
        let line = format!(
            "ownership: {} -> {} (expected {}){}",
            e.action,
            e.outcome,
            e.expected,
            if e.reason.is_empty() { String::new() } else { format!(": {}", e.reason) }
        );
        if e.as_expected() {
            log::debug!("{line}");
        } else {
            log::error!("{line}");
        }
        self.events.push(e);
    }

    pub(super) fn bind(&mut self, demo: u8, index: usize, driver: &'static str, expected: &'static str) {
        let bdf = self.ctx.topo.functions[index].bdf;
        let pos = self.group_pos(index);
        let (outcome, reason) = match self.drivers.bind(self.ctx, index, driver) {
            Ok(detail) => (String::from("ok"), detail),
            Err(e) => (String::from(if e.contains("EBUSY") { "EBUSY" } else { "error" }), e),
        };
        self.event(demo, format!("bind {driver} to {bdf}"), pos, expected, outcome, reason);
    }

    pub(super) fn claim_reason(&self, pos: usize) -> String {
        let users: Vec<String> = self
            .drivers
            .model
            .kernel_dma_users(pos)
            .map(|i| {
                format!(
                    "{} is bound to {}, a kernel DMA user (no driver_managed_dma)",
                    self.ctx.topo.functions[i].bdf,
                    self.drivers.driver_name(i).unwrap_or("?")
                )
            })
            .collect();
        if !users.is_empty() {
            return users.join("; ");
        }
        if let Some(o) = self.drivers.model.ownership(pos).owner() {
            return format!("already owned by token {}", o.0);
        }
        String::from("no kernel DMA user in the group (drivers bound here set driver_managed_dma)")
    }

    /// `iommu_group_claim_dma_owner`: the rules, then the blocking domain
    /// on the hardware (no member keeps a context entry), then the owner.
    /// If blocking a member fails the claim fails and the members go back
    /// to the default domain as they had it: nothing changes.
    pub(super) fn claim(&mut self, demo: u8, pos: usize, expected: &'static str) -> bool {
        let mut reason = self.claim_reason(pos);
        let members = self.members(pos);
        let (ctx, drivers) = (&mut *self.ctx, &mut *self.drivers);
        let r = drivers.model.claim(pos, PASSTHROUGH, || {
            // VFIO type1 refuses a group whose devices' interrupts are not
            // remapped (vfio_iommu_type1_attach_group: -EPERM "No interrupt
            // remapping support" unless allow_unsafe_interrupts, which this
            // kernel does not have): a device handed out could otherwise
            // send any vector, or NMI/INIT, with a write to 0xFEEx_xxxx.
            // Linux detaches and releases the ownership again; refusing
            // before any change leaves the same state.
            if let Some(&i) = members.iter().find(|&&i| !ctx.vtd.interrupt_remapping_for(i)) {
                return Err(("EPERM", format!(
                    "No interrupt remapping support for {} (vfio_iommu_type1_attach_group; allow_unsafe_interrupts not set)",
                    ctx.topo.functions[i].bdf
                )));
            }
            // intel_iommu_attach_device refuses an RMRR-locked device the
            // (unmanaged) blocking domain: EPERM, before any change.
            if let Some(&i) = members.iter().find(|&&i| ctx.vtd.rmrr_locked(ctx.topo, i)) {
                return Err(("EPERM", format!(
                    "{} is ineligible for IOMMU domain attach due to platform RMRR requirement (not USB or graphics)",
                    ctx.topo.functions[i].bdf
                )));
            }
            for &i in &members {
                if let Err(e) = ctx.vtd.detach(ctx.topo, i, &[]) {
                    return Err(("error", format!("blocking {}: {e}", ctx.topo.functions[i].bdf)));
                }
            }
            Ok(())
        });
        let claimed = r.is_ok();
        let outcome = match r {
            Ok(()) => String::from("ok"),
            Err(ClaimError::Ownership(e)) => errno(e),
            Err(ClaimError::Domain(("EPERM", e))) => {
                reason = e;
                String::from("EPERM")
            }
            Err(ClaimError::Domain((word, e))) => {
                // Not owned: set_core_domain puts back the default domain
                // of the members that use it (none here) and nothing else.
                let undo = self.drivers.set_core_domain(self.ctx, pos);
                reason =
                    format!("{e}; {}", undo.map_or_else(|u| format!("undo failed: {u}"), |_| String::from("undone")));
                String::from(word)
            }
        };
        let g = self.group_id(pos);
        self.event(demo, format!("claim group {g} for the passthrough owner"), Some(pos), expected, outcome, reason);
        claimed
    }

    /// `iommu_group_release_dma_owner`: the model first, then every member
    /// back on the default domain in the hardware (`__iommu_group_set_domain`
    /// to the default domain), whatever the owner left attached. Linux
    /// WARNs and keeps the release if the hardware step fails; so does
    /// this, with the error in the event.
    pub(super) fn release(&mut self, demo: u8, g: usize) {
        let gid = self.group_id(g);
        // The owner's device fds close before its group fd: vfio-pci stops
        // every device it held (vfio_pci_core_disable).
        for i in self.members(g) {
            self.drivers.vfio_disable(self.ctx, i);
        }
        let r = self.drivers.model.release(g);
        let (outcome, reason) = match r {
            Err(e) => (errno(e), String::new()),
            Ok(()) => match self.drivers.set_core_domain(self.ctx, g) {
                Ok(()) => (
                    String::from("ok"),
                    String::from("iommu_group_release_dma_owner: every member back on the default domain"),
                ),
                Err(e) => (String::from("ok"), format!("released, but restoring the default domain failed: {e}")),
            },
        };
        self.event(demo, format!("release group {gid}"), Some(g), "ok", outcome, reason);
    }

    /// The endpoints of group `pos` (what the owner held: bridges above a
    /// device master on its behalf, as `pci_enable_bridge` leaves them in
    /// Linux) that have Bus Master Enable set, read from config space.
    pub(super) fn mastering(&mut self, pos: usize) -> Vec<String> {
        self.members(pos)
            .into_iter()
            .filter(|&i| self.ctx.topo.functions[i].header_type == 0)
            .map(|i| self.ctx.topo.functions[i].bdf)
            .filter(|&bdf| {
                let cmd = self.ctx.ecam.read16(bdf, PCI_COMMAND);
                cmd != u16::MAX && cmd & PCI_COMMAND_MASTER != 0
            })
            .map(|bdf| format!("{bdf}"))
            .collect()
    }

    /// Ownership state, drivers and the context entries the hardware holds
    /// for every requester id of a group's members, to show that a refused
    /// operation changed nothing.
    pub(super) fn snapshot(&self, pos: usize) -> Snapshot {
        let members = self.members(pos);
        let drivers = members.iter().map(|&i| self.drivers.driver_name(i)).collect();
        let entries = members.iter().flat_map(|&i| self.ctx.vtd.hardware_context(self.ctx.topo, i)).collect();
        (*self.drivers.model.ownership(pos), drivers, entries)
    }

    /// Demonstration 2's check: run a step that must be refused and record
    /// whether group `g` (ownership, drivers, context entries) is unchanged.
    pub(super) fn refused(&mut self, g: usize, what: &str, reason: &str, step: impl FnOnce(&mut Self)) {
        let before = self.snapshot(g);
        step(self);
        let unchanged = self.snapshot(g) == before;
        let action = format!("group {} after the refused {what}", self.group_id(g));
        let outcome = String::from(if unchanged { "unchanged" } else { "changed" });
        self.event(2, action, Some(g), "unchanged", outcome, String::from(reason));
    }

    pub(super) fn dma(&mut self, edu: &Edu, dir: Direction, iova: u64) -> Result<usize, String> {
        let hz = self.tsc_hz.ok_or("no TSC calibration")?;
        let deadline = Deadline::after_ms(hz, 2000);
        edu.dma(dir, iova, 0, LEN, deadline).map_err(|e| format!("{e}"))?;
        Ok(self.ctx.vtd.collect_faults())
    }
}

/// What demonstration 2 compares before and after a refused step.
pub(super) type Snapshot = (iommu::ownership::GroupOwnership, Vec<Option<&'static str>>, Vec<(SourceId, ContextEntry)>);

pub(super) fn frame(fill: u8) -> Result<u64, String> {
    memory::filled_frame(fill).map_err(|e| format!("{e}"))
}

pub(super) fn page(frame: u64) -> &'static mut [u8] {
    memory::frame_bytes(frame)
}

/// The groups the passthrough owner takes: `assign=BDF,...`, or every group
/// holding an edu below a switch downstream port.
fn targets(ctx: &Ctx, drivers: &Drivers, assign: &[&str], problems: &mut Vec<String>) -> Vec<usize> {
    let topo = ctx.topo;
    let mut out: Vec<usize> = Vec::new();
    if !assign.is_empty() {
        for s in assign {
            match Bdf::parse(s).and_then(|b| topo.find(b)).and_then(|i| drivers.model.group_of(i)) {
                Some(g) if !out.contains(&g) => out.push(g),
                Some(_) => {}
                None => problems.push(format!("assign={s}: no such device with an IOMMU group")),
            }
        }
        return out;
    }
    for (i, f) in topo.functions.iter().enumerate() {
        if f.vendor != crate::drivers::edu::EDU_VENDOR || f.device != crate::drivers::edu::EDU_DEVICE {
            continue;
        }
        let below_switch = core::iter::successors(f.parent, |&p| topo.functions[p].parent)
            .any(|p| topo.functions[p].pcie_type == Some(PcieType::Downstream));
        if let Some(g) = drivers.model.group_of(i).filter(|g| below_switch && !out.contains(g)) {
            out.push(g);
        }
    }
    out
}

/// Bind the drivers, then play the five demonstrations. Returns the story
/// and the edu devices bound to the kernel driver (for the VT-d proofs).
/// What the binding step leaves for the demonstrations.
pub struct Setup {
    /// Groups the passthrough owner takes (positions in `Groups::groups`).
    owned: Vec<usize>,
    /// Functions bound to shpchp.
    shpc: Vec<usize>,
    events: Vec<Event>,
}

/// Bind the drivers: shpchp where asked, vfio-pci on the non-port members
/// of the owner's groups, pcieport and edu everywhere else. This runs before
/// translation is on (context entries programmed while no device may DMA:
/// bus mastering is enabled only afterwards, by `Drivers::start_dma`).
pub fn bind(
    ctx: &mut Ctx,
    drivers: &mut Drivers,
    assign: &[&str],
    bind_shpc: &[&str],
    problems: &mut Vec<String>,
) -> Setup {
    let mut owned = targets(ctx, drivers, assign, problems);
    let mut stage = Stage { ctx, drivers, events: Vec::new(), tsc_hz: None };
    let topo = stage.ctx.topo;
    let mut shpc = Vec::new();
    for s in bind_shpc {
        match Bdf::parse(s).and_then(|b| topo.find(b)) {
            Some(i) => {
                stage.bind(0, i, SHPCHP, "ok");
                // The review's counter-example: the owner also tries to
                // take the group of every bridge bound to shpchp. Only a
                // bridge shpchp bound and that has a group can show it.
                match stage.group_pos(i) {
                    Some(g) if stage.drivers.driver_name(i) == Some(SHPCHP) => {
                        shpc.push(i);
                        if !owned.contains(&g) {
                            owned.push(g);
                        }
                    }
                    Some(_) => problems.push(format!("bind-shpc={s}: shpchp did not bind; not used")),
                    None => problems.push(format!("bind-shpc={s}: no IOMMU group (no DRHD covers it); not used")),
                }
            }
            None => problems.push(format!("bind-shpc={s}: no such device")),
        }
    }
    let passthrough: Vec<usize> = owned
        .iter()
        .flat_map(|&g| stage.members(g))
        // vfio-pci takes normal functions only (its probe refuses bridges);
        // ports and bridges of an owned group keep their driver or none.
        .filter(|&i| topo.functions[i].header_type == 0)
        .filter(|&i| stage.drivers.driver_name(i).is_none())
        .collect();
    for (i, name, r) in stage.drivers.bind_all(stage.ctx, &passthrough) {
        let pos = stage.group_pos(i);
        let (outcome, reason) = match r {
            Ok(d) => (String::from("ok"), d),
            Err(e) => (String::from("error"), e),
        };
        stage.event(0, format!("bind {name} to {}", topo.functions[i].bdf), pos, "ok", outcome, reason);
    }
    for &i in &passthrough {
        stage.bind(0, i, VFIO_PCI, "ok");
    }
    Setup { owned, shpc, events: stage.events }
}

/// Play the demonstrations (translation is on): the five of DMA
/// ownership, then the two of the port services (`port_events`) when
/// `events` is on.
pub fn demonstrate(
    ctx: &mut Ctx,
    drivers: &mut Drivers,
    setup: Setup,
    dma: bool,
    tsc_hz: Option<u64>,
    ports: Option<&mut crate::drivers::portdrv::PortDrv>,
    port_events: bool,
) -> Story {
    let Setup { owned, shpc, events } = setup;
    let mut stage = Stage { ctx, drivers, events, tsc_hz };
    let topo = stage.ctx.topo;
    let mut demos = Vec::new();
    let mut skip = |n: u8, why: Option<&str>| {
        demos.push(Demo { number: n, title: TITLES[usize::from(n) - 1], skipped: why.map(String::from) })
    };

    // 1. Claim each owner group while portdrv stays bound.
    let mut claimed = Vec::new();
    let mut ports_kept = 0;
    let mut no_ir = false;
    for &g in &owned {
        let shpc_here = shpc.iter().any(|&i| stage.group_pos(i) == Some(g));
        // A member that must keep its RMRR identity map: the claim fails.
        let rmrr_locked = stage.members(g).into_iter().any(|i| stage.ctx.vtd.rmrr_locked(topo, i));
        // VFIO: no interrupt remapping, no claim.
        let unremapped = stage.members(g).into_iter().any(|i| !stage.ctx.vtd.interrupt_remapping_for(i));
        if unremapped {
            no_ir = true;
        }
        let expected = if shpc_here || rmrr_locked || unremapped { "EPERM" } else { "ok" };
        let ports: Vec<usize> = stage
            .members(g)
            .into_iter()
            .filter(|&i| stage.drivers.driver_name(i) == Some(crate::drivers::PCIEPORT))
            .collect();
        if stage.claim(if shpc_here { 3 } else { 1 }, g, expected) {
            claimed.push(g);
            for i in ports {
                let bound = stage.drivers.driver_name(i) == Some(crate::drivers::PCIEPORT);
                let s = stage.drivers.services[i].map(|s| format!("{s}")).unwrap_or_default();
                let bdf = topo.functions[i].bdf;
                stage.event(
                    1,
                    format!("{bdf} keeps pcieport while its group is owned"),
                    Some(g),
                    "bound",
                    String::from(if bound { "bound" } else { "unbound" }),
                    format!("services: {s}"),
                );
                ports_kept += 1;
            }
        }
    }
    // The demonstration is about a port bound to pcieport staying bound in
    // a claimed group; a claimed group without one does not show it.
    skip(
        1,
        if claimed.is_empty() && no_ir {
            Some(
                "interrupt remapping is off for a member's unit: VFIO refuses to hand out its group (EPERM; see the claims)",
            )
        } else if claimed.is_empty() {
            Some("no group to hand out (no edu below a switch and no assign=)")
        } else if ports_kept == 0 {
            Some("no claimed group holds a port bound to pcieport (the claims are reported under this demonstration)")
        } else {
            None
        },
    );

    // 2a. A claim where the edu kernel driver is bound: EPERM, no change.
    // (One with a group: an edu no DRHD covers binds without one.)
    let kernel_edu =
        (0..topo.functions.len()).find(|&i| stage.drivers.driver_name(i) == Some(EDU) && stage.group_pos(i).is_some());
    if let Some(g) = kernel_edu.and_then(|i| stage.group_pos(i)) {
        stage.refused(g, "claim", "ownership, drivers and context entries compared", |s| {
            s.claim(2, g, "EPERM");
        });
    }
    // 2b. Binding the edu kernel driver inside an owned group: EBUSY.
    let owned_edu = claimed.iter().flat_map(|&g| stage.members(g)).find(|&i| {
        stage.drivers.driver_name(i) == Some(VFIO_PCI)
            && topo.functions[i].vendor == crate::drivers::edu::EDU_VENDOR
            && !alias_quirk_on_path(topo, i)
            // Its DRHD came up: a device whose unit failed gets no DMA.
            && stage.ctx.vtd.unit_of[i].is_some()
    });
    if let Some(i) = owned_edu {
        let g = stage.group_pos(i).unwrap_or_default();
        let _ = stage.drivers.unbind(stage.ctx, i);
        stage.refused(g, "bind", "iommu_device_use_default_domain refuses while a user owner holds the group", |s| {
            s.bind(2, i, EDU, "EBUSY");
        });
        stage.bind(2, i, VFIO_PCI, "ok");
    }
    skip(
        2,
        (kernel_edu.is_none() && owned_edu.is_none()).then_some("no edu bound to the kernel driver and no owned edu"),
    );

    // 3. The review's counter-example: shpchp on a bridge.
    for &i in &shpc {
        if let Some(g) = stage.group_pos(i).filter(|g| !owned.contains(g)) {
            stage.claim(3, g, "EPERM");
        }
    }
    skip(3, shpc.is_empty().then_some("run with --append bind-shpc=BDF of a bridge"));

    // 4 and 5: DMA inside an owned group, then release.
    let dma_edu = owned_edu.filter(|_| dma && tsc_hz.is_some());
    let mut left = None;
    if let Some(i) = dma_edu {
        let g = stage.group_pos(i).unwrap_or_default();
        match owner_dma(&mut stage, g, i) {
            Ok(l) => left = Some(l),
            Err(e) => stage.event(4, String::from("owner DMA"), Some(g), "ok", String::from("error"), e),
        }
    }
    let no_owned = if no_ir {
        "no edu a remapping unit translates in an owned group (interrupt remapping is off for a member's unit: VFIO refuses the claims)"
    } else {
        "no edu a remapping unit translates in an owned group"
    };
    let why45 = if owned_edu.is_none() {
        Some(no_owned)
    } else if dma_edu.is_none() {
        Some("DMA demonstrations off (dma=off)")
    } else {
        None
    };
    skip(4, why45);
    // Release every owned group, then give the edu back to its kernel driver.
    for &g in &claimed {
        stage.release(5, g);
        let on = stage.mastering(g);
        let gid = stage.group_id(g);
        stage.event(
            5,
            format!("bus mastering in group {gid} after release"),
            Some(g),
            "off",
            String::from(if on.is_empty() { "off" } else { "on" }),
            if on.is_empty() {
                String::from("no endpoint of the group masters the bus (read from config space)")
            } else {
                format!("still mastering: {}", on.join(", "))
            },
        );
    }
    if let (Some(i), Some(l)) = (dma_edu, left) {
        let g = stage.group_pos(i).unwrap_or_default();
        if let Err(e) = after_release(&mut stage, g, i, l) {
            stage.event(5, String::from("after release"), Some(g), "ok", String::from("error"), e);
        }
    }
    if let Some(i) = owned_edu {
        let _ = stage.drivers.unbind(stage.ctx, i);
        stage.bind(5, i, EDU, "ok");
        if dma_edu.is_some() {
            let g = stage.group_pos(i);
            let r = kernel_dma(&mut stage, i);
            let (outcome, reason) = match r {
                Ok(d) => (String::from("ok"), d),
                Err(e) => (String::from("error"), e),
            };
            stage.event(5, format!("edu kernel driver DMA on {}", topo.functions[i].bdf), g, "ok", outcome, reason);
        }
    }
    // Without DMA the release is still done (its events are reported) but
    // what the demonstration shows - DMA to the owner's old IOVA faulting,
    // the kernel driver's DMA working again - is not checked.
    skip(5, why45);

    let why = super::port_events::play(&mut stage, ports, port_events, &claimed);
    for (n, why) in (6..).zip(why) {
        demos.push(Demo { number: n, title: TITLES[usize::from(n) - 1], skipped: why });
    }
    Story { demos, events: stage.events }
}

/// The story when it cannot be played: every demonstration skipped with
/// `why`.
pub fn skipped(why: &str) -> Story {
    let demos = TITLES.iter().zip(1..).map(|(&title, number)| Demo { number, title, skipped: Some(String::from(why)) });
    Story { demos: demos.collect(), events: Vec::new() }
}

/// Demonstration 4: the owner attaches its own domain, maps two pages,
/// and drives the edu itself (as user space would through VFIO).
fn owner_dma(stage: &mut Stage, g: usize, edu_index: usize) -> Result<OwnerLeft, String> {
    let topo = stage.ctx.topo;
    let gid = stage.group_id(g);
    let d = stage.ctx.vtd.create_owner_domain(gid, edu_index)?;
    let tag = u32::from(stage.ctx.vtd.domains[d].domain.id().0);
    let r = stage.drivers.model.attach_domain(g, tag);
    stage.event(
        4,
        format!("attach the owner's domain {tag} to group {gid}"),
        Some(g),
        "ok",
        r.map_or_else(errno, |_| String::from("ok")),
        String::new(),
    );
    // The hardware follows the model: a refused attach changes nothing.
    r.map_err(|e| format!("attach of the owner's domain refused: {}", e.errno()))?;
    for i in stage.members(g) {
        stage.ctx.vtd.attach_to(topo, i, d)?;
    }
    let src = frame(0)?;
    let dst = frame(0x5a)?;
    for (k, b) in page(src).iter_mut().enumerate() {
        *b = (k as u8) ^ 0xa7;
    }
    stage.ctx.vtd.map_in(d, OWNER_IOVA_SRC, src, Perms::READ).map_err(|e| format!("{e}"))?;
    stage.ctx.vtd.map_in(d, OWNER_IOVA_DST, dst, Perms::WRITE).map_err(|e| format!("{e}"))?;
    let edu = Edu::probe(stage.ctx.ecam, topo.functions[edu_index].bdf).map_err(|e| format!("{e}"))?;
    stage.ctx.vtd.enable_bus_master(stage.ctx.ecam, topo, edu_index)?;

    let faults = stage.dma(&edu, Direction::ToDevice, OWNER_IOVA_SRC)?
        + stage.dma(&edu, Direction::FromDevice, OWNER_IOVA_DST)?;
    let landed =
        page(dst)[..LEN as usize] == page(src)[..LEN as usize] && page(dst)[LEN as usize..].iter().all(|&b| b == 0x5a);
    let outcome = if faults == 0 && landed { "ok" } else { "error" };
    stage.event(
        4,
        format!("edu {} DMA through the owner's mappings", topo.functions[edu_index].bdf),
        Some(g),
        "ok",
        String::from(outcome),
        format!("{LEN} bytes IOVA {OWNER_IOVA_SRC:#x} -> edu -> IOVA {OWNER_IOVA_DST:#x}; {faults} fault(s)"),
    );

    let kernel = frame(0x99)?;
    let faults = stage.dma(&edu, Direction::FromDevice, kernel)?;
    let sid =
        dma_requester_ids(topo, edu_index).last().map(|a| a.requester_id).unwrap_or(topo.functions[edu_index].bdf);
    let sid = SourceId::new(sid.bus, sid.device, sid.function);
    let fault_ok = faults == 1
        && stage.ctx.vtd.faults.last().is_some_and(|f| f.record.source == sid && f.record.address == kernel);
    let untouched = page(kernel).iter().all(|&b| b == 0x99);
    stage.event(
        4,
        format!("edu {} DMA at kernel memory {kernel:#x}", topo.functions[edu_index].bdf),
        Some(g),
        "fault",
        String::from(if fault_ok && untouched { "fault" } else { "no fault" }),
        format!("{faults} fault(s); kernel page {}", if untouched { "unchanged" } else { "CHANGED" }),
    );

    // The owner goes away without detaching its domain (as a killed
    // process does): release must take the group back from it.
    Ok(OwnerLeft { domain: d, did: tag, dst, edu })
}

/// What the owner left behind in demonstration 4, for the checks after
/// release.
struct OwnerLeft {
    /// Its domain (index into `Vtd::domains`), still attached.
    domain: usize,
    did: u32,
    /// The page behind `OWNER_IOVA_DST`.
    dst: u64,
    edu: Edu,
}

/// Demonstration 5's first checks, right after release: no requester id of
/// the group's members points at the owner's domain in the unit's tables,
/// and a DMA to the owner's old IOVA faults and writes nothing.
fn after_release(stage: &mut Stage, g: usize, edu_index: usize, left: OwnerLeft) -> Result<(), String> {
    let topo = stage.ctx.topo;
    let gid = stage.group_id(g);
    let stale: Vec<String> = stage
        .members(g)
        .into_iter()
        .flat_map(|i| stage.ctx.vtd.hardware_context(topo, i))
        .filter(|(_, c)| c.present() && u32::from(c.domain_id().0) == left.did)
        .map(|(sid, _)| format!("{sid}"))
        .collect();
    stage.event(
        5,
        format!("context entries of group {gid} after release"),
        Some(g),
        "default",
        String::from(if stale.is_empty() { "default" } else { "owner's domain" }),
        if stale.is_empty() {
            format!("no requester id points at the owner's domain {} (read from the root table)", left.did)
        } else {
            format!("{} still point at the owner's domain {}", stale.join(", "), left.did)
        },
    );
    page(left.dst).fill(0x6b);
    stage.ctx.vtd.enable_bus_master(stage.ctx.ecam, topo, edu_index)?;
    let faults = stage.dma(&left.edu, Direction::FromDevice, OWNER_IOVA_DST)?;
    let untouched = page(left.dst).iter().all(|&b| b == 0x6b);
    let last = stage.ctx.vtd.faults.last().map(|f| format!("{}", f.record)).unwrap_or_default();
    stage.event(
        5,
        format!("edu {} DMA to the owner's old IOVA {OWNER_IOVA_DST:#x} after release", topo.functions[edu_index].bdf),
        Some(g),
        "fault",
        String::from(if faults == 1 && untouched { "fault" } else { "no fault" }),
        format!("{faults} fault(s) {last}; owner's page {}", if untouched { "unchanged" } else { "WRITTEN" }),
    );
    stage.ctx.vtd.destroy_owner_domain(left.domain)
}

/// Demonstration 5: the edu kernel driver's DMA through the DMA API.
fn kernel_dma(stage: &mut Stage, i: usize) -> Result<String, String> {
    stage.drivers.edu_for_dma(stage.ctx, i)?;
    let edu = stage.drivers.edus[i].take().ok_or("edu driver has no device")?;
    let src = frame(0)?;
    let dst = frame(0x5a)?;
    for (k, b) in page(src).iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(13);
    }
    let groups = stage.ctx.groups;
    let ctx = &mut *stage.ctx;
    let s = ctx.vtd.dma_map(groups, i, src, Perms::READ)?;
    let d = ctx.vtd.dma_map(groups, i, dst, Perms::WRITE)?;
    let r = stage.dma(&edu, Direction::ToDevice, s).and_then(|a| Ok(a + stage.dma(&edu, Direction::FromDevice, d)?));
    stage.drivers.edus[i] = Some(edu);
    let faults = r?;
    stage.ctx.vtd.dma_unmap(groups, i, s)?;
    stage.ctx.vtd.dma_unmap(groups, i, d)?;
    if faults != 0 || page(dst)[..LEN as usize] != page(src)[..LEN as usize] {
        return Err(format!(
            "{faults} fault(s); data {}",
            if page(dst)[..LEN as usize] == page(src)[..LEN as usize] { "landed" } else { "did not land" }
        ));
    }
    Ok(format!("dma_map IOVA {s:#x} and {d:#x} in the default domain; {LEN} bytes landed, no fault"))
}
