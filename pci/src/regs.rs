//! Configuration-space register offsets and bit names, spelled as in Linux's
//! `include/uapi/linux/pci_regs.h` so a reader with the header (or the PCI
//! Local Bus / PCIe Base specs) open finds the same word. Nothing else in the
//! crate spells a register offset.

use bitflags::bitflags;

// --- Type 0/1 common header (PCI Local Bus 3.0 §6.1) ---
pub const PCI_VENDOR_ID: u16 = 0x00;
pub const PCI_DEVICE_ID: u16 = 0x02;
pub const PCI_COMMAND: u16 = 0x04;
pub const PCI_STATUS: u16 = 0x06;
/// Status bit: the function implements a capability list.
pub const PCI_STATUS_CAP_LIST: u16 = 0x10;
/// Dword: revision in bits 7:0, class code (base, sub, prog-if) in 31:8.
pub const PCI_CLASS_REVISION: u16 = 0x08;
pub const PCI_HEADER_TYPE: u16 = 0x0e;
pub const PCI_HEADER_TYPE_MASK: u8 = 0x7f;
/// Header-type bit 7: function 0 of a multifunction device.
pub const PCI_HEADER_TYPE_MFD: u8 = 0x80;
pub const PCI_HEADER_TYPE_NORMAL: u8 = 0;
pub const PCI_HEADER_TYPE_BRIDGE: u8 = 1;
pub const PCI_HEADER_TYPE_CARDBUS: u8 = 2;
pub const PCI_SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
pub const PCI_SUBSYSTEM_ID: u16 = 0x2e;
pub const PCI_CAPABILITY_LIST: u16 = 0x34;
/// CardBus headers keep their capability pointer elsewhere.
pub const PCI_CB_CAPABILITY_LIST: u16 = 0x14;

// --- Type 1 (PCI-to-PCI bridge) header, also used by CardBus bridges ---
pub const PCI_PRIMARY_BUS: u16 = 0x18;
pub const PCI_SECONDARY_BUS: u16 = 0x19;
pub const PCI_SUBORDINATE_BUS: u16 = 0x1a;
pub const PCI_MEMORY_BASE: u16 = 0x20;
pub const PCI_MEMORY_LIMIT: u16 = 0x22;
pub const PCI_BRIDGE_CONTROL: u16 = 0x3e;
/// Bridge Control: forward SERR# / ERR_ messages from the secondary side.
pub const PCI_BRIDGE_CTL_SERR: u16 = 0x02;

// --- Command register bits ---
pub const PCI_COMMAND_MEMORY: u16 = 0x0002;
pub const PCI_COMMAND_MASTER: u16 = 0x0004;
pub const PCI_COMMAND_SERR: u16 = 0x0100;
pub const PCI_COMMAND_INTX_DISABLE: u16 = 0x0400;
pub const PCI_INTERRUPT_PIN: u16 = 0x3d;

/// Legacy configuration space size; extended (ECAM) space is 4 KiB.
pub const PCI_CFG_SPACE_SIZE: u16 = 256;
pub const PCI_CFG_SPACE_EXP_SIZE: u16 = 4096;
/// Standard capabilities live above the header.
pub const PCI_STD_HEADER_SIZEOF: u16 = 0x40;

// --- Standard capability IDs ---
pub const PCI_CAP_ID_PM: u8 = 0x01;
pub const PCI_CAP_ID_MSI: u8 = 0x05;
pub const PCI_CAP_ID_PCIX: u8 = 0x07;
/// PCI-X Status register (PCI-X capability + 4) and its Mode 2 bits
/// (`PCI_X_STATUS_266MHZ`, `PCI_X_STATUS_533MHZ`).
pub const PCI_X_STATUS: u16 = 4;
pub const PCI_X_STATUS_266MHZ: u32 = 0x4000_0000;
pub const PCI_X_STATUS_533MHZ: u32 = 0x8000_0000;
/// `PCI_CLASS_BRIDGE_HOST` (class >> 8).
pub const PCI_CLASS_BRIDGE_HOST: u16 = 0x0600;
pub const PCI_CAP_ID_VNDR: u8 = 0x09;
pub const PCI_CAP_ID_SHPC: u8 = 0x0c;
pub const PCI_CAP_ID_SSVID: u8 = 0x0d;
pub const PCI_CAP_ID_EXP: u8 = 0x10;
pub const PCI_CAP_ID_MSIX: u8 = 0x11;
pub const PCI_CAP_ID_EA: u8 = 0x14;

// --- PCI Express capability (PCIe Base 5.0 §7.5.3) ---
pub const PCI_EXP_FLAGS: u16 = 0x02;
pub const PCI_EXP_FLAGS_VERS: u16 = 0x000f;
pub const PCI_EXP_FLAGS_TYPE: u16 = 0x00f0;
/// Slot Implemented (only meaningful on root and downstream ports).
pub const PCI_EXP_FLAGS_SLOT: u16 = 0x0100;
pub const PCI_EXP_DEVCAP: u16 = 0x04;
pub const PCI_EXP_DEVCTL: u16 = 0x08;
pub const PCI_EXP_LNKCAP: u16 = 0x0c;
pub const PCI_EXP_LNKCAP_SLS: u32 = 0x0000_000f;
pub const PCI_EXP_LNKCAP_MLW: u32 = 0x0000_03f0;
pub const PCI_EXP_SLTCAP: u16 = 0x14;
/// Slot Capabilities: Hot-Plug Capable.
pub const PCI_EXP_SLTCAP_HPC: u32 = 0x0000_0040;
/// Slot Capabilities bits (`PCI_EXP_SLTCAP_*`).
pub const PCI_EXP_SLTCAP_ABP: u32 = 0x0000_0001;
pub const PCI_EXP_SLTCAP_PCP: u32 = 0x0000_0002;
pub const PCI_EXP_SLTCAP_MRLSP: u32 = 0x0000_0004;
pub const PCI_EXP_SLTCAP_AIP: u32 = 0x0000_0008;
pub const PCI_EXP_SLTCAP_PIP: u32 = 0x0000_0010;
pub const PCI_EXP_SLTCAP_HPS: u32 = 0x0000_0020;
pub const PCI_EXP_SLTCAP_EIP: u32 = 0x0002_0000;
pub const PCI_EXP_SLTCAP_NCCS: u32 = 0x0004_0000;
pub const PCI_EXP_SLTCAP_PSN: u32 = 0xfff8_0000;
pub const PCI_EXP_SLTCTL: u16 = 0x18;
pub const PCI_EXP_SLTCTL_ABPE: u16 = 0x0001;
pub const PCI_EXP_SLTCTL_PFDE: u16 = 0x0002;
pub const PCI_EXP_SLTCTL_MRLSCE: u16 = 0x0004;
pub const PCI_EXP_SLTCTL_PDCE: u16 = 0x0008;
pub const PCI_EXP_SLTCTL_CCIE: u16 = 0x0010;
pub const PCI_EXP_SLTCTL_HPIE: u16 = 0x0020;
pub const PCI_EXP_SLTCTL_AIC: u16 = 0x00c0;
pub const PCI_EXP_SLTCTL_ATTN_IND_ON: u16 = 0x0040;
pub const PCI_EXP_SLTCTL_ATTN_IND_BLINK: u16 = 0x0080;
pub const PCI_EXP_SLTCTL_ATTN_IND_OFF: u16 = 0x00c0;
pub const PCI_EXP_SLTCTL_PIC: u16 = 0x0300;
pub const PCI_EXP_SLTCTL_PWR_IND_ON: u16 = 0x0100;
pub const PCI_EXP_SLTCTL_PWR_IND_BLINK: u16 = 0x0200;
pub const PCI_EXP_SLTCTL_PWR_IND_OFF: u16 = 0x0300;
/// Power Controller Control: 1 = off.
pub const PCI_EXP_SLTCTL_PCC: u16 = 0x0400;
pub const PCI_EXP_SLTCTL_PWR_ON: u16 = 0x0000;
pub const PCI_EXP_SLTCTL_PWR_OFF: u16 = 0x0400;
pub const PCI_EXP_SLTCTL_DLLSCE: u16 = 0x1000;
pub const PCI_EXP_SLTSTA: u16 = 0x1a;
pub const PCI_EXP_SLTSTA_ABP: u16 = 0x0001;
pub const PCI_EXP_SLTSTA_PFD: u16 = 0x0002;
pub const PCI_EXP_SLTSTA_MRLSC: u16 = 0x0004;
pub const PCI_EXP_SLTSTA_PDC: u16 = 0x0008;
pub const PCI_EXP_SLTSTA_CC: u16 = 0x0010;
pub const PCI_EXP_SLTSTA_MRLSS: u16 = 0x0020;
pub const PCI_EXP_SLTSTA_PDS: u16 = 0x0040;
pub const PCI_EXP_SLTSTA_DLLSC: u16 = 0x0100;
pub const PCI_EXP_DEVSTA: u16 = 0x0a;
/// Device Control: correctable, non-fatal, fatal, unsupported request reporting.
pub const PCI_EXP_AER_FLAGS: u16 = 0x000f;
pub const PCI_EXP_RTCTL: u16 = 0x1c;
/// Root Control: system error on correctable, non-fatal, fatal error.
pub const PCI_EXP_RTCTL_SYSERR: u16 = 0x0007;
/// PCIe Capabilities: Interrupt Message Number (bits 13:9).
pub const PCI_EXP_FLAGS_IRQ: u16 = 0x3e00;
pub const PCI_EXP_DEVCAP2: u16 = 0x24;
/// Device Capabilities 2: ARI Forwarding Supported (downstream ports).
pub const PCI_EXP_DEVCAP2_ARI: u32 = 0x0000_0020;
pub const PCI_EXP_DEVCTL2: u16 = 0x28;
/// Device Control 2: ARI Forwarding Enable.
pub const PCI_EXP_DEVCTL2_ARI: u16 = 0x0020;

// --- PCI_EXP_FLAGS_TYPE values (Device/Port Type) ---
pub const PCI_EXP_TYPE_ENDPOINT: u8 = 0x0;
pub const PCI_EXP_TYPE_LEG_END: u8 = 0x1;
pub const PCI_EXP_TYPE_ROOT_PORT: u8 = 0x4;
pub const PCI_EXP_TYPE_UPSTREAM: u8 = 0x5;
pub const PCI_EXP_TYPE_DOWNSTREAM: u8 = 0x6;
pub const PCI_EXP_TYPE_PCI_BRIDGE: u8 = 0x7;
pub const PCI_EXP_TYPE_PCIE_BRIDGE: u8 = 0x8;
pub const PCI_EXP_TYPE_RC_END: u8 = 0x9;
pub const PCI_EXP_TYPE_RC_EC: u8 = 0xa;

// --- Extended capabilities (PCIe Base 5.0 §7.6) ---
pub const PCI_EXT_CAP_ID_ERR: u16 = 0x01;
pub const PCI_EXT_CAP_ID_ACS: u16 = 0x0d;
pub const PCI_EXT_CAP_ID_ARI: u16 = 0x0e;
pub const PCI_EXT_CAP_ID_SRIOV: u16 = 0x10;
pub const PCI_EXT_CAP_ID_DPC: u16 = 0x1d;

// --- AER extended capability (PCIe Base 5.0 §7.8.4) ---
pub const PCI_ERR_UNCOR_STATUS: u16 = 0x04;
pub const PCI_ERR_UNCOR_MASK: u16 = 0x08;
pub const PCI_ERR_UNCOR_SEVER: u16 = 0x0c;
pub const PCI_ERR_COR_STATUS: u16 = 0x10;
pub const PCI_ERR_COR_MASK: u16 = 0x14;
pub const PCI_ERR_CAP: u16 = 0x18;
pub const PCI_ERR_HEADER_LOG: u16 = 0x1c;
pub const PCI_ERR_ROOT_COMMAND: u16 = 0x2c;
pub const PCI_ERR_ROOT_STATUS: u16 = 0x30;
pub const PCI_ERR_ROOT_ERR_SRC: u16 = 0x34;
/// DPC capability register (Interrupt Message Number in bits 4:0).
pub const PCI_EXP_DPC_CAP: u16 = 0x04;
pub const PCI_EXP_DPC_IRQ: u16 = 0x001f;

/// `PCI_EXT_CAP_ID(header)`.
pub const fn pci_ext_cap_id(header: u32) -> u16 {
    (header & 0xffff) as u16
}
/// `PCI_EXT_CAP_NEXT(header)`: dword-aligned offset of the next capability.
pub const fn pci_ext_cap_next(header: u32) -> u16 {
    ((header >> 20) & 0xffc) as u16
}

// --- ACS extended capability (PCIe Base 3.0 §7.16, 5.0 §7.7.8) ---
pub const PCI_ACS_CAP: u16 = 0x04;
pub const PCI_ACS_CTRL: u16 = 0x06;
/// Sunrise/Union Point PCH erratum: control is a dword at +8, not a word at
/// +6 (Linux `INTEL_SPT_ACS_CTRL`).
pub const INTEL_SPT_ACS_CTRL: u16 = PCI_ACS_CAP + 4;

bitflags! {
    /// ACS capability and control bits (same layout in both registers).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AcsFlags: u16 {
        /// Source Validation.
        const SV = 0x01;
        /// Translation Blocking.
        const TB = 0x02;
        /// P2P Request Redirect.
        const RR = 0x04;
        /// P2P Completion Redirect.
        const CR = 0x08;
        /// Upstream Forwarding.
        const UF = 0x10;
        /// P2P Egress Control.
        const EC = 0x20;
        /// Direct Translated P2P.
        const DT = 0x40;
    }
}

/// Linux `REQ_ACS_FLAGS` (drivers/iommu/iommu.c): what a bridge must provide
/// for the devices below it to be isolated from their peers. TB, EC and DT
/// are not required.
pub const REQ_ACS_FLAGS: AcsFlags = AcsFlags::SV.union(AcsFlags::RR).union(AcsFlags::CR).union(AcsFlags::UF);

// --- ARI extended capability (PCIe Base 5.0 §7.8.7) ---
pub const PCI_ARI_CAP: u16 = 0x04;
/// `PCI_ARI_CAP_NFN(cap)`: next function number in the ARI chain.
pub const fn pci_ari_cap_nfn(cap: u16) -> u8 {
    (cap >> 8) as u8
}

// --- SR-IOV extended capability (PCIe Base 5.0 §9.3.3) ---
pub const PCI_SRIOV_CTRL: u16 = 0x08;
/// SR-IOV Control: VF Enable.
pub const PCI_SRIOV_CTRL_VFE: u16 = 0x0001;
pub const PCI_SRIOV_INITIAL_VF: u16 = 0x0c;
pub const PCI_SRIOV_TOTAL_VF: u16 = 0x0e;
pub const PCI_SRIOV_NUM_VF: u16 = 0x10;
/// First VF's routing id offset from the PF's.
pub const PCI_SRIOV_VF_OFFSET: u16 = 0x14;
/// Routing id distance between consecutive VFs.
pub const PCI_SRIOV_VF_STRIDE: u16 = 0x16;
pub const PCI_SRIOV_VF_DID: u16 = 0x1a;

/// `PCI_SLOT(devfn)`.
pub const fn pci_slot(devfn: u8) -> u8 {
    devfn >> 3
}
/// `PCI_FUNC(devfn)`.
pub const fn pci_func(devfn: u8) -> u8 {
    devfn & 7
}
/// `PCI_DEVFN(slot, func)`.
pub const fn pci_devfn(slot: u8, func: u8) -> u8 {
    ((slot & 0x1f) << 3) | (func & 7)
}
