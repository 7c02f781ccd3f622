//! The services of a PCIe port (Linux 6.1 drivers/pci/pcie/portdrv_core.c
//! `get_port_device_capability`), assuming the OS owns every feature
//! natively (`pcie_ports=native`; no `_OSC` is evaluated here).

use bitflags::bitflags;
use core::fmt;

use crate::caps::PcieType;
use crate::topology::Function;

bitflags! {
    /// `PCIE_PORT_SERVICE_*`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PortServices: u8 {
        /// Power Management Event (root ports, RC event collectors).
        const PME = 1 << 0;
        /// Advanced Error Reporting (every port with the AER capability;
        /// the AER driver itself serves root ports and RCECs).
        const AER = 1 << 1;
        /// Native hot-plug (root and downstream ports whose slot is
        /// hot-plug capable).
        const HP = 1 << 2;
        /// Downstream Port Containment (DPC capability, with AER).
        const DPC = 1 << 3;
        /// Link bandwidth notification (Link Capabilities LBNC).
        const BWNOTIF = 1 << 4;
    }
}

impl fmt::Display for PortServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names = [
            (Self::PME, "PME"),
            (Self::AER, "AER"),
            (Self::HP, "hotplug"),
            (Self::DPC, "DPC"),
            (Self::BWNOTIF, "bwnotif"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Link Capabilities: Link Bandwidth Notification Capability.
const PCI_EXP_LNKCAP_LBNC: u32 = 1 << 21;

/// Linux `get_port_device_capability` for a port `f`.
pub fn port_services(f: &Function) -> PortServices {
    let Some(t) = f.pcie_type else { return PortServices::empty() };
    let Some(pcie) = f.caps.pcie else { return PortServices::empty() };
    let mut s = PortServices::empty();
    let rp_or_dsp = matches!(t, PcieType::RootPort | PcieType::Downstream);
    let rp_or_rcec = matches!(t, PcieType::RootPort | PcieType::RcEc);
    // `dev->is_hotplug_bridge` comes from Slot Capabilities HPC.
    if rp_or_dsp && pcie.hotplug_capable() {
        s |= PortServices::HP;
    }
    // `dev->aer_cap`: every port with the capability (only `aer_probe`, the
    // AER service driver, is limited to root ports and RCECs).
    if f.caps.aer.is_some() {
        s |= PortServices::AER;
    }
    if rp_or_rcec {
        s |= PortServices::PME;
    }
    if f.caps.dpc.is_some() && s.contains(PortServices::AER) {
        s |= PortServices::DPC;
    }
    if rp_or_dsp && pcie.link_cap & PCI_EXP_LNKCAP_LBNC != 0 {
        s |= PortServices::BWNOTIF;
    }
    s
}

/// How a port's services are interrupted (`pcie_init_service_irqs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqMode {
    MsiX,
    Msi,
    Intx,
    /// No interrupt at all: only hot-plug survives, in poll mode
    /// (`capabilities &= PCIE_PORT_SERVICE_HP`).
    Polling,
}

impl fmt::Display for IrqMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IrqMode::MsiX => "MSI-X",
            IrqMode::Msi => "MSI",
            IrqMode::Intx => "INTx",
            IrqMode::Polling => "polling",
        })
    }
}

/// What a port offers for interrupts, read from its capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortIrqFacts {
    /// MSI-X Table Size (entries), when the port has MSI-X.
    pub msix_entries: Option<u16>,
    /// MSI Multiple Message Capable (vectors), when the port has MSI.
    pub msi_vectors: Option<u8>,
    /// Interrupt Pin is not 0.
    pub intx: bool,
    /// PCIe Capabilities Interrupt Message Number (PME, hot-plug, bwnotif).
    pub pcie_message: u8,
    /// Root Error Status bits 31:27 (AER).
    pub aer_message: u8,
    /// DPC Capability bits 4:0.
    pub dpc_message: u8,
}

/// The vectors `pcie_port_device_register` ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqPlan {
    pub mode: IrqMode,
    /// Vectors allocated (after the reallocation to max message + 1).
    pub vectors: u8,
    /// Per service, the vector index it uses (PME, hot-plug and bandwidth
    /// notification share one).
    pub pcie_vector: u8,
    pub aer_vector: u8,
    pub dpc_vector: u8,
    /// The services that keep running (all, or only hot-plug when there
    /// is no interrupt).
    pub services: PortServices,
}

/// `PCIE_PORT_MAX_MSI_ENTRIES`.
const PCIE_PORT_MAX_MSI_ENTRIES: u16 = 32;

/// Linux 6.1 `pcie_init_service_irqs` with `pcie_port_enable_irq_vec` and
/// `pcie_message_numbers`: allocate as many MSI-X (then MSI) vectors as
/// the port has (at most 32), find the highest Interrupt Message Number
/// the services use, fail over to INTx when it does not fit, reallocate
/// exactly max + 1; with no interrupt at all only hot-plug stays (poll
/// mode). xio3130 ports have MSI but no INTx; a port with neither polls.
pub fn irq_plan(services: PortServices, facts: PortIrqFacts) -> IrqPlan {
    let mut plan =
        IrqPlan { mode: IrqMode::Polling, vectors: 0, pcie_vector: 0, aer_vector: 0, dpc_vector: 0, services };
    if services.is_empty() {
        return plan;
    }
    let mut nvec: u16 = 0;
    if services.intersects(PortServices::PME | PortServices::HP | PortServices::BWNOTIF) {
        nvec = u16::from(facts.pcie_message) + 1;
    }
    if services.contains(PortServices::AER) {
        nvec = nvec.max(u16::from(facts.aer_message) + 1);
    }
    if services.contains(PortServices::DPC) {
        nvec = nvec.max(u16::from(facts.dpc_message) + 1);
    }
    let msi = match (facts.msix_entries, facts.msi_vectors) {
        (Some(n), _) if n > 0 => Some((IrqMode::MsiX, n.min(PCIE_PORT_MAX_MSI_ENTRIES))),
        (_, Some(n)) if n > 0 => Some((IrqMode::Msi, u16::from(n).min(PCIE_PORT_MAX_MSI_ENTRIES))),
        _ => None,
    };
    match msi {
        Some((mode, entries)) if nvec <= entries => {
            plan.mode = mode;
            plan.vectors = nvec as u8;
            plan.pcie_vector = facts.pcie_message;
            plan.aer_vector = facts.aer_message;
            plan.dpc_vector = facts.dpc_message;
        }
        _ if facts.intx => {
            plan.mode = IrqMode::Intx;
            plan.vectors = 1;
        }
        _ => plan.services &= PortServices::HP,
    }
    plan
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::enumerate;
    use crate::sim::{SimConfig, SimFn};

    fn services(f: SimFn) -> PortServices {
        let mut cfg = SimConfig::new();
        cfg.at(0, 2, 0, f);
        let topo = enumerate(&mut cfg, 0, &[0], 0..=255);
        port_services(&topo.functions[0])
    }

    #[test]
    fn root_port_services() {
        let rp = SimFn::new(0x1b36, 0x000c).class(0x060400).bridge(0, 1, 1).pcie(4);
        assert_eq!(services(rp.clone()), PortServices::PME, "a bare root port: PME only");
        assert_eq!(services(rp.clone().aer()), PortServices::PME | PortServices::AER);
        assert_eq!(services(rp.clone().aer().dpc()), PortServices::PME | PortServices::AER | PortServices::DPC);
        assert_eq!(services(rp.clone().dpc()), PortServices::PME, "DPC needs AER");
        assert_eq!(services(rp.slot(true)), PortServices::PME | PortServices::HP);
    }

    #[test]
    fn switch_ports() {
        // Linux 6.1 gives AER to every port with an AER capability (`dev->aer_cap`);
        // only the AER service driver (`aer_probe`) limits itself to root ports
        // and RCECs. PME stays with root ports and RCECs.
        let dsp = SimFn::new(0x104c, 0x8233).class(0x060400).bridge(0, 1, 1).pcie(6);
        assert_eq!(services(dsp.clone()), PortServices::empty());
        assert_eq!(services(dsp.clone().aer()), PortServices::AER, "AER for every port with the capability");
        assert_eq!(services(dsp.clone().slot(true)), PortServices::HP);
        assert_eq!(services(dsp.aer().slot(true)), PortServices::AER | PortServices::HP);
        let usp = SimFn::new(0x104c, 0x8232).class(0x060400).bridge(0, 1, 1).pcie(5).slot(true);
        assert_eq!(services(usp.clone()), PortServices::empty(), "no hot-plug on an upstream port");
        assert_eq!(services(usp.aer()), PortServices::AER);
    }

    #[test]
    fn vectors_msix_then_msi_then_intx_then_polling() {
        let all = PortServices::PME | PortServices::AER | PortServices::HP;
        // pcie-root-port: one MSI-X vector, message numbers 0.
        let rp = PortIrqFacts { msix_entries: Some(1), intx: true, ..Default::default() };
        let p = irq_plan(all, rp);
        assert_eq!((p.mode, p.vectors, p.services), (IrqMode::MsiX, 1, all));
        // MSI-X wins over MSI.
        let both = PortIrqFacts { msi_vectors: Some(2), ..rp };
        assert_eq!(irq_plan(all, both).mode, IrqMode::MsiX);
        // ioh3420: two MSI vectors, AER moved to message 1.
        let ioh = PortIrqFacts { msi_vectors: Some(2), intx: true, aer_message: 1, ..Default::default() };
        let p = irq_plan(all, ioh);
        assert_eq!((p.mode, p.vectors, p.pcie_vector, p.aer_vector), (IrqMode::Msi, 2, 0, 1));
        // A message number beyond what was allocated: INTx.
        let big = PortIrqFacts { aer_message: 4, ..ioh };
        assert_eq!(irq_plan(all, big).mode, IrqMode::Intx);
        // xio3130: MSI, no INTx.
        let xio = PortIrqFacts { msi_vectors: Some(1), ..Default::default() };
        assert_eq!(irq_plan(PortServices::AER | PortServices::HP, xio).mode, IrqMode::Msi);
        // Neither MSI nor INTx: only hot-plug stays, polled.
        let p = irq_plan(PortServices::AER | PortServices::HP, PortIrqFacts::default());
        assert_eq!((p.mode, p.services), (IrqMode::Polling, PortServices::HP));
        assert_eq!(irq_plan(PortServices::AER, PortIrqFacts::default()).services, PortServices::empty());
    }

    #[test]
    fn qemu_switch_ports() {
        use crate::sim::qemu;
        assert_eq!(services(qemu::dsp(0, 1, 1)), PortServices::AER | PortServices::HP);
        assert_eq!(services(qemu::usp(0, 1, 1)), PortServices::AER);
    }
}
