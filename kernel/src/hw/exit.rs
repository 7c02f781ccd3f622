//! The exit protocol: QEMU's `isa-debug-exit` device (iobase 0xf4) makes
//! QEMU exit with status `(value << 1) | 1`. Pass and fail use values that
//! cannot be confused with QEMU's own statuses (0 = normal shutdown, 1 =
//! error): pass exits 33, fail exits 35. `run-qemu.sh` maps them to 0 and 1.

use x86_64::instructions::port::Port;

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Pass = 0x10,
    Fail = 0x11,
}

/// End the run. If the exit device is missing, halt; the runner's timeout
/// then ends QEMU and says so.
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device; writing it only ends
    // the virtual machine.
    unsafe { Port::<u32>::new(ISA_DEBUG_EXIT_PORT).write(code as u32) };
    crate::arch::halt_forever()
}
