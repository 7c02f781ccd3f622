//! Synthetic machines in `lspci -vvnn` form, for the scale tests (a
//! machine of 4,080 functions): `segments` PCI domains, each with `ports` root ports on bus
//! 00 (alternately with and without ACS, eight to a slot) and, below each,
//! one endpoint device with `functions` functions.

use std::fmt::Write;

/// The lspci text of such a machine; `ports` (at most 255) per segment.
/// Functions: `segments * ports * (1 + functions)`.
pub fn lspci_text(segments: u16, ports: u8, functions: u8) -> String {
    let mut out = String::new();
    let functions = functions.clamp(1, 8);
    for seg in 0..segments {
        for p in 0..ports {
            let (dev, func, sec) = (p >> 3, p & 7, p + 1);
            let _ = writeln!(
                out,
                "{seg:04x}:00:{dev:02x}.{func} PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c] (prog-if 00 [Normal decode])"
            );
            let _ = writeln!(out, "\tBus: primary=00, secondary={sec:02x}, subordinate={sec:02x}, sec-latency=0");
            let _ = writeln!(out, "\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00");
            if p % 2 == 0 {
                let _ = writeln!(out, "\tCapabilities: [148 v1] Access Control Services");
                let _ = writeln!(
                    out,
                    "\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+"
                );
                let _ = writeln!(
                    out,
                    "\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-"
                );
            }
            let _ = writeln!(out, "\tKernel driver in use: pcieport\n");
            for f in 0..functions {
                let _ =
                    writeln!(out, "{seg:04x}:{sec:02x}:00.{f} Unclassified device [00ff]: Device [1234:11e8] (rev 10)");
                let _ = writeln!(out, "\tCapabilities: [40] Express (v2) Endpoint, MSI 00\n");
            }
        }
    }
    out
}
