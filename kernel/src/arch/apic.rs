//! The local APIC in xAPIC mode (Intel SDM Vol. 3A ch. 11) and the legacy
//! 8259 PICs.
//!
//! xAPIC, not x2APIC: QEMU's TCG does not offer x2APIC (the CPUID bit is
//! absent; `intel-iommu,eim=on` refuses to start and ECAP.EIM is 0), so the
//! APIC is reached through its MMIO page at 0xFEE00000 (in the boot page
//! tables' uncached 2-4 GiB window) and destination ids are 8 bits (IRTE
//! bits 47:40 with EIME=0, MSI address bits 19:12).
//!
//! SeaBIOS leaves the 8259 pair enabled with the PIT at vector base 0x08 and
//! LINT0 in ExtINT mode, unmasked: the first `sti` would take the PIT tick
//! as vector 8, the double-fault vector. [`init`] masks both PICs and LINT0
//! before anything enables interrupts. The IOAPIC is not used (MSI and
//! MSI-X do not need it).

use crate::hw::mmio;
use x86_64::instructions::port::Port;

/// IA32_APIC_BASE's default; checked against the MSR in [`init`].
pub const XAPIC_BASE: u64 = 0xfee0_0000;
const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

const REG_ID: u64 = 0x20;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_ESR: u64 = 0x280;
const REG_LVT_TIMER: u64 = 0x320;
const REG_LVT_LINT0: u64 = 0x350;
const REG_LVT_ERROR: u64 = 0x370;
const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;

/// What [`init`] found.
#[derive(Clone, Copy, Debug)]
pub struct ApicInfo {
    pub id: u8,
}

#[derive(Clone, Copy, Debug)]
pub enum ApicError {
    /// The APIC is not at 0xFEE00000 or is in x2APIC mode.
    Base(u64),
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Base(v) => write!(f, "IA32_APIC_BASE {v:#x}: not an xAPIC at {XAPIC_BASE:#x}"),
        }
    }
}

fn read(reg: u64) -> u32 {
    // SAFETY: the xAPIC page is identity-mapped uncached (boot.s maps 2-4
    // GiB uncached) and [`init`] checked the APIC is there; register reads
    // have no side effects.
    unsafe { mmio::read(XAPIC_BASE + reg) }
}

fn write(reg: u64, value: u32) {
    // SAFETY: as `read`; the callers write only the registers named here.
    unsafe { mmio::write(XAPIC_BASE + reg, value) }
}

/// Mask both 8259s (OCW1 on ports 0x21 and 0xA1): nothing they raise can
/// reach the CPU, even if LINT0 were unmasked again.
fn mask_pics() {
    // SAFETY: the PIC data ports; writing 0xff only sets every IMR bit.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}

/// Mask the PICs and LINT0, the timer and error LVTs, accept every
/// priority (TPR 0) and software-enable the APIC with `spurious` as its
/// spurious vector. Interrupts must still be off (the caller enables them).
pub fn init(spurious: u8) -> Result<ApicInfo, ApicError> {
    mask_pics();
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let base_msr = unsafe { x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE).read() };
    if base_msr & 0xffff_f000 != XAPIC_BASE || base_msr & APIC_BASE_ENABLE == 0 || base_msr & APIC_BASE_X2APIC != 0 {
        return Err(ApicError::Base(base_msr));
    }
    write(REG_LVT_LINT0, read(REG_LVT_LINT0) | LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_ESR, 0);
    write(REG_TPR, 0);
    write(REG_SVR, SVR_ENABLE | u32::from(spurious));
    Ok(ApicInfo { id: (read(REG_ID) >> 24) as u8 })
}

/// Signal end of interrupt (write 0 to the EOI register). Without it a
/// second message on the same vector stays in IRR.
pub fn eoi() {
    write(REG_EOI, 0);
}
