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
//!
//! Interrupts: 0x24 reads the interrupt status, 0x60 raises (status |= v,
//! one MSI per write), 0x64 acknowledges (status &= !v). Command bit 0x4
//! asks for an interrupt when the DMA completes (status bit 0x100). With a
//! vector attached ([`Edu::attach_irq`]) and interrupts available, a DMA
//! waits for that interrupt with its TSC deadline; otherwise it polls the
//! run bit and says so ([`Completion::Polled`]).

use crate::arch::interrupts;
use crate::hw::clock::Deadline;
use crate::hw::mmio;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
const DMA_CMD_IRQ: u64 = 1 << 2;
const REG_IRQ_STATUS: u64 = 0x24;
const REG_IRQ_RAISE: u64 = 0x60;
const REG_IRQ_ACK: u64 = 0x64;

/// BAR0 of the edu each vector serves (0 = none): the handler's only state.
static VECTOR_BAR: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];
/// The interrupt status the handler last acknowledged, per vector.
static LAST_STATUS: [AtomicU32; 256] = [const { AtomicU32::new(0) }; 256];
/// DMA completions seen by interrupt and by polling, for the report.
static DONE_BY_IRQ: AtomicU64 = AtomicU64::new(0);
static DONE_BY_POLL: AtomicU64 = AtomicU64::new(0);
/// Completions whose interrupt never came although the device finished
/// (and asked for it), per vector: the remapping hardware blocked it.
static MISSING: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];
/// How long a finished DMA may wait for its interrupt before it is taken
/// as blocked: QEMU raises it in the same step that clears the run bit.
const GRACE_MS: u64 = 5;

/// The edu interrupt handler: acknowledge whatever is pending (read 0x24,
/// write it to 0x64) and remember it. Short, no allocation, no lock.
pub fn irq_handler(vector: u8) {
    let bar = VECTOR_BAR[usize::from(vector)].load(Ordering::Acquire);
    if bar == 0 {
        return;
    }
    // SAFETY: `bar` was stored by `attach_irq` from a probed edu's BAR0,
    // checked to lie in the uncached 2-4 GiB window.
    let status: u32 = unsafe { mmio::read(bar + REG_IRQ_STATUS) };
    // SAFETY: as above; writing the status to 0x64 only clears those bits.
    unsafe { mmio::write(bar + REG_IRQ_ACK, status) };
    LAST_STATUS[usize::from(vector)].fetch_or(status, Ordering::AcqRel);
}

/// Stop serving `vector` (the driver that set it up lets the device go).
pub fn release_vector(vector: u8) {
    VECTOR_BAR[usize::from(vector)].store(0, Ordering::Release);
}

/// The status bits acknowledged on `vector` since the last call.
pub fn take_status(vector: u8) -> u32 {
    LAST_STATUS[usize::from(vector)].swap(0, Ordering::AcqRel)
}

/// (by interrupt, by polling) DMA completions since boot.
pub fn completions() -> (u64, u64) {
    (DONE_BY_IRQ.load(Ordering::Relaxed), DONE_BY_POLL.load(Ordering::Relaxed))
}

/// Completions on `vector` whose interrupt never arrived.
pub fn missing(vector: u8) -> u64 {
    MISSING[usize::from(vector)].load(Ordering::Relaxed)
}

/// How a DMA's completion was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The completion interrupt arrived.
    Interrupt,
    /// The run bit was polled, for the reason given.
    Polled(&'static str),
    /// The device finished, but the completion interrupt it sent never
    /// arrived within the grace period: blocked on its way (counted per
    /// vector, see [`missing`]; the report explains).
    InterruptMissing,
}

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
    irq: Option<u8>,
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
        // A vector the driver attached to this device earlier serves every
        // handle on it (the proofs and the owner probe the device again).
        let irq = (0..=255u8).find(|&v| VECTOR_BAR[usize::from(v)].load(Ordering::Acquire) == base);
        let edu = Self { bar0: base, irq };
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

    fn write32(&self, reg: u64, value: u32) {
        // SAFETY: as `read32`; the interrupt registers only raise or
        // acknowledge the device's own interrupt.
        unsafe { mmio::write(self.bar0 + reg, value) }
    }

    /// Route `vector`'s interrupts to this device's handler state.
    pub fn attach_irq(&mut self, vector: u8) {
        VECTOR_BAR[usize::from(vector)].store(self.bar0, Ordering::Release);
        self.irq = Some(vector);
    }

    /// Stop serving `vector` (the driver's remove).
    pub fn detach_irq(&mut self) {
        if let Some(v) = self.irq.take() {
            VECTOR_BAR[usize::from(v)].store(0, Ordering::Release);
        }
    }

    /// Raise `bits` in the interrupt status: the device sends one MSI.
    pub fn raise(&self, bits: u32) {
        self.write32(REG_IRQ_RAISE, bits);
    }

    /// The interrupt status register.
    pub fn irq_status(&self) -> u32 {
        self.read32(REG_IRQ_STATUS)
    }

    /// Acknowledge `bits` (what the handler does; for a blocked interrupt
    /// the caller clears the status itself).
    pub fn ack(&self, bits: u32) {
        self.write32(REG_IRQ_ACK, bits);
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
    /// translation is on) and the device buffer at `offset`, and wait until
    /// `deadline` for it: for the completion interrupt when a vector is
    /// attached and interrupts are available (then the run bit must be
    /// clear), else by polling the run bit.
    pub fn dma(
        &self,
        dir: Direction,
        bus: u64,
        offset: u64,
        len: u64,
        deadline: Deadline,
    ) -> Result<Completion, EduError> {
        Self::check(bus, offset, len)?;
        let dev = BUFFER_START + offset;
        let (src, dst, cmd) = match dir {
            Direction::ToDevice => (bus, dev, DMA_CMD_RUN),
            Direction::FromDevice => (dev, bus, DMA_CMD_RUN | DMA_CMD_TO_BUS),
        };
        self.write64(REG_DMA_SRC, src);
        self.write64(REG_DMA_DST, dst);
        self.write64(REG_DMA_COUNT, len);
        if let (Some(v), true) = (self.irq, interrupts::available()) {
            // Arm (snapshot the counter) before the command: the interrupt
            // can arrive before the next instruction.
            let seen = interrupts::count(v);
            self.write64(REG_DMA_CMD, cmd | DMA_CMD_IRQ);
            // Wait for the interrupt; once a millisecond, look whether the
            // device has finished without it (a blocked message), and give
            // it a grace period from then.
            let hz = deadline.hz();
            let mut grace: Option<Deadline> = None;
            loop {
                let tick = Deadline::after_ms(hz, 1).min(deadline);
                if interrupts::wait_for(v, seen, tick) {
                    if self.read64(REG_DMA_CMD) & DMA_CMD_RUN != 0 {
                        return Err(EduError::Timeout);
                    }
                    DONE_BY_IRQ.fetch_add(1, Ordering::Relaxed);
                    return Ok(Completion::Interrupt);
                }
                if grace.is_none() && self.read64(REG_DMA_CMD) & DMA_CMD_RUN == 0 {
                    grace = Some(Deadline::after_ms(hz, GRACE_MS));
                }
                if grace.is_some_and(|g| g.passed()) {
                    MISSING[usize::from(v)].fetch_add(1, Ordering::Relaxed);
                    self.ack(self.irq_status());
                    return Ok(Completion::InterruptMissing);
                }
                if deadline.passed() {
                    return Err(EduError::Timeout);
                }
            }
        }
        let why = if self.irq.is_none() { "no interrupt set up for the device" } else { "interrupts unavailable" };
        self.write64(REG_DMA_CMD, cmd);
        while self.read64(REG_DMA_CMD) & DMA_CMD_RUN != 0 {
            if deadline.passed() {
                return Err(EduError::Timeout);
            }
            core::hint::spin_loop();
        }
        DONE_BY_POLL.fetch_add(1, Ordering::Relaxed);
        Ok(Completion::Polled(why))
    }
}
