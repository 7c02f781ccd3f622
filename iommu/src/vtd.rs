//! Intel VT-d: DMAR parsing and DMA-remapping unit programming.
