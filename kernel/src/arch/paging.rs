//! Changes to the boot page tables (`boot.s`): 4 KiB granularity for the
//! 2 MiB page holding the stack guard, with the guard page left unmapped so
//! a stack overflow faults instead of overwriting memory.

use x86_64::instructions::tlb;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const PAGE_2M: u64 = 2 << 20;

#[repr(C, align(4096))]
struct PageTable([u64; 512]);

/// The page table that replaces the 2 MiB mapping around the guard page.
static mut GUARD_PT: PageTable = PageTable([0; 512]);

unsafe extern "C" {
    static mut boot_pd: [u64; 2048];
    static __stack_guard: u8;
}

/// Physical (= virtual) address of the stack guard page.
pub fn stack_guard() -> u64 {
    // Taking a static's address is safe; only the linker symbol's address is used.
    &raw const __stack_guard as u64
}

/// Split the 2 MiB page that holds the guard page into 4 KiB pages and unmap
/// the guard. Runs once, on the boot CPU, before anything else uses paging.
pub fn unmap_stack_guard() {
    let guard = stack_guard();
    let pd_index = (guard / PAGE_2M) as usize;
    let base = pd_index as u64 * PAGE_2M;
    // SAFETY: single-threaded early boot; `GUARD_PT` is used only here and
    // by the MMU. The kernel lies below 2 GiB, so the 2 MiB page was mapped
    // write-back (no cache bits to carry over).
    unsafe {
        let pt: *mut u64 = (&raw mut GUARD_PT).cast();
        for i in 0..512 {
            let addr = base + (i as u64) * 4096;
            pt.add(i).write(if addr == guard { 0 } else { addr | PRESENT | WRITABLE });
        }
        let pd: *mut u64 = (&raw mut boot_pd).cast();
        debug_assert!(pd.add(pd_index).read() & HUGE != 0);
        pd.add(pd_index).write((&raw const GUARD_PT as u64) | PRESENT | WRITABLE);
    }
    tlb::flush_all();
}
