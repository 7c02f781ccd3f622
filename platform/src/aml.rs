//! Root-bus discovery without an AML interpreter.
//!
//! Linux learns each host bridge's root bus from ACPI `_BBN` by evaluating
//! AML. Stable Rust has no AML interpreter crate that fits here, so this
//! module scans DSDT/SSDT bytecode for the one encoding firmware uses for a
//! constant bus number: `NameOp "_BBN" <integer constant>` (ACPI 6.5 §20.2.5.1
//! and §20.2.3: ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix). QEMU
//! declares every PCI host bridge this way (`Name (_BBN, 0x40)` for a
//! `pxb-pcie` with `bus_nr=0x40`).
//!
//! Where this fails on real hardware: `_BBN` written as a method (computed at
//! run time), host bridges disabled by `_STA` (their `_BBN` is still found
//! here), byte patterns inside unrelated data that look like the name
//! declaration, and host bridges whose bus comes from `_CRS` only. Callers
//! therefore verify every candidate by probing its configuration space and
//! keep a fallback scan of unreached bus numbers.

use alloc::vec::Vec;

const NAME_OP: u8 = 0x08;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;

/// Constant `_BBN` values declared in an AML byte stream, in order of
/// appearance, without duplicates. Values above 255 are not bus numbers and
/// are dropped.
pub fn find_bbn(aml: &[u8]) -> Vec<u8> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 6 <= aml.len() {
        if aml[i] == NAME_OP && &aml[i + 1..i + 5] == b"_BBN" {
            let value = match aml[i + 5] {
                ZERO_OP => Some(0),
                ONE_OP => Some(1),
                BYTE_PREFIX => aml.get(i + 6).map(|&b| u32::from(b)),
                WORD_PREFIX => aml.get(i + 6..i + 8).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
                DWORD_PREFIX => aml.get(i + 6..i + 10).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                _ => None,
            };
            if let Some(bus) = value.and_then(|v| u8::try_from(v).ok())
                && !found.contains(&bus)
            {
                found.push(bus);
            }
            i += 5;
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn finds_each_encoding() {
        let mut aml = vec![0x5b, 0x82]; // DeviceOp noise
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', ZERO_OP]);
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', BYTE_PREFIX, 0x40]);
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', WORD_PREFIX, 0x80, 0x00]);
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', BYTE_PREFIX, 0x40]);
        // Values above 255 whose low byte is a new bus number: dropped, not
        // truncated (0x1c0 is not bus 0xc0; 0x0150 is not bus 0x50).
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', DWORD_PREFIX, 0xc0, 1, 0, 0]);
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', WORD_PREFIX, 0x50, 0x01]);
        // A WORD whose value fits a byte only through its high byte being 0.
        aml.extend_from_slice(&[NAME_OP, b'_', b'B', b'B', b'N', WORD_PREFIX, 0xfe, 0x00]);
        assert_eq!(find_bbn(&aml), vec![0, 0x40, 0x80, 0xfe], "duplicates and values > 255 dropped");
    }

    #[test]
    fn method_bbn_and_truncation_are_ignored() {
        // `Method (_BBN) { Return (0x40) }`: MethodOp, PkgLength, name, flags,
        // ReturnOp 0x40. Not a constant declaration: not found.
        assert!(find_bbn(&[0x14, 0x0a, b'_', b'B', b'B', b'N', 0x00, 0xa4, BYTE_PREFIX, 0x40]).is_empty());
        assert!(find_bbn(&[NAME_OP, b'_', b'B', b'B', b'N', BYTE_PREFIX]).is_empty());
        assert!(find_bbn(&[NAME_OP, b'_', b'B', b'B']).is_empty());
    }
}
