//! A configuration-space snapshot: the bytes an input gave for each
//! function, behind `pci::ConfigSpace` so the kernel's own enumeration,
//! ACS and grouping code runs on it unchanged.
//!
//! Bytes past what the input could give read as all ones, as a master
//! abort would. Writes (ACS enabling, ARI forwarding) change the snapshot
//! only, like Linux's own writes changed the machine.

use std::collections::BTreeMap;

use pci::{Bdf, ConfigSpace};

/// One function's bytes.
#[derive(Clone, Debug)]
pub struct Space {
    /// 4096 bytes; those at or past `readable` are 0xff.
    data: Vec<u8>,
    /// How many bytes the input gave (64, 256 or 4096 typically).
    pub readable: usize,
}

impl Space {
    /// A space from the first `bytes.len()` bytes (at most 4096).
    pub fn new(bytes: &[u8]) -> Self {
        let readable = bytes.len().min(4096);
        let mut data = vec![0xff; 4096];
        data[..readable].copy_from_slice(&bytes[..readable]);
        Self { data, readable }
    }
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.readable]
    }
}

/// Every function of the input, by address.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub spaces: BTreeMap<Bdf, Space>,
}

impl Snapshot {
    pub fn insert(&mut self, bdf: Bdf, space: Space) {
        self.spaces.insert(bdf, space);
    }

    fn get(&self, bdf: Bdf, offset: u16, size: usize) -> u32 {
        let Some(s) = self.spaces.get(&bdf) else {
            return u32::MAX;
        };
        let start = usize::from(offset);
        if start + size > 4096 {
            return u32::MAX;
        }
        (0..size).fold(0, |acc, i| acc | (u32::from(s.data[start + i]) << (8 * i)))
    }

    fn put(&mut self, bdf: Bdf, offset: u16, size: usize, value: u32) {
        let Some(s) = self.spaces.get_mut(&bdf) else {
            return;
        };
        let start = usize::from(offset);
        if start + size > s.readable {
            return;
        }
        for i in 0..size {
            s.data[start + i] = (value >> (8 * i)) as u8;
        }
    }
}

impl ConfigSpace for Snapshot {
    fn read8(&mut self, bdf: Bdf, offset: u16) -> u8 {
        self.get(bdf, offset, 1) as u8
    }
    fn read16(&mut self, bdf: Bdf, offset: u16) -> u16 {
        self.get(bdf, offset, 2) as u16
    }
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32 {
        self.get(bdf, offset, 4)
    }
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) {
        self.put(bdf, offset, 1, value.into());
    }
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) {
        self.put(bdf, offset, 2, value.into());
    }
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.put(bdf, offset, 4, value);
    }
    fn has_extended_space(&self, bdf: Bdf) -> bool {
        self.spaces.get(&bdf).is_some_and(|s| s.readable > 256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_bytes_and_absent_functions_read_all_ones() {
        let mut s = Snapshot::default();
        let b = Bdf::new(0, 0, 0, 0);
        s.insert(b, Space::new(&[0x86, 0x80, 0xc0, 0x29]));
        assert_eq!(s.read32(b, 0), 0x29c0_8086);
        assert_eq!(s.read16(b, 4), 0xffff);
        assert_eq!(s.read32(Bdf::new(0, 1, 0, 0), 0), u32::MAX);
        assert!(!s.has_extended_space(b));
        s.write16(b, 2, 0x1234);
        assert_eq!(s.read16(b, 2), 0x1234);
        s.write16(b, 8, 0x1234);
        assert_eq!(s.read16(b, 8), 0xffff, "writes past the known bytes are dropped");
    }
}
