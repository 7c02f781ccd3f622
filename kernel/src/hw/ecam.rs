//! PCI configuration space over ECAM (PCIe Base spec §7.2.2), the kernel's
//! implementation of `pci::ConfigSpace`. Every access is counted for the
//! report.

use crate::hw::memory::IDENTITY_LIMIT;
use crate::hw::mmio;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pci::{Bdf, ConfigSpace};
use platform::mcfg::McfgRegion;

pub struct Ecam {
    regions: Vec<McfgRegion>,
    pub reads: u64,
    pub writes: u64,
    /// The ACPI PM timer, for the waits between Configuration Request
    /// Retry polls.
    pm_timer: Option<u16>,
}

impl Ecam {
    /// Accept the MCFG regions the boot page tables map (uncached, below
    /// 4 GiB); report the others.
    pub fn new(regions: &[McfgRegion]) -> (Self, Vec<String>) {
        let mut ok = Vec::new();
        let mut problems = Vec::new();
        for r in regions {
            let Some((start, end)) = r.decoded_range() else {
                problems.push(format!("ECAM: segment {} window at {:#x} wraps past 2^64; not used", r.segment, r.base));
                continue;
            };
            if start < (2 << 30) || end > IDENTITY_LIMIT {
                problems.push(format!(
                    "ECAM: segment {} window {start:#x}-{end:#x} is outside the uncached 2-4 GiB map; not used",
                    r.segment
                ));
            } else {
                ok.push(*r);
            }
        }
        (Self { regions: ok, reads: 0, writes: 0, pm_timer: None }, problems)
    }

    /// Time the Configuration Request Retry waits with the PM timer.
    pub fn set_pm_timer(&mut self, port: Option<u16>) {
        self.pm_timer = port;
    }

    pub fn regions(&self) -> &[McfgRegion] {
        &self.regions
    }

    /// The register's physical address, if an ECAM window decodes it and
    /// the access is naturally aligned.
    fn address(&self, bdf: Bdf, offset: u16, size: u16) -> Option<u64> {
        if !offset.is_multiple_of(size) {
            return None;
        }
        self.regions.iter().find_map(|r| r.address(bdf.segment, bdf.bus, bdf.device, bdf.function, offset))
    }

    fn read<T: Copy>(&mut self, bdf: Bdf, offset: u16, ones: T) -> T {
        self.reads += 1;
        match self.address(bdf, offset, size_of::<T>() as u16) {
            // SAFETY: `address` only returns aligned addresses inside an
            // ECAM window that `new` checked is mapped uncached;
            // configuration reads have no side effects.
            Some(a) => unsafe { mmio::read(a) },
            None => ones,
        }
    }

    fn write<T: Copy>(&mut self, bdf: Bdf, offset: u16, value: T) {
        self.writes += 1;
        if let Some(a) = self.address(bdf, offset, size_of::<T>() as u16) {
            // SAFETY: as in `read`; the caller (the pci crate) writes only
            // registers whose effect it intends.
            unsafe { mmio::write(a, value) }
        }
    }
}

impl ConfigSpace for Ecam {
    fn read8(&mut self, bdf: Bdf, offset: u16) -> u8 {
        self.read(bdf, offset, 0xff)
    }
    fn read16(&mut self, bdf: Bdf, offset: u16) -> u16 {
        self.read(bdf, offset, 0xffff)
    }
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32 {
        self.read(bdf, offset, 0xffff_ffff)
    }
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) {
        self.write(bdf, offset, value)
    }
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) {
        self.write(bdf, offset, value)
    }
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.write(bdf, offset, value)
    }
    fn has_extended_space(&self, bdf: Bdf) -> bool {
        self.address(bdf, 0x100, 4).is_some()
    }
    /// Linux `msleep` between CRS polls, on the PM timer. Without one (no
    /// FADT) there is no time base: the poll is then not delayed, and a
    /// device still retrying after its 17 reads is given up early.
    fn crs_delay_ms(&mut self, ms: u32) {
        if let Some(port) = self.pm_timer {
            crate::clock::pm_delay_ms(port, ms);
        }
    }
}
