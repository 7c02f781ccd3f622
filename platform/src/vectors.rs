//! The CPU's interrupt vector space as the kernel hands it out (Intel SDM
//! Vol. 3A §6.2, §11.11): vectors 0-31 are the exceptions, devices get
//! 0x20-0xef (0xf0-0xfe stay free, 0xff is the APIC's spurious vector).
//! A block of `n` vectors (a power of two up to 32) is aligned to `n`: a
//! compatibility-format multi-message MSI puts its message number in the
//! vector's low bits (Linux `irq_matrix_alloc` for multi-MSI, and the PCI
//! spec's Multiple Message Enable). The kernel's `arch::interrupts` keeps
//! one of these behind a lock taken with interrupts off.

/// First vector given to devices.
pub const FIRST_DEVICE_VECTOR: u8 = 0x20;
/// Last vector given to devices.
pub const LAST_DEVICE_VECTOR: u8 = 0xef;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorError {
    /// No free aligned block of that size.
    Full { count: u32 },
    /// Not a power of two, or more than 32.
    BadCount(u32),
    /// The vector is not a device vector, or not allocated.
    NotAllocated(u8),
}

impl core::fmt::Display for VectorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Full { count } => write!(f, "no free block of {count} interrupt vector(s)"),
            Self::BadCount(n) => write!(f, "{n} vectors: a block is a power of two up to 32"),
            Self::NotAllocated(v) => write!(f, "vector {v:#04x} is not an allocated device vector"),
        }
    }
}

/// Which of the 256 vectors are taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorAllocator {
    used: [u64; 4],
}

impl VectorAllocator {
    pub const fn new() -> Self {
        Self { used: [0; 4] }
    }

    pub const fn is_used(&self, v: u8) -> bool {
        self.used[(v / 64) as usize] & (1 << (v % 64)) != 0
    }

    /// The first free block of `n` vectors aligned to `n` within the device
    /// range; returns its first vector.
    pub fn alloc(&mut self, n: u32) -> Result<u8, VectorError> {
        if !n.is_power_of_two() || n > 32 {
            return Err(VectorError::BadCount(n));
        }
        let mut base = u32::from(FIRST_DEVICE_VECTOR).next_multiple_of(n);
        while base + n - 1 <= u32::from(LAST_DEVICE_VECTOR) {
            if (base..base + n).all(|v| !self.is_used(v as u8)) {
                for v in base..base + n {
                    self.used[(v / 64) as usize] |= 1 << (v % 64);
                }
                return Ok(base as u8);
            }
            base += n;
        }
        Err(VectorError::Full { count: n })
    }

    /// Give one vector back.
    pub fn free(&mut self, v: u8) -> Result<(), VectorError> {
        if !(FIRST_DEVICE_VECTOR..=LAST_DEVICE_VECTOR).contains(&v) || !self.is_used(v) {
            return Err(VectorError::NotAllocated(v));
        }
        self.used[usize::from(v / 64)] &= !(1 << (v % 64));
        Ok(())
    }

    /// Vectors in use.
    pub fn in_use(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_vectors_from_0x20() {
        let mut a = VectorAllocator::new();
        assert_eq!(a.alloc(1), Ok(0x20));
        assert_eq!(a.alloc(1), Ok(0x21));
        assert_eq!(a.free(0x20), Ok(()));
        assert_eq!(a.alloc(1), Ok(0x20), "freed vectors are reused");
        assert_eq!(a.free(0x1f), Err(VectorError::NotAllocated(0x1f)), "exceptions are never handed out");
        assert_eq!(a.free(0x30), Err(VectorError::NotAllocated(0x30)));
    }

    #[test]
    fn blocks_are_aligned_for_multi_message_msi() {
        let mut a = VectorAllocator::new();
        assert_eq!(a.alloc(1), Ok(0x20));
        assert_eq!(a.alloc(2), Ok(0x22), "ioh3420's two vectors: aligned to 2");
        assert_eq!(a.alloc(4), Ok(0x24));
        assert_eq!(a.alloc(32), Ok(0x40));
        assert_eq!(a.alloc(1), Ok(0x21), "the hole is filled");
        assert_eq!(a.alloc(3), Err(VectorError::BadCount(3)));
        assert_eq!(a.alloc(64), Err(VectorError::BadCount(64)));
    }

    #[test]
    fn the_device_range_ends_at_0xef() {
        let mut a = VectorAllocator::new();
        let n = u32::from(LAST_DEVICE_VECTOR - FIRST_DEVICE_VECTOR) + 1;
        for _ in 0..n {
            a.alloc(1).unwrap();
        }
        assert_eq!(a.in_use(), n);
        assert!(!a.is_used(0xf0) && !a.is_used(0xff), "0xf0-0xff never handed out");
        assert_eq!(a.alloc(1), Err(VectorError::Full { count: 1 }));
        let mut b = VectorAllocator::new();
        for _ in 0..6 {
            b.alloc(32).unwrap();
        }
        assert_eq!(b.alloc(32), Err(VectorError::Full { count: 32 }), "0xe0-0xff would pass 0xef");
        assert_eq!(b.alloc(16), Ok(0xe0));
    }
}
