//! Queued invalidation (VT-d spec rev 4.1 §6.5.2): a ring of 128-bit
//! descriptors in one 4 KiB frame (IQA.QS = 0: 256 entries), software
//! advancing IQT, hardware advancing IQH. Every submission ends with an
//! invalidation-wait descriptor whose status write into memory is polled,
//! bounded, with FSTS.IQE/ICE/ITE checked on each poll (Linux
//! `qi_submit_sync`, `qi_check_fault`).

use super::error::{QueueFault, UnitError};
use super::fault::FaultStatus;
use super::inval::{ContextScope, InvalMode, IotlbScope};
use super::mem::{FrameAlloc, PhysMem};
use super::regs::{self, GlobalCommand, GlobalStatus, RegisterFile};
use super::unit::Unit;

/// Descriptors in the ring (IQA.QS = 0 → 2^(QS+8) 128-bit entries).
pub const QUEUE_ENTRIES: u16 = 256;
/// Bytes per legacy (128-bit) descriptor; IQH/IQT hold `index << 4`.
const DESC_SIZE: u64 = 16;

/// FSTS bits that stop the queue (spec §6.5.2.10).
const QUEUE_ERRORS: FaultStatus = FaultStatus::IQE.union(FaultStatus::ICE).union(FaultStatus::ITE);

/// A 128-bit invalidation descriptor, built only by the named builders.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Descriptor {
    pub lo: u64,
    pub hi: u64,
}

impl Descriptor {
    /// Context-cache invalidate descriptor (spec §6.5.2.1):
    ///
    /// ```text
    ///  bits 3:0    type = 1
    ///  bits 5:4    G: 01 global, 10 domain-selective, 11 device-selective
    ///  bits 15:6   reserved (11:9 are the high type bits, 0)
    ///  bits 31:16  DID
    ///  bits 47:32  SID
    ///  bits 49:48  FM
    ///  bits 127:50 reserved
    /// ```
    pub fn context_cache(scope: ContextScope) -> Self {
        let (g, did, sid, fm) = match scope {
            ContextScope::Global => (1, 0, 0, 0),
            ContextScope::Domain(did) => (2, did.0, 0, 0),
            ContextScope::Device { did, sid, fm } => (3, did.0, sid.0, fm),
        };
        Self { lo: 0x1 | (g << 4) | (u64::from(did) << 16) | (u64::from(sid) << 32) | (u64::from(fm & 3) << 48), hi: 0 }
    }

    /// IOTLB invalidate descriptor (spec §6.5.2.3):
    ///
    /// ```text
    ///  bits 3:0    type = 2
    ///  bits 5:4    G: 01 global, 10 domain-selective, 11 page-selective
    ///  bit  6      DW (drain writes)
    ///  bit  7      DR (drain reads)
    ///  bits 15:8   reserved (11:9 high type bits, 0)
    ///  bits 31:16  DID
    ///  bits 63:32  reserved
    ///  bits 69:64  AM (address mask, page-selective)
    ///  bit  70     IH (invalidation hint, 0)
    ///  bits 75:71  reserved
    ///  bits 127:76 ADDR 63:12
    /// ```
    pub fn iotlb(scope: IotlbScope, drain_reads: bool, drain_writes: bool) -> Self {
        let (g, did, hi) = match scope {
            IotlbScope::Global => (1, 0, 0),
            IotlbScope::Domain(did) => (2, did.0, 0),
            IotlbScope::Page { did, range } => (3, did.0, (range.addr & !0xfff) | u64::from(range.am & 0x3f)),
        };
        Self {
            lo: 0x2
                | (g << 4)
                | (u64::from(drain_writes) << 6)
                | (u64::from(drain_reads) << 7)
                | (u64::from(did) << 16),
            hi,
        }
    }

    /// Invalidation-wait descriptor with status write (spec §6.5.2.8):
    ///
    /// ```text
    ///  bits 3:0    type = 5
    ///  bit  4      IF (interrupt, 0)
    ///  bit  5      SW (status write, 1)
    ///  bit  6      FN (fence, 0)
    ///  bit  7      PD (page-request drain, 0)
    ///  bits 31:8   reserved
    ///  bits 63:32  status data (32 bits written to the status address)
    ///  bits 65:64  reserved
    ///  bits 127:66 status address 63:2
    /// ```
    pub fn inv_wait(status_addr: u64, status_data: u32) -> Self {
        Self { lo: 0x5 | (1 << 5) | (u64::from(status_data) << 32), hi: status_addr & !0b11 }
    }

    /// The descriptor type (bits 3:0).
    pub const fn kind(self) -> u8 {
        (self.lo & 0xf) as u8
    }
}

/// The queue's memory and software tail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InvQueue {
    /// Ring frame (IQA).
    base: u64,
    /// 8-byte status slot written by wait descriptors.
    status: u64,
    /// Next free index (what IQT holds).
    tail: u16,
    /// Last status data used.
    seq: u32,
}

impl<R: RegisterFile> Unit<R> {
    /// Allocate the ring and a status slot, program IQT = 0 and IQA, then
    /// GCMD.QIE and wait for GSTS.QIES (Linux `__dmar_enable_qi`).
    pub(crate) fn enable_queued_invalidation<M: PhysMem + FrameAlloc>(&mut self, mm: &mut M) -> Result<(), UnitError> {
        let base = mm.alloc_zeroed().ok_or(UnitError::OutOfFrames)?;
        let Some(status) = mm.alloc_zeroed() else {
            mm.free(base);
            return Err(UnitError::OutOfFrames);
        };
        regs::IQT.write(&mut self.regs, 0);
        // IQA: base 63:12, DW 11 = 0 (128-bit descriptors), QS 2:0 = 0.
        regs::IQA.write(&mut self.regs, base);
        if let Err(e) = self.set_enable(GlobalCommand::QIE, GlobalStatus::QIES, true, "QIES") {
            mm.free(base);
            mm.free(status);
            return Err(e);
        }
        self.inval = InvalMode::Queued(InvQueue { base, status, tail: 0, seq: 0 });
        Ok(())
    }

    /// Let hardware consume what is queued (IQH reaches IQT, bounded), then
    /// clear GCMD.QIE and wait for GSTS.QIES = 0 (Linux `dmar_disable_qi`,
    /// which also turns QI off when its drain times out). Returns whether
    /// the drain finished.
    pub(crate) fn disable_queued_invalidation(&mut self) -> Result<bool, UnitError> {
        let drained =
            self.poll_until("IQH", "QH", |r| regs::IQH.read(r) & 0x7fff0 == regs::IQT.read(r) & 0x7fff0).is_ok();
        self.set_enable(GlobalCommand::QIE, GlobalStatus::QIES, false, "QIES")?;
        Ok(drained)
    }

    pub(super) fn queued_invalidate_context<M: PhysMem>(
        &mut self,
        mm: &mut M,
        scope: ContextScope,
    ) -> Result<(), UnitError> {
        self.qi_submit_sync(mm, Descriptor::context_cache(scope))
    }

    pub(super) fn queued_invalidate_iotlb<M: PhysMem>(
        &mut self,
        mm: &mut M,
        scope: IotlbScope,
    ) -> Result<(), UnitError> {
        let desc = Descriptor::iotlb(scope, self.cap.drd(), self.cap.dwd());
        self.qi_submit_sync(mm, desc)
    }

    /// [`Self::qi_submit_sync`] for the other modules (IEC invalidation).
    pub(super) fn qi_submit<M: PhysMem>(&mut self, mm: &mut M, desc: Descriptor) -> Result<(), UnitError> {
        self.qi_submit_sync(mm, desc)
    }

    /// Queue `desc` and a wait descriptor, advance IQT, and poll the status
    /// slot until the wait descriptor's data appears.
    fn qi_submit_sync<M: PhysMem>(&mut self, mm: &mut M, desc: Descriptor) -> Result<(), UnitError> {
        let InvalMode::Queued(mut q) = self.inval else {
            return Err(UnitError::Unsupported { feature: "queued invalidation enabled" });
        };
        // Synchronous use keeps the ring empty between calls; make sure the
        // hardware agrees before overwriting slots.
        self.poll_until("IQH", "QH", |r| queue_index(regs::IQH.read(r)) == q.tail)?;
        q.seq = match q.seq.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        mm.write_u64(q.status, 0);
        for d in [desc, Descriptor::inv_wait(q.status, q.seq)] {
            let slot = q.base + u64::from(q.tail) * DESC_SIZE;
            mm.write_u64(slot, d.lo);
            mm.write_u64(slot + 8, d.hi);
            mm.flush_for_device(slot);
            q.tail = (q.tail + 1) % QUEUE_ENTRIES;
        }
        self.inval = InvalMode::Queued(q);
        regs::IQT.write(&mut self.regs, u64::from(q.tail) << 4);
        for _ in 0..self.poll.0 {
            let errors = self.fault_status() & QUEUE_ERRORS;
            if !errors.is_empty() {
                return Err(self.recover_queue(errors));
            }
            if mm.read_u64(q.status) as u32 == q.seq {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(UnitError::Timeout { register: "inv_wait status", bit: "SW", polls: self.poll.0 })
    }

    /// After IQE/ICE/ITE: record IQH and IQERCD, drop what is still queued
    /// (IQT = IQH), and clear the FSTS bit (RW1CS) so hardware resumes.
    fn recover_queue(&mut self, errors: FaultStatus) -> UnitError {
        let fault = if errors.contains(FaultStatus::IQE) {
            QueueFault::Iqe
        } else if errors.contains(FaultStatus::ITE) {
            QueueFault::Ite
        } else {
            QueueFault::Ice
        };
        let head = queue_index(regs::IQH.read(&self.regs));
        let iqercd = regs::IQERCD.read(&self.regs);
        regs::IQT.write(&mut self.regs, u64::from(head) << 4);
        if let InvalMode::Queued(q) = &mut self.inval {
            q.tail = head;
        }
        regs::FSTS.write(&mut self.regs, errors.bits());
        UnitError::QueueError { fault, head, iqercd }
    }
}

/// IQH/IQT QH/QT field (bits 18:4) as a ring index.
fn queue_index(reg: u64) -> u16 {
    ((reg >> 4) & 0x7fff) as u16 % QUEUE_ENTRIES
}
