//! Register-based and queued invalidation (spec §6.5.1, §6.5.2).

extern crate std;

use super::super::domain::DomainId;
use super::super::error::{QueueFault, UnitError};
use super::super::inval::{ContextScope, InvalidationKind, IotlbScope};
use super::super::pagetable::IovaRange;
use super::super::qi::Descriptor;
use super::super::regs::{self, RegisterFile};
use super::super::sim::{Event, QEMU_CAP, QEMU_ECAP, Sim};
use super::super::tables::SourceId;
use super::{qemu_unit, unit_with};

const PAGE: IotlbScope = IotlbScope::Page { did: DomainId(7), range: IovaRange { addr: 0x4020_3000, am: 0 } };

fn sim_without_qi() -> Sim {
    Sim::with_caps(QEMU_CAP, QEMU_ECAP & !0b10)
}

#[test]
fn descriptors_match_the_spec_layout() {
    let cc =
        Descriptor::context_cache(ContextScope::Device { did: DomainId(0x1234), sid: SourceId::new(3, 3, 0), fm: 0 });
    // type 1, G = 11, DID 31:16, SID 47:32 (03:03.0 = 0x0318).
    assert_eq!((cc.lo, cc.hi), (0x0000_0318_1234_0031, 0));
    assert_eq!(Descriptor::context_cache(ContextScope::Global).lo, 0x11);
    let tlb = Descriptor::iotlb(PAGE, true, true);
    // type 2, G = 11, DW 6, DR 7, DID 31:16; hi = ADDR | AM.
    assert_eq!((tlb.lo, tlb.hi), (0x0007_00f2, 0x4020_3000));
    let dsi = Descriptor::iotlb(IotlbScope::Domain(DomainId(9)), false, false);
    assert_eq!((dsi.lo, dsi.hi), (0x0009_0022, 0));
    let wait = Descriptor::inv_wait(0x12_3458, 0xdead_beef);
    // type 5, SW (bit 5), status data 63:32; hi = address 63:2.
    assert_eq!((wait.lo, wait.hi), (0xdead_beef_0000_0025, 0x12_3458));
    assert_eq!(wait.kind(), 5);
}

#[test]
fn register_based_invalidation_without_ecap_qi() {
    let (mut unit, mut sim) = unit_with(sim_without_qi());
    assert_eq!(unit.setup_invalidation(&mut sim), Ok(InvalidationKind::Register));
    unit.invalidate_context(&mut sim, ContextScope::Domain(DomainId(5))).unwrap();
    unit.invalidate_iotlb(&mut sim, PAGE).unwrap();
    unit.invalidate_iotlb(&mut sim, IotlbScope::Global).unwrap();
    assert_eq!(
        sim.invalidations(),
        [
            Event::ContextInval { g: 2, did: 5, sid: 0, queued: false },
            Event::IotlbInval { g: 3, did: 7, addr: 0x4020_3000, am: 0, queued: false },
            Event::IotlbInval { g: 1, did: 0, addr: 0, am: 0, queued: false },
        ]
    );
    // The IOTLB register sits at ECAP.IRO + 8 = 0xf8 and reports IAIG.
    assert_eq!(sim.read64(0xf8) >> 57 & 3, 1);
}

#[test]
fn queued_invalidation_is_used_exclusively_once_enabled() {
    let (mut unit, mut sim) = qemu_unit();
    assert_eq!(unit.setup_invalidation(&mut sim), Ok(InvalidationKind::Queued));
    assert_eq!(unit.invalidation_kind(), InvalidationKind::Queued);
    unit.invalidate_context(&mut sim, ContextScope::Global).unwrap();
    unit.invalidate_iotlb(&mut sim, PAGE).unwrap();
    let events = sim.events();
    assert!(!events.iter().any(|e| matches!(e, Event::Refused(_))));
    let queued: std::vec::Vec<_> =
        events.iter().filter(|e| !matches!(e, Event::MemWrite { .. } | Event::Gcmd(_))).copied().collect();
    assert_eq!(
        queued,
        [
            Event::ContextInval { g: 1, did: 0, sid: 0, queued: true },
            Event::WaitStatus { data: 1 },
            Event::IotlbInval { g: 3, did: 7, addr: 0x4020_3000, am: 0, queued: true },
            Event::WaitStatus { data: 2 },
        ]
    );
    // IQT advanced by four 16-byte descriptors; IQH caught up.
    assert_eq!(sim.read64(regs::IQT.offset()), 4 << 4);
    assert_eq!(sim.read64(regs::IQH.offset()), 4 << 4);
}

#[test]
fn the_ring_wraps_after_256_descriptors() {
    let (mut unit, mut sim) = qemu_unit();
    unit.setup_invalidation(&mut sim).unwrap();
    for _ in 0..200 {
        unit.invalidate_iotlb(&mut sim, IotlbScope::Global).unwrap();
    }
    assert_eq!(sim.read64(regs::IQT.offset()), (400 % 256) << 4);
    assert_eq!(sim.read64(regs::IQH.offset()), (400 % 256) << 4);
}

#[test]
fn page_selective_falls_back_to_domain_without_psi_or_beyond_mamv() {
    let (mut unit, mut sim) = unit_with(Sim::with_caps(QEMU_CAP & !(1 << 39), QEMU_ECAP));
    unit.setup_invalidation(&mut sim).unwrap();
    unit.invalidate_iotlb(&mut sim, PAGE).unwrap();
    let (mut unit2, mut sim2) = qemu_unit();
    unit2.setup_invalidation(&mut sim2).unwrap();
    let huge = IotlbScope::Page { did: DomainId(7), range: IovaRange { addr: 0, am: 19 } };
    unit2.invalidate_iotlb(&mut sim2, huge).unwrap();
    for s in [sim, sim2] {
        assert_eq!(s.invalidations(), [Event::IotlbInval { g: 2, did: 7, addr: 0, am: 0, queued: true }]);
    }
}

#[test]
fn a_queue_error_is_reported_and_cleared() {
    let (mut unit, mut sim) = qemu_unit();
    unit.setup_invalidation(&mut sim).unwrap();
    sim.inner().fail_next_desc = true;
    assert_eq!(
        unit.invalidate_context(&mut sim, ContextScope::Global),
        Err(UnitError::QueueError { fault: QueueFault::Iqe, head: 0, iqercd: 1 })
    );
    assert_eq!(sim.fsts() & (1 << 4), 0, "FSTS.IQE cleared");
    // The queue works again from the descriptor that failed.
    unit.invalidate_context(&mut sim, ContextScope::Global).unwrap();
    assert_eq!(sim.read64(regs::IQH.offset()), 2 << 4);
}

#[test]
fn a_queue_that_never_completes_times_out() {
    let (mut unit, mut sim) = qemu_unit();
    unit.setup_invalidation(&mut sim).unwrap();
    sim.inner().stuck = true;
    assert_eq!(
        unit.invalidate_iotlb(&mut sim, IotlbScope::Global),
        Err(UnitError::Timeout { register: "inv_wait status", bit: "SW", polls: 64 })
    );
}

#[test]
fn register_handshakes_that_never_complete_time_out() {
    let (mut unit, mut sim) = unit_with(sim_without_qi());
    sim.inner().stuck = true;
    assert_eq!(
        unit.invalidate_context(&mut sim, ContextScope::Global),
        Err(UnitError::Timeout { register: "CCMD", bit: "ICC", polls: 64 })
    );
    assert_eq!(
        unit.invalidate_iotlb(&mut sim, IotlbScope::Global),
        Err(UnitError::Timeout { register: "IOTLB", bit: "IVT", polls: 64 })
    );
}

#[test]
fn qi_left_on_by_firmware_blocks_registers_until_taken_over() {
    let mut sim = Sim::qemu();
    // Firmware: a queue at some frame, QI enabled.
    sim.write64(regs::IQT.offset(), 0);
    sim.write64(regs::IQA.offset(), 0x20_0000);
    sim.write32(regs::GCMD.offset(), 1 << 26);
    sim.clear_events();
    let (mut unit, mut sim) = unit_with(sim);
    assert_eq!(unit.invalidate_context(&mut sim, ContextScope::Global), Err(UnitError::QueuedInvalidationActive));
    assert_eq!(unit.setup_invalidation(&mut sim), Err(UnitError::ForeignQueueActive), "take over first");
    assert!(unit.take_over().unwrap().queue_disabled);
    assert_eq!(unit.setup_invalidation(&mut sim), Ok(InvalidationKind::Queued));
    // QIE was cleared, then set again with our queue.
    let gcmd: std::vec::Vec<_> = sim.events().into_iter().filter(|e| matches!(e, Event::Gcmd(_))).collect();
    assert_eq!(gcmd, [Event::Gcmd(0), Event::Gcmd(1 << 26)]);
    assert_ne!(sim.read64(regs::IQA.offset()), 0x20_0000);
    unit.invalidate_context(&mut sim, ContextScope::Global).unwrap();
}
