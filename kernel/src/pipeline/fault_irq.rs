//! The VT-d fault event interrupt (spec §7.3, §11.4.9): each unit's FEDATA
//! and FEADDR name one vector on this CPU, FECTL.IM is cleared, and the
//! handler reads and clears every pending primary fault record (Linux
//! `dmar_fault`: from FSTS.FRI, wrapping over CAP.NFR, F written back to
//! clear, then PFO) into a fixed ring. `Vtd::collect_faults` takes the
//! records from the ring. The fault event goes straight to the APIC, not
//! through interrupt remapping (spec §5.1.6).
//!
//! The handler is short, allocates nothing and shares no lock: the units'
//! register facts are written once before the vector is unmasked, and the
//! ring is single-producer (the handler, IF clear) single-consumer
//! ([`drain`], which runs with interrupts off).

use crate::arch::interrupts;
use crate::hw::mmio;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};

const MAX_UNITS: usize = 8;
const RING: usize = 64;
const FSTS: u64 = 0x34;
const FSTS_PFO: u32 = 1 << 0;
const FSTS_PPF: u32 = 1 << 1;

static BASES: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
static FRO: [AtomicU32; MAX_UNITS] = [const { AtomicU32::new(0) }; MAX_UNITS];
static NFR: [AtomicU16; MAX_UNITS] = [const { AtomicU16::new(0) }; MAX_UNITS];
static UNITS: AtomicUsize = AtomicUsize::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);
static VECTOR: AtomicU8 = AtomicU8::new(0);

struct Slot {
    unit: AtomicU8,
    index: AtomicU16,
    lo: AtomicU64,
    hi: AtomicU64,
}
static RECORDS: [Slot; RING] =
    [const { Slot { unit: AtomicU8::new(0), index: AtomicU16::new(0), lo: AtomicU64::new(0), hi: AtomicU64::new(0) } };
        RING];
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAIL: AtomicUsize = AtomicUsize::new(0);
/// Records the ring had no room for, and PFO seen by the handler.
static DROPPED: AtomicU64 = AtomicU64::new(0);
static OVERFLOW: AtomicBool = AtomicBool::new(false);

/// Register one unit (before [`enable`]): its register base, the fault
/// recording registers' offset (CAP.FRO × 16) and count (CAP.NFR).
pub fn add_unit(base: u64, fro: usize, nfr: u16) -> Option<usize> {
    let u = UNITS.load(Ordering::Relaxed);
    if u >= MAX_UNITS {
        return None;
    }
    BASES[u].store(base, Ordering::Relaxed);
    FRO[u].store(fro as u32, Ordering::Relaxed);
    NFR[u].store(nfr, Ordering::Relaxed);
    UNITS.store(u + 1, Ordering::Release);
    Some(u)
}

/// Allocate the vector and install the handler. The caller then programs
/// FEDATA/FEADDR with [`message`] and clears FECTL.IM on each unit.
pub fn enable() -> Result<u8, interrupts::IrqError> {
    let v = interrupts::alloc_vector("dmar-fault", handler)?;
    VECTOR.store(v, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Release);
    Ok(v)
}

/// Whether faults arrive by interrupt.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

pub fn vector() -> Option<u8> {
    enabled().then(|| VECTOR.load(Ordering::Relaxed))
}

/// Records dropped for lack of ring space.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is inside a DRHD register page registered by
    // `add_unit` from a unit that came up (identity-mapped uncached).
    unsafe { mmio::read(addr) }
}

fn read64(addr: u64) -> u64 {
    // SAFETY: as `read32`.
    unsafe { mmio::read(addr) }
}

fn write32(addr: u64, value: u32) {
    // SAFETY: as `read32`; only FRCD.F (RW1CS) and FSTS.PFO (RW1CS) are
    // written, which clear a record or the overflow flag.
    unsafe { mmio::write(addr, value) }
}

fn handler(_vector: u8) {
    for u in 0..UNITS.load(Ordering::Acquire) {
        let base = BASES[u].load(Ordering::Relaxed);
        let (fro, nfr) = (u64::from(FRO[u].load(Ordering::Relaxed)), NFR[u].load(Ordering::Relaxed).max(1));
        let fsts = read32(base + FSTS);
        if fsts & FSTS_PPF != 0 {
            let mut index = ((fsts >> 8) & 0xff) as u16 % nfr;
            for _ in 0..nfr {
                let rec = base + fro + u64::from(index) * 16;
                let hi = read64(rec + 8);
                if hi >> 63 == 0 {
                    break;
                }
                let lo = read64(rec);
                write32(rec + 12, 1 << 31);
                push(u as u8, index, lo, hi);
                index = (index + 1) % nfr;
            }
        }
        if fsts & FSTS_PFO != 0 {
            OVERFLOW.store(true, Ordering::Relaxed);
            write32(base + FSTS, FSTS_PFO);
        }
    }
}

fn push(unit: u8, index: u16, lo: u64, hi: u64) {
    let head = HEAD.load(Ordering::Relaxed);
    if head - TAIL.load(Ordering::Acquire) >= RING {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let s = &RECORDS[head % RING];
    s.unit.store(unit, Ordering::Relaxed);
    s.index.store(index, Ordering::Relaxed);
    s.lo.store(lo, Ordering::Relaxed);
    s.hi.store(hi, Ordering::Relaxed);
    HEAD.store(head + 1, Ordering::Release);
}

/// Take every record the handler stored: (unit, record index, lo, hi),
/// and whether PFO was seen since the last call.
pub fn drain(mut take: impl FnMut(usize, u16, u64, u64)) -> bool {
    interrupts::without_interrupts(|| {
        let head = HEAD.load(Ordering::Acquire);
        let mut tail = TAIL.load(Ordering::Relaxed);
        while tail != head {
            let s = &RECORDS[tail % RING];
            take(
                usize::from(s.unit.load(Ordering::Relaxed)),
                s.index.load(Ordering::Relaxed),
                s.lo.load(Ordering::Relaxed),
                s.hi.load(Ordering::Relaxed),
            );
            tail += 1;
        }
        TAIL.store(tail, Ordering::Release);
        OVERFLOW.swap(false, Ordering::Relaxed)
    })
}
