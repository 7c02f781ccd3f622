//! Linux 6.1 `pci_dev_acs_enabled[]` (drivers/pci/quirks.c) as data, and
//! `pci_dev_specific_acs_enabled`: devices whose isolation is known without
//! (or despite) a standard ACS capability.
//!
//! "Linux 6.1" is the stable 6.1 the oracle runs (Debian 6.1.192, 6.1.0-57-amd64),
//! which carries entries backported after 6.1.0: Qualcomm 0x0111/0x0115/
//! 0x0120 root ports, Broadcom BCM5760X 0x1760-0x1763, Loongson root ports,
//! Zhaoxin ports up to 0x0752, Wangxun NICs. The table was checked entry by
//! entry against that kernel image (pci/tests/quirk_tables.rs).
//!
//! Lookup as in Linux: entries are tried in table order; an entry matches on
//! vendor and device (`PCI_ANY_ID` matches all); the first answer wins, and
//! "not applicable" (-ENOTTY/-ENODEV) continues the scan.

use crate::caps::PcieType;
use crate::config::ConfigSpace;
use crate::regs::{AcsFlags, INTEL_SPT_ACS_CTRL, PCI_ACS_CAP};
use crate::topology::{DevFlags, Function};

/// Linux `PCI_ANY_ID` truncated to a 16-bit id.
pub const PCI_ANY_ID: u16 = 0xffff;

/// The quirk functions of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcsQuirk {
    /// `pci_quirk_amd_sb_acs`: needs an AMD IVRS table.
    AmdSb,
    /// `pci_quirk_mf_endpoint_acs`: functions verified not to peer.
    MfEndpoint,
    /// `pci_quirk_rciep_acs`: Intel RCiEPs (VT-d r3.1 §3.16).
    Rciep,
    /// `pci_quirk_qcom_rp_acs`.
    QcomRp,
    /// `pci_quirk_intel_pch_acs`: only after the enable quirk succeeded.
    IntelPch,
    /// `pci_quirk_intel_spt_pch_acs`: dword ACS registers (erratum).
    IntelSptPch,
    /// `pci_quirk_cavium_acs`.
    Cavium,
    /// `pci_quirk_xgene_acs`.
    Xgene,
    /// `pci_quirk_brcm_acs`.
    Brcm,
    /// `pci_quirk_al_acs`.
    Al,
    /// `pci_quirk_zhaoxin_pcie_ports_acs`.
    Zhaoxin,
    /// `pci_quirk_nxp_rp_acs`.
    NxpRp,
    /// `pci_quirk_loongson_acs`: Loongson root ports do not peer.
    Loongson,
    /// `pci_quirk_wangxun_nic_acs`: Wangxun NIC functions do not peer; any
    /// other Wangxun device is "not isolated".
    Wangxun,
}

impl AcsQuirk {
    pub const fn name(self) -> &'static str {
        match self {
            Self::AmdSb => "amd_sb",
            Self::MfEndpoint => "mf_endpoint",
            Self::Rciep => "rciep",
            Self::QcomRp => "qcom_rp",
            Self::IntelPch => "intel_pch",
            Self::IntelSptPch => "intel_spt_pch",
            Self::Cavium => "cavium",
            Self::Xgene => "xgene",
            Self::Brcm => "brcm",
            Self::Al => "al",
            Self::Zhaoxin => "zhaoxin_pcie_ports",
            Self::NxpRp => "nxp_rp",
            Self::Loongson => "loongson",
            Self::Wangxun => "wangxun_nic",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AcsQuirkEntry {
    pub vendor: u16,
    pub device: u16,
    pub quirk: AcsQuirk,
}

use crate::ids::{
    AMCC, AMD, AMPERE, ANNAPURNA, ATI, BROADCOM, CAVIUM, HXT, INTEL, LOONGSON, NXP, QCOM, SOLARFLARE, WANGXUN, ZHAOXIN,
};

const fn e(vendor: u16, device: u16, quirk: AcsQuirk) -> AcsQuirkEntry {
    AcsQuirkEntry { vendor, device, quirk }
}

use AcsQuirk::*;

/// `pci_dev_acs_enabled[]` of Linux 6.1, in table order.
pub const PCI_DEV_ACS_ENABLED: &[AcsQuirkEntry] = &[
    e(ATI, 0x4385, AmdSb),
    e(ATI, 0x439c, AmdSb),
    e(ATI, 0x4383, AmdSb),
    e(ATI, 0x439d, AmdSb),
    e(ATI, 0x4384, AmdSb),
    e(ATI, 0x4399, AmdSb),
    e(AMD, 0x780f, AmdSb),
    e(AMD, 0x7809, AmdSb),
    e(SOLARFLARE, 0x0903, MfEndpoint),
    e(SOLARFLARE, 0x0923, MfEndpoint),
    e(SOLARFLARE, 0x0a03, MfEndpoint),
    e(INTEL, 0x10c6, MfEndpoint),
    e(INTEL, 0x10db, MfEndpoint),
    e(INTEL, 0x10dd, MfEndpoint),
    e(INTEL, 0x10e1, MfEndpoint),
    e(INTEL, 0x10f1, MfEndpoint),
    e(INTEL, 0x10f7, MfEndpoint),
    e(INTEL, 0x10f8, MfEndpoint),
    e(INTEL, 0x10f9, MfEndpoint),
    e(INTEL, 0x10fa, MfEndpoint),
    e(INTEL, 0x10fb, MfEndpoint),
    e(INTEL, 0x10fc, MfEndpoint),
    e(INTEL, 0x1507, MfEndpoint),
    e(INTEL, 0x1514, MfEndpoint),
    e(INTEL, 0x151c, MfEndpoint),
    e(INTEL, 0x1529, MfEndpoint),
    e(INTEL, 0x152a, MfEndpoint),
    e(INTEL, 0x154d, MfEndpoint),
    e(INTEL, 0x154f, MfEndpoint),
    e(INTEL, 0x1551, MfEndpoint),
    e(INTEL, 0x1558, MfEndpoint),
    // 82580
    e(INTEL, 0x1509, MfEndpoint),
    e(INTEL, 0x150e, MfEndpoint),
    e(INTEL, 0x150f, MfEndpoint),
    e(INTEL, 0x1510, MfEndpoint),
    e(INTEL, 0x1511, MfEndpoint),
    e(INTEL, 0x1516, MfEndpoint),
    e(INTEL, 0x1527, MfEndpoint),
    // 82576
    e(INTEL, 0x10c9, MfEndpoint),
    e(INTEL, 0x10e6, MfEndpoint),
    e(INTEL, 0x10e7, MfEndpoint),
    e(INTEL, 0x10e8, MfEndpoint),
    e(INTEL, 0x150a, MfEndpoint),
    e(INTEL, 0x150d, MfEndpoint),
    e(INTEL, 0x1518, MfEndpoint),
    e(INTEL, 0x1526, MfEndpoint),
    // 82575
    e(INTEL, 0x10a7, MfEndpoint),
    e(INTEL, 0x10a9, MfEndpoint),
    e(INTEL, 0x10d6, MfEndpoint),
    // I350
    e(INTEL, 0x1521, MfEndpoint),
    e(INTEL, 0x1522, MfEndpoint),
    e(INTEL, 0x1523, MfEndpoint),
    e(INTEL, 0x1524, MfEndpoint),
    // 82571 (quad-port parts omitted in Linux: they sit behind a non-ACS switch)
    e(INTEL, 0x105e, MfEndpoint),
    e(INTEL, 0x105f, MfEndpoint),
    e(INTEL, 0x1060, MfEndpoint),
    e(INTEL, 0x10d9, MfEndpoint),
    // I219
    e(INTEL, 0x15b7, MfEndpoint),
    e(INTEL, 0x15b8, MfEndpoint),
    e(INTEL, PCI_ANY_ID, Rciep),
    e(QCOM, 0x0400, QcomRp),
    e(QCOM, 0x0401, QcomRp),
    e(QCOM, 0x0115, QcomRp), // QCOM SA8775P root ports
    e(QCOM, 0x0111, QcomRp),
    e(QCOM, 0x0120, QcomRp),
    e(HXT, 0x0401, QcomRp),
    e(INTEL, PCI_ANY_ID, IntelPch),
    e(INTEL, PCI_ANY_ID, IntelSptPch),
    e(0x19a2, 0x0710, MfEndpoint), // Emulex BE3-R
    e(0x10df, 0x0720, MfEndpoint), // Emulex Skyhawk-R
    e(CAVIUM, PCI_ANY_ID, Cavium),
    e(CAVIUM, 0xa026, MfEndpoint),
    e(CAVIUM, 0xa059, MfEndpoint),
    e(CAVIUM, 0xa060, MfEndpoint),
    e(AMCC, 0xe004, Xgene),
    e(AMPERE, 0xe005, Xgene),
    e(AMPERE, 0xe006, Xgene),
    e(AMPERE, 0xe007, Xgene),
    e(AMPERE, 0xe008, Xgene),
    e(AMPERE, 0xe009, Xgene),
    e(AMPERE, 0xe00a, Xgene),
    e(AMPERE, 0xe00b, Xgene),
    e(AMPERE, 0xe00c, Xgene),
    e(BROADCOM, 0x16d7, MfEndpoint),
    e(BROADCOM, 0x1750, MfEndpoint),
    e(BROADCOM, 0x1751, MfEndpoint),
    e(BROADCOM, 0x1752, MfEndpoint),
    // BCM5760X
    e(BROADCOM, 0x1760, MfEndpoint),
    e(BROADCOM, 0x1761, MfEndpoint),
    e(BROADCOM, 0x1762, MfEndpoint),
    e(BROADCOM, 0x1763, MfEndpoint),
    e(BROADCOM, 0xd714, Brcm),
    // Loongson root ports
    e(LOONGSON, 0x3c09, Loongson),
    e(LOONGSON, 0x3c19, Loongson),
    e(LOONGSON, 0x3c29, Loongson),
    e(LOONGSON, 0x7a09, Loongson),
    e(LOONGSON, 0x7a19, Loongson),
    e(LOONGSON, 0x7a29, Loongson),
    e(LOONGSON, 0x7a39, Loongson),
    e(LOONGSON, 0x7a49, Loongson),
    e(LOONGSON, 0x7a59, Loongson),
    e(LOONGSON, 0x7a69, Loongson),
    e(ANNAPURNA, 0x0031, Al),
    e(ZHAOXIN, 0x3038, MfEndpoint),
    e(ZHAOXIN, 0x3104, MfEndpoint),
    e(ZHAOXIN, 0x9083, MfEndpoint),
    // NXP LX2xx0/LX2xx2 root ports (A, C, E, N variants)
    e(NXP, 0x8d81, NxpRp),
    e(NXP, 0x8da1, NxpRp),
    e(NXP, 0x8d83, NxpRp),
    e(NXP, 0x8d80, NxpRp),
    e(NXP, 0x8da0, NxpRp),
    e(NXP, 0x8d82, NxpRp),
    e(NXP, 0x8d90, NxpRp),
    e(NXP, 0x8db0, NxpRp),
    e(NXP, 0x8d92, NxpRp),
    e(NXP, 0x8d91, NxpRp),
    e(NXP, 0x8db1, NxpRp),
    e(NXP, 0x8d93, NxpRp),
    e(NXP, 0x8d89, NxpRp),
    e(NXP, 0x8da9, NxpRp),
    e(NXP, 0x8d8b, NxpRp),
    e(NXP, 0x8d88, NxpRp),
    e(NXP, 0x8da8, NxpRp),
    e(NXP, 0x8d8a, NxpRp),
    e(NXP, 0x8d98, NxpRp),
    e(NXP, 0x8db8, NxpRp),
    e(NXP, 0x8d9a, NxpRp),
    e(NXP, 0x8d99, NxpRp),
    e(NXP, 0x8db9, NxpRp),
    e(NXP, 0x8d9b, NxpRp),
    e(ZHAOXIN, PCI_ANY_ID, Zhaoxin),
    e(WANGXUN, PCI_ANY_ID, Wangxun),
];

/// `pci_quirk_intel_pch_acs_ids[]`: PCH root ports with ACS-like features
/// but no ACS capability (Red Hat bugzilla 1037684).
pub fn is_intel_pch_acs_id(device: u16) -> bool {
    matches!(device,
        0x3b42..=0x3b51 // Ibexpeak
        | 0x1c10..=0x1c1f // Cougarpoint
        | 0x1e10..=0x1e1f // Pantherpoint
        | 0x8c10..=0x8c1f // Lynxpoint-H
        | 0x9c10..=0x9c1b // Lynxpoint-LP
        | 0x9c90..=0x9c9b // Wildcat
        | 0x1d10 | 0x1d12 | 0x1d14 | 0x1d16 | 0x1d18 | 0x1d1a | 0x1d1c | 0x1d1e // Patsburg
        | 0x8d10..=0x8d1e // Wellsburg
        | 0x8c90 | 0x8c92 | 0x8c94 | 0x8c96 | 0x8c98 | 0x8c9a | 0x8c9c | 0x8c9e) // 9 series
}

/// `pci_quirk_intel_pch_acs_match`.
pub fn intel_pch_acs_match(f: &Function) -> bool {
    f.pcie_type == Some(PcieType::RootPort) && is_intel_pch_acs_id(f.device)
}

/// `pci_quirk_intel_spt_pch_acs_match`: Sunrise/Union Point and 7th/8th-gen
/// mobile root ports with the dword-register erratum.
pub fn intel_spt_pch_acs_match(f: &Function) -> bool {
    f.pcie_type == Some(PcieType::RootPort)
        && matches!(f.device, 0xa110..=0xa11f | 0xa167..=0xa16a | 0xa290..=0xa29f | 0xa2e7..=0xa2ee | 0x9d10..=0x9d1b)
}

/// Linux `pci_acs_ctrl_enabled(req, ena)`.
pub fn pci_acs_ctrl_enabled(req: AcsFlags, ena: AcsFlags) -> bool {
    ena.contains(req)
}

const SV_RR_CR_UF: AcsFlags = AcsFlags::SV.union(AcsFlags::RR).union(AcsFlags::CR).union(AcsFlags::UF);

/// Linux `pci_dev_specific_acs_enabled`: the first quirk that answers, with
/// its answer; `None` means "use the generic rules" (-ENOTTY).
pub fn pci_dev_specific_acs_enabled(
    cfg: &mut dyn ConfigSpace,
    f: &Function,
    flags: AcsFlags,
) -> Option<(AcsQuirk, bool)> {
    PCI_DEV_ACS_ENABLED
        .iter()
        .filter(|q| {
            (q.vendor == f.vendor || q.vendor == PCI_ANY_ID) && (q.device == f.device || q.device == PCI_ANY_ID)
        })
        .find_map(|q| evaluate(cfg, f, q.quirk, flags).map(|answer| (q.quirk, answer)))
}

/// One quirk function; `None` is Linux's negative return.
fn evaluate(cfg: &mut dyn ConfigSpace, f: &Function, quirk: AcsQuirk, flags: AcsFlags) -> Option<bool> {
    let port = f.pcie_type;
    match quirk {
        // Needs the ACPI IVRS table of an AMD IOMMU. This crate serves an
        // Intel VT-d machine (DMAR, no IVRS), where Linux gets -ENODEV.
        AmdSb => None,
        MfEndpoint => Some(pci_acs_ctrl_enabled(
            flags,
            AcsFlags::SV | AcsFlags::TB | AcsFlags::RR | AcsFlags::CR | AcsFlags::UF | AcsFlags::DT,
        )),
        Rciep => (port == Some(PcieType::RcEnd)).then(|| pci_acs_ctrl_enabled(flags, SV_RR_CR_UF)),
        QcomRp | Xgene | Brcm | NxpRp | Loongson => Some(pci_acs_ctrl_enabled(flags, SV_RR_CR_UF)),
        // No type check: every Wangxun device answers, "not isolated" when
        // it is not one of the NICs (SFxxx EM, RP1000/RP2000 SP, FF5xxx AML).
        Wangxun => {
            let nic = matches!(f.device, 0x0100..=0x010f | 0x1001 | 0x2001 | 0x5010 | 0x5025 | 0x5040)
                || matches!(f.device, 0x5110 | 0x5125 | 0x5140);
            Some(nic && pci_acs_ctrl_enabled(flags, SV_RR_CR_UF))
        }
        IntelPch => intel_pch_acs_match(f).then(|| {
            let ena = if f.dev_flags.contains(DevFlags::ACS_ENABLED_QUIRK) { SV_RR_CR_UF } else { AcsFlags::empty() };
            pci_acs_ctrl_enabled(flags, ena)
        }),
        IntelSptPch => {
            let acs = f.caps.acs.filter(|_| intel_spt_pch_acs_match(f))?;
            let cap = cfg.read32(f.bdf, acs.offset + PCI_ACS_CAP);
            let req = flags & AcsFlags::from_bits_truncate((cap as u16) | AcsFlags::EC.bits());
            let ctrl = cfg.read32(f.bdf, acs.offset + INTEL_SPT_ACS_CTRL);
            Some(pci_acs_ctrl_enabled(req, AcsFlags::from_bits_truncate(ctrl as u16)))
        }
        Cavium => {
            let id_match = matches!(f.device, 0xa000..=0xa7ff | 0xaf84 | 0xb884);
            (port == Some(PcieType::RootPort) && id_match).then(|| pci_acs_ctrl_enabled(flags, SV_RR_CR_UF))
        }
        // Linux reads pci_pcie_type() without a PCIe check: a conventional
        // function reads as type 0 and is not a root port.
        Al => (port == Some(PcieType::RootPort)).then(|| (flags - SV_RR_CR_UF).is_empty()),
        Zhaoxin => {
            if !matches!(port, Some(PcieType::RootPort | PcieType::Downstream)) {
                return None;
            }
            // Ports outside these ranges are reported NOT isolated, even
            // with a standard ACS capability (Linux 6.1 returns false).
            let known = matches!(f.device, 0x0710..=0x071e | 0x0721 | 0x0723..=0x0752);
            Some(known && pci_acs_ctrl_enabled(flags, SV_RR_CR_UF))
        }
    }
}
