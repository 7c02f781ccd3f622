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
use crate::topology::{DevFlags, Function, Topology};

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
    /// `pci_quirk_enable_intel_pch_acs` ran: UPDCR (RCBA + 0x1014) written
    /// `(before, after)` when its peer-decode bits were set and BSPR allowed
    /// peer cycles; MPC (config 0xd8) written when IRBNCE was clear. The
    /// port is flagged `ACS_ENABLED_QUIRK`.
    IntelPchEnabled {
        updcr: Option<(u32, u32)>,
        mpc: Option<(u32, u32)>,
    },
}

/// The MMIO seam for chipset registers outside config space (the Intel
/// LPC bridge's Root Complex Base Address window). `None`/`false`: the
/// address cannot be mapped (Linux: `ioremap` failed).
pub trait ChipsetMmio {
    fn read32(&mut self, addr: u64) -> Option<u32>;
    fn write32(&mut self, addr: u64, value: u32) -> bool;
}

/// No chipset MMIO at all: every quirk that needs it fails, as in Linux
/// when `ioremap` fails.
pub struct NoChipsetMmio;

impl ChipsetMmio for NoChipsetMmio {
    fn read32(&mut self, _addr: u64) -> Option<u32> {
        None
    }
    fn write32(&mut self, _addr: u64, _value: u32) -> bool {
        false
    }
}

/// LPC bridge (00:1f.0 of the port's bus) RCBA register and its fields.
const INTEL_LPC_RCBA_REG: u16 = 0xf0;
const INTEL_LPC_RCBA_MASK: u32 = 0xffff_c000;
const INTEL_LPC_RCBA_ENABLE: u32 = 1 << 0;
/// Backbone Scratch Pad Register: peer cycles strapped off.
const INTEL_BSPR_REG: u64 = 0x1104;
const INTEL_BSPR_REG_BPNPD: u32 = 1 << 8;
const INTEL_BSPR_REG_BPPD: u32 = 1 << 9;
/// Upstream Peer Decode Configuration Register.
const INTEL_UPDCR_REG: u64 = 0x1014;
const INTEL_UPDCR_REG_MASK: u32 = 0x3f;
/// Root port Miscellaneous Port Configuration, Invalid Receive Bus Number
/// Check Enable (the equivalent of ACS SV).
const INTEL_MPC_REG: u16 = 0xd8;
const INTEL_MPC_REG_IRBNCE: u32 = 1 << 26;

/// Linux `pci_quirk_enable_intel_lpc_acs`: read RCBA from the LPC bridge
/// at devfn 31.0 of the port's bus; unless BSPR straps both posted and
/// non-posted peer cycles off, clear UPDCR's peer-decode bits (the
/// equivalent of ACS RR|CR|UF). Returns the UPDCR write, or why it failed.
fn pci_quirk_enable_intel_lpc_acs(
    cfg: &mut dyn ConfigSpace,
    mmio: &mut dyn ChipsetMmio,
    f: &Function,
) -> Result<Option<(u32, u32)>, &'static str> {
    let lpc = crate::config::Bdf::new(f.bdf.segment, f.bdf.bus, 31, 0);
    let rcba = cfg.read32(lpc, INTEL_LPC_RCBA_REG);
    if rcba & INTEL_LPC_RCBA_ENABLE == 0 {
        return Err("the LPC bridge's RCBA is not enabled");
    }
    let base = u64::from(rcba & INTEL_LPC_RCBA_MASK);
    let bspr = mmio.read32(base + INTEL_BSPR_REG).ok_or("the RCBA window cannot be mapped")?;
    let both = INTEL_BSPR_REG_BPNPD | INTEL_BSPR_REG_BPPD;
    if bspr & both == both {
        return Ok(None);
    }
    let updcr = mmio.read32(base + INTEL_UPDCR_REG).ok_or("the RCBA window cannot be mapped")?;
    if updcr & INTEL_UPDCR_REG_MASK == 0 {
        return Ok(None);
    }
    let after = updcr & !INTEL_UPDCR_REG_MASK;
    if !mmio.write32(base + INTEL_UPDCR_REG, after) {
        return Err("the RCBA window cannot be mapped");
    }
    Ok(Some((updcr, after)))
}

/// Linux `pci_quirk_enable_intel_rp_mpc_acs`: set MPC.IRBNCE if clear.
/// Debian's 6.1 writes the dword (the stable fix of the original word
/// write, which dropped bit 26).
fn pci_quirk_enable_intel_rp_mpc_acs(cfg: &mut dyn ConfigSpace, f: &Function) -> Option<(u32, u32)> {
    let mpc = cfg.read32(f.bdf, INTEL_MPC_REG);
    if mpc & INTEL_MPC_REG_IRBNCE != 0 {
        return None;
    }
    cfg.write32(f.bdf, INTEL_MPC_REG, mpc | INTEL_MPC_REG_IRBNCE);
    Some((mpc, mpc | INTEL_MPC_REG_IRBNCE))
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
///
/// `pci_quirk_enable_intel_pch_acs` (Intel 5- to 9-series, X79, X99 PCH
/// root ports without an ACS capability) reaches the chipset's RCBA through
/// `mmio`; when it fails Linux warns and counts the quirk as handled: no
/// flag, no standard enable, the port stays not isolated.
pub fn pci_enable_acs(cfg: &mut dyn ConfigSpace, mmio: &mut dyn ChipsetMmio, f: &mut Function) -> AcsEnableOutcome {
    if f.vendor == 0x8086 && intel_pch_acs_match(f) {
        return match pci_quirk_enable_intel_lpc_acs(cfg, mmio, f) {
            Err(reason) => AcsEnableOutcome::QuirkNotApplied { quirk: "intel_pch", reason },
            Ok(updcr) => {
                let mpc = pci_quirk_enable_intel_rp_mpc_acs(cfg, f);
                f.dev_flags |= DevFlags::ACS_ENABLED_QUIRK;
                AcsEnableOutcome::IntelPchEnabled { updcr, mpc }
            }
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
/// Without chipset MMIO, so the Intel PCH quirk fails (see
/// [`enable_acs_with`]).
pub fn enable_acs(cfg: &mut dyn ConfigSpace, topo: &mut Topology) -> Vec<AcsEnableRecord> {
    enable_acs_with(cfg, &mut NoChipsetMmio, topo)
}

/// [`enable_acs`] with chipset MMIO for the Intel PCH quirk.
pub fn enable_acs_with(
    cfg: &mut dyn ConfigSpace,
    mmio: &mut dyn ChipsetMmio,
    topo: &mut Topology,
) -> Vec<AcsEnableRecord> {
    (0..topo.functions.len())
        .map(|function| {
            let f = &mut topo.functions[function];
            let outcome = pci_enable_acs(cfg, mmio, f);
            let ctrl_readback = f.caps.acs.map(|acs| cfg.read16(f.bdf, acs.offset + PCI_ACS_CTRL));
            AcsEnableRecord { function, outcome, ctrl_readback }
        })
        .collect()
}
