//! The DMAR parser over crafted tables (spec chapter 8).

extern crate std;

use std::string::ToString;
use std::vec;
use std::vec::Vec;

use pci::Bdf;

use super::super::dmar::{DmarErrorKind, DmarFlags, DrhdFlags, RMRR_MAX_LEN, Rmrr, RmrrError, Structure, parse};
use super::super::dmar_scope::{PathEntry, ResolveError, ScopeType};

fn scope(kind: u8, enumeration_id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut s = vec![kind, (6 + 2 * path.len()) as u8, 0, 0, enumeration_id, bus];
    for &(d, f) in path {
        s.extend([d, f]);
    }
    s
}

/// A structure: type, length (patched), the fixed fields, then scopes.
fn structure(kind: u16, fixed: &[u8], scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(kind.to_le_bytes());
    s.extend([0, 0]);
    s.extend(fixed);
    for sc in scopes {
        s.extend(sc);
    }
    let len = s.len() as u16;
    s[2..4].copy_from_slice(&len.to_le_bytes());
    s
}

fn drhd(flags: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![flags, 0];
    fixed.extend(segment.to_le_bytes());
    fixed.extend(base.to_le_bytes());
    structure(0, &fixed, scopes)
}

fn rmrr(base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![0, 0, 0, 0];
    fixed.extend(base.to_le_bytes());
    fixed.extend(limit.to_le_bytes());
    structure(1, &fixed, scopes)
}

/// A whole ACPI DMAR table: header as QEMU writes it (OEM "BOCHS ",
/// revision 1), HAW 38 (39 bits), flags, checksum fixed.
fn table(flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(b"DMAR");
    t.extend([0; 4]);
    t.extend([1, 0]);
    t.extend(b"BOCHS BXPC    ");
    t.extend(1u32.to_le_bytes());
    t.extend(b"BXPC");
    t.extend(1u32.to_le_bytes());
    assert_eq!(t.len(), 36);
    t.extend([38, flags]);
    t.extend([0; 10]);
    for s in structures {
        t.extend(s);
    }
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

/// The table QEMU 7.2 `build_dmar_q35` writes for q35 with intremap=on and
/// a root port at 00:02.0: DRHD flags 0 at 0xfed90000, the IOAPIC scope
/// (enumeration id 0, bus 0xff, devfn 0), then one scope per root-bus
/// function (bridges as sub-hierarchy).
fn qemu_q35() -> Vec<u8> {
    table(
        1,
        &[drhd(
            0,
            0,
            0xfed9_0000,
            &[
                scope(3, 0, 0xff, &[(0, 0)]),
                scope(1, 0, 0, &[(0, 0)]),
                scope(1, 0, 0, &[(1, 0)]),
                scope(2, 0, 0, &[(2, 0)]),
                scope(1, 0, 0, &[(0x1f, 0)]),
                scope(1, 0, 0, &[(0x1f, 2)]),
                scope(1, 0, 0, &[(0x1f, 3)]),
            ],
        )],
    )
}

#[test]
fn a_qemu_q35_table_parses() {
    let dmar = parse(&qemu_q35()).unwrap();
    assert!(dmar.errors.is_empty(), "{:?}", dmar.errors);
    assert_eq!(dmar.host_address_width, 39);
    assert_eq!(dmar.flags, DmarFlags::INTR_REMAP);
    let drhds: Vec<_> = dmar.drhds().collect();
    assert_eq!(drhds.len(), 1);
    let d = drhds[0];
    assert!(!d.flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
    assert_eq!((d.segment, d.register_base, d.register_size()), (0, 0xfed9_0000, 4096));
    assert_eq!(d.scopes.len(), 7);
    let ioapic = &d.scopes[0];
    assert_eq!(ioapic.kind, ScopeType::IoApic);
    assert_eq!((ioapic.enumeration_id, ioapic.start_bus), (0, 0xff));
    assert_eq!(ioapic.offset, 48 + 16);
    assert_eq!(d.scopes[3].kind, ScopeType::SubHierarchy);
    assert_eq!(d.scopes[5].path, [PathEntry { device: 0x1f, function: 2 }]);
}

#[test]
fn every_structure_type_is_decoded() {
    let ep = scope(1, 0, 0, &[(0x14, 0)]);
    let atsr = structure(2, &[1, 0, 0, 0], &[scope(2, 0, 0, &[(2, 0)])]);
    let mut rhsa_fixed = vec![0; 4];
    rhsa_fixed.extend(0xfed9_0000u64.to_le_bytes());
    rhsa_fixed.extend(3u32.to_le_bytes());
    let rhsa = structure(3, &rhsa_fixed, &[]);
    let andd = structure(4, &[0, 0, 0, 7, b'\\', b'_', b'S', b'B', 0], &[]);
    let satc = structure(5, &[1, 0, 0, 0], std::slice::from_ref(&ep));
    let t = table(
        0,
        &[drhd(1, 0, 0xfed9_0000, &[]), rmrr(0xe_8000, 0xe_8fff, std::slice::from_ref(&ep)), atsr, rhsa, andd, satc],
    );
    let dmar = parse(&t).unwrap();
    assert!(dmar.errors.is_empty(), "{:?}", dmar.errors);
    let s = &dmar.structures;
    assert!(matches!(&s[0], Structure::Drhd(d) if d.flags == DrhdFlags::INCLUDE_PCI_ALL && d.scopes.is_empty()));
    assert!(matches!(&s[1], Structure::Rmrr(r) if r.base == 0xe_8000 && r.limit == 0xe_8fff && r.scopes.len() == 1));
    assert!(matches!(&s[2], Structure::Atsr(a) if a.flags == 1 && a.scopes[0].kind == ScopeType::SubHierarchy));
    assert!(matches!(&s[3], Structure::Rhsa(r) if r.register_base == 0xfed9_0000 && r.proximity_domain == 3));
    assert!(matches!(&s[4], Structure::Andd(a) if a.device_number == 7 && a.name == "\\_SB"));
    assert!(matches!(&s[5], Structure::Satc(a) if a.flags == 1 && a.scopes.len() == 1));
    assert_eq!(dmar.rmrrs().count(), 1);
}

#[test]
fn truncated_or_foreign_tables_are_refused() {
    let good = qemu_q35();
    assert_eq!(parse(&good[..40]).unwrap_err().kind, DmarErrorKind::TableTooShort { length: 40 });
    assert_eq!(
        parse(&good[..good.len() - 1]).unwrap_err().kind,
        DmarErrorKind::BadTableLength { header: good.len() as u32, available: good.len() - 1 }
    );
    let mut apic = good.clone();
    apic[..4].copy_from_slice(b"APIC");
    assert_eq!(parse(&apic).unwrap_err().kind, DmarErrorKind::BadSignature(*b"APIC"));
    let mut short = good.clone();
    short[4..8].copy_from_slice(&20u32.to_le_bytes());
    assert!(matches!(parse(&short).unwrap_err().kind, DmarErrorKind::BadTableLength { header: 20, .. }));
}

#[test]
fn a_bad_checksum_is_reported_but_the_table_still_parses() {
    let mut t = qemu_q35();
    t[9] = t[9].wrapping_add(1);
    let dmar = parse(&t).unwrap();
    assert_eq!(dmar.errors[0].kind, DmarErrorKind::BadChecksum { sum: 1 });
    assert_eq!(dmar.drhds().count(), 1);
}

#[test]
fn a_zero_length_structure_stops_the_walk_without_looping() {
    let t = table(0, &[drhd(0, 0, 0xfed9_0000, &[]), vec![1, 0, 0, 0, 0, 0, 0, 0]]);
    let dmar = parse(&t).unwrap();
    assert_eq!(dmar.drhds().count(), 1);
    assert_eq!(dmar.errors.len(), 1);
    assert_eq!(dmar.errors[0].offset, 48 + 16);
    assert_eq!(dmar.errors[0].kind, DmarErrorKind::StructureTooShort { kind: 1, length: 0 });
}

#[test]
fn a_structure_past_the_table_end_stops_the_walk() {
    let mut big = drhd(0, 0, 0xfed9_0000, &[]);
    big[2..4].copy_from_slice(&0x100u16.to_le_bytes());
    let dmar = parse(&table(0, &[big])).unwrap();
    assert!(dmar.structures.is_empty());
    assert_eq!(dmar.errors[0].kind, DmarErrorKind::StructurePastEnd { kind: 0, length: 0x100, remaining: 16 });
    // Three stray bytes after the last structure.
    let mut t = qemu_q35();
    t.extend([0, 0, 0]);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    let dmar = parse(&t).unwrap();
    assert!(dmar.errors.iter().any(|e| e.kind == DmarErrorKind::StructureHeaderTruncated { remaining: 3 }));
}

#[test]
fn bad_scopes_skip_their_structure_and_the_walk_goes_on() {
    let looping = vec![1u8, 0, 0, 0, 0, 0, 0, 0]; // scope length 0
    let mut past = scope(1, 0, 0, &[(3, 0)]);
    past[1] = 10; // claims 10 bytes, 8 present
    let mut odd = scope(1, 0, 0, &[(3, 0)]);
    odd.push(4);
    odd[1] = 9;
    let empty = scope(1, 0, 0, &[]);
    let bad_entry = scope(1, 0, 0, &[(32, 0)]);
    let cases = [
        (looping, DmarErrorKind::ScopeTooShort { length: 0 }),
        (past, DmarErrorKind::ScopePastStructureEnd { length: 10, remaining: 8 }),
        (odd, DmarErrorKind::ScopeOddPath { length: 9 }),
        (empty, DmarErrorKind::ScopeEmptyPath),
        (bad_entry, DmarErrorKind::ScopeBadPathEntry { device: 32, function: 0 }),
    ];
    for (bad, kind) in cases {
        let t = table(
            0,
            &[
                drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(1, 0)]), bad]),
                rmrr(0xe_8000, 0xe_8fff, &[scope(1, 0, 0, &[(0x14, 0)])]),
            ],
        );
        let dmar = parse(&t).unwrap();
        assert_eq!(dmar.errors.len(), 1, "{kind:?}");
        assert_eq!(dmar.errors[0].kind, kind);
        assert_eq!(dmar.errors[0].offset, 48 + 16 + 8, "offset of the bad scope");
        assert_eq!(dmar.drhds().count(), 0);
        assert_eq!(dmar.rmrrs().count(), 1, "later structure still parsed");
    }
}

#[test]
fn unknown_types_are_skipped() {
    let t = table(0, &[structure(0x7, &[1, 2, 3, 4], &[]), drhd(0, 1, 0xfed9_1000, &[])]);
    let dmar = parse(&t).unwrap();
    assert!(dmar.errors.is_empty());
    assert_eq!(dmar.structures[0], Structure::Unknown { offset: 48, kind: 7, length: 8 });
    assert_eq!(dmar.drhds().next().unwrap().segment, 1);
}

#[test]
fn broken_fixed_fields_are_reported() {
    let t = table(
        0,
        &[
            drhd(0, 0, 0, &[]),
            rmrr(0xe_8000, 0xe_7fff, &[]),
            structure(4, &[0, 0, 0, 1, b'X'], &[]),
            structure(3, &[0; 4], &[]),
        ],
    );
    let kinds: Vec<_> = parse(&t).unwrap().errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            DmarErrorKind::BadRegisterBase { base: 0 },
            DmarErrorKind::BadRmrrRange { base: 0xe_8000, limit: 0xe_7fff },
            DmarErrorKind::BadAnddName,
            DmarErrorKind::BodyTooShort { kind: 3, length: 8, minimum: 20 },
        ]
    );
}

#[test]
fn errors_display_one_clear_line() {
    let t = table(0, &[vec![1, 0, 0, 0]]);
    let e = parse(&t).unwrap().errors[0];
    assert_eq!(e.to_string(), "DMAR at offset 0x30: structure type 1 has length 0 (below 4); walk stopped");
}

#[test]
fn scope_paths_resolve_through_bridges() {
    // Root port 00:02.0 → bus 1, switch downstream port 01:00.0 → bus 2.
    let secondary = |b: Bdf| match (b.bus, b.device, b.function) {
        (0, 2, 0) => Some(1),
        (1, 0, 0) => Some(2),
        (3, 0, 0) => Some(3),
        _ => None,
    };
    let t = table(
        0,
        &[drhd(
            0,
            0,
            0xfed9_0000,
            &[
                scope(1, 0, 0, &[(2, 0), (0, 0), (0, 0)]),
                scope(1, 0, 0, &[(5, 0), (0, 0)]),
                scope(1, 0, 3, &[(0, 0), (0, 0)]),
                scope(1, 0, 0, &[(3, 0)]),
            ],
        )],
    );
    let dmar = parse(&t).unwrap();
    let s = &dmar.drhds().next().unwrap().scopes;
    assert_eq!(s[0].resolve(0, secondary), Ok(Bdf::new(0, 2, 0, 0)));
    assert_eq!(s[1].resolve(0, secondary), Err(ResolveError::NotABridge { hop: 0, at: Bdf::new(0, 0, 5, 0) }));
    assert_eq!(
        s[2].resolve(0, secondary),
        Err(ResolveError::NotDownstream { hop: 0, at: Bdf::new(0, 3, 0, 0), secondary: 3 })
    );
    assert_eq!(s[3].resolve(0, |_| None), Ok(Bdf::new(0, 0, 3, 0)));
}

#[test]
fn no_corruption_of_a_table_panics() {
    let base = table(
        1,
        &[
            drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(2, 0), (0, 0)])]),
            rmrr(0xe_8000, 0xe_8fff, &[scope(1, 0, 0, &[(0x14, 0)])]),
            structure(4, &[0, 0, 0, 7, b'\\', b'_', b'S', b'B', 0], &[]),
            structure(3, &[0; 16], &[]),
        ],
    );
    for at in 36..base.len() {
        for value in [0u8, 1, 2, 3, 5, 6, 7, 0x7f, 0x80, 0xff] {
            let mut t = base.clone();
            t[at] = value;
            let _ = parse(&t);
        }
        // Truncated with a consistent header length.
        let mut t = base[..at].to_vec();
        if t.len() >= 8 {
            let len = t.len() as u32;
            t[4..8].copy_from_slice(&len.to_le_bytes());
        }
        let _ = parse(&t);
    }
}

#[test]
fn rmrr_checks_follow_linux_and_keep_off_ram() {
    let r = |base: u64, limit: u64| Rmrr { offset: 0, segment: 0, base, limit, scopes: Vec::new() };
    let ram = [(0, 0x9_fc00), (0x10_0000, 0x1000_0000)];
    // q35-like: USB RMRR in the reserved hole below 1 MiB.
    assert_eq!(r(0xe_8000, 0xe_8fff).check(ram), Ok(()));
    assert_eq!(r(0xe_8000, 0xe_8ffe).check(ram), Err(RmrrError::Malformed));
    assert_eq!(r(0xe_8800, 0xe_8fff).check(ram), Err(RmrrError::Malformed));
    assert_eq!(r(0xe_8000, 0xe_7fff).check(ram), Err(RmrrError::Malformed));
    assert_eq!(r(0, u64::MAX).check(ram), Err(RmrrError::Malformed));
    // The review's example: half a terabyte starting in low RAM.
    assert_eq!(r(0x1000, 0x7f_ffff_ffff).check(ram), Err(RmrrError::OverlapsRam { start: 0, end: 0x9_fc00 }));
    assert_eq!(
        r(0xfff_f000, 0x1000_0fff).check(ram),
        Err(RmrrError::OverlapsRam { start: 0x10_0000, end: 0x1000_0000 })
    );
    assert_eq!(r(0x1000_0000, 0x1000_0fff).check(ram), Ok(()), "touching the end of RAM is fine");
    let big = r(0x2000_0000, 0x2000_0000 + RMRR_MAX_LEN + 0xfff);
    assert_eq!(big.check(ram), Err(RmrrError::TooLarge { len: RMRR_MAX_LEN + 0x1000 }));
    assert!(big.check(ram).unwrap_err().to_string().contains("more than"));
}

/// The boundaries the tests above leave out: structure lengths 1-3 (too
/// short for a header, would loop at 0), an unaligned DRHD base, and ANDD
/// names that are terminated but not ASCII, or ASCII but unterminated.
#[test]
fn boundary_lengths_bases_and_names() {
    for length in 1..4u16 {
        let mut s = drhd(0, 0, 0xfed9_0000, &[]);
        s[2..4].copy_from_slice(&length.to_le_bytes());
        let dmar = parse(&table(0, &[s])).unwrap();
        assert_eq!(dmar.errors[0].kind, DmarErrorKind::StructureTooShort { kind: 0, length: usize::from(length) });
    }
    let dmar = parse(&table(0, &[drhd(0, 0, 0xfed9_0800, &[])])).unwrap();
    assert_eq!(dmar.errors[0].kind, DmarErrorKind::BadRegisterBase { base: 0xfed9_0800 });
    assert_eq!(dmar.drhds().count(), 0);
    let andd = |name: &[u8]| {
        let mut fixed = vec![0, 0, 0, 1];
        fixed.extend(name);
        parse(&table(0, &[structure(4, &fixed, &[])])).unwrap().errors.iter().map(|e| e.kind).collect::<Vec<_>>()
    };
    assert_eq!(andd(b"\\_SB.PCI0\0"), []);
    assert_eq!(andd(&[b'\\', 0xc3, 0xa9, 0]), [DmarErrorKind::BadAnddName]);
    assert_eq!(andd(b"\\_SB.PCI0"), [DmarErrorKind::BadAnddName]);
}

/// A DRHD the parser drops (bad scope, bad base) or a walk cut short
/// leaves some devices' unit unknown: `drhd_coverage_unknown` says so, for
/// the failed-unit rule (`unit_failure`). A dropped RMRR does not.
#[test]
fn lost_drhds_make_coverage_unknown() {
    let good = drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(1, 0)])]);
    let dmar = parse(&table(0, core::slice::from_ref(&good))).unwrap();
    assert!(!dmar.drhd_coverage_unknown());
    let bad_scope = drhd(1, 0, 0xfed9_1000, &[scope(1, 0, 0, &[])]);
    let dmar = parse(&table(0, &[good.clone(), bad_scope])).unwrap();
    assert_eq!(dmar.drhds().count(), 1);
    assert!(dmar.drhd_coverage_unknown(), "a DRHD with a bad scope was dropped");
    let bad_base = drhd(0, 0, 0xfed9_0800, &[]);
    assert!(parse(&table(0, &[good.clone(), bad_base])).unwrap().drhd_coverage_unknown());
    let mut cut = good.clone();
    cut.extend([0, 0, 0]);
    assert!(parse(&table(0, &[cut])).unwrap().drhd_coverage_unknown(), "the walk stopped early");
    let bad_rmrr = rmrr(0xe_8000, 0xe_8fff, &[scope(1, 0, 0, &[])]);
    assert!(!parse(&table(0, &[good, bad_rmrr])).unwrap().drhd_coverage_unknown());
}
