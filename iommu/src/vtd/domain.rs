//! Domains: an id tagging cached translations and one second-level table
//! (VT-d spec rev 4.1 §3.2, §6.2.1). Mapping goes through
//! [`crate::vtd::Unit::map`] so that the invalidations are never forgotten.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::cap::Cap;
use super::mem::{FrameAlloc, PhysMem};
use super::pagetable::{Geometry, MapError, SecondLevelTable, Translation};

/// A domain identifier (context entry DID, 16 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DomainId(pub u16);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "did {}", self.0)
    }
}

/// Domain-id allocation within CAP.ND (2^(4 + 2·ND) ids). Under caching
/// mode (CAP.CM) hardware tags cached not-present entries with DID 0, so 0
/// is reserved (spec §6.2.2; Linux `iommu_init_domains` reserves it always,
/// FreeBSD only under CM, as here).
#[derive(Clone, Debug)]
pub struct DomainIdAllocator {
    used: Vec<u64>,
    limit: u32,
}

impl DomainIdAllocator {
    pub fn new(cap: Cap) -> Self {
        let limit = cap.number_of_domains();
        let mut ids = Self { used: vec![0; (limit as usize).div_ceil(64)], limit };
        if cap.cm() {
            ids.used[0] |= 1;
        }
        ids
    }

    /// Number of ids the unit supports (including a reserved 0).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The lowest free id, or `None` when all are in use.
    pub fn alloc(&mut self) -> Option<DomainId> {
        let (word, bits) = self.used.iter_mut().enumerate().find(|(_, w)| **w != !0)?;
        let bit = bits.trailing_ones();
        let id = word as u32 * 64 + bit;
        if id >= self.limit {
            return None;
        }
        *bits |= 1 << bit;
        Some(DomainId(id as u16))
    }

    /// Release `id`; the caller has invalidated the IOTLB for it.
    pub fn free(&mut self, id: DomainId) {
        if let Some(word) = self.used.get_mut(usize::from(id.0) / 64) {
            *word &= !(1 << (id.0 % 64));
        }
    }

    pub fn is_used(&self, id: DomainId) -> bool {
        self.used.get(usize::from(id.0) / 64).is_some_and(|w| w & (1 << (id.0 % 64)) != 0)
    }
}

/// An isolation domain on one unit: its id and second-level table.
#[derive(Debug)]
pub struct Domain {
    id: DomainId,
    table: SecondLevelTable,
}

impl Domain {
    /// A domain with an empty table of `geometry` (see
    /// [`Geometry::for_unit`]).
    pub fn new<M: PhysMem + FrameAlloc>(mm: &mut M, id: DomainId, geometry: Geometry) -> Result<Self, MapError> {
        Ok(Self { id, table: SecondLevelTable::new(mm, geometry)? })
    }

    pub fn id(&self) -> DomainId {
        self.id
    }

    pub fn geometry(&self) -> Geometry {
        self.table.geometry()
    }

    /// Physical address of the top-level table (SLPTPTR).
    pub fn table_root(&self) -> u64 {
        self.table.root()
    }

    /// Software page walk (spec §3.7).
    pub fn translate<M: PhysMem>(&self, mm: &M, iova: u64) -> Option<Translation> {
        self.table.translate(mm, iova)
    }

    pub(crate) fn table_mut(&mut self) -> &mut SecondLevelTable {
        &mut self.table
    }

    /// Free the tables. Only after every device is detached (which
    /// invalidates the context cache and the IOTLB for this id).
    pub fn destroy<M: PhysMem + FrameAlloc>(self, mm: &mut M) {
        self.table.destroy(mm);
    }
}
