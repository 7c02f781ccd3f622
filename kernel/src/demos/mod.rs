//! What the kernel proves on the running machine: the DMA-ownership story
//! (`ownership`, demonstrations 1-5), the port services at work in an
//! owned group (`port_events`, demonstrations 6 and 7: AER and hot-plug
//! driven over QMP), the DMA isolation proofs with `edu` (`dmatest`), and
//! the self-tests of the failure paths (`selftest`).

pub mod dmatest;
pub mod irq_isolation;
pub mod ownership;
mod port_events;
pub mod selftest;
