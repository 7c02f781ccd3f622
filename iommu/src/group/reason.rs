//! Why a device is in its group, in words a reader can check against the
//! rule in Linux that put it there.

use core::fmt;

use alloc::vec::Vec;
use pci::acs::AcsFail;
use pci::caps::PcieType;
use pci::{Bdf, Topology};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// New group for a device on a root bus: nothing above it can merge it.
    OwnRootBus,
    /// New group: every bridge from the one above to the root passes
    /// `pci_acs_path_enabled` with `REQ_ACS_FLAGS`.
    OwnAcsPathComplete,
    /// New group although the climb stopped at an ungrouped device above
    /// (only with a probe order that puts children before bridges).
    OwnBelowUngrouped { top: Bdf },
    /// The alias walk reached a bridge that substitutes its requester id
    /// and already has a group.
    BehindBridge { bridge: Bdf, bridge_kind: &'static str, requester_id: Bdf, pcie_bridge_alias_quirk: bool },
    /// The ACS climb stopped at `joined`, which already has a group, because
    /// the path from it to the root fails at `failed_at`.
    AcsPathBroken { joined: Bdf, joined_kind: &'static str, failed_at: Bdf, failed_kind: &'static str, why: AcsFail },
    /// `get_pci_alias_group`: a DMA alias (quirk) of a grouped device.
    DmaAlias { with: Bdf, quirk: Option<&'static str> },
    /// `get_pci_function_alias_group`: another function of the same slot
    /// (devfn >> 3) and neither isolates itself.
    SharesSlot { with: Bdf, why: AcsFail },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnRootBus => f.write_str("own group (on a root bus; no alias or non-isolated sibling)"),
            Self::OwnAcsPathComplete => f.write_str("own group (isolated: ACS path to root complete)"),
            Self::OwnBelowUngrouped { top } => {
                write!(f, "own group (not isolated up to {top}, which had no group yet)")
            }
            Self::BehindBridge { bridge, bridge_kind, requester_id, pcie_bridge_alias_quirk } => {
                if requester_id == bridge {
                    write!(f, "{bridge_kind} {bridge} forwards its requests as its own")
                } else if *pcie_bridge_alias_quirk {
                    write!(f, "behind {bridge_kind} {bridge} (PCIe bridge alias quirk), requester id {requester_id}")
                } else {
                    write!(f, "behind {bridge_kind} {bridge}, requester id {requester_id}")
                }
            }
            Self::AcsPathBroken { joined, joined_kind, failed_at, failed_kind, why } => {
                if joined == failed_at {
                    write!(f, "{failed_kind} {failed_at} above it {}", Verb(why))
                } else {
                    write!(
                        f,
                        "joins {joined_kind} {joined}: ACS path to root breaks at {failed_kind} {failed_at}, which {}",
                        Verb(why)
                    )
                }
            }
            Self::DmaAlias { with, quirk: Some(q) } => write!(f, "DMA alias quirk ({q}) with {with}"),
            Self::DmaAlias { with, quirk: None } => write!(f, "DMA alias of {with}"),
            Self::SharesSlot { with, why } => {
                write!(f, "shares slot {:02x}:{:02x} with {with}; no ACS ({why})", with.bus, with.device)
            }
        }
    }
}

/// An `AcsFail` phrased after a device name: "has no ACS capability".
struct Verb<'a>(&'a AcsFail);

impl fmt::Display for Verb<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AcsFail::NoAcsCap => f.write_str("has no ACS capability"),
            AcsFail::NotPcie => f.write_str("is conventional PCI (no ACS)"),
            AcsFail::NeverAcs(t) => write!(f, "is a {t} (ACS never applies)"),
            AcsFail::Quirk(q) => write!(f, "is not isolated (ACS quirk {})", q.name()),
            AcsFail::EndNotOnPath => f.write_str("does not lead to the root"),
            missing @ AcsFail::Missing { .. } => write!(f, "{missing}"),
        }
    }
}

/// A Linux 6.1 rule outside `pci_device_group` that shaped where a member
/// landed: it changed how a device on the member's path to the root reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleNote {
    /// `set_pcie_port_type`'s 6.1 bug: the port meant to be corrected to
    /// `meant` reads as a PCIe endpoint (no ACS needed as a single
    /// function; its bus scanned in full; its child bus NO_EXTCFG).
    PortTypeBug { port: Bdf, claimed: PcieType, meant: PcieType },
    /// `pci_cfg_space_size`: a PCIe function on a bus flagged
    /// `PCI_BUS_FLAGS_NO_EXTCFG` below `bridge` has 256 bytes of config
    /// space, so Linux sees no ACS (or any extended) capability.
    NoExtCfg { function: Bdf, bridge: Bdf },
    /// `pci_quirk_enable_intel_pch_acs` ran on this PCH root port (RCBA
    /// UPDCR and MPC), so it counts as isolated without an ACS capability.
    IntelPchAcs { port: Bdf },
    /// x86 `pcibios_fixup_peer_bridges` found this root bus: no bridge
    /// Linux scanned leads to it.
    PeerBus { bus: u8 },
    /// A host bridge's root bus that `bridge` already leads to: x86
    /// `pci_acpi_scan_root` reuses the bus, so it stays below the bridge.
    RootBusReused { bus: u8, bridge: Bdf },
}

impl fmt::Display for RuleNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PortTypeBug { port, claimed, meant } => write!(
                f,
                "Linux 6.1 set_pcie_port_type bug: {port} claims {claimed}, was to be corrected to {meant}, \
                 reads as a PCIe endpoint"
            ),
            Self::NoExtCfg { function, bridge } => write!(
                f,
                "pci_cfg_space_size: {function} has 256 bytes of config space (PCI_BUS_FLAGS_NO_EXTCFG below \
                 {bridge}), so no ACS capability"
            ),
            Self::IntelPchAcs { port } => write!(
                f,
                "Intel PCH ACS quirk: {port} isolated through the chipset's RCBA (pci_quirk_enable_intel_pch_acs)"
            ),
            Self::PeerBus { bus } => write!(
                f,
                "bus {bus:02x} is a root bus found by x86's peer-bus probe (pcibios_fixup_peer_bridges): no bridge \
                 Linux scanned leads to it"
            ),
            Self::RootBusReused { bus, bridge } => write!(
                f,
                "bus {bus:02x} is also a host bridge's root bus; Linux reuses it below bridge {bridge} \
                 (pci_acpi_scan_root), not as a second root"
            ),
        }
    }
}

/// The [`RuleNote`]s for function `index`: every device from it up to its
/// root bus that the port-type bug, NO_EXTCFG or the Intel PCH ACS quirk
/// changed, and how the buses on that path were found when a root-bus rule
/// (the peer-bus probe, a reused host-bridge bus) decided it.
pub fn rule_notes(topo: &Topology, index: usize) -> Vec<RuleNote> {
    let mut notes = Vec::new();
    let mut at = Some(index);
    for _ in 0..=topo.functions.len() {
        let Some(i) = at else { break };
        let f = &topo.functions[i];
        if let (Some(meant), Some(cap)) = (f.port_type_bug, f.caps.pcie) {
            notes.push(RuleNote::PortTypeBug { port: f.bdf, claimed: cap.port_type, meant });
        }
        if f.dev_flags.contains(pci::topology::DevFlags::ACS_ENABLED_QUIRK) {
            notes.push(RuleNote::IntelPchAcs { port: f.bdf });
        }
        if f.bus_no_extcfg && f.is_pcie() {
            // The bridge that set the flag: the first one up whose own bus
            // still has extended config space.
            let mut b = f.parent;
            for _ in 0..=topo.functions.len() {
                match b {
                    Some(p) if topo.functions[p].bus_no_extcfg => b = topo.functions[p].parent,
                    _ => break,
                }
            }
            if let Some(p) = b {
                notes.push(RuleNote::NoExtCfg { function: f.bdf, bridge: topo.functions[p].bdf });
            }
        }
        for e in &topo.errors {
            if let pci::topology::EnumErrorKind::RootBusBelowBridge { bridge } = e.kind
                && e.bdf.bus == f.bdf.bus
            {
                notes.push(RuleNote::RootBusReused { bus: f.bdf.bus, bridge });
            }
        }
        if f.parent.is_none() && topo.peer_probe.as_ref().is_some_and(|p| p.discovered.contains(&f.bdf.bus)) {
            notes.push(RuleNote::PeerBus { bus: f.bdf.bus });
        }
        at = f.parent;
    }
    notes
}
