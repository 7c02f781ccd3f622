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
    fn qemu_switch_ports() {
        use crate::sim::qemu;
        assert_eq!(services(qemu::dsp(0, 1, 1)), PortServices::AER | PortServices::HP);
        assert_eq!(services(qemu::usp(0, 1, 1)), PortServices::AER);
    }
}
