//! ACPI: from the RSDP to the facts the kernel needs (MCFG regions, the
//! DMAR table's bytes, the PM timer port, the PCI host bridges the DSDT and
//! SSDTs declare), with every table checked before it is trusted.
//!
//! The RSDP, the root table and every table it lists are read here, each
//! bounded by its header against readable memory ([`audit`]): the `acpi`
//! crate's own discovery (`AcpiTables::from_rsdp`, `find_table`) trusts a
//! header's length and reads that far to sum a checksum, and walks every
//! root entry, so a corrupt length or a null entry would fault the kernel.
//! The crate provides the handler interface and the typed view of the MCFG,
//! made only over a table the audit accepted.
#![allow(unsafe_code)] // Mapping firmware memory through `AcpiHandler` is unsafe by contract.

use crate::aml;
use crate::mcfg::McfgRegion;
use ::acpi::AcpiHandler;
use ::acpi::mcfg::Mcfg;
use ::acpi::sdt::SdtHeader;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;
use core::ops::Range;

/// Longest table accepted. QEMU's largest (the DSDT) is a few KiB; a real
/// machine's DSDT can reach a few hundred KiB.
pub const MAX_TABLE_LEN: u32 = 1 << 20;
const HEADER_LEN: u32 = size_of::<SdtHeader>() as u32;
/// Root tables longer than this many entries are treated as corrupt.
const MAX_ROOT_ENTRIES: usize = 256;

/// One entry of the RSDT/XSDT and what the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub signature: [u8; 4],
    pub address: u64,
    pub length: u32,
    pub status: TableStatus,
}

impl TableEntry {
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.signature).unwrap_or("????")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    Valid,
    BadChecksum,
    BadLength,
    /// The entry points outside readable memory.
    Unreachable,
}

/// What the firmware told the kernel through ACPI.
#[derive(Debug, Default)]
pub struct AcpiFacts {
    pub rsdp_address: u64,
    pub revision: u8,
    pub tables: Vec<TableEntry>,
    pub mcfg: Vec<McfgRegion>,
    /// The whole DMAR table (header included), when present and valid.
    pub dmar: Option<Vec<u8>>,
    /// I/O port of the ACPI PM timer (3.579545 MHz), from the FADT.
    pub pm_timer_port: Option<u16>,
    /// PCI host bridges (PNP0A03/PNP0A08 devices present by `_STA`) in
    /// namespace order, read from the DSDT and SSDTs by [`aml`].
    pub host_bridges: Vec<aml::HostBridge>,
    /// Whether a DSDT was read (without one, no host bridge can be known).
    pub dsdt_read: bool,
    /// What the AML reader could not evaluate (methods), one line each.
    pub aml_notes: Vec<String>,
    /// One clear line per problem; boot goes on with what is valid.
    pub problems: Vec<String>,
}

impl AcpiFacts {
    pub fn table(&self, sig: &[u8; 4]) -> Option<&TableEntry> {
        self.tables.iter().find(|t| &t.signature == sig)
    }
}

/// Where the RSDP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsdpSource {
    /// `hvm_start_info.rsdp_paddr`.
    StartInfo(u64),
    /// Scan of the EBDA and 0xE0000..0xFFFFF (ACPI 6.5 §5.2.5.1).
    BiosScan,
}

/// Read `len` bytes of physical memory through the handler.
///
/// # Safety
/// `[addr, addr + len)` must be inside the `memory` range given to
/// [`discover`], which the handler maps readable.
unsafe fn read_bytes<H: AcpiHandler>(handler: &H, addr: u64, len: usize) -> Vec<u8> {
    // SAFETY: the caller keeps the range inside memory the handler maps.
    let m = unsafe { handler.map_physical_region::<u8>(addr as usize, len) };
    // SAFETY: the mapping covers `len` readable bytes.
    unsafe { core::slice::from_raw_parts(m.virtual_start().as_ptr(), len) }.to_vec()
}

/// Whether `[addr, addr + len)` lies inside readable memory.
fn fits(memory: &Range<u64>, addr: u64, len: u64) -> bool {
    addr >= memory.start && addr.checked_add(len).is_some_and(|end| end <= memory.end)
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
}

/// A table read through its header: the signature and length it claims,
/// what the checks found, and its bytes when the length could be trusted.
struct Checked {
    signature: [u8; 4],
    length: u32,
    status: TableStatus,
    bytes: Option<Vec<u8>>,
}

/// Read the table at `addr` only as far as its header allows: reachable,
/// a length in `HEADER_LEN..=MAX_TABLE_LEN` inside `memory`, then the
/// checksum.
///
/// # Safety
/// As [`discover`].
unsafe fn read_checked<H: AcpiHandler>(handler: &H, addr: u64, memory: &Range<u64>) -> Checked {
    let mut t = Checked { signature: *b"????", length: 0, status: TableStatus::Unreachable, bytes: None };
    if addr == 0 || !fits(memory, addr, u64::from(HEADER_LEN)) {
        return t;
    }
    // SAFETY: checked against `memory`.
    let h = unsafe { read_bytes(handler, addr, HEADER_LEN as usize) };
    t.signature.copy_from_slice(&h[0..4]);
    t.length = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if !(HEADER_LEN..=MAX_TABLE_LEN).contains(&t.length) || !fits(memory, addr, u64::from(t.length)) {
        t.status = TableStatus::BadLength;
        return t;
    }
    // SAFETY: checked against `memory`.
    let bytes = unsafe { read_bytes(handler, addr, t.length as usize) };
    t.status = if checksum_ok(&bytes) { TableStatus::Valid } else { TableStatus::BadChecksum };
    t.bytes = Some(bytes);
    t
}

/// Check the root table (signature, length, checksum) and every RSDT/XSDT
/// entry: reachable, sane length, checksum. Returns the bytes of each
/// valid table, in the order of `facts.tables`.
///
/// # Safety
/// As [`discover`].
unsafe fn audit<H: AcpiHandler>(
    handler: &H,
    root: u64,
    entry_size: usize,
    memory: &Range<u64>,
    facts: &mut AcpiFacts,
) -> Vec<Option<Vec<u8>>> {
    let root_name = if entry_size == 4 { "RSDT" } else { "XSDT" };
    let mut bodies = Vec::new();
    // SAFETY: the caller's contract.
    let root_table = unsafe { read_checked(handler, root, memory) };
    if root_table.status != TableStatus::Unreachable && root_table.signature != *root_name.as_bytes() {
        let found = String::from_utf8_lossy(&root_table.signature).into_owned();
        facts.problems.push(format!("ACPI: the {root_name} at {root:#x} is signed {found:?}; no tables"));
        return bodies;
    }
    let bytes = match (root_table.status, root_table.bytes) {
        (TableStatus::Unreachable, _) => {
            facts.problems.push(format!("ACPI: {root_name} at {root:#x} is outside memory"));
            return bodies;
        }
        (TableStatus::BadChecksum, Some(b)) => {
            facts.problems.push(format!("ACPI: {root_name} checksum is wrong; its entries are used anyway"));
            b
        }
        (_, Some(b)) => b,
        (_, None) => {
            facts.problems.push(format!("ACPI: {root_name} length {} is invalid", root_table.length));
            return bodies;
        }
    };
    for chunk in bytes[HEADER_LEN as usize..].chunks_exact(entry_size).take(MAX_ROOT_ENTRIES) {
        let mut a = [0u8; 8];
        a[..entry_size].copy_from_slice(chunk);
        let address = u64::from_le_bytes(a);
        // SAFETY: the caller's contract.
        let t = unsafe { read_checked(handler, address, memory) };
        let entry = TableEntry { signature: t.signature, address, length: t.length, status: t.status };
        bodies.push(t.bytes.filter(|_| t.status == TableStatus::Valid));
        match entry.status {
            TableStatus::Valid => {}
            TableStatus::BadChecksum => facts.problems.push(format!(
                "ACPI: {} at {:#x} has a bad checksum; ignored",
                entry.name(),
                entry.address
            )),
            TableStatus::BadLength => facts.problems.push(format!(
                "ACPI: {} at {:#x} has an invalid length {}; ignored",
                entry.name(),
                entry.address,
                entry.length
            )),
            TableStatus::Unreachable => {
                facts.problems.push(format!("ACPI: {root_name} entry {address:#x} points outside memory; ignored"))
            }
        }
        facts.tables.push(entry);
    }
    bodies
}

/// The RSDP's facts (ACPI 6.5 §5.2.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rsdp {
    address: u64,
    revision: u8,
    /// RSDT or XSDT address, and the size of its entries.
    root: u64,
    entry_size: usize,
}

const RSDP_V1_LEN: u64 = 20;
const RSDP_V2_LEN: u64 = 36;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Check an RSDP at `addr`: signature, the ACPI 1.0 checksum over 20
/// bytes, and from revision 2 the extended checksum over 36. The XSDT is
/// used when revision ≥ 2 gives one, the RSDT otherwise (as ACPICA does).
///
/// # Safety
/// As [`discover`].
unsafe fn read_rsdp<H: AcpiHandler>(handler: &H, addr: u64, memory: &Range<u64>) -> Result<Rsdp, String> {
    if !fits(memory, addr, RSDP_V1_LEN) {
        return Err(format!("RSDP address {addr:#x} is outside memory"));
    }
    // SAFETY: checked against `memory`.
    let v1 = unsafe { read_bytes(handler, addr, RSDP_V1_LEN as usize) };
    if &v1[..8] != b"RSD PTR " {
        return Err(format!("no RSDP signature at {addr:#x}"));
    }
    if !checksum_ok(&v1) {
        return Err(format!("RSDP at {addr:#x} has a bad checksum"));
    }
    let revision = v1[15];
    let rsdt = u64::from(le32(&v1, 16).unwrap_or(0));
    let mut rsdp = Rsdp { address: addr, revision, root: rsdt, entry_size: 4 };
    if revision >= 2 {
        if !fits(memory, addr, RSDP_V2_LEN) {
            return Err(format!("RSDP revision {revision} at {addr:#x} runs outside memory"));
        }
        // SAFETY: checked against `memory`.
        let v2 = unsafe { read_bytes(handler, addr, RSDP_V2_LEN as usize) };
        if !checksum_ok(&v2) {
            return Err(format!("RSDP at {addr:#x} has a bad extended checksum"));
        }
        let xsdt = le64(&v2, 24).unwrap_or(0);
        if xsdt != 0 {
            rsdp.root = xsdt;
            rsdp.entry_size = 8;
        }
    }
    if rsdp.root == 0 {
        return Err(format!("RSDP at {addr:#x} names no RSDT or XSDT"));
    }
    Ok(rsdp)
}

/// Search the BIOS area 0xE0000..0x100000 on 16-byte boundaries for a valid
/// RSDP (ACPI 6.5 §5.2.5.1). The other place the spec names, the first KiB
/// of the EBDA, is found through a pointer at 0x40E, in the page the kernel
/// leaves unmapped; PVH loaders pass the RSDP address anyway, and SeaBIOS
/// puts the RSDP in the BIOS area.
///
/// # Safety
/// As [`discover`].
unsafe fn scan_for_rsdp<H: AcpiHandler>(handler: &H, memory: &Range<u64>) -> Result<Rsdp, String> {
    for addr in (0xe_0000..0x10_0000).step_by(16) {
        // SAFETY: `read_rsdp` checks every read against `memory`.
        if let Ok(r) = unsafe { read_rsdp(handler, addr, memory) } {
            return Ok(r);
        }
    }
    Err(String::from("no valid RSDP found in the BIOS area"))
}

/// The bytes of the first valid table signed `sig`.
fn valid_table(facts: &AcpiFacts, bodies: &[Option<Vec<u8>>], sig: &[u8; 4]) -> Option<Vec<u8>> {
    let i = facts.tables.iter().position(|t| &t.signature == sig && t.status == TableStatus::Valid)?;
    bodies.get(i)?.clone()
}

/// The PM timer's I/O port and the DSDT address from FADT bytes, reading
/// only fields inside the table's length: X_PM_TMR_BLK (offset 208, a
/// Generic Address) when present and in system I/O space, else PM_TMR_BLK
/// (offset 76, with PM_TMR_LEN = 4); X_DSDT (offset 140) when present and
/// non-zero, else DSDT (offset 40).
fn fadt_facts(fadt: &[u8]) -> (Option<u16>, Option<u64>) {
    const SYSTEM_IO: u8 = 1;
    let port = |a: u64| u16::try_from(a).ok().filter(|&p| p != 0);
    let x_pm = le64(fadt, 212).filter(|_| fadt.get(208) == Some(&SYSTEM_IO)).and_then(port);
    let pm = x_pm.or_else(|| le32(fadt, 76).filter(|_| fadt.get(91) == Some(&4)).and_then(|p| port(u64::from(p))));
    let dsdt = le64(fadt, 140).filter(|&a| a != 0).or_else(|| le32(fadt, 40).filter(|&a| a != 0).map(u64::from));
    (pm, dsdt)
}

/// Discover the ACPI facts.
///
/// Nothing is read before it is checked: the RSDP, the root table and
/// every table it lists are bounded by their headers against `memory`
/// (see [`audit`]); typed views of the `acpi` crate are made only over
/// tables the audit accepted, with lengths it checked.
///
/// # Safety
/// `handler` must map every physical address in `memory` readable.
pub unsafe fn discover<H: AcpiHandler>(handler: H, source: RsdpSource, memory: &Range<u64>) -> AcpiFacts {
    let mut facts = AcpiFacts::default();
    let rsdp = match source {
        // SAFETY: the caller's contract; every read is checked.
        RsdpSource::StartInfo(addr) => unsafe { read_rsdp(&handler, addr, memory) },
        // SAFETY: as above.
        RsdpSource::BiosScan => unsafe { scan_for_rsdp(&handler, memory) },
    };
    let rsdp = match rsdp {
        Ok(r) => r,
        Err(e) => {
            facts.problems.push(format!("ACPI: {e}; no ACPI facts"));
            return facts;
        }
    };
    facts.rsdp_address = rsdp.address;
    facts.revision = rsdp.revision;
    // SAFETY: the caller's `memory` contract.
    let bodies = unsafe { audit(&handler, rsdp.root, rsdp.entry_size, memory, &mut facts) };
    for sig in [b"MCFG", b"DMAR", b"FACP"] {
        let n = facts.tables.iter().filter(|t| &t.signature == sig).count();
        if n > 1 {
            let name = core::str::from_utf8(sig).unwrap_or("????");
            facts.problems.push(format!("ACPI: {n} {name} tables; only the first valid one is used"));
        }
    }

    if let Some(entry) = facts.tables.iter().find(|t| &t.signature == b"MCFG" && t.status == TableStatus::Valid) {
        if (entry.length as usize) < size_of::<Mcfg>() {
            facts.problems.push(format!("ACPI: MCFG length {} is too short; ignored", entry.length));
        } else {
            // SAFETY: the audit checked `[address, address + length)`
            // against `memory`, and the length covers the typed header.
            let mcfg = unsafe { handler.map_physical_region::<Mcfg>(entry.address as usize, entry.length as usize) };
            for e in mcfg.entries() {
                let r = McfgRegion {
                    base: e.base_address,
                    segment: e.pci_segment_group,
                    start_bus: e.bus_number_start,
                    end_bus: e.bus_number_end,
                };
                if r.is_valid() {
                    facts.mcfg.push(r);
                } else {
                    facts.problems.push(format!(
                        "ACPI: MCFG entry base {:#x} segment {} buses {:#x}-{:#x} is malformed; ignored",
                        r.base, r.segment, r.start_bus, r.end_bus
                    ));
                }
            }
        }
    } else if facts.table(b"MCFG").is_none() {
        facts.problems.push(String::from("ACPI: no MCFG table; PCI enumeration is skipped"));
    }

    facts.dmar = valid_table(&facts, &bodies, b"DMAR");

    let mut definition_blocks: Vec<Vec<u8>> = Vec::new();
    if let Some(fadt) = valid_table(&facts, &bodies, b"FACP") {
        let (pm, dsdt) = fadt_facts(&fadt);
        facts.pm_timer_port = pm;
        if pm.is_none() {
            log::debug!("ACPI: no I/O-port PM timer in the FADT");
        }
        if let Some(a) = dsdt {
            // The DSDT is not in the root table: checked here.
            // SAFETY: the caller's `memory` contract.
            let checked = unsafe { read_checked(&handler, a, memory) };
            match (checked.status, checked.bytes) {
                (TableStatus::Valid, Some(b)) => definition_blocks.push(b),
                (TableStatus::Unreachable, _) => facts.problems.push(format!("ACPI: DSDT at {a:#x} is outside memory")),
                (TableStatus::BadChecksum, _) => {
                    facts.problems.push(format!("ACPI: DSDT at {a:#x} has a bad checksum; not read"))
                }
                _ => facts.problems.push(format!("ACPI: DSDT at {a:#x} has an invalid length {}", checked.length)),
            }
        }
    }
    facts.dsdt_read = !definition_blocks.is_empty();
    // SSDTs in root-table order, after the DSDT: the order ACPICA loads
    // them into one namespace (an SSDT may open scopes the DSDT declares).
    definition_blocks.extend(
        facts.tables.iter().zip(&bodies).filter(|(t, _)| &t.signature == b"SSDT").filter_map(|(_, b)| b.clone()),
    );
    let mut ns = aml::Namespace::new();
    for table in &definition_blocks {
        ns.load_table(table);
    }
    let (bridges, notes) = aml::host_bridges(&ns);
    facts.host_bridges = bridges;
    facts.aml_notes = notes;
    facts.problems.extend(ns.problems);
    facts
}

/// Root buses of a segment: the root bus of every ACPI host bridge of this
/// segment (PNP0A03/PNP0A08, present by `_STA`), in namespace order, as
/// `acpi_pci_root_add` adds them. Host bridges whose bus is outside the
/// region or unknown get a note. Only when ACPI names no host bridge for
/// the segment at all (no DSDT, or none this reader could see) is the MCFG
/// start bus taken, with a note: Linux would then find only what the
/// peer-bus probe finds.
pub fn root_buses(acpi: &AcpiFacts, region: &McfgRegion, notes: &mut Vec<String>) -> Vec<(u8, String)> {
    let mut roots = Vec::new();
    for h in acpi.host_bridges.iter().filter(|h| h.segment == region.segment) {
        let Some((first, last)) = h.buses else {
            notes.push(format!("host bridge {}: bus number unknown (a method decides it); not scanned", h.path));
            continue;
        };
        if !(region.start_bus..=region.end_bus).contains(&first) {
            notes.push(format!(
                "host bridge {}: bus {first:02x} outside the ECAM buses {:02x}-{:02x}; not scanned",
                h.path, region.start_bus, region.end_bus
            ));
            continue;
        }
        let how = match h.source {
            aml::BusSource::Crs => format!("ACPI host bridge {}, _CRS buses {first:02x}-{last:02x}", h.path),
            aml::BusSource::Bbn => format!("ACPI host bridge {}, _BBN", h.path),
            aml::BusSource::Default => format!("ACPI host bridge {}, no _CRS bus range or _BBN: bus 0", h.path),
        };
        roots.push((first, how));
    }
    if roots.is_empty() && !acpi.host_bridges.iter().any(|h| h.segment == region.segment) {
        notes.push(format!(
            "ACPI declares no host bridge for segment {:04x}{}; MCFG start bus {:02x} taken as a root bus",
            region.segment,
            if acpi.dsdt_read { "" } else { " (no DSDT read)" },
            region.start_bus
        ));
        roots.push((region.start_bus, String::from("MCFG start bus (no ACPI host bridge)")));
    }
    roots
}

#[cfg(test)]
#[path = "acpi_tests.rs"]
mod tests;
