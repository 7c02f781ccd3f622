//! The shape of a domain's second-level tables on one unit: address width
//! and level count chosen from CAP.SAGAW and CAP.MGAW as Linux chooses them
//! (`__iommu_calculate_agaw`, `prepare_domain_attach_device`), the large
//! pages CAP.SLLPS allows, and whether ECAP.SC allows SNP (VT-d spec rev
//! 4.1 §3.6, §3.7.1, §11.4.2).

use super::cap::{Cap, Ecap};
use super::pagetable::MapError;

/// Bits of IOVA resolved by each level.
pub(crate) const LEVEL_STRIDE: u32 = 9;
/// Page offset bits.
pub(crate) const PAGE_SHIFT: u32 = 12;

/// Adjusted guest address width (spec §3.7.1, the AGAW of the context
/// entry's AW field): 39-bit / 3-level, 48-bit / 4-level, 57-bit / 5-level.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum AddressWidth {
    /// AW = 1: 39 bits, 3 levels.
    Bits39,
    /// AW = 2: 48 bits, 4 levels.
    Bits48,
    /// AW = 3: 57 bits, 5 levels.
    Bits57,
}

impl AddressWidth {
    /// The context-entry AW encoding and the CAP.SAGAW bit index.
    pub const fn agaw(self) -> u8 {
        match self {
            Self::Bits39 => 1,
            Self::Bits48 => 2,
            Self::Bits57 => 3,
        }
    }

    /// Address bits covered (Linux `agaw_to_width`).
    pub const fn bits(self) -> u8 {
        30 + 9 * self.agaw()
    }

    /// Page-table levels (Linux `agaw_to_level`).
    pub const fn levels(self) -> u8 {
        self.agaw() + 2
    }

    const fn from_agaw(agaw: u8) -> Option<Self> {
        match agaw {
            1 => Some(Self::Bits39),
            2 => Some(Self::Bits48),
            3 => Some(Self::Bits57),
            _ => None,
        }
    }

    /// The widest width in CAP.SAGAW whose AGAW does not exceed the one
    /// needed for `need_bits` (Linux `__iommu_calculate_agaw`:
    /// `width_to_agaw` rounds up, then walks down to a set SAGAW bit).
    /// QEMU 7.2 default SAGAW = 0b00010 gives 39 bits; with `aw-bits=48`
    /// SAGAW = 0b00110 and a 57-bit (Linux default) need gives 48 bits.
    pub fn select(cap: Cap, need_bits: u8) -> Option<Self> {
        let need = u32::from(need_bits).saturating_sub(30).div_ceil(LEVEL_STRIDE);
        let sagaw = cap.sagaw();
        (1..=need.min(3) as u8).rev().find(|&agaw| sagaw & (1 << agaw) != 0).and_then(Self::from_agaw)
    }
}

/// Page sizes of a second-level leaf entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PageSize {
    /// 4 KiB, a level-1 entry.
    Size4K,
    /// 2 MiB, a level-2 entry with PS set; needs CAP.SLLPS bit 0.
    Size2M,
    /// 1 GiB, a level-3 entry with PS set; needs CAP.SLLPS bit 1.
    Size1G,
}

impl PageSize {
    /// The level holding a leaf of this size (1 = last-level table).
    pub const fn level(self) -> u8 {
        match self {
            Self::Size4K => 1,
            Self::Size2M => 2,
            Self::Size1G => 3,
        }
    }

    pub const fn bytes(self) -> u64 {
        1 << (PAGE_SHIFT + LEVEL_STRIDE * (self.level() as u32 - 1))
    }

    /// The page-selective invalidation address mask (AM): log2 of 4 KiB pages.
    pub const fn address_mask(self) -> u8 {
        (LEVEL_STRIDE * (self.level() as u32 - 1)) as u8
    }
}

/// What the unit supports for a domain's tables on one unit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Geometry {
    /// Table depth and context-entry AW.
    pub width: AddressWidth,
    /// Usable IOVA bits: min(width, CAP.MGAW) (Linux `domain->gaw`).
    pub address_bits: u8,
    /// CAP.SLLPS: bit 0 = 2 MiB, bit 1 = 1 GiB.
    pub sllps: u8,
    /// ECAP.SC: SNP may be set.
    pub snoop_control: bool,
    /// Physical address bits a leaf may point at: the DMAR's host address
    /// width (spec §9.8: ADDR bits above HAW are reserved and fault with
    /// reason 0xC; QEMU checks them against `aw-bits`). 52 (the ADDR field)
    /// until [`Geometry::with_host_address_width`] narrows it.
    pub host_address_bits: u8,
}

impl Geometry {
    /// Linux's default domain width (`DEFAULT_DOMAIN_ADDRESS_WIDTH`).
    pub const DEFAULT_NEED_BITS: u8 = 57;

    /// The geometry Linux would choose on this unit for a domain needing
    /// `need_bits` of IOVA.
    pub fn for_unit(cap: Cap, ecap: Ecap, need_bits: u8) -> Result<Self, MapError> {
        let width = AddressWidth::select(cap, need_bits).ok_or(MapError::NoSupportedWidth { sagaw: cap.sagaw() })?;
        Ok(Self {
            width,
            address_bits: width.bits().min(cap.mgaw()),
            sllps: cap.sllps(),
            snoop_control: ecap.sc(),
            host_address_bits: 52,
        })
    }

    /// Limit leaves to the platform's host address width (DMAR HAW).
    pub fn with_host_address_width(self, haw: u8) -> Self {
        Self { host_address_bits: haw.clamp(12, 52), ..self }
    }
}

impl Geometry {
    pub(crate) fn supports(&self, size: PageSize) -> bool {
        match size {
            PageSize::Size4K => true,
            PageSize::Size2M => self.sllps & 1 != 0,
            PageSize::Size1G => self.sllps & 2 != 0,
        }
    }
}
