//! The drivers and their binding. Which driver may bind, and what that does
//! to the device's IOMMU group, is `iommu::driver_model`; this module runs
//! the probes and removes on the hardware and carries out the DMA effects on
//! VT-d.
//!
//! - `pcieport`: the PCIe port-service driver. It binds to root ports,
//!   switch upstream and downstream ports and root-complex event
//!   collectors, lists each port's services and sets `driver_managed_dma`.
//!   That is safe for the reason the merged Linux commit gives ("PCI:
//!   portdrv: Set driver_managed_dma", c7d469849747): the port driver uses
//!   no DMA API (no `pci_set_master` for DMA, no `dma_map_*`) and maps no
//!   MMIO that a device below it could reach with peer-to-peer writes; the
//!   only upstream writes a port makes are its own MSI messages. So user
//!   space may own the devices below while the bridge stays driven.
//! - `edu`: a kernel driver for QEMU's edu device that does DMA through the
//!   kernel DMA API on its group's default domain (no `driver_managed_dma`).
//! - `vfio-pci`: the passthrough owner's stub, bound to devices it takes
//!   over; like Linux's vfio-pci it sets `driver_managed_dma`, because the
//!   owner manages DMA through its own domain, refuses functions whose
//!   header type is not normal (bridges), and clears bus mastering when it
//!   lets a device go (unbind, or the owner releasing the group).
//! - `shpchp`: a stand-in for Linux's SHPC hot-plug driver, the review's
//!   counter-example. A driver that maps a bridge's MMIO registers (SHPC's
//!   BAR) or does DMA must not set `driver_managed_dma`: a device below the
//!   bridge could rewrite those registers with peer-to-peer writes once user
//!   space owns it. So binding it makes the bridge a kernel DMA user and
//!   its group cannot be claimed. Bound only on request (`bind-shpc=BDF`).

pub mod edu;
pub mod irq;
pub mod portdrv;

use crate::hw::ecam::Ecam;
use crate::pipeline::vtd::Vtd;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use edu::{EDU_DEVICE, EDU_VENDOR, Edu};
use iommu::driver_model::{BindError, DeviceMatch, DmaEffect, DriverInfo, DriverModel};
use iommu::group::Groups;
use pci::caps::PcieType;
use pci::port_services::{PortServices, port_services};
use pci::{ConfigSpace, Topology};

pub const PCIEPORT: &str = "pcieport";
pub const EDU: &str = "edu";
pub const VFIO_PCI: &str = "vfio-pci";
pub const SHPCHP: &str = "shpchp";

/// PCI class: PCI-to-PCI bridge (any programming interface).
const CLASS_BRIDGE_PCI: (u32, u32) = (0x06_0400, 0xff_ff00);
/// PCI class: root-complex event collector.
const CLASS_RCEC: (u32, u32) = (0x08_0700, 0xff_ff00);

const EDU_IDS: &[DeviceMatch] = &[DeviceMatch::id(EDU_VENDOR, EDU_DEVICE)];

const PORT_TYPES: &[PcieType] = &[PcieType::RootPort, PcieType::Upstream, PcieType::Downstream];

/// Registration order is matching order for automatic binding; `vfio-pci`
/// and `shpchp` bind only when asked.
pub fn registry() -> Vec<DriverInfo> {
    vec![
        DriverInfo {
            name: PCIEPORT,
            id_table: &[
                DeviceMatch { vendor: None, device: None, class: Some(CLASS_BRIDGE_PCI), port_types: PORT_TYPES },
                DeviceMatch { vendor: None, device: None, class: Some(CLASS_RCEC), port_types: &[PcieType::RcEc] },
            ],
            driver_managed_dma: true,
        },
        DriverInfo { name: EDU, id_table: EDU_IDS, driver_managed_dma: false },
        DriverInfo {
            name: VFIO_PCI,
            id_table: &[DeviceMatch { vendor: None, device: None, class: None, port_types: &[] }],
            driver_managed_dma: true,
        },
        DriverInfo {
            name: SHPCHP,
            id_table: &[DeviceMatch { vendor: None, device: None, class: Some(CLASS_BRIDGE_PCI), port_types: &[] }],
            driver_managed_dma: false,
        },
    ]
}

/// What the stages below need from the earlier ones.
pub struct Ctx<'a> {
    pub vtd: &'a mut Vtd,
    pub ecam: &'a mut Ecam,
    pub topo: &'a Topology,
    pub groups: &'a Groups,
}

/// Bound drivers and their per-device state.
pub struct Drivers {
    pub model: DriverModel,
    /// Per function: the edu driver's device, when bound.
    pub edus: Vec<Option<Edu>>,
    /// Per function: the services portdrv found, when bound.
    pub services: Vec<Option<PortServices>>,
    /// Per function: taken away by hot-remove (out of its group, no driver).
    pub removed: Vec<bool>,
    /// Per function: the MSI/MSI-X a bound driver set up.
    pub irqs: Vec<Option<irq::IrqSetup>>,
    /// Per function: why its driver polls instead (interrupt setup failed).
    pub irq_errors: Vec<Option<String>>,
}

const PCI_COMMAND: u16 = 0x04;
const PCI_COMMAND_MASTER: u16 = 1 << 2;

/// `pci_clear_master`.
fn clear_bus_master(ecam: &mut Ecam, bdf: pci::Bdf) {
    let cmd = ecam.read16(bdf, PCI_COMMAND);
    if cmd != u16::MAX && cmd & PCI_COMMAND_MASTER != 0 {
        ecam.write16(bdf, PCI_COMMAND, cmd & !PCI_COMMAND_MASTER);
    }
}

impl Drivers {
    /// `rmrr`: per function, whether an RMRR names it (`Vtd::rmrr`).
    pub fn new(topo: &Topology, groups: &Groups, rmrr: &[bool]) -> Self {
        let n = topo.functions.len();
        let mut model = DriverModel::new(registry(), n, groups);
        for i in (0..n).filter(|&i| rmrr.get(i).copied().unwrap_or(false)) {
            model.mark_rmrr(i);
        }
        Self {
            model,
            edus: (0..n).map(|_| None).collect(),
            services: vec![None; n],
            removed: vec![false; n],
            irqs: vec![None; n],
            irq_errors: vec![None; n],
        }
    }

    pub fn driver_name(&self, index: usize) -> Option<&'static str> {
        self.model.driver_of(index).map(|d| d.name)
    }

    /// `really_probe`: DMA configuration, then the driver's probe; a failed
    /// probe undoes the DMA configuration.
    pub fn bind(&mut self, ctx: &mut Ctx, index: usize, driver: &str) -> Result<String, String> {
        let d = self.model.driver_index(driver).ok_or("no such driver")?;
        let f = &ctx.topo.functions[index];
        let effect = self.model.bind(index, f, d).map_err(|e: BindError| format!("{e}"))?;
        let r = self.apply(ctx, index, effect).and_then(|_| self.probe(ctx, index, driver));
        if let Err(e) = r {
            if let Ok(undo) = self.model.probe_failed(index) {
                let _ = self.apply(ctx, index, undo);
            }
            return Err(format!("probe failed: {e}"));
        }
        Ok(match &self.services[index] {
            Some(s) => format!("services: {s}"),
            None => String::new(),
        })
    }

    /// `__device_release_driver`: remove, then DMA cleanup. The edu
    /// driver's remove and vfio-pci's (`vfio_pci_core_disable`) stop the
    /// device's DMA before its domain goes.
    pub fn unbind(&mut self, ctx: &mut Ctx, index: usize) -> Result<(), String> {
        if let Some(edu) = self.edus[index].as_mut() {
            edu.detach_irq();
        }
        if let Some(setup) = self.irqs[index].take() {
            for &v in &setup.vectors {
                edu::release_vector(v);
            }
            irq::disable(ctx, setup);
        }
        if self.edus[index].take().is_some() || self.driver_name(index) == Some(VFIO_PCI) {
            clear_bus_master(ctx.ecam, ctx.topo.functions[index].bdf);
        }
        self.services[index] = None;
        let effect = self.model.unbind(index).map_err(|e| format!("{e}"))?;
        self.apply(ctx, index, effect)
    }

    /// What vfio-pci does when the owner lets go of a device it held
    /// (`vfio_pci_core_disable` on the last close of the device):
    /// `pci_clear_master`, so nothing the owner started keeps running once
    /// the group is released. (Linux also resets the function; QEMU's edu
    /// has no reset to ask for.)
    pub fn vfio_disable(&self, ctx: &mut Ctx, index: usize) {
        if self.driver_name(index) == Some(VFIO_PCI) {
            clear_bus_master(ctx.ecam, ctx.topo.functions[index].bdf);
        }
    }

    fn probe(&mut self, ctx: &mut Ctx, index: usize, driver: &str) -> Result<(), String> {
        let f = &ctx.topo.functions[index];
        match driver {
            // Linux vfio_pci_probe: "if (pdev->hdr_type !=
            // PCI_HEADER_TYPE_NORMAL) return -EINVAL;" - bridges are never
            // handed to the owner (their group may be claimed with them
            // left without a driver).
            VFIO_PCI if f.header_type != 0 => {
                return Err(format!("header type {:#x} is not a normal function (EINVAL)", f.header_type));
            }
            // The owner's interrupts (VFIO_DEVICE_SET_IRQS with MSI): the
            // kernel allocates the vector and the IRTE, as Linux's vfio-pci
            // does through the host's remapping domain; the owner is told
            // through the handler. Only the edu is driven by the owner here,
            // so its handler acknowledges the device.
            VFIO_PCI if (f.vendor, f.device) == (EDU_VENDOR, EDU_DEVICE) => {
                let mut edu = Edu::probe(ctx.ecam, f.bdf).map_err(|e| format!("{e}"))?;
                match irq::enable_msi(ctx, index, 1, VFIO_PCI, edu::irq_handler) {
                    Ok(setup) => {
                        edu.attach_irq(setup.vectors[0]);
                        self.irqs[index] = Some(setup);
                    }
                    Err(e) => self.irq_errors[index] = Some(e),
                }
            }
            PCIEPORT => {
                // Linux pcie_portdrv_probe accepts only these port types.
                if !matches!(
                    f.pcie_type,
                    Some(PcieType::RootPort | PcieType::Upstream | PcieType::Downstream | PcieType::RcEc)
                ) {
                    return Err(String::from("not a PCIe port"));
                }
                self.services[index] = Some(port_services(f));
            }
            EDU => {
                // Bus mastering is turned on when the driver first starts a
                // DMA (`Drivers::edu_for_dma`), after translation is on:
                // every Bus Master Enable change costs QEMU a rebuild of
                // every device's address space, so a boot that does no DMA
                // does none.
                let mut edu = Edu::probe(ctx.ecam, f.bdf).map_err(|e| format!("{e}"))?;
                // The completion interrupt: one MSI vector. Without it the
                // driver polls, and the report says why.
                match irq::enable_msi(ctx, index, 1, EDU, edu::irq_handler) {
                    Ok(setup) => {
                        edu.attach_irq(setup.vectors[0]);
                        self.irqs[index] = Some(setup);
                    }
                    Err(e) => self.irq_errors[index] = Some(e),
                }
                self.edus[index] = Some(edu);
            }
            _ => {}
        }
        Ok(())
    }

    /// The edu driver's device, ready for DMA: bus mastering on (for it
    /// and the bridges above), which is allowed only once translation is on.
    pub fn edu_for_dma(&self, ctx: &mut Ctx, index: usize) -> Result<&Edu, String> {
        let edu = self.edus[index].as_ref().ok_or("edu driver has no device")?;
        ctx.vtd.enable_bus_master(ctx.ecam, ctx.topo, index)?;
        Ok(edu)
    }

    /// Carry out what binding or unbinding means for VT-d.
    fn apply(&self, ctx: &mut Ctx, index: usize, effect: DmaEffect) -> Result<(), String> {
        match effect {
            DmaEffect::None => Ok(()),
            DmaEffect::AttachDefault => ctx.vtd.attach(ctx.topo, ctx.groups, index),
            DmaEffect::Detach => {
                let g = self.model.group_of(index);
                let users: Vec<usize> = g.map(|g| self.default_users(ctx, g)).unwrap_or_default();
                ctx.vtd.detach(ctx.topo, index, &users)
            }
        }
    }

    /// Linux `__iommu_group_set_core_domain` in this kernel's terms, on
    /// the hardware: an owned group is blocked (no member has a context
    /// entry); otherwise each member that uses the default domain (bound
    /// to a kernel DMA driver, or named by an RMRR) points at it and every
    /// other member has no context entry, whatever domain was attached before (an owner's
    /// included). Detaches come first so that a requester id shared by a
    /// user and a non-user (a bridge alias) ends up attached.
    pub fn set_core_domain(&self, ctx: &mut Ctx, group_pos: usize) -> Result<(), String> {
        let members: Vec<usize> = ctx.groups.groups[group_pos].members.iter().map(|m| m.function).collect();
        let users: Vec<usize> = if self.model.ownership(group_pos).owner().is_some() {
            Vec::new()
        } else {
            self.default_users(ctx, group_pos)
        };
        let mut first_error = Ok(());
        for &i in members.iter().filter(|i| !users.contains(i)) {
            if let Err(e) = ctx.vtd.detach(ctx.topo, i, &users) {
                first_error = first_error.and(Err(format!("{}: {e}", ctx.topo.functions[i].bdf)));
            }
        }
        for &i in &users {
            if let Err(e) = ctx.vtd.attach(ctx.topo, ctx.groups, i) {
                first_error = first_error.and(Err(format!("{}: {e}", ctx.topo.functions[i].bdf)));
            }
        }
        first_error
    }

    /// The members of a group (not owned) that have a context entry to its
    /// default domain: those bound to a kernel DMA driver, and RMRR
    /// devices, which keep it whatever their driver.
    fn default_users(&self, ctx: &Ctx, group_pos: usize) -> Vec<usize> {
        ctx.groups.groups[group_pos]
            .members
            .iter()
            .map(|m| m.function)
            .filter(|&i| self.model.has_rmrr(i) || self.model.kernel_dma_users(group_pos).any(|u| u == i))
            .collect()
    }

    /// Bind the automatic drivers (`pcieport`, `edu`) to every function
    /// they match, except those in `skip`. Returns one line per bind.
    pub fn bind_all(&mut self, ctx: &mut Ctx, skip: &[usize]) -> Vec<(usize, &'static str, Result<String, String>)> {
        let mut out = Vec::new();
        for index in 0..ctx.topo.functions.len() {
            if skip.contains(&index) || self.model.driver_of(index).is_some() {
                continue;
            }
            let f = &ctx.topo.functions[index];
            for name in [PCIEPORT, EDU] {
                let Some(d) = self.model.driver_index(name) else { continue };
                if self.model.drivers()[d].matches(f) {
                    let r = self.bind(ctx, index, name);
                    out.push((index, name, r));
                    break;
                }
            }
        }
        out
    }
}
