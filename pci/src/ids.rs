//! PCI vendor ids the quirk tables name (Linux include/linux/pci_ids.h
//! `PCI_VENDOR_ID_*`), kept once for both tables.

pub const ADAPTEC2: u16 = 0x9005;
pub const AMCC: u16 = 0x10e8;
pub const AMD: u16 = 0x1022;
pub const AMPERE: u16 = 0x1def;
pub const ANNAPURNA: u16 = 0x1c36;
pub const ASMEDIA: u16 = 0x1b21;
pub const ATI: u16 = 0x1002;
pub const BROADCOM: u16 = 0x14e4;
pub const CAVIUM: u16 = 0x177d;
pub const GLENFLY: u16 = 0x6766;
pub const HXT: u16 = 0x1dbf;
pub const INTEL: u16 = 0x8086;
pub const JMICRON: u16 = 0x197b;
pub const LOONGSON: u16 = 0x0014;
pub const MARVELL_EXT: u16 = 0x1b4b;
pub const NXP: u16 = 0x1957;
pub const PLX: u16 = 0x10b5;
pub const QCOM: u16 = 0x17cb;
pub const RICOH: u16 = 0x1180;
pub const SOLARFLARE: u16 = 0x1924;
pub const TTI: u16 = 0x1103;
pub const WANGXUN: u16 = 0x8088;
pub const ZHAOXIN: u16 = 0x1d17;
