//! The report: human text, one JSON document, or the canonical group list,
//! all rendered from the stage values alone, between fixed markers that the
//! runner looks for.

mod interrupts;

use interrupts::isolation_entry;

use crate::demos::dmatest::{Case, Outcome};
use crate::demos::ownership::Story;
use crate::drivers::Drivers;
use crate::hw::clock::{Clock, cycles_to_us};
use crate::hw::ecam::Ecam;
use crate::hw::memory::MemoryFacts;
use crate::pipeline::topology::Segment;
use crate::pipeline::vtd::Vtd;
use crate::println;
use ::report::names::{class_name, device_name};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::ownership::CurrentDomain;
use iommu::vtd::dmar::Dmar;
use iommu::vtd::fault::FaultRecord;
use iommu::vtd::inval::InvalidationKind;
use pci::Function;
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

/// One fault record in the schema.
fn fault_entry(unit: usize, f: &FaultRecord) -> ::report::Fault {
    ::report::Fault {
        unit: unit as u64,
        source: format!("{}", f.source),
        reason: f.reason.0,
        access: String::from(match f.access {
            iommu::vtd::fault::AccessKind::Read => "read",
            iommu::vtd::fault::AccessKind::Write => "write",
        }),
        address: f.address,
        text: format!("{f}"),
    }
}

/// "none", "kernel" or "user".
fn owner_of(drivers: Option<&Drivers>, pos: usize) -> &'static str {
    match drivers.map(|d| d.model.ownership(pos)) {
        Some(o) if o.owner().is_some() => "user",
        Some(o) if o.owner_cnt() > 0 => "kernel",
        _ => "none",
    }
}

/// The ACS control word a function was left with: read back from config
/// space after enabling (or as first read, when ACS was not enabled).
fn acs_ctrl(seg: &Segment, index: usize) -> Option<u16> {
    let cap = seg.topology.functions[index].caps.acs?;
    let record = seg.acs.as_ref().and_then(|r| r.iter().find(|r| r.function == index));
    Some(record.and_then(|r| r.ctrl_readback).unwrap_or(cap.ctrl))
}

/// The register base of the DRHD that covers a function: `Some(None)` when
/// no unit does ("no IOMMU": Linux gives it no group), `None` without a
/// DMAR table.
fn covering_unit(seg: &Segment, dmar: Option<&Dmar>, index: usize) -> Option<Option<u64>> {
    let units = seg.units.as_ref()?;
    let u = units.unit_of.get(index).copied().flatten();
    Some(u.and_then(|u| dmar?.drhds().nth(u)).map(|d| d.register_base))
}

fn group_id(seg: &Segment, index: usize) -> Option<u32> {
    seg.groups.as_ref()?.group_of(index).map(|g| g.id)
}

/// One function in the shared schema: ids, kind, the ACS words in force,
/// its group, its IOMMU, its driver.
fn function_entry(r: &Report<'_>, seg: &Segment, index: usize) -> ::report::Function {
    let f: &Function = &seg.topology.functions[index];
    let name = device_name(f.vendor, f.device).unwrap_or_else(|| class_name(f.class));
    ::report::Function {
        bdf: format!("{}", f.bdf),
        vendor: f.vendor,
        device: f.device,
        class: f.class,
        header_type: f.header_type,
        multifunction: f.multifunction,
        // Linux's view (after set_pcie_port_type) and the raw Device/Port
        // Type field, as `lspci` shows it.
        port_type: f.pcie_type.map(|t| format!("{t}")),
        pcie_type: f.caps.pcie.map(|p| p.port_type.raw()),
        // Linux 6.1's set_pcie_port_type bug: the type it meant.
        port_type_bug: f.port_type_bug.map(|t| format!("{t}")),
        // Linux `dev->cfg_size` (pci_cfg_space_size), as sysfs shows it.
        cfg_size: f.cfg_size,
        acs: match (f.caps.acs, acs_ctrl(seg, index)) {
            (Some(cap), Some(ctrl)) => Some(::report::Acs { offset: cap.offset, cap: cap.cap, ctrl }),
            _ => None,
        },
        parent: f.parent.map(|p| format!("{}", seg.topology.functions[p].bdf)),
        group: group_id(seg, index),
        // The DRHD that translates its DMA, or "no IOMMU" (no group).
        iommu: match covering_unit(seg, r.dmar, index) {
            Some(Some(base)) => Some(format!("DRHD {base:#x}")),
            Some(None) => Some(String::from(::report::render::NO_IOMMU)),
            None => None,
        },
        driver: r.drivers.and_then(|d| d.driver_name(index)).map(String::from),
        port_services: r.drivers.and_then(|d| d.services[index]).map(|s| format!("{s}")),
        // Named by an identity-mapped RMRR (Linux device_has_rmrr).
        rmrr: r.vtd.is_some_and(|v| v.rmrr.get(index).copied().unwrap_or(false)),
        name: String::from(name),
        kind: String::from(f.kind()),
        ..::report::Function::default()
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
        // The tree, lspci -tv style: the shared rendering.
        let functions: Vec<::report::Function> =
            (0..topo.functions.len()).map(|i| function_entry(self, seg, i)).collect();
        crate::print!("{}", ::report::render::tree_of(&functions));
        for e in &topo.errors {
            println!("  error: {e}");
        }
        match &seg.groups {
            Some(groups) => {
                println!("== IOMMU groups (Linux 6.1 rules): {}", groups.groups.len());
                crate::print!("{}", ::report::render::groups_of(&self.group_entries(seg)));
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
        let groups: Vec<::report::Group> = self.segments.iter().flat_map(|seg| self.group_entries(seg)).collect();
        crate::print!("{}", ::report::render::canonical_of(groups.into_iter().map(|g| g.members)));
    }

    /// The machine-readable report: the shared schema (`report` crate),
    /// serialized with `serde_json`.
    fn json(&self, clock: &Clock, hz: Option<u64>) -> String {
        serde_json::to_string(&self.document(clock, hz))
            .unwrap_or_else(|e| format!("{{\"problems\":[\"report not serializable: {e}\"]}}"))
    }

    /// The whole report as schema values.
    fn document(&self, clock: &Clock, hz: Option<u64>) -> ::report::Report {
        let memory = ::report::Memory {
            ram_bytes: total_ram(self.memory_map),
            free_frames: self.memory.free_frames as u64,
            heap_bytes: self.memory.heap_size as u64,
            map: self
                .memory_map
                .iter()
                .map(|r| ::report::MemoryRegion { start: r.start, length: r.len, kind: format!("{}", r.kind) })
                .collect(),
        };
        let acpi = ::report::Acpi {
            revision: u64::from(self.acpi.revision),
            tables: self
                .acpi
                .tables
                .iter()
                .map(|t| ::report::AcpiTable {
                    signature: String::from(t.name()),
                    address: t.address,
                    length: u64::from(t.length),
                    status: format!("{:?}", t.status),
                })
                .collect(),
            mcfg: self
                .ecam
                .regions()
                .iter()
                .map(|r| ::report::Mcfg {
                    segment: r.segment,
                    base: r.base,
                    start_bus: r.start_bus,
                    end_bus: r.end_bus,
                })
                .collect(),
            dmar_bytes: self.acpi.dmar.as_ref().map(|d| d.len() as u64),
            host_bridges: self
                .acpi
                .host_bridges
                .iter()
                .map(|h| ::report::HostBridge {
                    path: h.path.clone(),
                    segment: h.segment,
                    first_bus: h.buses.map(|b| b.0),
                    last_bus: h.buses.map(|b| b.1),
                    bus_from: String::from(h.source.as_str()),
                })
                .collect(),
        };
        let segments = self
            .segments
            .iter()
            .map(|seg| ::report::SegmentRoots {
                segment: seg.region.segment,
                root_buses: seg
                    .roots
                    .iter()
                    .map(|(bus, how)| ::report::RootBus { bus: *bus, found_by: String::from(how.as_str()) })
                    .collect(),
                peer_probe: seg.topology.peer_probe.as_ref().map(|p| ::report::PeerProbe {
                    last_bus: p.last_bus,
                    buses_probed: p.buses_probed,
                    config_reads: p.reads,
                }),
            })
            .collect();
        let mut phases = Vec::new();
        let mut prev = 0;
        for m in clock.marks() {
            phases.push(::report::Phase {
                name: String::from(m.name),
                cycles: m.tsc - prev,
                us: hz.map(|h| cycles_to_us(m.tsc - prev, h)),
            });
            prev = m.tsc;
        }
        let mut functions = Vec::new();
        let mut groups = Vec::new();
        let mut pci_errors = Vec::new();
        for seg in self.segments {
            functions.extend((0..seg.topology.functions.len()).map(|i| function_entry(self, seg, i)));
            groups.extend(self.group_entries(seg));
            pci_errors.extend(seg.topology.errors.iter().map(|e| format!("{e}")));
        }
        ::report::Report {
            kernel: String::from(crate::VERSION),
            memory: Some(memory),
            acpi: Some(acpi),
            segments,
            dmar: self.dmar_entry(),
            domain_policy: self.dmar.map(|_| String::from(DOMAIN_POLICY_KEY)),
            domains: self.domain_entries(),
            faults: self
                .vtd
                .map(|v| v.faults.as_slice())
                .unwrap_or(&[])
                .iter()
                .map(|f| fault_entry(f.unit, &f.record))
                .collect(),
            pre_boot_faults: self.vtd.into_iter().flat_map(pre_boot_faults).map(|(u, f)| fault_entry(u, f)).collect(),
            dma_tests: self.dma_cases.iter().map(case_entry).collect(),
            ownership: self.story.map(ownership_entry),
            port_services: self.ports.map(port_services_entry),
            interrupts: Some(self.interrupts_entry()),
            interrupt_isolation: self.isolation.map(isolation_entry),
            functions,
            groups,
            pci_errors,
            problems: self.problems.clone(),
            timing: Some(::report::Timing {
                tsc_hz: hz,
                phases,
                config_reads: self.ecam.reads,
                config_writes: self.ecam.writes,
            }),
            ..::report::Report::default()
        }
    }

    /// A segment's groups in the schema: members, domain, owner, the
    /// ownership events and each member's rule.
    fn group_entries(&self, seg: &Segment) -> Vec<::report::Group> {
        let Some(groups) = &seg.groups else { return Vec::new() };
        let name = |i: usize| format!("{}", seg.topology.functions[i].bdf);
        groups
            .groups
            .iter()
            .enumerate()
            .map(|(pos, g)| ::report::Group {
                id: g.id,
                members: g.members.iter().map(|m| name(m.function)).collect(),
                domain: domain_of(self.vtd, self.drivers, pos, g.id),
                owner: Some(String::from(owner_of(self.drivers, pos))),
                events: self
                    .story
                    .map(|s| s.events.as_slice())
                    .unwrap_or(&[])
                    .iter()
                    .filter(|e| e.group == Some(g.id))
                    .map(event_entry)
                    .collect(),
                explanation: g.members.iter().map(|m| format!("{} {}", name(m.function), m)).collect(),
            })
            .collect()
    }

    fn dmar_entry(&self) -> Option<::report::Dmar> {
        let d = self.dmar?;
        let units = d
            .drhds()
            .map(|h| {
                let mut unit = ::report::DmarUnit {
                    register_base: h.register_base,
                    segment: h.segment,
                    flags: h.flags.bits(),
                    scopes: h.scopes.len() as u64,
                    ..::report::DmarUnit::default()
                };
                let state = self
                    .vtd
                    .and_then(|v| v.units.iter().enumerate().find(|(_, u)| u.drhd.register_base == h.register_base));
                if let (Some(v), Some((i, u))) = (self.vtd, state) {
                    let cap = u.unit.cap();
                    let (major, minor) = u.unit.version();
                    unit.version = Some(format!("{major}.{minor}"));
                    unit.cap = Some(cap.0);
                    unit.ecap = Some(u.unit.ecap().0);
                    unit.sagaw = Some(cap.sagaw());
                    unit.address_bits = Some(u.geometry.width.bits());
                    unit.levels = Some(u.geometry.width.levels());
                    unit.invalidation = Some(String::from(match u.inval {
                        InvalidationKind::Queued => "queued",
                        InvalidationKind::Register => "register",
                    }));
                    unit.caching_mode = Some(cap.cm());
                    unit.page_walk_coherent = Some(u.unit.ecap().c());
                    unit.handoff = Some(format!("{}", u.handoff));
                    unit.domains = Some(v.domains.iter().filter(|d| d.unit == i).count() as u64);
                    unit.translation = u.translation;
                }
                unit
            })
            .collect();
        Some(::report::Dmar {
            host_address_width: d.host_address_width,
            flags: d.flags.bits(),
            units,
            rmrr: d.rmrrs().map(|r| ::report::Rmrr { base: r.base, limit: r.limit }).collect(),
        })
    }

    fn domain_entries(&self) -> Vec<::report::Domain> {
        self.vtd
            .map(|v| v.domains.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|gd| ::report::Domain {
                group: gd.group,
                domain: gd.domain.id().0,
                unit: gd.unit as u64,
                context_entries: gd.attached.iter().map(|s| format!("{s}")).collect(),
                mappings: gd
                    .mappings
                    .iter()
                    .map(|m| ::report::Mapping { iova: m.iova, phys: m.phys, perms: perms_str(m.perms) })
                    .collect(),
            })
            .collect()
    }
}

/// One isolation case (a DMA proof, or a case of demonstration 8) in the
/// schema.
fn case_entry(c: &Case) -> ::report::DmaTest {
    ::report::DmaTest {
        name: String::from(c.name),
        device: c.device.clone(),
        outcome: String::from(outcome_word(&c.outcome)),
        reason: match &c.outcome {
            Outcome::Fail(e) | Outcome::Skipped(e) => Some(e.clone()),
            Outcome::Pass => None,
        },
        detail: c.detail.clone(),
    }
}

fn event_entry(e: &crate::demos::ownership::Event) -> ::report::Event {
    ::report::Event {
        demo: e.demo,
        action: e.action.clone(),
        group: e.group,
        devices: e.devices.clone(),
        owner: e.owner.clone(),
        expected: String::from(e.expected),
        outcome: e.outcome.clone(),
        reason: e.reason.clone(),
    }
}

fn ownership_entry(story: &Story) -> ::report::Ownership {
    ::report::Ownership {
        demonstrations: story
            .demos
            .iter()
            .map(|d| ::report::Demonstration {
                number: d.number,
                title: String::from(d.title),
                outcome: String::from(match &d.skipped {
                    Some(_) => "skipped",
                    None if story.passed(d.number) => "pass",
                    None => "fail",
                }),
                skipped_because: d.skipped.clone(),
            })
            .collect(),
        events: story.events.iter().map(event_entry).collect(),
    }
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

/// The port services in the schema.
fn port_services_entry(p: &crate::drivers::portdrv::PortDrv) -> ::report::PortServices {
    ::report::PortServices {
        ports: p
            .ports
            .iter()
            .map(|port| ::report::Port {
                bdf: format!("{}", port.bdf),
                services: format!("{}", port.plan.services),
                irq_mode: format!("{}", port.plan.mode),
                vectors: port.plan.vectors,
                slot_state: port.slot.map(|s| format!("{:?}", s.slot.state)),
                aer_root: port.aer_root.is_some(),
                cpu_vectors: port.irq.as_ref().map(|s| s.vectors.clone()).unwrap_or_default(),
            })
            .collect(),
        log: p.log.clone(),
        events: p.events.clone(),
        qemu_cannot_show: QEMU_CANNOT.iter().map(|&l| String::from(l)).collect(),
        waits_woken_by_interrupt: p.woken_by_irq,
        waits_polled: p.polled_waits,
        hotplug_to_bound_us: p.hotplug_to_bound_us,
    }
}
