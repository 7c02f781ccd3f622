//! Hardware access the pipeline stands on: the serial console and `log`,
//! ECAM configuration space, MMIO, the TSC clock, the frame allocator and
//! heap, the firmware's start info and ACPI tables, and the exit port.

pub mod clock;
pub mod console;
pub mod ecam;
pub mod exit;
pub mod firmware;
pub mod memory;
pub mod mmio;
