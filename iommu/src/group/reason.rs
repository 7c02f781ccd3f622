//! Why a device is in its group, in words a reader can check against the
//! rule in Linux that put it there.

use core::fmt;

use pci::Bdf;
use pci::acs::AcsFail;

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
