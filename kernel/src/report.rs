//! The report: human text, one JSON document, or the canonical group list,
//! all rendered from the stage values alone, between fixed markers that the
//! runner looks for.

use crate::clock::{Clock, cycles_to_us};
use crate::ecam::Ecam;
use crate::json::Json;
use crate::memory::MemoryFacts;
use crate::println;
use alloc::format;
use alloc::string::String;
use platform::acpi::AcpiFacts;
use platform::cmdline::{Options, ReportFormat};
use platform::memmap::{MemoryRegion, total_ram};

pub const BEGIN: &str = "==== REPORT BEGIN";
pub const END: &str = "==== REPORT END ====";

pub struct Report<'a> {
    pub options: &'a Options<'a>,
    pub memory_map: &'a [MemoryRegion],
    pub memory: MemoryFacts,
    pub acpi: &'a AcpiFacts,
    pub ecam: &'a Ecam,
    pub problems: alloc::vec::Vec<String>,
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
            ReportFormat::Groups => {}
        }
        println!("{END}");
    }

    fn text(&self, clock: &Clock, hz: Option<u64>) {
        println!("== Memory");
        for r in self.memory_map {
            println!(
                "  {:#014x}-{:#014x} {:>8} KiB  {}",
                r.start,
                r.end(),
                r.len / 1024,
                r.kind
            );
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
            println!(
                "  RAM above 4 GiB not used: {} MiB",
                self.memory.uncovered_ram >> 20
            );
        }
        println!(
            "== ACPI (revision {}, RSDP at {:#x})",
            self.acpi.revision, self.acpi.rsdp_address
        );
        for t in &self.acpi.tables {
            println!(
                "  {} at {:#010x}, {} bytes, {:?}",
                t.name(),
                t.address,
                t.length,
                t.status
            );
        }
        for r in self.ecam.regions() {
            println!(
                "  MCFG: segment {:04x} base {:#x} buses {:02x}-{:02x}",
                r.segment, r.base, r.start_bus, r.end_bus
            );
        }
        match &self.acpi.dmar {
            Some(d) => println!("  DMAR: {} bytes", d.len()),
            None => println!("  DMAR: none (no IOMMU)"),
        }
        println!(
            "  root buses declared by _BBN: {:02x?}",
            self.acpi.host_bridge_buses
        );
        if !self.problems.is_empty() {
            println!("== Problems");
            for p in &self.problems {
                println!("  {p}");
            }
        }
        println!(
            "== Boot phases (TSC{})",
            hz.map_or(String::from(", uncalibrated"), |h| format!(
                " at {} MHz",
                h / 1_000_000
            ))
        );
        let mut prev = 0;
        for m in clock.marks() {
            match hz {
                Some(h) => println!("  {:<12} {:>8} us", m.name, cycles_to_us(m.tsc - prev, h)),
                None => println!("  {:<12} {:>12} cycles", m.name, m.tsc - prev),
            }
            prev = m.tsc;
        }
        println!(
            "  config space: {} reads, {} writes",
            self.ecam.reads, self.ecam.writes
        );
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
        j.end_object();
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
