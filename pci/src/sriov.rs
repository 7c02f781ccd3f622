//! SR-IOV virtual functions as Linux adds them when a driver enables VFs
//! (drivers/pci/iov.c `pci_iov_add_virtfn`, `pci_iov_virtfn_bus`,
//! `pci_iov_virtfn_devfn`, `virtfn_add_bus`).
//!
//! A VF does not answer a configuration scan (its vendor id reads all
//! ones); Linux creates it from the physical function's SR-IOV capability:
//! routing id = PF routing id + First VF Offset + i × VF Stride, vendor of
//! the PF, device id from the capability, never multifunction. A VF whose
//! bus number differs from the PF's sits on a bus Linux adds with no bridge
//! (`bus->self == NULL`): the alias walk and the ACS climb skip such a bus
//! and continue at the PF's bridge, so the VF's `parent` here is the PF's.
//!
//! Linux adds VFs after boot, when `sriov_numvfs` is written, so they are
//! appended after every enumerated function and are probed last.

use crate::caps::read_function_caps;
use crate::config::{Bdf, ConfigSpace};
use crate::devfn_mask::DevfnMask;
use crate::enumerate::set_pcie_port_type;
use crate::regs::*;
use crate::topology::{DevFlags, Function, Topology};
use alloc::vec::Vec;

/// The addresses of the VFs a physical function at `pf` has enabled, its
/// SR-IOV capability at `sriov` (`pci_iov_virtfn_bus`,
/// `pci_iov_virtfn_devfn`): none unless VF Enable is set; routing ids past
/// bus 255 are dropped.
pub fn virtual_function_addresses(cfg: &mut dyn ConfigSpace, pf: Bdf, sriov: u16) -> Vec<Bdf> {
    if cfg.read16(pf, sriov + PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_VFE == 0 {
        return Vec::new();
    }
    let num = cfg.read16(pf, sriov + PCI_SRIOV_NUM_VF);
    let offset = u32::from(cfg.read16(pf, sriov + PCI_SRIOV_VF_OFFSET));
    let stride = u32::from(cfg.read16(pf, sriov + PCI_SRIOV_VF_STRIDE));
    (0..u32::from(num))
        .map_while(|i| u16::try_from(u32::from(pf.requester_id()) + offset + stride * i).ok())
        .map(|rid| Bdf::from_devfn(pf.segment, (rid >> 8) as u8, rid as u8))
        .collect()
}

/// Append the VFs of every physical function whose SR-IOV control has VF
/// Enable set and NumVFs > 0. Returns how many were added. A VF whose
/// routing id would leave the bus range (or repeat a function already
/// present) is skipped, as `pci_iov_add_virtfn` fails for it.
pub fn add_virtual_functions(cfg: &mut dyn ConfigSpace, topo: &mut Topology) -> usize {
    let mut added = 0;
    for pf in 0..topo.functions.len() {
        let f = &topo.functions[pf];
        let Some(sriov) = f.caps.sriov else { continue };
        let bdf = f.bdf;
        let vf_device = cfg.read16(bdf, sriov.offset + PCI_SRIOV_VF_DID);
        for vf in virtual_function_addresses(cfg, bdf, sriov.offset) {
            if topo.find(vf).is_some() {
                continue;
            }
            let pf_fn = &topo.functions[pf];
            let class_rev = cfg.read32(vf, PCI_CLASS_REVISION);
            let class = if class_rev == u32::MAX { pf_fn.class } else { class_rev >> 8 };
            // A VF sits where its PF does for extended config access.
            let bus_no_extcfg = pf_fn.bus_no_extcfg;
            let (caps, cfg_size, _) = read_function_caps(cfg, vf, PCI_HEADER_TYPE_NORMAL, class, bus_no_extcfg);
            let parent = pf_fn.parent;
            let parent_fn = parent.map(|p| &topo.functions[p]);
            let corrected = caps.pcie.map(|c| set_pcie_port_type(c.port_type, parent_fn));
            let (pcie_type, port_type_bug) = (corrected.map(|c| c.0), corrected.and_then(|c| c.1));
            let function = Function {
                bdf: vf,
                vendor: pf_fn.vendor,
                device: vf_device,
                class,
                revision: pf_fn.revision,
                header_type: PCI_HEADER_TYPE_NORMAL,
                multifunction: false,
                subsystem_vendor: pf_fn.subsystem_vendor,
                subsystem_device: pf_fn.subsystem_device,
                pcie_type,
                port_type_bug,
                cfg_size,
                bus_no_extcfg,
                caps,
                bridge: None,
                secondary_scanned: false,
                parent,
                is_root_bus: pf_fn.is_root_bus && vf.bus == bdf.bus,
                dev_flags: DevFlags::empty(),
                dma_alias_mask: DevfnMask::new(),
                fixups: alloc::vec::Vec::new(),
            };
            topo.functions.push(function);
            added += 1;
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enumerate;
    use crate::sim::{SimConfig, SimFn, qemu};

    /// An 82576-like PF below a root port: VF offset 384, stride 2, 3 VFs.
    fn machine(enabled: bool) -> SimConfig {
        let mut sim = SimConfig::new();
        sim.at(0, 0, 0, qemu::q35_host());
        sim.at(0, 1, 0, qemu::root_port(true, 7, 8));
        let pf = SimFn::new(0x8086, 0x10c9).class(0x020000).pcie(0).sriov(8, 8);
        // The SR-IOV capability is the only extended one: at 0x100.
        let pf = pf
            .poke16(0x100 + PCI_SRIOV_CTRL, u16::from(enabled))
            .poke16(0x100 + PCI_SRIOV_NUM_VF, 3)
            .poke16(0x100 + PCI_SRIOV_VF_OFFSET, 384)
            .poke16(0x100 + PCI_SRIOV_VF_STRIDE, 2)
            .poke16(0x100 + PCI_SRIOV_VF_DID, 0x10ca);
        sim.at(7, 0, 0, pf);
        sim
    }

    #[test]
    fn enabled_vfs_are_added_at_their_routing_ids_with_the_pfs_bridge() {
        let mut sim = machine(true);
        let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
        assert_eq!(topo.functions.len(), 3);
        assert_eq!(add_virtual_functions(&mut sim, &mut topo), 3);
        let vfs: alloc::vec::Vec<_> = topo.functions[3..].iter().map(|f| alloc::format!("{}", f.bdf)).collect();
        assert_eq!(vfs, ["0000:08:10.0", "0000:08:10.2", "0000:08:10.4"]);
        let vf = &topo.functions[3];
        assert_eq!((vf.vendor, vf.device, vf.multifunction), (0x8086, 0x10ca, false));
        assert_eq!(vf.parent, topo.find(Bdf::new(0, 0, 1, 0)));
    }

    #[test]
    fn vfs_of_a_pf_without_vf_enable_are_not_added() {
        let mut sim = machine(false);
        let mut topo = enumerate(&mut sim, 0, &[0], 0..=255);
        assert_eq!(add_virtual_functions(&mut sim, &mut topo), 0);
        assert_eq!(topo.functions.len(), 3);
    }
}
