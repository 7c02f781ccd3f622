//! ACPI discovery over crafted tables in host memory. The handler maps
//! "physical" addresses one-to-one onto the test process's memory, so the
//! tables point at each other with real addresses.

use super::*;
use crate::aml::tests::build;
use ::acpi::PhysicalMapping;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

#[derive(Clone)]
struct Identity;

impl AcpiHandler for Identity {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        // SAFETY: test memory is identity-"mapped"; callers stay inside it.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(physical_address as *mut T).unwrap(),
                size,
                size,
                self.clone(),
            )
        }
    }
    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

const RSDP: usize = 0;
const XSDT: usize = 0x100;
const MCFG: usize = 0x400;
const FACP: usize = 0x800;
const DSDT: usize = 0xc00;
const DMAR: usize = 0x1000;
const SSDT: usize = 0x1400;
const SIZE: usize = 0x2000;

/// A machine's ACPI tables in one buffer.
struct Tables {
    mem: &'static mut [u8],
}

impl Tables {
    fn base(&self) -> u64 {
        self.mem.as_ptr() as u64
    }
    fn addr(&self, off: usize) -> u64 {
        self.base() + off as u64
    }
    fn memory(&self) -> Range<u64> {
        self.base()..self.base() + SIZE as u64
    }
    fn put(&mut self, off: usize, bytes: &[u8]) {
        self.mem[off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn header(&mut self, off: usize, sig: &[u8; 4], len: u32, revision: u8) {
        self.put(off, sig);
        self.put(off + 4, &len.to_le_bytes());
        self.mem[off + 8] = revision;
        self.put(off + 10, b"BOCHS ");
        self.put(off + 16, b"TESTTBL ");
    }
    fn fix_checksum(&mut self, off: usize, len: usize, at: usize) {
        self.mem[off + at] = 0;
        let sum = self.mem[off..off + len].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        self.mem[off + at] = 0u8.wrapping_sub(sum);
    }
    fn table_len(&self, off: usize) -> usize {
        u32::from_le_bytes(self.mem[off + 4..off + 8].try_into().unwrap()) as usize
    }
    fn seal(&mut self, off: usize) {
        let len = self.table_len(off);
        self.fix_checksum(off, len, 9);
    }

    /// RSDP v2 → XSDT → {MCFG, FACP (→ DSDT), DMAR, SSDT}, all valid.
    fn q35_like() -> Self {
        let mem = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        let mut t = Tables { mem };
        // RSDP (ACPI 6.5 §5.2.5.3), revision 2 with an XSDT.
        t.put(RSDP, b"RSD PTR ");
        t.put(RSDP + 9, b"BOCHS ");
        t.mem[RSDP + 15] = 2;
        t.put(RSDP + 20, &36u32.to_le_bytes());
        let xsdt = t.addr(XSDT);
        t.put(RSDP + 24, &xsdt.to_le_bytes());
        t.fix_checksum(RSDP, 20, 8);
        t.fix_checksum(RSDP, 36, 32);
        // XSDT with four entries.
        let entries = [MCFG, FACP, DMAR, SSDT];
        t.header(XSDT, b"XSDT", 36 + 8 * entries.len() as u32, 1);
        for (i, e) in entries.iter().enumerate() {
            let a = t.addr(*e);
            t.put(XSDT + 36 + 8 * i, &a.to_le_bytes());
        }
        t.seal(XSDT);
        // MCFG: one allocation, q35's.
        t.header(MCFG, b"MCFG", 60, 1);
        t.put(MCFG + 44, &0xb000_0000u64.to_le_bytes());
        t.mem[MCFG + 54] = 0;
        t.mem[MCFG + 55] = 0xff;
        t.seal(MCFG);
        // FADT revision 3: PM timer at 0x608, X_DSDT.
        t.header(FACP, b"FACP", 244, 3);
        t.put(FACP + 76, &0x608u32.to_le_bytes());
        t.mem[FACP + 91] = 4;
        let dsdt = t.addr(DSDT);
        t.put(FACP + 140, &dsdt.to_le_bytes());
        t.seal(FACP);
        // DSDT: the main host bridge (no _BBN, no _CRS: bus 0).
        let dsdt = build::table(b"DSDT", &build::scope("\\_SB", &[build::host_bridge("PCI0", &[])]));
        t.put(DSDT, &dsdt);
        // SSDT: an expander with _BBN 0x40, and a stray Name (_BBN, 0x41)
        // outside any host bridge.
        let ssdt = build::table(
            b"SSDT",
            &[
                build::host_bridge("\\_SB.PC40", &[build::name_op("_BBN", &build::int(0x40))]),
                build::name_op("_BBN", &build::int(0x41)),
            ]
            .concat(),
        );
        t.put(SSDT, &ssdt);
        // DMAR: header + HAW 38 + flags 1 + reserved, no structures.
        t.header(DMAR, b"DMAR", 48, 1);
        t.mem[DMAR + 36] = 38;
        t.mem[DMAR + 37] = 1;
        t.seal(DMAR);
        t
    }

    fn discover(&self) -> AcpiFacts {
        // SAFETY: every address the tables hold lies in `self.mem`, which
        // `memory()` describes and `Identity` maps.
        unsafe { discover(Identity, RsdpSource::StartInfo(self.addr(RSDP)), &self.memory()) }
    }
}

#[test]
fn finds_everything_in_valid_tables() {
    let t = Tables::q35_like();
    let f = t.discover();
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(f.revision, 2);
    assert_eq!(f.mcfg, vec![McfgRegion { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 0xff }]);
    assert_eq!(f.pm_timer_port, Some(0x608));
    assert_eq!(first_buses(&f), vec![0, 0x40]);
    let dmar = f.dmar.expect("DMAR found");
    assert_eq!(dmar.len(), 48);
    assert_eq!(&dmar[0..4], b"DMAR");
    assert_eq!(dmar[36], 38);
    let names: Vec<&str> = f.tables.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["MCFG", "FACP", "DMAR", "SSDT"]);
}

#[test]
fn bad_checksum_is_reported_by_name_and_table_ignored() {
    let t = Tables::q35_like();
    t.mem[MCFG + 50] ^= 0x55;
    let f = t.discover();
    assert!(f.mcfg.is_empty());
    assert_eq!(f.table(b"MCFG").unwrap().status, TableStatus::BadChecksum);
    assert!(f.problems.iter().any(|p| p.contains("MCFG") && p.contains("checksum")), "{:?}", f.problems);
    assert!(f.dmar.is_some(), "other tables still used");
}

#[test]
fn absurd_length_is_rejected_before_reading_it() {
    let mut t = Tables::q35_like();
    t.put(DMAR + 4, &0xffff_fff0u32.to_le_bytes());
    let f = t.discover();
    assert!(f.dmar.is_none());
    assert_eq!(f.table(b"DMAR").unwrap().status, TableStatus::BadLength);
    assert!(f.problems.iter().any(|p| p.contains("DMAR") && p.contains("length")), "{:?}", f.problems);
    assert_eq!(f.mcfg.len(), 1);
}

#[test]
fn entry_pointing_outside_memory_is_reported() {
    let mut t = Tables::q35_like();
    let outside = t.base() + SIZE as u64 + 0x1000;
    t.put(XSDT + 36 + 8 * 3, &outside.to_le_bytes());
    t.seal(XSDT);
    let f = t.discover();
    assert!(f.problems.iter().any(|p| p.contains("outside memory")), "{:?}", f.problems);
    assert_eq!(first_buses(&f), vec![0], "the SSDT is gone, the DSDT still scanned");
}

#[test]
fn missing_mcfg_and_dmar() {
    let mut t = Tables::q35_like();
    t.put(XSDT + 4, &(36u32 + 8).to_le_bytes()); // keep only MCFG...
    let facp = t.addr(FACP);
    t.put(XSDT + 36, &facp.to_le_bytes()); // ...replaced by the FADT
    t.seal(XSDT);
    let f = t.discover();
    assert!(f.mcfg.is_empty() && f.dmar.is_none());
    assert!(f.problems.iter().any(|p| p.contains("no MCFG")), "{:?}", f.problems);
}

#[test]
fn bad_rsdp_gives_no_facts_and_a_reason() {
    let t = Tables::q35_like();
    t.mem[RSDP + 10] ^= 1; // breaks the RSDP checksum
    let f = t.discover();
    assert!(f.tables.is_empty());
    assert!(f.problems[0].contains("RSDP"), "{:?}", f.problems);
    // SAFETY: an address outside `memory` is refused before any read.
    let f = unsafe { discover(Identity, RsdpSource::StartInfo(0), &t.memory()) };
    assert!(f.problems[0].contains("outside memory"), "{:?}", f.problems);
}

#[test]
fn malformed_mcfg_entry_skipped() {
    let mut t = Tables::q35_like();
    t.mem[MCFG + 54] = 0x10;
    t.mem[MCFG + 55] = 0x0f;
    t.seal(MCFG);
    let f = t.discover();
    assert!(f.mcfg.is_empty());
    assert!(f.problems.iter().any(|p| p.contains("MCFG entry")), "{:?}", f.problems);
}

/// A root table claiming a gigabyte: refused from its header, nothing past
/// it is read (the `acpi` crate's `from_rsdp` would sum that far).
#[test]
fn absurd_root_table_length_is_refused_before_reading() {
    let mut t = Tables::q35_like();
    t.put(XSDT + 4, &0x4000_0000u32.to_le_bytes());
    let f = t.discover();
    assert!(f.tables.is_empty() && f.mcfg.is_empty() && f.dmar.is_none());
    assert!(f.problems.iter().any(|p| p.contains("XSDT") && p.contains("length")), "{:?}", f.problems);
}

/// A null entry and an entry beyond memory before the tables that matter:
/// both reported, and every later table still found.
#[test]
fn bad_entries_first_do_not_hide_the_later_tables() {
    let mut t = Tables::q35_like();
    let entries = [0, t.base() + SIZE as u64 + 0x1000, t.addr(MCFG), t.addr(FACP), t.addr(DMAR), t.addr(SSDT)];
    t.put(XSDT + 4, &(36 + 8 * entries.len() as u32).to_le_bytes());
    for (i, a) in entries.iter().enumerate() {
        t.put(XSDT + 36 + 8 * i, &a.to_le_bytes());
    }
    t.seal(XSDT);
    let f = t.discover();
    assert_eq!(f.problems.iter().filter(|p| p.contains("outside memory")).count(), 2, "{:?}", f.problems);
    assert_eq!(f.mcfg.len(), 1);
    assert!(f.dmar.is_some());
    assert_eq!(f.pm_timer_port, Some(0x608));
    assert_eq!(first_buses(&f), vec![0, 0x40]);
}

/// The BIOS-area scan (no RSDP address from the boot protocol) finds the
/// RSDP and uses its root table like any other.
#[test]
fn rsdp_found_by_scanning_gives_the_same_facts() {
    let t = Tables::q35_like();
    // The scan covers physical 0xE0000..0x100000: map that window onto a
    // buffer holding a copy of the RSDP at 0xF59C0 (where SeaBIOS puts it).
    let bios = Box::leak(vec![0u8; 0x2_0000].into_boxed_slice());
    bios[0x1_59c0..0x1_59c0 + 36].copy_from_slice(&t.mem[RSDP..RSDP + 36]);
    let handler = Window { phys: 0xe_0000, host: bios.as_ptr() as usize, len: bios.len() };
    let memory = 0xe_0000..0x10_0000;
    // The tables themselves stay in `t.mem`: allow both ranges.
    // SAFETY: the scan reads only the window, which `Window` maps onto
    // `bios`; every table address points into `t.mem`.
    let facts = unsafe { discover(handler, RsdpSource::BiosScan, &(memory.start..t.memory().end)) };
    assert_eq!(facts.rsdp_address, 0xf_59c0);
    assert_eq!(facts.mcfg.len(), 1, "{:?}", facts.problems);
    assert!(facts.dmar.is_some());
}

/// Maps physical [phys, phys + len) onto a host buffer, everything else
/// one-to-one (the test tables).
#[derive(Clone)]
struct Window {
    phys: usize,
    host: usize,
    len: usize,
}

impl AcpiHandler for Window {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = if (self.phys..self.phys + self.len).contains(&physical_address) {
            physical_address - self.phys + self.host
        } else {
            physical_address
        };
        // SAFETY: test memory; callers stay inside the buffers.
        unsafe {
            PhysicalMapping::new(physical_address, NonNull::new(virt as *mut T).unwrap(), size, size, self.clone())
        }
    }
    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

#[test]
fn fadt_fields_are_read_only_inside_its_length() {
    // ACPI 1.0 FADT (116 bytes): PM_TMR_BLK and DSDT only.
    let mut f = vec![0u8; 116];
    f[76..80].copy_from_slice(&0x608u32.to_le_bytes());
    f[91] = 4;
    f[40..44].copy_from_slice(&0x7fe_0000u32.to_le_bytes());
    assert_eq!(fadt_facts(&f), (Some(0x608), Some(0x7fe_0000)));
    // PM_TMR_LEN 0: no PM timer.
    f[91] = 0;
    assert_eq!(fadt_facts(&f).0, None);
    // Revision 3+: X_PM_TMR_BLK in system I/O space and X_DSDT win.
    let mut f = vec![0u8; 244];
    f[208] = 1;
    f[212..220].copy_from_slice(&0xb008u64.to_le_bytes());
    f[140..148].copy_from_slice(&0x1_0000_0000u64.to_le_bytes());
    f[40..44].copy_from_slice(&0x1000u32.to_le_bytes());
    assert_eq!(fadt_facts(&f), (Some(0xb008), Some(0x1_0000_0000)));
    // An X_PM_TMR_BLK in memory space is not a port: fall back to the legacy field.
    f[208] = 0;
    f[76..80].copy_from_slice(&0x608u32.to_le_bytes());
    f[91] = 4;
    assert_eq!(fadt_facts(&f).0, Some(0x608));
}

/// Two DMAR tables, the first corrupt: reported, the valid one used.
#[test]
fn a_second_table_of_a_kind_is_reported_and_the_first_valid_one_used() {
    let mut t = Tables::q35_like();
    // A corrupt DMAR copy in the unused space after the SSDT.
    let copy = SSDT + 0x200;
    let dmar: Vec<u8> = t.mem[DMAR..DMAR + 48].to_vec();
    t.put(copy, &dmar);
    t.mem[copy + 40] ^= 0xff;
    let entries = [t.addr(MCFG), t.addr(FACP), t.addr(copy), t.addr(DMAR), t.addr(SSDT)];
    t.put(XSDT + 4, &(36 + 8 * entries.len() as u32).to_le_bytes());
    for (i, a) in entries.iter().enumerate() {
        t.put(XSDT + 36 + 8 * i, &a.to_le_bytes());
    }
    t.seal(XSDT);
    let f = t.discover();
    assert!(f.problems.iter().any(|p| p.contains("2 DMAR tables")), "{:?}", f.problems);
    assert!(f.problems.iter().any(|p| p.contains("DMAR") && p.contains("checksum")), "{:?}", f.problems);
    assert_eq!(f.dmar.as_deref(), Some(&dmar[..]));
}

/// The DSDT is reached through the FADT, not the root table: its checksum
/// is checked all the same, and a bad one means it is not scanned.
#[test]
fn a_dsdt_with_a_bad_checksum_is_not_scanned() {
    let t = Tables::q35_like();
    t.mem[DSDT + 20] ^= 0x10;
    let f = t.discover();
    assert!(f.problems.iter().any(|p| p.contains("DSDT") && p.contains("bad checksum")), "{:?}", f.problems);
    assert_eq!(first_buses(&f), vec![0x40], "only the SSDT's host bridge");
}

/// An RSDP pointing at something that is not an XSDT (here the MCFG, a
/// valid table of believable length) gives no tables, not its "entries".
#[test]
fn a_root_table_with_the_wrong_signature_is_refused() {
    let mut t = Tables::q35_like();
    let mcfg = t.addr(MCFG);
    t.put(RSDP + 24, &mcfg.to_le_bytes());
    t.fix_checksum(RSDP, 36, 32);
    let f = t.discover();
    assert!(f.tables.is_empty() && f.mcfg.is_empty());
    assert!(f.problems.iter().any(|p| p.contains("XSDT") && p.contains("\"MCFG\"")), "{:?}", f.problems);
}

#[test]
fn an_x_pm_timer_beyond_the_io_space_falls_back_to_the_legacy_field() {
    let mut f = vec![0u8; 244];
    f[208] = 1;
    f[212..220].copy_from_slice(&0x1_0008u64.to_le_bytes());
    f[76..80].copy_from_slice(&0x608u32.to_le_bytes());
    f[91] = 4;
    assert_eq!(fadt_facts(&f).0, Some(0x608));
}

/// The root buses of the host bridges found.
fn first_buses(f: &AcpiFacts) -> Vec<u8> {
    f.host_bridges.iter().filter_map(|h| h.buses.map(|b| b.0)).collect()
}

/// Root buses of a region from the host bridges: its segment only, inside
/// its buses, in namespace order; unknown buses noted; the MCFG start bus
/// only when ACPI names no host bridge for the segment.
#[test]
fn root_buses_of_a_region() {
    use crate::aml::{BusSource, HostBridge};
    let hb = |path: &str, segment, buses, source| HostBridge { path: path.into(), segment, buses, source };
    let region = McfgRegion { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 0x7f };
    let facts = AcpiFacts {
        dsdt_read: true,
        host_bridges: vec![
            hb("\\_SB.PCI0", 0, Some((0, 0x3f)), BusSource::Crs),
            hb("\\_SB.PCI1", 1, Some((0, 0xff)), BusSource::Default),
            hb("\\_SB.PC40", 0, Some((0x40, 0xff)), BusSource::Bbn),
            hb("\\_SB.PC90", 0, Some((0x90, 0x9f)), BusSource::Crs),
            hb("\\_SB.PCXX", 0, None, BusSource::Bbn),
        ],
        ..AcpiFacts::default()
    };
    let mut notes = Vec::new();
    let roots = root_buses(&facts, &region, &mut notes);
    assert_eq!(
        roots,
        vec![
            (0, String::from("ACPI host bridge \\_SB.PCI0, _CRS buses 00-3f")),
            (0x40, String::from("ACPI host bridge \\_SB.PC40, _BBN")),
        ]
    );
    assert_eq!(
        notes,
        [
            "host bridge \\_SB.PC90: bus 90 outside the ECAM buses 00-7f; not scanned",
            "host bridge \\_SB.PCXX: bus number unknown (a method decides it); not scanned",
        ]
    );
    // Segment 1 has PCI1 (bus 0 by default); segment 2 has none: the MCFG
    // start bus, with a note.
    let mut notes = Vec::new();
    let r1 = McfgRegion { segment: 1, ..region };
    assert_eq!(root_buses(&facts, &r1, &mut notes)[0].0, 0);
    let r2 = McfgRegion { segment: 2, start_bus: 0x10, ..region };
    assert_eq!(root_buses(&facts, &r2, &mut notes), vec![(0x10, String::from("MCFG start bus (no ACPI host bridge)"))]);
    assert!(notes.iter().any(|n| n.contains("no host bridge for segment 0002")), "{notes:?}");
}
