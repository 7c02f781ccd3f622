//! What enumeration found: functions in Linux `device_add` order, the buses
//! they sit on, and every fault met on the way.

use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;

use crate::caps::{CapError, Capabilities, PcieType};
use crate::config::Bdf;
use crate::devfn_mask::DevfnMask;

bitflags! {
    /// The subset of Linux `enum pci_dev_flags` (include/linux/pci.h) that
    /// grouping reads; bit values match Linux.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DevFlags: u32 {
        /// Set by the Intel PCH enable-ACS quirk when it succeeded.
        const ACS_ENABLED_QUIRK = 1 << 3;
        /// A conventional bridge that is really a PCIe-to-PCI bridge: its
        /// requests carry (secondary bus, 00.0).
        const PCIE_BRIDGE_ALIAS = 1 << 5;
        /// DMA translation happens at this bridge: alias walks stop here.
        const BRIDGE_XLATE_ROOT = 1 << 9;
    }
}

/// Bus numbers of a type 1 (or CardBus) header as firmware left them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeBuses {
    pub primary: u8,
    pub secondary: u8,
    pub subordinate: u8,
}

/// One PCI function as Linux's `struct pci_dev` would describe it after
/// `pci_setup_device` and the header fixups.
#[derive(Clone, Debug)]
pub struct Function {
    pub bdf: Bdf,
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code: base class, subclass, programming interface.
    pub class: u32,
    pub revision: u8,
    /// Header layout (bits 6:0 of `PCI_HEADER_TYPE`).
    pub header_type: u8,
    /// Linux `pdev->multifunction`: header bit 7, forced on for fn > 0.
    pub multifunction: bool,
    pub subsystem_vendor: u16,
    pub subsystem_device: u16,
    /// PCIe Device/Port Type after `set_pcie_port_type`; `None` for
    /// conventional PCI (no PCIe capability).
    pub pcie_type: Option<PcieType>,
    /// Set when Linux 6.1's `set_pcie_port_type` "corrected" this port:
    /// the type it meant to set. 6.1 ORs that type into the flags
    /// unshifted, so the port reads as type 0, a PCIe endpoint
    /// (`pcie_type` is then `Endpoint`). Fixed upstream after 6.1.
    pub port_type_bug: Option<PcieType>,
    /// Linux `dev->cfg_size` (`pci_cfg_space_size`): 256 or 4096.
    pub cfg_size: u16,
    /// The bus this function sits on has `PCI_BUS_FLAGS_NO_EXTCFG`.
    pub bus_no_extcfg: bool,
    pub caps: Capabilities,
    /// Bus numbers, for type 1 and CardBus headers.
    pub bridge: Option<BridgeBuses>,
    /// Whether the secondary bus was scanned (sane bus numbers).
    pub secondary_scanned: bool,
    /// Index of the bridge whose secondary bus this function sits on
    /// (Linux `pdev->bus->self`); `None` on a root bus.
    pub parent: Option<usize>,
    pub is_root_bus: bool,
    pub dev_flags: DevFlags,
    /// Linux `pdev->dma_alias_mask`: extra devfns on this bus whose
    /// requester ids this function also uses.
    pub dma_alias_mask: DevfnMask,
    /// Names of the header fixups applied (for the report).
    pub fixups: Vec<&'static str>,
}

impl Function {
    pub const fn devfn(&self) -> u8 {
        self.bdf.devfn()
    }
    /// Linux `pci_is_pcie`.
    pub const fn is_pcie(&self) -> bool {
        self.pcie_type.is_some()
    }
    /// Linux `pci_is_bridge`: type 1 or CardBus header.
    pub const fn is_bridge(&self) -> bool {
        self.bridge.is_some()
    }
    /// The number of the bus below this bridge (`subordinate->number`).
    pub fn secondary_bus(&self) -> Option<u8> {
        self.bridge.map(|b| b.secondary)
    }
    /// A short name for reports: "root port 0000:00:02.0".
    pub fn kind(&self) -> &'static str {
        match self.pcie_type {
            Some(PcieType::RootPort) => "root port",
            Some(PcieType::Downstream) => "downstream port",
            Some(PcieType::Upstream) => "upstream port",
            Some(PcieType::PciBridge) => "PCIe-to-PCI bridge",
            Some(PcieType::PcieBridge) => "PCI-to-PCIe bridge",
            Some(_) if self.is_bridge() => "bridge",
            Some(_) => "PCIe function",
            None if self.is_bridge() => "conventional PCI bridge",
            None => "conventional PCI function",
        }
    }
}

/// A bus Linux would have a `struct pci_bus` for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bus {
    pub number: u8,
    /// The bridge leading to it (`bus->self`); `None` for a root bus.
    pub bridge: Option<usize>,
    /// `PCI_BUS_FLAGS_NO_EXTCFG`: extended config space is not accessible
    /// on this bus (`pci_alloc_child_bus`).
    pub no_extcfg: bool,
}

/// A fault found while enumerating; one clear line through `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumError {
    pub bdf: Bdf,
    pub kind: EnumErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnumErrorKind {
    RootBusOutsideRange {
        first: u8,
        last: u8,
    },
    RootBusRepeated,
    /// A host bridge's root bus that a bridge already leads to: x86 Linux
    /// (`pci_acpi_scan_root`) reuses that bus; no second root.
    RootBusBelowBridge {
        bridge: Bdf,
    },
    /// Vendor 0x0001 (Configuration Request Retry Status) after waiting
    /// `waited_ms`, as `pci_bus_wait_crs` does.
    NotReady {
        waited_ms: u32,
    },
    UnknownHeaderType(u8),
    Capability(CapError),
    BridgeNotConfigured,
    SecondaryNotAbove {
        secondary: u8,
    },
    SubordinateBelowSecondary {
        secondary: u8,
        subordinate: u8,
    },
    OutsideBusRange {
        secondary: u8,
        subordinate: u8,
        first: u8,
        last: u8,
    },
    OutsideParentRange {
        secondary: u8,
        subordinate: u8,
        parent: Bdf,
    },
    OverlapsBridge {
        secondary: u8,
        subordinate: u8,
        other: Bdf,
    },
    /// Not fatal: the bridge is followed and the root bus inside its range,
    /// scanned before it, stays a root bus (Linux reuses it).
    OverlapsRootBus {
        secondary: u8,
        subordinate: u8,
        root: u8,
    },
    AlreadyScanned {
        bus: u8,
    },
    /// Followed anyway: Linux would reconfigure such a bridge.
    PrimaryMismatch {
        primary: u8,
    },
    AriChainNotIncreasing {
        next: u8,
    },
}

impl fmt::Display for EnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EnumErrorKind::*;
        let b = self.bdf;
        match &self.kind {
            RootBusOutsideRange { first, last } => {
                write!(f, "root bus {:02x}: outside the ECAM bus range {first:02x}-{last:02x}; not scanned", b.bus)
            }
            RootBusRepeated => write!(f, "root bus {:02x}: listed twice; scanned once", b.bus),
            RootBusBelowBridge { bridge } => write!(
                f,
                "root bus {:02x}: a host bridge's bus number is already the secondary bus of bridge {bridge}; \
                 kept below that bridge as Linux does (pci_acpi_scan_root reuses the bus), not a second root",
                b.bus
            ),
            NotReady { waited_ms } => {
                write!(f, "{b}: not ready after {waited_ms} ms (Configuration Request Retry); giving up, as Linux does")
            }
            UnknownHeaderType(t) => write!(f, "{b}: unknown header type {t:#04x}; ignored as Linux does"),
            Capability(e) => write!(f, "{b}: {e}"),
            BridgeNotConfigured => {
                write!(f, "{b}: bridge has no bus numbers from firmware; not scanned (we never reprogram)")
            }
            SecondaryNotAbove { secondary } => write!(
                f,
                "{b}: bridge secondary bus {secondary:02x} is not above its own bus {:02x}; not scanned",
                b.bus
            ),
            SubordinateBelowSecondary { secondary, subordinate } => write!(
                f,
                "{b}: bridge subordinate bus {subordinate:02x} is below its secondary bus {secondary:02x}; not scanned"
            ),
            OutsideBusRange { secondary, subordinate, first, last } => write!(
                f,
                "{b}: bridge buses {secondary:02x}-{subordinate:02x} leave the ECAM range {first:02x}-{last:02x}; not scanned"
            ),
            OutsideParentRange { secondary, subordinate, parent } => write!(
                f,
                "{b}: bridge buses {secondary:02x}-{subordinate:02x} are not inside those of its parent {parent}; not scanned"
            ),
            OverlapsBridge { secondary, subordinate, other } => {
                write!(f, "{b}: bridge buses {secondary:02x}-{subordinate:02x} overlap those of {other}; not scanned")
            }
            OverlapsRootBus { secondary, subordinate, root } => write!(
                f,
                "{b}: bridge buses {secondary:02x}-{subordinate:02x} include root bus {root:02x}; \
                 followed, bus {root:02x} stays a root bus (Linux reuses it)"
            ),
            AlreadyScanned { bus } => write!(f, "{b}: bridge leads to bus {bus:02x}, already scanned; not followed"),
            PrimaryMismatch { primary } => write!(
                f,
                "{b}: bridge primary bus register {primary:02x} differs from its bus {:02x}; followed anyway",
                b.bus
            ),
            AriChainNotIncreasing { next } => {
                write!(f, "{b}: ARI next function {next} does not increase; chain cut (as Linux)")
            }
        }
    }
}

/// What x86 Linux's peer-bus probe (`pcibios_fixup_peer_bridges`) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerProbe {
    /// `pcibios_last_bus`: bus numbers `0..=last_bus` were considered
    /// (none when it is 0).
    pub last_bus: u8,
    /// Bus numbers without a bus that were probed.
    pub buses_probed: u16,
    /// Bus numbers without a bus outside the ECAM window: not readable.
    pub outside_ecam: u16,
    /// Config reads the probe made (16-bit vendor ids).
    pub reads: u32,
    /// Buses that answered: each became a root bus, in this order.
    pub discovered: Vec<u8>,
}

/// The result of enumeration.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub segment: u16,
    /// Functions in Linux `device_add` order.
    pub functions: Vec<Function>,
    /// Buses in scan order.
    pub buses: Vec<Bus>,
    pub errors: Vec<EnumError>,
    /// The peer-bus probe, when it ran.
    pub peer_probe: Option<PeerProbe>,
}

impl Topology {
    /// Index of the function at `bdf`.
    pub fn find(&self, bdf: Bdf) -> Option<usize> {
        self.functions.iter().position(|f| f.bdf == bdf)
    }
    /// Linux `pci_upstream_bridge`: the bridge above `index`.
    pub fn upstream_bridge(&self, index: usize) -> Option<usize> {
        self.functions.get(index).and_then(|f| f.parent)
    }
    /// Whether `index` is `ancestor` or below it in the tree (the parent
    /// links the scan made; bounded by the function count, so a corrupted
    /// link cannot loop).
    pub fn is_at_or_below(&self, mut index: usize, ancestor: usize) -> bool {
        for _ in 0..=self.functions.len() {
            if index == ancestor {
                return true;
            }
            match self.upstream_bridge(index) {
                Some(p) => index = p,
                None => return false,
            }
        }
        false
    }
    /// Whether `a` and `b` sit on the same bus (Linux `a->bus == b->bus`).
    pub fn same_bus(&self, a: usize, b: usize) -> bool {
        let (fa, fb) = (&self.functions[a], &self.functions[b]);
        fa.bdf.segment == fb.bdf.segment && fa.bdf.bus == fb.bdf.bus
    }
}
