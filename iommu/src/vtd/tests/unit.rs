//! Probe and the GCMD/GSTS handshake (spec §11.4.4).

extern crate std;

use std::format;
use std::string::ToString;

use super::super::error::UnitError;
use super::super::regs::{self, RegisterFile};
use super::super::regs::{GlobalCommand, GlobalStatus};
use super::super::sim::{Event, QEMU_CAP, QEMU_ECAP, Sim};
use super::super::tables::RootTable;
use super::super::unit::{Handoff, PollLimit, Unit};
use super::{qemu_unit, unit_with};

fn gcmd_writes(sim: &Sim) -> std::vec::Vec<u32> {
    sim.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Gcmd(v) => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn probe_decodes_qemu_7_2_capabilities() {
    let (unit, _) = qemu_unit();
    let cap = unit.cap();
    assert_eq!(unit.version(), (1, 0));
    assert_eq!(cap.nd(), 6);
    assert_eq!(cap.number_of_domains(), 65536);
    assert!(cap.cm() && !cap.rwbf() && !cap.afl() && !cap.plmr() && !cap.phmr());
    assert_eq!(cap.sagaw(), 0b00010);
    assert_eq!(cap.mgaw(), 39);
    assert!(!cap.zlr());
    assert_eq!(cap.fro(), 0x220);
    assert_eq!(cap.sllps(), 0b0011);
    assert!(cap.psi());
    assert_eq!(cap.nfr(), 1);
    assert_eq!(cap.mamv(), 18);
    assert!(cap.dwd() && cap.drd());
    assert!(!cap.fl1gp() && !cap.pi() && !cap.fl5lp());
    let ecap = unit.ecap();
    assert!(ecap.qi() && ecap.ir() && ecap.pt());
    assert!(!ecap.c() && !ecap.dt() && !ecap.eim() && !ecap.sc());
    assert_eq!(ecap.iro(), 0xf0);
    assert_eq!(ecap.mhmv(), 0xf);
    assert!(!ecap.smts() && !ecap.pasid() && !ecap.nest());
}

#[test]
fn debug_prints_raw_value_and_decoded_fields() {
    let (unit, _) = qemu_unit();
    let cap = format!("{:?}", unit.cap());
    assert!(cap.contains("raw: 0xd2008c22260286"), "{cap}");
    assert!(cap.contains("sagaw: 0b00010") && cap.contains("fro: 0x220") && cap.contains("cm: true"));
    let ecap = format!("{:?}", unit.ecap());
    assert!(ecap.contains("raw: 0xf00f4a") && ecap.contains("iro: 0xf0") && ecap.contains("qi: true"));
}

#[test]
fn a_unit_reading_all_ones_is_rejected() {
    let sim = Sim::qemu();
    sim.inner().all_ones = true;
    let err = Unit::new(sim, PollLimit(4)).err();
    assert_eq!(err, Some(UnitError::AllOnes { register: "VER" }));
}

#[test]
fn fault_records_outside_the_mapped_page_are_rejected() {
    // FRO = 0x3ff → 0x3ff0, beyond a 4 KiB mapping.
    let cap = (QEMU_CAP & !(0x3ff << 24)) | (0x3ff << 24);
    let err = Unit::new(Sim::with_caps(cap, QEMU_ECAP), PollLimit(4)).err();
    assert_eq!(err, Some(UnitError::RegisterOutOfRange { register: "FRCD", end: 0x4000, mapped: 0x1000 }));
}

#[test]
fn root_table_is_latched_once_and_srtp_is_never_replayed() {
    let (mut unit, mut sim) = qemu_unit();
    let root = RootTable::new(&mut sim).unwrap();
    unit.set_root_table(&mut sim, &root).unwrap();
    assert_eq!(sim.inner().root, Some(root.phys()));
    assert!(unit.status().contains(GlobalStatus::RTPS));
    unit.enable_translation().unwrap();
    unit.disable_translation().unwrap();
    // QEMU keeps RTPS set; composing GCMD from GSTS & 0x96FF_FFFF keeps
    // SRTP out of the TE writes.
    assert_eq!(gcmd_writes(&sim), [GlobalCommand::SRTP.bits(), GlobalCommand::TE.bits(), 0]);
    assert_eq!(sim.inner().srtp_count, 1);
    assert!(!unit.status().contains(GlobalStatus::TES));
}

#[test]
fn persistent_enables_are_carried_into_later_commands() {
    let (mut unit, mut sim) = qemu_unit();
    unit.setup_invalidation(&mut sim).unwrap();
    unit.enable_translation().unwrap();
    unit.disable_translation().unwrap();
    assert_eq!(
        gcmd_writes(&sim),
        [GlobalCommand::QIE.bits(), (GlobalCommand::QIE | GlobalCommand::TE).bits(), GlobalCommand::QIE.bits()]
    );
    assert_eq!(unit.gcmd_shadow(), GlobalCommand::QIE);
}

#[test]
fn write_buffer_flush_only_when_cap_rwbf() {
    let (mut unit, sim) = qemu_unit();
    unit.flush_write_buffer().unwrap();
    assert_eq!(sim.inner().wbf_count, 0);
    let (mut unit, sim) = unit_with(Sim::with_caps(QEMU_CAP | 1 << 4, QEMU_ECAP));
    unit.flush_write_buffer().unwrap();
    assert_eq!(sim.inner().wbf_count, 1);
    assert_eq!(gcmd_writes(&sim), [GlobalCommand::WBF.bits()]);
}

#[test]
fn a_unit_that_never_completes_times_out_naming_the_bit() {
    let (mut unit, mut sim) = qemu_unit();
    let root = RootTable::new(&mut sim).unwrap();
    sim.inner().stuck = true;
    assert_eq!(
        unit.set_root_table(&mut sim, &root),
        Err(UnitError::Timeout { register: "GSTS", bit: "RTPS", polls: 64 })
    );
    assert_eq!(unit.enable_translation(), Err(UnitError::Timeout { register: "GSTS", bit: "TES", polls: 64 }));
    assert_eq!(unit.setup_invalidation(&mut sim), Err(UnitError::Timeout { register: "GSTS", bit: "QIES", polls: 64 }));
    // The failed QI setup returned its frames; only the root table is live.
    assert_eq!(sim.live_frames(), 1);
}

#[test]
fn errors_display_one_line() {
    let errors = [
        UnitError::AllOnes { register: "CAP" },
        UnitError::Timeout { register: "CCMD", bit: "ICC", polls: 10 },
        UnitError::QueuedInvalidationActive,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.contains('\n') && text.starts_with("VT-d"), "{text}");
    }
    assert_eq!(
        UnitError::Timeout { register: "CCMD", bit: "ICC", polls: 10 }.to_string(),
        "VT-d timeout: CCMD.ICC did not change after 10 polls"
    );
}

#[test]
fn protected_memory_is_disabled_only_when_cap_reports_it() {
    let (mut unit, mut sim) = qemu_unit();
    // QEMU has neither PLMR nor PHMR: PMEN is not touched.
    sim.write32(regs::PMEN.offset(), 1 << 31);
    unit.disable_protected_memory().unwrap();
    assert_eq!(sim.read32(regs::PMEN.offset()), 1 << 31);
    let (mut unit, mut sim) = unit_with(Sim::with_caps(QEMU_CAP | 1 << 5, QEMU_ECAP));
    sim.write32(regs::PMEN.offset(), 1 << 31);
    unit.disable_protected_memory().unwrap();
    assert_eq!(sim.read32(regs::PMEN.offset()), 0);
}

/// Firmware left translation and queued invalidation on, with a drained
/// queue and a stale queue error: all three are undone and reported.
#[test]
fn take_over_turns_off_what_firmware_left_running() {
    let sim = Sim::qemu();
    {
        let mut s = sim.inner();
        s.poke(regs::GSTS.offset(), 4, u64::from((GlobalStatus::TES | GlobalStatus::QIES).bits()));
        s.poke(regs::IQH.offset(), 8, 5 << 4);
        s.poke(regs::IQT.offset(), 8, 5 << 4);
        s.poke(regs::FSTS.offset(), 4, 1 << 4); // IQE
    }
    let (mut unit, sim) = unit_with(sim);
    let handoff = unit.take_over().unwrap();
    assert_eq!(
        handoff,
        Handoff {
            translation_disabled: true,
            queue_disabled: true,
            queue_drain_timed_out: false,
            stale_queue_errors: 1 << 4,
            ..Handoff::default()
        }
    );
    assert!(!unit.status().intersects(GlobalStatus::TES | GlobalStatus::QIES));
    assert_eq!(regs::FSTS.read(&sim) & 0x70, 0);
    // TE went off first, then QIE; TE was never turned on again.
    assert_eq!(gcmd_writes(&sim), [GlobalCommand::QIE.bits(), 0]);
    assert!(handoff.to_string().contains("translation was on at hand-off"));
}

#[test]
fn take_over_of_a_quiet_unit_writes_nothing() {
    let (mut unit, sim) = qemu_unit();
    let handoff = unit.take_over().unwrap();
    assert!(handoff.is_clean());
    assert_eq!(handoff.to_string(), "nothing left running");
    assert!(gcmd_writes(&sim).is_empty());
}

/// A left-over queue that never drains: the drain gives up after the poll
/// limit and QI is turned off anyway; QEMU (like this sim) refuses that
/// with work pending, so the unit is reported unusable instead of hanging.
#[test]
fn a_left_over_queue_that_never_drains_ends_in_an_error_not_a_hang() {
    let sim = Sim::qemu();
    {
        let mut s = sim.inner();
        s.poke(regs::GSTS.offset(), 4, u64::from(GlobalStatus::QIES.bits()));
        s.poke(regs::IQH.offset(), 8, 1 << 4);
        s.poke(regs::IQT.offset(), 8, 3 << 4);
    }
    let (mut unit, sim) = unit_with(sim);
    assert_eq!(unit.take_over(), Err(UnitError::Timeout { register: "GSTS", bit: "QIES", polls: 64 }));
    assert_eq!(gcmd_writes(&sim), [0]);
}

/// Firmware left interrupt remapping on (IRE with a table at IRTA), as a
/// previous kernel would: take-over turns it off with a bounded GSTS wait
/// (Linux `iommu_disable_irq_remapping`, done by
/// `intel_setup_irq_remapping` outside kdump), clears IRTA, and IRE is
/// never carried into a later command.
#[test]
fn take_over_turns_firmware_interrupt_remapping_off() {
    let sim = Sim::qemu();
    {
        let mut s = sim.inner();
        s.poke(regs::GSTS.offset(), 4, u64::from((GlobalStatus::IRES | GlobalStatus::IRTPS).bits()));
        s.poke(regs::IRTA.offset(), 8, 0x7f00_000f);
    }
    let (mut unit, sim) = unit_with(sim);
    let handoff = unit.take_over().unwrap();
    assert!(handoff.interrupt_remapping_disabled);
    assert!(!unit.status().contains(GlobalStatus::IRES), "IRES clear after take-over");
    assert_eq!(regs::IRTA.read(&sim), 0, "the firmware's table pointer is gone");
    assert!(handoff.to_string().contains("interrupt remapping was on at hand-off"));
    let mut mm = sim.clone();
    let root = RootTable::new(&mut mm).unwrap();
    unit.set_root_table(&mut mm, &root).unwrap();
    unit.enable_translation().unwrap();
    assert!(
        gcmd_writes(&sim).iter().all(|v| v & GlobalCommand::IRE.bits() == 0),
        "IRE never written back: {:x?}",
        gcmd_writes(&sim)
    );
}

/// A unit that never acknowledges IRE going off: a named timeout, not a
/// hang.
#[test]
fn interrupt_remapping_that_will_not_turn_off_times_out() {
    let sim = Sim::qemu();
    {
        let mut s = sim.inner();
        s.poke(regs::GSTS.offset(), 4, u64::from(GlobalStatus::IRES.bits()));
        s.stuck = true;
    }
    let (mut unit, _) = unit_with(sim);
    assert_eq!(unit.take_over(), Err(UnitError::Timeout { register: "GSTS", bit: "IRES", polls: 64 }));
}

/// Fault records logged before this kernel (firmware, a previous kernel)
/// are read and cleared at take-over and handed back separately, so they
/// are never reported as this boot's faults.
#[test]
fn take_over_clears_and_returns_pre_boot_faults() {
    let sim = Sim::qemu();
    sim.inject_fault(0x0028, 5, 0x20_0000, false);
    let (mut unit, sim) = unit_with(sim);
    let handoff = unit.take_over().unwrap();
    assert_eq!(handoff.pre_boot_faults.len(), 1);
    let f = handoff.pre_boot_faults[0];
    assert_eq!((f.source.0, f.reason.0, f.address), (0x0028, 5, 0x20_0000));
    assert!(!handoff.is_clean());
    assert!(handoff.to_string().contains("1 fault record(s) from before this kernel cleared"));
    assert_eq!(sim.fsts() & 0x3, 0, "PPF and PFO clear");
    assert!(unit.drain_faults().records.is_empty(), "nothing left for this boot's log");
}
