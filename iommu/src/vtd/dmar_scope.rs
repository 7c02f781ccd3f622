//! DMAR device scopes (VT-d spec rev 4.1 §8.3.1) and their resolution to a
//! PCI function by walking bridges (§8.3.2; Linux `dmar_match_pci_path`
//! walks the same path from the device upwards).

use alloc::vec::Vec;
use core::fmt;

use pci::Bdf;

use super::dmar::{DmarError, DmarErrorKind};

/// Device scope entry type (§8.3.1 table 8-3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScopeType {
    /// 1: a PCI endpoint device.
    Endpoint,
    /// 2: a PCI-PCI bridge and everything below it.
    SubHierarchy,
    /// 3: an I/O APIC; enumeration id = its APIC id.
    IoApic,
    /// 4: an MSI-capable HPET; enumeration id = its HPET number.
    Hpet,
    /// 5: an ACPI namespace device; enumeration id = its ANDD number.
    AcpiNamespace,
    /// Reserved types are kept, not interpreted.
    Reserved(u8),
}

impl ScopeType {
    pub const fn from_raw(raw: u8) -> Self {
        match raw {
            1 => Self::Endpoint,
            2 => Self::SubHierarchy,
            3 => Self::IoApic,
            4 => Self::Hpet,
            5 => Self::AcpiNamespace,
            other => Self::Reserved(other),
        }
    }
}

/// One hop of a scope path: a device and function on the current bus.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PathEntry {
    pub device: u8,
    pub function: u8,
}

/// A device scope (§8.3.1):
///
/// ```text
///  byte 0     type
///  byte 1     length (6 + 2 × path entries)
///  byte 2     flags (§8.3.1, rev 3.x+; 0 on QEMU)
///  byte 3     reserved
///  byte 4     enumeration id
///  byte 5     start bus number
///  bytes 6..  path: (device, function) pairs
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceScope {
    /// Byte offset of the scope in the DMAR table.
    pub offset: usize,
    pub kind: ScopeType,
    pub flags: u8,
    pub enumeration_id: u8,
    pub start_bus: u8,
    /// At least one entry.
    pub path: Vec<PathEntry>,
}

/// Why a scope path does not lead to a function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResolveError {
    /// No path entries (the parser never produces this).
    EmptyPath,
    /// Hop `hop` names a function that is not a bridge (or is absent): the
    /// path points nowhere.
    NotABridge { hop: usize, at: Bdf },
    /// Hop `hop`'s bridge reports a secondary bus not below its own bus: a
    /// loop or a misprogrammed bridge.
    NotDownstream { hop: usize, at: Bdf, secondary: u8 },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPath => write!(f, "DMAR scope has an empty path"),
            Self::NotABridge { hop, at } => {
                write!(f, "DMAR scope path hop {hop}: {at} is not a bridge")
            }
            Self::NotDownstream { hop, at, secondary } => {
                write!(f, "DMAR scope path hop {hop}: bridge {at} has secondary bus {secondary:#04x}, not below it")
            }
        }
    }
}

impl DeviceScope {
    /// The function the path names: start at `start_bus`, and for every
    /// entry but the last, continue on that bridge's secondary bus. The
    /// walk is bounded by the path length (at most 124 hops).
    pub fn resolve(
        &self,
        segment: u16,
        mut secondary_bus_of: impl FnMut(Bdf) -> Option<u8>,
    ) -> Result<Bdf, ResolveError> {
        let mut bus = self.start_bus;
        let (last, hops) = self.path.split_last().ok_or(ResolveError::EmptyPath)?;
        for (hop, e) in hops.iter().enumerate() {
            let at = Bdf::new(segment, bus, e.device, e.function);
            let secondary = secondary_bus_of(at).ok_or(ResolveError::NotABridge { hop, at })?;
            if secondary <= bus {
                return Err(ResolveError::NotDownstream { hop, at, secondary });
            }
            bus = secondary;
        }
        Ok(Bdf::new(segment, bus, last.device, last.function))
    }
}

/// Parse the scopes filling `bytes`, which start at table offset `base`.
pub(crate) fn parse_scopes(bytes: &[u8], base: usize) -> Result<Vec<DeviceScope>, DmarError> {
    let mut scopes = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let offset = base + pos;
        let err = |kind| Err(DmarError { offset, kind });
        let rest = &bytes[pos..];
        if rest.len() < 6 {
            return err(DmarErrorKind::ScopeTruncated { remaining: rest.len() });
        }
        let length = usize::from(rest[1]);
        if length < 6 {
            return err(DmarErrorKind::ScopeTooShort { length });
        }
        if length > rest.len() {
            return err(DmarErrorKind::ScopePastStructureEnd { length, remaining: rest.len() });
        }
        if (length - 6) % 2 != 0 {
            return err(DmarErrorKind::ScopeOddPath { length });
        }
        if length == 6 {
            return err(DmarErrorKind::ScopeEmptyPath);
        }
        let path: Vec<PathEntry> =
            rest[6..length].chunks_exact(2).map(|p| PathEntry { device: p[0], function: p[1] }).collect();
        if let Some(bad) = path.iter().find(|p| p.device > 31 || p.function > 7) {
            return err(DmarErrorKind::ScopeBadPathEntry { device: bad.device, function: bad.function });
        }
        scopes.push(DeviceScope {
            offset,
            kind: ScopeType::from_raw(rest[0]),
            flags: rest[2],
            enumeration_id: rest[4],
            start_bus: rest[5],
            path,
        });
        pos += length;
    }
    Ok(scopes)
}
