//! The x86-64 machine: PVH entry, CPU tables, the CPU's page tables, port
//! I/O and the time-stamp counter. Most of the kernel's `unsafe` lives here.

pub mod apic;
pub mod cpu;
pub mod interrupts;
pub mod paging;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));
core::arch::global_asm!(include_str!("traps.s"), options(att_syntax));
core::arch::global_asm!(include_str!("irq.s"), options(att_syntax));

/// Read the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is allowed at CPL 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// The kernel image's physical extent, from the linker script.
pub fn kernel_image() -> (u64, u64) {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    (&raw const __kernel_start as u64, &raw const __kernel_end as u64)
}
