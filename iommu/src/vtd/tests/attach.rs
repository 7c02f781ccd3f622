//! Context entries and the invalidations around them and around mappings
//! (spec §6.5.3.3, caching mode §6.1).

extern crate std;

use std::vec::Vec;

use super::super::domain::{Domain, DomainId, DomainIdAllocator};
use super::super::error::UnitError;
use super::super::mem::PhysMem;
use super::super::pagetable::{Geometry, PageSize, Perms};
use super::super::sim::{Event, QEMU_CAP, QEMU_ECAP, Sim};
use super::super::tables::{RootTable, SourceId};
use super::super::unit::Unit;
use super::{qemu_unit, unit_with};

const RW: Perms = Perms::READ.union(Perms::WRITE);
const EDU: SourceId = SourceId::new(0, 3, 0);

/// A unit with QI on, a root table set, and one domain.
fn ready(sim: Sim) -> (Unit<Sim>, Sim, RootTable, Domain) {
    let (mut unit, mut sim) = unit_with(sim);
    unit.setup_invalidation(&mut sim).unwrap();
    let root = RootTable::new(&mut sim).unwrap();
    unit.set_root_table(&mut sim, &root).unwrap();
    let geometry = Geometry::for_unit(unit.cap(), unit.ecap(), 57).unwrap();
    let id = DomainIdAllocator::new(unit.cap()).alloc().unwrap();
    let domain = Domain::new(&mut sim, id, geometry).unwrap();
    sim.clear_events();
    (unit, sim, root, domain)
}

#[test]
fn domain_ids_respect_cap_nd_and_reserve_zero_under_caching_mode() {
    let (unit, _) = qemu_unit();
    let mut ids = DomainIdAllocator::new(unit.cap());
    assert_eq!(ids.limit(), 65536);
    assert!(ids.is_used(DomainId(0)));
    assert_eq!(ids.alloc(), Some(DomainId(1)));
    // ND = 0: 16 ids, no CM: 0 is usable.
    let small = QEMU_CAP & !0b111 & !(1 << 7);
    let mut ids = DomainIdAllocator::new(super::super::cap::Cap(small));
    let all: Vec<_> = std::iter::from_fn(|| ids.alloc()).collect();
    assert_eq!(all.len(), 16);
    assert_eq!(all[0], DomainId(0));
    ids.free(DomainId(4));
    assert_eq!(ids.alloc(), Some(DomainId(4)));
    assert_eq!(ids.alloc(), None);
}

#[test]
fn attach_writes_the_context_entry_bit_exactly() {
    let (mut unit, mut sim, mut root, domain) = ready(Sim::qemu());
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    // Root entry for bus 0: CTP | P.
    let re = sim.read_u64(root.phys());
    assert_eq!(re & 0xfff, 1);
    // Context entry at devfn 0x18: lo = SLPTPTR | T=00 | FPD=0 | P,
    // hi = DID << 8 | AW (1 = 39-bit).
    let ce = (re & !0xfff) + 0x18 * 16;
    assert_eq!(sim.read_u64(ce), domain.table_root() | 1);
    assert_eq!(sim.read_u64(ce + 8), (1 << 8) | 1);
    // The high half was written before the low half (which holds P).
    let writes: Vec<u64> = sim
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::MemWrite { pa, .. } if pa == ce || pa == ce + 8 => Some(pa),
            _ => None,
        })
        .collect();
    assert_eq!(writes, [ce + 8, ce]);
}

#[test]
fn caching_mode_flushes_did_zero_and_the_domain_after_attach() {
    let (mut unit, mut sim, mut root, domain) = ready(Sim::qemu());
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    assert_eq!(
        sim.invalidations(),
        [
            Event::ContextInval { g: 3, did: 0, sid: 0x18, queued: true },
            Event::IotlbInval { g: 2, did: 1, addr: 0, am: 0, queued: true },
        ]
    );
    // Attaching again to the same domain changes nothing.
    sim.clear_events();
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    assert!(sim.events().is_empty());
}

#[test]
fn without_caching_mode_attach_only_flushes_the_write_buffer() {
    let cap = (QEMU_CAP & !(1 << 7)) | 1 << 4;
    let (mut unit, mut sim, mut root, mut domain) = ready(Sim::with_caps(cap, QEMU_ECAP));
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    unit.map(&mut sim, &mut domain, 0x1000, 0x5000, PageSize::Size4K, RW).unwrap();
    assert!(sim.invalidations().is_empty());
    assert_eq!(sim.inner().wbf_count, 2);
}

#[test]
fn moving_a_device_invalidates_the_old_domain_first() {
    let (mut unit, mut sim, mut root, domain) = ready(Sim::qemu());
    let other = Domain::new(&mut sim, DomainId(2), domain.geometry()).unwrap();
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    sim.clear_events();
    unit.attach_device(&mut sim, &mut root, EDU, &other).unwrap();
    let inval = sim.invalidations();
    assert_eq!(
        inval[..2],
        [
            Event::ContextInval { g: 3, did: 1, sid: 0x18, queued: true },
            Event::IotlbInval { g: 2, did: 1, addr: 0, am: 0, queued: true },
        ]
    );
    assert_eq!(root.context_entry(&sim, EDU).domain_id(), DomainId(2));
}

#[test]
fn detach_clears_present_before_invalidating() {
    let (mut unit, mut sim, mut root, domain) = ready(Sim::qemu());
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    let ce = (sim.read_u64(root.phys()) & !0xfff) + 0x18 * 16;
    sim.clear_events();
    assert_eq!(unit.detach_device(&mut sim, &mut root, EDU), Ok(Some(DomainId(1))));
    let events = sim.events();
    let clear = events.iter().position(|e| *e == Event::MemWrite { pa: ce, value: 0 }).unwrap();
    let cc = events.iter().position(|e| matches!(e, Event::ContextInval { g: 3, did: 1, .. })).unwrap();
    let tlb = events.iter().position(|e| matches!(e, Event::IotlbInval { g: 2, did: 1, .. })).unwrap();
    assert!(clear < cc && cc < tlb);
    assert!(!root.context_entry(&sim, EDU).present());
    assert_eq!(unit.detach_device(&mut sim, &mut root, EDU), Ok(None));
}

#[test]
fn caching_mode_flushes_each_new_mapping() {
    let (mut unit, mut sim, _root, mut domain) = ready(Sim::qemu());
    unit.map(&mut sim, &mut domain, 0x1000, 0x5000, PageSize::Size4K, RW).unwrap();
    unit.map(&mut sim, &mut domain, 0x20_0000, 0x40_0000, PageSize::Size2M, RW).unwrap();
    assert_eq!(
        sim.invalidations(),
        [
            Event::IotlbInval { g: 3, did: 1, addr: 0x1000, am: 0, queued: true },
            Event::IotlbInval { g: 3, did: 1, addr: 0x20_0000, am: 9, queued: true },
        ]
    );
}

#[test]
fn unmap_clears_the_pte_then_invalidates_then_waits() {
    let (mut unit, mut sim, _root, mut domain) = ready(Sim::qemu());
    unit.map(&mut sim, &mut domain, 0x1000, 0x5000, PageSize::Size4K, RW).unwrap();
    sim.clear_events();
    unit.unmap(&mut sim, &mut domain, 0x1000, PageSize::Size4K).unwrap();
    let events = sim.events();
    let clear = events.iter().position(|e| matches!(e, Event::MemWrite { value: 0, .. })).unwrap();
    let tlb = events
        .iter()
        .position(|e| *e == Event::IotlbInval { g: 3, did: 1, addr: 0x1000, am: 0, queued: true })
        .unwrap();
    let wait = events.iter().position(|e| matches!(e, Event::WaitStatus { .. })).unwrap();
    assert!(clear < tlb && tlb < wait);
    assert_eq!(domain.translate(&sim, 0x1000), None);
}

#[test]
fn tearing_down_frees_frames_only_after_invalidation() {
    let (mut unit, mut sim, mut root, mut domain) = ready(Sim::qemu());
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    unit.map(&mut sim, &mut domain, 0x1000, 0x5000, PageSize::Size4K, RW).unwrap();
    sim.clear_events();
    unit.detach_device(&mut sim, &mut root, EDU).unwrap();
    domain.destroy(&mut sim);
    let events = sim.events();
    let last_inval = events.iter().rposition(|e| matches!(e, Event::IotlbInval { .. })).unwrap();
    let first_free = events.iter().position(|e| matches!(e, Event::FrameFreed(_))).unwrap();
    assert!(last_inval < first_free);
    assert_eq!(events.iter().filter(|e| matches!(e, Event::FrameFreed(_))).count(), 3);
}

#[test]
fn a_domain_wider_than_sagaw_is_refused() {
    let (mut unit, mut sim, mut root, _) = ready(Sim::qemu());
    let aw48 = Geometry::for_unit(super::super::cap::Cap(super::super::sim::QEMU_CAP_AW48), unit.ecap(), 57).unwrap();
    let wide = Domain::new(&mut sim, DomainId(3), aw48).unwrap();
    assert!(unit.attach_device(&mut sim, &mut root, EDU, &wide).is_err());
    assert!(!root.context_entry(&sim, EDU).present());
}

/// ECAP.C = 0 (QEMU's value): page walks do not snoop the CPU cache, so
/// every table line the unit can reach must be flushed before the register
/// write that lets it walk (Linux `domain_flush_cache`). The sim records
/// dirty lines it meets when it walks the tables at a register write.
#[test]
fn tables_the_unit_walks_are_flushed_before_it_can_walk_them() {
    let (mut unit, mut sim, mut root, mut domain) = ready(Sim::qemu());
    assert!(!unit.ecap().c());
    for page in 0..600u64 {
        // Crosses a level-1 table boundary (512 pages), so new levels appear.
        let iova = 0x4000_0000 + page * 4096;
        unit.map(&mut sim, &mut domain, iova, 0x20_0000 + page * 4096, PageSize::Size4K, RW).unwrap();
    }
    unit.map(&mut sim, &mut domain, 0x8000_0000, 0x4000_0000, PageSize::Size2M, RW).unwrap();
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    unit.attach_device(&mut sim, &mut root, SourceId::new(5, 0, 0), &domain).unwrap();
    unit.enable_translation().unwrap();
    unit.unmap(&mut sim, &mut domain, 0x4000_0000, PageSize::Size4K).unwrap();
    unit.detach_device(&mut sim, &mut root, EDU).unwrap();
    assert_eq!(sim.inner().stale_walks, Vec::<u64>::new());
}

/// The check above can fail: a context entry written without a flush is
/// seen at the next register write.
#[test]
fn an_unflushed_table_write_is_seen_by_the_walk() {
    let (mut unit, mut sim, mut root, domain) = ready(Sim::qemu());
    unit.attach_device(&mut sim, &mut root, EDU, &domain).unwrap();
    let ce = (sim.read_u64(root.phys()) & !0xfff) + 0x18 * 16;
    sim.inner().mem_write_for_test(ce + 8, (2 << 8) | 1);
    unit.enable_translation().unwrap();
    assert_eq!(sim.inner().stale_walks, [ce & !63]);
}

#[test]
fn domain_id_zero_is_refused_under_caching_mode() {
    let (mut unit, mut sim, mut root, _) = ready(Sim::qemu());
    let geometry = Geometry::for_unit(unit.cap(), unit.ecap(), 57).unwrap();
    let zero = Domain::new(&mut sim, DomainId(0), geometry).unwrap();
    assert!(matches!(unit.attach_device(&mut sim, &mut root, EDU, &zero), Err(UnitError::Unsupported { .. })));
    assert!(!root.context_entry(&sim, EDU).present());
    // Without caching mode id 0 is an ordinary id.
    let (mut unit, mut sim, mut root, _) = ready(Sim::with_caps(QEMU_CAP & !(1 << 7), QEMU_ECAP));
    let zero = Domain::new(&mut sim, DomainId(0), geometry).unwrap();
    unit.attach_device(&mut sim, &mut root, EDU, &zero).unwrap();
}
