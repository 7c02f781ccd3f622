//! Capability lists: the standard list in the first 256 bytes and the
//! extended list from 0x100, walked with Linux's bounds and decoded into the
//! facts the rest of the crate needs.
//!
//! Both lists are pointers read from hardware, so every walk is bounded
//! (Linux `PCI_FIND_CAP_TTL` = 48 standard hops, `(4096 - 256) / 8` extended
//! hops) and remembers the offsets it has visited: a cycle is reported as an
//! error instead of being followed until the bound runs out.

use alloc::vec::Vec;
use core::fmt;

use crate::config::{Bdf, ConfigSpace};
use crate::regs::*;

/// Linux `PCI_FIND_CAP_TTL`.
pub const PCI_FIND_CAP_TTL: usize = 48;
/// Linux bound in `pci_find_next_ext_capability`: the most 8-byte
/// capabilities that fit in the extended space.
pub const PCI_EXT_CAP_TTL: usize = ((PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8) as usize;

/// PCIe Device/Port Type (`PCI_EXP_FLAGS_TYPE`), named as Linux names the
/// `PCI_EXP_TYPE_*` values.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PcieType {
    Endpoint,
    LegacyEndpoint,
    RootPort,
    Upstream,
    Downstream,
    /// PCIe-to-PCI/PCI-X bridge (`PCI_EXP_TYPE_PCI_BRIDGE`).
    PciBridge,
    /// PCI/PCI-X-to-PCIe "reverse" bridge (`PCI_EXP_TYPE_PCIE_BRIDGE`).
    PcieBridge,
    /// Root-complex integrated endpoint (`PCI_EXP_TYPE_RC_END`).
    RcEnd,
    /// Root-complex event collector (`PCI_EXP_TYPE_RC_EC`).
    RcEc,
    /// A reserved encoding, kept so it can be reported.
    Reserved(u8),
}

impl PcieType {
    pub const fn from_raw(v: u8) -> Self {
        match v {
            PCI_EXP_TYPE_ENDPOINT => Self::Endpoint,
            PCI_EXP_TYPE_LEG_END => Self::LegacyEndpoint,
            PCI_EXP_TYPE_ROOT_PORT => Self::RootPort,
            PCI_EXP_TYPE_UPSTREAM => Self::Upstream,
            PCI_EXP_TYPE_DOWNSTREAM => Self::Downstream,
            PCI_EXP_TYPE_PCI_BRIDGE => Self::PciBridge,
            PCI_EXP_TYPE_PCIE_BRIDGE => Self::PcieBridge,
            PCI_EXP_TYPE_RC_END => Self::RcEnd,
            PCI_EXP_TYPE_RC_EC => Self::RcEc,
            other => Self::Reserved(other),
        }
    }

    /// The 4-bit encoding (`PCI_EXP_FLAGS_TYPE >> 4`), inverse of [`Self::from_raw`].
    pub const fn raw(self) -> u8 {
        match self {
            Self::Endpoint => PCI_EXP_TYPE_ENDPOINT,
            Self::LegacyEndpoint => PCI_EXP_TYPE_LEG_END,
            Self::RootPort => PCI_EXP_TYPE_ROOT_PORT,
            Self::Upstream => PCI_EXP_TYPE_UPSTREAM,
            Self::Downstream => PCI_EXP_TYPE_DOWNSTREAM,
            Self::PciBridge => PCI_EXP_TYPE_PCI_BRIDGE,
            Self::PcieBridge => PCI_EXP_TYPE_PCIE_BRIDGE,
            Self::RcEnd => PCI_EXP_TYPE_RC_END,
            Self::RcEc => PCI_EXP_TYPE_RC_EC,
            Self::Reserved(v) => v,
        }
    }

    /// Linux `pcie_downstream_port()`: a port whose link leads away from
    /// the root (root port, switch downstream port, PCI-to-PCIe bridge).
    pub const fn is_downstream_port(self) -> bool {
        matches!(self, Self::RootPort | Self::Downstream | Self::PcieBridge)
    }
}

impl fmt::Display for PcieType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Endpoint => f.write_str("endpoint"),
            Self::LegacyEndpoint => f.write_str("legacy endpoint"),
            Self::RootPort => f.write_str("root port"),
            Self::Upstream => f.write_str("upstream port"),
            Self::Downstream => f.write_str("downstream port"),
            Self::PciBridge => f.write_str("PCIe-to-PCI bridge"),
            Self::PcieBridge => f.write_str("PCI-to-PCIe bridge"),
            Self::RcEnd => f.write_str("RC integrated endpoint"),
            Self::RcEc => f.write_str("RC event collector"),
            Self::Reserved(v) => write!(f, "reserved PCIe type {v:#x}"),
        }
    }
}

/// The PCI Express capability (PCIe Base 5.0 §7.5.3), as read at
/// enumeration. `port_type` here is what the hardware says; the topology
/// keeps the type after Linux's `set_pcie_port_type` correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcieCap {
    pub offset: u16,
    /// Raw `PCI_EXP_FLAGS`.
    pub flags: u16,
    pub port_type: PcieType,
    pub devcap: u32,
    pub link_cap: u32,
    /// Slot Capabilities, when the Slot Implemented flag is set.
    pub slot_cap: Option<u32>,
    /// Device Capabilities 2 (capability version 2 and later).
    pub devcap2: u32,
}

impl PcieCap {
    pub const fn version(&self) -> u16 {
        self.flags & PCI_EXP_FLAGS_VERS
    }
    /// Slot Capabilities: Hot-Plug Capable.
    pub const fn hotplug_capable(&self) -> bool {
        matches!(self.slot_cap, Some(c) if c & PCI_EXP_SLTCAP_HPC != 0)
    }
    /// Downstream port can forward ARI requests (`PCI_EXP_DEVCAP2_ARI`).
    pub const fn ari_forwarding_supported(&self) -> bool {
        self.devcap2 & PCI_EXP_DEVCAP2_ARI != 0
    }
    /// Link Capabilities: max link speed code and width.
    pub const fn max_link(&self) -> (u8, u8) {
        ((self.link_cap & PCI_EXP_LNKCAP_SLS) as u8, ((self.link_cap & PCI_EXP_LNKCAP_MLW) >> 4) as u8)
    }
}

/// The ACS extended capability: its offset and the registers as they read
/// at enumeration. Isolation decisions re-read them live (see `acs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcsCap {
    pub offset: u16,
    /// Raw capability word (`PCI_ACS_CAP`); bits 15:8 are the egress vector size.
    pub cap: u16,
    /// Control word (`PCI_ACS_CTRL`) when first read.
    pub ctrl: u16,
}

/// The ARI extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AriCap {
    pub offset: u16,
    /// `PCI_ARI_CAP_NFN`: next function in the ARI chain (0 ends it).
    pub next_function: u8,
}

/// The SR-IOV extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SriovCap {
    pub offset: u16,
    pub total_vfs: u16,
    pub initial_vfs: u16,
}

/// Everything decoded from both capability lists of one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Every standard capability, `(id, offset)`, in list order.
    pub standard: Vec<(u8, u16)>,
    /// Every extended capability, `(id, offset)`, in list order.
    pub extended: Vec<(u16, u16)>,
    pub pm: Option<u16>,
    pub msi: Option<u16>,
    pub msix: Option<u16>,
    pub pcie: Option<PcieCap>,
    pub acs: Option<AcsCap>,
    pub ari: Option<AriCap>,
    pub sriov: Option<SriovCap>,
    /// Advanced Error Reporting (`PCI_EXT_CAP_ID_ERR`).
    pub aer: Option<u16>,
    /// Downstream Port Containment.
    pub dpc: Option<u16>,
}

impl Capabilities {
    /// Linux `pci_find_capability`: first standard capability with `id`.
    pub fn find(&self, id: u8) -> Option<u16> {
        self.standard.iter().find(|(i, _)| *i == id).map(|(_, o)| *o)
    }
    /// Linux `pci_find_ext_capability`: first extended capability with `id`.
    pub fn find_ext(&self, id: u16) -> Option<u16> {
        self.extended.iter().find(|(i, _)| *i == id).map(|(_, o)| *o)
    }
}

/// A malformed capability list. The walk stops at the fault; what was
/// found before it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// A standard pointer into the header (below 0x40) other than 0.
    PointerIntoHeader { at: u16, pointer: u8 },
    /// The standard list came back to an offset already visited.
    Loop { offset: u16 },
    /// More than `PCI_FIND_CAP_TTL` standard capabilities.
    TooLong,
    /// An extended pointer below 0x100 other than 0.
    ExtPointerIntoLegacy { at: u16, pointer: u16 },
    /// The extended list came back to an offset already visited.
    ExtLoop { offset: u16 },
    /// More than `PCI_EXT_CAP_TTL` extended capabilities.
    ExtTooLong,
    /// An extended header read as all ones in the middle of the list.
    ExtAllOnes { offset: u16 },
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PointerIntoHeader { at, pointer } => {
                write!(f, "capability at {at:#x} points to {pointer:#x}, inside the header; list cut there")
            }
            Self::Loop { offset } => write!(f, "capability list loops back to {offset:#x}; list cut there"),
            Self::TooLong => write!(f, "capability list longer than {PCI_FIND_CAP_TTL} entries; list cut"),
            Self::ExtPointerIntoLegacy { at, pointer } => {
                write!(f, "extended capability at {at:#x} points to {pointer:#x}, below 0x100; list cut there")
            }
            Self::ExtLoop { offset } => {
                write!(f, "extended capability list loops back to {offset:#x}; list cut there")
            }
            Self::ExtTooLong => {
                write!(f, "extended capability list longer than {PCI_EXT_CAP_TTL} entries; list cut")
            }
            Self::ExtAllOnes { offset } => {
                write!(f, "extended capability header at {offset:#x} reads all ones; list cut there")
            }
        }
    }
}

/// A set of dword-aligned offsets in 4 KiB, for cycle detection.
struct Visited([u64; 16]);

impl Visited {
    const fn new() -> Self {
        Self([0; 16])
    }
    /// Marks `offset`; returns whether it was already marked.
    fn test_and_set(&mut self, offset: u16) -> bool {
        let dword = usize::from(offset / 4) % 1024;
        let (word, bit) = (dword / 64, dword % 64);
        let seen = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        seen
    }
}

/// Walk both capability lists of `bdf` (on a bus without
/// `PCI_BUS_FLAGS_NO_EXTCFG`) and decode them; see [`read_function_caps`].
pub fn read_capabilities(cfg: &mut dyn ConfigSpace, bdf: Bdf, header_type: u8) -> (Capabilities, Vec<CapError>) {
    let class = cfg.read32(bdf, PCI_CLASS_REVISION) >> 8;
    let (caps, _, errors) = read_function_caps(cfg, bdf, header_type, class, false);
    (caps, errors)
}

/// Walk both capability lists of `bdf` and decode them; also returns the
/// config space size Linux gives the function ([`pci_cfg_space_size`]).
///
/// Follows Linux `__pci_find_next_cap_ttl` (standard list; an ID of 0xff
/// ends it, as a vanished device would) and `pci_find_next_ext_capability`
/// (extended list, only when the size is 4096: Linux's walk returns nothing
/// when `dev->cfg_size` is 256).
pub fn read_function_caps(
    cfg: &mut dyn ConfigSpace,
    bdf: Bdf,
    header_type: u8,
    class: u32,
    bus_no_extcfg: bool,
) -> (Capabilities, u16, Vec<CapError>) {
    let mut caps = Capabilities::default();
    let mut errors = Vec::new();
    walk_standard(cfg, bdf, header_type, &mut caps, &mut errors);
    decode_standard(cfg, bdf, &mut caps);
    let size = pci_cfg_space_size(cfg, bdf, &caps, class, bus_no_extcfg);
    if size == PCI_CFG_SPACE_EXP_SIZE {
        walk_extended(cfg, bdf, &mut caps, &mut errors);
        decode_extended(cfg, bdf, &mut caps);
    }
    (caps, size, errors)
}

/// Linux `pci_cfg_space_size` (drivers/pci/probe.c): 256 bytes on a bus
/// flagged `PCI_BUS_FLAGS_NO_EXTCFG`; a host bridge (class 0x0600) and a
/// PCIe function get [`pci_cfg_space_size_ext`]; a conventional function
/// only when its PCI-X capability reports Mode 2 (266 or 533 MHz);
/// otherwise 256. (VFs, which copy their PF's size, are not enumerated.)
pub fn pci_cfg_space_size(
    cfg: &mut dyn ConfigSpace,
    bdf: Bdf,
    caps: &Capabilities,
    class: u32,
    bus_no_extcfg: bool,
) -> u16 {
    if bus_no_extcfg {
        return PCI_CFG_SPACE_SIZE;
    }
    if (class >> 8) as u16 == PCI_CLASS_BRIDGE_HOST || caps.pcie.is_some() {
        return pci_cfg_space_size_ext(cfg, bdf);
    }
    let Some(pos) = caps.find(PCI_CAP_ID_PCIX) else {
        return PCI_CFG_SPACE_SIZE;
    };
    if cfg.read32(bdf, pos + PCI_X_STATUS) & (PCI_X_STATUS_266MHZ | PCI_X_STATUS_533MHZ) != 0 {
        return pci_cfg_space_size_ext(cfg, bdf);
    }
    PCI_CFG_SPACE_SIZE
}

/// Linux `pci_cfg_space_size_ext`: 256 bytes when offset 0x100 cannot be
/// reached (no ECAM window), reads all ones, or when every 256-byte block
/// of the extended space repeats the header's first dword
/// (`pci_ext_cfg_is_aliased`: a device that decodes only 8 address bits);
/// otherwise 4096.
pub fn pci_cfg_space_size_ext(cfg: &mut dyn ConfigSpace, bdf: Bdf) -> u16 {
    if !cfg.has_extended_space(bdf) {
        return PCI_CFG_SPACE_SIZE;
    }
    if cfg.read32(bdf, PCI_CFG_SPACE_SIZE) == u32::MAX || pci_ext_cfg_is_aliased(cfg, bdf) {
        return PCI_CFG_SPACE_SIZE;
    }
    PCI_CFG_SPACE_EXP_SIZE
}

/// Linux `pci_ext_cfg_is_aliased`: 15 reads at most.
fn pci_ext_cfg_is_aliased(cfg: &mut dyn ConfigSpace, bdf: Bdf) -> bool {
    let header = cfg.read32(bdf, PCI_VENDOR_ID);
    (1..PCI_CFG_SPACE_EXP_SIZE / PCI_CFG_SPACE_SIZE).all(|block| cfg.read32(bdf, block * PCI_CFG_SPACE_SIZE) == header)
}

fn walk_standard(
    cfg: &mut dyn ConfigSpace,
    bdf: Bdf,
    header_type: u8,
    caps: &mut Capabilities,
    errors: &mut Vec<CapError>,
) {
    if cfg.read16(bdf, PCI_STATUS) & PCI_STATUS_CAP_LIST == 0 {
        return;
    }
    let pointer_reg = if header_type == PCI_HEADER_TYPE_CARDBUS { PCI_CB_CAPABILITY_LIST } else { PCI_CAPABILITY_LIST };
    let mut at = pointer_reg;
    let mut pos = cfg.read8(bdf, pointer_reg);
    let mut visited = Visited::new();
    for _ in 0..PCI_FIND_CAP_TTL {
        if u16::from(pos) < PCI_STD_HEADER_SIZEOF {
            if pos != 0 {
                errors.push(CapError::PointerIntoHeader { at, pointer: pos });
            }
            return;
        }
        let offset = u16::from(pos & !3);
        if visited.test_and_set(offset) {
            errors.push(CapError::Loop { offset });
            return;
        }
        let header = cfg.read16(bdf, offset);
        let id = (header & 0xff) as u8;
        if id == 0xff {
            return;
        }
        caps.standard.push((id, offset));
        at = offset;
        pos = (header >> 8) as u8;
    }
    if u16::from(pos) >= PCI_STD_HEADER_SIZEOF {
        errors.push(CapError::TooLong);
    }
}

fn decode_standard(cfg: &mut dyn ConfigSpace, bdf: Bdf, caps: &mut Capabilities) {
    caps.pm = caps.find(PCI_CAP_ID_PM);
    caps.msi = caps.find(PCI_CAP_ID_MSI);
    caps.msix = caps.find(PCI_CAP_ID_MSIX);
    caps.pcie = caps.find(PCI_CAP_ID_EXP).map(|offset| {
        let flags = cfg.read16(bdf, offset + PCI_EXP_FLAGS);
        let port_type = PcieType::from_raw(((flags & PCI_EXP_FLAGS_TYPE) >> 4) as u8);
        let slot_cap = (flags & PCI_EXP_FLAGS_SLOT != 0).then(|| cfg.read32(bdf, offset + PCI_EXP_SLTCAP));
        // DEVCAP2 exists from capability version 2 on (PCIe 2.0).
        let devcap2 = if flags & PCI_EXP_FLAGS_VERS >= 2 { cfg.read32(bdf, offset + PCI_EXP_DEVCAP2) } else { 0 };
        PcieCap {
            offset,
            flags,
            port_type,
            devcap: cfg.read32(bdf, offset + PCI_EXP_DEVCAP),
            link_cap: cfg.read32(bdf, offset + PCI_EXP_LNKCAP),
            slot_cap,
            devcap2,
        }
    });
}

fn walk_extended(cfg: &mut dyn ConfigSpace, bdf: Bdf, caps: &mut Capabilities, errors: &mut Vec<CapError>) {
    let mut pos = PCI_CFG_SPACE_SIZE;
    let mut header = cfg.read32(bdf, pos);
    // pci_cfg_space_size_ext: all ones at 0x100 means no extended space;
    // 0 means an empty list.
    if header == 0 || header == u32::MAX {
        return;
    }
    let mut visited = Visited::new();
    for _ in 0..PCI_EXT_CAP_TTL {
        if visited.test_and_set(pos) {
            errors.push(CapError::ExtLoop { offset: pos });
            return;
        }
        let id = pci_ext_cap_id(header);
        if id != 0 {
            caps.extended.push((id, pos));
        }
        let next = pci_ext_cap_next(header);
        if next == 0 {
            return;
        }
        if next < PCI_CFG_SPACE_SIZE {
            errors.push(CapError::ExtPointerIntoLegacy { at: pos, pointer: next });
            return;
        }
        pos = next;
        header = cfg.read32(bdf, pos);
        if header == u32::MAX {
            errors.push(CapError::ExtAllOnes { offset: pos });
            return;
        }
    }
    errors.push(CapError::ExtTooLong);
}

fn decode_extended(cfg: &mut dyn ConfigSpace, bdf: Bdf, caps: &mut Capabilities) {
    caps.aer = caps.find_ext(PCI_EXT_CAP_ID_ERR);
    caps.dpc = caps.find_ext(PCI_EXT_CAP_ID_DPC);
    caps.acs = caps.find_ext(PCI_EXT_CAP_ID_ACS).map(|offset| AcsCap {
        offset,
        cap: cfg.read16(bdf, offset + PCI_ACS_CAP),
        ctrl: cfg.read16(bdf, offset + PCI_ACS_CTRL),
    });
    caps.ari = caps
        .find_ext(PCI_EXT_CAP_ID_ARI)
        .map(|offset| AriCap { offset, next_function: pci_ari_cap_nfn(cfg.read16(bdf, offset + PCI_ARI_CAP)) });
    caps.sriov = caps.find_ext(PCI_EXT_CAP_ID_SRIOV).map(|offset| SriovCap {
        offset,
        total_vfs: cfg.read16(bdf, offset + PCI_SRIOV_TOTAL_VF),
        initial_vfs: cfg.read16(bdf, offset + PCI_SRIOV_INITIAL_VF),
    });
}
