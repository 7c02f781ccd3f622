//! Depth-first enumeration in Linux's `device_add` order, keeping the bus
//! numbers firmware assigned (drivers/pci/probe.c `pci_scan_child_bus_extend`,
//! `pci_scan_slot`, `pci_scan_single_device`, `pci_setup_device`).
//!
//! Order: for each root bus in the order given, that bus's functions in
//! devfn order, then each bridge's secondary bus in turn, depth first. The
//! walk uses an explicit stack and scans each bus number at most once, so a
//! malformed topology cannot make it loop or recurse deeply.

use alloc::vec::Vec;
use core::ops::RangeInclusive;

use crate::caps::{PcieType, read_function_caps};
use crate::config::{Bdf, ConfigSpace};
use crate::devfn_mask::DevfnMask;
use crate::dma_alias_fixups::apply_dma_alias_fixups;
use crate::regs::*;
use crate::topology::{BridgeBuses, Bus, DevFlags, EnumError, EnumErrorKind, Function, PeerProbe, Topology};

/// Who owns a bus number, for overlap checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    Free,
    Root,
    Bridge(usize),
}

struct Scanner<'a> {
    cfg: &'a mut dyn ConfigSpace,
    topo: Topology,
    range: RangeInclusive<u8>,
    claims: [Claim; 256],
    /// For each root bus, who claimed its number before it became a root
    /// (a bridge whose range holds it, or nobody): bridges on that root bus
    /// may use that bridge's numbers, as Linux does not check them.
    root_owner: [Claim; 256],
    scanned: [bool; 256],
}

/// Enumerate segment `segment` from `root_buses` (the host bridges' root
/// buses in ACPI namespace order), reading only buses inside `bus_range`
/// (the ECAM window). Faults are collected in `Topology::errors`;
/// enumeration always finishes.
///
/// Config writes: only ARI Forwarding Enable on a downstream port whose
/// device 0 has an ARI capability (Linux `pci_configure_ari`). Bus numbers
/// are never written.
pub fn enumerate(
    cfg: &mut dyn ConfigSpace,
    segment: u16,
    root_buses: &[u8],
    bus_range: RangeInclusive<u8>,
) -> Topology {
    enumerate_with_peer_probe(cfg, segment, root_buses, bus_range, None)
}

/// [`enumerate`], then, when `last_bus` is given, x86 Linux's probe for
/// peer buses over buses `0..=last_bus` (see `fixup_peer_bridges`; the
/// outcome is `Topology::peer_probe`).
///
/// Each root bus is scanned in turn, as `acpi_pci_root_add` scans it when
/// its host bridge is added. A root bus whose number is already a bus (a
/// bridge scanned before reached it: an expander's `bus_nr` inside a
/// bridge's secondary..subordinate range) is not made a second root: x86
/// `pci_acpi_scan_root` finds it with `pci_find_bus` and reuses it, so the
/// bridge keeps its subtree. That is reported as an error.
pub fn enumerate_with_peer_probe(
    cfg: &mut dyn ConfigSpace,
    segment: u16,
    root_buses: &[u8],
    bus_range: RangeInclusive<u8>,
    last_bus: Option<u8>,
) -> Topology {
    let mut s = Scanner {
        cfg,
        topo: Topology { segment, ..Topology::default() },
        range: bus_range,
        claims: [Claim::Free; 256],
        root_owner: [Claim::Free; 256],
        scanned: [false; 256],
    };
    for &root in root_buses {
        let bdf = Bdf::new(segment, root, 0, 0);
        if !s.range.contains(&root) {
            let (first, last) = (*s.range.start(), *s.range.end());
            s.error(bdf, EnumErrorKind::RootBusOutsideRange { first, last });
        } else if s.scanned[usize::from(root)] {
            let below = s.topo.buses.iter().find(|b| b.number == root).and_then(|b| b.bridge);
            let kind = match below {
                Some(i) => EnumErrorKind::RootBusBelowBridge { bridge: s.topo.functions[i].bdf },
                None => EnumErrorKind::RootBusRepeated,
            };
            s.error(bdf, kind);
        } else {
            s.scan_root(root);
        }
    }
    if let Some(last) = last_bus {
        s.fixup_peer_bridges(last);
    }
    s.topo
}

/// Slots probed per bus by the peer-bus probe (function 0 of each).
pub const PEER_PROBE_SLOTS: u8 = 32;

/// Linux's CRS timeout: `pci_scan_device` passes 60 s to
/// `pci_bus_read_dev_vendor_id`.
pub const CRS_TIMEOUT_MS: u32 = 60 * 1000;

/// What the Vendor/Device ID dword says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorId {
    Present(u32),
    Absent,
    /// Still Configuration Request Retry after waiting `waited_ms`.
    NotReady {
        waited_ms: u32,
    },
}

/// Linux `pci_bus_generic_read_dev_vendor_id` with `pci_bus_wait_crs`
/// (drivers/pci/probe.c). Absent: all ones, 0, 0x0000ffff or 0xffff0000
/// ("some broken boards return 0 or ~0 if a slot is empty"); anything else
/// is a device. A vendor of 0x0001 is a Configuration Request Retry
/// completion: re-read after 1, 2, 4, ... ms while the next delay does not
/// exceed `timeout_ms` (Linux: 60 s, so 16 waits, 65.5 s, 17 reads at
/// most); still retrying then, the function is given up. With a timeout of
/// 0 there is no wait.
pub fn pci_bus_read_dev_vendor_id(cfg: &mut dyn ConfigSpace, bdf: Bdf, timeout_ms: u32) -> VendorId {
    let absent = |l: u32| l == u32::MAX || l == 0 || l == 0x0000_ffff || l == 0xffff_0000;
    let crs = |l: u32| l & 0xffff == 0x0001;
    let mut l = cfg.read32(bdf, PCI_VENDOR_ID);
    if absent(l) {
        return VendorId::Absent;
    }
    let mut delay: u32 = 1;
    let mut waited: u32 = 0;
    // Bounded twice: by the timeout, as in Linux, and by the 32 doublings a
    // u32 delay can take (a timeout near u32::MAX would otherwise never be
    // exceeded once the delay saturates).
    for _ in 0..32 {
        if !crs(l) {
            break;
        }
        if delay > timeout_ms {
            return VendorId::NotReady { waited_ms: waited };
        }
        cfg.crs_delay_ms(delay);
        waited = waited.saturating_add(delay);
        delay = delay.saturating_mul(2);
        l = cfg.read32(bdf, PCI_VENDOR_ID);
    }
    if crs(l) {
        return VendorId::NotReady { waited_ms: waited };
    }
    // Linux returns the dword as read after the wait without re-checking it.
    VendorId::Present(l)
}

/// Linux 6.1 `set_pcie_port_type` (drivers/pci/probe.c): a port that
/// claims Downstream below a downstream port (root port, downstream port,
/// PCI-to-PCIe bridge) "must be" Upstream, and one that claims Upstream
/// below an Upstream port "must be" Downstream. The parent's type is its
/// already corrected one; a conventional parent reads as type 0.
///
/// **Linux 6.1's bug, reproduced:** the correction does
/// `pcie_flags_reg |= PCI_EXP_TYPE_UPSTREAM` (or `_DOWNSTREAM`) without
/// the `<< 4`, so the type field stays 0 and the corrected port is a PCIe
/// **endpoint** to the rest of Linux 6.1: no port driver, no ACS needed on
/// it as a single function, its bus scanned in full, and its child bus
/// `PCI_BUS_FLAGS_NO_EXTCFG` (see [`pci_bridge_child_ext_cfg_accessible`]).
/// Returns the type Linux 6.1 uses and, when the bug applied, the type it
/// meant to set. (Fixed upstream with `FIELD_PREP`, after 6.1.)
pub fn set_pcie_port_type(reported: PcieType, parent: Option<&Function>) -> (PcieType, Option<PcieType>) {
    let Some(parent) = parent else {
        return (reported, None);
    };
    let parent_type = parent.pcie_type.unwrap_or(PcieType::Endpoint);
    let meant = match reported {
        PcieType::Downstream if parent_type.is_downstream_port() => PcieType::Upstream,
        PcieType::Upstream if parent_type == PcieType::Upstream => PcieType::Downstream,
        other => return (other, None),
    };
    (PcieType::Endpoint, Some(meant))
}

/// Linux `pci_bridge_child_ext_cfg_accessible`: whether extended config
/// space is reachable on the bus below `bridge`. Not when the bridge's own
/// bus lacks it; yes below a root port or a switch port (by its type as
/// Linux 6.1 sees it, so not below a port [`set_pcie_port_type`] turned into
/// an endpoint); below any other bridge only with PCI-X Mode 2.
pub fn pci_bridge_child_ext_cfg_accessible(cfg: &mut dyn ConfigSpace, bridge: &Function) -> bool {
    if bridge.bus_no_extcfg {
        return false;
    }
    if matches!(bridge.pcie_type, Some(PcieType::RootPort | PcieType::Upstream | PcieType::Downstream)) {
        return true;
    }
    let Some(pos) = bridge.caps.find(PCI_CAP_ID_PCIX) else {
        return false;
    };
    cfg.read32(bridge.bdf, pos + PCI_X_STATUS) & (PCI_X_STATUS_266MHZ | PCI_X_STATUS_533MHZ) != 0
}

impl Scanner<'_> {
    fn error(&mut self, bdf: Bdf, kind: EnumErrorKind) {
        self.topo.errors.push(EnumError { bdf, kind });
    }

    /// A new root bus and everything below it.
    fn scan_root(&mut self, root: u8) {
        let n = usize::from(root);
        self.root_owner[n] = self.claims[n];
        self.claims[n] = Claim::Root;
        self.scan_hierarchy(root);
    }

    /// Linux `pcibios_fixup_peer_bridges` (arch/x86/pci/legacy.c): with
    /// MMCONFIG, `pcibios_last_bus` is the end bus of the last segment-0
    /// MCFG region (arch/x86/pci/mmconfig-shared.c `__pci_mmcfg_init`); when
    /// it is above 0, every bus number `0..=last` that has no bus yet
    /// (`pci_find_bus`) is probed by `pcibios_scan_specific_bus`: the
    /// 16-bit vendor id of function 0 in each of the 32 slots, stopping at
    /// the first that is neither 0x0000 nor 0xffff; that bus becomes a new
    /// root bus ("PCI: Discovered peer bus NN") and is scanned at once, so
    /// buses below it are not probed again. Linux reads bus numbers outside
    /// the ECAM window through port I/O; here they cannot be read and are
    /// counted as skipped.
    ///
    /// It finds buses firmware numbered but Linux's scan never reaches:
    /// behind a bridge at a device number above 0 below a PCIe port (only
    /// device 0 is scanned there), behind a bridge Linux refused, or of a
    /// host bridge ACPI does not declare.
    fn fixup_peer_bridges(&mut self, last: u8) {
        let mut probe = PeerProbe { last_bus: last, ..PeerProbe::default() };
        if last > 0 {
            for n in 0..=last {
                if self.scanned[usize::from(n)] {
                    continue;
                }
                if !self.range.contains(&n) {
                    probe.outside_ecam += 1;
                    continue;
                }
                probe.buses_probed += 1;
                for slot in 0..PEER_PROBE_SLOTS {
                    let vendor = self.cfg.read16(Bdf::new(self.topo.segment, n, slot, 0), PCI_VENDOR_ID);
                    probe.reads += 1;
                    if vendor != 0 && vendor != 0xffff {
                        probe.discovered.push(n);
                        self.scan_root(n);
                        break;
                    }
                }
            }
        }
        self.topo.peer_probe = Some(probe);
    }

    /// One root bus and everything below it, depth first.
    fn scan_hierarchy(&mut self, root: u8) {
        let mut stack: Vec<(u8, Option<usize>)> = Vec::new();
        stack.push((root, None));
        while let Some((bus, parent)) = stack.pop() {
            let added = self.scan_bus(bus, parent);
            let mut children: Vec<(u8, Option<usize>)> = Vec::new();
            for i in added {
                if self.topo.functions[i].is_bridge()
                    && let Some(sec) = self.accept_bridge(i)
                {
                    children.push((sec, Some(i)));
                }
            }
            // Reversed so the first bridge's subtree comes out first.
            stack.extend(children.into_iter().rev());
        }
    }

    /// Linux `pci_scan_child_bus_extend`, first half: this bus's functions.
    fn scan_bus(&mut self, bus: u8, parent: Option<usize>) -> core::ops::Range<usize> {
        self.scanned[usize::from(bus)] = true;
        // pci_alloc_child_bus: the parent bus's flags, plus NO_EXTCFG when
        // the bridge does not pass extended config space through.
        let no_extcfg = parent.is_some_and(|p| {
            let bridge = &self.topo.functions[p];
            !pci_bridge_child_ext_cfg_accessible(self.cfg, bridge)
        });
        self.topo.buses.push(Bus { number: bus, bridge: parent, no_extcfg });
        let start = self.topo.functions.len();
        // Linux `only_one_child`: a PCIe downstream port's link leads to
        // device 0 only (PCIe r3.1 §7.3.1).
        let only_one_child =
            parent.and_then(|p| self.topo.functions[p].pcie_type).is_some_and(PcieType::is_downstream_port);
        let mut ari_enabled = false;
        for slot in 0..32u8 {
            if only_one_child && slot > 0 {
                break;
            }
            self.scan_slot(bus, slot, parent, no_extcfg, &mut ari_enabled);
        }
        start..self.topo.functions.len()
    }

    /// Linux `pci_scan_slot` with `next_fn`/`next_ari_fn`.
    fn scan_slot(&mut self, bus: u8, slot: u8, parent: Option<usize>, no_extcfg: bool, ari_enabled: &mut bool) {
        let mut func: u16 = 0;
        loop {
            let devfn = (u16::from(slot) << 3) + func;
            let Ok(devfn) = u8::try_from(devfn) else {
                return;
            };
            let dev = self.scan_single(bus, devfn, parent, no_extcfg);
            match dev {
                Some(i) if func > 0 => self.topo.functions[i].multifunction = true,
                Some(_) => {}
                // Function 0 is required (no hypervisor passes single
                // functions through here).
                None if func == 0 => return,
                None => {}
            }
            if devfn == 0
                && let Some(i) = dev
            {
                *ari_enabled = self.configure_ari(i);
            }
            let next = if *ari_enabled {
                self.next_ari_fn(dev, func)
            } else if func >= 7 || dev.is_some_and(|i| !self.topo.functions[i].multifunction) {
                None
            } else {
                Some(func + 1)
            };
            match next {
                Some(n) => func = n,
                None => return,
            }
        }
    }

    /// Linux `next_ari_fn`: follow the ARI chain; stop on a missing
    /// function, a missing capability or a chain that does not increase.
    fn next_ari_fn(&mut self, dev: Option<usize>, func: u16) -> Option<u16> {
        let f = &self.topo.functions[dev?];
        let next = f.caps.ari?.next_function;
        if u16::from(next) <= func {
            if next != 0 {
                let bdf = f.bdf;
                self.error(bdf, EnumErrorKind::AriChainNotIncreasing { next });
            }
            return None;
        }
        Some(u16::from(next))
    }

    /// Linux `pci_configure_ari` for devfn 0: enable ARI forwarding on the
    /// parent port when both ends support it; returns whether it is on.
    fn configure_ari(&mut self, dev: usize) -> bool {
        let f = &self.topo.functions[dev];
        let Some(parent) = f.parent else { return false };
        if !f.is_pcie() {
            return false;
        }
        let has_ari = f.caps.ari.is_some();
        let p = &self.topo.functions[parent];
        let Some(pcie) = p.caps.pcie.filter(|c| c.ari_forwarding_supported()) else {
            return false;
        };
        let (bdf, reg) = (p.bdf, pcie.offset + PCI_EXP_DEVCTL2);
        let ctl = self.cfg.read16(bdf, reg);
        let wanted = if has_ari { ctl | PCI_EXP_DEVCTL2_ARI } else { ctl & !PCI_EXP_DEVCTL2_ARI };
        if wanted != ctl {
            self.cfg.write16(bdf, reg, wanted);
        }
        has_ari
    }

    /// Linux `pci_scan_device` + `pci_setup_device` + header fixups.
    fn scan_single(&mut self, bus: u8, devfn: u8, parent: Option<usize>, bus_no_extcfg: bool) -> Option<usize> {
        let bdf = Bdf::from_devfn(self.topo.segment, bus, devfn);
        let id = match pci_bus_read_dev_vendor_id(self.cfg, bdf, CRS_TIMEOUT_MS) {
            VendorId::Present(id) => id,
            VendorId::Absent => return None,
            VendorId::NotReady { waited_ms } => {
                self.error(bdf, EnumErrorKind::NotReady { waited_ms });
                return None;
            }
        };
        let class_rev = self.cfg.read32(bdf, PCI_CLASS_REVISION);
        let header = self.cfg.read8(bdf, PCI_HEADER_TYPE);
        let header_type = header & PCI_HEADER_TYPE_MASK;
        if header_type > PCI_HEADER_TYPE_CARDBUS {
            self.error(bdf, EnumErrorKind::UnknownHeaderType(header_type));
            return None;
        }
        let (caps, cfg_size, cap_errors) =
            read_function_caps(self.cfg, bdf, header_type, class_rev >> 8, bus_no_extcfg);
        for e in cap_errors {
            self.error(bdf, EnumErrorKind::Capability(e));
        }
        let bridge = (header_type != PCI_HEADER_TYPE_NORMAL).then(|| BridgeBuses {
            primary: self.cfg.read8(bdf, PCI_PRIMARY_BUS),
            secondary: self.cfg.read8(bdf, PCI_SECONDARY_BUS),
            subordinate: self.cfg.read8(bdf, PCI_SUBORDINATE_BUS),
        });
        let (subsystem_vendor, subsystem_device) = if header_type == PCI_HEADER_TYPE_NORMAL {
            (self.cfg.read16(bdf, PCI_SUBSYSTEM_VENDOR_ID), self.cfg.read16(bdf, PCI_SUBSYSTEM_ID))
        } else {
            (0, 0)
        };
        let parent_fn = parent.map(|p| &self.topo.functions[p]);
        let corrected = caps.pcie.map(|c| set_pcie_port_type(c.port_type, parent_fn));
        let (pcie_type, port_type_bug) = (corrected.map(|c| c.0), corrected.and_then(|c| c.1));
        let mut f = Function {
            bdf,
            vendor: (id & 0xffff) as u16,
            device: (id >> 16) as u16,
            class: class_rev >> 8,
            revision: (class_rev & 0xff) as u8,
            header_type,
            multifunction: header & PCI_HEADER_TYPE_MFD != 0,
            subsystem_vendor,
            subsystem_device,
            pcie_type,
            port_type_bug,
            cfg_size,
            bus_no_extcfg,
            caps,
            bridge,
            secondary_scanned: false,
            parent,
            is_root_bus: parent.is_none(),
            dev_flags: DevFlags::empty(),
            dma_alias_mask: DevfnMask::new(),
            fixups: Vec::new(),
        };
        apply_dma_alias_fixups(&mut f, parent_fn);
        self.topo.functions.push(f);
        Some(self.topo.functions.len() - 1)
    }

    /// Check a bridge's firmware-assigned bus numbers; claim them and
    /// return the secondary bus when sane.
    fn accept_bridge(&mut self, i: usize) -> Option<u8> {
        use EnumErrorKind::*;
        let f = &self.topo.functions[i];
        let (bdf, parent) = (f.bdf, f.parent);
        let b = f.bridge?;
        let (sec, sub) = (b.secondary, b.subordinate);
        let fault = if sec == 0 && sub == 0 {
            Some(BridgeNotConfigured)
        } else if sec <= bdf.bus {
            Some(SecondaryNotAbove { secondary: sec })
        } else if sub < sec {
            Some(SubordinateBelowSecondary { secondary: sec, subordinate: sub })
        } else if !self.range.contains(&sec) || !self.range.contains(&sub) {
            let (first, last) = (*self.range.start(), *self.range.end());
            Some(OutsideBusRange { secondary: sec, subordinate: sub, first, last })
        } else {
            self.range_fault(i, parent, sec, sub)
        };
        if let Some(kind) = fault {
            self.error(bdf, kind);
            return None;
        }
        if b.primary != bdf.bus {
            self.error(bdf, PrimaryMismatch { primary: b.primary });
        }
        // A root bus inside the range (scanned before this bridge): Linux
        // follows the bridge and, reaching that bus, reuses it
        // (`pci_scan_bridge_extend` finds it with `pci_find_bus`); it stays
        // a root bus. Reported, not fatal.
        if let Some(root) = (sec..=sub).find(|&n| self.claims[usize::from(n)] == Claim::Root) {
            self.error(bdf, OverlapsRootBus { secondary: sec, subordinate: sub, root });
        }
        for n in sec..=sub {
            if self.claims[usize::from(n)] != Claim::Root {
                self.claims[usize::from(n)] = Claim::Bridge(i);
            }
        }
        self.topo.functions[i].secondary_scanned = true;
        Some(sec)
    }

    /// The root bus function `i` sits below.
    fn root_bus_of(&self, mut i: usize) -> u8 {
        while let Some(p) = self.topo.functions[i].parent {
            i = p;
        }
        self.topo.functions[i].bdf.bus
    }

    /// Whether `sec..=sub` fits inside the parent's range and collides with
    /// no sibling's range. Root buses inside it, and the ranges of bridges
    /// below them, are no collision: Linux reuses those buses.
    fn range_fault(&self, bridge: usize, parent: Option<usize>, sec: u8, sub: u8) -> Option<EnumErrorKind> {
        if let Some(p) = parent {
            let pf = &self.topo.functions[p];
            if let Some(pb) = pf.bridge
                && (sec <= pb.secondary || sub > pb.subordinate)
            {
                return Some(EnumErrorKind::OutsideParentRange { secondary: sec, subordinate: sub, parent: pf.bdf });
            }
        }
        let expected = match parent {
            Some(p) => Claim::Bridge(p),
            None => self.root_owner[usize::from(self.topo.functions[bridge].bdf.bus)],
        };
        for n in sec..=sub {
            match self.claims[usize::from(n)] {
                c if c == expected => {}
                Claim::Root => {}
                Claim::Bridge(o) if (sec..=sub).contains(&self.root_bus_of(o)) => {}
                Claim::Bridge(o) => {
                    let other = self.topo.functions[o].bdf;
                    return Some(EnumErrorKind::OverlapsBridge { secondary: sec, subordinate: sub, other });
                }
                Claim::Free => {}
            }
        }
        if self.scanned[usize::from(sec)] {
            return Some(EnumErrorKind::AlreadyScanned { bus: sec });
        }
        None
    }
}
