//! MSI/MSI-X programming against the simulated configuration space: the
//! capability layouts of QEMU 7.2's devices, message formats, per-vector
//! masks, multi-message MSI (ioh3420) and an MSI-X table in a BAR.

use pci::msi::*;
use pci::regs::*;
use pci::sim::qemu::*;
use pci::sim::{SimConfig, SimFn};
use pci::{Bdf, ConfigSpace};

fn cap(s: &mut SimConfig, bdf: Bdf, id: u8) -> u16 {
    let ht = s.read8(bdf, PCI_HEADER_TYPE) & 0x7f;
    let (caps, errs) = pci::caps::read_capabilities(s, bdf, ht);
    assert!(errs.is_empty());
    caps.find(id).expect("capability")
}

#[test]
fn compatibility_and_remappable_formats() {
    // SDM §11.11: 0xFEE, destination id in 19:12, vector in data 7:0.
    let m = MsiMessage::compatibility(3, 0x41);
    assert_eq!((m.address, m.data), (0xfee0_3000, 0x41));
    assert!(!m.is_remappable() && m.remap_index(0).is_none());
    // VT-d §5.1.2.2: handle[14:0] at 19:5, bit 4 format, bit 3 SHV, handle[15] at bit 2.
    let r = MsiMessage::remappable(5, 0);
    assert_eq!((r.address, r.data), (0xfee0_0000 | 5 << 5 | 0x18, 0));
    let big = MsiMessage::remappable(0x8001, 0);
    assert_eq!(big.address, 0xfee0_0000 | 1 << 5 | 0x18 | 0x4);
    assert_eq!(big.remap_index(0), Some(0x8001));
    // A multi-message function ORs its message number into data.
    assert_eq!(MsiMessage::remappable(8, 0).remap_index(1), Some(9));
}

#[test]
fn edu_single_vector_64bit() {
    let mut s = SimConfig::new();
    let b = Bdf::new(0, 0, 3, 0);
    s.add(b, edu());
    let off = cap(&mut s, b, PCI_CAP_ID_MSI);
    let c = MsiCap::read(&mut s, b, off).unwrap();
    assert_eq!((c.is_64bit, c.per_vector_mask, c.max_vectors), (true, false, 1));
    assert_eq!(c.vectors_for(2), Err(MsiError::Vectors { asked: 2, supported: 1 }));
    assert_eq!(c.vectors_for(0), Err(MsiError::Vectors { asked: 0, supported: 1 }));
    let m = MsiMessage::compatibility(0, 0x30);
    assert_eq!(c.enable(&mut s, b, m, 1), Ok(1));
    assert_eq!(c.read_message(&mut s, b), m);
    assert_eq!(s.read16(b, off + PCI_MSI_DATA_64), 0x30);
    assert_eq!(c.enabled_vectors(&mut s, b), 1);
    assert_ne!(s.read16(b, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE, 0, "INTx off while MSI is on");
    // No per-vector mask: nothing is written, and the caller is told.
    assert_eq!(c.set_masked(&mut s, b, 0, true), Ok(false));
    c.disable(&mut s, b);
    assert_eq!(c.enabled_vectors(&mut s, b), 0);
    assert_eq!(s.read16(b, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE, 0, "INTx back");
}

#[test]
fn ioh3420_two_vectors_32bit_with_mask() {
    let mut s = SimConfig::new();
    let b = Bdf::new(0, 0, 0x1c, 0);
    s.add(b, ioh3420(1, 1));
    let off = cap(&mut s, b, PCI_CAP_ID_MSI);
    let c = MsiCap::read(&mut s, b, off).unwrap();
    assert_eq!((c.is_64bit, c.per_vector_mask, c.max_vectors), (false, true, 2));
    // A 32-bit capability cannot carry an address above 4 GiB.
    let high = MsiMessage { address: 1 << 32 | 0xfee0_0000, data: 0 };
    assert_eq!(c.enable(&mut s, b, high, 2), Err(MsiError::Address(high.address)));
    let m = MsiMessage::remappable(4, 0);
    assert_eq!(c.enable(&mut s, b, m, 2), Ok(2));
    assert_eq!(s.read16(b, off + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QSIZE, 1 << 4, "MME = 2 vectors");
    assert_eq!(s.read16(b, off + PCI_MSI_DATA_32), 0);
    assert_eq!(s.read32(b, off + PCI_MSI_MASK_32), !3, "both in-use vectors unmasked, the rest masked");
    assert_eq!(c.set_masked(&mut s, b, 1, true), Ok(true));
    assert_eq!(s.read32(b, off + PCI_MSI_MASK_32) & 3, 2);
    assert_eq!(c.set_masked(&mut s, b, 2, true), Err(MsiError::Entry(2)));
    assert_eq!(c.enabled_vectors(&mut s, b), 2);
    // Three vectors round up to four, more than the port can send.
    assert_eq!(c.vectors_for(3), Err(MsiError::Vectors { asked: 3, supported: 2 }));
    // The masked-before-enable order of msi_capability_init.
    let w: Vec<_> = s.writes.iter().filter(|w| w.bdf == b).map(|w| w.offset).collect();
    let mask_at = w.iter().position(|&o| o == off + PCI_MSI_MASK_32).unwrap();
    let addr_at = w.iter().position(|&o| o == off + PCI_MSI_ADDRESS_LO).unwrap();
    assert!(mask_at < addr_at, "every vector masked before the message is written");
}

struct Table(Vec<u32>);
impl MsixTable for Table {
    fn read32(&mut self, offset: u64) -> u32 {
        self.0[(offset / 4) as usize]
    }
    fn write32(&mut self, offset: u64, value: u32) {
        self.0[(offset / 4) as usize] = value;
    }
}

#[test]
fn msix_table_in_a_64bit_bar() {
    let mut s = SimConfig::new();
    let b = Bdf::new(0, 1, 0, 0);
    // nvme-like: 4 entries in BAR0 (64-bit) at 0x2000, PBA at 0x3000.
    s.add(
        b,
        SimFn::new(0x1b36, 0x0010)
            .class(0x010802)
            .msix_with(4, 0, 0x2000, 0x3000)
            .poke32(0x10, 0xfe00_0004)
            .poke32(0x14, 0),
    );
    let off = cap(&mut s, b, PCI_CAP_ID_MSIX);
    let c = MsixCap::read(&mut s, b, off).unwrap();
    assert_eq!((c.table_size, c.table_bir, c.table_offset, c.pba_offset), (4, 0, 0x2000, 0x3000));
    assert_eq!(c.table_address(&mut s, b), Ok(0xfe00_2000));
    let mut t = Table(vec![0; 16]);
    assert_eq!(c.enable(&mut s, b, &mut t, &[]), Err(MsiError::Vectors { asked: 0, supported: 4 }));
    let msgs = [MsiMessage::remappable(2, 0), MsiMessage::remappable(3, 0)];
    c.enable(&mut s, b, &mut t, &msgs).unwrap();
    assert_eq!(c.read_entry(&mut t, 1), Ok(msgs[1]));
    assert_eq!(t.0[3] & 1, 0, "entry 0 unmasked");
    assert_eq!(t.0[7] & 1, 0, "entry 1 unmasked");
    assert_eq!((t.0[11] & 1, t.0[15] & 1), (1, 1), "unused entries masked");
    let flags = s.read16(b, off + PCI_MSIX_FLAGS);
    assert_eq!(flags & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL), PCI_MSIX_FLAGS_ENABLE);
    assert_ne!(s.read16(b, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE, 0);
    c.set_masked(&mut t, 0, true).unwrap();
    assert_eq!(t.0[3] & 1, 1);
    assert_eq!(c.write_entry(&mut t, 4, msgs[0]), Err(MsiError::Entry(4)));
    c.disable(&mut s, b, &mut t);
    assert_eq!(s.read16(b, off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE, 0);
    assert!(t.0.chunks(4).all(|e| e[3] & 1 == 1));
}

#[test]
fn msix_bar_must_be_assigned_memory() {
    let mut s = SimConfig::new();
    let b = Bdf::new(0, 1, 0, 0);
    s.add(b, SimFn::new(0x1b36, 0x000c).msix().poke32(0x10, 0xc001));
    let off = cap(&mut s, b, PCI_CAP_ID_MSIX);
    let c = MsixCap::read(&mut s, b, off).unwrap();
    assert_eq!(c.table_address(&mut s, b), Err(MsiError::Bar { bir: 0, value: 0xc001 }), "an I/O BAR");
    let b2 = Bdf::new(0, 2, 0, 0);
    s.add(b2, SimFn::new(0x1b36, 0x000c).msix());
    let c2 = MsixCap::read(&mut s, b2, off).unwrap();
    assert_eq!(c2.table_address(&mut s, b2), Err(MsiError::Bar { bir: 0, value: 0 }), "unassigned");
    assert_eq!(MsiCap::read(&mut s, b2, off), Err(MsiError::NoCapability));
}

#[test]
fn msi_left_enabled_is_turned_off_at_scan() {
    let mut s = SimConfig::new();
    let b = Bdf::new(0, 0, 3, 0);
    s.add(b, edu());
    let off = cap(&mut s, b, PCI_CAP_ID_MSI);
    let c = MsiCap::read(&mut s, b, off).unwrap();
    // Left by a previous kernel: a compatibility-format NMI (delivery mode 100b).
    c.enable(&mut s, b, MsiMessage { address: 0xfee0_0000, data: 0x400 }, 1).unwrap();
    assert_eq!(c.enabled_vectors(&mut s, b), 1);
    s.writes.clear();
    assert_eq!(disable_left_enabled(&mut s, b, Some(off), None), (true, false));
    assert_eq!(c.enabled_vectors(&mut s, b), 0, "the NMI message can no longer be sent");
    assert_eq!(s.writes.len(), 1, "one write: the Enable bit");
    s.writes.clear();
    assert_eq!(disable_left_enabled(&mut s, b, Some(off), None), (false, false));
    assert!(s.writes.is_empty(), "nothing written when MSI is off");

    let x = Bdf::new(0, 0, 4, 0);
    s.add(x, SimFn::new(0x1b36, 0x000c).msix_with(4, 0, 0x2000, 0x3000));
    let xoff = cap(&mut s, x, PCI_CAP_ID_MSIX);
    let flags = s.read16(x, xoff + PCI_MSIX_FLAGS);
    s.write16(x, xoff + PCI_MSIX_FLAGS, flags | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    assert_eq!(disable_left_enabled(&mut s, x, None, Some(xoff)), (false, true));
    let after = s.read16(x, xoff + PCI_MSIX_FLAGS);
    assert_eq!(after & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL), PCI_MSIX_FLAGS_MASKALL);
}
