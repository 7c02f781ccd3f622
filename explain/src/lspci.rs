//! `lspci -vvnn`, `lspci -xxxx` and `lspci -vvnnxxxx` output as users post
//! it, with or without the domain, with or without root.
//!
//! With hex dumps the config bytes are the device's own. From decoded text
//! alone [`synthesize`] rebuilds the bytes the rules read: ids, class,
//! header type, bus numbers, the PCIe capability with its port type, slot
//! and ARI forwarding bits, ACS capability and control, ARI, SR-IOV, and
//! the multifunction bit (inferred from sibling functions); every other
//! capability is kept as a header at its offset so the lists chain as on
//! the device. What the text cannot say is recorded per function.

use std::collections::BTreeSet;

use pci::Bdf;
use pci::regs::*;

use crate::input::{Input, InputDevice, Unusable};

/// One capability as lspci decoded it.
#[derive(Clone, Debug, Default)]
struct Cap<'a> {
    offset: u16,
    extended: bool,
    version: u8,
    title: &'a str,
    /// The decoded lines below it: (tab depth, text without the tabs).
    /// Depth 2 starts a field (`DevCap2:`), deeper lines continue it.
    body: Vec<(usize, &'a str)>,
}

/// One function block of lspci output.
#[derive(Clone, Debug, Default)]
struct Block<'a> {
    line: usize,
    bdf: Option<Bdf>,
    header: &'a str,
    decoded: Vec<&'a str>,
    caps: Vec<Cap<'a>>,
    access_denied: bool,
    hex: Vec<u8>,
    hex_broken: Option<String>,
    /// Whether the lines now read belong to the last capability.
    in_cap: bool,
}

/// A hex dump row: `OFF: b0 b1 ... b15`.
fn hex_row(line: &str) -> Option<Result<(usize, [u8; 16]), String>> {
    let (off, rest) = line.split_once(':')?;
    if !(2..=3).contains(&off.len()) || !off.bytes().all(|b| b.is_ascii_hexdigit()) || !rest.starts_with(' ') {
        return None;
    }
    let offset = usize::from_str_radix(off, 16).ok()?;
    // Fast path: exactly " xx" sixteen times, as lspci prints it.
    let raw = rest.as_bytes();
    if raw.len() == 48 {
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut bytes = [0u8; 16];
        let ok = raw.chunks_exact(3).zip(bytes.iter_mut()).all(|(c, b)| match (c[0], nibble(c[1]), nibble(c[2])) {
            (b' ', Some(h), Some(l)) => {
                *b = (h << 4) | l;
                true
            }
            _ => false,
        });
        if ok {
            return Some(Ok((offset, bytes)));
        }
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.len() != 16 {
        return Some(Err(format!("hex row at offset {off} has {} bytes, not 16", words.len())));
    }
    let mut bytes = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        match u8::from_str_radix(w, 16) {
            Ok(b) if w.len() == 2 => bytes[i] = b,
            _ => return Some(Err(format!("hex row at offset {off}: {w:?} is not a byte"))),
        }
    }
    Some(Ok((offset, bytes)))
}

/// The address at the start of a block's first line.
/// `Err(address)` for a line that starts like a function address but is
/// not one this tool reads (a PCI domain above ffff, as Intel VMD creates).
fn block_start(line: &str) -> Option<Result<(Bdf, &str), &str>> {
    let (addr, rest) = line.split_once(' ')?;
    let looks = addr.len() >= 7
        && addr.contains('.')
        && addr.contains(':')
        && addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
    if !looks {
        return None;
    }
    Some(Bdf::parse(addr).map(|b| (b, rest)).ok_or(addr))
}

/// Split the text into function blocks. Lines that belong to nothing (a
/// stray message from pcilib in the middle of a line) are skipped.
fn blocks<'a>(text: &'a str, path: &str, problems: &mut Vec<String>) -> Vec<Block<'a>> {
    let mut out: Vec<Block> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        match block_start(line) {
            Some(Ok((bdf, rest))) => {
                out.push(Block { line: n, bdf: Some(bdf), header: rest, ..Block::default() });
                continue;
            }
            Some(Err(addr)) => {
                problems.push(format!(
                    "{path}:{n}: address {addr} not understood (a PCI domain above ffff, such as an Intel VMD \
                     domain, is not read); function left out"
                ));
                out.push(Block { line: n, ..Block::default() });
                continue;
            }
            None => {}
        }
        let Some(b) = out.last_mut() else { continue };
        if let Some(row) = hex_row(line) {
            if b.hex_broken.is_some() {
                continue;
            }
            match row {
                Ok((offset, bytes)) if offset == b.hex.len() => b.hex.extend_from_slice(&bytes),
                Ok((offset, _)) => {
                    let msg = format!(
                        "{path}:{n}: hex row at offset {offset:#x} out of order (expected {:#x}); dump of {} cut there",
                        b.hex.len(),
                        b.bdf.map(|b| b.to_string()).unwrap_or_default()
                    );
                    problems.push(msg.clone());
                    b.hex_broken = Some(msg);
                }
                Err(e) => {
                    let msg = format!(
                        "{path}:{n}: {e}; dump of {} cut there",
                        b.bdf.map(|b| b.to_string()).unwrap_or_default()
                    );
                    problems.push(msg.clone());
                    b.hex_broken = Some(msg);
                }
            }
            continue;
        }
        if let Some(body) = line.strip_prefix('\t') {
            if body.starts_with('\t') {
                let text = body.trim_start_matches('\t');
                let depth = 1 + body.len() - text.len();
                if b.in_cap
                    && let Some(c) = b.caps.last_mut()
                {
                    c.body.push((depth, text));
                }
                continue;
            }
            if let Some(cap) = body.strip_prefix("Capabilities: ") {
                b.in_cap = false;
                if cap.starts_with("<access denied>") {
                    b.access_denied = true;
                } else if let Some(c) = parse_cap_title(cap) {
                    b.caps.push(c);
                    b.in_cap = true;
                } else {
                    problems.push(format!("{path}:{n}: capability line not understood: {cap:?}"));
                }
                continue;
            }
            b.in_cap = false;
            b.decoded.push(body);
        }
    }
    out
}

/// `[54] Express (v2) Root Port (Slot+), MSI 00` or `[148 v1] Access ...`.
fn parse_cap_title(s: &str) -> Option<Cap<'_>> {
    let s = s.strip_prefix('[')?;
    let (inside, title) = s.split_once(']')?;
    let (off, version) = match inside.split_once(' ') {
        Some((o, v)) => (o, v.strip_prefix('v')?.parse::<u8>().ok()?),
        None => (inside, 0),
    };
    let offset = u16::from_str_radix(off, 16).ok()?;
    if offset >= 4096 {
        return None;
    }
    Some(Cap { offset, extended: offset >= 0x100, version, title: title.trim(), body: Vec::new() })
}

/// The standard capability id lspci prints under this title.
fn std_cap_id(title: &str) -> u8 {
    const NAMES: &[(&str, u8)] = &[
        ("Power Management", 0x01),
        ("AGP version 3", 0x0e),
        ("AGP", 0x02),
        ("Vital Product Data", 0x03),
        ("Slot ID", 0x04),
        ("MSI-X", 0x11),
        ("MSI", 0x05),
        ("CompactPCI hot-swap", 0x06),
        ("PCI-X", 0x07),
        ("HyperTransport", 0x08),
        ("Vendor Specific", 0x09),
        ("Debug port", 0x0a),
        ("CompactPCI central resource", 0x0b),
        ("Hot-plug capable", 0x0c),
        ("Subsystem", 0x0d),
        ("Secure device", 0x0f),
        ("Express", 0x10),
        ("SATA HBA", 0x12),
        ("PCI Advanced Features", 0x13),
        ("Enhanced Allocation", 0x14),
        ("Flattening Portal Bridge", 0x15),
    ];
    if let Some(id) = title.strip_prefix("#").and_then(|t| u8::from_str_radix(t.get(..2)?, 16).ok()) {
        return id;
    }
    NAMES.iter().find(|(n, _)| title.starts_with(n)).map_or(PCI_CAP_ID_VNDR, |(_, id)| *id)
}

/// The extended capability id lspci prints under this title.
fn ext_cap_id(title: &str) -> u16 {
    const NAMES: &[(&str, u16)] = &[
        ("Advanced Error Reporting", 0x01),
        ("Virtual Channel", 0x02),
        ("Device Serial Number", 0x03),
        ("Power Budgeting", 0x04),
        ("Root Complex Link", 0x05),
        ("Root Complex Internal Link", 0x06),
        ("Root Complex Event Collector", 0x07),
        ("Multi-Function Virtual Channel", 0x08),
        ("Root Complex Register Block", 0x0a),
        ("Vendor Specific Information", 0x0b),
        ("Access Control Services", 0x0d),
        ("Alternative Routing-ID Interpretation", 0x0e),
        ("Address Translation Service", 0x0f),
        ("Single Root I/O Virtualization", 0x10),
        ("Multi-Root I/O Virtualization", 0x11),
        ("Multicast", 0x12),
        ("Page Request Interface", 0x13),
        ("Resizable BAR", 0x15),
        ("Dynamic Power Allocation", 0x16),
        ("Transaction Processing Hints", 0x17),
        ("Latency Tolerance Reporting", 0x18),
        ("Secondary PCI Express", 0x19),
        ("Process Address Space ID", 0x1b),
        ("Downstream Port Containment", 0x1d),
        ("L1 PM Substates", 0x1e),
        ("Precision Time Measurement", 0x1f),
        ("Designated Vendor-Specific", 0x23),
        ("VF Resizable BAR", 0x24),
        ("Data Link Feature", 0x25),
        ("Physical Layer 16.0 GT/s", 0x26),
        ("Lane Margining at the Receiver", 0x27),
        ("Physical Layer 32.0 GT/s", 0x2a),
        ("Physical Resizable BAR", 0x15),
        ("Null", 0x00),
    ];
    if let Some(rest) = title.strip_prefix("Extended Capability ID ") {
        return u16::from_str_radix(rest.trim_start_matches("0x").get(..2).unwrap_or(""), 16).unwrap_or(0x0b);
    }
    NAMES.iter().find(|(n, _)| title.starts_with(n)).map_or(0x0b, |(_, id)| *id)
}

/// `SrcValid+ TransBlk- ...` → ACS bits (same layout in cap and control).
fn acs_bits(s: &str) -> u16 {
    const NAMES: [&str; 7] =
        ["SrcValid", "TransBlk", "ReqRedir", "CmpltRedir", "UpstreamFwd", "EgressCtrl", "DirectTrans"];
    NAMES.iter().enumerate().filter(|(_, n)| s.contains(&format!("{n}+"))).fold(0, |acc, (i, _)| acc | (1 << i))
}

/// The number after `key` in `s` (decimal unless `hex`).
fn number_after(s: &str, key: &str, hex: bool) -> Option<u32> {
    let rest = &s[s.find(key)? + key.len()..];
    let word: String = rest.trim_start().chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    if hex { u32::from_str_radix(&word, 16).ok() } else { word.parse().ok() }
}

/// `[xxxx:xxxx]` ids: the last pair in the header is vendor:device.
fn ids(header: &str) -> Option<(u16, u16)> {
    let mut found = None;
    let mut rest = header;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        if let Some(end) = after.find(']') {
            let inner = &after[..end];
            if let Some((v, d)) = inner.split_once(':')
                && v.len() == 4
                && d.len() == 4
                && let (Ok(v), Ok(d)) = (u16::from_str_radix(v, 16), u16::from_str_radix(d, 16))
            {
                found = Some((v, d));
            }
        }
        rest = after;
    }
    found
}

/// `Class name [cccc]:` → class code (base, sub).
fn class_code(header: &str) -> Option<u16> {
    let end = header.find("]:")?;
    let start = header[..end].rfind('[')?;
    u16::from_str_radix(&header[start + 1..end], 16).ok()
}

/// `Class [cccc]: Vendor Device [vvvv:dddd] (rev 01)` → `Vendor Device`.
fn display_name(header: &str) -> String {
    let after_class = header.find("]: ").map_or(header, |i| &header[i + 3..]);
    let end = ids(after_class).and_then(|(v, d)| after_class.rfind(&format!(" [{v:04x}:{d:04x}]")));
    let name = after_class[..end.unwrap_or(after_class.len())].trim();
    let class = header.find(" [").map_or("", |i| &header[..i]);
    if name.is_empty() { class.to_string() } else { name.to_string() }
}

fn put16(d: &mut [u8], off: u16, v: u16) {
    let o = usize::from(off);
    if o + 2 <= d.len() {
        d[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
}
fn put32(d: &mut [u8], off: u16, v: u32) {
    let o = usize::from(off);
    if o + 4 <= d.len() {
        d[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// Rebuild the config bytes the rules read from one block's decoded text.
/// `multifunction`: whether sibling functions exist (sets header bit 7).
/// Intel LPC bridge: Root Complex Base Address register (Linux
/// `INTEL_LPC_RCBA_REG`), and the value assumed from decoded text: the
/// usual base with the enable bit.
const INTEL_LPC_RCBA: u16 = 0xf0;
const ASSUMED_RCBA: u32 = 0xfed1_c000 | 1;

fn synthesize(b: &Block, multifunction: bool, unknown: &mut Vec<String>) -> Option<Vec<u8>> {
    let (vendor, device) = ids(b.header)?;
    let pcie = b.caps.iter().find(|c| !c.extended && c.title.starts_with("Express"));
    let size = if pcie.is_some() && !b.access_denied { 4096 } else { 256 };
    let mut d = vec![0u8; size];
    put16(&mut d, PCI_VENDOR_ID, vendor);
    put16(&mut d, PCI_DEVICE_ID, device);
    let class = class_code(b.header).unwrap_or_else(|| {
        unknown.push("class code not in the text (run lspci with -nn)".into());
        0xff00
    });
    let rev = number_after(b.header, "(rev ", true).unwrap_or(0) as u8;
    let progif = number_after(b.header, "(prog-if ", true).unwrap_or(0) as u8;
    put32(&mut d, PCI_CLASS_REVISION, (u32::from(class) << 16) | (u32::from(progif) << 8) | u32::from(rev));
    let bus_line = b.decoded.iter().find(|l| l.starts_with("Bus: primary="));
    let mut header_type = match class {
        0x0604 | 0x0609 => PCI_HEADER_TYPE_BRIDGE,
        0x0607 => PCI_HEADER_TYPE_CARDBUS,
        _ => PCI_HEADER_TYPE_NORMAL,
    };
    if bus_line.is_some() && header_type == PCI_HEADER_TYPE_NORMAL {
        header_type = PCI_HEADER_TYPE_BRIDGE;
    }
    d[usize::from(PCI_HEADER_TYPE)] = header_type | if multifunction { PCI_HEADER_TYPE_MFD } else { 0 };
    if let Some(l) = bus_line {
        d[usize::from(PCI_PRIMARY_BUS)] = number_after(l, "primary=", true).unwrap_or(0) as u8;
        d[usize::from(PCI_SECONDARY_BUS)] = number_after(l, "secondary=", true).unwrap_or(0) as u8;
        d[usize::from(PCI_SUBORDINATE_BUS)] = number_after(l, "subordinate=", true).unwrap_or(0) as u8;
    } else if header_type != PCI_HEADER_TYPE_NORMAL {
        unknown.push("bridge bus numbers not in the text (run lspci -vv)".into());
    }
    if header_type == PCI_HEADER_TYPE_NORMAL
        && let Some(s) = b.decoded.iter().find(|l| l.starts_with("Subsystem:"))
        && let Some((sv, sd)) = ids(s)
    {
        put16(&mut d, PCI_SUBSYSTEM_VENDOR_ID, sv);
        put16(&mut d, PCI_SUBSYSTEM_ID, sd);
    }
    // Intel's LPC bridge holds RCBA at 0xf0, which decoded text never
    // shows; firmware of the 5- to 9-series, X79 and X99 chipsets leaves it
    // enabled, so `pci_quirk_enable_intel_pch_acs` normally succeeds:
    // take it as enabled (the PCH root ports say so, `hidden_rule`).
    if vendor == pci::ids::INTEL && class == 0x0601 && header_type == PCI_HEADER_TYPE_NORMAL {
        put32(&mut d, INTEL_LPC_RCBA, ASSUMED_RCBA);
    }
    if b.access_denied {
        unknown.push(
            "capabilities: access denied (lspci was not run as root): PCIe port type, ACS and ARI unknown".into(),
        );
    }
    // Standard list, chained in the order lspci walked it.
    let std: Vec<&Cap> = b.caps.iter().filter(|c| !c.extended && c.offset >= 0x40 && c.offset < 0x100).collect();
    if let Some(first) = std.first() {
        put16(&mut d, PCI_STATUS, PCI_STATUS_CAP_LIST);
        let ptr = if header_type == PCI_HEADER_TYPE_CARDBUS { PCI_CB_CAPABILITY_LIST } else { PCI_CAPABILITY_LIST };
        d[usize::from(ptr)] = first.offset as u8;
    }
    for (i, c) in std.iter().enumerate() {
        let next = std.get(i + 1).map_or(0, |n| n.offset as u8);
        let id = std_cap_id(c.title);
        put16(&mut d, c.offset, u16::from(id) | (u16::from(next) << 8));
        if id == PCI_CAP_ID_EXP {
            express(&mut d, c, unknown);
        }
    }
    // Extended list.
    let ext: Vec<&Cap> = b.caps.iter().filter(|c| c.extended).collect();
    // The list starts at 0x100; text that shows its first capability
    // elsewhere gets an empty (id 0) header there that points to it.
    if let Some(first) = ext.first().filter(|c| c.offset != PCI_CFG_SPACE_SIZE) {
        put32(&mut d, PCI_CFG_SPACE_SIZE, u32::from(first.offset) << 20);
    }
    for (i, c) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(0, |n| u32::from(n.offset));
        let id = ext_cap_id(c.title);
        put32(&mut d, c.offset, u32::from(id) | (u32::from(c.version & 0xf) << 16) | (next << 20));
        match id {
            PCI_EXT_CAP_ID_ACS => acs(&mut d, c, vendor, device, unknown),
            PCI_EXT_CAP_ID_ARI => {
                let l = &field(c, "ARICap:");
                let next_fn = number_after(l, "Next Function:", false).unwrap_or(0) as u16;
                let bits = u16::from(l.contains("MFVC+")) | (u16::from(l.contains("ACS+")) << 1);
                put16(&mut d, c.offset + PCI_ARI_CAP, (next_fn << 8) | bits);
            }
            PCI_EXT_CAP_ID_SRIOV => sriov(&mut d, c),
            _ => {}
        }
    }
    Some(d)
}

/// A capability's field with its continuation lines, joined by spaces.
fn field(c: &Cap, key: &str) -> String {
    let mut out = String::new();
    let mut on = false;
    for (depth, l) in &c.body {
        if *depth <= 2 {
            if on {
                break;
            }
            on = l.starts_with(key);
        }
        if on {
            out.push_str(l);
            out.push(' ');
        }
    }
    out
}

/// The PCIe capability: flags (version, type, slot), slot hot-plug,
/// DevCap2/DevCtl2 ARI forwarding.
fn express(d: &mut [u8], c: &Cap, unknown: &mut Vec<String>) {
    let t = &c.title;
    let version = number_after(t, "(v", false).unwrap_or(1) as u16;
    const TYPES: &[(&str, u8)] = &[
        ("Legacy Endpoint", PCI_EXP_TYPE_LEG_END),
        ("Root Complex Integrated Endpoint", PCI_EXP_TYPE_RC_END),
        ("Root Complex Event Collector", PCI_EXP_TYPE_RC_EC),
        ("Endpoint", PCI_EXP_TYPE_ENDPOINT),
        ("Root Port", PCI_EXP_TYPE_ROOT_PORT),
        ("Upstream Port", PCI_EXP_TYPE_UPSTREAM),
        ("Downstream Port", PCI_EXP_TYPE_DOWNSTREAM),
        ("PCI-Express to PCI/PCI-X Bridge", PCI_EXP_TYPE_PCI_BRIDGE),
        ("PCI/PCI-X to PCI-Express Bridge", PCI_EXP_TYPE_PCIE_BRIDGE),
    ];
    let port = match TYPES.iter().find(|(n, _)| t.contains(n)) {
        Some((_, p)) => *p,
        None => match number_after(t, "Unknown type ", false) {
            Some(v) => v as u8,
            None => {
                unknown.push(format!("PCIe port type not understood in {t:?}; taken as endpoint"));
                PCI_EXP_TYPE_ENDPOINT
            }
        },
    };
    let slot = if t.contains("(Slot+)") { PCI_EXP_FLAGS_SLOT } else { 0 };
    put16(d, c.offset + PCI_EXP_FLAGS, (version & 0xf) | (u16::from(port) << 4) | slot);
    let line = |key: &str| field(c, key);
    if line("SltCap:").contains("HotPlug+") {
        put32(d, c.offset + PCI_EXP_SLTCAP, PCI_EXP_SLTCAP_HPC);
    }
    if line("DevCap2:").contains("ARIFwd+") {
        put32(d, c.offset + PCI_EXP_DEVCAP2, PCI_EXP_DEVCAP2_ARI);
    }
    if line("DevCtl2:").contains("ARIFwd+") {
        put16(d, c.offset + PCI_EXP_DEVCTL2, PCI_EXP_DEVCTL2_ARI);
    }
}

/// ACS capability and control words; the Intel Sunrise Point erratum layout
/// keeps control elsewhere, which lspci does not decode.
fn acs(d: &mut [u8], c: &Cap, vendor: u16, device: u16, unknown: &mut Vec<String>) {
    let word = |key: &str| acs_bits(&field(c, key));
    let cap = word("ACSCap:");
    put16(d, c.offset + PCI_ACS_CAP, cap);
    put16(d, c.offset + PCI_ACS_CTRL, word("ACSCtl:"));
    let spt = matches!(device, 0xa110..=0xa11f | 0xa167..=0xa16a | 0xa290..=0xa29f | 0xa2e7..=0xa2ee | 0x9d10..=0x9d1b);
    if vendor == pci::ids::INTEL && spt {
        unknown.push(
            "ACS control in the Intel Sunrise Point erratum layout (dword at +8) is not decoded by lspci: taken as \
             Linux enables it (pci_quirk_enable_intel_spt_pch_acs)"
                .into(),
        );
    }
}

/// SR-IOV control, counts, offset, stride and VF device id.
fn sriov(d: &mut [u8], c: &Cap) {
    let find = |key: &str| c.body.iter().find(|(_, l)| l.contains(key)).map_or("", |(_, l)| *l);
    if find("IOVCtl:").contains("Enable+") {
        put16(d, c.offset + PCI_SRIOV_CTRL, PCI_SRIOV_CTRL_VFE);
    }
    let counts = find("Total VFs:");
    put16(d, c.offset + PCI_SRIOV_INITIAL_VF, number_after(counts, "Initial VFs:", false).unwrap_or(0) as u16);
    put16(d, c.offset + PCI_SRIOV_TOTAL_VF, number_after(counts, "Total VFs:", false).unwrap_or(0) as u16);
    put16(d, c.offset + PCI_SRIOV_NUM_VF, number_after(counts, "Number of VFs:", false).unwrap_or(0) as u16);
    let vf = find("VF offset:");
    put16(d, c.offset + PCI_SRIOV_VF_OFFSET, number_after(vf, "VF offset:", false).unwrap_or(0) as u16);
    put16(d, c.offset + PCI_SRIOV_VF_STRIDE, number_after(vf, "stride:", false).unwrap_or(0) as u16);
    put16(d, c.offset + PCI_SRIOV_VF_DID, number_after(vf, "Device ID:", true).unwrap_or(0) as u16);
}

/// Read lspci output. `path` names the input in messages.
pub fn parse(text: &str, path: &str) -> Result<Input, Unusable> {
    let mut input = Input::default();
    input.source.kind = "lspci".into();
    input.source.path = path.into();
    if text.trim().is_empty() {
        return Err(Unusable(format!("{path}: empty input: expected the output of `lspci -vvnn` (or -xxxx)")));
    }
    let blocks = blocks(text, path, &mut input.problems);
    if blocks.is_empty() {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let n = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0) + 1;
        return Err(Unusable(format!(
            "{path}:{n}: not lspci output (no line starts with a function address like 00:1f.0); line {n} reads {:?}",
            first.chars().take(60).collect::<String>()
        )));
    }
    // Sibling functions: a slot with more than one function is multifunction.
    let slots: Vec<(u16, u8, u8)> = blocks.iter().filter_map(|b| b.bdf).map(|b| (b.segment, b.bus, b.device)).collect();
    let mut seen = BTreeSet::new();
    let mut multi = BTreeSet::new();
    for s in &slots {
        if !seen.insert(*s) {
            multi.insert(*s);
        }
    }
    let (mut any_hex, mut any_text) = (false, false);
    let mut addresses = BTreeSet::new();
    for b in &blocks {
        let Some(bdf) = b.bdf else {
            input.partial = true;
            continue;
        };
        if !addresses.insert(bdf) {
            input.problems.push(format!("{path}:{}: {bdf} listed twice; the first block is used", b.line));
            continue;
        }
        let mut dev = InputDevice { bdf: Some(bdf), line: b.line, ..InputDevice::default() };
        dev.name = Some(display_name(b.header));
        for l in &b.decoded {
            if let Some(g) = l.strip_prefix("IOMMU group: ") {
                match g.trim().parse() {
                    Ok(n) => dev.linux_group = Some(n),
                    Err(_) => {
                        input.problems.push(format!("{path}:{}: {bdf}: IOMMU group {g:?} is not a number", b.line))
                    }
                }
            }
            if let Some(d) = l.strip_prefix("Kernel driver in use: ") {
                dev.driver = Some(d.trim().to_string());
            }
        }
        let mf = multi.contains(&(bdf.segment, bdf.bus, bdf.device));
        let has_text = !b.decoded.is_empty() || !b.caps.is_empty() || b.access_denied;
        any_text |= has_text;
        // The dump alone when it holds everything the rules read: 4 KiB, or
        // 256 bytes of a function whose decoded text shows no extended
        // capability (or of a conventional one). A 256-byte dump of a PCIe
        // function with extended capabilities in the text is completed from
        // the text.
        let text_ext = b.caps.iter().any(|c| c.extended);
        let pcie = hex_has_pcie(&b.hex);
        let whole =
            b.hex_broken.is_none() && (b.hex.len() >= 4096 || (b.hex.len() >= 256 && !text_ext && (has_text || !pcie)));
        let dump_only = b.hex_broken.is_none() && b.hex.len() >= 256 && !has_text;
        if whole || dump_only {
            any_hex = true;
            dev.config = b.hex.clone();
            dev.exact = true;
            if !whole {
                dev.unknown.push(format!(
                    "PCIe function with a {}-byte dump: extended capabilities (ACS, ARI) unknown (lspci -xxxx as \
                     root shows them)",
                    b.hex.len()
                ));
            }
        } else {
            if b.hex.is_empty() && !has_text {
                dev.unknown.push(
                    "only the header line (lspci without -vv): capabilities unknown (run lspci -vvnn as root)".into(),
                );
            }
            if !b.hex.is_empty() && b.caps.is_empty() && !b.access_denied {
                dev.unknown.push(format!(
                    "only {} config bytes in the dump and no decoded capabilities: PCIe port type and ACS unknown \
                     (run lspci -vvnnxxxx as root)",
                    b.hex.len()
                ));
            }
            match synthesize(b, mf, &mut dev.unknown) {
                Some(mut bytes) => {
                    // Whatever hex there is is exact: lay it over the rebuilt bytes.
                    let n = b.hex.len().min(bytes.len());
                    bytes[..n].copy_from_slice(&b.hex[..n]);
                    any_hex |= n > 0;
                    dev.config = bytes;
                }
                None if b.hex.len() >= 64 => {
                    any_hex = true;
                    dev.config = b.hex.clone();
                }
                None => {
                    input.problems.push(format!(
                        "{path}:{}: {bdf}: no vendor:device ids (run lspci with -nn) and no hex dump; left out",
                        b.line
                    ));
                    input.partial = true;
                    continue;
                }
            }
            if let Some(e) = &b.hex_broken {
                dev.unknown.push(format!("hex dump broken: {e}"));
            }
        }
        if !dev.unknown.is_empty() {
            input.partial = true;
        }
        input.devices.push(dev);
    }
    input.source.detail = match (any_hex, any_text) {
        (true, true) => "hex dumps and decoded text",
        (true, false) => "hex dumps",
        _ => "decoded text",
    }
    .into();
    if input.devices.is_empty() {
        return Err(Unusable(format!("{path}: no usable function in the input ({})", input.problems.join("; "))));
    }
    Ok(input)
}

/// Whether dumped bytes hold a PCI Express capability (a bounded walk of
/// the standard list, as `pci::caps` does it).
fn hex_has_pcie(hex: &[u8]) -> bool {
    let byte = |o: usize| hex.get(o).copied();
    if byte(usize::from(PCI_STATUS)).is_none_or(|s| s & PCI_STATUS_CAP_LIST as u8 == 0) {
        return false;
    }
    let mut pos = byte(usize::from(PCI_CAPABILITY_LIST)).unwrap_or(0);
    for _ in 0..pci::caps::PCI_FIND_CAP_TTL {
        if u16::from(pos) < PCI_STD_HEADER_SIZEOF {
            return false;
        }
        let at = usize::from(pos & !3);
        match (byte(at), byte(at + 1)) {
            (Some(id), _) if id == PCI_CAP_ID_EXP => return true,
            (Some(_), Some(next)) => pos = next,
            _ => return false,
        }
    }
    false
}

/// The input with every hex dump row removed (what `lspci -vvnn` alone
/// prints): for tests of the decoded-text path.
pub fn strip_hex(text: &str) -> String {
    text.lines().filter(|l| hex_row(l).is_none()).map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ids_class_and_name() {
        let h = "PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c] (prog-if 00 [Normal decode])";
        let amd =
            "PCI bridge [0604]: Advanced Micro Devices, Inc. [AMD] GPP Bridge [1022:1483] (prog-if 00 [Normal decode])";
        assert_eq!(display_name(amd), "Advanced Micro Devices, Inc. [AMD] GPP Bridge");
        assert_eq!(ids(h), Some((0x1b36, 0x000c)));
        assert_eq!(class_code(h), Some(0x0604));
        assert_eq!(display_name(h), "Red Hat, Inc. QEMU PCIe Root port");
        assert_eq!(number_after("(rev a1)", "(rev ", true), Some(0xa1));
    }

    #[test]
    fn hex_rows_are_checked() {
        assert!(hex_row("00:00.0 Host bridge").is_none());
        assert!(matches!(hex_row("10: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"), Some(Ok((16, _)))));
        assert!(matches!(hex_row("10: 00 01 02"), Some(Err(_))));
        assert!(matches!(hex_row("10: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e zz"), Some(Err(_))));
    }

    #[test]
    fn acs_words_decode() {
        assert_eq!(acs_bits("SrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+"), 0x5f);
        assert_eq!(acs_bits("SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-"), 0x1d);
    }

    #[test]
    fn header_lines_alone_are_read_and_marked_partial() {
        let text = "00:00.0 Host bridge [0600]: Intel Corporation Device [8086:29c0]\n\
                    00:02.0 PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c]\n";
        let input = parse(text, "nn.txt").unwrap();
        assert_eq!(input.devices.len(), 2);
        assert!(input.partial);
        assert!(input.devices.iter().all(|d| d.unknown.iter().any(|u| u.contains("lspci without -vv"))));
    }

    #[test]
    fn an_address_in_a_vmd_domain_is_named_and_left_out() {
        let text = "00:00.0 Host bridge [0600]: Intel Corporation Device [8086:9a14]\n\
                    10000:e0:17.0 SATA controller [0106]: Intel Corporation Device [8086:a0d3]\n\
                    \tIOMMU group: 3\n";
        let input = parse(text, "vmd.txt").unwrap();
        assert_eq!(input.devices.len(), 1);
        assert!(input.partial);
        assert!(
            input.problems[0].starts_with("vmd.txt:2: address 10000:e0:17.0 not understood"),
            "{:?}",
            input.problems
        );
        assert_eq!(input.devices[0].linux_group, None, "the VMD device's lines are not given to the one before");
    }

    #[test]
    fn other_tools_output_and_empty_input_are_unusable_with_the_line() {
        let e = parse("", "x").unwrap_err();
        assert!(e.0.contains("empty input"), "{e}");
        let e = parse("\nIOMMU Group 1:\n\t00:01.0 PCI bridge\n", "f.txt").unwrap_err();
        assert!(e.0.starts_with("f.txt:2: not lspci output"), "{e}");
    }
}
