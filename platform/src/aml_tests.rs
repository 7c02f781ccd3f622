//! The definition-block reader on crafted AML and on QEMU's real DSDT.

use super::*;
use alloc::vec;

/// AML encoders for crafted tables (ACPI 6.5 §20).
pub(crate) mod build {
    use alloc::vec;
    use alloc::vec::Vec;

    /// PkgLength + contents, the PkgLength counting its own bytes.
    pub fn pkg(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = content.len();
        if n + 1 < 0x40 {
            out.push((n + 1) as u8);
        } else if n + 2 < 0x1000 {
            let t = n + 2;
            out.extend([0x40 | (t & 0xf) as u8, (t >> 4) as u8]);
        } else {
            let t = n + 3;
            out.extend([0x80 | (t & 0xf) as u8, (t >> 4) as u8, (t >> 12) as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// A NameString: `\_SB.PCI0`, `PCI0`, `^FOO` (segments padded with `_`).
    pub fn name(path: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = path;
        if let Some(r) = rest.strip_prefix('\\') {
            out.push(b'\\');
            rest = r;
        }
        while let Some(r) = rest.strip_prefix('^') {
            out.push(b'^');
            rest = r;
        }
        let segs: Vec<&str> = rest.split('.').filter(|s| !s.is_empty()).collect();
        match segs.len() {
            0 => out.push(0),
            1 => {}
            2 => out.push(0x2e),
            n => out.extend([0x2f, n as u8]),
        }
        for s in segs {
            let mut seg = *b"____";
            seg[..s.len()].copy_from_slice(s.as_bytes());
            out.extend_from_slice(&seg);
        }
        out
    }

    pub fn int(v: u64) -> Vec<u8> {
        match v {
            0 => vec![0x00],
            1 => vec![0x01],
            v if v <= 0xff => vec![0x0a, v as u8],
            v if v <= 0xffff => [&[0x0b][..], &(v as u16).to_le_bytes()].concat(),
            v if v <= 0xffff_ffff => [&[0x0c][..], &(v as u32).to_le_bytes()].concat(),
            v => [&[0x0e][..], &v.to_le_bytes()].concat(),
        }
    }

    /// `EisaId ("PNP0A03")`.
    pub fn eisa(id: &str) -> Vec<u8> {
        let b = id.as_bytes();
        let l = |c: u8| u32::from(c - b'@');
        let v = (l(b[0]) << 26) | (l(b[1]) << 21) | (l(b[2]) << 16) | u32::from_str_radix(&id[3..], 16).unwrap();
        [&[0x0c][..], &v.swap_bytes().to_le_bytes()].concat()
    }

    pub fn string(s: &str) -> Vec<u8> {
        [&[0x0d][..], s.as_bytes(), &[0]].concat()
    }

    pub fn buffer(bytes: &[u8]) -> Vec<u8> {
        let body = [&int(bytes.len() as u64)[..], bytes].concat();
        [&[0x11][..], &pkg(&body)].concat()
    }

    pub fn package(items: &[Vec<u8>]) -> Vec<u8> {
        let body = [&[items.len() as u8][..], &items.concat()].concat();
        [&[0x12][..], &pkg(&body)].concat()
    }

    /// `ResourceTemplate () { WordBusNumber (..., min, max, 0, max - min + 1) }`.
    pub fn word_bus(min: u16, max: u16) -> Vec<u8> {
        let mut d = vec![0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00];
        for f in [0, min, max, 0, max - min + 1] {
            d.extend(f.to_le_bytes());
        }
        d.extend([0x79, 0x00]);
        d
    }

    pub fn name_op(path: &str, data: &[u8]) -> Vec<u8> {
        [&[0x08][..], &name(path), data].concat()
    }

    pub fn scope(path: &str, body: &[Vec<u8>]) -> Vec<u8> {
        [&[0x10][..], &pkg(&[&name(path)[..], &body.concat()].concat())].concat()
    }

    pub fn device(path: &str, body: &[Vec<u8>]) -> Vec<u8> {
        [&[0x5b, 0x82][..], &pkg(&[&name(path)[..], &body.concat()].concat())].concat()
    }

    pub fn method(path: &str, args: u8, body: &[u8]) -> Vec<u8> {
        [&[0x14][..], &pkg(&[&name(path)[..], &[args], body].concat())].concat()
    }

    /// A definition block: header (checksum fixed) and body.
    pub fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 36];
        t[..4].copy_from_slice(sig);
        t[4..8].copy_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t[8] = 2;
        t.extend_from_slice(body);
        let sum = t.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    /// `Device (path) { _HID PNP0A08, _CID PNP0A03, extra }`.
    pub fn host_bridge(path: &str, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![name_op("_HID", &eisa("PNP0A08")), name_op("_CID", &eisa("PNP0A03"))];
        body.extend_from_slice(extra);
        device(path, &body)
    }
}

use build::*;

fn bridges(tables: &[Vec<u8>]) -> (Vec<HostBridge>, Vec<String>, Vec<String>) {
    let mut ns = Namespace::new();
    for t in tables {
        ns.load_table(t);
    }
    let (b, notes) = host_bridges(&ns);
    (b, notes, ns.problems)
}

fn hb(path: &str, segment: u16, buses: Option<(u8, u8)>, source: BusSource) -> HostBridge {
    HostBridge { path: path.into(), segment, buses, source }
}

#[test]
fn eisa_ids_decode() {
    assert_eq!(eisa_id(0x030a_d041).as_deref(), Some("PNP0A03"));
    assert_eq!(eisa_id(0x080a_d041).as_deref(), Some("PNP0A08"));
    let mut ns = Namespace::new();
    ns.load_table(&table(b"SSDT", &name_op("\\_HID", &eisa("PNP0C02"))));
    let Kind::Name(Value::Integer(v)) = ns.kind(ns.find("\\_HID").unwrap()).clone() else { panic!("not an integer") };
    assert_eq!(eisa_id(v).as_deref(), Some("PNP0C02"));
}

/// QEMU's shape: the host bridge's _CRS comes in a later `Scope`, the
/// expander declares `_BBN` and `_CRS` inline; other devices in between.
#[test]
fn host_bridges_in_namespace_order_with_crs_from_a_later_scope() {
    let dsdt = table(
        b"DSDT",
        &[
            scope(
                "\\_SB",
                &[
                    host_bridge(
                        "PCI0",
                        &[
                            name_op("_ADR", &int(0)),
                            method("_OSC", 4, &[0xa4, 0x68]),
                            device("S00", &[name_op("_ADR", &int(0))]),
                        ],
                    ),
                    device("HPET", &[name_op("_HID", &eisa("PNP0103"))]),
                    host_bridge(
                        "PC40",
                        &[name_op("_BBN", &int(0x40)), name_op("_CRS", &buffer(&word_bus(0x40, 0x41)))],
                    ),
                ],
            ),
            scope("\\_SB.PCI0", &[name_op("_CRS", &buffer(&word_bus(0, 0x3f)))]),
        ]
        .concat(),
    );
    let (b, notes, problems) = bridges(&[dsdt]);
    assert!(problems.is_empty() && notes.is_empty(), "{problems:?} {notes:?}");
    assert_eq!(
        b,
        vec![
            hb("\\_SB.PCI0", 0, Some((0, 0x3f)), BusSource::Crs),
            hb("\\_SB.PC40", 0, Some((0x40, 0x41)), BusSource::Crs)
        ]
    );
}

/// The case: `Name (_BBN, n)` outside any host bridge (an SSDT
/// given with `-acpitable`) is no root bus; nor is a `_BBN` inside a method.
#[test]
fn stray_bbn_is_not_a_root_bus() {
    let dsdt = table(b"DSDT", &scope("\\_SB", &[host_bridge("PCI0", &[])]));
    let ssdt = table(
        b"SSDT",
        &[
            name_op("_BBN", &int(2)),
            device("\\_SB.XBBN", &[name_op("_HID", &eisa("PNP0C02")), name_op("_BBN", &int(3))]),
            method("\\_SB.MBBN", 0, &name_op("_BBN", &int(4))),
        ]
        .concat(),
    );
    let (b, _, problems) = bridges(&[dsdt, ssdt]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(b, vec![hb("\\_SB.PCI0", 0, Some((0, 0xff)), BusSource::Default)]);
}

/// Linux's `acpi_bus_attach` skips a device neither present nor
/// functioning, and everything below it.
#[test]
fn sta_hides_a_host_bridge_and_its_subtree() {
    let ssdt = table(
        b"SSDT",
        &scope(
            "\\_SB",
            &[
                host_bridge("HB0", &[name_op("_STA", &int(0)), name_op("_BBN", &int(2))]),
                device("CONT", &[name_op("_STA", &int(0)), host_bridge("HB1", &[name_op("_BBN", &int(3))])]),
                host_bridge("HB2", &[name_op("_STA", &int(0x08)), name_op("_BBN", &int(4))]),
                host_bridge("HB3", &[method("_STA", 0, &[0xa4, 0x00]), name_op("_BBN", &int(5))]),
            ],
        ),
    );
    let (b, notes, _) = bridges(&[ssdt]);
    assert_eq!(
        b,
        vec![hb("\\_SB.HB2", 0, Some((4, 0xff)), BusSource::Bbn), hb("\\_SB.HB3", 0, Some((5, 0xff)), BusSource::Bbn)],
        "functioning-only counts; a method _STA is taken as present"
    );
    assert!(notes.iter().any(|n| n.contains("\\_SB.HB0") && n.contains("not present")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("\\_SB.HB3: _STA is a method")), "{notes:?}");
}

/// `_CRS` first, then `_BBN`, then bus 0; methods are not evaluated.
#[test]
fn bus_from_crs_then_bbn_then_zero() {
    let ssdt = table(
        b"SSDT",
        &scope(
            "\\_SB",
            &[
                // _CRS without a bus range: _BBN.
                host_bridge("A", &[name_op("_BBN", &int(0x10)), name_op("_CRS", &buffer(&[0x79, 0]))]),
                // _CRS as a method: _BBN, with a note.
                host_bridge("B", &[method("_CRS", 0, &[0xa4, 0x00]), name_op("_BBN", &int(0x20))]),
                // _BBN as a method: unknown.
                host_bridge("C", &[method("_BBN", 0, &[0xa4, 0x0a, 0x30])]),
                // Nothing: bus 0. _SEG constant.
                host_bridge("D", &[name_op("_SEG", &int(1))]),
                // _HID as a string, _CID a package.
                device("E", &[name_op("_HID", &string("PNP0A03")), name_op("_CRS", &buffer(&word_bus(0x50, 0x5f)))]),
                device(
                    "F",
                    &[
                        name_op("_HID", &string("ACPI0016")),
                        name_op("_CID", &package(&[eisa("PNP0A08"), eisa("PNP0A03")])),
                        name_op("_BBN", &int(0x60)),
                    ],
                ),
            ],
        ),
    );
    let (b, notes, problems) = bridges(&[ssdt]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        b,
        vec![
            hb("\\_SB.A", 0, Some((0x10, 0xff)), BusSource::Bbn),
            hb("\\_SB.B", 0, Some((0x20, 0xff)), BusSource::Bbn),
            hb("\\_SB.C", 0, None, BusSource::Bbn),
            hb("\\_SB.D", 1, Some((0, 0xff)), BusSource::Default),
            hb("\\_SB.E", 0, Some((0x50, 0x5f)), BusSource::Crs),
            hb("\\_SB.F", 0, Some((0x60, 0xff)), BusSource::Bbn),
        ]
    );
    assert!(notes.iter().any(|n| n.contains("\\_SB.B: _CRS is a method")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("\\_SB.C: _BBN is not a constant")), "{notes:?}");
}

#[test]
fn crs_bus_descriptors_last_non_empty_wins() {
    // DWord bus range 0x10-0x1f, then a Word one of length 0 (ignored),
    // then a QWord 0x20-0x2f.
    let mut crs = vec![0x87, 0x17, 0x00, 0x02, 0x0c, 0x00];
    for f in [0u32, 0x10, 0x1f, 0, 0x10] {
        crs.extend(f.to_le_bytes());
    }
    crs.extend([0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00]);
    for f in [0u16, 0x30, 0x30, 0, 0] {
        crs.extend(f.to_le_bytes());
    }
    crs.extend([0x8a, 0x2b, 0x00, 0x02, 0x0c, 0x00]);
    for f in [0u64, 0x20, 0x2f, 0, 0x10] {
        crs.extend(f.to_le_bytes());
    }
    // A memory range is not a bus range.
    crs.extend([0x87, 0x17, 0x00, 0x00, 0x0c, 0x00]);
    for f in [0u32, 0x1000, 0x1fff, 0, 0x1000] {
        crs.extend(f.to_le_bytes());
    }
    crs.extend([0x79, 0x00]);
    assert_eq!(crs_bus_range(&crs), Some((0x20, 0x2f)));
    assert_eq!(crs_bus_range(&crs[..crs.len() - 30]), Some((0x10, 0x1f)), "a truncated item is not read");
    assert_eq!(crs_bus_range(&[0x47, 1, 0, 0, 0, 0, 1, 8, 0x79, 0]), None, "small items only");
}

/// An opcode the reader does not know ends that device's body only.
#[test]
fn unknown_opcode_ends_only_its_scope() {
    let ssdt = table(
        b"SSDT",
        &scope(
            "\\_SB",
            &[
                device("BAD", &[vec![0x5b, 0x99], host_bridge("HB0", &[name_op("_BBN", &int(7))])]),
                host_bridge("HB1", &[name_op("_BBN", &int(8))]),
            ],
        ),
    );
    let (b, _, problems) = bridges(&[ssdt]);
    assert_eq!(b, vec![hb("\\_SB.HB1", 0, Some((8, 0xff)), BusSource::Bbn)]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("\\_SB.BAD") && problems[0].contains("5b 99"), "{problems:?}");
}

/// Named objects other than devices are skipped by their encoding, and
/// expressions in them (OperationRegion offsets, Store at scope level) are
/// skipped too; `If` blocks are skipped whole.
#[test]
fn other_objects_and_expressions_are_skipped() {
    let region =
        [&[0x5b, 0x80][..], &name("REGN"), &[0x01], &int(0xae00), &[0x72, 0x0a, 0x04, 0x0a, 0x04, 0x00]].concat();
    let field =
        [&[0x5b, 0x81][..], &pkg(&[&name("REGN")[..], &[0x01, b'A', b'B', b'C', b'D', 0x20]].concat())].concat();
    let mutex = [&[0x5b, 0x01][..], &name("MUT0"), &[0x00]].concat();
    let store = [&[0x70][..], &int(5), &name("\\GVAR")].concat();
    let iff = [&[0xa0][..], &pkg(&[&[0x93][..], &name("GVAR"), &[0x00], &host_bridge("HBIF", &[])].concat())].concat();
    let processor = [&[0x5b, 0x83][..], &pkg(&[&name("CPU0")[..], &[0, 0, 0, 0, 0, 0]].concat())].concat();
    let ssdt = table(
        b"SSDT",
        &[
            name_op("GVAR", &int(0)),
            scope(
                "\\_SB",
                &[region, field, mutex, store, iff, processor, host_bridge("HB", &[name_op("_BBN", &int(9))])],
            ),
        ]
        .concat(),
    );
    let (b, _, problems) = bridges(&[ssdt]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(b, vec![hb("\\_SB.HB", 0, Some((9, 0xff)), BusSource::Bbn)]);
}

/// `If` at scope level runs when the table loads: a constant predicate
/// picks the branch read; a computed one hides both, with a note.
#[test]
fn scope_level_if_with_a_constant_predicate() {
    let if_else = |pred: Vec<u8>, then: Vec<u8>, other: Vec<u8>| {
        [&[0xa0][..], &pkg(&[pred, then].concat()), &[0xa1], &pkg(&other)].concat()
    };
    let ssdt = table(
        b"SSDT",
        &scope(
            "\\_SB",
            &[
                if_else(int(1), host_bridge("T1", &[name_op("_BBN", &int(1))]), host_bridge("E1", &[])),
                if_else(int(0), host_bridge("T2", &[]), host_bridge("E2", &[name_op("_BBN", &int(2))])),
                // LEqual (GVAR, One): computed.
                if_else(
                    [&[0x93][..], &name("\\GVAR"), &[0x01]].concat(),
                    host_bridge("T3", &[]),
                    host_bridge("E3", &[]),
                ),
                [&[0xa0][..], &pkg(&[int(0), host_bridge("T4", &[])].concat())].concat(),
                host_bridge("LAST", &[name_op("_BBN", &int(9))]),
            ],
        ),
    );
    let (b, notes, problems) = bridges(&[ssdt]);
    assert!(problems.is_empty(), "{problems:?}");
    let paths: Vec<&str> = b.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["\\_SB.T1", "\\_SB.E2", "\\_SB.LAST"]);
    assert!(notes.iter().any(|n| n.starts_with("1 If block(s)")), "{notes:?}");
}

/// Every truncation and a byte flipped anywhere: problem lines, no panic,
/// and never a host bridge the intact table does not have.
#[test]
fn malformed_tables_never_panic() {
    let good = table(
        b"DSDT",
        &scope("\\_SB", &[host_bridge("PCI0", &[name_op("_CRS", &buffer(&word_bus(0, 0xff)))]), device("X", &[])]),
    );
    for n in 0..good.len() {
        let mut t = good[..n].to_vec();
        if t.len() >= 8 {
            t[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        }
        let _ = bridges(&[t]);
    }
    for i in 36..good.len() {
        for x in [0x00, 0x40, 0xff, 0x5b] {
            let mut t = good.clone();
            t[i] = x;
            let (b, _, _) = bridges(&[t]);
            assert!(b.len() <= 1);
        }
    }
}

/// QEMU 7.2's DSDT for `scenarios/default.qemu` (q35, a pxb-pcie with
/// bus_nr 0x40), captured from /sys/firmware/acpi/tables/DSDT in the
/// oracle's Linux guest (testdata/README.md). Linux printed
/// "PCI Root Bridge [PCI0] (domain 0000 [bus 00-3f])" and
/// "PCI Root Bridge [PC40] (domain 0000 [bus 40-41])".
#[test]
fn qemu_default_dsdt() {
    let dsdt = include_bytes!("../testdata/qemu-7.2-q35-default.dsdt").to_vec();
    let (b, notes, problems) = bridges(&[dsdt]);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        b,
        vec![
            hb("\\_SB.PCI0", 0, Some((0, 0x3f)), BusSource::Crs),
            hb("\\_SB.PC40", 0, Some((0x40, 0x41)), BusSource::Crs)
        ]
    );
}

/// QEMU's DSDT for `fixtures/bus-overlap-pxb-last.qemu` (pxb-pcie bus_nr 2):
/// Linux printed "[PCI0] (domain 0000 [bus 00-01])", "[PC02] (domain 0000 [bus 02-03])".
#[test]
fn qemu_overlap_dsdt() {
    let dsdt = include_bytes!("../testdata/qemu-7.2-q35-bus-overlap.dsdt").to_vec();
    let (b, _, problems) = bridges(&[dsdt]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        b,
        vec![hb("\\_SB.PCI0", 0, Some((0, 1)), BusSource::Crs), hb("\\_SB.PC02", 0, Some((2, 3)), BusSource::Crs)]
    );
}
