//! Devices named by an RMRR (VT-d spec §8.4) and what that forbids, as
//! Linux 6.1's intel-iommu decides it (drivers/iommu/intel/iommu.c):
//!
//! - `device_has_rmrr`: a device is an RMRR device when an RMRR scope names
//!   it, or names a PCI bridge it sits below (`is_downstream_to_pci_bridge`:
//!   its bus within the bridge's secondary..=subordinate);
//! - `device_rmrr_is_relaxable`: USB controllers and graphics devices have
//!   RMRRs "largely for historical reasons" and may still be handed out;
//! - `device_is_rmrr_locked`: any other RMRR device must keep its identity
//!   map, so `intel_iommu_attach_device` refuses it an unmanaged domain
//!   ("Device is ineligible for IOMMU domain attach due to platform RMRR
//!   requirement", -EPERM). On 6.1 the claim's blocking domain is such an
//!   unmanaged domain (VT-d has no blocked domain type there), so claiming
//!   its group fails with EPERM.
//!
//! The kernel also keeps an RMRR device on its default domain when a
//! driver unbinds (Linux keeps the default domain attached), and leaves
//! its bus mastering as firmware set it at take-over (Linux does not clear
//! bus mastering at IOMMU init at all).

use alloc::vec::Vec;
use pci::Topology;

/// PCI class of USB controllers (`PCI_CLASS_SERIAL_USB`, class >> 8).
const CLASS_SERIAL_USB: u32 = 0x0c03;
/// Display controllers (`PCI_BASE_CLASS_DISPLAY`, class >> 16).
const BASE_CLASS_DISPLAY: u32 = 0x03;

/// Linux `device_rmrr_is_relaxable`: `IS_USB_DEVICE || IS_GFX_DEVICE`,
/// over the 24-bit class code.
pub fn device_rmrr_is_relaxable(class: u32) -> bool {
    class >> 8 == CLASS_SERIAL_USB || class >> 16 == BASE_CLASS_DISPLAY
}

/// Linux `device_has_rmrr` for every function of `topo`, given the
/// functions the RMRR scopes resolve to.
pub fn devices_with_rmrr(topo: &Topology, named: &[usize]) -> Vec<bool> {
    topo.functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            named.iter().any(|&n| {
                n == i
                    || topo.functions.get(n).and_then(|b| b.bridge).is_some_and(|b| {
                        let bus = f.bdf.bus;
                        b.secondary <= bus && bus <= b.subordinate
                    })
            })
        })
        .collect()
}

/// Linux `device_is_rmrr_locked`: an RMRR device that is not relaxable.
pub fn device_is_rmrr_locked(has_rmrr: bool, class: u32) -> bool {
    has_rmrr && !device_rmrr_is_relaxable(class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pci::enumerate;
    use pci::sim::{SimConfig, SimFn};

    /// Root port 00:02.0 → PCIe-to-PCI bridge 01:00.0 → 02:01.0 (NIC) and
    /// 02:02.0; plus a USB controller 00:1d.0, a GPU 00:01.0 and an edu
    /// 00:05.0 on the root bus.
    fn topo() -> Topology {
        let mut cfg = SimConfig::new();
        cfg.at(0, 0, 0, pci::sim::qemu::q35_host());
        cfg.at(0, 1, 0, SimFn::new(0x8086, 0x0412).class(0x030000));
        cfg.at(0, 2, 0, SimFn::new(0x1b36, 0x000c).class(0x060400).bridge(0, 1, 2).pcie(4));
        cfg.at(0, 5, 0, SimFn::new(0x1234, 0x11e8).class(0x00ff00));
        cfg.at(0, 0x1d, 0, SimFn::new(0x8086, 0x2934).class(0x0c0300));
        cfg.at(1, 0, 0, SimFn::new(0x1b36, 0x000e).class(0x060400).bridge(1, 2, 2).pcie(7));
        cfg.at(2, 1, 0, SimFn::new(0x8086, 0x100e).class(0x020000));
        cfg.at(2, 2, 0, SimFn::new(0x1b36, 0x0005).class(0x00ff00));
        enumerate(&mut cfg, 0, &[0], 0..=255)
    }

    fn at(t: &Topology, bus: u8, dev: u8) -> usize {
        t.functions.iter().position(|f| f.bdf.bus == bus && f.bdf.device == dev).unwrap()
    }

    #[test]
    fn a_scope_naming_a_bridge_covers_the_devices_below_it() {
        let t = topo();
        let has = devices_with_rmrr(&t, &[at(&t, 1, 0)]);
        for (i, f) in t.functions.iter().enumerate() {
            assert_eq!(has[i], f.bdf.bus >= 1, "{}", f.bdf);
        }
        let has = devices_with_rmrr(&t, &[at(&t, 0, 5)]);
        assert_eq!(has.iter().filter(|&&h| h).count(), 1, "an endpoint scope names only itself");
        assert!(has[at(&t, 0, 5)]);
    }

    #[test]
    fn usb_and_graphics_are_relaxable_everything_else_is_locked() {
        let t = topo();
        let usb = &t.functions[at(&t, 0, 0x1d)];
        let gpu = &t.functions[at(&t, 0, 1)];
        let edu = &t.functions[at(&t, 0, 5)];
        assert!(device_rmrr_is_relaxable(usb.class) && device_rmrr_is_relaxable(gpu.class));
        assert!(!device_is_rmrr_locked(true, usb.class));
        assert!(!device_is_rmrr_locked(true, gpu.class));
        assert!(device_is_rmrr_locked(true, edu.class), "an RMRR edu is locked");
        assert!(!device_is_rmrr_locked(false, edu.class), "no RMRR, nothing locked");
        assert!(!device_rmrr_is_relaxable(0x0c0500), "SMBus (0x0c05) is not USB");
    }
}
