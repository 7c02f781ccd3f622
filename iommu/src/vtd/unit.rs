//! One DMA-remapping unit (the hardware behind one DRHD): bring-up checks,
//! the GCMD/GSTS handshake, the root table and translation enable.
//!
//! Invalidation lives in [`super::inval`] and [`super::qi`], device attach in
//! [`super::attach`], faults in [`super::fault`]; all are `impl Unit` blocks.

use super::cap::{Cap, Ecap};
use alloc::vec::Vec;

use super::error::UnitError;
use super::fault::{FaultRecord, FaultStatus};
use super::inval::{ContextScope, InvalMode, IotlbScope};
use super::mem::PhysMem;
use super::regs::{self, FaultRecordRegs, GSTS_PERSISTENT_MASK, GlobalCommand, GlobalStatus, IotlbRegs, RegisterFile};
use super::tables::RootTable;

/// How many times a status register is read before a handshake is declared
/// stuck. QEMU completes every command during the MMIO write; real units
/// within microseconds. Linux `IOMMU_WAIT_OP` allows `DMAR_OPERATION_TIMEOUT`
/// (a few seconds of cycles), about a million uncached reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PollLimit(pub u32);

impl Default for PollLimit {
    fn default() -> Self {
        Self(1_000_000)
    }
}

/// What firmware (or a previous kernel) left running in a unit, and what
/// [`Unit::take_over`] did about it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Handoff {
    /// GSTS.TES was set: translation was turned off, as Linux `init_dmars`
    /// does outside kdump, so that no DMA is translated through tables this
    /// kernel does not own while its own are built.
    pub translation_disabled: bool,
    /// GSTS.IRES was set: interrupt remapping through a table this kernel
    /// does not own was turned off (GCMD.IRE cleared, bounded wait for
    /// IRES) and IRTA cleared, as Linux `intel_setup_irq_remapping` does
    /// outside kdump ("IRQ remapping was enabled ... but we are not in
    /// kdump mode" → `iommu_disable_irq_remapping`). Until this kernel
    /// sets up its own, interrupts are not remapped.
    pub interrupt_remapping_disabled: bool,
    /// GSTS.QIES was set: the queue was drained and QI turned off (Linux
    /// `dmar_disable_qi`), so the queue can be re-based.
    pub queue_disabled: bool,
    /// The drain did not finish (IQH never reached IQT) within the poll
    /// limit; QI was turned off anyway, as Linux does after its timeout.
    pub queue_drain_timed_out: bool,
    /// IQE/ICE/ITE found set in FSTS and cleared (RW1CS), so they are not
    /// taken for errors of this kernel's first submission.
    pub stale_queue_errors: u32,
    /// Primary fault records logged before this kernel (firmware, a
    /// previous kernel), read and cleared at take-over so that they are
    /// never reported as this boot's faults.
    pub pre_boot_faults: Vec<FaultRecord>,
    /// FSTS.PFO was set at take-over: some earlier faults were lost.
    pub pre_boot_fault_overflow: bool,
}

impl Handoff {
    /// Whether the unit was found quiet (nothing to report).
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

impl core::fmt::Display for Handoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_clean() {
            return f.write_str("nothing left running");
        }
        let notes = [
            (
                self.translation_disabled,
                "translation was on at hand-off: turned off until this kernel's tables are in place",
            ),
            (
                self.interrupt_remapping_disabled,
                "interrupt remapping was on at hand-off: turned off and IRTA cleared (not a kdump kernel)",
            ),
            (self.queue_disabled, "queued invalidation was on at hand-off: drained and turned off"),
            (
                self.queue_drain_timed_out,
                "the left-over queue did not drain (IQH never reached IQT); turned off anyway",
            ),
        ];
        let mut sep = "";
        for (_, text) in notes.iter().filter(|(on, _)| *on) {
            write!(f, "{sep}{text}")?;
            sep = "; ";
        }
        if self.stale_queue_errors != 0 {
            write!(f, "{sep}stale queue errors in FSTS cleared ({:#x})", self.stale_queue_errors)?;
            sep = "; ";
        }
        if !self.pre_boot_faults.is_empty() || self.pre_boot_fault_overflow {
            write!(
                f,
                "{sep}{} fault record(s) from before this kernel cleared{}",
                self.pre_boot_faults.len(),
                if self.pre_boot_fault_overflow { " (some lost: PFO was set)" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// A remapping unit driver over a register file `R`.
pub struct Unit<R: RegisterFile> {
    pub(super) regs: R,
    pub(super) cap: Cap,
    pub(super) ecap: Ecap,
    pub(super) poll: PollLimit,
    pub(super) inval: InvalMode,
    version: u32,
    /// Shadow of the last GCMD value written (GCMD reads are undefined).
    gcmd: GlobalCommand,
}

impl<R: RegisterFile> Unit<R> {
    /// Probe a unit: read VER, CAP, ECAP and GSTS, reject all-ones values
    /// (nothing there), and check that the fault-recording and IOTLB
    /// registers that CAP.FRO/NFR and ECAP.IRO point at are mapped (Linux
    /// `map_iommu`). Changes nothing in the hardware.
    pub fn new(regs: R, poll: PollLimit) -> Result<Self, UnitError> {
        let version = regs::VER.read(&regs);
        if version == u32::MAX {
            return Err(UnitError::AllOnes { register: "VER" });
        }
        let cap = Cap(regs::CAP.read(&regs));
        if cap.0 == u64::MAX {
            return Err(UnitError::AllOnes { register: "CAP" });
        }
        let ecap = Ecap(regs::ECAP.read(&regs));
        if ecap.0 == u64::MAX {
            return Err(UnitError::AllOnes { register: "ECAP" });
        }
        let gsts = regs::GSTS.read(&regs);
        if gsts == u32::MAX {
            return Err(UnitError::AllOnes { register: "GSTS" });
        }
        let mapped = regs.size();
        for (register, end) in [("FRCD", FaultRecordRegs::new(cap).end()), ("IOTLB", IotlbRegs::new(ecap).end())] {
            if end > mapped {
                return Err(UnitError::RegisterOutOfRange { register, end, mapped });
            }
        }
        Ok(Self {
            regs,
            cap,
            ecap,
            poll,
            inval: InvalMode::Register,
            version,
            gcmd: GlobalCommand::from_bits_retain(gsts & GSTS_PERSISTENT_MASK),
        })
    }

    pub fn cap(&self) -> Cap {
        self.cap
    }

    pub fn ecap(&self) -> Ecap {
        self.ecap
    }

    /// VER as (major, minor).
    pub fn version(&self) -> (u8, u8) {
        (((self.version >> 4) & 0xf) as u8, (self.version & 0xf) as u8)
    }

    /// Take the unit over from firmware or a previous kernel, before any
    /// other programming: translation off if it was on, interrupt
    /// remapping off (before the queue: IR needs QI), a left-over queue
    /// drained (bounded) and turned off, stale queue errors cleared, and
    /// the fault records already logged read and cleared (returned as
    /// pre-boot faults). Fails only if a GCMD handshake does not complete.
    pub fn take_over(&mut self) -> Result<Handoff, UnitError> {
        let mut handoff = Handoff::default();
        if self.status().contains(GlobalStatus::TES) {
            self.disable_translation()?;
            handoff.translation_disabled = true;
        }
        if self.status().contains(GlobalStatus::IRES) {
            self.set_enable(GlobalCommand::IRE, GlobalStatus::IRES, false, "IRES")?;
            handoff.interrupt_remapping_disabled = true;
        }
        if handoff.interrupt_remapping_disabled || regs::IRTA.read(&self.regs) != 0 {
            regs::IRTA.write(&mut self.regs, 0);
        }
        if self.status().contains(GlobalStatus::QIES) {
            handoff.queue_drain_timed_out = !self.disable_queued_invalidation()?;
            handoff.queue_disabled = true;
        }
        let stale = FaultStatus::from_bits_retain(regs::FSTS.read(&self.regs))
            & (FaultStatus::IQE | FaultStatus::ICE | FaultStatus::ITE);
        if !stale.is_empty() {
            regs::FSTS.write(&mut self.regs, stale.bits());
            handoff.stale_queue_errors = stale.bits();
        }
        let log = self.drain_faults();
        handoff.pre_boot_faults = log.records;
        handoff.pre_boot_fault_overflow = log.overflow;
        Ok(handoff)
    }

    /// GSTS now.
    pub fn status(&self) -> GlobalStatus {
        GlobalStatus::from_bits_retain(regs::GSTS.read(&self.regs))
    }

    /// The last value written to GCMD.
    pub fn gcmd_shadow(&self) -> GlobalCommand {
        self.gcmd
    }

    /// Poll until `done` holds, at most `PollLimit` reads.
    pub(super) fn poll_until(
        &self,
        register: &'static str,
        bit: &'static str,
        mut done: impl FnMut(&R) -> bool,
    ) -> Result<(), UnitError> {
        for _ in 0..self.poll.0 {
            if done(&self.regs) {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(UnitError::Timeout { register, bit, polls: self.poll.0 })
    }

    /// Write GCMD as spec §11.4.4 requires: the persistent enables read back
    /// from GSTS (masked with 0x96FF_FFFF so that no one-shot status is
    /// replayed as a command), with `set` added and `clear` removed. Then
    /// wait until GSTS shows `status` as `expect`.
    fn global_command(
        &mut self,
        set: GlobalCommand,
        clear: GlobalCommand,
        status: GlobalStatus,
        expect: bool,
        bit: &'static str,
    ) -> Result<(), UnitError> {
        let persistent = GlobalCommand::from_bits_retain(regs::GSTS.read(&self.regs) & GSTS_PERSISTENT_MASK);
        let value = (persistent | set) - clear;
        regs::GCMD.write(&mut self.regs, value.bits());
        self.gcmd = value;
        self.poll_until("GSTS", bit, |r| GlobalStatus::from_bits_retain(regs::GSTS.read(r)).contains(status) == expect)
    }

    /// Issue a one-shot command (SRTP, SIRTP, ...) and wait for its status.
    pub(super) fn one_shot(
        &mut self,
        cmd: GlobalCommand,
        status: GlobalStatus,
        bit: &'static str,
    ) -> Result<(), UnitError> {
        self.global_command(cmd, GlobalCommand::empty(), status, true, bit)
    }

    /// Set or clear a persistent enable (TE, QIE, IRE, ...) and wait for its
    /// status bit.
    pub(super) fn set_enable(
        &mut self,
        cmd: GlobalCommand,
        status: GlobalStatus,
        on: bool,
        bit: &'static str,
    ) -> Result<(), UnitError> {
        if on {
            self.global_command(cmd, GlobalCommand::empty(), status, true, bit)
        } else {
            self.global_command(GlobalCommand::empty(), cmd, status, false, bit)
        }
    }

    /// Program RTADDR (legacy mode, TTM = 00) and latch it with GCMD.SRTP,
    /// waiting for GSTS.RTPS; then invalidate the context cache and IOTLB
    /// globally, as Linux `iommu_set_root_entry` does (spec §6.5: cached
    /// entries may come from the previous table).
    pub fn set_root_table<M: PhysMem>(&mut self, mm: &mut M, root: &RootTable) -> Result<(), UnitError> {
        regs::RTADDR.write(&mut self.regs, root.phys());
        self.global_command(GlobalCommand::SRTP, GlobalCommand::empty(), GlobalStatus::RTPS, true, "RTPS")?;
        self.invalidate_context(mm, ContextScope::Global)?;
        self.invalidate_iotlb(mm, IotlbScope::Global)?;
        Ok(())
    }

    /// Flush the write buffer when CAP.RWBF requires it (spec §6.8, Linux
    /// `iommu_flush_write_buffer`): GCMD.WBF, then wait for GSTS.WBFS = 0.
    pub fn flush_write_buffer(&mut self) -> Result<(), UnitError> {
        if !self.cap.rwbf() {
            return Ok(());
        }
        self.global_command(GlobalCommand::WBF, GlobalCommand::empty(), GlobalStatus::WBFS, false, "WBFS")
    }

    /// GCMD.TE = 1, wait for GSTS.TES (Linux `iommu_enable_translation`).
    /// Call after the root table is set and every device that must keep
    /// DMA working has a context entry.
    pub fn enable_translation(&mut self) -> Result<(), UnitError> {
        self.flush_write_buffer()?;
        self.set_enable(GlobalCommand::TE, GlobalStatus::TES, true, "TES")
    }

    /// Turn off firmware protected-memory regions once translation is on
    /// (spec §11.4.11, Linux `iommu_disable_protect_mem_regions`): only when
    /// CAP.PLMR or CAP.PHMR; clear PMEN.EPM (bit 31), wait for PMEN.PRS
    /// (bit 0) to clear.
    pub fn disable_protected_memory(&mut self) -> Result<(), UnitError> {
        const EPM: u32 = 1 << 31;
        const PRS: u32 = 1 << 0;
        if !self.cap.plmr() && !self.cap.phmr() {
            return Ok(());
        }
        let pmen = regs::PMEN.read(&self.regs);
        regs::PMEN.write(&mut self.regs, pmen & !EPM);
        self.poll_until("PMEN", "PRS", |r| regs::PMEN.read(r) & PRS == 0)
    }

    /// GCMD.TE = 0, wait for GSTS.TES to clear.
    pub fn disable_translation(&mut self) -> Result<(), UnitError> {
        self.set_enable(GlobalCommand::TE, GlobalStatus::TES, false, "TES")
    }
}
