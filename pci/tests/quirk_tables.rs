//! The quirk tables checked entry by entry against Linux 6.1 as the oracle
//! runs it: Debian's 6.1.0-57-amd64 (6.1.192-3). The expected rows
//! below were read out of that kernel's image (vmlinuz decompressed; the
//! `pci_dev_acs_enabled[]` array of {vendor, device, quirk function} and
//! the `.pci_fixup_header` records whose hook is a DMA-alias quirk), with
//! each function pointer named from the entries whose quirk is known and
//! the function bodies disassembled where they hold device ranges (Wangxun,
//! Zhaoxin). Every entry is then also exercised on a simulated function.

use pci::acs::{AcsPass, pci_acs_check};
use pci::acs_quirks::{AcsQuirk, AcsQuirk::*, PCI_ANY_ID, PCI_DEV_ACS_ENABLED, pci_dev_specific_acs_enabled};
use pci::dma_alias_fixups::{DMA_ALIAS_HEADER_FIXUPS, DmaAliasFixup};
use pci::regs::*;
use pci::sim::qemu::root_port;
use pci::sim::{SimConfig, SimFn};
use pci::topology::DevFlags;
use pci::{Bdf, Function, REQ_ACS_FLAGS, enumerate};

/// `pci_dev_acs_enabled[]` in Debian's Linux 6.1, in table order.
const LINUX_ACS_TABLE: &[(u16, u16, AcsQuirk)] = &[
    (0x1002, 0x4385, AmdSb),
    (0x1002, 0x439c, AmdSb),
    (0x1002, 0x4383, AmdSb),
    (0x1002, 0x439d, AmdSb),
    (0x1002, 0x4384, AmdSb),
    (0x1002, 0x4399, AmdSb),
    (0x1022, 0x780f, AmdSb),
    (0x1022, 0x7809, AmdSb),
    (0x1924, 0x0903, MfEndpoint),
    (0x1924, 0x0923, MfEndpoint),
    (0x1924, 0x0a03, MfEndpoint),
    (0x8086, 0x10c6, MfEndpoint),
    (0x8086, 0x10db, MfEndpoint),
    (0x8086, 0x10dd, MfEndpoint),
    (0x8086, 0x10e1, MfEndpoint),
    (0x8086, 0x10f1, MfEndpoint),
    (0x8086, 0x10f7, MfEndpoint),
    (0x8086, 0x10f8, MfEndpoint),
    (0x8086, 0x10f9, MfEndpoint),
    (0x8086, 0x10fa, MfEndpoint),
    (0x8086, 0x10fb, MfEndpoint),
    (0x8086, 0x10fc, MfEndpoint),
    (0x8086, 0x1507, MfEndpoint),
    (0x8086, 0x1514, MfEndpoint),
    (0x8086, 0x151c, MfEndpoint),
    (0x8086, 0x1529, MfEndpoint),
    (0x8086, 0x152a, MfEndpoint),
    (0x8086, 0x154d, MfEndpoint),
    (0x8086, 0x154f, MfEndpoint),
    (0x8086, 0x1551, MfEndpoint),
    (0x8086, 0x1558, MfEndpoint),
    (0x8086, 0x1509, MfEndpoint),
    (0x8086, 0x150e, MfEndpoint),
    (0x8086, 0x150f, MfEndpoint),
    (0x8086, 0x1510, MfEndpoint),
    (0x8086, 0x1511, MfEndpoint),
    (0x8086, 0x1516, MfEndpoint),
    (0x8086, 0x1527, MfEndpoint),
    (0x8086, 0x10c9, MfEndpoint),
    (0x8086, 0x10e6, MfEndpoint),
    (0x8086, 0x10e7, MfEndpoint),
    (0x8086, 0x10e8, MfEndpoint),
    (0x8086, 0x150a, MfEndpoint),
    (0x8086, 0x150d, MfEndpoint),
    (0x8086, 0x1518, MfEndpoint),
    (0x8086, 0x1526, MfEndpoint),
    (0x8086, 0x10a7, MfEndpoint),
    (0x8086, 0x10a9, MfEndpoint),
    (0x8086, 0x10d6, MfEndpoint),
    (0x8086, 0x1521, MfEndpoint),
    (0x8086, 0x1522, MfEndpoint),
    (0x8086, 0x1523, MfEndpoint),
    (0x8086, 0x1524, MfEndpoint),
    (0x8086, 0x105e, MfEndpoint),
    (0x8086, 0x105f, MfEndpoint),
    (0x8086, 0x1060, MfEndpoint),
    (0x8086, 0x10d9, MfEndpoint),
    (0x8086, 0x15b7, MfEndpoint),
    (0x8086, 0x15b8, MfEndpoint),
    (0x8086, 0xffff, Rciep),
    (0x17cb, 0x0400, QcomRp),
    (0x17cb, 0x0401, QcomRp),
    (0x17cb, 0x0115, QcomRp),
    (0x17cb, 0x0111, QcomRp),
    (0x17cb, 0x0120, QcomRp),
    (0x1dbf, 0x0401, QcomRp),
    (0x8086, 0xffff, IntelPch),
    (0x8086, 0xffff, IntelSptPch),
    (0x19a2, 0x0710, MfEndpoint),
    (0x10df, 0x0720, MfEndpoint),
    (0x177d, 0xffff, Cavium),
    (0x177d, 0xa026, MfEndpoint),
    (0x177d, 0xa059, MfEndpoint),
    (0x177d, 0xa060, MfEndpoint),
    (0x10e8, 0xe004, Xgene),
    (0x1def, 0xe005, Xgene),
    (0x1def, 0xe006, Xgene),
    (0x1def, 0xe007, Xgene),
    (0x1def, 0xe008, Xgene),
    (0x1def, 0xe009, Xgene),
    (0x1def, 0xe00a, Xgene),
    (0x1def, 0xe00b, Xgene),
    (0x1def, 0xe00c, Xgene),
    (0x14e4, 0x16d7, MfEndpoint),
    (0x14e4, 0x1750, MfEndpoint),
    (0x14e4, 0x1751, MfEndpoint),
    (0x14e4, 0x1752, MfEndpoint),
    (0x14e4, 0x1760, MfEndpoint),
    (0x14e4, 0x1761, MfEndpoint),
    (0x14e4, 0x1762, MfEndpoint),
    (0x14e4, 0x1763, MfEndpoint),
    (0x14e4, 0xd714, Brcm),
    (0x0014, 0x3c09, Loongson),
    (0x0014, 0x3c19, Loongson),
    (0x0014, 0x3c29, Loongson),
    (0x0014, 0x7a09, Loongson),
    (0x0014, 0x7a19, Loongson),
    (0x0014, 0x7a29, Loongson),
    (0x0014, 0x7a39, Loongson),
    (0x0014, 0x7a49, Loongson),
    (0x0014, 0x7a59, Loongson),
    (0x0014, 0x7a69, Loongson),
    (0x1c36, 0x0031, Al),
    (0x1d17, 0x3038, MfEndpoint),
    (0x1d17, 0x3104, MfEndpoint),
    (0x1d17, 0x9083, MfEndpoint),
    (0x1957, 0x8d81, NxpRp),
    (0x1957, 0x8da1, NxpRp),
    (0x1957, 0x8d83, NxpRp),
    (0x1957, 0x8d80, NxpRp),
    (0x1957, 0x8da0, NxpRp),
    (0x1957, 0x8d82, NxpRp),
    (0x1957, 0x8d90, NxpRp),
    (0x1957, 0x8db0, NxpRp),
    (0x1957, 0x8d92, NxpRp),
    (0x1957, 0x8d91, NxpRp),
    (0x1957, 0x8db1, NxpRp),
    (0x1957, 0x8d93, NxpRp),
    (0x1957, 0x8d89, NxpRp),
    (0x1957, 0x8da9, NxpRp),
    (0x1957, 0x8d8b, NxpRp),
    (0x1957, 0x8d88, NxpRp),
    (0x1957, 0x8da8, NxpRp),
    (0x1957, 0x8d8a, NxpRp),
    (0x1957, 0x8d98, NxpRp),
    (0x1957, 0x8db8, NxpRp),
    (0x1957, 0x8d9a, NxpRp),
    (0x1957, 0x8d99, NxpRp),
    (0x1957, 0x8db9, NxpRp),
    (0x1957, 0x8d9b, NxpRp),
    (0x1d17, 0xffff, Zhaoxin),
    (0x8088, 0xffff, Wangxun),
];

#[test]
fn acs_table_is_linux_6_1_entry_by_entry() {
    let ours: Vec<(u16, u16, AcsQuirk)> = PCI_DEV_ACS_ENABLED.iter().map(|e| (e.vendor, e.device, e.quirk)).collect();
    for (i, want) in LINUX_ACS_TABLE.iter().enumerate() {
        assert_eq!(ours.get(i), Some(want), "entry {i}: {:04x}:{:04x}", want.0, want.1);
    }
    assert_eq!(
        ours.len(),
        LINUX_ACS_TABLE.len(),
        "extra entries: {:x?}",
        &ours[LINUX_ACS_TABLE.len().min(ours.len())..]
    );
}

/// A function with these ids that the quirk applies to, alone on bus 0.
fn device_for(vendor: u16, device: u16, quirk: AcsQuirk) -> (SimConfig, Function) {
    let f = match quirk {
        Rciep => SimFn::new(vendor, device).class(0x088000).pcie(PCI_EXP_TYPE_RC_END),
        MfEndpoint | AmdSb | Wangxun => SimFn::new(vendor, device).class(0x020000).pcie(PCI_EXP_TYPE_ENDPOINT),
        IntelSptPch => SimFn::new(vendor, device)
            .class(0x060400)
            .bridge(0, 1, 1)
            .pcie(PCI_EXP_TYPE_ROOT_PORT)
            .acs(0x001f, 0)
            // The erratum's dword control register at cap + 8: SV|RR|CR|UF.
            .poke32(0x100 + 8, 0x001d),
        _ => SimFn::new(vendor, device).class(0x060400).bridge(0, 1, 1).pcie(PCI_EXP_TYPE_ROOT_PORT),
    };
    let mut s = SimConfig::new();
    s.at(0, 1, 0, f);
    let topo = enumerate(&mut s, 0, &[0], 0..=255);
    let f = topo.functions[0].clone();
    (s, f)
}

/// What Linux 6.1's quirk function answers for `REQ_ACS_FLAGS` on the
/// device `device_for` builds (None: -ENOTTY/-ENODEV, table scan goes on).
fn linux_answer(quirk: AcsQuirk) -> Option<bool> {
    match quirk {
        // -ENODEV without an AMD IOMMU's IVRS table (this is a VT-d machine).
        AmdSb => None,
        // A PCH root port whose RCBA enable did not run: "not isolated".
        IntelPch => Some(false),
        _ => Some(true),
    }
}

/// A representative device id for an entry matching any device.
fn representative(vendor: u16, device: u16, quirk: AcsQuirk) -> u16 {
    match (device, quirk) {
        (PCI_ANY_ID, Rciep) => 0x9a0b,
        (PCI_ANY_ID, IntelPch) => 0x1c10,
        (PCI_ANY_ID, IntelSptPch) => 0xa110,
        (PCI_ANY_ID, Cavium) => 0xa000,
        (PCI_ANY_ID, Zhaoxin) => 0x0752,
        (PCI_ANY_ID, Wangxun) => 0x0100,
        (PCI_ANY_ID, q) => panic!("no representative for {vendor:04x}:ffff {q:?}"),
        (d, _) => d,
    }
}

#[test]
fn every_acs_entry_answers_as_linux_6_1() {
    for &(vendor, device, quirk) in LINUX_ACS_TABLE {
        let device = representative(vendor, device, quirk);
        let (mut s, f) = device_for(vendor, device, quirk);
        let got = pci_dev_specific_acs_enabled(&mut s, &f, REQ_ACS_FLAGS);
        match linux_answer(quirk) {
            Some(answer) => assert_eq!(got, Some((quirk, answer)), "{vendor:04x}:{device:04x} {quirk:?}"),
            None => assert!(got.is_none_or(|(q, _)| q != quirk), "{vendor:04x}:{device:04x} {quirk:?}: {got:?}"),
        }
    }
}

#[test]
fn wangxun_answers_not_isolated_outside_its_list() {
    for (device, isolated) in
        [(0x0100, true), (0x010f, true), (0x1001, true), (0x2001, true), (0x5010, true), (0x5025, true)]
            .into_iter()
            .chain([(0x5040, true), (0x5110, true), (0x5125, true), (0x5140, true)])
            .chain([(0x0110, false), (0x1000, false), (0x5011, false), (0x5141, false)])
    {
        let (mut s, f) = device_for(0x8088, device, Wangxun);
        assert_eq!(pci_dev_specific_acs_enabled(&mut s, &f, REQ_ACS_FLAGS), Some((Wangxun, isolated)), "{device:04x}");
        // A single-function endpoint is then "not isolated" too: the quirk
        // answers before the PCIe type rule.
        let (mut s, f) = device_for(0x8088, device, Wangxun);
        let topo = pci::Topology { functions: vec![f], ..Default::default() };
        assert_eq!(pci_acs_check(&mut s, &topo, 0, REQ_ACS_FLAGS).is_ok(), isolated, "{device:04x}");
    }
}

#[test]
fn zhaoxin_root_ports_up_to_0752_are_isolated_others_not() {
    for (device, want) in [(0x0710, true), (0x071e, true), (0x071f, false), (0x0721, true), (0x0722, false)]
        .into_iter()
        .chain([(0x0723, true), (0x0733, true), (0x0752, true), (0x0753, false)])
    {
        let (mut s, f) = device_for(0x1d17, device, Zhaoxin);
        assert_eq!(pci_dev_specific_acs_enabled(&mut s, &f, REQ_ACS_FLAGS), Some((Zhaoxin, want)), "{device:04x}");
    }
}

#[test]
fn loongson_root_ports_are_isolated() {
    let (mut s, f) = device_for(0x0014, 0x7a59, Loongson);
    let topo = pci::Topology { functions: vec![f], ..Default::default() };
    assert_eq!(pci_acs_check(&mut s, &topo, 0, REQ_ACS_FLAGS), Ok(AcsPass::Quirk(Loongson)));
}

/// The DMA-alias `DECLARE_PCI_FIXUP_HEADER` lines of Debian's Linux 6.1,
/// in section (file) order.
const LINUX_DMA_ALIAS_FIXUPS: &[(u16, u16, DmaAliasFixup)] = &[
    (0x1180, 0xe832, DmaAliasFixup::Func0),
    (0x1180, 0xe476, DmaAliasFixup::Func0),
    (0x6766, 0x3d40, DmaAliasFixup::Func0),
    (0x6766, 0x3d41, DmaAliasFixup::Func0),
    (0x1b4b, 0x9120, DmaAliasFixup::Func1),
    (0x1b4b, 0x9123, DmaAliasFixup::Func1),
    (0x1b4b, 0x9125, DmaAliasFixup::Func1),
    (0x1b4b, 0x9128, DmaAliasFixup::Func1),
    (0x1b4b, 0x9130, DmaAliasFixup::Func1),
    (0x1b4b, 0x9170, DmaAliasFixup::Func1),
    (0x1b4b, 0x9172, DmaAliasFixup::Func1),
    (0x1b4b, 0x917a, DmaAliasFixup::Func1),
    (0x1b4b, 0x9182, DmaAliasFixup::Func1),
    (0x1b4b, 0x9183, DmaAliasFixup::Func1),
    (0x1b4b, 0x91a0, DmaAliasFixup::Func1),
    (0x1b4b, 0x9215, DmaAliasFixup::Func1),
    (0x1b4b, 0x9220, DmaAliasFixup::Func1),
    (0x1b4b, 0x9230, DmaAliasFixup::Func1),
    (0x1b4b, 0x9235, DmaAliasFixup::Func1),
    (0x1103, 0x0642, DmaAliasFixup::Func1),
    (0x1103, 0x0645, DmaAliasFixup::Func1),
    (0x197b, 0x2392, DmaAliasFixup::Func1),
    (0x1c28, 0x0122, DmaAliasFixup::Func1),
    (0x9005, 0x0285, DmaAliasFixup::Fixed),
    (0x1b21, 0x1080, DmaAliasFixup::UsePcieBridgeDmaAlias),
    (0x10e3, 0x8113, DmaAliasFixup::UsePcieBridgeDmaAlias),
    (0x1283, 0x8892, DmaAliasFixup::UsePcieBridgeDmaAlias),
    (0x1283, 0x8893, DmaAliasFixup::UsePcieBridgeDmaAlias),
    (0x8086, 0x244e, DmaAliasFixup::UsePcieBridgeDmaAlias),
    (0x8086, 0x2260, DmaAliasFixup::MicX200),
    (0x8086, 0x2264, DmaAliasFixup::MicX200),
    (0x8086, 0x2954, DmaAliasFixup::PexVca),
    (0x8086, 0x2955, DmaAliasFixup::PexVca),
    (0x8086, 0x2956, DmaAliasFixup::PexVca),
    (0x8086, 0x2958, DmaAliasFixup::PexVca),
    (0x8086, 0x2959, DmaAliasFixup::PexVca),
    (0x8086, 0x295a, DmaAliasFixup::PexVca),
    (0x14e4, 0x9000, DmaAliasFixup::CavmThrx2PcieRoot),
    (0x14e4, 0x9084, DmaAliasFixup::CavmThrx2PcieRoot),
    (0x10b5, 0x87b0, DmaAliasFixup::PlxNtb),
    (0x10b5, 0x87b1, DmaAliasFixup::PlxNtb),
];

#[test]
fn dma_alias_fixups_are_linux_6_1_entry_by_entry() {
    let ours: Vec<(u16, u16, DmaAliasFixup)> =
        DMA_ALIAS_HEADER_FIXUPS.iter().map(|e| (e.vendor, e.device, e.fixup)).collect();
    for (i, want) in LINUX_DMA_ALIAS_FIXUPS.iter().enumerate() {
        assert_eq!(ours.get(i), Some(want), "entry {i}: {:04x}:{:04x}", want.0, want.1);
    }
    assert_eq!(ours.len(), LINUX_DMA_ALIAS_FIXUPS.len());
}

/// Every fixup entry applied to a function with its ids, placed where the
/// fixup does something: the alias or flag Linux 6.1 sets.
#[test]
fn every_dma_alias_fixup_applies_as_linux_6_1() {
    use DmaAliasFixup::*;
    for &(vendor, device, fixup) in LINUX_DMA_ALIAS_FIXUPS {
        let mut s = SimConfig::new();
        let at = Bdf::new(0, 1, 0, 2);
        s.at(0, 2, 0, root_port(true, 1, 2));
        let f = SimFn::new(vendor, device);
        let f = match fixup {
            Fixed => f.subsystem(0x9005, 0x02bb),
            UsePcieBridgeDmaAlias => f.class(0x060400).bridge(1, 2, 2),
            CavmThrx2PcieRoot => f.class(0x060400).bridge(1, 2, 2).pcie(PCI_EXP_TYPE_ROOT_PORT),
            _ => f,
        };
        // Function 2 of a multifunction slot (function 0 present).
        s.at(1, 0, 0, SimFn::new(vendor, device).multifunction());
        s.add(at, f);
        let topo = enumerate(&mut s, 0, &[0], 0..=255);
        let f = &topo.functions[topo.find(at).expect("enumerated")];
        let aliases: Vec<u8> = (0..=255u8).filter(|&d| f.dma_alias_mask.contains(d)).collect();
        let name = format!("{vendor:04x}:{device:04x} {fixup:?}");
        match fixup {
            Func0 => assert_eq!(aliases, [pci_devfn(0, 0)], "{name}"),
            Func1 => assert_eq!(aliases, [pci_devfn(0, 1)], "{name}"),
            Fixed => assert_eq!(aliases, [pci_devfn(1, 0)], "{name}"),
            UsePcieBridgeDmaAlias => assert!(f.dev_flags.contains(DevFlags::PCIE_BRIDGE_ALIAS), "{name}"),
            MicX200 => assert_eq!(aliases, [pci_devfn(0x10, 0), pci_devfn(0x11, 0), pci_devfn(0x12, 3)], "{name}"),
            PexVca => assert_eq!(aliases.len(), 32 * 5, "{name}"),
            CavmThrx2PcieRoot => assert!(f.dev_flags.contains(DevFlags::BRIDGE_XLATE_ROOT), "{name}"),
            PlxNtb => assert_eq!(aliases.len(), 256, "{name}"),
        }
    }
}
