//! The DMA-alias header fixups of Linux 6.1 drivers/pci/quirks.c, as data.
//!
//! Linux runs `DECLARE_PCI_FIXUP_HEADER` quirks at the end of
//! `pci_setup_device`, before `device_add`, so their aliases and flags are in
//! place before any grouping. The table keeps quirks.c order.
//!
//! Not applied: `quirk_switchtec_ntb_dma_alias` is a FINAL fixup that reads
//! the partition table through BAR0 MMIO; this crate has config space only,
//! so Switchtec NTB functions get no proxy-id aliases here.

use crate::caps::PcieType;
use crate::regs::{PCI_HEADER_TYPE_BRIDGE, pci_devfn, pci_func, pci_slot};
use crate::topology::{DevFlags, Function};

/// What one fixup does (the quirks.c function it follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaAliasFixup {
    /// `quirk_dma_func0_alias`: functions other than 0 use function 0's id.
    Func0,
    /// `quirk_dma_func1_alias`: functions other than 1 use function 1's id
    /// (which may be a ghost function that does not exist).
    Func1,
    /// `quirk_fixed_dma_alias`: a fixed devfn, only for listed subsystems.
    Fixed,
    /// `quirk_use_pcie_bridge_dma_alias`: sets `PCIE_BRIDGE_ALIAS`.
    UsePcieBridgeDmaAlias,
    /// `quirk_mic_x200_dma_alias`: 10.0, 11.0, 12.3.
    MicX200,
    /// `quirk_pex_vca_alias`: functions 0-4 of every slot.
    PexVca,
    /// `quirk_bridge_cavm_thrx2_pcie_root`: sets `BRIDGE_XLATE_ROOT`.
    CavmThrx2PcieRoot,
    /// `quirk_plx_ntb_dma_alias`: all 256 devfns.
    PlxNtb,
}

impl DmaAliasFixup {
    /// A name for reports, e.g. "DMA alias quirk (func1)".
    pub const fn name(self) -> &'static str {
        match self {
            Self::Func0 => "func0",
            Self::Func1 => "func1",
            Self::Fixed => "fixed devfn",
            Self::UsePcieBridgeDmaAlias => "PCIe bridge alias",
            Self::MicX200 => "MIC x200",
            Self::PexVca => "PEX VCA",
            Self::CavmThrx2PcieRoot => "ThunderX2 translation root",
            Self::PlxNtb => "PLX NTB",
        }
    }
}

/// One `DECLARE_PCI_FIXUP_HEADER(vendor, device, quirk)` line.
#[derive(Clone, Copy, Debug)]
pub struct DmaAliasFixupEntry {
    pub vendor: u16,
    pub device: u16,
    pub fixup: DmaAliasFixup,
}

use crate::ids::{ADAPTEC2, ASMEDIA, BROADCOM, GLENFLY, INTEL, JMICRON, MARVELL_EXT, PLX, RICOH, TTI};

const fn e(vendor: u16, device: u16, fixup: DmaAliasFixup) -> DmaAliasFixupEntry {
    DmaAliasFixupEntry { vendor, device, fixup }
}

use DmaAliasFixup::*;

/// The DMA-alias header fixups of Linux 6.1 quirks.c, in file order, as the
/// oracle's stable 6.1 (Debian 6.1.0-57) has them: checked entry by entry
/// against that kernel image (pci/tests/quirk_tables.rs).
pub const DMA_ALIAS_HEADER_FIXUPS: &[DmaAliasFixupEntry] = &[
    e(RICOH, 0xe832, Func0),
    e(RICOH, 0xe476, Func0),
    e(GLENFLY, 0x3d40, Func0), // Glenfly Arise GPU's HDMI audio
    e(GLENFLY, 0x3d41, Func0),
    e(MARVELL_EXT, 0x9120, Func1),
    e(MARVELL_EXT, 0x9123, Func1),
    e(MARVELL_EXT, 0x9125, Func1),
    e(MARVELL_EXT, 0x9128, Func1),
    e(MARVELL_EXT, 0x9130, Func1),
    e(MARVELL_EXT, 0x9170, Func1),
    e(MARVELL_EXT, 0x9172, Func1),
    e(MARVELL_EXT, 0x917a, Func1),
    e(MARVELL_EXT, 0x9182, Func1),
    e(MARVELL_EXT, 0x9183, Func1),
    e(MARVELL_EXT, 0x91a0, Func1),
    e(MARVELL_EXT, 0x9215, Func1),
    e(MARVELL_EXT, 0x9220, Func1),
    e(MARVELL_EXT, 0x9230, Func1),
    e(MARVELL_EXT, 0x9235, Func1),
    e(TTI, 0x0642, Func1),
    e(TTI, 0x0645, Func1),
    e(JMICRON, 0x2392, Func1), // PCI_DEVICE_ID_JMICRON_JMB388_ESD
    e(0x1c28, 0x0122, Func1),  // Lite-On Plextor M6E
    e(ADAPTEC2, 0x0285, Fixed),
    e(ASMEDIA, 0x1080, UsePcieBridgeDmaAlias),
    e(0x10e3, 0x8113, UsePcieBridgeDmaAlias), // Tundra 8113
    e(0x1283, 0x8892, UsePcieBridgeDmaAlias), // ITE 8892
    e(0x1283, 0x8893, UsePcieBridgeDmaAlias), // ITE 8893
    e(INTEL, 0x244e, UsePcieBridgeDmaAlias),  // 82801 (QEMU i82801b11-bridge)
    e(INTEL, 0x2260, MicX200),
    e(INTEL, 0x2264, MicX200),
    e(INTEL, 0x2954, PexVca),
    e(INTEL, 0x2955, PexVca),
    e(INTEL, 0x2956, PexVca),
    e(INTEL, 0x2958, PexVca),
    e(INTEL, 0x2959, PexVca),
    e(INTEL, 0x295a, PexVca),
    e(BROADCOM, 0x9000, CavmThrx2PcieRoot),
    e(BROADCOM, 0x9084, CavmThrx2PcieRoot),
    e(PLX, 0x87b0, PlxNtb),
    e(PLX, 0x87b1, PlxNtb),
];

/// `fixed_dma_alias_tbl`: (subsystem vendor, subsystem device, alias devfn)
/// for Adaptec 0x0285 (3405 and 3805: private DMA engine at 01.0).
const FIXED_DMA_ALIAS_TBL: &[(u16, u16, u8)] =
    &[(ADAPTEC2, 0x02bb, pci_devfn(1, 0)), (ADAPTEC2, 0x02bc, pci_devfn(1, 0))];

/// Run every matching fixup on `f`, which sits below `parent` (or on a root
/// bus). Returns nothing; effects land in `f.dma_alias_mask`, `f.dev_flags`
/// and `f.fixups`.
pub fn apply_dma_alias_fixups(f: &mut Function, parent: Option<&Function>) {
    for entry in DMA_ALIAS_HEADER_FIXUPS {
        if entry.vendor != f.vendor || entry.device != f.device {
            continue;
        }
        if apply_one(f, parent, entry.fixup) {
            f.fixups.push(entry.fixup.name());
        }
    }
}

/// Returns whether the fixup changed anything.
fn apply_one(f: &mut Function, parent: Option<&Function>, fixup: DmaAliasFixup) -> bool {
    let devfn = f.devfn();
    match fixup {
        Func0 if pci_func(devfn) != 0 => f.dma_alias_mask.insert(pci_devfn(pci_slot(devfn), 0)),
        Func1 if pci_func(devfn) != 1 => f.dma_alias_mask.insert(pci_devfn(pci_slot(devfn), 1)),
        Fixed => {
            match FIXED_DMA_ALIAS_TBL.iter().find(|(sv, sd, _)| *sv == f.subsystem_vendor && *sd == f.subsystem_device)
            {
                Some(&(_, _, alias)) => f.dma_alias_mask.insert(alias),
                None => return false,
            }
        }
        // A conventional bridge below a PCIe port that is not itself a
        // PCIe-to-PCI bridge must really be one (its PCIe capability is
        // missing), so it aliases like one.
        UsePcieBridgeDmaAlias => {
            let parent_ok = parent.is_some_and(|p| p.pcie_type.is_some_and(|t| t != PcieType::PciBridge));
            if f.is_root_bus || f.header_type != PCI_HEADER_TYPE_BRIDGE || f.is_pcie() || !parent_ok {
                return false;
            }
            f.dev_flags |= DevFlags::PCIE_BRIDGE_ALIAS;
        }
        MicX200 => {
            f.dma_alias_mask.insert(pci_devfn(0x10, 0));
            f.dma_alias_mask.insert(pci_devfn(0x11, 0));
            f.dma_alias_mask.insert(pci_devfn(0x12, 3));
        }
        PexVca => {
            for slot in 0..0x20 {
                f.dma_alias_mask.insert_range(pci_devfn(slot, 0), 5);
            }
        }
        CavmThrx2PcieRoot => f.dev_flags |= DevFlags::BRIDGE_XLATE_ROOT,
        PlxNtb => f.dma_alias_mask.insert_range(0, 256),
        Func0 | Func1 => return false,
    }
    true
}
