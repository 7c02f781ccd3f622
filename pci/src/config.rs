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

impl Bdf {
    /// Parse `SSSS:BB:DD.F` or `BB:DD.F` (segment 0), hexadecimal as Linux
    /// prints them; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (seg_bus, func) = s.rsplit_once('.')?;
        let mut parts = seg_bus.split(':').rev();
        let device = u8::from_str_radix(parts.next()?, 16).ok()?;
        let bus = u8::from_str_radix(parts.next()?, 16).ok()?;
        let segment = match parts.next() {
            Some(seg) => u16::from_str_radix(seg, 16).ok()?,
            None => 0,
        };
        let function = func.parse::<u8>().ok()?;
        if parts.next().is_some() || device > 31 || function > 7 {
            return None;
        }
        Some(Self { segment, bus, device, function })
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
    /// Wait `ms` milliseconds between polls of a function answering
    /// Configuration Request Retry Status (Linux `msleep` in
    /// `pci_bus_wait_crs`). The default does not wait: the poll count is
    /// still bounded, but a slow device gets less time than under Linux.
    fn crs_delay_ms(&mut self, ms: u32) {
        let _ = ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn parse_and_display_round_trip() {
        let b = Bdf::parse("0000:03:00.0").unwrap();
        assert_eq!(b, Bdf::new(0, 3, 0, 0));
        assert_eq!(format!("{b}"), "0000:03:00.0");
        assert_eq!(Bdf::parse("41:1f.7"), Some(Bdf::new(0, 0x41, 0x1f, 7)));
        assert_eq!(Bdf::parse("0001:00:02.1"), Some(Bdf::new(1, 0, 2, 1)));
        for bad in ["", "03:00", "0000:03:20.0", "0000:03:00.8", "x:03:00.0", "0:0:03:00.0", "0000:100:00.0"] {
            assert_eq!(Bdf::parse(bad), None, "{bad}");
        }
    }
}
