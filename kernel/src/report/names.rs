//! Display names for the devices QEMU's q35 machine and the scenarios use,
//! and for PCI class codes (PCI Code and ID Assignment spec). Display only:
//! no rule depends on these.

pub fn device_name(vendor: u16, device: u16) -> Option<&'static str> {
    Some(match (vendor, device) {
        (0x8086, 0x29c0) => "q35 host bridge",
        (0x8086, 0x2918) => "ICH9 LPC",
        (0x8086, 0x2922) => "ICH9 AHCI",
        (0x8086, 0x2930) => "ICH9 SMBus",
        (0x8086, 0x3420) => "ioh3420 root port",
        (0x8086, 0x244e) => "i82801b11 DMI-to-PCI bridge",
        (0x8086, 0x10d3) => "e1000e",
        (0x8086, 0x100e) => "e1000",
        (0x1b36, 0x000c) => "pcie-root-port",
        (0x1b36, 0x000e) => "pcie-pci-bridge",
        (0x1b36, 0x0001) => "pci-bridge",
        (0x1b36, 0x000b) => "pxb-pcie host bridge",
        (0x1b36, 0x0010) => "nvme",
        (0x1b36, 0x0005) => "pci-testdev",
        (0x104c, 0x8232) => "x3130 upstream port",
        (0x104c, 0x8233) => "xio3130 downstream port",
        (0x1234, 0x11e8) => "edu",
        (0x1af4, 0x1000) | (0x1af4, 0x1041) => "virtio-net",
        (0x1af4, 0x1005) | (0x1af4, 0x1044) => "virtio-rng",
        _ => return None,
    })
}

pub fn class_name(class: u32) -> &'static str {
    match class >> 8 {
        0x0000 => "unclassified",
        0x0100 => "SCSI controller",
        0x0106 => "SATA controller",
        0x0108 => "NVMe controller",
        0x0200 => "Ethernet controller",
        0x0300 => "VGA controller",
        0x0600 => "host bridge",
        0x0601 => "ISA bridge",
        0x0604 => "PCI bridge",
        0x0c05 => "SMBus",
        0x00ff => "unclassified device",
        _ => match class >> 16 {
            0x01 => "storage controller",
            0x02 => "network controller",
            0x06 => "bridge",
            0x08 => "system peripheral",
            0xff => "unassigned class",
            _ => "device",
        },
    }
}
