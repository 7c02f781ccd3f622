//! Primary fault logging (VT-d spec rev 4.1 §7.3, §11.4.9, §11.4.14).
//!
//! [`Unit::drain_faults`] reads the fault recording registers from FSTS.FRI
//! onwards, wrapping over CAP.NFR records and reading at most NFR of them,
//! clears each with a write of 1 to F, then clears FSTS.PFO (RW1CS) — the
//! order of Linux `dmar_fault`. QEMU 7.2 has one record: a second fault
//! arriving before the first is cleared is lost and only sets PFO.

use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

use super::regs::{self, FaultRecordRegs, RegisterFile};
use super::tables::SourceId;
use super::unit::Unit;

bitflags! {
    /// FSTS (spec §11.4.9.1). FRI (15:8) is a field: [`FaultStatus::fri`].
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct FaultStatus: u32 {
        /// Primary Fault Overflow (RW1CS).
        const PFO = 1 << 0;
        /// Primary Pending Fault (read-only: some FRCD has F set).
        const PPF = 1 << 1;
        /// Advanced Fault Overflow (RW1CS).
        const AFO = 1 << 2;
        /// Advanced Pending Fault (RW1CS).
        const APF = 1 << 3;
        /// Invalidation Queue Error (RW1CS).
        const IQE = 1 << 4;
        /// Invalidation Completion Error (RW1CS).
        const ICE = 1 << 5;
        /// Invalidation Time-out Error (RW1CS).
        const ITE = 1 << 6;
        const _ = !0;
    }
}

impl FaultStatus {
    /// FRI: index of the first pending fault record.
    pub const fn fri(self) -> u16 {
        ((self.bits() >> 8) & 0xff) as u16
    }
}

/// A fault reason (FRCD.FR), with the spec's text (VT-d spec rev 4.1
/// Appendix A "Non-Recoverable Fault Reason Encodings"; wording of Linux
/// `dma_remap_fault_reasons`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FaultReason(pub u8);

impl FaultReason {
    pub const fn text(self) -> &'static str {
        match self.0 {
            0x00 => "Software",
            0x01 => "Present bit in root entry is clear",
            0x02 => "Present bit in context entry is clear",
            0x03 => "Invalid context entry",
            0x04 => "Access beyond MGAW",
            0x05 => "PTE Write access is not set",
            0x06 => "PTE Read access is not set",
            0x07 => "Next page table ptr is invalid",
            0x08 => "Root table address invalid",
            0x09 => "Context table ptr is invalid",
            0x0a => "non-zero reserved fields in RTP",
            0x0b => "non-zero reserved fields in CTP",
            0x0c => "non-zero reserved fields in PTE",
            0x0d => "PCE for translation request specifies blocking",
            0x20..=0x26 => "Interrupt remapping fault",
            0x30..=0x8f => "Scalable-mode fault",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} {}", self.0, self.text())
    }
}

/// The request type of a fault (FRCD.T, bit 126: 0 write, 1 read).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AccessKind {
    Read,
    Write,
}

/// One decoded fault record (spec §11.4.14):
///
/// ```text
///  bits 63:12   FI   faulting page address
///  bits 79:64   SID  source-id
///  bits 103:96  FR   fault reason
///  bit  126     T    type: 0 write, 1 read
///  bit  127     F    fault (RW1CS)
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FaultRecord {
    /// Which FRCD it was read from.
    pub index: u16,
    pub source: SourceId,
    pub reason: FaultReason,
    pub access: AccessKind,
    /// FI: the page of the faulting address.
    pub address: u64,
    /// The record as read: bits 63:0, bits 127:64.
    pub raw: (u64, u64),
}

impl FaultRecord {
    /// Decode a record; `None` if F is clear.
    pub fn decode(index: u16, lo: u64, hi: u64) -> Option<Self> {
        if hi >> 63 == 0 {
            return None;
        }
        Some(Self {
            index,
            source: SourceId(hi as u16),
            reason: FaultReason((hi >> 32) as u8),
            access: if (hi >> 62) & 1 == 1 { AccessKind::Read } else { AccessKind::Write },
            address: lo & !0xfff,
            raw: (lo, hi),
        })
    }
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.access {
            AccessKind::Read => "DMA Read",
            AccessKind::Write => "DMA Write",
        };
        write!(
            f,
            "[{kind}] Request device [{}] fault addr {:#x} [fault reason {}]",
            self.source, self.address, self.reason
        )
    }
}

/// What [`Unit::drain_faults`] found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FaultLog {
    /// FSTS before clearing.
    pub status: FaultStatus,
    /// Records in hardware order (from FRI, wrapping), at most CAP.NFR.
    pub records: Vec<FaultRecord>,
    /// FSTS.PFO was set: at least one fault was lost.
    pub overflow: bool,
}

/// FECTL.IM: interrupt mask.
const FECTL_IM: u32 = 1 << 31;
/// FRCD.F in the record's top 32-bit word.
const FRCD_F_WORD: u32 = 1 << 31;

impl<R: RegisterFile> Unit<R> {
    pub fn fault_status(&self) -> FaultStatus {
        FaultStatus::from_bits_retain(regs::FSTS.read(&self.regs))
    }

    /// Read and clear every pending primary fault record, then PFO/AFO/APF.
    /// Invalidation-queue errors (IQE/ICE/ITE) are left to the queue code.
    pub fn drain_faults(&mut self) -> FaultLog {
        let status = self.fault_status();
        let frcd = FaultRecordRegs::new(self.cap);
        let mut records = Vec::new();
        if status.contains(FaultStatus::PPF) {
            let mut index = status.fri() % frcd.count();
            for _ in 0..frcd.count() {
                let hi = frcd.high(index).read(&self.regs);
                let lo = frcd.low(index).read(&self.regs);
                let Some(record) = FaultRecord::decode(index, lo, hi) else {
                    break;
                };
                frcd.fault_word(index).write(&mut self.regs, FRCD_F_WORD);
                records.push(record);
                index = (index + 1) % frcd.count();
            }
        }
        let sticky = status & (FaultStatus::PFO | FaultStatus::AFO | FaultStatus::APF);
        if !sticky.is_empty() {
            regs::FSTS.write(&mut self.regs, sticky.bits());
        }
        FaultLog { status, records, overflow: status.contains(FaultStatus::PFO) }
    }

    /// Program the fault-event MSI (FEDATA, FEADDR, FEUADDR; §11.4.9.3-5).
    pub fn program_fault_event(&mut self, data: u32, address: u64) {
        regs::FEDATA.write(&mut self.regs, data);
        regs::FEADDR.write(&mut self.regs, address as u32);
        regs::FEUADDR.write(&mut self.regs, (address >> 32) as u32);
    }

    /// Set or clear FECTL.IM. Drain stale records before unmasking.
    pub fn set_fault_event_masked(&mut self, masked: bool) {
        regs::FECTL.write(&mut self.regs, if masked { FECTL_IM } else { 0 });
    }
}
