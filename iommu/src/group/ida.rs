//! Group ids as Linux hands them out: `ida_alloc(&iommu_group_ida)`, the
//! lowest free integer from 0.

use alloc::vec::Vec;

/// Lowest-free id allocator.
#[derive(Clone, Debug, Default)]
pub struct Ida {
    used: Vec<u64>,
}

impl Ida {
    pub const fn new() -> Self {
        Self { used: Vec::new() }
    }

    /// The lowest id not in use; marks it used.
    pub fn alloc(&mut self) -> u32 {
        let word = self.used.iter().position(|w| *w != u64::MAX).unwrap_or_else(|| {
            self.used.push(0);
            self.used.len() - 1
        });
        let bit = self.used[word].trailing_ones();
        self.used[word] |= 1 << bit;
        word as u32 * 64 + bit
    }

    /// Return `id` to the pool (group freed).
    pub fn free(&mut self, id: u32) {
        if let Some(w) = self.used.get_mut((id / 64) as usize) {
            *w &= !(1 << (id % 64));
        }
    }
}
