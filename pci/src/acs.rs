//! Access Control Services as Linux 6.1 judges and enables them
//! (drivers/pci/pci.c `pci_acs_flags_enabled`, `pci_acs_enabled`,
//! `pci_acs_path_enabled`, `pci_std_enable_acs`, `pci_enable_acs`).
//!
//! Every judgement re-reads the ACS registers through `ConfigSpace`: the
//! control word written by [`enable_acs`] (or left by firmware) is what
//! counts, exactly as in Linux where the checks run at group time.

use alloc::vec::Vec;
use core::fmt;

use crate::acs_quirks::{AcsQuirk, intel_pch_acs_match, intel_spt_pch_acs_match, pci_dev_specific_acs_enabled};
use crate::caps::PcieType;
use crate::config::ConfigSpace;
use crate::regs::{AcsFlags, INTEL_SPT_ACS_CTRL, PCI_ACS_CAP, PCI_ACS_CTRL};
use crate::topology::{Function, Topology};

/// Why a function counts as providing the requested isolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcsPass {
    Quirk(AcsQuirk),
    /// Every requested flag is enabled or not implemented in the capability.
    FlagsEnabled,
    /// A single-function endpoint or upstream port (PCIe 3.0 §6.12.1.3).
    SingleFunction,
    /// A type for which Linux requires nothing.
    NotRequired(PcieType),
}

/// Why a function does not provide the requested isolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcsFail {
    Quirk(AcsQuirk),
    /// Conventional PCI: peers can always see each other's transactions.
    NotPcie,
    /// PCIe-to-PCI bridge, PCI-to-PCIe bridge or RC event collector:
    /// ACS never applies (PCIe 3.0 §6.12.1).
    NeverAcs(PcieType),
    NoAcsCap,
    /// Live registers: these requested flags are implemented but not enabled.
    Missing {
        missing: AcsFlags,
        cap: u16,
        ctrl: u16,
    },
    /// `pci_acs_path_enabled` reached a root bus before the `end` device.
    EndNotOnPath,
}

/// Flag names joined with '/', e.g. "RR/CR/UF".
pub struct FlagNames(pub AcsFlags);

impl fmt::Display for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, _)) in self.0.iter_names().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Display for AcsFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Quirk(q) => write!(f, "ACS quirk {} says not isolated", q.name()),
            Self::NotPcie => f.write_str("conventional PCI, no ACS"),
            Self::NeverAcs(t) => write!(f, "ACS never applies to a {t}"),
            Self::NoAcsCap => f.write_str("no ACS capability"),
            Self::Missing { missing, cap, ctrl } => {
                write!(f, "lacks ACS {} (cap {cap:#06x}, ctrl {ctrl:#06x})", FlagNames(missing))
            }
            Self::EndNotOnPath => f.write_str("end device not on the path to the root"),
        }
    }
}

impl fmt::Display for AcsPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Quirk(q) => write!(f, "ACS quirk {}", q.name()),
            Self::FlagsEnabled => f.write_str("ACS enabled"),
            Self::SingleFunction => f.write_str("single function, no ACS needed"),
            Self::NotRequired(t) => write!(f, "{t}, no ACS needed"),
        }
    }
}

/// Linux `pci_acs_flags_enabled`: flags the capability does not implement
/// count as enabled (except EC), so an ACS capability reading 0 passes.
pub fn pci_acs_flags_check(cfg: &mut dyn ConfigSpace, f: &Function, flags: AcsFlags) -> Result<(), AcsFail> {
    let acs = f.caps.acs.ok_or(AcsFail::NoAcsCap)?;
    let cap = cfg.read16(f.bdf, acs.offset + PCI_ACS_CAP);
    let wanted = flags & AcsFlags::from_bits_truncate(cap | AcsFlags::EC.bits());
    let ctrl = cfg.read16(f.bdf, acs.offset + PCI_ACS_CTRL);
    let missing = wanted - AcsFlags::from_bits_truncate(ctrl);
    if missing.is_empty() { Ok(()) } else { Err(AcsFail::Missing { missing, cap, ctrl }) }
}

/// Linux `pci_acs_flags_enabled`.
pub fn pci_acs_flags_enabled(cfg: &mut dyn ConfigSpace, f: &Function, flags: AcsFlags) -> bool {
    pci_acs_flags_check(cfg, f, flags).is_ok()
}

/// Linux `pci_acs_enabled`, with the reason: quirks first, then the rule
/// for the function's (corrected) PCIe type.
pub fn pci_acs_check(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    index: usize,
    flags: AcsFlags,
) -> Result<AcsPass, AcsFail> {
    let f = &topo.functions[index];
    if let Some((quirk, answer)) = pci_dev_specific_acs_enabled(cfg, f, flags) {
        return if answer { Ok(AcsPass::Quirk(quirk)) } else { Err(AcsFail::Quirk(quirk)) };
    }
    let t = f.pcie_type.ok_or(AcsFail::NotPcie)?;
    match t {
        PcieType::PcieBridge | PcieType::PciBridge | PcieType::RcEc => Err(AcsFail::NeverAcs(t)),
        // PCIe 3.0 §6.12.1.1: downstream and root ports, multifunction or not.
        PcieType::Downstream | PcieType::RootPort => pci_acs_flags_check(cfg, f, flags).map(|()| AcsPass::FlagsEnabled),
        // PCIe 3.0 §6.12.1.2: only multifunction devices must implement ACS.
        PcieType::Endpoint | PcieType::Upstream | PcieType::LegacyEndpoint | PcieType::RcEnd => {
            if f.multifunction {
                pci_acs_flags_check(cfg, f, flags).map(|()| AcsPass::FlagsEnabled)
            } else {
                Ok(AcsPass::SingleFunction)
            }
        }
        PcieType::Reserved(_) => Ok(AcsPass::NotRequired(t)),
    }
}

/// Linux `pci_acs_enabled`.
pub fn pci_acs_enabled(cfg: &mut dyn ConfigSpace, topo: &Topology, index: usize, flags: AcsFlags) -> bool {
    pci_acs_check(cfg, topo, index, flags).is_ok()
}

/// Where `pci_acs_path_enabled` failed: the device and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcsPathBreak {
    pub at: usize,
    pub why: AcsFail,
}

/// Linux `pci_acs_path_enabled(start, end, flags)`, with the first failing
/// device: every device from `start` up to `end` (or, with `None`, up to and
/// including the one on the root bus) must pass `pci_acs_enabled`.
pub fn pci_acs_path_check(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    start: usize,
    end: Option<usize>,
    flags: AcsFlags,
) -> Result<(), AcsPathBreak> {
    let mut pdev = start;
    // Parents precede children in `functions`, so the walk ends; the bound
    // is for a hand-built topology that breaks that rule.
    for _ in 0..=topo.functions.len() {
        pci_acs_check(cfg, topo, pdev, flags).map_err(|why| AcsPathBreak { at: pdev, why })?;
        let Some(parent) = topo.functions[pdev].parent else {
            return match end {
                None => Ok(()),
                Some(_) => Err(AcsPathBreak { at: pdev, why: AcsFail::EndNotOnPath }),
            };
        };
        if Some(pdev) == end {
            return Ok(());
        }
        pdev = parent;
    }
    Err(AcsPathBreak { at: pdev, why: AcsFail::EndNotOnPath })
}

/// Linux `pci_acs_path_enabled`.
pub fn pci_acs_path_enabled(
    cfg: &mut dyn ConfigSpace,
    topo: &Topology,
    start: usize,
    end: Option<usize>,
    flags: AcsFlags,
) -> bool {
    pci_acs_path_check(cfg, topo, start, end, flags).is_ok()
}

/// What enabling ACS did to one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcsEnableOutcome {
    NoAcsCap,
    /// Already had every bit it could get.
    Unchanged {
        ctrl: u32,
    },
    Written {
        before: u32,
        after: u32,
    },
    /// A device-specific enable quirk matched but could not run; as in
    /// Linux when such a quirk fails, the standard enable is skipped.
    QuirkNotApplied {
        quirk: &'static str,
        reason: &'static str,
    },
}

/// One line of the enable report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcsEnableRecord {
    pub function: usize,
    pub outcome: AcsEnableOutcome,
    /// `PCI_ACS_CTRL` read back from config space after enabling (what
    /// Linux leaves programmed and `lspci` shows), `None` without an ACS
    /// capability. It differs from the intended word when a control bit
    /// does not stick.
    pub ctrl_readback: Option<u16>,
}

/// The bits Linux enables: SV, RR, CR, UF where implemented. TB is added
/// only for `pci=noats`, external-facing or untrusted ports, which this
/// kernel never marks; EC and DT are never enabled.
const ENABLE_BITS: u16 = AcsFlags::SV.bits() | AcsFlags::RR.bits() | AcsFlags::CR.bits() | AcsFlags::UF.bits();

/// Linux `pci_std_enable_acs`: OR the implemented SV/RR/CR/UF bits into
/// control; never clear a bit; write only if something changes.
pub fn pci_std_enable_acs(cfg: &mut dyn ConfigSpace, f: &Function) -> AcsEnableOutcome {
    let Some(acs) = f.caps.acs else {
        return AcsEnableOutcome::NoAcsCap;
    };
    let cap = cfg.read16(f.bdf, acs.offset + PCI_ACS_CAP);
    let before = cfg.read16(f.bdf, acs.offset + PCI_ACS_CTRL);
    let after = before | (cap & ENABLE_BITS);
    if after == before {
        return AcsEnableOutcome::Unchanged { ctrl: u32::from(before) };
    }
    cfg.write16(f.bdf, acs.offset + PCI_ACS_CTRL, after);
    AcsEnableOutcome::Written { before: u32::from(before), after: u32::from(after) }
}

/// `pci_quirk_enable_intel_spt_pch_acs`: the standard policy on the dword
/// registers of the Sunrise Point erratum.
fn enable_intel_spt_pch_acs(cfg: &mut dyn ConfigSpace, f: &Function, offset: u16) -> AcsEnableOutcome {
    let cap = cfg.read32(f.bdf, offset + PCI_ACS_CAP);
    let before = cfg.read32(f.bdf, offset + INTEL_SPT_ACS_CTRL);
    let after = before | (cap & u32::from(ENABLE_BITS));
    if after == before {
        return AcsEnableOutcome::Unchanged { ctrl: before };
    }
    cfg.write32(f.bdf, offset + INTEL_SPT_ACS_CTRL, after);
    AcsEnableOutcome::Written { before, after }
}

/// Linux `pci_enable_acs` when ACS was requested (`pci_request_acs`, i.e.
/// an IOMMU is present): device-specific enable quirks
/// (`pci_dev_acs_ops[]`), otherwise `pci_std_enable_acs`.
/// `pci_disable_acs_redir` (the `disable_acs_redir=` parameter) is not
/// modelled: with no parameter it does nothing.
pub fn pci_enable_acs(cfg: &mut dyn ConfigSpace, f: &Function) -> AcsEnableOutcome {
    if f.vendor == 0x8086 && intel_pch_acs_match(f) {
        // The real quirk maps the LPC bridge's RCBA (MMIO) and clears
        // UPDCR; this crate has no MMIO. Linux treats a failing quirk as
        // handled: no flag, no standard enable, root port not isolated.
        return AcsEnableOutcome::QuirkNotApplied {
            quirk: "intel_pch",
            reason: "needs the LPC bridge's RCBA MMIO window; port stays not isolated",
        };
    }
    if f.vendor == 0x8086
        && intel_spt_pch_acs_match(f)
        && let Some(acs) = f.caps.acs
    {
        return enable_intel_spt_pch_acs(cfg, f, acs.offset);
    }
    pci_std_enable_acs(cfg, f)
}

/// Enable ACS on every function in `device_add` order, as Linux does for
/// each device in `pci_acs_init` before `device_add`. Call before grouping.
pub fn enable_acs(cfg: &mut dyn ConfigSpace, topo: &mut Topology) -> Vec<AcsEnableRecord> {
    (0..topo.functions.len())
        .map(|function| {
            let f = &topo.functions[function];
            let outcome = pci_enable_acs(cfg, f);
            let ctrl_readback = f.caps.acs.map(|acs| cfg.read16(f.bdf, acs.offset + PCI_ACS_CTRL));
            AcsEnableRecord { function, outcome, ctrl_readback }
        })
        .collect()
}
