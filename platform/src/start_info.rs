//! The PVH boot ABI: `struct hvm_start_info` (Xen public header
//! `arch-x86/hvm/start_info.h`), which QEMU fills in and hands over in `%ebx`.

use crate::memmap::{MemoryKind, MemoryRegion};
use core::fmt;

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;
/// Size of `hvm_start_info` version 1 (with the memory map fields).
pub const HVM_START_INFO_SIZE: usize = 56;
/// Size of one `hvm_memmap_table_entry`.
pub const HVM_MEMMAP_ENTRY_SIZE: usize = 24;
/// More entries than this is treated as corruption, not as a memory map.
pub const MAX_MEMMAP_ENTRIES: u32 = 128;

/// What the kernel needs from `hvm_start_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInfo {
    pub version: u32,
    pub flags: u32,
    /// Physical address of the NUL-terminated command line (0: none).
    pub cmdline_paddr: u64,
    /// Physical address of the RSDP (0: not given; scan the BIOS area).
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version >= 1).
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    Truncated {
        len: usize,
    },
    BadMagic(u32),
    /// Version 0 has no memory map; this kernel needs one.
    NoMemoryMap {
        version: u32,
    },
    TooManyMemmapEntries(u32),
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => write!(f, "hvm_start_info truncated: {len} bytes"),
            Self::BadMagic(m) => write!(f, "hvm_start_info magic {m:#x}, expected {HVM_START_MAGIC:#x}"),
            Self::NoMemoryMap { version } => {
                write!(f, "hvm_start_info version {version} has no memory map")
            }
            Self::TooManyMemmapEntries(n) => {
                write!(f, "hvm_start_info claims {n} memory map entries")
            }
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off + 4)) << 32)
}

impl StartInfo {
    /// Parse the 56-byte `hvm_start_info` structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, StartInfoError> {
        if bytes.len() < HVM_START_INFO_SIZE {
            return Err(StartInfoError::Truncated { len: bytes.len() });
        }
        let magic = u32_at(bytes, 0);
        if magic != HVM_START_MAGIC {
            return Err(StartInfoError::BadMagic(magic));
        }
        let version = u32_at(bytes, 4);
        if version < 1 {
            return Err(StartInfoError::NoMemoryMap { version });
        }
        let memmap_entries = u32_at(bytes, 48);
        if memmap_entries > MAX_MEMMAP_ENTRIES {
            return Err(StartInfoError::TooManyMemmapEntries(memmap_entries));
        }
        Ok(Self {
            version,
            flags: u32_at(bytes, 8),
            cmdline_paddr: u64_at(bytes, 24),
            rsdp_paddr: u64_at(bytes, 32),
            memmap_paddr: u64_at(bytes, 40),
            memmap_entries,
        })
    }

    /// Bytes to read at `memmap_paddr` for the whole memory map.
    pub fn memmap_len(&self) -> usize {
        self.memmap_entries as usize * HVM_MEMMAP_ENTRY_SIZE
    }
}

/// Parse the `hvm_memmap_table_entry` array (addr, size, type, reserved).
/// Zero-sized entries are dropped. Allocation-free: the memory map is read
/// before there is a heap.
pub fn memmap_entries(bytes: &[u8]) -> impl Iterator<Item = MemoryRegion> + '_ {
    bytes
        .chunks_exact(HVM_MEMMAP_ENTRY_SIZE)
        .map(|e| MemoryRegion { start: u64_at(e, 0), len: u64_at(e, 8), kind: MemoryKind::from_e820(u32_at(e, 16)) })
        .filter(|r| r.len != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn start_info(version: u32, entries: u32) -> Vec<u8> {
        let mut b = vec![0u8; HVM_START_INFO_SIZE];
        b[0..4].copy_from_slice(&HVM_START_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&version.to_le_bytes());
        b[24..32].copy_from_slice(&0x9000u64.to_le_bytes());
        b[32..40].copy_from_slice(&0xf5a40u64.to_le_bytes());
        b[40..48].copy_from_slice(&0x8000u64.to_le_bytes());
        b[48..52].copy_from_slice(&entries.to_le_bytes());
        b
    }

    #[test]
    fn parses_version_1() {
        let si = StartInfo::parse(&start_info(1, 4)).unwrap();
        assert_eq!(si.cmdline_paddr, 0x9000);
        assert_eq!(si.rsdp_paddr, 0xf5a40);
        assert_eq!(si.memmap_paddr, 0x8000);
        assert_eq!(si.memmap_len(), 96);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(StartInfo::parse(&[0; 10]), Err(StartInfoError::Truncated { len: 10 }));
        let mut b = start_info(1, 1);
        b[0] ^= 1;
        assert!(matches!(StartInfo::parse(&b), Err(StartInfoError::BadMagic(_))));
        assert_eq!(StartInfo::parse(&start_info(0, 1)), Err(StartInfoError::NoMemoryMap { version: 0 }));
        assert_eq!(StartInfo::parse(&start_info(1, 5000)), Err(StartInfoError::TooManyMemmapEntries(5000)));
    }

    #[test]
    fn parses_memmap_entries() {
        let mut b = vec![0u8; 3 * HVM_MEMMAP_ENTRY_SIZE];
        let put = |b: &mut Vec<u8>, i: usize, a: u64, s: u64, t: u32| {
            let o = i * HVM_MEMMAP_ENTRY_SIZE;
            b[o..o + 8].copy_from_slice(&a.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&s.to_le_bytes());
            b[o + 16..o + 20].copy_from_slice(&t.to_le_bytes());
        };
        put(&mut b, 0, 0, 0x9fc00, 1);
        put(&mut b, 1, 0x100000, 0x7f00000, 1);
        put(&mut b, 2, 0xfeffc000, 0, 2);
        let m: Vec<_> = memmap_entries(&b).collect();
        assert_eq!(m.len(), 2, "zero-sized entry dropped");
        assert_eq!(m[1], MemoryRegion { start: 0x100000, len: 0x7f00000, kind: MemoryKind::Ram });
    }
}
