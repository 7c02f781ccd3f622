//! The boot pipeline's stages after firmware facts: `topology`
//! (enumeration, ACS, IOMMU groups) and `vtd` (DMAR, unit bring-up,
//! domains, translation). Each takes the previous stage's values.

pub mod fault_irq;
pub mod topology;
pub mod vtd;
