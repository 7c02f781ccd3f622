//! COM1 through `uart_16550`, and the `log` facade on top of it.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550Tty};

const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);

/// Bring up COM1. Without a working UART the kernel runs on silently; the
/// exit status still tells the runner the outcome.
pub fn init() {
    // SAFETY: COM1's eight I/O ports belong to this driver alone.
    if let Ok(uart) = unsafe { Uart16550Tty::new_port(COM1, Config::default()) } {
        *SERIAL.lock() = Some(uart);
    }
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
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
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
