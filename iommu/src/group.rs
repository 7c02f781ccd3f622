//! Linux 6.1 IOMMU groups (drivers/iommu/iommu.c `pci_device_group`).
