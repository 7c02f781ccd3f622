//! Group ids as Linux hands them out: `ida_alloc(&iommu_group_ida)`, the
//! lowest free integer from 0.

use alloc::vec::Vec;

/// Lowest-free id allocator.
#[derive(Clone, Debug, Default)]
pub struct Ida {
    used: Vec<u64>,
    /// Every word below this one is full: the scan starts here, so a run of
    /// allocations costs O(1) each instead of O(ids / 64).
    first_free: usize,
}

impl Ida {
    pub const fn new() -> Self {
        Self { used: Vec::new(), first_free: 0 }
    }

    /// The lowest id not in use; marks it used.
    pub fn alloc(&mut self) -> u32 {
        let start = self.first_free.min(self.used.len());
        let word = self.used[start..].iter().position(|w| *w != u64::MAX).map(|w| w + start).unwrap_or_else(|| {
            self.used.push(0);
            self.used.len() - 1
        });
        self.first_free = word;
        let bit = self.used[word].trailing_ones();
        self.used[word] |= 1 << bit;
        word as u32 * 64 + bit
    }

    /// Return `id` to the pool (group freed).
    pub fn free(&mut self, id: u32) {
        if let Some(w) = self.used.get_mut((id / 64) as usize) {
            *w &= !(1 << (id % 64));
            self.first_free = self.first_free.min((id / 64) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_id_is_reused() {
        let mut ida = Ida::new();
        let ids: Vec<u32> = (0..130).map(|_| ida.alloc()).collect();
        assert_eq!(ids, (0..130).collect::<Vec<_>>());
        ida.free(3);
        ida.free(70);
        assert_eq!(ida.alloc(), 3);
        assert_eq!(ida.alloc(), 70);
        assert_eq!(ida.alloc(), 130);
    }
}
