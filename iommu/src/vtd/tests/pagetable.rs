//! Second-level tables checked bit by bit against the spec layout (§9.8):
//! non-leaf entries = next table | R | W, leaves = frame | PS? | SNP? | W? | R.

use super::super::cap::{Cap, Ecap};
use super::super::mem::{FrameAlloc, PhysMem};
use super::super::pagetable::{AddressWidth, Geometry, MapError, PageSize, Perms, SecondLevelTable, Translation};
use super::super::sim::{QEMU_CAP, QEMU_CAP_AW48, QEMU_ECAP, Sim};

const RW: Perms = Perms::READ.union(Perms::WRITE);

/// QEMU CAP with another SAGAW and MGAW (field = bits - 1).
fn cap_with(sagaw: u64, mgaw_bits: u64) -> Cap {
    Cap((QEMU_CAP & !(0x1f << 8) & !(0x3f << 16)) | (sagaw << 8) | ((mgaw_bits - 1) << 16))
}

fn table(cap: Cap, ecap: Ecap) -> (SecondLevelTable, Sim) {
    let mut mem = Sim::qemu();
    let geometry = Geometry::for_unit(cap, ecap, Geometry::DEFAULT_NEED_BITS).unwrap();
    (SecondLevelTable::new(&mut mem, geometry).unwrap(), mem)
}

/// Read entry `index` of the table at `pa`.
fn entry(mem: &Sim, pa: u64, index: u64) -> u64 {
    mem.read_u64(pa + index * 8)
}

#[test]
fn width_is_chosen_from_sagaw_as_linux_does() {
    let qemu = Cap(QEMU_CAP);
    assert_eq!(AddressWidth::select(qemu, 57), Some(AddressWidth::Bits39));
    let aw48 = Cap(QEMU_CAP_AW48);
    assert_eq!(aw48.sagaw(), 0b00110);
    assert_eq!(aw48.mgaw(), 48);
    assert_eq!(AddressWidth::select(aw48, 57), Some(AddressWidth::Bits48));
    assert_eq!(AddressWidth::select(aw48, 39), Some(AddressWidth::Bits39));
    // width_to_agaw rounds up: 40 bits need the 48-bit format.
    assert_eq!(AddressWidth::select(aw48, 40), Some(AddressWidth::Bits48));
    assert_eq!(AddressWidth::select(cap_with(0b01110, 57), 57), Some(AddressWidth::Bits57));
    // Only 5-level offered, 48 bits needed: Linux never walks upwards.
    assert_eq!(AddressWidth::select(cap_with(0b01000, 57), 48), None);
    assert_eq!(AddressWidth::select(cap_with(0, 48), 57), None);
    assert_eq!(Geometry::for_unit(cap_with(0, 48), Ecap(QEMU_ECAP), 57), Err(MapError::NoSupportedWidth { sagaw: 0 }));
    let g = Geometry::for_unit(aw48, Ecap(QEMU_ECAP), 57).unwrap();
    assert_eq!((g.width.levels(), g.width.agaw(), g.address_bits), (4, 2, 48));
}

#[test]
fn three_level_4k_mapping_is_bit_exact() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP));
    assert_eq!(t.geometry().width, AddressWidth::Bits39);
    // iova 0x4020_3000: L3 index 1, L2 index 1, L1 index 3.
    let range = t.map(&mut mem, 0x4020_3000, 0x1234_5000, PageSize::Size4K, RW).unwrap();
    assert_eq!((range.addr, range.am), (0x4020_3000, 0));
    let l3 = entry(&mem, t.root(), 1);
    assert_eq!(l3 & 0xfff, 0b11, "non-leaf: R|W only");
    let l2 = entry(&mem, l3 & !0xfff, 1);
    assert_eq!(l2 & 0xfff, 0b11);
    let l1 = entry(&mem, l2 & !0xfff, 3);
    assert_eq!(l1, 0x1234_5000 | 0b11);
    // Every other slot stays zero.
    assert_eq!(entry(&mem, t.root(), 0), 0);
    assert_eq!(entry(&mem, l2 & !0xfff, 2), 0);

    t.map(&mut mem, 0x4020_4000, 0x5000, PageSize::Size4K, Perms::READ).unwrap();
    assert_eq!(entry(&mem, l2 & !0xfff, 4), 0x5000 | 0b01);
    assert_eq!(
        t.translate(&mem, 0x4020_3abc),
        Some(Translation { phys: 0x1234_5abc, perms: RW, size: PageSize::Size4K })
    );
    assert_eq!(t.translate(&mem, 0x4020_4000).unwrap().perms, Perms::READ);
    assert_eq!(t.translate(&mem, 0x4020_5000), None);
}

#[test]
fn four_level_mapping_is_bit_exact() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP_AW48), Ecap(QEMU_ECAP));
    assert_eq!(t.geometry().width, AddressWidth::Bits48);
    // Bit 47 set: L4 index 256; then L3 1, L2 1, L1 3.
    let iova = (1 << 47) | 0x4020_3000;
    t.map(&mut mem, iova, 0x7000, PageSize::Size4K, Perms::WRITE).unwrap();
    let l4 = entry(&mem, t.root(), 256);
    let l3 = entry(&mem, l4 & !0xfff, 1);
    let l2 = entry(&mem, l3 & !0xfff, 1);
    let l1 = entry(&mem, l2 & !0xfff, 3);
    assert_eq!([l4, l3, l2].map(|e| e & 0xfff), [0b11; 3]);
    assert_eq!(l1, 0x7000 | 0b10);
    assert_eq!(t.translate(&mem, iova).unwrap().phys, 0x7000);
    assert_eq!(
        t.map(&mut mem, 1 << 48, 0x8000, PageSize::Size4K, RW),
        Err(MapError::BeyondAddressWidth { iova: 1 << 48, bits: 48 })
    );
}

#[test]
fn five_level_mapping_is_bit_exact() {
    let (mut t, mut mem) = table(cap_with(0b01000, 57), Ecap(QEMU_ECAP));
    assert_eq!(t.geometry().width.levels(), 5);
    // Bit 56 set: L5 index 256, L4 index 0, L3 1, L2 1, L1 3.
    let iova = (1 << 56) | 0x4020_3000;
    t.map(&mut mem, iova, 0x9000, PageSize::Size4K, RW).unwrap();
    let l5 = entry(&mem, t.root(), 256);
    let l4 = entry(&mem, l5 & !0xfff, 0);
    let l3 = entry(&mem, l4 & !0xfff, 1);
    let l2 = entry(&mem, l3 & !0xfff, 1);
    let l1 = entry(&mem, l2 & !0xfff, 3);
    assert_eq!([l5, l4, l3, l2].map(|e| e & 0xfff), [0b11; 4]);
    assert_eq!(l1, 0x9000 | 0b11);
    assert_eq!(t.translate(&mem, iova | 0x10).unwrap().phys, 0x9010);
}

#[test]
fn two_mib_and_one_gib_pages_set_ps() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP));
    // iova 0x60_0000: L3 index 0, L2 index 3, leaf at level 2.
    let range = t.map(&mut mem, 0x60_0000, 0x4000_0000, PageSize::Size2M, RW).unwrap();
    assert_eq!(range.am, 9);
    let l3 = entry(&mem, t.root(), 0);
    assert_eq!(entry(&mem, l3 & !0xfff, 3), 0x4000_0000 | 1 << 7 | 0b11);
    assert_eq!(
        t.translate(&mem, 0x61_2345),
        Some(Translation { phys: 0x4001_2345, perms: RW, size: PageSize::Size2M })
    );
    // A 4 KiB page inside the 2 MiB page is refused.
    assert_eq!(
        t.map(&mut mem, 0x60_1000, 0x1000, PageSize::Size4K, RW),
        Err(MapError::AlreadyMapped { iova: 0x60_1000 })
    );
    // 1 GiB at L3 index 2 (CAP.SLLPS bit 1 on QEMU).
    let range = t.map(&mut mem, 0x8000_0000, 0x1_0000_0000, PageSize::Size1G, Perms::READ).unwrap();
    assert_eq!(range.am, 18);
    assert_eq!(entry(&mem, t.root(), 2), 0x1_0000_0000 | 1 << 7 | 0b01);
    assert_eq!(
        t.unmap(&mut mem, 0x60_0000, PageSize::Size4K),
        Err(MapError::SizeMismatch { iova: 0x60_0000, mapped: 0x20_0000 })
    );
    t.unmap(&mut mem, 0x60_0000, PageSize::Size2M).unwrap();
    assert_eq!(entry(&mem, l3 & !0xfff, 3), 0);
    assert_eq!(t.translate(&mem, 0x60_0000), None);
}

#[test]
fn large_pages_need_cap_sllps() {
    let no_sllps = Cap(QEMU_CAP & !(0xf << 34));
    let (mut t, mut mem) = table(no_sllps, Ecap(QEMU_ECAP));
    assert_eq!(
        t.map(&mut mem, 0x20_0000, 0x20_0000, PageSize::Size2M, RW),
        Err(MapError::PageSizeUnsupported { size: 0x20_0000 })
    );
}

#[test]
fn invalid_requests_are_refused() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP));
    let cases = [
        (0, 0x1000, PageSize::Size4K, RW, MapError::IovaZero),
        (0, 0, PageSize::Size2M, RW, MapError::IovaZero),
        (0x1800, 0x1000, PageSize::Size4K, RW, MapError::Misaligned { iova: 0x1800, phys: 0, size: 0x1000 }),
        (
            0x20_0000,
            0x1000,
            PageSize::Size2M,
            RW,
            MapError::Misaligned { iova: 0x20_0000, phys: 0x1000, size: 0x20_0000 },
        ),
        (1 << 39, 0x1000, PageSize::Size4K, RW, MapError::BeyondAddressWidth { iova: 1 << 39, bits: 39 }),
        (0x1000, 1 << 52, PageSize::Size4K, RW, MapError::PhysTooWide { phys: 1 << 52, bits: 52 }),
        (0x1000, 0x1000, PageSize::Size4K, Perms::empty(), MapError::NoAccess),
        (0x1000, 0x1000, PageSize::Size4K, RW | Perms::SNOOP, MapError::SnoopUnsupported),
    ];
    for (iova, phys, size, perms, err) in cases {
        assert_eq!(t.map(&mut mem, iova, phys, size, perms), Err(err));
    }
    t.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, RW).unwrap();
    assert_eq!(t.map(&mut mem, 0x1000, 0x2000, PageSize::Size4K, RW), Err(MapError::AlreadyMapped { iova: 0x1000 }));
    assert_eq!(t.unmap(&mut mem, 0x2000, PageSize::Size4K), Err(MapError::NotMapped { iova: 0x2000 }));
}

#[test]
fn snp_is_set_only_with_ecap_sc() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP | 1 << 7));
    t.map(&mut mem, 0x1000, 0x3000, PageSize::Size4K, RW | Perms::SNOOP).unwrap();
    t.map(&mut mem, 0x2000, 0x4000, PageSize::Size4K, RW).unwrap();
    let l3 = entry(&mem, t.root(), 0);
    let l2 = entry(&mem, l3 & !0xfff, 0);
    assert_eq!(entry(&mem, l2 & !0xfff, 1), 0x3000 | 1 << 11 | 0b11);
    assert_eq!(entry(&mem, l2 & !0xfff, 2), 0x4000 | 0b11);
}

#[test]
fn the_walk_ands_permissions_over_levels() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP));
    t.map(&mut mem, 0x1000, 0x3000, PageSize::Size4K, RW).unwrap();
    // Make the level-3 entry read-only by hand: hardware then denies writes.
    let l3 = entry(&mem, t.root(), 0);
    mem.write_u64(t.root(), l3 & !0b10);
    assert_eq!(t.translate(&mem, 0x1000).unwrap().perms, Perms::READ);
}

#[test]
fn destroy_frees_every_table_frame() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP_AW48), Ecap(QEMU_ECAP));
    let before = mem.live_frames();
    t.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, RW).unwrap();
    t.map(&mut mem, 1 << 40, 0x2000, PageSize::Size4K, RW).unwrap();
    // Shares L4[0] with the first mapping; one new level-2 table.
    t.map(&mut mem, 0x4000_0000, 0, PageSize::Size2M, RW).unwrap();
    assert_eq!(mem.live_frames(), before + 7);
    t.destroy(&mut mem);
    assert_eq!(mem.live_frames(), before - 1);
}

#[test]
fn running_out_of_frames_is_an_error() {
    let (mut t, mut mem) = table(Cap(QEMU_CAP), Ecap(QEMU_ECAP));
    mem.inner().frame_limit = mem.live_frames();
    assert_eq!(mem.alloc_zeroed(), None);
    assert_eq!(t.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, RW), Err(MapError::OutOfFrames));
}

/// With the DMAR's host address width (39 on QEMU), a leaf may not point
/// at or above 2^39: QEMU faults such entries with reason 0xC.
#[test]
fn leaves_stay_below_the_host_address_width() {
    let mut mem = Sim::qemu();
    let geometry = Geometry::for_unit(Cap(QEMU_CAP), Ecap(QEMU_ECAP), Geometry::DEFAULT_NEED_BITS)
        .unwrap()
        .with_host_address_width(39);
    let mut t = SecondLevelTable::new(&mut mem, geometry).unwrap();
    let top = (1u64 << 39) - 0x1000;
    t.map(&mut mem, 0x1000, top, PageSize::Size4K, RW).unwrap();
    assert_eq!(
        t.map(&mut mem, 0x2000, 1 << 39, PageSize::Size4K, RW),
        Err(MapError::PhysTooWide { phys: 1 << 39, bits: 39 })
    );
    assert_eq!(t.map(&mut mem, 0x20_0000, (1 << 39) - 0x20_0000, PageSize::Size2M, RW).map(|r| r.addr), Ok(0x20_0000));
}
