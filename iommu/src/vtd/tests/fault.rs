//! Fault recording (spec §7.3, §11.4.14).

extern crate std;

use std::string::ToString;
use std::vec::Vec;

use super::super::fault::{AccessKind, FaultReason, FaultRecord, FaultStatus};
use super::super::sim::{QEMU_CAP, QEMU_ECAP, Sim};
use super::super::tables::SourceId;
use super::{qemu_unit, unit_with};

#[test]
fn a_single_qemu_fault_is_decoded_and_cleared() {
    let (mut unit, sim) = qemu_unit();
    // edu at 00:03.0 writes to an unmapped page: QEMU reason 5.
    sim.inject_fault(0x0018, 5, 0x1000_0234, false);
    assert!(unit.fault_status().contains(FaultStatus::PPF));
    let log = unit.drain_faults();
    assert_eq!(log.records.len(), 1);
    let r = log.records[0];
    assert_eq!(r.source, SourceId::new(0, 3, 0));
    assert_eq!(r.reason, FaultReason(5));
    assert_eq!(r.access, AccessKind::Write);
    assert_eq!(r.address, 0x1000_0000);
    assert!(!log.overflow);
    assert_eq!(
        r.to_string(),
        "[DMA Write] Request device [00:03.0] fault addr 0x10000000 \
         [fault reason 0x05 PTE Write access is not set]"
    );
    // F cleared (write 1 to bit 127) and with it PPF.
    assert!(!unit.fault_status().contains(FaultStatus::PPF));
    assert!(unit.drain_faults().records.is_empty());
}

#[test]
fn a_second_fault_on_one_record_overflows_and_pfo_is_cleared() {
    let (mut unit, sim) = qemu_unit();
    sim.inject_fault(0x0018, 5, 0x1000, false);
    sim.inject_fault(0x0020, 6, 0x2000, true);
    let log = unit.drain_faults();
    assert!(log.overflow);
    assert_eq!(log.records.len(), 1);
    assert_eq!(log.records[0].reason, FaultReason(5));
    assert_eq!(sim.fsts() & 0b11, 0, "PFO and PPF clear");
    // Recording resumes.
    sim.inject_fault(0x0020, 6, 0x2000, true);
    let log = unit.drain_faults();
    assert_eq!(log.records[0].access, AccessKind::Read);
}

#[test]
fn records_are_read_from_fri_with_wrap_around() {
    // NFR = 4 (field 3), FRO unchanged at 0x220.
    let cap = (QEMU_CAP & !(0xff << 40)) | (3 << 40);
    let (mut unit, sim) = unit_with(Sim::with_caps(cap, QEMU_ECAP));
    assert_eq!(unit.cap().nfr(), 4);
    sim.set_next_frcd(2);
    for reason in 1..=4u8 {
        sim.inject_fault(u16::from(reason), reason, u64::from(reason) << 12, false);
    }
    assert_eq!(unit.fault_status().fri(), 2);
    let log = unit.drain_faults();
    let seen: Vec<(u16, u8)> = log.records.iter().map(|r| (r.index, r.reason.0)).collect();
    assert_eq!(seen, [(2, 1), (3, 2), (0, 3), (1, 4)]);
    assert!(unit.drain_faults().records.is_empty());
}

#[test]
fn decode_follows_the_frcd_layout() {
    // F 127, T 126 (read), FR 103:96 = 0x0c, SID 79:64 = 0x0110, FI 63:12.
    let hi = (1u64 << 63) | (1 << 62) | (0x0c << 32) | 0x0110;
    let r = FaultRecord::decode(0, 0xdead_b123, hi).unwrap();
    assert_eq!(r.source.to_string(), "01:02.0");
    assert_eq!(r.access, AccessKind::Read);
    assert_eq!(r.reason.text(), "non-zero reserved fields in PTE");
    assert_eq!(r.address, 0xdead_b000);
    assert_eq!(FaultRecord::decode(0, 0, hi & !(1 << 63)), None);
}

#[test]
fn every_spec_reason_has_text() {
    for reason in 1..=0x0du8 {
        assert_ne!(FaultReason(reason).text(), "Unknown", "{reason}");
    }
    assert_eq!(FaultReason(1).text(), "Present bit in root entry is clear");
    assert_eq!(FaultReason(2).text(), "Present bit in context entry is clear");
    assert_eq!(FaultReason(0xee).text(), "Unknown");
}
