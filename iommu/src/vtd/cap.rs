//! CAP and ECAP, decoded (VT-d spec rev 4.1 §11.4.2 and §11.4.3).
//!
//! Field names and positions follow the spec and Linux
//! `drivers/iommu/intel/iommu.h` (`cap_sagaw()`, `ecap_qis()`, ...). `Debug`
//! prints the raw value and every decoded field.

use core::fmt;

/// Extract `width` bits of `raw` starting at bit `shift`.
const fn field(raw: u64, shift: u32, width: u32) -> u64 {
    (raw >> shift) & ((1 << width) - 1)
}

const fn bit(raw: u64, shift: u32) -> bool {
    (raw >> shift) & 1 == 1
}

/// The capability register (CAP_REG, §11.4.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// ND 2:0, the raw "number of domains" encoding.
    pub const fn nd(self) -> u8 {
        field(self.0, 0, 3) as u8
    }
    /// Domains supported: 2^(4 + 2·ND) (Linux `cap_ndoms`), capped at the
    /// 16-bit domain-id space (ND = 7 is reserved).
    pub const fn number_of_domains(self) -> u32 {
        let n = 1u32 << (4 + 2 * self.nd() as u32);
        if n > 1 << 16 { 1 << 16 } else { n }
    }
    /// AFL 3: advanced fault logging.
    pub const fn afl(self) -> bool {
        bit(self.0, 3)
    }
    /// RWBF 4: required write-buffer flushing.
    pub const fn rwbf(self) -> bool {
        bit(self.0, 4)
    }
    /// PLMR 5: protected low-memory region.
    pub const fn plmr(self) -> bool {
        bit(self.0, 5)
    }
    /// PHMR 6: protected high-memory region.
    pub const fn phmr(self) -> bool {
        bit(self.0, 6)
    }
    /// CM 7: caching mode; not-present and erroneous entries may be cached.
    pub const fn cm(self) -> bool {
        bit(self.0, 7)
    }
    /// SAGAW 12:8: supported adjusted guest address widths; bit 1 = 39-bit
    /// (3-level), bit 2 = 48-bit (4-level), bit 3 = 57-bit (5-level).
    pub const fn sagaw(self) -> u8 {
        field(self.0, 8, 5) as u8
    }
    /// MGAW 21:16 plus one: maximum guest address width in bits.
    pub const fn mgaw(self) -> u8 {
        field(self.0, 16, 6) as u8 + 1
    }
    /// ZLR 22: zero-length reads.
    pub const fn zlr(self) -> bool {
        bit(self.0, 22)
    }
    /// FRO 33:24 times 16: byte offset of the first fault recording register.
    pub const fn fro(self) -> usize {
        field(self.0, 24, 10) as usize * 16
    }
    /// SLLPS 37:34: second-level large pages; bit 0 = 2 MiB, bit 1 = 1 GiB.
    pub const fn sllps(self) -> u8 {
        field(self.0, 34, 4) as u8
    }
    /// PSI 39: page-selective IOTLB invalidation.
    pub const fn psi(self) -> bool {
        bit(self.0, 39)
    }
    /// NFR 47:40 plus one: number of fault recording registers.
    pub const fn nfr(self) -> u16 {
        field(self.0, 40, 8) as u16 + 1
    }
    /// MAMV 53:48: maximum address mask value for page-selective invalidation.
    pub const fn mamv(self) -> u8 {
        field(self.0, 48, 6) as u8
    }
    /// DWD 54: write draining.
    pub const fn dwd(self) -> bool {
        bit(self.0, 54)
    }
    /// DRD 55: read draining.
    pub const fn drd(self) -> bool {
        bit(self.0, 55)
    }
    /// FL1GP 56: first-level 1 GiB pages.
    pub const fn fl1gp(self) -> bool {
        bit(self.0, 56)
    }
    /// PI 59: posted interrupts.
    pub const fn pi(self) -> bool {
        bit(self.0, 59)
    }
    /// FL5LP 60: first-level 5-level paging.
    pub const fn fl5lp(self) -> bool {
        bit(self.0, 60)
    }
}

impl fmt::Debug for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cap")
            .field("raw", &format_args!("{:#x}", self.0))
            .field("nd", &self.nd())
            .field("domains", &self.number_of_domains())
            .field("afl", &self.afl())
            .field("rwbf", &self.rwbf())
            .field("plmr", &self.plmr())
            .field("phmr", &self.phmr())
            .field("cm", &self.cm())
            .field("sagaw", &format_args!("{:#07b}", self.sagaw()))
            .field("mgaw", &self.mgaw())
            .field("zlr", &self.zlr())
            .field("fro", &format_args!("{:#x}", self.fro()))
            .field("sllps", &format_args!("{:#06b}", self.sllps()))
            .field("psi", &self.psi())
            .field("nfr", &self.nfr())
            .field("mamv", &self.mamv())
            .field("dwd", &self.dwd())
            .field("drd", &self.drd())
            .field("fl1gp", &self.fl1gp())
            .field("pi", &self.pi())
            .field("fl5lp", &self.fl5lp())
            .finish()
    }
}

/// The extended capability register (ECAP_REG, §11.4.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ecap(pub u64);

impl Ecap {
    /// C 0: page walks snoop the CPU caches (coherent).
    pub const fn c(self) -> bool {
        bit(self.0, 0)
    }
    /// QI 1: queued invalidation.
    pub const fn qi(self) -> bool {
        bit(self.0, 1)
    }
    /// DT 2: device-TLBs.
    pub const fn dt(self) -> bool {
        bit(self.0, 2)
    }
    /// IR 3: interrupt remapping.
    pub const fn ir(self) -> bool {
        bit(self.0, 3)
    }
    /// EIM 4: extended (x2APIC) interrupt mode.
    pub const fn eim(self) -> bool {
        bit(self.0, 4)
    }
    /// PT 6: pass-through translation type in context entries.
    pub const fn pt(self) -> bool {
        bit(self.0, 6)
    }
    /// SC 7: snoop control (SNP in second-level leaf entries).
    pub const fn sc(self) -> bool {
        bit(self.0, 7)
    }
    /// IRO 17:8 times 16: byte offset of the IOTLB register block.
    pub const fn iro(self) -> usize {
        field(self.0, 8, 10) as usize * 16
    }
    /// MHMV 23:20: maximum handle mask value (interrupt entry cache).
    pub const fn mhmv(self) -> u8 {
        field(self.0, 20, 4) as u8
    }
    /// MTS 25: memory type support.
    pub const fn mts(self) -> bool {
        bit(self.0, 25)
    }
    /// NEST 26: nested translation.
    pub const fn nest(self) -> bool {
        bit(self.0, 26)
    }
    /// PRS 29: page requests.
    pub const fn prs(self) -> bool {
        bit(self.0, 29)
    }
    /// PASID 40: process address space ids.
    pub const fn pasid(self) -> bool {
        bit(self.0, 40)
    }
    /// SMTS 43: scalable-mode translation.
    pub const fn smts(self) -> bool {
        bit(self.0, 43)
    }
    /// SLTS 46: second-level translation in scalable mode.
    pub const fn slts(self) -> bool {
        bit(self.0, 46)
    }
    /// FLTS 47: first-level translation.
    pub const fn flts(self) -> bool {
        bit(self.0, 47)
    }
}

impl fmt::Debug for Ecap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ecap")
            .field("raw", &format_args!("{:#x}", self.0))
            .field("c", &self.c())
            .field("qi", &self.qi())
            .field("dt", &self.dt())
            .field("ir", &self.ir())
            .field("eim", &self.eim())
            .field("pt", &self.pt())
            .field("sc", &self.sc())
            .field("iro", &format_args!("{:#x}", self.iro()))
            .field("mhmv", &self.mhmv())
            .field("mts", &self.mts())
            .field("nest", &self.nest())
            .field("prs", &self.prs())
            .field("pasid", &self.pasid())
            .field("smts", &self.smts())
            .field("slts", &self.slts())
            .field("flts", &self.flts())
            .finish()
    }
}
