//! The PCI driver model's DMA side: which driver matches which function,
//! and what binding and unbinding do to the device's IOMMU group (Linux
//! drivers/base/dd.c `really_probe`, drivers/pci/pci-driver.c
//! `pci_dma_configure` / `pci_dma_cleanup`, `struct pci_driver`
//! `driver_managed_dma`).
//!
//! Binding a driver without `driver_managed_dma` makes the device a kernel
//! DMA user of its group's default domain; with the flag (the PCIe port
//! driver, VFIO-like stubs) it does not, so such a device never stops a user
//! owner from claiming the group. Probe and remove themselves run in the
//! kernel; this module keeps the bookkeeping and says what the IOMMU must
//! do.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use pci::Function;
use pci::caps::PcieType;

use crate::group::Groups;
use crate::ownership::{GroupOwnership, OwnerToken, OwnershipError};

/// One line of a driver's `id_table`: every field that is set must match.
#[derive(Clone, Copy, Debug)]
pub struct DeviceMatch {
    pub vendor: Option<u16>,
    pub device: Option<u16>,
    /// `(class, mask)` over the 24-bit class code.
    pub class: Option<(u32, u32)>,
    /// Accepted PCIe port types (Linux's portdrv checks this in probe);
    /// empty = any.
    pub port_types: &'static [PcieType],
}

impl DeviceMatch {
    pub const fn id(vendor: u16, device: u16) -> Self {
        Self { vendor: Some(vendor), device: Some(device), class: None, port_types: &[] }
    }

    pub fn matches(&self, f: &Function) -> bool {
        self.vendor.is_none_or(|v| v == f.vendor)
            && self.device.is_none_or(|d| d == f.device)
            && self.class.is_none_or(|(c, m)| f.class & m == c & m)
            && (self.port_types.is_empty() || f.pcie_type.is_some_and(|t| self.port_types.contains(&t)))
    }
}

/// A driver as the bus sees it.
#[derive(Clone, Copy, Debug)]
pub struct DriverInfo {
    pub name: &'static str,
    pub id_table: &'static [DeviceMatch],
    /// `struct pci_driver.driver_managed_dma`: the driver does not use the
    /// kernel DMA API, so binding it does not claim the default domain.
    pub driver_managed_dma: bool,
}

impl DriverInfo {
    pub fn matches(&self, f: &Function) -> bool {
        self.id_table.iter().any(|m| m.matches(f))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// The device already has a driver (Linux -EBUSY from the driver core).
    AlreadyBound,
    /// The driver's id table does not match (Linux -ENODEV).
    NoMatch,
    /// `pci_dma_configure` refused: the group has a user owner (-EBUSY).
    Ownership(OwnershipError),
    NotBound,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyBound => f.write_str("the device already has a driver (EBUSY)"),
            Self::NoMatch => f.write_str("the driver does not match the device (ENODEV)"),
            Self::Ownership(e) => write!(f, "{e}"),
            Self::NotBound => f.write_str("the device has no driver"),
        }
    }
}

/// Why a claim failed: refused by the ownership rules, or the blocking
/// domain could not be set (Linux returns the attach error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError<E> {
    Ownership(OwnershipError),
    Domain(E),
}

/// What the kernel must do to the IOMMU after a successful bind or unbind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaEffect {
    /// Nothing: a `driver_managed_dma` driver.
    None,
    /// The device now uses its group's default domain: point its requester
    /// ids at it.
    AttachDefault,
    /// The device stopped using the default domain: its DMA is blocked.
    Detach,
}

/// Bound drivers and group ownership for one PCI segment.
pub struct DriverModel {
    drivers: Vec<DriverInfo>,
    /// Per function: index into `drivers`.
    bound: Vec<Option<usize>>,
    /// Per group position (as in `Groups::groups`).
    ownership: Vec<GroupOwnership>,
    /// Per function: its group position.
    group_pos: Vec<Option<usize>>,
    /// Per function: named by an RMRR (it keeps its default domain).
    rmrr: Vec<bool>,
}

impl DriverModel {
    pub fn new(drivers: Vec<DriverInfo>, functions: usize, groups: &Groups) -> Self {
        let mut group_pos = vec![None; functions];
        for (pos, g) in groups.groups.iter().enumerate() {
            for m in &g.members {
                if let Some(slot) = group_pos.get_mut(m.function) {
                    *slot = Some(pos);
                }
            }
        }
        Self {
            drivers,
            bound: vec![None; functions],
            ownership: vec![GroupOwnership::default(); groups.groups.len()],
            group_pos,
            rmrr: vec![false; functions],
        }
    }

    /// Record that an RMRR names `function` (Linux `device_has_rmrr`).
    pub fn mark_rmrr(&mut self, function: usize) {
        if let Some(r) = self.rmrr.get_mut(function) {
            *r = true;
        }
    }

    pub fn has_rmrr(&self, function: usize) -> bool {
        self.rmrr.get(function).copied().unwrap_or(false)
    }

    pub fn drivers(&self) -> &[DriverInfo] {
        &self.drivers
    }

    pub fn driver_of(&self, function: usize) -> Option<&DriverInfo> {
        self.bound.get(function).copied().flatten().map(|d| &self.drivers[d])
    }

    pub fn driver_index(&self, name: &str) -> Option<usize> {
        self.drivers.iter().position(|d| d.name == name)
    }

    pub fn ownership(&self, group_pos: usize) -> &GroupOwnership {
        &self.ownership[group_pos]
    }

    pub fn group_of(&self, function: usize) -> Option<usize> {
        self.group_pos.get(function).copied().flatten()
    }

    /// The first driver whose id table matches (Linux tries drivers in
    /// registration order).
    pub fn find_driver(&self, f: &Function) -> Option<usize> {
        self.drivers.iter().position(|d| d.matches(f))
    }

    /// `really_probe` up to the driver's probe: `pci_dma_configure` first.
    /// The caller runs the probe and calls [`DriverModel::probe_failed`] if
    /// it fails.
    pub fn bind(&mut self, function: usize, f: &Function, driver: usize) -> Result<DmaEffect, BindError> {
        if self.bound[function].is_some() {
            return Err(BindError::AlreadyBound);
        }
        let info = self.drivers[driver];
        if !info.matches(f) {
            return Err(BindError::NoMatch);
        }
        // `iommu_device_use_default_domain` returns 0 for a device with no
        // group (no IOMMU translates it), and the driver binds.
        let effect = match self.group_of(function) {
            Some(g) if !info.driver_managed_dma => {
                self.ownership[g].use_default_domain().map_err(BindError::Ownership)?;
                DmaEffect::AttachDefault
            }
            _ => DmaEffect::None,
        };
        self.bound[function] = Some(driver);
        Ok(effect)
    }

    /// Undo a bind whose probe failed (`really_probe` → `dma_cleanup`).
    pub fn probe_failed(&mut self, function: usize) -> Result<DmaEffect, BindError> {
        self.unbind(function)
    }

    /// `__device_release_driver` → `pci_dma_cleanup`. The device's DMA is
    /// blocked again (this kernel's design), except for an RMRR device,
    /// which keeps its default domain as every device does in Linux.
    pub fn unbind(&mut self, function: usize) -> Result<DmaEffect, BindError> {
        let driver = self.bound[function].ok_or(BindError::NotBound)?;
        self.bound[function] = None;
        match self.group_of(function) {
            Some(g) if !self.drivers[driver].driver_managed_dma => {
                self.ownership[g].unuse_default_domain().map_err(BindError::Ownership)?;
                Ok(if self.has_rmrr(function) { DmaEffect::None } else { DmaEffect::Detach })
            }
            _ => Ok(DmaEffect::None),
        }
    }

    /// `iommu_group_claim_dma_owner` for the group at `group_pos`: the
    /// checks, then `set_blocking` (the caller's
    /// `__iommu_group_set_domain(group, blocking_domain)` on the hardware),
    /// and only if that succeeded the owner is set. As in Linux a claim
    /// that fails sets no owner; `set_blocking` must itself leave the
    /// hardware as it found it when it fails.
    pub fn claim<E>(
        &mut self,
        group_pos: usize,
        owner: OwnerToken,
        set_blocking: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), ClaimError<E>> {
        let mut next = self.ownership[group_pos];
        next.claim_dma_owner(owner).map_err(ClaimError::Ownership)?;
        set_blocking().map_err(ClaimError::Domain)?;
        self.ownership[group_pos] = next;
        Ok(())
    }

    /// `iommu_group_release_dma_owner` (no owner argument, as in Linux).
    pub fn release(&mut self, group_pos: usize) -> Result<(), OwnershipError> {
        self.ownership[group_pos].release_dma_owner()
    }

    /// `iommu_attach_group`.
    pub fn attach_domain(&mut self, group_pos: usize, tag: u32) -> Result<(), OwnershipError> {
        self.ownership[group_pos].attach_domain(tag)
    }

    /// `iommu_detach_group`.
    pub fn detach_domain(&mut self, group_pos: usize) {
        self.ownership[group_pos].detach_domain()
    }

    /// Functions of the group bound to a driver that uses the kernel DMA
    /// API: what stops a claim.
    pub fn kernel_dma_users(&self, group_pos: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.bound.len()).filter(move |&i| {
            self.group_of(i) == Some(group_pos) && self.driver_of(i).is_some_and(|d| !d.driver_managed_dma)
        })
    }

    /// The invariant over every group.
    pub fn check(&self) -> bool {
        self.ownership.iter().enumerate().all(|(g, o)| {
            o.check()
                && (o.owner().is_none() || self.kernel_dma_users(g).next().is_none())
                && (o.owner().is_some() || o.owner_cnt() as usize == self.kernel_dma_users(g).count())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::group_all;
    use pci::sim::{SimConfig, SimFn};
    use pci::{Topology, enumerate};

    const PORT_TYPES: &[PcieType] = &[PcieType::RootPort, PcieType::Upstream, PcieType::Downstream];
    const PORTDRV: DriverInfo = DriverInfo {
        name: "pcieport",
        id_table: &[DeviceMatch {
            vendor: None,
            device: None,
            class: Some((0x060400, 0xffff00)),
            port_types: PORT_TYPES,
        }],
        driver_managed_dma: true,
    };
    const EDU: DriverInfo =
        DriverInfo { name: "edu", id_table: &[DeviceMatch::id(0x1234, 0x11e8)], driver_managed_dma: false };
    const STUB: DriverInfo = DriverInfo {
        name: "vfio-stub",
        id_table: &[DeviceMatch { vendor: None, device: None, class: None, port_types: &[] }],
        driver_managed_dma: true,
    };
    const SHPC: DriverInfo = DriverInfo {
        name: "shpchp",
        id_table: &[DeviceMatch { vendor: None, device: None, class: Some((0x060400, 0xffff00)), port_types: &[] }],
        driver_managed_dma: false,
    };
    const VFIO: OwnerToken = OwnerToken(1);

    /// Root port (ACS) → switch: upstream port, downstream port without
    /// ACS, edu below it. Groups: {RP}, {USP}, {DSP, edu}.
    fn switch() -> (SimConfig, Topology, Groups) {
        let mut cfg = SimConfig::new();
        cfg.at(0, 0, 0, pci::sim::qemu::q35_host());
        cfg.at(0, 2, 0, SimFn::new(0x1b36, 0x000c).class(0x060400).bridge(0, 1, 3).pcie(4).acs(0x5f, 0x1d));
        cfg.at(1, 0, 0, SimFn::new(0x104c, 0x8232).class(0x060400).bridge(1, 2, 3).pcie(5));
        cfg.at(2, 0, 0, SimFn::new(0x104c, 0x8233).class(0x060400).bridge(2, 3, 3).pcie(6));
        cfg.at(3, 0, 0, SimFn::new(0x1234, 0x11e8).class(0x00ff00));
        let topo = enumerate(&mut cfg, 0, &[0], 0..=255);
        let groups = group_all(&mut cfg, &topo);
        (cfg, topo, groups)
    }

    fn model(topo: &Topology, groups: &Groups) -> DriverModel {
        DriverModel::new(vec![PORTDRV, EDU, STUB, SHPC], topo.functions.len(), groups)
    }

    fn idx(topo: &Topology, bus: u8) -> usize {
        topo.functions.iter().position(|f| f.bdf.bus == bus && f.bdf.device == 0).unwrap()
    }

    #[test]
    fn portdrv_bound_bridge_does_not_stop_a_claim() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let (dsp, edu) = (idx(&topo, 2), idx(&topo, 3));
        assert_eq!(m.group_of(dsp), m.group_of(edu), "DSP and edu share a group");
        assert_eq!(m.bind(dsp, &topo.functions[dsp], 0), Ok(DmaEffect::None));
        let g = m.group_of(edu).unwrap();
        m.claim(g, VFIO, || Ok::<(), ()>(())).unwrap();
        assert_eq!(m.driver_of(dsp).map(|d| d.name), Some("pcieport"), "portdrv stays bound");
        assert!(m.check());
    }

    #[test]
    fn kernel_dma_driver_stops_a_claim_and_is_refused_while_owned() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let edu = idx(&topo, 3);
        let g = m.group_of(edu).unwrap();
        assert_eq!(m.bind(edu, &topo.functions[edu], 1), Ok(DmaEffect::AttachDefault));
        assert_eq!(m.claim(g, VFIO, || Ok::<(), ()>(())), Err(ClaimError::Ownership(OwnershipError::Permission)));
        assert_eq!(m.unbind(edu), Ok(DmaEffect::Detach));
        m.claim(g, VFIO, || Ok::<(), ()>(())).unwrap();
        assert_eq!(m.bind(edu, &topo.functions[edu], 1), Err(BindError::Ownership(OwnershipError::Busy)));
        assert!(m.driver_of(edu).is_none(), "a refused bind leaves no driver");
        m.release(g).unwrap();
        assert_eq!(m.bind(edu, &topo.functions[edu], 1), Ok(DmaEffect::AttachDefault));
        assert!(m.check());
    }

    #[test]
    fn shpc_like_bridge_driver_stops_the_claim() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let dsp = idx(&topo, 2);
        m.bind(dsp, &topo.functions[dsp], 3).unwrap();
        assert_eq!(
            m.claim(m.group_of(dsp).unwrap(), VFIO, || Ok::<(), ()>(())),
            Err(ClaimError::Ownership(OwnershipError::Permission))
        );
    }

    /// Linux sets the owner only after the blocking domain is attached: a
    /// claim whose hardware step fails leaves no owner, and the group can
    /// still be bound and claimed afterwards.
    #[test]
    fn a_claim_whose_blocking_step_fails_changes_nothing() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let edu = idx(&topo, 3);
        let g = m.group_of(edu).unwrap();
        let before = *m.ownership(g);
        assert_eq!(m.claim(g, VFIO, || Err("context entry")), Err(ClaimError::Domain("context entry")));
        assert_eq!(*m.ownership(g), before, "no owner, no blocking domain");
        let mut ran = false;
        assert_eq!(
            m.claim(g, VFIO, || {
                ran = true;
                Ok::<(), ()>(())
            }),
            Ok(())
        );
        assert!(ran, "the hardware step runs when the rules allow the claim");
        assert_eq!(m.ownership(g).owner(), Some(VFIO));
        let mut ran = false;
        let r = m.claim(g, VFIO, || {
            ran = true;
            Ok::<(), ()>(())
        });
        assert_eq!(r, Err(ClaimError::Ownership(OwnershipError::Permission)));
        assert!(!ran, "a refused claim touches no hardware");
        assert!(m.check());
    }

    /// An RMRR device keeps its default domain (and the identity map in
    /// it) when its driver unbinds, as every device does in Linux: the
    /// unbind asks the IOMMU for nothing, though the user count drops.
    #[test]
    fn an_rmrr_device_keeps_its_default_domain_on_unbind() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let edu = idx(&topo, 3);
        m.mark_rmrr(edu);
        assert!(m.has_rmrr(edu));
        assert_eq!(m.bind(edu, &topo.functions[edu], 1), Ok(DmaEffect::AttachDefault));
        assert_eq!(m.unbind(edu), Ok(DmaEffect::None), "no detach for an RMRR device");
        assert_eq!(m.ownership(m.group_of(edu).unwrap()).owner_cnt(), 0, "the kernel user is gone");
        let dsp = idx(&topo, 2);
        m.bind(dsp, &topo.functions[dsp], 3).unwrap();
        assert_eq!(m.unbind(dsp), Ok(DmaEffect::Detach), "others are detached as before");
        assert!(m.check());
    }

    /// `iommu_device_use_default_domain` returns 0 for a device with no
    /// group: a DMA-API driver binds, and nothing is asked of the IOMMU.
    #[test]
    fn dma_api_driver_binds_to_a_device_with_no_group() {
        let (_, topo, groups) = switch();
        let edu = idx(&topo, 3);
        let lone = topo.functions.len();
        let mut m = DriverModel::new(vec![PORTDRV, EDU, STUB, SHPC], lone + 1, &groups);
        assert_eq!(m.group_of(lone), None);
        assert_eq!(m.bind(lone, &topo.functions[edu], 1), Ok(DmaEffect::None));
        assert_eq!(m.unbind(lone), Ok(DmaEffect::None));
        assert!(m.check());
    }

    #[test]
    fn matching_rules() {
        let (_, topo, groups) = switch();
        let mut m = model(&topo, &groups);
        let (rp, edu) = (idx(&topo, 0) + 1, idx(&topo, 3));
        assert_eq!(m.find_driver(&topo.functions[rp]), Some(0), "root port → pcieport");
        assert_eq!(m.find_driver(&topo.functions[edu]), Some(1), "edu → edu");
        assert_eq!(m.bind(edu, &topo.functions[edu], 0), Err(BindError::NoMatch));
        m.bind(edu, &topo.functions[edu], 2).unwrap();
        assert_eq!(m.bind(edu, &topo.functions[edu], 1), Err(BindError::AlreadyBound));
        assert_eq!(m.unbind(rp), Err(BindError::NotBound));
    }
}
