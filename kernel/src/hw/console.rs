//! COM1 through `uart_16550`, and the `log` facade on top of it.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

const COM1: u16 = 0x3f8;

/// Polls of the line status for room in the transmit FIFO before a write
/// gives up and drops the rest of its text (counted in `dropped`). QEMU's
/// UART always has room; real hardware with a stuck line must not hang the
/// kernel.
const MAX_POLLS: u32 = 100_000;

/// COM1 with a bounded writer. (`uart_16550`'s own `Uart16550Tty` waits for
/// the transmitter without a bound, and runs a loopback self-test at
/// start-up that costs a millisecond of boot under TCG.)
struct Console {
    uart: Uart16550<PioBackend>,
    dropped: usize,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        let mut polls = 0;
        while !rest.is_empty() {
            // Up to a FIFO's worth per readiness check.
            let n = self.uart.send_bytes(rest);
            rest = &rest[n..];
            if n == 0 {
                polls += 1;
                if polls == MAX_POLLS {
                    self.dropped += rest.len();
                    return Ok(());
                }
                core::hint::spin_loop();
            }
        }
        Ok(())
    }
}

static SERIAL: Mutex<Option<Console>> = Mutex::new(None);

/// Bring up COM1. Without a working UART the kernel runs on silently; the
/// exit status still tells the runner the outcome.
pub fn init() {
    // SAFETY: COM1's eight I/O ports belong to this driver alone.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM1) }) else { return };
    if uart.init(Config::default()).is_ok() {
        *SERIAL.lock() = Some(Console { uart, dropped: 0 });
    }
}

/// Bytes the console could not send (a stuck transmitter).
pub fn dropped() -> usize {
    SERIAL.lock().as_ref().map_or(0, |c| c.dropped)
}

/// Write to the console. Used by `print!` and by the panic and exception
/// handlers, which first call [`force_unlock`].
pub fn write_fmt(args: fmt::Arguments) {
    if let Some(uart) = SERIAL.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Make the console usable from a panic or exception that interrupted a
/// writer holding the lock. The interrupted writer never resumes.
pub fn force_unlock() {
    if SERIAL.is_locked() {
        // SAFETY: called only on the paths that end the run; the holder of
        // the lock will not run again.
        unsafe { SERIAL.force_unlock() };
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::hw::console::write_fmt(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print!("{}\n", format_args!($($arg)*)) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            crate::println!("[{:<5}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init_log(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
