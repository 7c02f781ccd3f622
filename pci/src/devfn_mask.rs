//! A 256-bit set of devfns: Linux's `dma_alias_mask` and the `devfns`
//! bitmap of `pci_device_group` are both this shape.

/// A set of devfns (device << 3 | function) on one bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DevfnMask([u64; 4]);

impl DevfnMask {
    pub const fn new() -> Self {
        Self([0; 4])
    }
    pub const fn contains(&self, devfn: u8) -> bool {
        self.0[(devfn / 64) as usize] & (1 << (devfn % 64)) != 0
    }
    pub fn insert(&mut self, devfn: u8) {
        self.0[usize::from(devfn / 64)] |= 1 << (devfn % 64);
    }
    /// Returns whether `devfn` was already present, then inserts it
    /// (Linux `test_and_set_bit`).
    pub fn test_and_set(&mut self, devfn: u8) -> bool {
        let seen = self.contains(devfn);
        self.insert(devfn);
        seen
    }
    /// Linux `pci_add_dma_alias(dev, devfn_from, nr_devfns)`: a range,
    /// clamped at the end of the devfn space.
    pub fn insert_range(&mut self, first: u8, count: u16) {
        let end = (u16::from(first) + count).min(256);
        for devfn in u16::from(first)..end {
            self.insert(devfn as u8);
        }
    }
    pub const fn is_empty(&self) -> bool {
        self.0[0] | self.0[1] | self.0[2] | self.0[3] == 0
    }
    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|d| self.contains(*d))
    }
}
