//! QEMU's `edu` teaching device (hw/misc/edu.c, 1234:11e8): the DMA engine
//! the VT-d proofs use.
//!
//! BAR0 registers: 0x00 identification (0x010000ed), 0x80 DMA source, 0x88
//! destination, 0x90 count, 0x98 command (bit 0 run, bit 1 direction: 1 =
//! device buffer → bus address). The device buffer sits at device address
//! 0x40000 and is 4 KiB. QEMU 7.2 aborts the whole machine on a zero count
//! or a buffer range whose end reaches 0x41000, so every request is checked
//! here first; bus addresses above the 28-bit `dma_mask` are silently
//! clamped by the device, so they are refused too. A DMA takes 100 ms of
//! virtual time; the device ignores DMA errors (a blocked DMA shows only as
//! a VT-d fault record).

use crate::hw::mmio;
use core::fmt;
use pci::{Bdf, ConfigSpace};

pub const EDU_VENDOR: u16 = 0x1234;
pub const EDU_DEVICE: u16 = 0x11e8;
const EDU_IDENT: u32 = 0x0100_00ed;

const REG_IDENT: u64 = 0x00;
const REG_DMA_SRC: u64 = 0x80;
const REG_DMA_DST: u64 = 0x88;
const REG_DMA_COUNT: u64 = 0x90;
const REG_DMA_CMD: u64 = 0x98;
const DMA_CMD_RUN: u64 = 1 << 0;
const DMA_CMD_TO_BUS: u64 = 1 << 1;

/// The device's DMA buffer, in device addresses.
pub const BUFFER_START: u64 = 0x40000;
/// QEMU 7.2 requires `offset + len < BUFFER_END` (strictly).
pub const BUFFER_END: u64 = 0x41000;
/// edu's default `dma_mask`: 28 bits.
pub const DMA_LIMIT: u64 = 1 << 28;

const PCI_COMMAND: u16 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 1 << 1;
const PCI_BASE_ADDRESS_0: u16 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EduError {
    /// BAR0 is not a usable 32-bit memory BAR in the uncached window.
    Bar(u32),
    /// The identification register is not 0x010000ed.
    Ident(u32),
    /// A request QEMU would abort on, or that the device would clamp.
    Range { bus: u64, offset: u64, len: u64 },
    /// The run bit did not clear in time.
    Timeout,
}

impl fmt::Display for EduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bar(v) => write!(f, "edu BAR0 {v:#x} is not a usable 32-bit memory BAR"),
            Self::Ident(v) => write!(f, "edu identification {v:#x}, expected {EDU_IDENT:#x}"),
            Self::Range { bus, offset, len } => write!(
                f,
                "edu DMA of {len} bytes between bus address {bus:#x} and buffer offset {offset:#x} is outside the device's limits"
            ),
            Self::Timeout => f.write_str("edu DMA did not complete in time"),
        }
    }
}

/// Which way a DMA goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Bus address (RAM through the IOMMU) → device buffer: a DMA read.
    ToDevice,
    /// Device buffer → bus address: a DMA write.
    FromDevice,
}

pub struct Edu {
    bar0: u64,
}

impl Edu {
    /// Find BAR0, check the identification register and enable memory
    /// decoding. Bus mastering stays off until the VT-d stage
    /// enables it (`Vtd::enable_bus_master`, the one gate), after translation is on.
    pub fn probe(cfg: &mut dyn ConfigSpace, bdf: Bdf) -> Result<Self, EduError> {
        let bar = cfg.read32(bdf, PCI_BASE_ADDRESS_0);
        // Memory BAR (bit 0 clear), 32-bit (bits 2:1 = 0), in 2-4 GiB.
        let base = u64::from(bar & !0xf);
        if bar & 0x7 != 0 || !(2 << 30..4 << 30).contains(&base) {
            return Err(EduError::Bar(bar));
        }
        let cmd = cfg.read16(bdf, PCI_COMMAND);
        cfg.write16(bdf, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY);
        let edu = Self { bar0: base };
        let ident = edu.read32(REG_IDENT);
        if ident != EDU_IDENT {
            return Err(EduError::Ident(ident));
        }
        Ok(edu)
    }

    fn read32(&self, reg: u64) -> u32 {
        // SAFETY: BAR0 was checked to be a memory BAR in the uncached
        // 2-4 GiB window; edu's registers have no read side effects that
        // matter here.
        unsafe { mmio::read(self.bar0 + reg) }
    }

    fn read64(&self, reg: u64) -> u64 {
        // SAFETY: as `read32`.
        unsafe { mmio::read(self.bar0 + reg) }
    }

    fn write64(&self, reg: u64, value: u64) {
        // SAFETY: as `read32`; writes to the DMA registers only program
        // the transfer that `dma` checked.
        unsafe { mmio::write(self.bar0 + reg, value) }
    }

    /// Check a request against QEMU 7.2's limits without touching the device.
    pub fn check(bus: u64, offset: u64, len: u64) -> Result<(), EduError> {
        let err = EduError::Range { bus, offset, len };
        let dev_end = BUFFER_START.checked_add(offset).and_then(|s| s.checked_add(len)).ok_or(err)?;
        let bus_end = bus.checked_add(len).ok_or(err)?;
        if len == 0 || dev_end >= BUFFER_END || bus_end > DMA_LIMIT {
            return Err(err);
        }
        Ok(())
    }

    /// Run one DMA of `len` bytes between bus address `bus` (an IOVA when
    /// translation is on) and the device buffer at `offset`, and wait for
    /// the run bit to clear; `poll` is asked before every re-read and ends
    /// the wait with [`EduError::Timeout`] when it returns false (callers
    /// pass a TSC deadline).
    pub fn dma(
        &self,
        dir: Direction,
        bus: u64,
        offset: u64,
        len: u64,
        mut poll: impl FnMut() -> bool,
    ) -> Result<(), EduError> {
        Self::check(bus, offset, len)?;
        let dev = BUFFER_START + offset;
        let (src, dst, cmd) = match dir {
            Direction::ToDevice => (bus, dev, DMA_CMD_RUN),
            Direction::FromDevice => (dev, bus, DMA_CMD_RUN | DMA_CMD_TO_BUS),
        };
        self.write64(REG_DMA_SRC, src);
        self.write64(REG_DMA_DST, dst);
        self.write64(REG_DMA_COUNT, len);
        self.write64(REG_DMA_CMD, cmd);
        while self.read64(REG_DMA_CMD) & DMA_CMD_RUN != 0 {
            if !poll() {
                return Err(EduError::Timeout);
            }
            core::hint::spin_loop();
        }
        Ok(())
    }
}
