//! The physical frame allocator: one bit per 4 KiB frame over the RAM the
//! firmware reported, minus what must never be handed out (the kernel image
//! and its page tables and stacks, the first MiB where the firmware keeps
//! the start info, and everything that is not RAM: ACPI tables, MMIO).
//!
//! The bitmap's storage comes from the caller (the kernel gives it a static
//! array), so the allocator works before there is a heap.

use crate::memmap::{MemoryKind, MemoryRegion};
use core::fmt;

pub const FRAME_SIZE: u64 = 4096;

/// A half-open physical range `[start, end)` excluded from allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No run of free frames of the requested size and alignment.
    OutOfMemory {
        frames: usize,
    },
    /// Freeing a frame that is not allocated (double free or foreign frame).
    NotAllocated(u64),
    Misaligned(u64),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory { frames } => {
                write!(f, "out of physical memory ({frames} frames requested)")
            }
            Self::NotAllocated(a) => write!(f, "frame {a:#x} freed but not allocated"),
            Self::Misaligned(a) => write!(f, "frame address {a:#x} is not 4 KiB aligned"),
        }
    }
}

pub struct FrameAllocator<'a> {
    /// Bit set = frame in use or not RAM. Bit `i` is frame `i` (physical
    /// address `i * FRAME_SIZE`).
    bitmap: &'a mut [u64],
    /// First frame that may be free: everything below is in use.
    hint: usize,
    free: usize,
    /// RAM the bitmap was too small to cover, in bytes.
    pub uncovered_ram: u64,
}

impl<'a> FrameAllocator<'a> {
    /// Build from the memory map. `reserved` ranges are never handed out.
    ///
    /// Works in whole bitmap words where it can: at boot this runs over
    /// every frame of RAM, and bit-by-bit loops cost milliseconds under TCG.
    pub fn new(bitmap: &'a mut [u64], map: &[MemoryRegion], reserved: &[Reserved]) -> Self {
        bitmap.fill(u64::MAX);
        let frames = bitmap.len() as u64 * 64;
        let covered = frames * FRAME_SIZE;
        let mut a = Self { bitmap, hint: 0, free: 0, uncovered_ram: 0 };
        for r in map.iter().filter(|r| r.kind == MemoryKind::Ram) {
            // Only whole frames inside the region are usable.
            let start = r.start.div_ceil(FRAME_SIZE);
            let end = r.end() / FRAME_SIZE;
            if end * FRAME_SIZE > covered {
                a.uncovered_ram += (end * FRAME_SIZE).saturating_sub((start * FRAME_SIZE).max(covered));
            }
            a.release_range(start, end.min(frames));
        }
        // Reserved ranges are taken back, whole frames touched by them.
        for x in reserved {
            let first = x.start / FRAME_SIZE;
            let last = x.end.div_ceil(FRAME_SIZE).min(frames);
            for i in first..last {
                if !a.is_used(i as usize) {
                    a.set(i, true);
                    a.free -= 1;
                }
            }
        }
        a
    }

    /// Mark frames `[first, end)` free.
    fn release_range(&mut self, mut first: u64, end: u64) {
        while first < end {
            let (w, b) = ((first / 64) as usize, first % 64);
            let n = (64 - b).min(end - first);
            let mask = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << b };
            self.free += (self.bitmap[w] & mask).count_ones() as usize;
            self.bitmap[w] &= !mask;
            first += n;
        }
    }

    fn set(&mut self, index: u64, used: bool) {
        let (w, b) = ((index / 64) as usize, index % 64);
        if used {
            self.bitmap[w] |= 1 << b;
        } else {
            self.bitmap[w] &= !(1 << b);
        }
    }

    fn is_used(&self, index: usize) -> bool {
        self.bitmap[index / 64] & (1 << (index % 64)) != 0
    }

    fn frames(&self) -> usize {
        self.bitmap.len() * 64
    }

    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// One 4 KiB frame; the caller zeroes it.
    pub fn alloc(&mut self) -> Result<u64, FrameError> {
        self.alloc_contiguous(1, 1)
    }

    /// `count` physically contiguous frames, the first aligned to
    /// `align_frames` frames (a power of two).
    pub fn alloc_contiguous(&mut self, count: usize, align_frames: usize) -> Result<u64, FrameError> {
        let align = align_frames.max(1);
        let mut start = self.hint.div_ceil(align) * align;
        while start + count <= self.frames() {
            match (start..start + count).find(|&i| self.is_used(i)) {
                None => {
                    for i in start..start + count {
                        self.set(i as u64, true);
                    }
                    self.free -= count;
                    if start == self.hint {
                        self.hint = start + count;
                    }
                    return Ok(start as u64 * FRAME_SIZE);
                }
                Some(used) => start = (used + 1).div_ceil(align) * align,
            }
        }
        Err(FrameError::OutOfMemory { frames: count })
    }

    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned(addr));
        }
        let index = (addr / FRAME_SIZE) as usize;
        if index >= self.frames() || !self.is_used(index) {
            return Err(FrameError::NotAllocated(addr));
        }
        self.set(index as u64, false);
        self.free += 1;
        self.hint = self.hint.min(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MIB: u64 = 1 << 20;

    fn map() -> [MemoryRegion; 3] {
        [
            MemoryRegion { start: 0, len: 0x9fc00, kind: MemoryKind::Ram },
            MemoryRegion { start: MIB, len: 7 * MIB, kind: MemoryKind::Ram },
            MemoryRegion { start: 8 * MIB, len: MIB, kind: MemoryKind::AcpiReclaimable },
        ]
    }

    #[test]
    fn never_hands_out_reserved_or_non_ram() {
        let mut bits = vec![0u64; 64]; // covers 16 MiB
        let kernel = Reserved { start: MIB, end: 2 * MIB + 123 };
        let low = Reserved { start: 0, end: MIB };
        let mut a = FrameAllocator::new(&mut bits, &map(), &[low, kernel]);
        // 8 MiB - 2 MiB - the partial frame covering the kernel's last byte.
        assert_eq!(a.free_frames(), ((6 * MIB) / FRAME_SIZE) as usize - 1);
        let mut n = 0;
        while let Ok(f) = a.alloc() {
            assert_eq!(f % FRAME_SIZE, 0);
            assert!((2 * MIB + FRAME_SIZE..8 * MIB).contains(&f), "frame {f:#x} outside free RAM");
            n += 1;
        }
        assert_eq!(n, ((6 * MIB) / FRAME_SIZE) as usize - 1);
        assert_eq!(a.alloc(), Err(FrameError::OutOfMemory { frames: 1 }));
    }

    #[test]
    fn partial_frames_at_region_edges_are_not_used() {
        let mut bits = vec![0u64; 1];
        let m = [MemoryRegion { start: 0x1800, len: 0x2000, kind: MemoryKind::Ram }];
        let mut a = FrameAllocator::new(&mut bits, &m, &[]);
        assert_eq!(a.free_frames(), 1);
        assert_eq!(a.alloc(), Ok(0x2000));
    }

    #[test]
    fn contiguous_aligned_and_free() {
        let mut bits = vec![0u64; 64];
        let mut a = FrameAllocator::new(&mut bits, &map(), &[Reserved { start: 0, end: MIB + FRAME_SIZE }]);
        let run = a.alloc_contiguous(512, 512).unwrap();
        assert_eq!(run % (2 * MIB), 0);
        let f = a.alloc().unwrap();
        assert_eq!(f, MIB + FRAME_SIZE, "single frames fill the hole before the aligned run");
        a.free(f).unwrap();
        assert_eq!(a.free(f), Err(FrameError::NotAllocated(f)), "double free detected");
        assert_eq!(a.free(f + 1), Err(FrameError::Misaligned(f + 1)));
        assert_eq!(a.alloc().unwrap(), f, "freed frame is reused");
    }

    #[test]
    fn ram_beyond_bitmap_is_counted_not_used() {
        let mut bits = vec![0u64; 1]; // 256 KiB
        let m = [MemoryRegion { start: 0, len: MIB, kind: MemoryKind::Ram }];
        let a = FrameAllocator::new(&mut bits, &m, &[]);
        assert_eq!(a.free_frames(), 64);
        assert_eq!(a.uncovered_ram, MIB - 256 * 1024);
    }
}
