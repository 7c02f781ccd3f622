//! ECAM address math from an ACPI MCFG allocation (PCI Firmware spec 3.2
//! §4.1.2). The base address is the address of bus 0 even when the region
//! starts at a later bus; only `start_bus..=end_bus` is decoded (Linux
//! `pci_mmcfg` / `mcfg_ioremap` maps `base + (start << 20)` onwards).

/// One MCFG configuration-space base address allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McfgRegion {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl McfgRegion {
    /// Physical address of a configuration register, or `None` when the
    /// function lies outside the decoded bus range or the address is bad.
    pub fn address(&self, segment: u16, bus: u8, device: u8, function: u8, offset: u16) -> Option<u64> {
        if segment != self.segment || bus < self.start_bus || bus > self.end_bus {
            return None;
        }
        if device > 31 || function > 7 || offset > 0xfff {
            return None;
        }
        let rel = (u64::from(bus) << 20) | (u64::from(device) << 15) | (u64::from(function) << 12) | u64::from(offset);
        self.base.checked_add(rel)
    }

    /// The physical range actually decoded: `[base + start<<20, base + (end+1)<<20)`.
    pub fn decoded_range(&self) -> (u64, u64) {
        (self.base + (u64::from(self.start_bus) << 20), self.base + ((u64::from(self.end_bus) + 1) << 20))
    }

    /// A region whose end bus precedes its start bus is malformed.
    pub fn is_valid(&self) -> bool {
        self.start_bus <= self.end_bus && self.base.is_multiple_of(1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q35_region() {
        let r = McfgRegion { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 0xff };
        assert_eq!(r.address(0, 0, 0, 0, 0), Some(0xb000_0000));
        assert_eq!(r.address(0, 1, 2, 3, 0x148), Some(0xb000_0000 + (1 << 20) + (2 << 15) + (3 << 12) + 0x148));
        assert_eq!(r.address(1, 0, 0, 0, 0), None, "other segment");
        assert_eq!(r.address(0, 0, 32, 0, 0), None);
        assert_eq!(r.address(0, 0, 0, 8, 0), None);
        assert_eq!(r.address(0, 0, 0, 0, 0x1000), None);
    }

    #[test]
    fn base_is_bus_zero_address_even_when_start_bus_is_not_zero() {
        let r = McfgRegion { base: 0xe000_0000, segment: 0, start_bus: 0x40, end_bus: 0x7f };
        assert_eq!(r.address(0, 0x3f, 0, 0, 0), None, "below start bus: not decoded");
        assert_eq!(r.address(0, 0x40, 0, 0, 0), Some(0xe000_0000 + (0x40 << 20)));
        assert_eq!(r.address(0, 0x80, 0, 0, 0), None);
        assert_eq!(r.decoded_range(), (0xe400_0000, 0xe800_0000));
    }

    #[test]
    fn validity() {
        assert!(!McfgRegion { base: 0xb000_0000, segment: 0, start_bus: 5, end_bus: 4 }.is_valid());
        assert!(!McfgRegion { base: 0xb000_1000, segment: 0, start_bus: 0, end_bus: 4 }.is_valid());
    }
}
