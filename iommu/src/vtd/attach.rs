//! Device attach/detach and domain mapping, each with the invalidations the
//! spec requires (VT-d spec rev 4.1 §6.5.3.3 "Guidance to Software for
//! Invalidations", §6.1 caching mode; Linux `domain_context_mapping_one`,
//! `domain_context_clear_one`, `__mapping_notify_one`,
//! `intel_iommu_unmap`).

use super::domain::{Domain, DomainId};
use super::error::UnitError;
use super::inval::{ContextScope, IotlbScope};
use super::mem::{FrameAlloc, PhysMem};
use super::pagetable::{IovaRange, PageSize, Perms};
use super::regs::RegisterFile;
use super::tables::{ContextEntry, RootTable, SourceId, TranslationType};
use super::unit::Unit;

impl<R: RegisterFile> Unit<R> {
    /// Make `sid` translate through `domain`.
    ///
    /// A present entry for another domain is first detached (context cache
    /// and IOTLB invalidated for the old DID). The new entry is written with
    /// P last. Then, for this non-present → present change: under CAP.CM the
    /// unit may have cached the not-present entry under DID 0, so a
    /// device-selective context invalidation with DID 0 and a
    /// domain-selective IOTLB invalidation follow; otherwise a write-buffer
    /// flush (when CAP.RWBF) is enough.
    pub fn attach_device<M: PhysMem + FrameAlloc>(
        &mut self,
        mm: &mut M,
        root: &mut RootTable,
        sid: SourceId,
        domain: &Domain,
    ) -> Result<(), UnitError> {
        let width = domain.geometry().width;
        if self.cap.sagaw() & (1 << width.agaw()) == 0 {
            return Err(UnitError::Unsupported { feature: "the domain's address width in CAP.SAGAW" });
        }
        if u32::from(domain.id().0) >= self.cap.number_of_domains() {
            return Err(UnitError::Unsupported { feature: "the domain id within CAP.ND" });
        }
        // Caching mode tags cached not-present entries with domain id 0
        // (spec §6.2.2, as `DomainIdAllocator` reserves it): a domain made
        // with id 0 by hand must not reach the hardware either.
        if self.cap.cm() && domain.id() == DomainId(0) {
            return Err(UnitError::Unsupported { feature: "domain id 0 (reserved under caching mode)" });
        }
        let old = root.context_entry(mm, sid);
        if old.present() {
            if old.domain_id() == domain.id() && old.slptptr() == domain.table_root() {
                return Ok(());
            }
            self.detach_device(mm, root, sid)?;
        }
        let entry = ContextEntry::default()
            .with_translation_type(TranslationType::UntranslatedOnly)
            .with_fault_processing_disable(false)
            .with_slptptr(domain.table_root())
            .with_address_width(width)
            .with_domain_id(domain.id())
            .with_present(true);
        root.set_context_entry(mm, sid, entry)?;
        if self.cap.cm() {
            self.invalidate_context(mm, ContextScope::Device { did: DomainId(0), sid, fm: 0 })?;
            self.invalidate_iotlb(mm, IotlbScope::Domain(domain.id()))?;
        } else {
            self.flush_write_buffer()?;
        }
        Ok(())
    }

    /// Clear `sid`'s context entry (P first), then invalidate the context
    /// cache for the device and the IOTLB for its old domain. Returns the
    /// old domain id, or `None` if the entry was not present.
    pub fn detach_device<M: PhysMem + FrameAlloc>(
        &mut self,
        mm: &mut M,
        root: &mut RootTable,
        sid: SourceId,
    ) -> Result<Option<DomainId>, UnitError> {
        let old = root.context_entry(mm, sid);
        if !old.present() {
            return Ok(None);
        }
        let did = old.domain_id();
        root.set_context_entry(mm, sid, ContextEntry::default())?;
        self.invalidate_context(mm, ContextScope::Device { did, sid, fm: 0 })?;
        self.invalidate_iotlb(mm, IotlbScope::Domain(did))?;
        Ok(Some(did))
    }

    /// Map one page in `domain`; under CAP.CM the IOTLB is invalidated for
    /// it (hardware may cache not-present entries), otherwise the write
    /// buffer is flushed when CAP.RWBF.
    pub fn map<M: PhysMem + FrameAlloc>(
        &mut self,
        mm: &mut M,
        domain: &mut Domain,
        iova: u64,
        phys: u64,
        size: PageSize,
        perms: Perms,
    ) -> Result<(), UnitError> {
        let range = domain.table_mut().map(mm, iova, phys, size, perms)?;
        if self.cap.cm() {
            self.invalidate_iotlb(mm, IotlbScope::Page { did: domain.id(), range })
        } else {
            self.flush_write_buffer()
        }
    }

    /// Unmap one page from `domain` and invalidate the IOTLB for it; when
    /// this returns, no DMA can use the old translation and the frame may be
    /// reused.
    pub fn unmap<M: PhysMem>(
        &mut self,
        mm: &mut M,
        domain: &mut Domain,
        iova: u64,
        size: PageSize,
    ) -> Result<IovaRange, UnitError> {
        let range = domain.table_mut().unmap(mm, iova, size)?;
        self.invalidate_iotlb(mm, IotlbScope::Page { did: domain.id(), range })?;
        Ok(range)
    }
}
