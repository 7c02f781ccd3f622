//! A simulated configuration space for host tests (cargo feature `sim`).
//!
//! Functions are built in a line or two with [`SimFn`]: ids, class, header
//! type, capabilities laid out and chained automatically, bridge bus
//! numbers. Only the registers real hardware lets software change are
//! writable (ACS control bits that the capability implements, as in QEMU's
//! `pcie_acs_init`; ARI Forwarding Enable), so a test sees what a guest
//! would. Raw pokes after layout build malformed spaces on purpose.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::config::{Bdf, ConfigSpace};
use crate::regs::*;

/// One write as seen by the simulated hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimWrite {
    pub bdf: Bdf,
    pub offset: u16,
    pub size: u8,
    pub value: u32,
}

struct SimSpace {
    data: Vec<u8>,
    wmask: Vec<u8>,
    /// Write-one-to-clear bits (status registers).
    w1c: Vec<u8>,
    extended: bool,
    /// Offset of Slot Control when the function has a slot: every write to
    /// it is a command and sets Command Completed in Slot Status, as QEMU's
    /// `pcie_cap_slot_write_config` does.
    sltctl: Option<u16>,
}

/// The simulated segment(s): absent functions read all ones.
#[derive(Default)]
pub struct SimConfig {
    spaces: BTreeMap<Bdf, SimSpace>,
    /// Every write, in order, including those to read-only bits.
    pub writes: Vec<SimWrite>,
    /// Functions answering Configuration Request Retry Status: how many
    /// more Vendor ID reads return 0x0001 (as a root port with CRS Software
    /// Visibility enabled completes them).
    crs: BTreeMap<Bdf, u32>,
    /// Every `crs_delay_ms` asked for, in order.
    pub delays: Vec<u32>,
}

impl SimConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Place a function at `bdf` (replacing any there).
    pub fn add(&mut self, bdf: Bdf, f: SimFn) -> &mut Self {
        let (data, wmask, w1c, sltctl) = f.layout();
        self.spaces.insert(bdf, SimSpace { data, wmask, w1c, extended: f.extended, sltctl });
        self
    }

    /// Make the next `reads` Vendor ID reads of `bdf` answer CRS (vendor
    /// 0x0001, the other bytes all ones).
    pub fn crs(&mut self, bdf: Bdf, reads: u32) -> &mut Self {
        self.crs.insert(bdf, reads);
        self
    }

    /// Shorthand: `add` at segment 0.
    pub fn at(&mut self, bus: u8, dev: u8, func: u8, f: SimFn) -> &mut Self {
        self.add(Bdf::new(0, bus, dev, func), f)
    }

    /// Read a register directly (no write log), for test assertions.
    pub fn peek16(&self, bdf: Bdf, offset: u16) -> u16 {
        self.get(bdf, offset, 2) as u16
    }
    /// Read a dword directly (no write log), for test assertions.
    pub fn peek32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.get(bdf, offset, 4)
    }

    /// A read as the device answers it: CRS first, if it is still retrying.
    fn read(&mut self, bdf: Bdf, offset: u16, size: usize) -> u32 {
        if offset == PCI_VENDOR_ID
            && let Some(left) = self.crs.get_mut(&bdf)
            && *left > 0
        {
            *left -= 1;
            return 0xffff_0001 & (u32::MAX >> (32 - 8 * size));
        }
        self.get(bdf, offset, size)
    }

    /// The hardware sets `bits` in the register at `offset` (an event: a
    /// status bit, a button press, an error), whatever the write masks say.
    pub fn raise(&mut self, bdf: Bdf, offset: u16, size: usize, bits: u32) {
        if let Some(s) = self.spaces.get_mut(&bdf) {
            for i in 0..size {
                s.data[usize::from(offset) + i] |= (bits >> (8 * i)) as u8;
            }
        }
    }

    /// The hardware clears `bits` (presence gone, power state changed).
    pub fn lower(&mut self, bdf: Bdf, offset: u16, size: usize, bits: u32) {
        if let Some(s) = self.spaces.get_mut(&bdf) {
            for i in 0..size {
                s.data[usize::from(offset) + i] &= !((bits >> (8 * i)) as u8);
            }
        }
    }

    fn get(&self, bdf: Bdf, offset: u16, size: usize) -> u32 {
        let Some(s) = self.spaces.get(&bdf) else {
            return u32::MAX;
        };
        let limit = if s.extended { 4096 } else { 256 };
        let start = usize::from(offset);
        if start + size > limit {
            return u32::MAX;
        }
        (0..size).fold(0, |acc, i| acc | (u32::from(s.data[start + i]) << (8 * i)))
    }

    fn put(&mut self, bdf: Bdf, offset: u16, size: usize, value: u32) {
        self.writes.push(SimWrite { bdf, offset, size: size as u8, value });
        let Some(s) = self.spaces.get_mut(&bdf) else {
            return;
        };
        let limit = if s.extended { 4096 } else { 256 };
        let start = usize::from(offset);
        if start + size > limit {
            return;
        }
        for i in 0..size {
            let byte = (value >> (8 * i)) as u8;
            let m = s.wmask[start + i];
            s.data[start + i] = (s.data[start + i] & !m) | (byte & m);
            s.data[start + i] &= !(byte & s.w1c[start + i]);
        }
        if let Some(ctl) = s.sltctl
            && offset <= ctl
            && ctl < offset + size as u16
        {
            s.data[usize::from(ctl) + 2] |= PCI_EXP_SLTSTA_CC as u8;
        }
    }
}

impl ConfigSpace for SimConfig {
    fn read8(&mut self, bdf: Bdf, offset: u16) -> u8 {
        self.read(bdf, offset, 1) as u8
    }
    fn read16(&mut self, bdf: Bdf, offset: u16) -> u16 {
        self.read(bdf, offset, 2) as u16
    }
    fn read32(&mut self, bdf: Bdf, offset: u16) -> u32 {
        self.read(bdf, offset, 4)
    }
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) {
        self.put(bdf, offset, 1, value.into());
    }
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) {
        self.put(bdf, offset, 2, value.into());
    }
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        self.put(bdf, offset, 4, value);
    }
    fn has_extended_space(&self, bdf: Bdf) -> bool {
        self.spaces.get(&bdf).is_some_and(|s| s.extended)
    }
    fn crs_delay_ms(&mut self, ms: u32) {
        self.delays.push(ms);
    }
}

#[derive(Clone, Copy, Debug)]
enum StdCap {
    Pm,
    /// log2 of the vectors, 64-bit address, per-vector mask.
    Msi {
        mmc: u8,
        is64: bool,
        mask: bool,
    },
    /// Table size, table BIR and offset, PBA BIR and offset.
    Msix {
        size: u16,
        table: u32,
        pba: u32,
    },
    Ssvid,
    Pcie {
        port_type: u8,
        slot_hpc: Option<bool>,
        ari_fwd: bool,
    },
    Pcix {
        status: u32,
    },
}

#[derive(Clone, Copy, Debug)]
enum ExtCap {
    Aer,
    Acs { cap: u16, ctrl: u16 },
    Ari { next: u8 },
    Sriov { total: u16, initial: u16 },
    Dpc,
}

/// A function under construction.
#[derive(Clone, Debug)]
pub struct SimFn {
    vendor: u16,
    device: u16,
    class: u32,
    revision: u8,
    header_type: u8,
    multifunction: bool,
    bus_numbers: Option<(u8, u8, u8)>,
    subsystem: (u16, u16),
    std_caps: Vec<StdCap>,
    ext_caps: Vec<ExtCap>,
    pokes: Vec<(u16, u8)>,
    wmask_pokes: Vec<(u16, u16)>,
    extended: bool,
    fill: u8,
    /// Slot Capabilities bits besides Hot-Plug Capable.
    slot_cap_extra: u32,
}

impl SimFn {
    pub fn new(vendor: u16, device: u16) -> Self {
        Self {
            vendor,
            device,
            class: 0xff0000,
            revision: 0,
            header_type: PCI_HEADER_TYPE_NORMAL,
            multifunction: false,
            bus_numbers: None,
            subsystem: (0, 0),
            std_caps: Vec::new(),
            ext_caps: Vec::new(),
            pokes: Vec::new(),
            wmask_pokes: Vec::new(),
            extended: true,
            fill: 0,
            slot_cap_extra: 0,
        }
    }
    /// Every byte reads 0xff (a vanished device; vendor 0xffff = absent).
    pub fn all_ones() -> Self {
        Self { fill: 0xff, ..Self::new(0xffff, 0xffff) }
    }
    pub fn class(mut self, class: u32) -> Self {
        self.class = class;
        self
    }
    pub fn revision(mut self, rev: u8) -> Self {
        self.revision = rev;
        self
    }
    pub fn header_type(mut self, t: u8) -> Self {
        self.header_type = t;
        self
    }
    /// Header bit 7.
    pub fn multifunction(mut self) -> Self {
        self.multifunction = true;
        self
    }
    pub fn subsystem(mut self, vendor: u16, device: u16) -> Self {
        self.subsystem = (vendor, device);
        self
    }
    /// Type 1 header with these bus numbers.
    pub fn bridge(mut self, primary: u8, secondary: u8, subordinate: u8) -> Self {
        self.header_type = PCI_HEADER_TYPE_BRIDGE;
        self.bus_numbers = Some((primary, secondary, subordinate));
        self
    }
    /// PCIe capability (version 2) with this `PCI_EXP_TYPE_*`.
    pub fn pcie(mut self, port_type: u8) -> Self {
        self.std_caps.push(StdCap::Pcie { port_type, slot_hpc: None, ari_fwd: false });
        self
    }
    /// Adds Slot Implemented (with Hot-Plug Capable as given) to the PCIe cap.
    pub fn slot(mut self, hotplug: bool) -> Self {
        for c in &mut self.std_caps {
            if let StdCap::Pcie { slot_hpc, .. } = c {
                *slot_hpc = Some(hotplug);
            }
        }
        self
    }
    /// Slot Capabilities bits besides Hot-Plug Capable (with `slot(true)`).
    pub fn slot_cap(mut self, bits: u32) -> Self {
        self.slot_cap_extra = bits;
        self
    }
    /// DEVCAP2 ARI Forwarding Supported on the PCIe cap.
    pub fn ari_forwarding(mut self) -> Self {
        for c in &mut self.std_caps {
            if let StdCap::Pcie { ari_fwd, .. } = c {
                *ari_fwd = true;
            }
        }
        self
    }
    pub fn pm(mut self) -> Self {
        self.std_caps.push(StdCap::Pm);
        self
    }
    /// One vector, 64-bit, no per-vector mask (edu, xio3130).
    pub fn msi(self) -> Self {
        self.msi_with(0, true, false)
    }
    /// An MSI capability sending `1 << mmc` vectors; the control, address,
    /// data and mask registers are writable as on hardware.
    pub fn msi_with(mut self, mmc: u8, is64: bool, mask: bool) -> Self {
        self.std_caps.push(StdCap::Msi { mmc, is64, mask });
        self
    }
    /// One entry, table and PBA in BAR0 (QEMU's pcie-root-port layout).
    pub fn msix(self) -> Self {
        self.msix_with(1, 0, 0, 0x800)
    }
    /// An MSI-X capability of `size` entries, table and PBA in BAR `bir`
    /// at the given offsets.
    pub fn msix_with(mut self, size: u16, bir: u8, table: u32, pba: u32) -> Self {
        let bir = u32::from(bir);
        self.std_caps.push(StdCap::Msix { size, table: table | bir, pba: pba | bir });
        self
    }
    pub fn ssvid(mut self) -> Self {
        self.std_caps.push(StdCap::Ssvid);
        self
    }
    pub fn aer(mut self) -> Self {
        self.ext_caps.push(ExtCap::Aer);
        self
    }
    /// ACS capability: `cap` word (implemented bits, writable in `ctrl`)
    /// and initial `ctrl` word.
    pub fn acs(mut self, cap: u16, ctrl: u16) -> Self {
        self.ext_caps.push(ExtCap::Acs { cap, ctrl });
        self
    }
    pub fn ari(mut self, next_function: u8) -> Self {
        self.ext_caps.push(ExtCap::Ari { next: next_function });
        self
    }
    pub fn sriov(mut self, total_vfs: u16, initial_vfs: u16) -> Self {
        self.ext_caps.push(ExtCap::Sriov { total: total_vfs, initial: initial_vfs });
        self
    }
    pub fn dpc(mut self) -> Self {
        self.ext_caps.push(ExtCap::Dpc);
        self
    }
    /// Override the write mask of the 16 bits at `offset` (after layout):
    /// bits outside `mask` ignore writes (hardwired).
    pub fn wmask16(mut self, offset: u16, mask: u16) -> Self {
        self.wmask_pokes.push((offset, mask));
        self
    }
    /// A PCI-X capability with this PCI-X Status register.
    pub fn pcix(mut self, status: u32) -> Self {
        self.std_caps.push(StdCap::Pcix { status });
        self
    }
    /// Only the 256-byte legacy space is reachable.
    pub fn legacy_only(mut self) -> Self {
        self.extended = false;
        self
    }
    /// Overwrite bytes after layout (for malformed spaces).
    pub fn poke8(mut self, offset: u16, value: u8) -> Self {
        self.pokes.push((offset, value));
        self
    }
    pub fn poke16(self, offset: u16, value: u16) -> Self {
        self.poke8(offset, value as u8).poke8(offset + 1, (value >> 8) as u8)
    }
    pub fn poke32(self, offset: u16, value: u32) -> Self {
        self.poke16(offset, value as u16).poke16(offset + 2, (value >> 16) as u16)
    }

    fn layout(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>, Option<u16>) {
        let mut d = vec![self.fill; 4096];
        let mut w = vec![0u8; 4096];
        let mut c = vec![0u8; 4096];
        let mut sltctl = None;
        if self.fill == 0 {
            self.layout_header(&mut d, &mut w);
            sltctl = self.layout_std_caps(&mut d, &mut w, &mut c);
            self.layout_ext_caps(&mut d, &mut w, &mut c);
        }
        for &(off, v) in &self.pokes {
            if let Some(b) = d.get_mut(usize::from(off)) {
                *b = v;
            }
        }
        for &(off, m) in &self.wmask_pokes {
            if usize::from(off) + 2 <= w.len() {
                put16(&mut w, off, m);
            }
        }
        (d, w, c, sltctl)
    }

    fn layout_header(&self, d: &mut [u8], w: &mut [u8]) {
        // Command: I/O, memory, bus master, SERR#, INTx disable.
        put16(w, PCI_COMMAND, 0x0547);
        put16(d, PCI_VENDOR_ID, self.vendor);
        put16(d, PCI_DEVICE_ID, self.device);
        put32(d, PCI_CLASS_REVISION, (self.class << 8) | u32::from(self.revision));
        let mfd = if self.multifunction { PCI_HEADER_TYPE_MFD } else { 0 };
        d[usize::from(PCI_HEADER_TYPE)] = self.header_type | mfd;
        if let Some((p, s, sub)) = self.bus_numbers {
            d[usize::from(PCI_PRIMARY_BUS)] = p;
            d[usize::from(PCI_SECONDARY_BUS)] = s;
            d[usize::from(PCI_SUBORDINATE_BUS)] = sub;
            // Bridge Control: SERR# enable.
            put16(w, PCI_BRIDGE_CONTROL, PCI_BRIDGE_CTL_SERR);
        } else if self.header_type == PCI_HEADER_TYPE_NORMAL {
            put16(d, PCI_SUBSYSTEM_VENDOR_ID, self.subsystem.0);
            put16(d, PCI_SUBSYSTEM_ID, self.subsystem.1);
        }
    }

    fn layout_std_caps(&self, d: &mut [u8], w: &mut [u8], c: &mut [u8]) -> Option<u16> {
        let mut sltctl = None;
        let mut pos: u16 = PCI_STD_HEADER_SIZEOF;
        let mut link =
            if self.header_type == PCI_HEADER_TYPE_CARDBUS { PCI_CB_CAPABILITY_LIST } else { PCI_CAPABILITY_LIST };
        for cap in &self.std_caps {
            let (id, len) = match cap {
                StdCap::Pm => (PCI_CAP_ID_PM, 8),
                StdCap::Msi { .. } => (PCI_CAP_ID_MSI, 0x18),
                StdCap::Msix { .. } => (PCI_CAP_ID_MSIX, 0x0c),
                StdCap::Ssvid => (PCI_CAP_ID_SSVID, 8),
                StdCap::Pcie { .. } => (PCI_CAP_ID_EXP, 0x3c),
                StdCap::Pcix { .. } => (PCI_CAP_ID_PCIX, 8),
            };
            if pos + len > PCI_CFG_SPACE_SIZE {
                break;
            }
            d[usize::from(link)] = pos as u8;
            d[usize::from(pos)] = id;
            if let StdCap::Pcie { port_type, slot_hpc, ari_fwd } = *cap {
                let slot = if slot_hpc.is_some() { PCI_EXP_FLAGS_SLOT } else { 0 };
                put16(d, pos + PCI_EXP_FLAGS, 2 | (u16::from(port_type) << 4) | slot);
                put32(d, pos + PCI_EXP_LNKCAP, 0x0000_0011); // 2.5 GT/s x1
                put16(w, pos + PCI_EXP_DEVCTL, 0x000f);
                put16(c, pos + PCI_EXP_DEVSTA, 0x000f);
                if slot_hpc == Some(true) {
                    put32(d, pos + PCI_EXP_SLTCAP, PCI_EXP_SLTCAP_HPC | self.slot_cap_extra);
                    // QEMU 7.2: power on, indicators as firmware left them;
                    // DLLSCE and PFDE are not writable.
                    put16(w, pos + PCI_EXP_SLTCTL, 0x0ffd);
                    put16(c, pos + PCI_EXP_SLTSTA, 0x011f);
                    sltctl = Some(pos + PCI_EXP_SLTCTL);
                }
                if port_type == PCI_EXP_TYPE_ROOT_PORT || port_type == PCI_EXP_TYPE_RC_EC {
                    put16(w, pos + PCI_EXP_RTCTL, 0x001f);
                }
                if ari_fwd {
                    put32(d, pos + PCI_EXP_DEVCAP2, PCI_EXP_DEVCAP2_ARI);
                    put16(w, pos + PCI_EXP_DEVCTL2, PCI_EXP_DEVCTL2_ARI);
                }
            }
            match *cap {
                StdCap::Msi { mmc, is64, mask } => {
                    let flags = (u16::from(mmc) << 1) | if is64 { 0x80 } else { 0 } | if mask { 0x100 } else { 0 };
                    put16(d, pos + 2, flags);
                    put16(w, pos + 2, 0x0071);
                    let data = if is64 { 0x0c } else { 0x08 };
                    put32(w, pos + 4, 0xffff_fffc);
                    if is64 {
                        put32(w, pos + 8, u32::MAX);
                    }
                    put16(w, pos + data, u16::MAX);
                    if mask {
                        put32(w, pos + data + 4, u32::MAX);
                    }
                }
                StdCap::Msix { size, table, pba } => {
                    put16(d, pos + 2, size.saturating_sub(1) & 0x7ff);
                    put16(w, pos + 2, 0xc000);
                    put32(d, pos + 4, table);
                    put32(d, pos + 8, pba);
                }
                StdCap::Pcix { status } => put32(d, pos + PCI_X_STATUS, status),
                _ => {}
            }
            link = pos + 1;
            pos += len;
        }
        if !self.std_caps.is_empty() {
            put16(d, PCI_STATUS, PCI_STATUS_CAP_LIST);
        }
        sltctl
    }

    fn layout_ext_caps(&self, d: &mut [u8], w: &mut [u8], c: &mut [u8]) {
        let mut pos: u16 = PCI_CFG_SPACE_SIZE;
        let mut prev: Option<u16> = None;
        for cap in &self.ext_caps {
            let (id, len) = match cap {
                ExtCap::Aer => (PCI_EXT_CAP_ID_ERR, 0x48),
                ExtCap::Acs { .. } => (PCI_EXT_CAP_ID_ACS, 8),
                ExtCap::Ari { .. } => (PCI_EXT_CAP_ID_ARI, 8),
                ExtCap::Sriov { .. } => (PCI_EXT_CAP_ID_SRIOV, 0x40),
                ExtCap::Dpc => (PCI_EXT_CAP_ID_DPC, 0x5c),
            };
            if let Some(p) = prev {
                let h = get32(d, p) | (u32::from(pos) << 20);
                put32(d, p, h);
            }
            put32(d, pos, u32::from(id) | (1 << 16));
            match *cap {
                ExtCap::Acs { cap, ctrl } => {
                    put16(d, pos + PCI_ACS_CAP, cap);
                    put16(d, pos + PCI_ACS_CTRL, ctrl);
                    // QEMU pcie_acs_init: only implemented bits are writable.
                    put16(w, pos + PCI_ACS_CTRL, cap & 0x7f);
                }
                ExtCap::Ari { next } => put16(d, pos + PCI_ARI_CAP, u16::from(next) << 8),
                ExtCap::Sriov { total, initial } => {
                    put16(d, pos + PCI_SRIOV_TOTAL_VF, total);
                    put16(d, pos + PCI_SRIOV_INITIAL_VF, initial);
                }
                ExtCap::Aer => {
                    put32(c, pos + PCI_ERR_UNCOR_STATUS, 0xffff_ffff);
                    put32(c, pos + PCI_ERR_COR_STATUS, 0xffff_ffff);
                    put32(w, pos + PCI_ERR_ROOT_COMMAND, 0x7);
                    put32(c, pos + PCI_ERR_ROOT_STATUS, 0x7f);
                }
                ExtCap::Dpc => {}
            }
            prev = Some(pos);
            pos += len;
        }
    }
}

fn put16(d: &mut [u8], off: u16, v: u16) {
    d[usize::from(off)..usize::from(off) + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(d: &mut [u8], off: u16, v: u32) {
    d[usize::from(off)..usize::from(off) + 4].copy_from_slice(&v.to_le_bytes());
}
fn get32(d: &[u8], off: u16) -> u32 {
    let o = usize::from(off);
    u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// The QEMU 7.2 q35 device models the scenarios use, as Linux sees them.
pub mod qemu {
    use super::SimFn;
    use crate::regs::*;

    /// QEMU's ACS capability on downstream ports: SV|TB|RR|CR|UF|DT.
    pub const QEMU_ACS_CAP: u16 = 0x5f;
    /// QEMU 7.2's Slot Capabilities besides HPC (`pcie_cap_slot_init`):
    /// attention button, power controller, attention and power indicators,
    /// hot-plug surprise, electromechanical interlock (0x0002007b in all).
    pub const QEMU_SLTCAP: u32 = PCI_EXP_SLTCAP_ABP
        | PCI_EXP_SLTCAP_PCP
        | PCI_EXP_SLTCAP_AIP
        | PCI_EXP_SLTCAP_PIP
        | PCI_EXP_SLTCAP_HPS
        | PCI_EXP_SLTCAP_EIP;

    /// q35 host bridge 00:00.0 (8086:29c0), conventional.
    pub fn q35_host() -> SimFn {
        SimFn::new(0x8086, 0x29c0).class(0x060000)
    }
    /// `pcie-root-port` (1b36:000c): AER at 0x100, then ACS at 0x148 unless
    /// `disable-acs=true`.
    pub fn root_port(acs: bool, secondary: u8, subordinate: u8) -> SimFn {
        let f = SimFn::new(0x1b36, 0x000c)
            .class(0x060400)
            .bridge(0, secondary, subordinate)
            .pcie(PCI_EXP_TYPE_ROOT_PORT)
            .slot(true)
            .slot_cap(QEMU_SLTCAP)
            .ari_forwarding()
            .msi()
            .pm()
            .aer();
        if acs { f.acs(QEMU_ACS_CAP, 0) } else { f }
    }
    /// `ioh3420` (8086:3420): Intel root port model without ACS.
    pub fn ioh3420(secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x8086, 0x3420)
            .class(0x060400)
            .bridge(0, secondary, subordinate)
            .pcie(PCI_EXP_TYPE_ROOT_PORT)
            .slot(true)
            .slot_cap(QEMU_SLTCAP)
            // hw/pci-bridge/ioh3420.c: 2 vectors, 32-bit, per-vector mask.
            .msi_with(1, false, true)
            .aer()
    }
    /// `x3130-upstream` (104c:8232).
    pub fn usp(primary: u8, secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x104c, 0x8232)
            .class(0x060400)
            .bridge(primary, secondary, subordinate)
            .pcie(PCI_EXP_TYPE_UPSTREAM)
            .msi()
            .pm()
            .aer()
    }
    /// `xio3130-downstream` (104c:8233): no ACS in QEMU 7.2.
    pub fn dsp(primary: u8, secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x104c, 0x8233)
            .class(0x060400)
            .bridge(primary, secondary, subordinate)
            .pcie(PCI_EXP_TYPE_DOWNSTREAM)
            .slot(true)
            .slot_cap(QEMU_SLTCAP)
            .msi()
            .pm()
            .aer()
    }
    /// `pcie-pci-bridge` (1b36:000e): PCIe type 7.
    pub fn pcie_pci_bridge(primary: u8, secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x1b36, 0x000e)
            .class(0x060400)
            .bridge(primary, secondary, subordinate)
            .pcie(PCI_EXP_TYPE_PCI_BRIDGE)
            .msi()
            .aer()
    }
    /// `pci-bridge` (1b36:0001): conventional, with SHPC in QEMU (not modelled).
    pub fn pci_bridge(primary: u8, secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x1b36, 0x0001).class(0x060400).bridge(primary, secondary, subordinate).msi()
    }
    /// `i82801b11-bridge` (8086:244e): conventional DMI-to-PCI bridge.
    pub fn i82801b11(primary: u8, secondary: u8, subordinate: u8) -> SimFn {
        SimFn::new(0x8086, 0x244e).class(0x060401).bridge(primary, secondary, subordinate).ssvid()
    }
    /// `pxb-pcie` (1b36:000b): a host-bridge function on bus 0; the bus it
    /// opens is a separate root bus.
    pub fn pxb_host() -> SimFn {
        SimFn::new(0x1b36, 0x000b).class(0x060000)
    }
    /// `edu` (1234:11e8): conventional PCI.
    pub fn edu() -> SimFn {
        SimFn::new(0x1234, 0x11e8).class(0x00ff00).msi()
    }
    /// `pci-testdev` (1b36:0005): conventional PCI.
    pub fn pci_testdev() -> SimFn {
        SimFn::new(0x1b36, 0x0005).class(0x00ff00)
    }
    /// `e1000e` (8086:10d3): PCIe endpoint without ACS.
    pub fn e1000e() -> SimFn {
        SimFn::new(0x8086, 0x10d3).class(0x020000).pm().pcie(PCI_EXP_TYPE_ENDPOINT).msi().msix().aer()
    }
    /// `nvme` (1b36:0010): PCIe endpoint.
    pub fn nvme() -> SimFn {
        SimFn::new(0x1b36, 0x0010).class(0x010802).pm().msix().pcie(PCI_EXP_TYPE_ENDPOINT)
    }
    /// ICH9 LPC 00:1f.0 (8086:2918), function 0 of a multifunction device.
    pub fn ich9_lpc() -> SimFn {
        SimFn::new(0x8086, 0x2918).class(0x060100).multifunction()
    }
    /// ICH9 AHCI 00:1f.2 (8086:2922).
    pub fn ich9_ahci() -> SimFn {
        SimFn::new(0x8086, 0x2922).class(0x010601).msi()
    }
    /// ICH9 SMBus 00:1f.3 (8086:2930).
    pub fn ich9_smbus() -> SimFn {
        SimFn::new(0x8086, 0x2930).class(0x0c0500)
    }
}
