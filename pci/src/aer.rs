//! Advanced Error Reporting on a root port (Linux 6.1
//! drivers/pci/pcie/aer.c): `aer_enable_rootport`, the interrupt handler's
//! read of Root Error Status and Error Source Identification (`aer_irq`),
//! the source device's status decode with the names Linux prints
//! (`aer_print_error`, `aer_uncorrectable_error_string[]`,
//! `aer_correctable_error_string[]`) and the W1C clears.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::{Bdf, ConfigSpace};
use crate::regs::*;

/// Root Error Status bits (`PCI_ERR_ROOT_*`).
pub const ROOT_COR_RCV: u32 = 0x01;
pub const ROOT_MULTI_COR_RCV: u32 = 0x02;
pub const ROOT_UNCOR_RCV: u32 = 0x04;
pub const ROOT_MULTI_UNCOR_RCV: u32 = 0x08;
pub const ROOT_FIRST_FATAL: u32 = 0x10;
pub const ROOT_NONFATAL_RCV: u32 = 0x20;
pub const ROOT_FATAL_RCV: u32 = 0x40;
/// Advanced Error Interrupt Message Number (bits 31:27).
pub const ROOT_AER_IRQ: u32 = 0xf800_0000;
/// `AER_ERR_STATUS_MASK`: the bits that make an interrupt `aer_irq`'s own.
pub const AER_ERR_STATUS_MASK: u32 = ROOT_UNCOR_RCV | ROOT_COR_RCV | ROOT_MULTI_COR_RCV | ROOT_MULTI_UNCOR_RCV;
/// Root Error Command: interrupt on correctable, non-fatal, fatal messages
/// (`ROOT_PORT_INTR_ON_MESG_MASK`).
pub const ROOT_PORT_INTR_ON_MESG_MASK: u32 = 0x7;

/// `aer_uncorrectable_error_string[]`, by bit.
const UNCOR_NAMES: [(u32, &str); 18] = [
    (0, "Undefined"),
    (4, "DLP"),
    (5, "SDES"),
    (12, "TLP"),
    (13, "FCP"),
    (14, "CmpltTO"),
    (15, "CmpltAbrt"),
    (16, "UnxCmplt"),
    (17, "RxOF"),
    (18, "MalfTLP"),
    (19, "ECRC"),
    (20, "UnsupReq"),
    (21, "ACSViol"),
    (22, "UncorrIntErr"),
    (23, "BlockedTLP"),
    (24, "AtomicOpBlocked"),
    (25, "TLPBlockedErr"),
    (26, "PoisonTLPBlocked"),
];

/// `aer_correctable_error_string[]`, by bit.
const COR_NAMES: [(u32, &str); 8] = [
    (0, "RxErr"),
    (6, "BadTLP"),
    (7, "BadDLLP"),
    (8, "Rollover"),
    (12, "Timeout"),
    (13, "NonFatalErr"),
    (14, "CorrIntErr"),
    (15, "HeaderOF"),
];

/// `aer_error_severity_string[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Corrected,
    NonFatal,
    Fatal,
}

impl Severity {
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Corrected => "Corrected",
            Severity::NonFatal => "Uncorrected (Non-Fatal)",
            Severity::Fatal => "Uncorrected (Fatal)",
        }
    }
}

/// `aer_error_layer[]` from `AER_GET_LAYER_ERROR`: the physical layer for
/// a receiver error, the data link layer for the DLL bits, else transaction.
pub fn layer(severity: Severity, status: u32) -> &'static str {
    let (phys, dll) = match severity {
        Severity::Corrected => (0x0000_0001, 0x0000_31c0),
        _ => (0, 0x0000_0030),
    };
    if status & phys != 0 {
        "Physical Layer"
    } else if status & dll != 0 {
        "Data Link Layer"
    } else {
        "Transaction Layer"
    }
}

/// The register writes of Linux 6.1 `aer_enable_rootport` on a root port
/// whose AER capability is at `aer` and PCIe capability at `pcie`:
/// clear Device Status, turn off system errors on error messages (Root
/// Control), clear Root Error Status and the port's own correctable and
/// uncorrectable status (W1C with the values read), enable error
/// reporting in Device Control of the root port (and, through
/// [`enable_error_reporting`], of the ports below), then enable the Root
/// Error Command interrupts.
pub fn enable_rootport(cfg: &mut dyn ConfigSpace, port: Bdf, pcie: u16, aer: u16) {
    let devsta = cfg.read16(port, pcie + PCI_EXP_DEVSTA);
    cfg.write16(port, pcie + PCI_EXP_DEVSTA, devsta);
    let rtctl = cfg.read16(port, pcie + PCI_EXP_RTCTL);
    cfg.write16(port, pcie + PCI_EXP_RTCTL, rtctl & !PCI_EXP_RTCTL_SYSERR);
    for reg in [PCI_ERR_ROOT_STATUS, PCI_ERR_COR_STATUS, PCI_ERR_UNCOR_STATUS] {
        let v = cfg.read32(port, aer + reg);
        cfg.write32(port, aer + reg, v);
    }
    enable_error_reporting(cfg, port, pcie);
    let cmd = cfg.read32(port, aer + PCI_ERR_ROOT_COMMAND);
    cfg.write32(port, aer + PCI_ERR_ROOT_COMMAND, cmd | ROOT_PORT_INTR_ON_MESG_MASK);
}

/// `pci_enable_pcie_error_reporting`: Device Control's four reporting
/// enables (`set_device_error_reporting` does it for root, upstream and
/// downstream ports and RCECs below the root port).
pub fn enable_error_reporting(cfg: &mut dyn ConfigSpace, dev: Bdf, pcie: u16) {
    let ctl = cfg.read16(dev, pcie + PCI_EXP_DEVCTL);
    if ctl != u16::MAX {
        cfg.write16(dev, pcie + PCI_EXP_DEVCTL, ctl | PCI_EXP_AER_FLAGS);
    }
}

/// Whether `aer_enable_rootport` turns error reporting on for a function
/// below the root port: `set_device_error_reporting` takes root,
/// upstream and downstream ports and RCECs, and
/// `pci_enable_pcie_error_reporting` does nothing without an AER
/// capability (`pcie_aer_is_native`: `!dev->aer_cap`).
pub fn reports_errors(pcie_type: Option<crate::caps::PcieType>, aer_cap: Option<u16>) -> bool {
    use crate::caps::PcieType::*;
    matches!(pcie_type, Some(RootPort | Upstream | Downstream | RcEc)) && aer_cap.is_some()
}

/// What `aer_irq` takes from the root port: Root Error Status and the
/// Error Source Identification register, both cleared (W1C with the
/// status read) so the port can signal the next error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootError {
    pub status: u32,
    pub source: u32,
}

impl RootError {
    /// Read and clear; `None` when no error message was received (the
    /// interrupt was not ours) or the port reads all ones.
    pub fn take(cfg: &mut dyn ConfigSpace, port: Bdf, aer: u16) -> Option<Self> {
        let status = cfg.read32(port, aer + PCI_ERR_ROOT_STATUS);
        if status == u32::MAX || status & AER_ERR_STATUS_MASK == 0 {
            return None;
        }
        let source = cfg.read32(port, aer + PCI_ERR_ROOT_ERR_SRC);
        cfg.write32(port, aer + PCI_ERR_ROOT_STATUS, status);
        Some(Self { status, source })
    }

    /// The uncorrectable error's source (`ERR_UNCOR_ID`: bits 31:16).
    pub fn uncorrectable_source(&self, segment: u16) -> Option<Bdf> {
        (self.status & ROOT_UNCOR_RCV != 0).then(|| rid(segment, (self.source >> 16) as u16))
    }
    /// The correctable error's source (`ERR_COR_ID`: bits 15:0).
    pub fn correctable_source(&self, segment: u16) -> Option<Bdf> {
        (self.status & ROOT_COR_RCV != 0).then(|| rid(segment, self.source as u16))
    }
    /// `aer_isr_one_error`: fatal when Fatal Error Messages Received is
    /// set (`PCI_ERR_ROOT_FATAL_RCV`), whichever error came first.
    pub fn uncorrectable_severity(&self) -> Severity {
        if self.status & ROOT_FATAL_RCV != 0 { Severity::Fatal } else { Severity::NonFatal }
    }
    /// Whether more than one error of a kind arrived before this read.
    pub fn multiple(&self) -> bool {
        self.status & (ROOT_MULTI_COR_RCV | ROOT_MULTI_UNCOR_RCV) != 0
    }
    /// `PCI_ERR_ROOT_AER_IRQ`: the message number AER uses.
    pub fn message_number(status: u32) -> u8 {
        ((status & ROOT_AER_IRQ) >> 27) as u8
    }
}

fn rid(segment: u16, id: u16) -> Bdf {
    Bdf::from_devfn(segment, (id >> 8) as u8, id as u8)
}

/// One error as the source device holds it (`aer_get_device_error_info`):
/// the unmasked status bits, the first error pointer and the TLP header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceError {
    pub severity: Severity,
    /// Status & !mask.
    pub status: u32,
    /// Raw status register (masked bits included).
    pub raw_status: u32,
    /// First Error Pointer (AER Capabilities and Control bits 4:0), for
    /// uncorrectable errors.
    pub first: Option<u8>,
    pub header_log: [u32; 4],
}

impl DeviceError {
    /// Read the source's AER registers for an error of `severity`.
    /// `None` when the source reads all ones.
    pub fn read(cfg: &mut dyn ConfigSpace, dev: Bdf, aer: u16, severity: Severity) -> Option<Self> {
        let (st, mk) = match severity {
            Severity::Corrected => (PCI_ERR_COR_STATUS, PCI_ERR_COR_MASK),
            _ => (PCI_ERR_UNCOR_STATUS, PCI_ERR_UNCOR_MASK),
        };
        let raw = cfg.read32(dev, aer + st);
        if raw == u32::MAX {
            return None;
        }
        let mask = cfg.read32(dev, aer + mk);
        let mut header_log = [0; 4];
        let mut first = None;
        if severity != Severity::Corrected {
            first = Some((cfg.read32(dev, aer + PCI_ERR_CAP) & 0x1f) as u8);
            for (i, h) in header_log.iter_mut().enumerate() {
                *h = cfg.read32(dev, aer + PCI_ERR_HEADER_LOG + 4 * i as u16);
            }
        }
        Some(Self { severity, status: raw & !mask, raw_status: raw, first, header_log })
    }

    /// The names of the set bits, as `aer_print_error_source` prints
    /// them: `[12] TLP (First)`.
    pub fn names(&self) -> Vec<String> {
        let table: &[(u32, &str)] = if self.severity == Severity::Corrected { &COR_NAMES } else { &UNCOR_NAMES };
        (0..32)
            .filter(|b| self.status & (1 << b) != 0)
            .map(|b| {
                let name = table.iter().find(|(i, _)| *i == b).map(|(_, n)| *n).unwrap_or("Unknown Error Bit");
                let first = if self.first == Some(b as u8) { " (First)" } else { "" };
                format!("[{b:2}] {name}{first}")
            })
            .collect()
    }

    /// Clear the status (W1C with the raw value read), as the recovery
    /// path does (`pci_aer_clear_nonfatal_status`, the correctable clear
    /// in `handle_error_source`).
    pub fn clear(&self, cfg: &mut dyn ConfigSpace, dev: Bdf, aer: u16) {
        let st = if self.severity == Severity::Corrected { PCI_ERR_COR_STATUS } else { PCI_ERR_UNCOR_STATUS };
        cfg.write32(dev, aer + st, self.raw_status);
    }

    /// Linux's summary line: "PCIe Bus Error: severity=..., type=..., (Requester ID)".
    pub fn summary(&self) -> String {
        format!(
            "PCIe Bus Error: severity={}, type={}, (Requester ID)",
            self.severity.name(),
            layer(self.severity, self.status)
        )
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, qemu};

    const RP: Bdf = Bdf::new(0, 0, 2, 0);
    const DSP: Bdf = Bdf::new(0, 2, 0, 0);
    const AER: u16 = 0x100;

    fn machine() -> (SimConfig, u16) {
        let mut cfg = SimConfig::new();
        cfg.add(RP, qemu::root_port(true, 1, 3));
        cfg.add(DSP, qemu::dsp(2, 3, 3));
        assert_eq!(cfg.peek32(RP, AER) & 0xffff, u32::from(PCI_EXT_CAP_ID_ERR), "AER at 0x100");
        (cfg, 0x40)
    }

    #[test]
    fn enable_rootport_writes_in_linux_order() {
        let (mut cfg, pcie) = machine();
        cfg.raise(RP, AER + PCI_ERR_ROOT_STATUS, 4, 0x24);
        cfg.raise(RP, AER + PCI_ERR_UNCOR_STATUS, 4, 1 << 12);
        cfg.raise(RP, pcie + PCI_EXP_RTCTL, 2, 0x7);
        enable_rootport(&mut cfg, RP, pcie, AER);
        let order: Vec<(u16, u32)> = cfg.writes.iter().map(|w| (w.offset, w.value)).collect();
        assert_eq!(
            order,
            [
                (pcie + PCI_EXP_DEVSTA, 0),
                (pcie + PCI_EXP_RTCTL, 0),
                (AER + PCI_ERR_ROOT_STATUS, 0x24),
                (AER + PCI_ERR_COR_STATUS, 0),
                (AER + PCI_ERR_UNCOR_STATUS, 1 << 12),
                (pcie + PCI_EXP_DEVCTL, 0xf),
                (AER + PCI_ERR_ROOT_COMMAND, 7),
            ]
        );
        assert_eq!(cfg.peek32(RP, AER + PCI_ERR_ROOT_STATUS), 0, "W1C cleared the old status");
        assert_eq!(cfg.peek32(RP, AER + PCI_ERR_UNCOR_STATUS), 0);
        assert_eq!(cfg.peek32(RP, AER + PCI_ERR_ROOT_COMMAND), 7);
        assert_eq!(cfg.peek16(RP, pcie + PCI_EXP_RTCTL) & 7, 0, "no system error on error messages");
    }

    #[test]
    fn root_error_status_and_source_decode() {
        let (mut cfg, _) = machine();
        assert_eq!(RootError::take(&mut cfg, RP, AER), None, "nothing received: not our interrupt");
        // QEMU after `pcie_aer_inject_error dp1 POISON_TLP`: non-fatal
        // uncorrectable from 02:00.0.
        cfg.raise(RP, AER + PCI_ERR_ROOT_STATUS, 4, 0x24);
        cfg.raise(RP, AER + PCI_ERR_ROOT_ERR_SRC, 4, 0x0200_0000);
        let e = RootError::take(&mut cfg, RP, AER).unwrap();
        assert_eq!(e.uncorrectable_source(0), Some(DSP));
        assert_eq!(e.correctable_source(0), None);
        assert_eq!(e.uncorrectable_severity(), Severity::NonFatal);
        assert!(!e.multiple());
        assert_eq!(cfg.peek32(RP, AER + PCI_ERR_ROOT_STATUS), 0, "W1C with the status read re-arms the port");
        let fatal = RootError { status: ROOT_UNCOR_RCV | ROOT_FIRST_FATAL | ROOT_FATAL_RCV, source: 0 };
        assert_eq!(fatal.uncorrectable_severity(), Severity::Fatal);
        // A non-fatal error first, then a fatal one before the handler ran:
        // First Uncorrectable Fatal stays clear, Fatal Received is set, and
        // aer_isr_one_error reports AER_FATAL (it tests PCI_ERR_ROOT_FATAL_RCV).
        let later_fatal =
            RootError { status: ROOT_UNCOR_RCV | ROOT_MULTI_UNCOR_RCV | ROOT_NONFATAL_RCV | ROOT_FATAL_RCV, source: 0 };
        assert_eq!(later_fatal.uncorrectable_severity(), Severity::Fatal);
        // aer_irq takes the interrupt as its own for any bit of
        // AER_ERR_STATUS_MASK, the two "multiple" bits included.
        cfg.raise(RP, AER + PCI_ERR_ROOT_STATUS, 4, ROOT_MULTI_COR_RCV);
        let e = RootError::take(&mut cfg, RP, AER).expect("a multiple-correctable bit is an error message");
        assert_eq!(e.status, ROOT_MULTI_COR_RCV);
        assert_eq!(cfg.peek32(RP, AER + PCI_ERR_ROOT_STATUS), 0, "cleared with the value read");
        assert_eq!(RootError::message_number(0x0800_0024), 1, "ioh3420 with two MSI vectors");
        let cor = RootError { status: ROOT_COR_RCV, source: 0x0308 };
        assert_eq!(cor.correctable_source(0), Some(Bdf::new(0, 3, 1, 0)));
    }

    #[test]
    fn reporting_is_enabled_on_ports_with_an_aer_capability_only() {
        use crate::caps::PcieType::*;
        // set_device_error_reporting: root, upstream, downstream ports and
        // RCECs; pci_enable_pcie_error_reporting: only with dev->aer_cap
        // (pcie_aer_is_native).
        for t in [RootPort, Upstream, Downstream, RcEc] {
            assert!(reports_errors(Some(t), Some(0x100)), "{t:?}");
            assert!(!reports_errors(Some(t), None), "{t:?} without AER");
        }
        for t in [Endpoint, PciBridge, RcEnd] {
            assert!(!reports_errors(Some(t), Some(0x100)), "{t:?}");
        }
        assert!(!reports_errors(None, Some(0x100)));
    }

    #[test]
    fn source_status_decode_with_linux_names_and_clear() {
        let (mut cfg, _) = machine();
        cfg.raise(DSP, AER + PCI_ERR_UNCOR_STATUS, 4, (1 << 12) | (1 << 20));
        cfg.raise(DSP, AER + PCI_ERR_UNCOR_MASK, 4, 1 << 20);
        cfg.raise(DSP, AER + PCI_ERR_CAP, 4, 12);
        let e = DeviceError::read(&mut cfg, DSP, AER, Severity::NonFatal).unwrap();
        assert_eq!(e.status, 1 << 12, "masked bits are not reported");
        assert_eq!(e.names(), ["[12] TLP (First)"]);
        assert_eq!(
            e.summary(),
            "PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)"
        );
        e.clear(&mut cfg, DSP, AER);
        assert_eq!(cfg.peek32(DSP, AER + PCI_ERR_UNCOR_STATUS), 0);
        let c = DeviceError {
            severity: Severity::Corrected,
            status: 1 | (1 << 7),
            raw_status: 0,
            first: None,
            header_log: [0; 4],
        };
        assert_eq!(c.names(), ["[ 0] RxErr", "[ 7] BadDLLP"]);
        assert_eq!(layer(Severity::Corrected, 1), "Physical Layer");
        assert_eq!(layer(Severity::Corrected, 1 << 7), "Data Link Layer");
        assert_eq!(layer(Severity::Fatal, 1 << 4), "Data Link Layer");
        assert!(DeviceError::read(&mut cfg, Bdf::new(0, 9, 0, 0), AER, Severity::Fatal).is_none());
    }
}
