//! The report: human text, one JSON document, or the canonical group list,
//! all rendered from the stage values alone, between fixed markers that the
//! runner looks for.

mod interrupts;
pub mod json;
pub mod names;

use crate::demos::dmatest::{Case, Outcome};
use crate::demos::ownership::Story;
use crate::drivers::Drivers;
use crate::hw::clock::{Clock, cycles_to_us};
use crate::hw::ecam::Ecam;
use crate::hw::memory::MemoryFacts;
use crate::pipeline::topology::Segment;
use crate::pipeline::vtd::Vtd;
use crate::println;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::ownership::CurrentDomain;
use iommu::vtd::dmar::Dmar;
use iommu::vtd::fault::FaultRecord;
use iommu::vtd::inval::InvalidationKind;
use json::Json;
use names::{class_name, device_name};
use pci::Function;
use pci::acs::AcsEnableOutcome;
use platform::acpi::AcpiFacts;
use platform::cmdline::{Options, ReportFormat};
use platform::memmap::{MemoryRegion, total_ram};

/// How this kernel differs from Linux on the default domain, and what
/// each choice makes a stray DMA fault with.
const DOMAIN_POLICY: &str = "policy: a device has a context entry (to its group's default domain) only while a \
kernel DMA driver uses it or an RMRR names it; DMA from any other device faults with reason 0x02 (present bit \
in context entry is clear). Linux 6.1 attaches every probed device to its default domain, so there such DMA \
faults in the page walk instead (reason 0x05/0x06, PTE write/read access not set).";
/// The same, as a stable JSON value.
const DOMAIN_POLICY_KEY: &str = "context-entry-while-driver-or-rmrr";

pub const BEGIN: &str = "==== REPORT BEGIN";
pub const END: &str = "==== REPORT END ====";

pub struct Report<'a> {
    pub options: &'a Options<'a>,
    pub memory_map: &'a [MemoryRegion],
    pub memory: MemoryFacts,
    pub acpi: &'a AcpiFacts,
    pub ecam: &'a Ecam,
    pub segments: &'a [Segment],
    pub dmar: Option<&'a Dmar>,
    pub vtd: Option<&'a Vtd>,
    pub dma_cases: &'a [Case],
    pub drivers: Option<&'a Drivers>,
    pub ports: Option<&'a crate::drivers::portdrv::PortDrv>,
    pub story: Option<&'a Story>,
    /// Demonstration 8 (interrupt isolation), when it ran.
    pub isolation: Option<&'a crate::demos::irq_isolation::Isolation>,
    pub problems: Vec<String>,
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail(_) => "fail",
        Outcome::Skipped(_) => "skipped",
    }
}

fn perms_str(p: iommu::vtd::pagetable::Perms) -> String {
    let mut s = String::new();
    s.push(if p.contains(iommu::vtd::pagetable::Perms::READ) { 'r' } else { '-' });
    s.push(if p.contains(iommu::vtd::pagetable::Perms::WRITE) { 'w' } else { '-' });
    s
}

/// The domain group `id` translates through now: its default domain, the
/// owner's domain, or none (blocking).
fn domain_of(vtd: Option<&Vtd>, drivers: Option<&Drivers>, pos: usize, id: u32) -> Option<u16> {
    let vtd = vtd?;
    let default = vtd.domains.iter().find(|d| d.group == id && d.kind == crate::pipeline::vtd::DomainUse::Default);
    match drivers.map(|d| d.model.ownership(pos).domain()) {
        Some(CurrentDomain::Blocking) => None,
        Some(CurrentDomain::Attached(tag)) => u16::try_from(tag).ok(),
        _ => default.map(|d| d.domain.id().0),
    }
}

/// Every unit's pre-boot fault records, with the unit's index.
fn pre_boot_faults(v: &Vtd) -> impl Iterator<Item = (usize, &FaultRecord)> {
    v.units.iter().enumerate().flat_map(|(u, s)| s.handoff.pre_boot_faults.iter().map(move |f| (u, f)))
}

/// One fault record as a JSON object.
fn fault_json(j: &mut Json, unit: usize, f: &FaultRecord) {
    j.begin_object(None);
    j.num("unit", unit as u64);
    j.str("source", &format!("{}", f.source));
    j.num("reason", u64::from(f.reason.0));
    j.str(
        "access",
        match f.access {
            iommu::vtd::fault::AccessKind::Read => "read",
            iommu::vtd::fault::AccessKind::Write => "write",
        },
    );
    j.num("address", f.address);
    j.str("text", &format!("{f}"));
    j.end_object();
}

/// "none", "kernel" or "user".
fn owner_of(drivers: Option<&Drivers>, pos: usize) -> &'static str {
    match drivers.map(|d| d.model.ownership(pos)) {
        Some(o) if o.owner().is_some() => "user",
        Some(o) if o.owner_cnt() > 0 => "kernel",
        _ => "none",
    }
}

/// The ACS control word a function was left with (after enabling).
fn acs_ctrl(seg: &Segment, index: usize) -> Option<u16> {
    let cap = seg.topology.functions[index].caps.acs?;
    let outcome = seg.acs.as_ref().and_then(|r| r.iter().find(|r| r.function == index)).map(|r| r.outcome);
    Some(match outcome {
        Some(AcsEnableOutcome::Written { after, .. }) => after as u16,
        Some(AcsEnableOutcome::Unchanged { ctrl }) => ctrl as u16,
        _ => cap.ctrl,
    })
}

fn group_id(seg: &Segment, index: usize) -> Option<u32> {
    seg.groups.as_ref()?.group_of(index).map(|g| g.id)
}

fn describe(f: &Function) -> String {
    let name = device_name(f.vendor, f.device).unwrap_or_else(|| class_name(f.class));
    format!("{} {:04x}:{:04x} {} ({})", f.bdf, f.vendor, f.device, name, f.kind())
}

/// A short ACS state for the tree.
fn acs_state(seg: &Segment, index: usize) -> String {
    match (seg.topology.functions[index].caps.acs, acs_ctrl(seg, index)) {
        (Some(cap), Some(ctrl)) => format!("ACS cap {:04x} ctrl {:04x}", cap.cap, ctrl),
        _ => String::from("no ACS"),
    }
}

impl Report<'_> {
    pub fn print(&self, clock: &mut Clock) {
        let hz = clock.tsc_hz();
        let format = self.options.report;
        let name = match format {
            ReportFormat::Text => "text",
            ReportFormat::Json => "json",
            ReportFormat::Groups => "groups",
        };
        println!("{BEGIN} {name} ====");
        match format {
            ReportFormat::Text => self.text(clock, hz),
            ReportFormat::Json => println!("{}", self.json(clock, hz)),
            ReportFormat::Groups => self.groups(),
        }
        println!("{END}");
    }

    fn text(&self, clock: &Clock, hz: Option<u64>) {
        println!("== Memory");
        for r in self.memory_map {
            println!("  {:#014x}-{:#014x} {:>8} KiB  {}", r.start, r.end(), r.len / 1024, r.kind);
        }
        println!(
            "  RAM {} MiB; free frames {} ({} MiB); heap {} KiB at {:#x}",
            total_ram(self.memory_map) >> 20,
            self.memory.free_frames,
            (self.memory.free_frames as u64 * 4096) >> 20,
            self.memory.heap_size / 1024,
            self.memory.heap_base
        );
        if self.memory.uncovered_ram > 0 {
            println!("  RAM above 4 GiB not used: {} MiB", self.memory.uncovered_ram >> 20);
        }
        println!("== ACPI (revision {}, RSDP at {:#x})", self.acpi.revision, self.acpi.rsdp_address);
        for t in &self.acpi.tables {
            println!("  {} at {:#010x}, {} bytes, {:?}", t.name(), t.address, t.length, t.status);
        }
        for r in self.ecam.regions() {
            println!(
                "  MCFG: segment {:04x} base {:#x} buses {:02x}-{:02x}",
                r.segment, r.base, r.start_bus, r.end_bus
            );
        }
        match (&self.acpi.dmar, self.dmar) {
            (None, _) => println!("  DMAR: none (no IOMMU)"),
            (Some(b), None) => println!("  DMAR: {} bytes, unusable (see problems)", b.len()),
            (Some(_), Some(d)) => {
                println!("  DMAR: host address width {}, flags {:?}", d.host_address_width, d.flags);
                for h in d.drhds() {
                    println!(
                        "  DRHD {:#x} segment {:04x} flags {:#x}{}, {} device scope(s)",
                        h.register_base,
                        h.segment,
                        h.flags.bits(),
                        if h.flags.contains(iommu::vtd::dmar::DrhdFlags::INCLUDE_PCI_ALL) {
                            " (INCLUDE_PCI_ALL)"
                        } else {
                            ""
                        },
                        h.scopes.len()
                    );
                }
                for r in d.rmrrs() {
                    println!("  RMRR {:#x}-{:#x}, {} device scope(s)", r.base, r.limit, r.scopes.len());
                }
            }
        }
        for h in &self.acpi.host_bridges {
            let buses = h.buses.map_or(String::from("buses unknown"), |(a, b)| format!("buses {a:02x}-{b:02x}"));
            println!("  host bridge {} (segment {:04x}, {buses} from {})", h.path, h.segment, h.source.as_str());
        }
        for n in &self.acpi.aml_notes {
            println!("  AML note: {n}");
        }
        for seg in self.segments {
            self.text_segment(seg, clock, hz);
        }
        if let Some(v) = self.vtd {
            self.text_vtd(v);
        }
        if let Some(p) = self.ports {
            text_ports(p);
        }
        if let Some(story) = self.story {
            text_story(story);
        }
        self.text_interrupts();
        self.text_isolation();
        if !self.dma_cases.is_empty() {
            println!("== DMA isolation proofs (edu)");
            for c in self.dma_cases {
                let why = match &c.outcome {
                    Outcome::Fail(e) | Outcome::Skipped(e) => format!(": {e}"),
                    Outcome::Pass => String::new(),
                };
                println!("  [{}] {} ({}){why}", outcome_word(&c.outcome).to_uppercase(), c.name, c.device);
                if !c.detail.is_empty() {
                    println!("         {}", c.detail);
                }
            }
        }
        if !self.problems.is_empty() {
            println!("== Problems");
            for p in &self.problems {
                println!("  {p}");
            }
        }
        println!(
            "== Boot phases (TSC{})",
            hz.map_or(String::from(", uncalibrated"), |h| format!(" at {} MHz", h / 1_000_000))
        );
        let mut prev = 0;
        for m in clock.marks() {
            match hz {
                Some(h) => println!("  {:<12} {:>8} us", m.name, cycles_to_us(m.tsc - prev, h)),
                None => println!("  {:<12} {:>12} cycles", m.name, m.tsc - prev),
            }
            prev = m.tsc;
        }
        println!("  config space: {} reads, {} writes", self.ecam.reads, self.ecam.writes);
    }

    fn text_segment(&self, seg: &Segment, clock: &Clock, hz: Option<u64>) {
        let topo = &seg.topology;
        println!("== PCI segment {:04x}: {} functions", seg.region.segment, topo.functions.len());
        for (bus, how) in &seg.roots {
            println!("  root bus {bus:02x} ({how})");
        }
        for note in &seg.notes {
            println!("  note: {note}");
        }
        // The tree, lspci -tv style: each bridge's subtree right below it.
        let mut children: Vec<Vec<usize>> = alloc::vec![Vec::new(); topo.functions.len()];
        let mut top = Vec::new();
        for (i, f) in topo.functions.iter().enumerate() {
            match f.parent {
                Some(p) => children[p].push(i),
                None => top.push(i),
            }
        }
        let mut stack: Vec<(usize, usize)> = top.iter().rev().map(|&i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            let group = group_id(seg, i).map_or(String::from("-"), |g| format!("{g}"));
            println!(
                "  {:indent$}{}  [{}] group {}",
                "",
                describe(&topo.functions[i]),
                acs_state(seg, i),
                group,
                indent = depth * 2
            );
            stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
        for e in &topo.errors {
            println!("  error: {e}");
        }
        match &seg.groups {
            Some(groups) => {
                println!("== IOMMU groups (Linux 6.1 rules): {}", groups.groups.len());
                for line in iommu::group::report(groups, topo).lines() {
                    println!("  {line}");
                }
                // Members a root-bus rule placed: those on a bus the peer
                // probe made a root bus.
                for &bus in topo.peer_probe.iter().flat_map(|p| &p.discovered) {
                    let on_it: Vec<String> = topo
                        .functions
                        .iter()
                        .filter(|f| f.is_root_bus && f.bdf.bus == bus)
                        .map(|f| format!("{}", f.bdf))
                        .collect();
                    println!(
                        "  root bus {bus:02x} comes from the peer-bus probe (pcibios_fixup_peer_bridges: Linux's scan \
                         never reached the bridge above it): {} grouped as on a root bus",
                        on_it.join(" ")
                    );
                }
            }
            None => println!("== IOMMU groups: none (no IOMMU, so ACS was not requested)"),
        }
        let n = topo.functions.len().max(1) as u64;
        let phase = |name: &str| -> Option<u64> {
            let marks = clock.marks();
            let i = marks.iter().position(|m| m.name == name)?;
            let prev = if i == 0 { 0 } else { marks[i - 1].tsc };
            Some(marks[i].tsc - prev)
        };
        println!("== PCI figures");
        for (name, t) in [("enumerate", seg.enumerate), ("acs", seg.acs_traffic), ("groups", seg.group_traffic)] {
            let time = match (phase(name), hz) {
                (Some(c), Some(h)) => {
                    format!("{} us, {} ns/function", cycles_to_us(c, h), cycles_to_us(c, h) * 1000 / n)
                }
                (Some(c), None) => format!("{c} cycles"),
                _ => String::new(),
            };
            println!("  {name:<10} {:>6} config reads {:>4} writes  {time}", t.reads, t.writes);
        }
        if let Some(p) = &seg.topology.peer_probe {
            println!("  of which the peer-bus probe: {} config reads over {} bus numbers", p.reads, p.buses_probed);
        }
    }

    fn text_vtd(&self, v: &Vtd) {
        println!("== VT-d units");
        for (i, u) in v.units.iter().enumerate() {
            let (major, minor) = u.unit.version();
            let cap = u.unit.cap();
            println!(
                "  unit {i}: DRHD {:#x}, VER {major}.{minor}, CAP {:#x}, ECAP {:#x}",
                u.drhd.register_base,
                cap.0,
                u.unit.ecap().0
            );
            println!(
                "    SAGAW {:#07b} MGAW {} -> {}-bit, {} levels; invalidation {}; caching mode {}; page walks {}; {} of {} domain ids used; translation {}",
                cap.sagaw(),
                cap.mgaw(),
                u.geometry.width.bits(),
                u.geometry.width.levels(),
                match u.inval {
                    InvalidationKind::Queued => "queued",
                    InvalidationKind::Register => "register-based",
                },
                if cap.cm() { "on" } else { "off" },
                if u.unit.ecap().c() { "snoop" } else { "do not snoop (tables flushed with clflush)" },
                v.domains.iter().filter(|d| d.unit == i).count(),
                cap.number_of_domains(),
                if u.translation { "on" } else { "off" }
            );
            println!("    at hand-off: {}", u.handoff);
        }
        println!("  bus mastering cleared on {} function(s) until translation was on", v.bus_master_cleared);
        if v.bus_master_kept != 0 {
            println!(
                "  bus mastering left on for {} function(s): named by an RMRR, or a bridge above one (firmware's DMA goes on)",
                v.bus_master_kept
            );
        }
        println!("== Domains (one per IOMMU group)");
        println!("  {DOMAIN_POLICY}");
        for d in &v.domains {
            let attached: Vec<String> = d.attached.iter().map(|s| format!("{s}")).collect();
            println!(
                "  group {} -> domain {} on unit {}; context entries: {}",
                d.group,
                d.domain.id().0,
                d.unit,
                if attached.is_empty() { String::from("none (DMA blocked)") } else { attached.join(" ") }
            );
            for m in &d.mappings {
                println!("    IOVA {:#x} -> {:#x} {:?} {}", m.iova, m.phys, m.size, perms_str(m.perms));
            }
        }
        let pre: Vec<(usize, &FaultRecord)> = pre_boot_faults(v).collect();
        let pre_lost = v.units.iter().any(|u| u.handoff.pre_boot_fault_overflow);
        println!(
            "== Pre-boot faults (logged before this kernel, cleared at take-over): {}{}",
            pre.len(),
            if pre_lost { " (some lost: PFO)" } else { "" }
        );
        for (u, f) in &pre {
            println!("  unit {u}: {f}");
        }
        println!("== DMA remapping faults: {}{}", v.faults.len(), if v.lost_faults { " (some lost: PFO)" } else { "" });
        for f in &v.faults {
            println!("  unit {}: {}", f.unit, f.record);
        }
    }

    /// The canonical group list of every segment, in the oracle's form.
    fn groups(&self) {
        let mut lines: Vec<String> = Vec::new();
        for seg in self.segments {
            if let Some(g) = &seg.groups {
                lines.extend(iommu::group::canonical(g, &seg.topology).lines().map(String::from));
            }
        }
        lines.sort();
        for l in lines {
            println!("{l}");
        }
    }

    fn json(&self, clock: &Clock, hz: Option<u64>) -> String {
        let mut j = Json::new();
        j.begin_object(None);
        j.str("kernel", crate::VERSION);
        j.begin_object(Some("memory"));
        j.num("ram_bytes", total_ram(self.memory_map));
        j.num("free_frames", self.memory.free_frames as u64);
        j.num("heap_bytes", self.memory.heap_size as u64);
        j.begin_array(Some("map"));
        for r in self.memory_map {
            j.begin_object(None);
            j.num("start", r.start);
            j.num("length", r.len);
            j.str("kind", &format!("{}", r.kind));
            j.end_object();
        }
        j.end_array();
        j.end_object();
        j.begin_object(Some("acpi"));
        j.num("revision", u64::from(self.acpi.revision));
        j.begin_array(Some("tables"));
        for t in &self.acpi.tables {
            j.begin_object(None);
            j.str("signature", t.name());
            j.num("address", t.address);
            j.num("length", u64::from(t.length));
            j.str("status", &format!("{:?}", t.status));
            j.end_object();
        }
        j.end_array();
        j.begin_array(Some("mcfg"));
        for r in self.ecam.regions() {
            j.begin_object(None);
            j.num("segment", u64::from(r.segment));
            j.num("base", r.base);
            j.num("start_bus", u64::from(r.start_bus));
            j.num("end_bus", u64::from(r.end_bus));
            j.end_object();
        }
        j.end_array();
        match &self.acpi.dmar {
            Some(d) => j.num("dmar_bytes", d.len() as u64),
            None => j.null("dmar_bytes"),
        }
        j.begin_array(Some("host_bridges"));
        for h in &self.acpi.host_bridges {
            j.begin_object(None);
            j.str("path", &h.path);
            j.num("segment", u64::from(h.segment));
            match h.buses {
                Some((a, b)) => {
                    j.num("first_bus", u64::from(a));
                    j.num("last_bus", u64::from(b));
                }
                None => j.null("first_bus"),
            }
            j.str("bus_from", h.source.as_str());
            j.end_object();
        }
        j.end_array();
        j.end_object();
        j.begin_array(Some("segments"));
        for seg in self.segments {
            j.begin_object(None);
            j.num("segment", u64::from(seg.region.segment));
            j.begin_array(Some("root_buses"));
            for (bus, how) in &seg.roots {
                j.begin_object(None);
                j.num("bus", u64::from(*bus));
                j.str("found_by", how);
                j.end_object();
            }
            j.end_array();
            match &seg.topology.peer_probe {
                Some(p) => {
                    j.begin_object(Some("peer_probe"));
                    j.num("last_bus", u64::from(p.last_bus));
                    j.num("buses_probed", u64::from(p.buses_probed));
                    j.num("config_reads", u64::from(p.reads));
                    j.end_object();
                }
                None => j.null("peer_probe"),
            }
            j.end_object();
        }
        j.end_array();
        self.json_vtd(&mut j);
        self.json_story(&mut j);
        self.json_ports(&mut j);
        self.json_interrupts(&mut j);
        self.json_isolation(&mut j);
        self.json_pci(&mut j);
        j.begin_array(Some("problems"));
        for p in &self.problems {
            j.item_str(p);
        }
        j.end_array();
        j.begin_object(Some("timing"));
        match hz {
            Some(h) => j.num("tsc_hz", h),
            None => j.null("tsc_hz"),
        }
        j.begin_array(Some("phases"));
        let mut prev = 0;
        for m in clock.marks() {
            j.begin_object(None);
            j.str("name", m.name);
            j.num("cycles", m.tsc - prev);
            if let Some(h) = hz {
                j.num("us", cycles_to_us(m.tsc - prev, h));
            }
            j.end_object();
            prev = m.tsc;
        }
        j.end_array();
        j.num("config_reads", self.ecam.reads);
        j.num("config_writes", self.ecam.writes);
        j.end_object();
        j.end_object();
        j.finish()
    }
}

impl Report<'_> {
    fn json_pci(&self, j: &mut Json) {
        j.begin_array(Some("functions"));
        for seg in self.segments {
            for (i, f) in seg.topology.functions.iter().enumerate() {
                j.begin_object(None);
                j.str("bdf", &format!("{}", f.bdf));
                j.num("vendor", u64::from(f.vendor));
                j.num("device", u64::from(f.device));
                j.num("class", u64::from(f.class));
                j.num("header_type", u64::from(f.header_type));
                j.bool("multifunction", f.multifunction);
                // Linux's view (after set_pcie_port_type) and the raw
                // Device/Port Type field, as `lspci` shows it.
                match f.pcie_type {
                    Some(t) => j.str("port_type", &format!("{t}")),
                    None => j.null("port_type"),
                }
                match f.caps.pcie {
                    Some(p) => j.num("pcie_type", u64::from(p.port_type.raw())),
                    None => j.null("pcie_type"),
                }
                match (f.caps.acs, acs_ctrl(seg, i)) {
                    (Some(cap), Some(ctrl)) => {
                        j.begin_object(Some("acs"));
                        j.num("offset", u64::from(cap.offset));
                        j.num("cap", u64::from(cap.cap));
                        j.num("ctrl", u64::from(ctrl));
                        j.end_object();
                    }
                    _ => j.null("acs"),
                }
                match f.parent {
                    Some(p) => j.str("parent", &format!("{}", seg.topology.functions[p].bdf)),
                    None => j.null("parent"),
                }
                match group_id(seg, i) {
                    Some(g) => j.num("group", u64::from(g)),
                    None => j.null("group"),
                }
                match self.drivers.and_then(|d| d.driver_name(i)) {
                    Some(name) => j.str("driver", name),
                    None => j.null("driver"),
                }
                match self.drivers.and_then(|d| d.services[i]) {
                    Some(s) => j.str("port_services", &format!("{s}")),
                    None => j.null("port_services"),
                }
                // Named by an identity-mapped RMRR (Linux device_has_rmrr).
                j.bool("rmrr", self.vtd.is_some_and(|v| v.rmrr.get(i).copied().unwrap_or(false)));
                j.end_object();
            }
        }
        j.end_array();
        j.begin_array(Some("groups"));
        for seg in self.segments {
            let Some(groups) = &seg.groups else { continue };
            for g in &groups.groups {
                j.begin_object(None);
                j.num("id", u64::from(g.id));
                j.begin_array(Some("members"));
                for m in &g.members {
                    j.item_str(&format!("{}", seg.topology.functions[m.function].bdf));
                }
                j.end_array();
                let pos = groups.groups.iter().position(|x| x.id == g.id).unwrap_or_default();
                match domain_of(self.vtd, self.drivers, pos, g.id) {
                    Some(d) => j.num("domain", u64::from(d)),
                    None => j.null("domain"),
                }
                j.str("owner", owner_of(self.drivers, pos));
                j.begin_array(Some("events"));
                for e in self.story.map(|s| s.events.as_slice()).unwrap_or(&[]).iter().filter(|e| e.group == Some(g.id))
                {
                    json_event(j, e);
                }
                j.end_array();
                j.begin_array(Some("explanation"));
                for m in &g.members {
                    j.item_str(&format!("{} {}", seg.topology.functions[m.function].bdf, m.reason));
                }
                j.end_array();
                j.end_object();
            }
        }
        j.end_array();
        j.begin_array(Some("pci_errors"));
        for seg in self.segments {
            for e in &seg.topology.errors {
                j.item_str(&format!("{e}"));
            }
        }
        j.end_array();
    }
}

impl Report<'_> {
    fn json_vtd(&self, j: &mut Json) {
        let Some(d) = self.dmar else {
            j.null("dmar");
            return;
        };
        j.begin_object(Some("dmar"));
        j.num("host_address_width", u64::from(d.host_address_width));
        j.num("flags", u64::from(d.flags.bits()));
        j.begin_array(Some("units"));
        for h in d.drhds() {
            j.begin_object(None);
            j.num("register_base", h.register_base);
            j.num("segment", u64::from(h.segment));
            j.num("flags", u64::from(h.flags.bits()));
            j.num("scopes", h.scopes.len() as u64);
            let state = self
                .vtd
                .and_then(|v| v.units.iter().enumerate().find(|(_, u)| u.drhd.register_base == h.register_base));
            if let (Some(v), Some((i, u))) = (self.vtd, state) {
                let cap = u.unit.cap();
                let (major, minor) = u.unit.version();
                j.str("version", &format!("{major}.{minor}"));
                j.num("cap", cap.0);
                j.num("ecap", u.unit.ecap().0);
                j.num("sagaw", u64::from(cap.sagaw()));
                j.num("address_bits", u64::from(u.geometry.width.bits()));
                j.num("levels", u64::from(u.geometry.width.levels()));
                j.str(
                    "invalidation",
                    match u.inval {
                        InvalidationKind::Queued => "queued",
                        InvalidationKind::Register => "register",
                    },
                );
                j.bool("caching_mode", cap.cm());
                j.bool("page_walk_coherent", u.unit.ecap().c());
                j.str("handoff", &format!("{}", u.handoff));
                j.num("domains", v.domains.iter().filter(|d| d.unit == i).count() as u64);
                j.bool("translation", u.translation);
            } else {
                j.bool("translation", false);
            }
            j.end_object();
        }
        j.end_array();
        j.begin_array(Some("rmrr"));
        for r in d.rmrrs() {
            j.begin_object(None);
            j.num("base", r.base);
            j.num("limit", r.limit);
            j.end_object();
        }
        j.end_array();
        j.end_object();

        j.str("domain_policy", DOMAIN_POLICY_KEY);
        j.begin_array(Some("domains"));
        for gd in self.vtd.map(|v| v.domains.as_slice()).unwrap_or(&[]) {
            j.begin_object(None);
            j.num("group", u64::from(gd.group));
            j.num("domain", u64::from(gd.domain.id().0));
            j.num("unit", gd.unit as u64);
            j.begin_array(Some("context_entries"));
            for s in &gd.attached {
                j.item_str(&format!("{s}"));
            }
            j.end_array();
            j.begin_array(Some("mappings"));
            for m in &gd.mappings {
                j.begin_object(None);
                j.num("iova", m.iova);
                j.num("phys", m.phys);
                j.str("perms", &perms_str(m.perms));
                j.end_object();
            }
            j.end_array();
            j.end_object();
        }
        j.end_array();

        j.begin_array(Some("faults"));
        for f in self.vtd.map(|v| v.faults.as_slice()).unwrap_or(&[]) {
            fault_json(j, f.unit, &f.record);
        }
        j.end_array();
        // Records found at take-over, from before this kernel: never
        // counted as this boot's faults.
        j.begin_array(Some("pre_boot_faults"));
        for (u, f) in self.vtd.into_iter().flat_map(pre_boot_faults) {
            fault_json(j, u, f);
        }
        j.end_array();

        j.begin_array(Some("dma_tests"));
        for c in self.dma_cases {
            j.begin_object(None);
            j.str("name", c.name);
            j.str("device", &c.device);
            j.str("outcome", outcome_word(&c.outcome));
            match &c.outcome {
                Outcome::Fail(e) | Outcome::Skipped(e) => j.str("reason", e),
                Outcome::Pass => j.null("reason"),
            }
            j.str("detail", &c.detail);
            j.end_object();
        }
        j.end_array();
    }
}

fn json_event(j: &mut Json, e: &crate::demos::ownership::Event) {
    j.begin_object(None);
    j.num("demo", u64::from(e.demo));
    j.str("action", &e.action);
    match e.group {
        Some(g) => j.num("group", u64::from(g)),
        None => j.null("group"),
    }
    j.begin_array(Some("devices"));
    for d in &e.devices {
        j.item_str(d);
    }
    j.end_array();
    j.str("owner", &e.owner);
    j.str("expected", e.expected);
    j.str("outcome", &e.outcome);
    j.str("reason", &e.reason);
    j.end_object();
}

/// What QEMU 7.2 cannot show of the port services (read in its sources
/// and measured; see the README).
const QEMU_CANNOT: [&str; 5] = [
    "PME: never raised (not emulated; Root Control PMEIE is read-only)",
    "DPC: no QEMU 7.2 device has the capability",
    "bandwidth notification: LBMS/LABS are never set",
    "pciehp: no Data Link Layer State Changed events (DLLSCE and PFDE are not writable); only ABP, PDC and CC",
    "AER: only uncorrectable errors reach Root Error Status; correctable ones never do",
];

fn text_ports(p: &crate::drivers::portdrv::PortDrv) {
    println!("== PCIe port services (pcieport)");
    for l in &p.log {
        println!("  {l}");
    }
    for l in &p.events {
        println!("  event: {l}");
    }
    println!(
        "  waits for a service event: {} woken by the port's interrupt, {} in poll mode",
        p.woken_by_irq, p.polled_waits
    );
    println!("  What QEMU 7.2 cannot show:");
    for l in QEMU_CANNOT {
        println!("    {l}");
    }
}

fn text_story(story: &Story) {
    println!("== Drivers and DMA ownership");
    for e in story.events.iter().filter(|e| e.demo == 0) {
        println!(
            "  {} -> {}{}",
            e.action,
            e.outcome,
            if e.reason.is_empty() { String::new() } else { format!(" ({})", e.reason) }
        );
    }
    for d in &story.demos {
        let verdict = match &d.skipped {
            Some(why) => format!("SKIPPED: {why}"),
            None if story.passed(d.number) => String::from("PASS"),
            None => String::from("FAIL"),
        };
        println!("  Demonstration {}: {} [{verdict}]", d.number, d.title);
        for e in story.events.iter().filter(|e| e.demo == d.number) {
            println!("    {} -> {} (expected {})", e.action, e.outcome, e.expected);
            if let Some(g) = e.group {
                println!("      group {g}: {}; owner: {}", e.devices.join(", "), e.owner);
            }
            if !e.reason.is_empty() {
                println!("      why: {}", e.reason);
            }
        }
    }
}

impl Report<'_> {
    fn json_ports(&self, j: &mut Json) {
        let Some(p) = self.ports else {
            j.null("port_services");
            return;
        };
        j.begin_object(Some("port_services"));
        j.begin_array(Some("ports"));
        for port in &p.ports {
            j.begin_object(None);
            j.str("bdf", &format!("{}", port.bdf));
            j.str("services", &format!("{}", port.plan.services));
            j.str("irq_mode", &format!("{}", port.plan.mode));
            j.num("vectors", u64::from(port.plan.vectors));
            match port.slot {
                Some(s) => j.str("slot_state", &format!("{:?}", s.slot.state)),
                None => j.null("slot_state"),
            }
            j.bool("aer_root", port.aer_root.is_some());
            j.begin_array(Some("cpu_vectors"));
            for v in port.irq.as_ref().map(|s| s.vectors.clone()).unwrap_or_default() {
                j.item_num(u64::from(v));
            }
            j.end_array();
            j.end_object();
        }
        j.end_array();
        for (key, lines) in [("log", &p.log), ("events", &p.events)] {
            j.begin_array(Some(key));
            for l in lines {
                j.item_str(l);
            }
            j.end_array();
        }
        j.begin_array(Some("qemu_cannot_show"));
        for l in QEMU_CANNOT {
            j.item_str(l);
        }
        j.end_array();
        j.num("waits_woken_by_interrupt", p.woken_by_irq);
        j.num("waits_polled", p.polled_waits);
        match p.hotplug_to_bound_us {
            Some(us) => j.num("hotplug_to_bound_us", us),
            None => j.null("hotplug_to_bound_us"),
        }
        j.end_object();
    }

    fn json_story(&self, j: &mut Json) {
        let Some(story) = self.story else {
            j.null("ownership");
            return;
        };
        j.begin_object(Some("ownership"));
        j.begin_array(Some("demonstrations"));
        for d in &story.demos {
            j.begin_object(None);
            j.num("number", u64::from(d.number));
            j.str("title", d.title);
            j.str(
                "outcome",
                match &d.skipped {
                    Some(_) => "skipped",
                    None if story.passed(d.number) => "pass",
                    None => "fail",
                },
            );
            match &d.skipped {
                Some(why) => j.str("skipped_because", why),
                None => j.null("skipped_because"),
            }
            j.end_object();
        }
        j.end_array();
        j.begin_array(Some("events"));
        for e in &story.events {
            json_event(j, e);
        }
        j.end_array();
        j.end_object();
    }
}
