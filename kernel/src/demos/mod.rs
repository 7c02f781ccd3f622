//! What the kernel proves on the running machine: the DMA-ownership story
//! (`ownership`), the DMA isolation proofs with `edu` (`dmatest`), and the
//! self-tests of the failure paths (`selftest`).

pub mod dmatest;
pub mod irq_isolation;
pub mod ownership;
pub mod selftest;
