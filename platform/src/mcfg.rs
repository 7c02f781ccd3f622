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

    /// The physical range actually decoded: `[base + start<<20, base + (end+1)<<20)`,
    /// or `None` when it does not fit in 64 bits.
    pub fn decoded_range(&self) -> Option<(u64, u64)> {
        let start = self.base.checked_add(u64::from(self.start_bus) << 20)?;
        let end = self.base.checked_add((u64::from(self.end_bus) + 1) << 20)?;
        Some((start, end))
    }

    /// Malformed: an end bus before the start bus, a base not aligned to
    /// 1 MiB, or a window that wraps past 2^64.
    pub fn is_valid(&self) -> bool {
        self.start_bus <= self.end_bus && self.base.is_multiple_of(1 << 20) && self.decoded_range().is_some()
    }
}

/// x86 Linux's `pcibios_last_bus` with MMCONFIG (arch/x86/pci/mmconfig-shared.c
/// `__pci_mmcfg_init`): walking the MCFG regions sorted by segment and
/// start bus (`pci_mmconfig_add` keeps them so), the end bus of the last
/// segment-0 region; `None` without one. The peer-bus probe covers
/// `0..=last` of segment 0 only, and not at all when it is 0.
pub fn pcibios_last_bus(regions: &[McfgRegion]) -> Option<u8> {
    regions.iter().filter(|r| r.segment == 0).max_by_key(|r| r.start_bus).map(|r| r.end_bus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_bus_is_the_end_of_the_last_segment_0_region() {
        let r = |segment, start_bus, end_bus| McfgRegion { base: 0xb000_0000, segment, start_bus, end_bus };
        assert_eq!(pcibios_last_bus(&[r(0, 0, 0xff)]), Some(0xff));
        assert_eq!(pcibios_last_bus(&[r(0, 0x80, 0xbf), r(1, 0, 0xff), r(0, 0, 0x3f)]), Some(0xbf));
        assert_eq!(pcibios_last_bus(&[r(1, 0, 0xff)]), None);
        assert_eq!(pcibios_last_bus(&[]), None);
    }

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
        assert_eq!(r.address(0, 0x7f, 31, 7, 0xffc), Some(0xe000_0000 + (0x7f << 20) + (31 << 15) + (7 << 12) + 0xffc));
        assert_eq!(r.address(0, 0x80, 0, 0, 0), None);
        assert_eq!(r.decoded_range(), Some((0xe400_0000, 0xe800_0000)));
    }

    #[test]
    fn validity() {
        assert!(!McfgRegion { base: 0xb000_0000, segment: 0, start_bus: 5, end_bus: 4 }.is_valid());
        assert!(!McfgRegion { base: 0xb000_1000, segment: 0, start_bus: 0, end_bus: 4 }.is_valid());
    }

    #[test]
    fn a_window_wrapping_past_2_pow_64_is_malformed() {
        let r = McfgRegion { base: 0xffff_ffff_fff0_0000, segment: 0, start_bus: 0, end_bus: 0 };
        assert_eq!(r.decoded_range(), None);
        assert!(!r.is_valid());
        let last = McfgRegion { base: 0xffff_ffff_f000_0000, segment: 0, start_bus: 0, end_bus: 0xff };
        assert_eq!(last.decoded_range(), None, "an end of exactly 2^64 is not representable either");
        assert!(!last.is_valid());
    }
}
