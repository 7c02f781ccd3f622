//! Interrupt remapping: IRTE encoding (§9.10), Linux `set_msi_sid`, the
//! table allocator, IEC descriptors, the enable order, and remapping of
//! MSI writes by the simulated QEMU 7.2 unit.

extern crate std;

use std::vec::Vec;

use super::super::error::UnitError;
use super::super::irq_remap::*;
use super::super::qi::Descriptor;
use super::super::regs::{self, GlobalCommand, GlobalStatus, RegisterFile};
use super::super::sim::{Event, Sim};
use super::super::unit::Unit;
use super::qemu_unit;
use pci::msi::MsiMessage;
use pci::sim::SimConfig;
use pci::sim::qemu::*;

fn qi_unit() -> (Unit<Sim>, Sim) {
    let (mut unit, mut sim) = qemu_unit();
    unit.setup_invalidation(&mut sim).expect("QI on");
    (unit, sim)
}

fn gcmds(sim: &Sim) -> Vec<u32> {
    sim.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Gcmd(v) => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn irte_remapped_format() {
    let e = Irte::remapped(0x41, 3, SourceValidation::RequesterId(0x0028));
    assert_eq!(e.lo, 1 | 0x41 << 16 | 3 << 40);
    assert_eq!(e.hi, 0x28 | 1 << 18);
    assert!(e.present() && !e.reserved_bits());
    assert_eq!((e.vector(), e.dest()), (0x41, 3));
    assert_eq!(e.source_validation(), SourceValidation::RequesterId(0x28));
    let b = Irte::remapped(0x30, 0, SourceValidation::BusRange { start: 7, end: 8 });
    assert_eq!(b.hi, 0x0708 | 2 << 18, "SVT=10b, start bus in SID 15:8, end bus in 7:0");
    assert_eq!(b.source_validation(), SourceValidation::BusRange { start: 7, end: 8 });
    assert!(Irte { lo: 1 | 1 << 12, hi: 0 }.reserved_bits());
    assert!(Irte { lo: 1, hi: 1 << (84 - 64) }.reserved_bits());
    // xAPIC mode: DST holds the APIC id in 47:40 only; 39:32 and 63:48 are reserved.
    assert!(Irte { lo: 1 | 1 << 32, hi: 0 }.reserved_bits());
    assert!(Irte { lo: 1 | 1 << 48, hi: 0 }.reserved_bits());
    for v in [0x20u8, 0xef] {
        for d in [0u8, 0xff] {
            for sv in [SourceValidation::RequesterId(0xffff), SourceValidation::BusRange { start: 0xff, end: 0xff }] {
                let e = Irte::remapped(v, d, sv);
                assert!(!e.reserved_bits() && e.lo & 0xfffe == 0, "{e:x?}: FPD, DM, RH, TM, DLM, AVL, IM all 0");
            }
        }
    }
}

#[test]
fn iec_descriptors() {
    assert_eq!(Descriptor::iec(IecScope::Global), Descriptor { lo: 0x4, hi: 0 });
    let d = Descriptor::iec(IecScope::Index { index: 5, mask: 1 });
    assert_eq!(d, Descriptor { lo: 0x4 | 0x10 | 1 << 27 | 5 << 32, hi: 0 });
    assert_eq!(d.kind(), 4);
}

#[test]
fn bus_range_spec_and_qemu_7_2() {
    let same = SourceValidation::BusRange { start: 7, end: 7 };
    assert!(same.accepts(0x0708) && same.qemu_7_2_accepts(0x0708));
    assert!(!same.accepts(0x0608) && !same.qemu_7_2_accepts(0x0608));
    let range = SourceValidation::BusRange { start: 7, end: 8 };
    assert!(range.accepts(0x0800), "bus 8 is inside 7..=8 by the spec");
    assert!(!range.qemu_7_2_accepts(0x0800), "QEMU 7.2 takes 7 as the maximum and 8 as the minimum");
    assert!(!range.qemu_7_2_accepts(0x0700));
}

#[test]
fn allocator_aligned_blocks() {
    let (_, mut sim) = qemu_unit();
    let mut t = IrTable::new(&mut sim).unwrap();
    assert_eq!(IrTable::entries(), 256);
    assert_eq!(t.irta(), t.phys() | 7, "S=7: 2^(7+1) entries, EIME 0");
    assert_eq!(t.alloc(1), Ok(0));
    assert_eq!(t.alloc(2), Ok(2), "a block of two is aligned to two");
    assert_eq!(t.alloc(1), Ok(1));
    assert_eq!(t.alloc(4), Ok(4));
    assert_eq!(t.alloc(3), Err(IrteError::BadCount(3)));
    assert_eq!(t.alloc(512), Err(IrteError::BadCount(512)));
    assert_eq!(t.in_use(), 8);
    assert_eq!(t.free(&mut sim, 2, 2), Ok(()));
    assert_eq!(t.free(&mut sim, 2, 2), Err(IrteError::BadIndex(2)), "double free");
    assert_eq!(t.alloc(2), Ok(2));
    assert_eq!(t.set(&mut sim, 200, Irte::default()), Err(IrteError::BadIndex(200)), "not allocated");
    let mut full = IrTable::new(&mut sim).unwrap();
    assert_eq!(full.alloc(256), Ok(0));
    assert_eq!(full.alloc(1), Err(IrteError::Full { count: 1 }));
}

#[test]
fn enable_follows_linux_order() {
    let (mut unit, mut sim) = qi_unit();
    let table = IrTable::new(&mut sim).unwrap();
    sim.clear_events();
    unit.enable_interrupt_remapping(&mut sim, &table).expect("IR on");
    assert_eq!(sim.read64(regs::IRTA.offset()), table.phys() | 7);
    assert_eq!(sim.inner().ir_root, Some((table.phys(), 256)), "SIRTP latched the table");
    let ev = sim.events();
    let sirtp = ev.iter().position(|e| matches!(e, Event::Gcmd(v) if v & GlobalCommand::SIRTP.bits() != 0)).unwrap();
    let iec = ev.iter().position(|e| matches!(e, Event::IecInval { global: true, .. })).expect("global IEC");
    let ire = ev.iter().position(|e| matches!(e, Event::Gcmd(v) if v & GlobalCommand::IRE.bits() != 0)).unwrap();
    assert!(sirtp < iec && iec < ire, "SIRTP, then global IEC, then IRE: {ev:?}");
    let st = unit.status();
    assert!(st.contains(GlobalStatus::IRES) && !st.contains(GlobalStatus::CFIS) && st.contains(GlobalStatus::QIES));
    assert!(gcmds(&sim).iter().all(|v| v & GlobalCommand::CFI.bits() == 0), "CFI never set");
    assert!(unit.interrupt_remapping_enabled());
}

#[test]
fn enable_clears_cfi_left_on() {
    let (mut unit, mut sim) = qi_unit();
    unit.set_enable(GlobalCommand::CFI, GlobalStatus::CFIS, true, "CFIS").unwrap();
    assert!(unit.status().contains(GlobalStatus::CFIS));
    let table = IrTable::new(&mut sim).unwrap();
    unit.enable_interrupt_remapping(&mut sim, &table).unwrap();
    assert!(!unit.status().contains(GlobalStatus::CFIS), "compatibility format blocked");
}

#[test]
fn enable_needs_qi_and_ir() {
    let (mut unit, mut sim) = qemu_unit();
    let table = IrTable::new(&mut sim).unwrap();
    assert!(matches!(unit.enable_interrupt_remapping(&mut sim, &table), Err(UnitError::Unsupported { .. })));
    assert!(!unit.interrupt_remapping_enabled());
    let no_ir = Sim::with_caps(super::super::sim::QEMU_CAP, super::super::sim::QEMU_ECAP & !(1 << 3));
    let (mut unit, mut sim) = super::unit_with(no_ir);
    unit.setup_invalidation(&mut sim).unwrap();
    let table = IrTable::new(&mut sim).unwrap();
    assert_eq!(
        unit.enable_interrupt_remapping(&mut sim, &table),
        Err(UnitError::Unsupported { feature: "interrupt remapping (ECAP.IR)" })
    );
}

#[test]
fn enable_times_out_boundedly() {
    let (mut unit, mut sim) = qi_unit();
    let table = IrTable::new(&mut sim).unwrap();
    sim.inner().stuck = true;
    assert!(matches!(unit.enable_interrupt_remapping(&mut sim, &table), Err(UnitError::Timeout { bit: "IRTPS", .. })));
}

#[test]
fn remapped_msi_through_the_simulated_unit() {
    let (mut unit, mut sim) = qi_unit();
    let mut table = IrTable::new(&mut sim).unwrap();
    unit.enable_interrupt_remapping(&mut sim, &table).unwrap();
    let edu_sid = 0x0028; // 00:05.0
    let a = table.alloc(1).unwrap();
    table.set(&mut sim, a, Irte::remapped(0x20, 0, SourceValidation::RequesterId(edu_sid))).unwrap();
    unit.invalidate_iec(&mut sim, IecScope::Index { index: a, mask: 0 }).unwrap();
    assert!(sim.events().contains(&Event::IecInval { global: false, index: a, im: 0 }));
    let msg = MsiMessage::remappable(a, 0);
    let inner = sim.inner();
    assert_eq!(inner.remap_msi(msg.address, msg.data, edu_sid), Ok((0x20, 0)), "delivered through its IRTE");
    assert_eq!(inner.remap_msi(msg.address, msg.data, 0x0300), Err(0x26), "another requester: source-id check");
    let absent = MsiMessage::remappable(a + 1, 0);
    assert_eq!(inner.remap_msi(absent.address, absent.data, edu_sid), Err(0x22), "not present");
    let beyond = MsiMessage::remappable(300, 0);
    assert_eq!(inner.remap_msi(beyond.address, beyond.data, edu_sid), Err(0x21), "index beyond the table");
    drop(inner);
    // Multi-message: a block of two, the function adds its message number.
    let b = table.alloc(2).unwrap();
    for n in 0..2 {
        table.set(&mut sim, b + n, Irte::remapped(0x30 + n as u8, 0, SourceValidation::RequesterId(0x00e0))).unwrap();
    }
    let m = MsiMessage::remappable(b, 0);
    assert_eq!(sim.inner().remap_msi(m.address, m.data | 1, 0x00e0), Ok((0x31, 0)));
    table.free(&mut sim, a, 1).unwrap();
    assert_eq!(sim.inner().remap_msi(msg.address, msg.data, edu_sid), Err(0x22), "freed entry is not present");
}

/// A small topology: edu on bus 0, an edu behind a switch, an edu behind
/// a PCIe-to-PCI bridge and one behind a PCI bridge below that.
fn topo() -> pci::Topology {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    s.at(0, 5, 0, edu());
    s.at(0, 2, 0, root_port(true, 1, 3));
    s.at(1, 0, 0, usp(1, 2, 3));
    s.at(2, 0, 0, dsp(2, 3, 3));
    s.at(3, 0, 0, edu());
    s.at(0, 3, 0, root_port(true, 6, 8));
    s.at(6, 0, 0, pcie_pci_bridge(6, 7, 8));
    s.at(7, 1, 0, edu());
    s.at(7, 2, 0, pci_bridge(7, 8, 8));
    s.at(8, 1, 0, edu());
    pci::enumerate(&mut s, 0, &[0], 0..=255)
}

fn index_of(t: &pci::Topology, bus: u8, dev: u8) -> usize {
    t.functions.iter().position(|f| f.bdf.bus == bus && f.bdf.device == dev).unwrap()
}

#[test]
fn set_msi_sid_as_linux() {
    let t = topo();
    // Case 4: no alias: the device's own id.
    assert_eq!(msi_source_validation(&t, index_of(&t, 0, 5)), SourceValidation::RequesterId(0x0028));
    assert_eq!(msi_source_validation(&t, index_of(&t, 3, 0)), SourceValidation::RequesterId(0x0300));
    // Case 1: behind a PCIe-to-PCI bridge: the alias is (07:00.0) on bus 7,
    // attributed to the bridge on bus 6: verify buses 7..=7.
    assert_eq!(msi_source_validation(&t, index_of(&t, 7, 1)), SourceValidation::BusRange { start: 7, end: 7 });
    // Below a conventional bridge under it: buses 7..=8, a real range
    // (which QEMU 7.2 refuses).
    let deep = msi_source_validation(&t, index_of(&t, 8, 1));
    assert_eq!(deep, SourceValidation::BusRange { start: 7, end: 8 });
    assert!(deep.accepts(0x0700) && !deep.qemu_7_2_accepts(0x0700));
}

#[test]
fn set_msi_sid_same_bus_aliases() {
    let mut t = topo();
    // Case 2: two aliases on one bus (an NTB-style proxy id): the bus only.
    let i = index_of(&t, 0, 5);
    t.functions[i].dma_alias_mask.insert(0x30);
    assert_eq!(msi_source_validation(&t, i), SourceValidation::BusRange { start: 0, end: 0 });
}

#[test]
fn install_rolls_back_when_the_iec_invalidation_fails() {
    let (mut unit, mut sim) = qi_unit();
    let mut table = IrTable::new(&mut sim).unwrap();
    unit.enable_interrupt_remapping(&mut sim, &table).unwrap();
    let sv = SourceValidation::RequesterId(0x0028);
    sim.inner().fail_next_desc = true;
    let r = unit.install_irtes(&mut sim, &mut table, 2, |i| Irte::remapped(0x40 + i as u8, 0, sv));
    assert!(matches!(r, Err(IrteRouteError::Invalidation(_))), "{r:?}");
    assert_eq!(table.in_use(), 0, "the block went back to the allocator");
    for i in 0..2 {
        assert!(!table.get(&sim, i).unwrap().present(), "IRTE {i} left present without an owner");
    }
    let msg = MsiMessage::remappable(0, 0);
    assert_eq!(sim.inner().remap_msi(msg.address, msg.data, 0x0028), Err(0x22), "nothing delivered through it");
    // The queue recovered: the next install works and reuses the block.
    assert_eq!(unit.install_irtes(&mut sim, &mut table, 2, |i| Irte::remapped(0x40 + i as u8, 0, sv)), Ok(0));
    assert_eq!(sim.inner().remap_msi(msg.address, msg.data, 0x0028), Ok((0x40, 0)));
}

#[test]
fn remove_clears_invalidates_and_quarantines_on_failure() {
    let (mut unit, mut sim) = qi_unit();
    let mut table = IrTable::new(&mut sim).unwrap();
    unit.enable_interrupt_remapping(&mut sim, &table).unwrap();
    let sv = SourceValidation::RequesterId(0x0028);
    let a = unit.install_irtes(&mut sim, &mut table, 1, |_| Irte::remapped(0x40, 0, sv)).unwrap();
    sim.clear_events();
    unit.remove_irtes(&mut sim, &mut table, a, 1).unwrap();
    assert!(sim.events().contains(&Event::IecInval { global: false, index: a, im: 0 }), "IEC after the free");
    assert_eq!(table.in_use(), 0);
    let b = unit.install_irtes(&mut sim, &mut table, 1, |_| Irte::remapped(0x41, 0, sv)).unwrap();
    sim.inner().fail_next_desc = true;
    assert!(matches!(unit.remove_irtes(&mut sim, &mut table, b, 1), Err(IrteRouteError::Invalidation(_))));
    assert!(!table.get(&sim, b).unwrap().present(), "cleared in memory");
    assert!(table.is_allocated(b), "kept out of the allocator: the unit may still cache it");
    assert_ne!(table.alloc(1), Ok(b));
}

/// A unit whose GSTS never shows IRES (the enable handshake never
/// completes as far as software can see), over the simulated unit.
struct IresHidden(Sim);

impl RegisterFile for IresHidden {
    fn read32(&self, offset: usize) -> u32 {
        let v = self.0.read32(offset);
        if offset == regs::GSTS.offset() { v & !GlobalStatus::IRES.bits() } else { v }
    }
    fn read64(&self, offset: usize) -> u64 {
        self.0.read64(offset)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.0.write32(offset, value)
    }
    fn write64(&mut self, offset: usize, value: u64) {
        self.0.write64(offset, value)
    }
    fn size(&self) -> usize {
        self.0.size()
    }
}

#[test]
fn failed_enable_turns_ire_back_off() {
    let mut sim = Sim::qemu();
    let mut unit = Unit::new(IresHidden(sim.clone()), super::super::unit::PollLimit(64)).unwrap();
    unit.setup_invalidation(&mut sim).unwrap();
    let table = IrTable::new(&mut sim).unwrap();
    let r = unit.enable_interrupt_remapping(&mut sim, &table);
    assert!(matches!(r, Err(UnitError::Timeout { bit: "IRES", .. })), "{r:?}");
    let gsts = GlobalStatus::from_bits_retain(sim.read32(regs::GSTS.offset()));
    assert!(!gsts.contains(GlobalStatus::IRES), "remapping left on behind a reported failure: {gsts:?}");
    assert_eq!(gcmds(&sim).last().map(|v| v & GlobalCommand::IRE.bits()), Some(0), "the last GCMD clears IRE");
}

#[test]
fn set_msi_sid_topology_alias_and_82801() {
    let mut s = SimConfig::new();
    s.at(0, 0, 0, q35_host());
    // Case 3: a conventional PCI bridge right below a root port substitutes
    // its own id (on its own bus): verify that requester id.
    s.at(0, 4, 0, root_port(true, 9, 10));
    s.at(9, 0, 0, pci_bridge(9, 10, 10));
    s.at(10, 1, 0, edu());
    // The 82801 (PCIE_BRIDGE_ALIAS quirk) below a root port: Linux takes
    // (secondary bus, 00.0), as for a PCIe-to-PCI bridge: buses 12..=12.
    s.at(0, 6, 0, root_port(true, 11, 12));
    s.at(11, 0, 0, i82801b11(11, 12, 12));
    s.at(12, 2, 0, edu());
    let t = pci::enumerate(&mut s, 0, &[0], 0..=255);
    assert_eq!(msi_source_validation(&t, index_of(&t, 10, 1)), SourceValidation::RequesterId(0x0900));
    assert_eq!(msi_source_validation(&t, index_of(&t, 12, 2)), SourceValidation::BusRange { start: 12, end: 12 });
}
