//! In-kernel self-tests chosen with `test=NAME` on the command line. Each
//! ends the run through the path it tests; the runner asserts the message
//! and the failing exit status. `no-translation` instead leaves VT-d
//! translation off (as a failed GCMD.TE would) and lets the boot go on, to
//! show that nothing needing translation runs.

/// Above the 4 GiB identity map: never mapped.
const UNMAPPED: u64 = 0x10_0000_0000;

pub fn run(name: &str) {
    log::info!("self-test {name}");
    match name {
        "panic" => panic!("self-test: deliberate panic"),
        "page-fault" => {
            // SAFETY: deliberately not safe: nothing is mapped there and
            // the read faults; the handler ends the run.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
            log::error!("self-test page-fault: read {v:#x} from an unmapped page without a fault");
        }
        "stack-overflow" => {
            let depth = recurse(0);
            log::error!("self-test stack-overflow: recursed {depth} times without a fault");
        }
        "alloc-fail" => {
            let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(1 << 40);
            log::error!("self-test alloc-fail: got {} bytes", v.capacity());
        }
        "hang" => {
            log::info!("self-test hang: halting with interrupts off; the runner's timeout must end this");
            crate::arch::halt_forever();
        }
        // Acted on by the VT-d stage: GCMD.TE is not set, as if enabling
        // translation had failed, and the boot goes on with what is safe.
        "no-translation" => log::info!("self-test no-translation: translation will not be enabled"),
        other => log::error!("unknown self-test {other:?}; continuing"),
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = [depth; 64];
    core::hint::black_box(&pad);
    if depth == u64::MAX { depth } else { recurse(depth + 1) + 1 }
}
