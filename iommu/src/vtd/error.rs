//! Errors of a remapping unit: what the hardware did (or did not do).

use core::fmt;

use super::pagetable::MapError;

/// An invalidation-queue error reported in FSTS (spec §11.4.9.1, §6.5.2.10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QueueFault {
    /// FSTS.IQE: hardware found an invalid descriptor at IQH.
    Iqe,
    /// FSTS.ICE: a device-TLB invalidation completion error.
    Ice,
    /// FSTS.ITE: a device-TLB invalidation timed out.
    Ite,
}

impl QueueFault {
    /// The FSTS field name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Iqe => "IQE (invalidation queue error)",
            Self::Ice => "ICE (invalidation completion error)",
            Self::Ite => "ITE (invalidation time-out error)",
        }
    }
}

/// Everything a unit operation can report instead of success.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnitError {
    /// A register read as all ones: no unit at the DRHD address, or the MMIO
    /// mapping is wrong (a master abort reads all ones).
    AllOnes { register: &'static str },
    /// CAP.FRO/NFR or ECAP.IRO place registers outside the mapped page(s)
    /// (Linux `map_iommu` checks the same and maps more).
    RegisterOutOfRange { register: &'static str, end: usize, mapped: usize },
    /// A status bit did not reach its expected value within the poll limit
    /// (Linux `IOMMU_WAIT_OP` panics here; we report).
    Timeout { register: &'static str, bit: &'static str, polls: u32 },
    /// The invalidation queue stopped with an error; `head` is the
    /// descriptor index in IQH, `iqercd` the raw IQERCD register.
    QueueError { fault: QueueFault, head: u16, iqercd: u64 },
    /// Register-based invalidation completed with CAIG/IAIG = 0: the
    /// hardware did not perform it (spec §11.4.7, §11.4.8.1).
    InvalidationRejected { register: &'static str },
    /// GSTS.QIES is set, so register-based invalidation would be ignored
    /// (spec §6.5.2; QEMU refuses it with an error message).
    QueuedInvalidationActive,
    /// Queued invalidation set up by someone else (firmware) is still on:
    /// [`super::Unit::take_over`] turns it off.
    ForeignQueueActive,
    /// An operation needs a capability the unit lacks.
    Unsupported { feature: &'static str },
    /// The invalidation queue has no room (hardware stopped consuming it).
    QueueFull,
    /// The frame allocator is exhausted.
    OutOfFrames,
    /// A page-table or context-table operation failed.
    Map(MapError),
    /// GSTS.CFIS stayed set: compatibility-format interrupts would bypass
    /// interrupt remapping.
    CompatibilityFormatOn,
}

impl From<MapError> for UnitError {
    fn from(e: MapError) -> Self {
        match e {
            MapError::OutOfFrames => Self::OutOfFrames,
            other => Self::Map(other),
        }
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllOnes { register } => {
                write!(f, "VT-d {register} reads all ones: no unit at this address")
            }
            Self::RegisterOutOfRange { register, end, mapped } => {
                write!(f, "VT-d {register} registers end at {end:#x}, beyond the {mapped:#x} bytes mapped")
            }
            Self::Timeout { register, bit, polls } => {
                write!(f, "VT-d timeout: {register}.{bit} did not change after {polls} polls")
            }
            Self::QueueError { fault, head, iqercd } => write!(
                f,
                "VT-d invalidation queue error FSTS.{} at descriptor {head} (IQERCD {iqercd:#x})",
                fault.name()
            ),
            Self::InvalidationRejected { register } => {
                write!(f, "VT-d {register} invalidation not performed (granularity 0)")
            }
            Self::QueuedInvalidationActive => {
                write!(f, "VT-d register-based invalidation refused: queued invalidation is enabled")
            }
            Self::ForeignQueueActive => {
                write!(f, "VT-d queued invalidation left on by firmware; take the unit over first")
            }
            Self::Unsupported { feature } => write!(f, "VT-d unit lacks {feature}"),
            Self::QueueFull => write!(f, "VT-d invalidation queue full"),
            Self::OutOfFrames => write!(f, "VT-d: out of physical frames for tables"),
            Self::Map(e) => write!(f, "VT-d table: {e}"),
            Self::CompatibilityFormatOn => {
                write!(f, "VT-d GSTS.CFIS stays set: compatibility-format interrupts would bypass remapping")
            }
        }
    }
}
