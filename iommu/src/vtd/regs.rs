//! The remapping-unit register block (VT-d spec rev 4.1, §11.4), defined once.
//!
//! Offsets come from one `#[repr(C)]` layout checked at compile time against
//! the spec's table 11-1; each register is a [`Reg`] whose type carries its
//! width and access right (GCMD write-only, GSTS read-only), so no raw
//! offset arithmetic exists outside this module. The two blocks whose place
//! the hardware reports (fault recording at CAP.FRO, IOTLB at ECAP.IRO) are
//! built by [`FaultRecordRegs`] and [`IotlbRegs`].

use core::marker::PhantomData;
use core::mem::offset_of;

use bitflags::bitflags;

use super::cap::{Cap, Ecap};

/// The unit's MMIO register page(s) as the driver sees them.
///
/// The kernel implements this over an uncached mapping of the DRHD register
/// base (volatile, naturally aligned 32/64-bit accesses); host tests over a
/// simulated unit. Offsets are byte offsets from the register base.
pub trait RegisterFile {
    fn read32(&self, offset: usize) -> u32;
    fn read64(&self, offset: usize) -> u64;
    fn write32(&mut self, offset: usize, value: u32);
    fn write64(&mut self, offset: usize, value: u64);
    /// Bytes mapped: the DRHD size field gives 2^N 4 KiB pages (spec §8.3).
    fn size(&self) -> usize;
}

/// Access right: software may only read.
pub enum ReadOnly {}
/// Access right: software may only write (reads return undefined values).
pub enum WriteOnly {}
/// Access right: read and write.
pub enum ReadWrite {}

/// Marker for access rights that allow reads.
pub trait Readable {}
/// Marker for access rights that allow writes.
pub trait Writable {}
impl Readable for ReadOnly {}
impl Readable for ReadWrite {}
impl Writable for WriteOnly {}
impl Writable for ReadWrite {}

/// A register width the file can access.
pub trait Width: Copy {
    fn read<R: RegisterFile + ?Sized>(rf: &R, offset: usize) -> Self;
    fn write<R: RegisterFile + ?Sized>(rf: &mut R, offset: usize, value: Self);
}

impl Width for u32 {
    fn read<R: RegisterFile + ?Sized>(rf: &R, offset: usize) -> Self {
        rf.read32(offset)
    }
    fn write<R: RegisterFile + ?Sized>(rf: &mut R, offset: usize, value: Self) {
        rf.write32(offset, value)
    }
}

impl Width for u64 {
    fn read<R: RegisterFile + ?Sized>(rf: &R, offset: usize) -> Self {
        rf.read64(offset)
    }
    fn write<R: RegisterFile + ?Sized>(rf: &mut R, offset: usize, value: Self) {
        rf.write64(offset, value)
    }
}

/// One register: its spec name, offset, width `T` and access right `A`.
pub struct Reg<T, A> {
    name: &'static str,
    offset: usize,
    _type: PhantomData<fn() -> (T, A)>,
}

impl<T, A> Clone for Reg<T, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, A> Copy for Reg<T, A> {}

impl<T: Width, A> Reg<T, A> {
    const fn new(name: &'static str, offset: usize) -> Self {
        Self { name, offset, _type: PhantomData }
    }

    /// The spec name (`GSTS`, `FRCD[0].hi`), for error messages.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Byte offset from the register base.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl<T: Width, A: Readable> Reg<T, A> {
    pub fn read<R: RegisterFile + ?Sized>(&self, rf: &R) -> T {
        T::read(rf, self.offset)
    }
}

impl<T: Width, A: Writable> Reg<T, A> {
    pub fn write<R: RegisterFile + ?Sized>(&self, rf: &mut R, value: T) {
        T::write(rf, self.offset, value)
    }
}

/// The fixed part of the register block, spec §11.4 table 11-1. Never
/// instantiated: it exists so that `offset_of!` derives every offset from
/// one declaration and the asserts below check it against the spec.
#[repr(C)]
#[allow(dead_code)]
struct Layout {
    ver: u32,
    _rsvd_04: u32,
    cap: u64,
    ecap: u64,
    gcmd: u32,
    gsts: u32,
    rtaddr: u64,
    ccmd: u64,
    _rsvd_30: u32,
    fsts: u32,
    fectl: u32,
    fedata: u32,
    feaddr: u32,
    feuaddr: u32,
    _rsvd_48: [u32; 4],
    aflog: u64,
    _rsvd_60: u32,
    pmen: u32,
    plmbase: u32,
    plmlimit: u32,
    phmbase: u64,
    phmlimit: u64,
    iqh: u64,
    iqt: u64,
    iqa: u64,
    _rsvd_98: u32,
    ics: u32,
    iectl: u32,
    iedata: u32,
    ieaddr: u32,
    ieuaddr: u32,
    iqercd: u64,
    irta: u64,
}

const _: () = {
    assert!(offset_of!(Layout, ver) == 0x00);
    assert!(offset_of!(Layout, cap) == 0x08);
    assert!(offset_of!(Layout, ecap) == 0x10);
    assert!(offset_of!(Layout, gcmd) == 0x18);
    assert!(offset_of!(Layout, gsts) == 0x1c);
    assert!(offset_of!(Layout, rtaddr) == 0x20);
    assert!(offset_of!(Layout, ccmd) == 0x28);
    assert!(offset_of!(Layout, fsts) == 0x34);
    assert!(offset_of!(Layout, fectl) == 0x38);
    assert!(offset_of!(Layout, fedata) == 0x3c);
    assert!(offset_of!(Layout, feaddr) == 0x40);
    assert!(offset_of!(Layout, feuaddr) == 0x44);
    assert!(offset_of!(Layout, aflog) == 0x58);
    assert!(offset_of!(Layout, pmen) == 0x64);
    assert!(offset_of!(Layout, plmbase) == 0x68);
    assert!(offset_of!(Layout, plmlimit) == 0x6c);
    assert!(offset_of!(Layout, phmbase) == 0x70);
    assert!(offset_of!(Layout, phmlimit) == 0x78);
    assert!(offset_of!(Layout, iqh) == 0x80);
    assert!(offset_of!(Layout, iqt) == 0x88);
    assert!(offset_of!(Layout, iqa) == 0x90);
    assert!(offset_of!(Layout, ics) == 0x9c);
    assert!(offset_of!(Layout, iectl) == 0xa0);
    assert!(offset_of!(Layout, iqercd) == 0xb0);
    assert!(offset_of!(Layout, irta) == 0xb8);
};

macro_rules! regs {
    ($($(#[$doc:meta])* $name:ident: $ty:ty, $acc:ty = $field:ident;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Reg<$ty, $acc> = Reg::new(stringify!($name), offset_of!(Layout, $field));
        )*
    };
}

regs! {
    /// Version register (§11.4.1): major 7:4, minor 3:0. QEMU 7.2 reports 1.0.
    VER: u32, ReadOnly = ver;
    /// Capability register (§11.4.2), decoded by [`Cap`].
    CAP: u64, ReadOnly = cap;
    /// Extended capability register (§11.4.3), decoded by [`Ecap`].
    ECAP: u64, ReadOnly = ecap;
    /// Global command register (§11.4.4), bits in [`GlobalCommand`]. Write-only:
    /// software composes it from GSTS, see [`GSTS_PERSISTENT_MASK`].
    GCMD: u32, WriteOnly = gcmd;
    /// Global status register (§11.4.5), bits in [`GlobalStatus`].
    GSTS: u32, ReadOnly = gsts;
    /// Root table address (§11.4.6): RTA 63:12, TTM 11:10 (00 = legacy mode).
    RTADDR: u64, ReadWrite = rtaddr;
    /// Context command register (§11.4.7), built by `inval::ContextCommand`.
    CCMD: u64, ReadWrite = ccmd;
    /// Fault status register (§11.4.9.1), decoded by `fault::FaultStatus`.
    FSTS: u32, ReadWrite = fsts;
    /// Fault event control (§11.4.9.2): IM 31, IP 30.
    FECTL: u32, ReadWrite = fectl;
    /// Fault event interrupt data (§11.4.9.3).
    FEDATA: u32, ReadWrite = fedata;
    /// Fault event interrupt address (§11.4.9.4).
    FEADDR: u32, ReadWrite = feaddr;
    /// Fault event upper address (§11.4.9.5).
    FEUADDR: u32, ReadWrite = feuaddr;
    /// Advanced fault log (§11.4.10); QEMU has no advanced fault logging.
    AFLOG: u64, ReadWrite = aflog;
    /// Protected memory enable (§11.4.11): EPM 31, PRS 0.
    PMEN: u32, ReadWrite = pmen;
    /// Invalidation queue head (§11.4.13.1): QH 18:4, advanced by hardware.
    IQH: u64, ReadOnly = iqh;
    /// Invalidation queue tail (§11.4.13.2): QT 18:4, written by software.
    IQT: u64, ReadWrite = iqt;
    /// Invalidation queue address (§11.4.13.3): IQA 63:12, DW 11, QS 2:0.
    IQA: u64, ReadWrite = iqa;
    /// Invalidation completion status (§11.4.13.4): IWC 0.
    ICS: u32, ReadWrite = ics;
    /// Invalidation queue error record (§11.4.13.9): IQEI 3:0, ITESID, ICESID.
    IQERCD: u64, ReadOnly = iqercd;
    /// Interrupt remapping table address (§11.4.15).
    IRTA: u64, ReadWrite = irta;
}

/// GSTS bits that reflect persistent GCMD enables; the rest (RTPS, FLS, WBFS,
/// IRTPS) report one-shot commands and must not be written back, or the
/// command would be re-issued. Spec §11.4.4: "software reads GSTS, ANDs it
/// with 0x96FFFFFF, then sets or clears the bit of the command to issue".
/// QEMU 7.2 `vtd_handle_gcmd_write` acts on every set one-shot bit it sees.
pub const GSTS_PERSISTENT_MASK: u32 = 0x96FF_FFFF;

bitflags! {
    /// GCMD bits (spec §11.4.4). TE, EAFL, QIE, IRE and CFI are persistent
    /// enables; SRTP, SFL, WBF and SIRTP are one-shot commands.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct GlobalCommand: u32 {
        /// Translation Enable.
        const TE = 1 << 31;
        /// Set Root Table Pointer (one-shot).
        const SRTP = 1 << 30;
        /// Set Fault Log (one-shot).
        const SFL = 1 << 29;
        /// Enable Advanced Fault Logging.
        const EAFL = 1 << 28;
        /// Write Buffer Flush (one-shot).
        const WBF = 1 << 27;
        /// Queued Invalidation Enable.
        const QIE = 1 << 26;
        /// Interrupt Remapping Enable.
        const IRE = 1 << 25;
        /// Set Interrupt Remap Table Pointer (one-shot).
        const SIRTP = 1 << 24;
        /// Compatibility Format Interrupt.
        const CFI = 1 << 23;
    }
}

bitflags! {
    /// GSTS bits (spec §11.4.5), one per GCMD bit.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct GlobalStatus: u32 {
        /// Translation Enable Status.
        const TES = 1 << 31;
        /// Root Table Pointer Status.
        const RTPS = 1 << 30;
        /// Fault Log Status.
        const FLS = 1 << 29;
        /// Advanced Fault Logging Status.
        const AFLS = 1 << 28;
        /// Write Buffer Flush Status: set while the flush is in progress.
        const WBFS = 1 << 27;
        /// Queued Invalidation Enable Status.
        const QIES = 1 << 26;
        /// Interrupt Remapping Enable Status.
        const IRES = 1 << 25;
        /// Interrupt Remapping Table Pointer Status.
        const IRTPS = 1 << 24;
        /// Compatibility Format Interrupt Status.
        const CFIS = 1 << 23;
    }
}

/// Size of one fault recording register (§11.4.14).
pub const FRCD_SIZE: usize = 16;

/// The fault recording registers, `CAP.NFR` records of 128 bits starting at
/// `CAP.FRO * 16` (spec §11.4.14, Linux `cap_fault_reg_offset`).
#[derive(Clone, Copy, Debug)]
pub struct FaultRecordRegs {
    base: usize,
    count: u16,
}

impl FaultRecordRegs {
    pub fn new(cap: Cap) -> Self {
        Self { base: cap.fro(), count: cap.nfr() }
    }

    /// Number of records (`CAP.NFR`).
    pub fn count(&self) -> u16 {
        self.count
    }

    /// First byte after the last record.
    pub fn end(&self) -> usize {
        self.base + usize::from(self.count) * FRCD_SIZE
    }

    /// Bits 63:0 of record `index`: FI (fault info, the page address) 63:12.
    pub fn low(&self, index: u16) -> Reg<u64, ReadOnly> {
        Reg::new("FRCD.lo", self.at(index))
    }

    /// Bits 127:64 of record `index`: F 127, T 126, AT 125:124, PV 123:104,
    /// FR 103:96, PP 95, SID 79:64.
    pub fn high(&self, index: u16) -> Reg<u64, ReadOnly> {
        Reg::new("FRCD.hi", self.at(index) + 8)
    }

    /// Bits 127:96 of record `index` as a 32-bit register: writing F (its bit
    /// 31) clears the record (RW1CS). Linux `dmar_fault` clears with this
    /// 32-bit write, which leaves the read-only fields alone.
    pub fn fault_word(&self, index: u16) -> Reg<u32, WriteOnly> {
        Reg::new("FRCD.F", self.at(index) + 12)
    }

    fn at(&self, index: u16) -> usize {
        self.base + usize::from(index % self.count.max(1)) * FRCD_SIZE
    }
}

/// The IOTLB registers at `ECAP.IRO * 16` (spec §11.4.8): IVA, then IOTLB.
#[derive(Clone, Copy, Debug)]
pub struct IotlbRegs {
    base: usize,
}

impl IotlbRegs {
    pub fn new(ecap: Ecap) -> Self {
        Self { base: ecap.iro() }
    }

    /// Invalidate address register (§11.4.8.2): ADDR 63:12, IH 6, AM 5:0.
    pub fn iva(&self) -> Reg<u64, WriteOnly> {
        Reg::new("IVA", self.base)
    }

    /// IOTLB invalidate register (§11.4.8.1), built by `inval::IotlbCommand`.
    pub fn iotlb(&self) -> Reg<u64, ReadWrite> {
        Reg::new("IOTLB", self.base + 8)
    }

    /// First byte after the block (Linux `ecap_max_iotlb_offset`).
    pub fn end(&self) -> usize {
        self.base + 16
    }
}
