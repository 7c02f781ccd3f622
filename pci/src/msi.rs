//! MSI and MSI-X: capability layouts, message composition and the
//! programming sequences, following Linux 6.1 (drivers/pci/msi/msi.c:
//! `msi_capability_init`, `msix_capability_init`, `pci_msi_mask`,
//! `__pci_write_msi_msg`; PCI Local Bus 3.0 §6.8) and the message formats of
//! the Intel SDM Vol. 3A §11.11 (compatibility format) and VT-d 4.1 §5.1.2.2
//! (remappable format).
//!
//! Configuration space goes through [`ConfigSpace`]; the MSI-X table lives
//! in a memory BAR, which this crate cannot touch: it goes through
//! [`MsixTable`], which the kernel implements over an uncached mapping and
//! the tests over a plain array. INTx is disabled (Command bit 10) whenever
//! MSI or MSI-X is enabled, as `pci_intx_for_msi` does.

use crate::config::{Bdf, ConfigSpace};
use crate::regs::{PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND};
use core::fmt;

// --- MSI capability (pci_regs.h) ---
pub const PCI_MSI_FLAGS: u16 = 0x02;
pub const PCI_MSI_FLAGS_ENABLE: u16 = 0x0001;
/// Multiple Message Capable, log2 of the vectors the function can send.
pub const PCI_MSI_FLAGS_QMASK: u16 = 0x000e;
/// Multiple Message Enable, log2 of the vectors enabled.
pub const PCI_MSI_FLAGS_QSIZE: u16 = 0x0070;
pub const PCI_MSI_FLAGS_64BIT: u16 = 0x0080;
/// Per-vector masking capable.
pub const PCI_MSI_FLAGS_MASKBIT: u16 = 0x0100;
pub const PCI_MSI_ADDRESS_LO: u16 = 0x04;
pub const PCI_MSI_ADDRESS_HI: u16 = 0x08;
pub const PCI_MSI_DATA_32: u16 = 0x08;
pub const PCI_MSI_DATA_64: u16 = 0x0c;
pub const PCI_MSI_MASK_32: u16 = 0x0c;
pub const PCI_MSI_MASK_64: u16 = 0x10;
pub const PCI_MSI_PENDING_32: u16 = 0x10;
pub const PCI_MSI_PENDING_64: u16 = 0x14;

// --- MSI-X capability ---
pub const PCI_MSIX_FLAGS: u16 = 0x02;
/// Table size minus one.
pub const PCI_MSIX_FLAGS_QSIZE: u16 = 0x07ff;
pub const PCI_MSIX_FLAGS_MASKALL: u16 = 0x4000;
pub const PCI_MSIX_FLAGS_ENABLE: u16 = 0x8000;
pub const PCI_MSIX_TABLE: u16 = 0x04;
pub const PCI_MSIX_PBA: u16 = 0x08;
/// BAR indicator in the low 3 bits of the table and PBA dwords.
pub const PCI_MSIX_BIR: u32 = 0x7;
pub const PCI_MSIX_ENTRY_SIZE: u64 = 16;
pub const PCI_MSIX_ENTRY_LOWER_ADDR: u64 = 0x0;
pub const PCI_MSIX_ENTRY_UPPER_ADDR: u64 = 0x4;
pub const PCI_MSIX_ENTRY_DATA: u64 = 0x8;
pub const PCI_MSIX_ENTRY_VECTOR_CTRL: u64 = 0xc;
pub const PCI_MSIX_ENTRY_CTRL_MASKBIT: u32 = 0x1;

/// Command register: INTx emulation disable.
pub use crate::regs::PCI_COMMAND_INTX_DISABLE;
/// Command register: bus master enable. A function's MSI is a memory write:
/// without it the message is dropped (QEMU drops it silently).
pub use crate::regs::PCI_COMMAND_MASTER;
const PCI_BASE_ADDRESS_0: u16 = 0x10;

/// The interrupt address window (SDM §11.11.1): 0xFEEx_xxxx.
pub const MSI_ADDRESS_BASE: u64 = 0xfee0_0000;

/// One message: the address and data a function writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    pub address: u64,
    pub data: u32,
}

impl MsiMessage {
    /// Compatibility format (SDM §11.11.1-2): physical destination mode,
    /// fixed delivery, edge trigger; `dest` is the 8-bit xAPIC id (bits
    /// 19:12), `vector` in data bits 7:0.
    pub const fn compatibility(dest: u8, vector: u8) -> Self {
        Self { address: MSI_ADDRESS_BASE | ((dest as u64) << 12), data: vector as u32 }
    }

    /// Remappable format (VT-d 4.1 §5.1.2.2, Linux `fill_msi_msg`): bit 4
    /// set, handle[14:0] in bits 19:5, handle[15] in bit 2, SHV (bit 3) set
    /// and the subhandle in data, as Linux always does. The remapping
    /// hardware uses entry `handle + subhandle` (a multi-message function
    /// puts its message number in the low data bits).
    pub const fn remappable(handle: u16, subhandle: u16) -> Self {
        let h = handle as u64;
        let address = MSI_ADDRESS_BASE | ((h & 0x7fff) << 5) | (1 << 4) | (1 << 3) | ((h >> 15) << 2);
        Self { address, data: subhandle as u32 }
    }

    /// Whether this message is in the remappable format (address bit 4).
    pub const fn is_remappable(&self) -> bool {
        self.address & (1 << 4) != 0
    }

    /// The interrupt index the remapping hardware looks up for this
    /// message and message number `n` (0 for single-message functions):
    /// `handle + subhandle` when SHV is set, `handle` otherwise (§5.1.2.2).
    pub const fn remap_index(&self, n: u32) -> Option<u32> {
        if !self.is_remappable() {
            return None;
        }
        let handle = ((self.address >> 5) & 0x7fff) as u32 | ((((self.address >> 2) & 1) as u32) << 15);
        if self.address & (1 << 3) != 0 { Some(handle + ((self.data | n) & 0xffff)) } else { Some(handle) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiError {
    /// The function has no such capability.
    NoCapability,
    /// More vectors asked for than the function supports (or zero).
    Vectors { asked: u32, supported: u32 },
    /// The MSI-X table's BAR is not a usable memory BAR.
    Bar { bir: u8, value: u64 },
    /// A 32-bit-only MSI capability cannot send a message above 4 GiB.
    Address(u64),
    /// The entry or message number is past the table or the enabled block.
    Entry(u32),
}

impl fmt::Display for MsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCapability => f.write_str("no such interrupt capability"),
            Self::Vectors { asked, supported } => {
                write!(f, "{asked} vectors asked for, the function supports {supported}")
            }
            Self::Bar { bir, value } => write!(f, "MSI-X table BAR{bir} ({value:#x}) is not a usable memory BAR"),
            Self::Address(a) => write!(f, "message address {a:#x} does not fit a 32-bit MSI capability"),
            Self::Entry(n) => write!(f, "vector {n} is outside the table"),
        }
    }
}

/// Set or clear Command.INTx Disable (Linux `pci_intx`).
pub fn set_intx_disabled(cfg: &mut dyn ConfigSpace, bdf: Bdf, disabled: bool) {
    let cmd = cfg.read16(bdf, PCI_COMMAND);
    let new = if disabled { cmd | PCI_COMMAND_INTX_DISABLE } else { cmd & !PCI_COMMAND_INTX_DISABLE };
    if new != cmd {
        cfg.write16(bdf, PCI_COMMAND, new);
    }
}

/// Linux `pci_msi_init` and `pci_msix_init`, run for every function as it
/// is scanned, before any driver: MSI and MSI-X that firmware or a
/// previous kernel left enabled are turned off, so that the function sends
/// no message someone else programmed (another vector, NMI or INIT in
/// compatibility format, or a stale remapping handle) before a driver sets
/// up its own. Only a set Enable bit is written (MSI-X Function Mask is
/// left as found, as Linux does). Returns (MSI was on, MSI-X was on).
pub fn disable_left_enabled(cfg: &mut dyn ConfigSpace, bdf: Bdf, msi: Option<u16>, msix: Option<u16>) -> (bool, bool) {
    let mut off = |cap: Option<u16>, enable: u16| {
        cap.is_some_and(|c| {
            let flags = cfg.read16(bdf, c + PCI_MSI_FLAGS);
            let on = flags != u16::MAX && flags & enable != 0;
            if on {
                cfg.write16(bdf, c + PCI_MSI_FLAGS, flags & !enable);
            }
            on
        })
    };
    (off(msi, PCI_MSI_FLAGS_ENABLE), off(msix, PCI_MSIX_FLAGS_ENABLE))
}

/// An MSI capability as the function describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiCap {
    pub offset: u16,
    pub is_64bit: bool,
    pub per_vector_mask: bool,
    /// Vectors the function can send (1, 2, 4, ..., 32).
    pub max_vectors: u32,
}

impl MsiCap {
    /// Read the capability at `offset` (found by the capability walk).
    pub fn read(cfg: &mut dyn ConfigSpace, bdf: Bdf, offset: u16) -> Result<Self, MsiError> {
        if cfg.read8(bdf, offset) != PCI_CAP_ID_MSI {
            return Err(MsiError::NoCapability);
        }
        let flags = cfg.read16(bdf, offset + PCI_MSI_FLAGS);
        let mmc = u32::from((flags & PCI_MSI_FLAGS_QMASK) >> 1).min(5);
        Ok(Self {
            offset,
            is_64bit: flags & PCI_MSI_FLAGS_64BIT != 0,
            per_vector_mask: flags & PCI_MSI_FLAGS_MASKBIT != 0,
            max_vectors: 1 << mmc,
        })
    }

    fn data_reg(&self) -> u16 {
        self.offset + if self.is_64bit { PCI_MSI_DATA_64 } else { PCI_MSI_DATA_32 }
    }

    fn mask_reg(&self) -> u16 {
        self.offset + if self.is_64bit { PCI_MSI_MASK_64 } else { PCI_MSI_MASK_32 }
    }

    /// The vector count `msi_capability_init` enables for `asked`: the
    /// next power of two, which must not exceed what the function can do.
    pub fn vectors_for(&self, asked: u32) -> Result<u32, MsiError> {
        let n = asked.max(1).next_power_of_two();
        if asked == 0 || n > self.max_vectors {
            return Err(MsiError::Vectors { asked, supported: self.max_vectors });
        }
        Ok(n)
    }

    /// Linux `msi_capability_init`: with MSI disabled, mask every vector
    /// (when maskable), write the message, set Multiple Message Enable,
    /// disable INTx, enable MSI, then unmask the `nvec` vectors in use.
    /// For a multi-message block the function ORs the message number into
    /// the low bits of `msg.data`: the caller gives a block of `nvec`
    /// consecutive vectors or remapping entries whose base has those bits
    /// clear. Returns the vector count enabled.
    pub fn enable(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf, msg: MsiMessage, asked: u32) -> Result<u32, MsiError> {
        let nvec = self.vectors_for(asked)?;
        if !self.is_64bit && msg.address >> 32 != 0 {
            return Err(MsiError::Address(msg.address));
        }
        let flags = cfg.read16(bdf, self.offset + PCI_MSI_FLAGS);
        cfg.write16(bdf, self.offset + PCI_MSI_FLAGS, flags & !PCI_MSI_FLAGS_ENABLE);
        if self.per_vector_mask {
            cfg.write32(bdf, self.mask_reg(), u32::MAX);
        }
        self.write_message(cfg, bdf, msg);
        let mme = (nvec.trailing_zeros() as u16) << 4;
        let flags = (flags & !(PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_ENABLE)) | mme;
        cfg.write16(bdf, self.offset + PCI_MSI_FLAGS, flags);
        set_intx_disabled(cfg, bdf, true);
        cfg.write16(bdf, self.offset + PCI_MSI_FLAGS, flags | PCI_MSI_FLAGS_ENABLE);
        if self.per_vector_mask {
            let used = if nvec == 32 { u32::MAX } else { (1u32 << nvec) - 1 };
            cfg.write32(bdf, self.mask_reg(), !used);
        }
        Ok(nvec)
    }

    /// Linux `__pci_write_msi_msg` for MSI: address (high half only on a
    /// 64-bit capability) and data.
    pub fn write_message(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf, msg: MsiMessage) {
        cfg.write32(bdf, self.offset + PCI_MSI_ADDRESS_LO, msg.address as u32);
        if self.is_64bit {
            cfg.write32(bdf, self.offset + PCI_MSI_ADDRESS_HI, (msg.address >> 32) as u32);
        }
        cfg.write16(bdf, self.data_reg(), msg.data as u16);
    }

    /// The message currently programmed.
    pub fn read_message(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf) -> MsiMessage {
        let lo = u64::from(cfg.read32(bdf, self.offset + PCI_MSI_ADDRESS_LO));
        let hi = if self.is_64bit { u64::from(cfg.read32(bdf, self.offset + PCI_MSI_ADDRESS_HI)) } else { 0 };
        MsiMessage { address: hi << 32 | lo, data: u32::from(cfg.read16(bdf, self.data_reg())) }
    }

    /// Linux `pci_msi_mask`/`pci_msi_unmask` for message `n`. Returns false
    /// when the function has no per-vector mask (nothing is written).
    pub fn set_masked(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf, n: u32, masked: bool) -> Result<bool, MsiError> {
        if n >= self.max_vectors {
            return Err(MsiError::Entry(n));
        }
        if !self.per_vector_mask {
            return Ok(false);
        }
        let m = cfg.read32(bdf, self.mask_reg());
        let m = if masked { m | 1 << n } else { m & !(1 << n) };
        cfg.write32(bdf, self.mask_reg(), m);
        Ok(true)
    }

    /// Whether message `n` is pending (only with per-vector masking).
    pub fn pending(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf, n: u32) -> bool {
        let reg = self.offset + if self.is_64bit { PCI_MSI_PENDING_64 } else { PCI_MSI_PENDING_32 };
        self.per_vector_mask && n < 32 && cfg.read32(bdf, reg) & (1 << n) != 0
    }

    /// Vectors enabled now (Multiple Message Enable), 0 when MSI is off.
    pub fn enabled_vectors(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf) -> u32 {
        let flags = cfg.read16(bdf, self.offset + PCI_MSI_FLAGS);
        if flags & PCI_MSI_FLAGS_ENABLE == 0 { 0 } else { 1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4).min(5) }
    }

    /// Linux `pci_msi_shutdown`: MSI off, INTx back on.
    pub fn disable(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf) {
        let flags = cfg.read16(bdf, self.offset + PCI_MSI_FLAGS);
        cfg.write16(bdf, self.offset + PCI_MSI_FLAGS, flags & !PCI_MSI_FLAGS_ENABLE);
        set_intx_disabled(cfg, bdf, false);
    }
}

/// The MSI-X table (or any memory the kernel maps for it): 32-bit accesses
/// at byte offsets from the table's start.
pub trait MsixTable {
    fn read32(&mut self, offset: u64) -> u32;
    fn write32(&mut self, offset: u64, value: u32);
}

/// An MSI-X capability as the function describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixCap {
    pub offset: u16,
    pub table_size: u32,
    pub table_bir: u8,
    pub table_offset: u32,
    pub pba_bir: u8,
    pub pba_offset: u32,
}

impl MsixCap {
    pub fn read(cfg: &mut dyn ConfigSpace, bdf: Bdf, offset: u16) -> Result<Self, MsiError> {
        if cfg.read8(bdf, offset) != PCI_CAP_ID_MSIX {
            return Err(MsiError::NoCapability);
        }
        let flags = cfg.read16(bdf, offset + PCI_MSIX_FLAGS);
        let table = cfg.read32(bdf, offset + PCI_MSIX_TABLE);
        let pba = cfg.read32(bdf, offset + PCI_MSIX_PBA);
        Ok(Self {
            offset,
            table_size: u32::from(flags & PCI_MSIX_FLAGS_QSIZE) + 1,
            table_bir: (table & PCI_MSIX_BIR) as u8,
            table_offset: table & !PCI_MSIX_BIR,
            pba_bir: (pba & PCI_MSIX_BIR) as u8,
            pba_offset: pba & !PCI_MSIX_BIR,
        })
    }

    /// The table's physical address: its BAR's base plus the offset
    /// (Linux `msix_map_region`). A BAR that is I/O, unassigned or an
    /// indicator past BAR5 is refused.
    pub fn table_address(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf) -> Result<u64, MsiError> {
        let base = memory_bar(cfg, bdf, self.table_bir)?;
        Ok(base + u64::from(self.table_offset))
    }

    /// Linux `msix_capability_init`: enable with the function masked, mask
    /// every entry, write the messages (entry `i` gets `msgs[i]`), disable
    /// INTx, then unmask the entries in use and the function.
    pub fn enable(
        &self,
        cfg: &mut dyn ConfigSpace,
        bdf: Bdf,
        table: &mut dyn MsixTable,
        msgs: &[MsiMessage],
    ) -> Result<(), MsiError> {
        let asked = msgs.len() as u32;
        if asked == 0 || asked > self.table_size {
            return Err(MsiError::Vectors { asked, supported: self.table_size });
        }
        let flags = cfg.read16(bdf, self.offset + PCI_MSIX_FLAGS);
        cfg.write16(bdf, self.offset + PCI_MSIX_FLAGS, flags | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
        for i in 0..self.table_size {
            self.write_ctrl(table, i, true);
        }
        for (i, m) in msgs.iter().enumerate() {
            self.write_entry(table, i as u32, *m)?;
        }
        set_intx_disabled(cfg, bdf, true);
        for i in 0..asked {
            self.write_ctrl(table, i, false);
        }
        let flags = cfg.read16(bdf, self.offset + PCI_MSIX_FLAGS);
        cfg.write16(bdf, self.offset + PCI_MSIX_FLAGS, (flags | PCI_MSIX_FLAGS_ENABLE) & !PCI_MSIX_FLAGS_MASKALL);
        Ok(())
    }

    fn write_ctrl(&self, table: &mut dyn MsixTable, i: u32, masked: bool) {
        let at = u64::from(i) * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
        let c = table.read32(at);
        let c = if masked { c | PCI_MSIX_ENTRY_CTRL_MASKBIT } else { c & !PCI_MSIX_ENTRY_CTRL_MASKBIT };
        table.write32(at, c);
    }

    /// Write entry `i`'s message (Linux writes it while the entry is
    /// masked; the caller masks first when it is live).
    pub fn write_entry(&self, table: &mut dyn MsixTable, i: u32, msg: MsiMessage) -> Result<(), MsiError> {
        if i >= self.table_size {
            return Err(MsiError::Entry(i));
        }
        let e = u64::from(i) * PCI_MSIX_ENTRY_SIZE;
        table.write32(e + PCI_MSIX_ENTRY_LOWER_ADDR, msg.address as u32);
        table.write32(e + PCI_MSIX_ENTRY_UPPER_ADDR, (msg.address >> 32) as u32);
        table.write32(e + PCI_MSIX_ENTRY_DATA, msg.data);
        Ok(())
    }

    /// The message in entry `i`.
    pub fn read_entry(&self, table: &mut dyn MsixTable, i: u32) -> Result<MsiMessage, MsiError> {
        if i >= self.table_size {
            return Err(MsiError::Entry(i));
        }
        let e = u64::from(i) * PCI_MSIX_ENTRY_SIZE;
        let lo = u64::from(table.read32(e + PCI_MSIX_ENTRY_LOWER_ADDR));
        let hi = u64::from(table.read32(e + PCI_MSIX_ENTRY_UPPER_ADDR));
        Ok(MsiMessage { address: hi << 32 | lo, data: table.read32(e + PCI_MSIX_ENTRY_DATA) })
    }

    /// Per-vector mask (Linux `pci_msix_mask`/`pci_msix_unmask`).
    pub fn set_masked(&self, table: &mut dyn MsixTable, i: u32, masked: bool) -> Result<(), MsiError> {
        if i >= self.table_size {
            return Err(MsiError::Entry(i));
        }
        self.write_ctrl(table, i, masked);
        Ok(())
    }

    /// Linux `pci_msix_shutdown`: every entry masked, MSI-X off, INTx on.
    pub fn disable(&self, cfg: &mut dyn ConfigSpace, bdf: Bdf, table: &mut dyn MsixTable) {
        for i in 0..self.table_size {
            self.write_ctrl(table, i, true);
        }
        let flags = cfg.read16(bdf, self.offset + PCI_MSIX_FLAGS);
        cfg.write16(bdf, self.offset + PCI_MSIX_FLAGS, flags & !(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
        set_intx_disabled(cfg, bdf, false);
    }
}

/// The base of memory BAR `bir` (32- or 64-bit), as firmware assigned it.
pub fn memory_bar(cfg: &mut dyn ConfigSpace, bdf: Bdf, bir: u8) -> Result<u64, MsiError> {
    let refuse = |value| Err(MsiError::Bar { bir, value });
    if bir > 5 {
        return refuse(u64::from(bir));
    }
    let reg = PCI_BASE_ADDRESS_0 + 4 * u16::from(bir);
    let lo = cfg.read32(bdf, reg);
    if lo & 1 != 0 {
        return refuse(u64::from(lo));
    }
    let base = match (lo >> 1) & 3 {
        0 => u64::from(lo & !0xf),
        2 if bir < 5 => u64::from(cfg.read32(bdf, reg + 4)) << 32 | u64::from(lo & !0xf),
        _ => return refuse(u64::from(lo)),
    };
    if base == 0 {
        return refuse(base);
    }
    Ok(base)
}
