//! The physical memory map as the firmware reports it (E820 types).

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// E820 type 1: usable RAM.
    Ram,
    /// Type 2: reserved (firmware, MMIO).
    Reserved,
    /// Type 3: ACPI tables (reclaimable once parsed).
    AcpiReclaimable,
    /// Type 4: ACPI NVS.
    AcpiNvs,
    /// Type 5: unusable.
    Unusable,
    Other(u32),
}

impl MemoryKind {
    pub fn from_e820(t: u32) -> Self {
        match t {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ram => f.write_str("RAM"),
            Self::Reserved => f.write_str("reserved"),
            Self::AcpiReclaimable => f.write_str("ACPI"),
            Self::AcpiNvs => f.write_str("ACPI NVS"),
            Self::Unusable => f.write_str("unusable"),
            Self::Other(t) => write!(f, "type {t}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte, saturating for bogus entries near 2^64.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// Usable RAM as `[start, end)` ranges.
pub fn ram_ranges(regions: &[MemoryRegion]) -> impl Iterator<Item = (u64, u64)> + '_ {
    regions.iter().filter(|r| r.kind == MemoryKind::Ram).map(|r| (r.start, r.end()))
}

/// Total bytes of usable RAM.
pub fn total_ram(regions: &[MemoryRegion]) -> u64 {
    regions.iter().filter(|r| r.kind == MemoryKind::Ram).fold(0u64, |sum, r| sum.saturating_add(r.len))
}
