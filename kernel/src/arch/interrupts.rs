//! The kernel's interrupt stack: a 256-gate IDT (`cpu.rs`, stubs in
//! `irq.s`), the xAPIC (`apic.rs`, legacy PICs and LINT0 masked before the
//! first `sti`), a vector allocator, a handler table, per-vector counters
//! and bounded waits.
//!
//! The API a driver uses:
//! - [`alloc_vector`] / [`alloc_vectors`] (an aligned block from
//!   `platform::vectors`, host-tested, for multi-message MSI) with the
//!   handler and a name; [`free_vector`];
//!   [`set_handler`] to replace a handler.
//! - the message to program: through the interrupt remapper
//!   (`drivers::irq::enable_msi`/`enable_msix`, remappable format) or,
//!   with no remapping, [`compat_message`].
//! - [`count`] before the action that raises the interrupt, then
//!   [`wait_for`]`(vector, seen, deadline)`: true once the vector's counter
//!   has moved past `seen`, false at the TSC deadline. Snapshot the counter
//!   before triggering: the interrupt can arrive before the next
//!   instruction.
//! - [`available`]: false when the stack could not come up (no xAPIC); the
//!   caller then polls and says so.
//! - [`without_interrupts`] around what must not be interrupted.
//!
//! Handlers are `fn(vector)`: short, they never allocate, never print and
//! never take a lock a non-handler path holds with interrupts on; the
//! dispatcher counts the vector and sends the EOI after the handler.
//! There is no timer interrupt (none is programmed), so waits spin on the
//! TSC with interrupts enabled instead of `hlt`.

use super::apic;
use crate::hw::clock::Deadline;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use pci::msi::MsiMessage;
use platform::vectors::{VectorAllocator, VectorError};
use spin::Mutex;

/// A device interrupt handler, called with its vector, interrupts off.
pub type Handler = fn(u8);

/// The APIC's spurious vector (SVR bits 7:0; low nibble 0xf as the SDM
/// recommends for older parts). Counted, never EOI'd (SDM §11.9).
pub const SPURIOUS_VECTOR: u8 = 0xff;

static READY: AtomicBool = AtomicBool::new(false);
/// TSC cycles `init` took (for the benchmark).
static INIT_CYCLES: AtomicU64 = AtomicU64::new(0);
static APIC_ID: AtomicU8 = AtomicU8::new(0);
/// `fn(u8)` pointers as integers; 0 = no handler.
static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static COUNTS: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];
/// Interrupts on a vector with no handler (EOI'd and counted).
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

struct Table {
    /// Which vectors are taken (`platform::vectors`, host-tested).
    used: VectorAllocator,
    names: [&'static str; 256],
}

/// Allocation state; taken only with interrupts off and never by handlers.
static TABLE: Mutex<Table> = Mutex::new(Table { used: VectorAllocator::new(), names: [""; 256] });

#[derive(Clone, Copy, Debug)]
pub enum IrqError {
    Apic(apic::ApicError),
    /// No free block, or a bad count (`platform::vectors`).
    Vector(VectorError),
}

impl core::fmt::Display for IrqError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Apic(e) => write!(f, "local APIC: {e}"),
            Self::Vector(e) => write!(f, "{e}"),
        }
    }
}

/// Bring the stack up and enable interrupts (`sti`). Called once, after
/// `cpu::init` loaded the IDT. On failure interrupts stay off and
/// [`available`] stays false.
pub fn init() -> Result<apic::ApicInfo, IrqError> {
    let t0 = super::rdtsc();
    x86_64::instructions::interrupts::disable();
    let info = apic::init(SPURIOUS_VECTOR).map_err(IrqError::Apic)?;
    APIC_ID.store(info.id, Ordering::Relaxed);
    TABLE.lock().names[usize::from(SPURIOUS_VECTOR)] = "spurious";
    READY.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
    INIT_CYCLES.store(super::rdtsc() - t0, Ordering::Relaxed);
    Ok(info)
}

/// TSC cycles the bring-up (PICs, APIC, `sti`) took.
pub fn init_cycles() -> u64 {
    INIT_CYCLES.load(Ordering::Relaxed)
}

/// Whether interrupts are delivered (the stack came up).
pub fn available() -> bool {
    READY.load(Ordering::Acquire)
}

/// This CPU's xAPIC id: the destination of every message.
pub fn apic_id() -> u8 {
    APIC_ID.load(Ordering::Relaxed)
}

/// Run `f` with interrupts off, restoring the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(f)
}

/// Allocate one vector for `handler`.
pub fn alloc_vector(name: &'static str, handler: Handler) -> Result<u8, IrqError> {
    alloc_vectors(1, name, handler)
}

/// Allocate `n` consecutive vectors (a power of two, aligned to `n`, as a
/// compatibility-format multi-message MSI needs: the function ORs its
/// message number into the vector's low bits), all with `handler`.
/// Returns the first.
pub fn alloc_vectors(n: u32, name: &'static str, handler: Handler) -> Result<u8, IrqError> {
    without_interrupts(|| {
        let mut t = TABLE.lock();
        let base = t.used.alloc(n).map_err(IrqError::Vector)?;
        let block = usize::from(base)..usize::from(base) + n as usize;
        t.names[block.clone()].fill(name);
        for h in &HANDLERS[block] {
            h.store(handler as usize, Ordering::Release);
        }
        Ok(base)
    })
}

/// Give a vector back; its handler is removed first (a late message is
/// then counted as unexpected). Its counter is kept for the report.
pub fn free_vector(vector: u8) {
    HANDLERS[usize::from(vector)].store(0, Ordering::Release);
    without_interrupts(|| {
        if let Err(e) = TABLE.lock().used.free(vector) {
            log::warn!("interrupts: freeing: {e}");
        }
    });
}

/// Replace the handler of an allocated vector.
#[allow(dead_code, reason = "driver API: the port-service driver (issue 12, pcieport) uses it")]
pub fn set_handler(vector: u8, handler: Handler) {
    HANDLERS[usize::from(vector)].store(handler as usize, Ordering::Release);
}

/// Interrupts taken on `vector` since boot.
pub fn count(vector: u8) -> u64 {
    COUNTS[usize::from(vector)].load(Ordering::Acquire)
}

/// Interrupts that arrived on a vector with no handler.
pub fn unexpected() -> u64 {
    UNEXPECTED.load(Ordering::Relaxed)
}

/// Wait until `vector` has been taken more than `seen` times (`seen` from
/// [`count`] before the trigger), or the deadline passes. Interrupts must
/// be available; returns false at the deadline.
pub fn wait_for(vector: u8, seen: u64, deadline: Deadline) -> bool {
    wait_until(deadline, || count(vector) > seen)
}

/// Spin with interrupts enabled until `done` or the deadline.
pub fn wait_until(deadline: Deadline, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if deadline.passed() {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// A compatibility-format message for `vector` to this CPU: for a device
/// whose messages are not remapped (no IR, or IR unavailable).
pub fn compat_message(vector: u8) -> MsiMessage {
    MsiMessage::compatibility(apic_id(), vector)
}

/// One line of the per-vector report.
#[derive(Clone, Copy, Debug)]
pub struct VectorCount {
    pub vector: u8,
    pub name: &'static str,
    pub count: u64,
}

/// Every vector that has a name (allocated now or before) or a count.
pub fn counters() -> alloc::vec::Vec<VectorCount> {
    let names = without_interrupts(|| TABLE.lock().names);
    (0..=255u8)
        .filter_map(|v| {
            let count = count(v);
            let name = names[usize::from(v)];
            (count > 0 || (!name.is_empty() && v != SPURIOUS_VECTOR)).then_some(VectorCount { vector: v, name, count })
        })
        .collect()
}

/// Called by `irq.s` for vectors 32-255 with interrupts off.
#[unsafe(no_mangle)]
extern "C" fn irq_dispatch(vector: u64) {
    let v = vector as u8;
    COUNTS[usize::from(v)].fetch_add(1, Ordering::AcqRel);
    if v == SPURIOUS_VECTOR {
        return;
    }
    match HANDLERS[usize::from(v)].load(Ordering::Acquire) {
        0 => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
        }
        h => {
            // SAFETY: only `fn(u8)` pointers are ever stored in HANDLERS
            // (`alloc_vectors`, `set_handler`); 0 means none.
            let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
            handler(v);
        }
    }
    apic::eoi();
}
