//! Physical memory as the remapping hardware sees it: frames for the root,
//! context and page tables and for the invalidation queue.
//!
//! The kernel implements both traits over its frame allocator and its direct
//! map; host tests over a Vec-backed arena.

/// Size of a VT-d table frame: every table is one 4 KiB page (spec §9.1).
pub const FRAME_SIZE: u64 = 4096;

/// The unit of `clflush` on x86 (CPUID.01H:EBX[15:8] × 8 is 64 on every
/// part with VT-d).
pub const CACHE_LINE: u64 = 64;

/// 64-bit accesses to physical memory.
///
/// Addresses are 8-byte aligned. Root and context entries are 128 bits and
/// software writes them as two 64-bit halves, so the writers order the halves
/// (present bit written last when making an entry present, first when
/// clearing it), see [`crate::vtd::tables`].
pub trait PhysMem {
    /// Read the little-endian `u64` at physical address `pa`.
    fn read_u64(&self, pa: u64) -> u64;
    /// Write the little-endian `u64` at physical address `pa`.
    fn write_u64(&mut self, pa: u64, value: u64);
    /// Make a table write at `pa` visible to a unit whose page walks do not
    /// snoop the CPU caches (ECAP.C = 0): `clflush` on real hardware, as
    /// Linux `domain_flush_cache` / `clflush_cache_range` do. QEMU's model and
    /// the host simulation are coherent, hence the no-op default.
    fn flush_for_device(&mut self, pa: u64) {
        let _ = pa;
    }
    /// Make a whole freshly zeroed table frame visible to a non-snooping
    /// unit before it is linked into a table the unit walks: Linux flushes
    /// every new page-table page (`pfn_to_dma_pte` → `domain_flush_cache`)
    /// and every new root and context table (`__iommu_flush_cache`), since
    /// the zeroes may still sit in the CPU cache.
    fn flush_frame_for_device(&mut self, pa: u64) {
        for line in (0..FRAME_SIZE).step_by(CACHE_LINE as usize) {
            self.flush_for_device(pa + line);
        }
    }
}

/// A zeroed frame for a table the unit walks (root, context or page table),
/// already flushed for a non-snooping unit.
pub(crate) fn alloc_table<M: PhysMem + FrameAlloc>(mm: &mut M) -> Option<u64> {
    let pa = mm.alloc_zeroed()?;
    mm.flush_frame_for_device(pa);
    Some(pa)
}

/// Allocation of zeroed, 4 KiB-aligned frames below the unit's address limit.
pub trait FrameAlloc {
    /// A zeroed 4 KiB frame, or `None` when memory is exhausted.
    fn alloc_zeroed(&mut self) -> Option<u64>;
    /// Return a frame obtained from [`FrameAlloc::alloc_zeroed`]. Callers free
    /// a table frame only after the invalidations that stop hardware from
    /// walking it have completed.
    fn free(&mut self, pa: u64);
}
