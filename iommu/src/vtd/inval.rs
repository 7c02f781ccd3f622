//! Invalidation of the context cache and the IOTLB (VT-d spec rev 4.1 §6.5).
//!
//! A unit uses exactly one interface: register-based (CCMD and the IOTLB
//! register, §6.5.1) until [`Unit::setup_invalidation`] switches it to
//! queued invalidation (§6.5.2, [`super::qi`]) when ECAP.QI is set. After
//! that the registers are never touched: QEMU 7.2 ignores them ("Queued
//! Invalidation enabled, should not use register-based invalidation") and
//! real hardware gives undefined results.

use super::domain::DomainId;
use super::error::UnitError;
use super::mem::{FrameAlloc, PhysMem};
use super::pagetable::IovaRange;
use super::qi::InvQueue;
use super::regs::{self, GlobalStatus, IotlbRegs, RegisterFile};
use super::tables::SourceId;
use super::unit::Unit;

/// Which context-cache entries to invalidate (CCMD.CIRG, descriptor G).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ContextScope {
    Global,
    Domain(DomainId),
    /// Device-selective: `sid` under function mask `fm` (0 = exact match),
    /// for the entries tagged `did`.
    Device {
        did: DomainId,
        sid: SourceId,
        fm: u8,
    },
}

/// Which IOTLB entries to invalidate (IOTLB.IIRG, descriptor G).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IotlbScope {
    Global,
    Domain(DomainId),
    /// Page-selective; falls back to domain-selective without CAP.PSI or
    /// when `range.am` exceeds CAP.MAMV (Linux `iommu_flush_iotlb_psi`).
    Page {
        did: DomainId,
        range: IovaRange,
    },
}

/// The interface a unit currently uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InvalidationKind {
    Register,
    Queued,
}

/// The unit's invalidation interface; one variant at a time by
/// construction.
#[derive(Debug)]
pub(crate) enum InvalMode {
    Register,
    Queued(InvQueue),
}

/// A CCMD value (spec §11.4.7):
///
/// ```text
///  bit  63     ICC   invalidate context cache (set by software, cleared by
///                    hardware when done)
///  bits 62:61  CIRG  requested granularity: 01 global, 10 domain, 11 device
///  bits 60:59  CAIG  actual granularity (read-only; 00 = not performed)
///  bits 33:32  FM    function mask
///  bits 31:16  SID   source-id
///  bits 15:0   DID   domain-id
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ContextCommand(pub u64);

impl ContextCommand {
    pub const ICC: u64 = 1 << 63;
    const CIRG_SHIFT: u32 = 61;
    const CAIG_SHIFT: u32 = 59;

    /// The command for `scope`, with ICC set.
    pub fn new(scope: ContextScope) -> Self {
        let (granularity, did, sid, fm) = match scope {
            ContextScope::Global => (1, 0, 0, 0),
            ContextScope::Domain(did) => (2, did.0, 0, 0),
            ContextScope::Device { did, sid, fm } => (3, did.0, sid.0, fm),
        };
        Self(
            Self::ICC
                | (granularity << Self::CIRG_SHIFT)
                | (u64::from(fm & 3) << 32)
                | (u64::from(sid) << 16)
                | u64::from(did),
        )
    }

    /// CAIG of a completed command.
    pub const fn caig(self) -> u8 {
        ((self.0 >> Self::CAIG_SHIFT) & 3) as u8
    }
}

/// An IOTLB invalidate register value (spec §11.4.8.1):
///
/// ```text
///  bit  63     IVT   invalidate IOTLB (cleared by hardware when done)
///  bits 61:60  IIRG  requested granularity: 01 global, 10 domain, 11 page
///  bits 58:57  IAIG  actual granularity (read-only; 00 = not performed)
///  bit  49     DR    drain reads (when CAP.DRD)
///  bit  48     DW    drain writes (when CAP.DWD)
///  bits 47:32  DID   domain-id
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IotlbCommand(pub u64);

impl IotlbCommand {
    pub const IVT: u64 = 1 << 63;
    const IIRG_SHIFT: u32 = 60;
    const IAIG_SHIFT: u32 = 57;
    const DR: u64 = 1 << 49;
    const DW: u64 = 1 << 48;

    /// The command for an already resolved `scope`, with IVT set.
    pub fn new(scope: IotlbScope, drain_reads: bool, drain_writes: bool) -> Self {
        let (granularity, did) = match scope {
            IotlbScope::Global => (1, 0),
            IotlbScope::Domain(did) => (2, did.0),
            IotlbScope::Page { did, .. } => (3, did.0),
        };
        let mut v = Self::IVT | (granularity << Self::IIRG_SHIFT) | (u64::from(did) << 32);
        if drain_reads {
            v |= Self::DR;
        }
        if drain_writes {
            v |= Self::DW;
        }
        Self(v)
    }

    /// IAIG of a completed command.
    pub const fn iaig(self) -> u8 {
        ((self.0 >> Self::IAIG_SHIFT) & 3) as u8
    }
}

/// An IVA value (spec §11.4.8.2): ADDR 63:12, IH 6 (0: leaf and non-leaf
/// entries may have changed), AM 5:0.
pub fn iva_value(range: IovaRange) -> u64 {
    (range.addr & !0xfff) | u64::from(range.am & 0x3f)
}

impl<R: RegisterFile> Unit<R> {
    /// The interface in use.
    pub fn invalidation_kind(&self) -> InvalidationKind {
        match self.inval {
            InvalMode::Register => InvalidationKind::Register,
            InvalMode::Queued(_) => InvalidationKind::Queued,
        }
    }

    /// Choose the invalidation interface once: queued when ECAP.QI (Linux
    /// `intel_iommu_init_qi`), registers otherwise. A queue firmware left
    /// enabled must be turned off first ([`Unit::take_over`]): its IQA may
    /// not be changed while GSTS.QIES is set.
    pub fn setup_invalidation<M: PhysMem + FrameAlloc>(&mut self, mm: &mut M) -> Result<InvalidationKind, UnitError> {
        if let InvalMode::Queued(_) = self.inval {
            return Ok(InvalidationKind::Queued);
        }
        if self.status().contains(GlobalStatus::QIES) {
            return Err(UnitError::ForeignQueueActive);
        }
        if self.ecap.qi() {
            self.enable_queued_invalidation(mm)?;
        }
        Ok(self.invalidation_kind())
    }

    /// Invalidate context-cache entries (spec §6.5.1.1 / §6.5.2.1).
    pub fn invalidate_context<M: PhysMem>(&mut self, mm: &mut M, scope: ContextScope) -> Result<(), UnitError> {
        match self.inval {
            InvalMode::Register => self.register_invalidate_context(scope),
            InvalMode::Queued(_) => self.queued_invalidate_context(mm, scope),
        }
    }

    /// Invalidate IOTLB entries (spec §6.5.1.2 / §6.5.2.3), draining reads
    /// and writes when CAP.DRD / CAP.DWD allow (Linux `__iommu_flush_iotlb`).
    pub fn invalidate_iotlb<M: PhysMem>(&mut self, mm: &mut M, scope: IotlbScope) -> Result<(), UnitError> {
        let scope = self.resolve_iotlb_scope(scope);
        match self.inval {
            InvalMode::Register => self.register_invalidate_iotlb(scope),
            InvalMode::Queued(_) => self.queued_invalidate_iotlb(mm, scope),
        }
    }

    fn resolve_iotlb_scope(&self, scope: IotlbScope) -> IotlbScope {
        match scope {
            IotlbScope::Page { did, range } if !self.cap.psi() || range.am > self.cap.mamv() => IotlbScope::Domain(did),
            other => other,
        }
    }

    fn refuse_if_queued(&self) -> Result<(), UnitError> {
        if self.status().contains(GlobalStatus::QIES) {
            return Err(UnitError::QueuedInvalidationActive);
        }
        Ok(())
    }

    /// CCMD handshake: write with ICC, wait until hardware clears ICC, then
    /// check CAIG (Linux `__iommu_flush_context`).
    fn register_invalidate_context(&mut self, scope: ContextScope) -> Result<(), UnitError> {
        self.refuse_if_queued()?;
        regs::CCMD.write(&mut self.regs, ContextCommand::new(scope).0);
        self.poll_until("CCMD", "ICC", |r| regs::CCMD.read(r) & ContextCommand::ICC == 0)?;
        if ContextCommand(regs::CCMD.read(&self.regs)).caig() == 0 {
            return Err(UnitError::InvalidationRejected { register: "CCMD" });
        }
        Ok(())
    }

    /// IOTLB handshake: IVA first for page-selective, then the IOTLB
    /// register with IVT; wait until IVT clears, then check IAIG.
    fn register_invalidate_iotlb(&mut self, scope: IotlbScope) -> Result<(), UnitError> {
        self.refuse_if_queued()?;
        let block = IotlbRegs::new(self.ecap);
        if let IotlbScope::Page { range, .. } = scope {
            block.iva().write(&mut self.regs, iva_value(range));
        }
        let cmd = IotlbCommand::new(scope, self.cap.drd(), self.cap.dwd());
        block.iotlb().write(&mut self.regs, cmd.0);
        self.poll_until("IOTLB", "IVT", |r| block.iotlb().read(r) & IotlbCommand::IVT == 0)?;
        if IotlbCommand(block.iotlb().read(&self.regs)).iaig() == 0 {
            return Err(UnitError::InvalidationRejected { register: "IOTLB" });
        }
        Ok(())
    }
}
