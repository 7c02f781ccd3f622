//! ACPI: from the RSDP to the facts the kernel needs (MCFG regions, the
//! DMAR table's bytes, the PM timer port, host-bridge `_BBN`s), with every
//! table checked before it is trusted.
//!
//! Table discovery and typed views use the `acpi` crate. Before the crate is
//! asked for a table, [`audit`] reads every root-table entry's header itself
//! and rejects tables whose length is absurd or reaches outside readable
//! memory: the crate trusts a header's length and would read that far to sum
//! the checksum.
#![allow(unsafe_code)] // Mapping firmware memory through `AcpiHandler` is unsafe by contract.

use crate::aml;
use crate::mcfg::McfgRegion;
use ::acpi::address::AddressSpace;
use ::acpi::fadt::Fadt;
use ::acpi::mcfg::Mcfg;
use ::acpi::sdt::{SdtHeader, Signature};
use ::acpi::{AcpiHandler, AcpiTable, AcpiTables};
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

/// The ACPI DMAR table (Intel VT-d spec §8.1) as an `acpi` crate table, so
/// it is found and checksummed like any other. Remapping structures follow
/// at offset 48; the `iommu` crate parses them.
#[repr(C, packed)]
pub struct Dmar {
    header: SdtHeader,
}

// SAFETY: `Dmar` is `repr(C, packed)` and starts with the SDT header, as
// every ACPI table does; its signature is "DMAR".
unsafe impl AcpiTable for Dmar {
    const SIGNATURE: Signature = Signature::DMAR;
    fn header(&self) -> &SdtHeader {
        &self.header
    }
}

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
    /// Constant `_BBN` values from the DSDT and SSDTs: candidate root buses.
    pub host_bridge_buses: Vec<u8>,
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

/// Check every RSDT/XSDT entry: reachable, sane length, checksum.
///
/// # Safety
/// As [`discover`].
unsafe fn audit<H: AcpiHandler>(handler: &H, root: u64, entry_size: usize, memory: &Range<u64>, facts: &mut AcpiFacts) {
    let root_name = if entry_size == 4 { "RSDT" } else { "XSDT" };
    // SAFETY: the caller's contract.
    let root_table = unsafe { read_checked(handler, root, memory) };
    let bytes = match (root_table.status, root_table.bytes) {
        (TableStatus::Unreachable, _) => {
            facts.problems.push(format!("ACPI: {root_name} at {root:#x} is outside memory"));
            return;
        }
        (TableStatus::BadChecksum, Some(b)) => {
            facts.problems.push(format!("ACPI: {root_name} checksum is wrong; its entries are used anyway"));
            b
        }
        (_, Some(b)) => b,
        (_, None) => {
            facts.problems.push(format!("ACPI: {root_name} length {} is invalid", root_table.length));
            return;
        }
    };
    for chunk in bytes[HEADER_LEN as usize..].chunks_exact(entry_size).take(MAX_ROOT_ENTRIES) {
        let mut a = [0u8; 8];
        a[..entry_size].copy_from_slice(chunk);
        let address = u64::from_le_bytes(a);
        // SAFETY: the caller's contract.
        let t = unsafe { read_checked(handler, address, memory) };
        let entry = TableEntry { signature: t.signature, address, length: t.length, status: t.status };
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
}

/// Discover the ACPI facts.
///
/// # Safety
/// `handler` must map every physical address in `memory` readable, and
/// the RSDP source must be a BIOS platform when it is [`RsdpSource::BiosScan`].
pub unsafe fn discover<H: AcpiHandler>(handler: H, source: RsdpSource, memory: &Range<u64>) -> AcpiFacts {
    let mut facts = AcpiFacts::default();
    let tables = match source {
        // SAFETY: the caller guarantees the address is readable memory;
        // `from_rsdp` validates signature and checksum before use.
        RsdpSource::StartInfo(addr) if fits(memory, addr, 36) => unsafe {
            AcpiTables::from_rsdp(handler.clone(), addr as usize)
        },
        RsdpSource::StartInfo(addr) => {
            facts.problems.push(format!("ACPI: RSDP address {addr:#x} from the start info is unusable"));
            return facts;
        }
        // SAFETY: the caller guarantees a BIOS platform.
        RsdpSource::BiosScan => unsafe { AcpiTables::search_for_rsdp_bios(handler.clone()) },
    };
    let tables = match tables {
        Ok(t) => t,
        Err(e) => {
            facts.problems.push(format!("ACPI: no valid RSDP/RSDT ({e:?}); no ACPI facts"));
            return facts;
        }
    };
    if let RsdpSource::StartInfo(a) = source {
        facts.rsdp_address = a;
    }
    facts.revision = tables.revision();
    // The root table address again, for the audit: re-read from the RSDP
    // that `from_rsdp` just validated.
    let root = root_table_address(&handler, &source);
    let entry_size = if facts.revision == 0 { 4 } else { 8 };
    if let Some(root) = root {
        // SAFETY: the caller's `memory` contract.
        unsafe { audit(&handler, root, entry_size, memory, &mut facts) };
    }
    let valid = |facts: &AcpiFacts, sig: &[u8; 4]| facts.table(sig).is_some_and(|t| t.status == TableStatus::Valid);

    if valid(&facts, b"MCFG") {
        match tables.find_table::<Mcfg>() {
            Ok(mcfg) => {
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
            Err(e) => facts.problems.push(format!("ACPI: MCFG unusable: {e:?}")),
        }
    } else if facts.table(b"MCFG").is_none() {
        facts.problems.push(String::from("ACPI: no MCFG table; PCI enumeration is skipped"));
    }

    if valid(&facts, b"DMAR")
        && let Ok(dmar) = tables.find_table::<Dmar>()
    {
        let len = dmar.header().length as usize;
        // SAFETY: the audit checked `[address, address + len)` against `memory`.
        facts.dmar = Some(unsafe { read_bytes(&handler, dmar.physical_start() as u64, len) });
    }

    if valid(&facts, b"FACP") {
        match tables.find_table::<Fadt>() {
            Ok(fadt) => {
                match fadt.pm_timer_block() {
                    Ok(Some(t)) if t.address_space == AddressSpace::SystemIo => {
                        facts.pm_timer_port = u16::try_from(t.address).ok();
                    }
                    other => log::debug!("ACPI: no I/O-port PM timer in the FADT: {other:?}"),
                }
                let dsdt = fadt.dsdt_address().ok().map(|a| a as u64);
                if let Some(a) = dsdt {
                    // SAFETY: the caller's `memory` contract.
                    unsafe { scan_aml(&handler, a, memory, "DSDT", &mut facts) };
                }
            }
            Err(e) => facts.problems.push(format!("ACPI: FADT unusable: {e:?}")),
        }
    }
    let ssdts: Vec<u64> = facts
        .tables
        .iter()
        .filter(|t| &t.signature == b"SSDT" && t.status == TableStatus::Valid)
        .map(|t| t.address)
        .collect();
    for a in ssdts {
        // SAFETY: the caller's `memory` contract.
        unsafe { scan_aml(&handler, a, memory, "SSDT", &mut facts) };
    }
    facts
}

/// RSDT (revision 0) or XSDT address from the RSDP.
fn root_table_address<H: AcpiHandler>(handler: &H, source: &RsdpSource) -> Option<u64> {
    let RsdpSource::StartInfo(addr) = *source else {
        return None;
    };
    // SAFETY: `from_rsdp` already read and validated these 36 bytes.
    let r = unsafe { read_bytes(handler, addr, 36) };
    if r[15] == 0 {
        Some(u64::from(u32::from_le_bytes([r[16], r[17], r[18], r[19]])))
    } else {
        Some(u64::from_le_bytes([r[24], r[25], r[26], r[27], r[28], r[29], r[30], r[31]]))
    }
}

/// Add the constant `_BBN`s of one AML table.
///
/// # Safety
/// As [`discover`].
unsafe fn scan_aml<H: AcpiHandler>(handler: &H, addr: u64, memory: &Range<u64>, name: &str, facts: &mut AcpiFacts) {
    // SAFETY: the caller's contract.
    let checked = unsafe { read_checked(handler, addr, memory) };
    let t = match (checked.status, checked.bytes) {
        (TableStatus::Valid, Some(b)) => b,
        (TableStatus::Unreachable, _) => {
            facts.problems.push(format!("ACPI: {name} at {addr:#x} is outside memory"));
            return;
        }
        (TableStatus::BadChecksum, _) => {
            facts.problems.push(format!("ACPI: {name} at {addr:#x} has a bad checksum; not scanned"));
            return;
        }
        _ => {
            facts.problems.push(format!("ACPI: {name} at {addr:#x} has an invalid length {}", checked.length));
            return;
        }
    };
    for bus in aml::find_bbn(&t[HEADER_LEN as usize..]) {
        if !facts.host_bridge_buses.contains(&bus) {
            facts.host_bridge_buses.push(bus);
        }
    }
}

#[cfg(test)]
#[path = "acpi_tests.rs"]
mod tests;
