//! The seam to hardware: configuration-space access by segment, bus, device,
//! function and register offset.

use core::fmt;

/// A PCI function address: segment (PCI domain), bus, device and function.
///
/// Displays as Linux does in sysfs and in `lspci -D`: `SSSS:BB:DD.F`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Bdf {
    pub segment: u16,
    pub bus: u8,
    /// Device number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7 (0..=255 devfn space with ARI is expressed
    /// through `devfn`).
    pub function: u8,
}

impl Bdf {
    pub const fn new(segment: u16, bus: u8, device: u8, function: u8) -> Self {
        Self { segment, bus, device, function }
    }

    /// Build from a bus and an 8-bit devfn (`PCI_DEVFN`: device << 3 | function).
    pub const fn from_devfn(segment: u16, bus: u8, devfn: u8) -> Self {
        Self { segment, bus, device: devfn >> 3, function: devfn & 7 }
    }

    /// `PCI_DEVFN(slot, func)`.
    pub const fn devfn(self) -> u8 {
        (self.device << 3) | self.function
    }

    /// The 16-bit requester id (`PCI_DEVID(bus, devfn)`), as the IOMMU sees it.
    pub const fn requester_id(self) -> u16 {
        ((self.bus as u16) << 8) | self.devfn() as u16
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.segment, self.bus, self.device, self.function)
    }
}

/// Configuration-space access for one or more PCI segments.
///
/// `offset` is a byte offset into the function's 4 KiB space; accesses are
/// naturally aligned. Reads of a function that does not exist return all
/// ones, as on real hardware (a master abort); an implementation that cannot
/// reach an address at all (outside every ECAM window) also returns all ones
/// and ignores writes.
pub trait ConfigSpace {
    fn read8(&mut self, bdf: Bdf, offset: u16) -> u8;
    fn read16(&mut self, bdf: Bdf, offset: u16) -> u16;
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32;
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8);
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16);
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32);
    /// Whether `bdf` has the 4 KiB extended space (ECAM) rather than only
    /// the 256-byte legacy space.
    fn has_extended_space(&self, bdf: Bdf) -> bool;
}
