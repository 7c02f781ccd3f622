//! The ACPI DMA Remapping table (VT-d spec rev 4.1 chapter 8), parsed from
//! untrusted bytes.
//!
//! Layout (§8.1): the 36-byte ACPI header, HAW (host address width − 1) at
//! 36, flags at 37, 10 reserved bytes, then remapping structures from offset
//! 48, each `type: u16, length: u16, ...` (§8.2). Every length is checked
//! before use. A structure whose header is unusable (length < 4, including
//! 0 which would loop, or running past the table) stops the walk; a
//! structure whose body is bad is reported and skipped, and the walk goes
//! on since its length is trustworthy. Unknown types are skipped (§8.2:
//! "software must skip structures it does not comprehend").

use alloc::string::String;
use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

use super::dmar_scope::{DeviceScope, parse_scopes};

/// Bytes of the ACPI header plus the DMAR fields before the structures.
pub const DMAR_HEADER_LEN: usize = 48;

bitflags! {
    /// DMAR flags (§8.1).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct DmarFlags: u8 {
        const INTR_REMAP = 1 << 0;
        const X2APIC_OPT_OUT = 1 << 1;
        const DMA_CTRL_PLATFORM_OPT_IN = 1 << 2;
        const _ = !0;
    }
}

bitflags! {
    /// DRHD flags (§8.3).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct DrhdFlags: u8 {
        /// The unit covers every device of its segment not named by another
        /// DRHD (QEMU 7.2 q35 leaves it 0 and lists scopes).
        const INCLUDE_PCI_ALL = 1 << 0;
        const _ = !0;
    }
}

/// DMA Remapping Hardware Unit Definition (type 0, §8.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Drhd {
    pub offset: usize,
    pub flags: DrhdFlags,
    /// Size field 3:0: the register set spans 2^N 4 KiB pages.
    pub size: u8,
    pub segment: u16,
    pub register_base: u64,
    pub scopes: Vec<DeviceScope>,
}

impl Drhd {
    /// Bytes of register space to map.
    pub fn register_size(&self) -> usize {
        4096 << (self.size & 0xf)
    }
}

/// Reserved Memory Region Reporting (type 1, §8.4): DMA the firmware keeps
/// doing to `[base, limit]` for the scoped devices.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rmrr {
    pub offset: usize,
    pub segment: u16,
    pub base: u64,
    /// Last byte, inclusive.
    pub limit: u64,
    pub scopes: Vec<DeviceScope>,
}

/// Largest RMRR this kernel identity-maps (4 KiB pages, one list entry
/// each): USB and similar RMRRs are a few pages; integrated graphics' stolen
/// memory can reach 64 MiB. A stricter choice than Linux 6.1, which maps
/// RMRRs of any size (`iommu_domain_identity_map`): a larger one is
/// reported and not mapped, and is not counted as the named devices' RMRR
/// (they get no identity map, and their DMA into it faults).
pub const RMRR_MAX_LEN: u64 = 64 << 20;

/// Why an RMRR is not identity-mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RmrrError {
    /// Base or limit + 1 not page-aligned, or limit below base (Linux
    /// `rmrr_sanity_check`).
    Malformed,
    /// Overlaps usable RAM: the device could write memory the kernel hands
    /// out (Linux's `arch_rmrr_sanity_check` wants E820-reserved memory).
    OverlapsRam { start: u64, end: u64 },
    /// Longer than [`RMRR_MAX_LEN`].
    TooLarge { len: u64 },
}

impl fmt::Display for RmrrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Malformed => write!(f, "base or end not page-aligned, or end before base"),
            Self::OverlapsRam { start, end } => write!(f, "overlaps usable RAM {start:#x}-{end:#x}"),
            Self::TooLarge { len } => write!(f, "{len:#x} bytes, more than the {RMRR_MAX_LEN:#x} this kernel maps"),
        }
    }
}

impl Rmrr {
    /// Check the region before identity-mapping it. `ram` lists usable RAM
    /// as `[start, end)` ranges (the boot memory map).
    pub fn check(&self, ram: impl IntoIterator<Item = (u64, u64)>) -> Result<(), RmrrError> {
        let end = self.limit.checked_add(1).ok_or(RmrrError::Malformed)?;
        if !self.base.is_multiple_of(4096) || !end.is_multiple_of(4096) || self.limit <= self.base {
            return Err(RmrrError::Malformed);
        }
        if let Some((start, end)) = ram.into_iter().find(|&(s, e)| s < end && self.base < e) {
            return Err(RmrrError::OverlapsRam { start, end });
        }
        let len = end - self.base;
        if len > RMRR_MAX_LEN {
            return Err(RmrrError::TooLarge { len });
        }
        Ok(())
    }
}

/// Root Port ATS Capability Reporting (type 2, §8.5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Atsr {
    pub offset: usize,
    /// Bit 0 ALL_PORTS.
    pub flags: u8,
    pub segment: u16,
    pub scopes: Vec<DeviceScope>,
}

/// Remapping Hardware Static Affinity (type 3, §8.6).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rhsa {
    pub offset: usize,
    pub register_base: u64,
    pub proximity_domain: u32,
}

/// ACPI Name-space Device Declaration (type 4, §8.7).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Andd {
    pub offset: usize,
    pub device_number: u8,
    /// The ACPI object name, without its NUL.
    pub name: String,
}

/// SoC Integrated Address Translation Cache (type 5, §8.8).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Satc {
    pub offset: usize,
    /// Bit 0 ATC_REQUIRED.
    pub flags: u8,
    pub segment: u16,
    pub scopes: Vec<DeviceScope>,
}

/// One remapping structure.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Structure {
    Drhd(Drhd),
    Rmrr(Rmrr),
    Atsr(Atsr),
    Rhsa(Rhsa),
    Andd(Andd),
    Satc(Satc),
    /// A type this parser does not know (skipped, kept for the report).
    Unknown {
        offset: usize,
        kind: u16,
        length: usize,
    },
}

/// A parsed DMAR table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Dmar {
    /// Host address width in bits (HAW field + 1).
    pub host_address_width: u8,
    pub flags: DmarFlags,
    /// Valid structures, in table order.
    pub structures: Vec<Structure>,
    /// Problems found on the way, in table order (none stops the parse
    /// except a fatal header problem, returned as `Err`).
    pub errors: Vec<DmarError>,
    /// DRHD structures dropped for a bad body or scope.
    pub dropped_drhds: usize,
    /// The structure walk stopped before the table's end (unread
    /// structures may include DRHDs).
    pub walk_stopped: bool,
}

impl Dmar {
    pub fn drhds(&self) -> impl Iterator<Item = &Drhd> {
        self.structures.iter().filter_map(|s| match s {
            Structure::Drhd(d) => Some(d),
            _ => None,
        })
    }

    /// Whether some DRHD's scopes are unknown (dropped by the parser, or
    /// in the part of the table the walk never reached): then which unit
    /// covers a device may not be what the remaining DRHDs say
    /// (`unit_failure`).
    pub fn drhd_coverage_unknown(&self) -> bool {
        self.dropped_drhds > 0 || self.walk_stopped
    }

    pub fn rmrrs(&self) -> impl Iterator<Item = &Rmrr> {
        self.structures.iter().filter_map(|s| match s {
            Structure::Rmrr(r) => Some(r),
            _ => None,
        })
    }
}

/// A problem at byte `offset` of the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DmarError {
    pub offset: usize,
    pub kind: DmarErrorKind,
}

/// What is wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DmarErrorKind {
    /// Fewer bytes than the 48-byte DMAR header.
    TableTooShort { length: usize },
    /// The signature is not "DMAR".
    BadSignature([u8; 4]),
    /// The header length is below 48 or beyond the bytes given.
    BadTableLength { header: u32, available: usize },
    /// The bytes do not sum to 0 (non-fatal: Linux/ACPICA only warn).
    BadChecksum { sum: u8 },
    /// Fewer than 4 bytes left for a structure header.
    StructureHeaderTruncated { remaining: usize },
    /// A structure length below 4 (0 would loop forever).
    StructureTooShort { kind: u16, length: usize },
    /// A structure runs past the end of the table.
    StructurePastEnd { kind: u16, length: usize, remaining: usize },
    /// A structure shorter than its fixed fields.
    BodyTooShort { kind: u16, length: usize, minimum: usize },
    /// A DRHD with register base 0 or not 4 KiB aligned (Linux
    /// `dmar_validate_one_drhd`: "BIOS is broken").
    BadRegisterBase { base: u64 },
    /// An RMRR whose base/limit are not 4 KiB aligned or out of order
    /// (Linux `arch_rmrr_sanity_check`).
    BadRmrrRange { base: u64, limit: u64 },
    /// An ANDD name without a NUL terminator or not ASCII.
    BadAnddName,
    /// Fewer than 6 bytes left for a device scope.
    ScopeTruncated { remaining: usize },
    /// A scope length below 6 (0 would loop forever).
    ScopeTooShort { length: usize },
    /// A scope runs past the end of its structure.
    ScopePastStructureEnd { length: usize, remaining: usize },
    /// A scope path of an odd number of bytes.
    ScopeOddPath { length: usize },
    /// A scope with no path entry.
    ScopeEmptyPath,
    /// A path entry with device > 31 or function > 7.
    ScopeBadPathEntry { device: u8, function: u8 },
}

impl fmt::Display for DmarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DmarErrorKind as K;
        write!(f, "DMAR at offset {:#x}: ", self.offset)?;
        match self.kind {
            K::TableTooShort { length } => write!(f, "table of {length} bytes is shorter than 48"),
            K::BadSignature(s) => write!(f, "signature {s:02x?} is not \"DMAR\""),
            K::BadTableLength { header, available } => {
                write!(f, "header length {header} outside 48..={available} bytes available")
            }
            K::BadChecksum { sum } => write!(f, "checksum sums to {sum:#04x}, not 0"),
            K::StructureHeaderTruncated { remaining } => {
                write!(f, "{remaining} bytes left, too few for a structure header; walk stopped")
            }
            K::StructureTooShort { kind, length } => {
                write!(f, "structure type {kind} has length {length} (below 4); walk stopped")
            }
            K::StructurePastEnd { kind, length, remaining } => write!(
                f,
                "structure type {kind} of length {length} runs past the table ({remaining} bytes left); walk stopped"
            ),
            K::BodyTooShort { kind, length, minimum } => {
                write!(f, "structure type {kind} of length {length} is shorter than {minimum}; skipped")
            }
            K::BadRegisterBase { base } => {
                write!(f, "DRHD register base {base:#x} is zero or unaligned; skipped")
            }
            K::BadRmrrRange { base, limit } => {
                write!(f, "RMRR {base:#x}..={limit:#x} is unaligned or reversed; skipped")
            }
            K::BadAnddName => write!(f, "ANDD name is not NUL-terminated ASCII; skipped"),
            K::ScopeTruncated { remaining } => {
                write!(f, "{remaining} bytes left, too few for a device scope; structure skipped")
            }
            K::ScopeTooShort { length } => {
                write!(f, "device scope length {length} (below 6); structure skipped")
            }
            K::ScopePastStructureEnd { length, remaining } => write!(
                f,
                "device scope of length {length} runs past its structure ({remaining} bytes left); structure skipped"
            ),
            K::ScopeOddPath { length } => {
                write!(f, "device scope length {length} leaves an odd path; structure skipped")
            }
            K::ScopeEmptyPath => write!(f, "device scope has no path; structure skipped"),
            K::ScopeBadPathEntry { device, function } => {
                write!(f, "device scope path entry {device:#x}.{function:#x} out of range; structure skipped")
            }
        }
    }
}

/// Structure type numbers (§8.2 table 8-2).
mod ty {
    pub const DRHD: u16 = 0;
    pub const RMRR: u16 = 1;
    pub const ATSR: u16 = 2;
    pub const RHSA: u16 = 3;
    pub const ANDD: u16 = 4;
    pub const SATC: u16 = 5;
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Parse a DMAR table (the whole ACPI table, header included).
pub fn parse(bytes: &[u8]) -> Result<Dmar, DmarError> {
    let fatal = |offset, kind| Err(DmarError { offset, kind });
    if bytes.len() < DMAR_HEADER_LEN {
        return fatal(0, DmarErrorKind::TableTooShort { length: bytes.len() });
    }
    let signature = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if &signature != b"DMAR" {
        return fatal(0, DmarErrorKind::BadSignature(signature));
    }
    let header = u32_at(bytes, 4);
    let length = header as usize;
    if length < DMAR_HEADER_LEN || length > bytes.len() {
        return fatal(4, DmarErrorKind::BadTableLength { header, available: bytes.len() });
    }
    let table = &bytes[..length];
    let mut errors = Vec::new();
    let sum = table.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    if sum != 0 {
        errors.push(DmarError { offset: 9, kind: DmarErrorKind::BadChecksum { sum } });
    }
    let mut structures = Vec::new();
    let mut dropped_drhds = 0;
    let mut walk_stopped = false;
    let mut offset = DMAR_HEADER_LEN;
    while offset < length {
        let remaining = length - offset;
        let stop = |kind| DmarError { offset, kind };
        if remaining < 4 {
            errors.push(stop(DmarErrorKind::StructureHeaderTruncated { remaining }));
            walk_stopped = true;
            break;
        }
        let kind = u16_at(table, offset);
        let len = usize::from(u16_at(table, offset + 2));
        if len < 4 {
            errors.push(stop(DmarErrorKind::StructureTooShort { kind, length: len }));
            walk_stopped = true;
            break;
        }
        if len > remaining {
            errors.push(stop(DmarErrorKind::StructurePastEnd { kind, length: len, remaining }));
            walk_stopped = true;
            break;
        }
        match parse_structure(kind, offset, &table[offset..offset + len]) {
            Ok(s) => structures.push(s),
            Err(e) => {
                dropped_drhds += usize::from(kind == ty::DRHD);
                errors.push(e);
            }
        }
        offset += len;
    }
    Ok(Dmar {
        host_address_width: table[36].saturating_add(1),
        flags: DmarFlags::from_bits_retain(table[37]),
        structures,
        errors,
        dropped_drhds,
        walk_stopped,
    })
}

/// Parse one structure whose `body` (header included) starts at `offset`.
fn parse_structure(kind: u16, offset: usize, body: &[u8]) -> Result<Structure, DmarError> {
    let minimum = match kind {
        ty::DRHD => 16,
        ty::RMRR => 24,
        ty::ATSR | ty::SATC => 8,
        ty::RHSA => 20,
        ty::ANDD => 9,
        _ => {
            return Ok(Structure::Unknown { offset, kind, length: body.len() });
        }
    };
    let err = |kind| Err(DmarError { offset, kind });
    if body.len() < minimum {
        return err(DmarErrorKind::BodyTooShort { kind, length: body.len(), minimum });
    }
    let scopes = |start: usize| parse_scopes(&body[start..], offset + start);
    Ok(match kind {
        ty::DRHD => {
            let register_base = u64_at(body, 8);
            if register_base == 0 || register_base & 0xfff != 0 {
                return err(DmarErrorKind::BadRegisterBase { base: register_base });
            }
            Structure::Drhd(Drhd {
                offset,
                flags: DrhdFlags::from_bits_retain(body[4]),
                size: body[5] & 0xf,
                segment: u16_at(body, 6),
                register_base,
                scopes: scopes(16)?,
            })
        }
        ty::RMRR => {
            let (base, limit) = (u64_at(body, 8), u64_at(body, 16));
            if base & 0xfff != 0 || limit & 0xfff != 0xfff || limit < base {
                return err(DmarErrorKind::BadRmrrRange { base, limit });
            }
            Structure::Rmrr(Rmrr { offset, segment: u16_at(body, 6), base, limit, scopes: scopes(24)? })
        }
        ty::ATSR => Structure::Atsr(Atsr { offset, flags: body[4], segment: u16_at(body, 6), scopes: scopes(8)? }),
        ty::SATC => Structure::Satc(Satc { offset, flags: body[4], segment: u16_at(body, 6), scopes: scopes(8)? }),
        ty::RHSA => {
            Structure::Rhsa(Rhsa { offset, register_base: u64_at(body, 8), proximity_domain: u32_at(body, 16) })
        }
        ty::ANDD => {
            let raw = &body[8..];
            let Some(end) = raw.iter().position(|&c| c == 0) else {
                return err(DmarErrorKind::BadAnddName);
            };
            let Ok(name) = core::str::from_utf8(&raw[..end]) else {
                return err(DmarErrorKind::BadAnddName);
            };
            if !name.is_ascii() {
                return err(DmarErrorKind::BadAnddName);
            }
            Structure::Andd(Andd { offset, device_number: body[7], name: String::from(name) })
        }
        _ => {
            return Ok(Structure::Unknown { offset, kind, length: body.len() });
        }
    })
}
