//! A simulated VT-d unit and physical memory for host tests, modelled on
//! QEMU 7.2 `hw/i386/intel_iommu.c`: GCMD handled as `vtd_handle_gcmd_write`
//! (status mirroring, RTPS kept set after SRTP, QIE needing IQT = 0),
//! CCMD/IOTLB handshakes clearing ICC/IVT and reporting CAIG/IAIG, refused
//! register-based invalidation once QI is on, a QI engine consuming
//! descriptors from IQH to IQT when IQT is written (with QEMU's reserved-bit
//! checks), and fault recording as `vtd_report_frcd_fault`.
//!
//! `Sim` is a cheap handle: the unit owns one clone as its register file,
//! the test uses another as physical memory and to inspect `events`.
//!
//! Memory is modelled as seen by a unit whose page walks do not snoop
//! (ECAP.C = 0, as QEMU reports): a CPU write or a freshly zeroed frame
//! leaves its cache line dirty until `flush_for_device`. At every register
//! write (the moments hardware may walk) the sim walks the tables from the
//! latched root and records dirty lines it meets in `stale_walks`.

extern crate std;

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use super::cap::{Cap, Ecap};
use super::mem::{CACHE_LINE, FRAME_SIZE, FrameAlloc, PhysMem};
use super::regs::{self, RegisterFile};

/// QEMU 7.2 with `intremap=on,caching-mode=on` (boot-and-qemu-facts.md).
pub const QEMU_CAP: u64 = 0xd2_008c_2226_0286;
pub const QEMU_ECAP: u64 = 0xf0_0f4a;
/// CAP with `aw-bits=48`: SAGAW 0b00110, MGAW 47.
pub const QEMU_CAP_AW48: u64 = (QEMU_CAP & !(0x1f << 8) & !(0x3f << 16)) | (0b00110 << 8) | (47 << 16);

const FRAME_BASE: u64 = 0x10_0000;
const REG_SIZE: usize = 0x1000;

/// Something the simulated hardware observed, in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    Gcmd(u32),
    MemWrite {
        pa: u64,
        value: u64,
    },
    ContextInval {
        g: u8,
        did: u16,
        sid: u16,
        queued: bool,
    },
    IotlbInval {
        g: u8,
        did: u16,
        addr: u64,
        am: u8,
        queued: bool,
    },
    WaitStatus {
        data: u32,
    },
    /// Interrupt entry cache invalidation (queued, type 4).
    IecInval {
        global: bool,
        index: u16,
        im: u8,
    },
    /// Register-based invalidation ignored because QI is enabled.
    Refused(&'static str),
    FrameFreed(u64),
}

pub struct Inner {
    frames: Vec<Option<Box<[u64; 512]>>>,
    free: Vec<usize>,
    regs: Vec<u8>,
    cap: Cap,
    ecap: Ecap,
    qi_enabled: bool,
    next_frcd: u16,
    /// Nothing ever completes: status bits stay, ICC/IVT stay set, the
    /// queue is not consumed.
    pub stuck: bool,
    /// Every register reads all ones (no unit).
    pub all_ones: bool,
    /// The QI engine rejects the next descriptor (sets FSTS.IQE).
    pub fail_next_desc: bool,
    /// Frames the allocator may hand out at most.
    pub frame_limit: usize,
    pub events: Vec<Event>,
    pub srtp_count: u32,
    pub wbf_count: u32,
    /// RTADDR latched by the last SRTP.
    pub root: Option<u64>,
    /// IRTA latched by the last SIRTP: (table, entries).
    pub ir_root: Option<(u64, u32)>,
    /// Cache lines written by the CPU (or zeroed) and not yet flushed.
    dirty: BTreeSet<u64>,
    /// Dirty lines of walkable tables seen at a register write, in order
    /// (each line once).
    pub stale_walks: Vec<u64>,
}

#[derive(Clone)]
pub struct Sim(pub Rc<RefCell<Inner>>);

impl Sim {
    pub fn qemu() -> Self {
        Self::with_caps(QEMU_CAP, QEMU_ECAP)
    }

    pub fn with_caps(cap: u64, ecap: u64) -> Self {
        let mut inner = Inner {
            frames: Vec::new(),
            free: Vec::new(),
            regs: vec![0; REG_SIZE],
            cap: Cap(cap),
            ecap: Ecap(ecap),
            qi_enabled: false,
            next_frcd: 0,
            stuck: false,
            all_ones: false,
            fail_next_desc: false,
            frame_limit: usize::MAX,
            events: Vec::new(),
            srtp_count: 0,
            wbf_count: 0,
            root: None,
            ir_root: None,
            dirty: BTreeSet::new(),
            stale_walks: Vec::new(),
        };
        inner.set(regs::VER.offset(), 4, 0x10);
        inner.set(regs::CAP.offset(), 8, cap);
        inner.set(regs::ECAP.offset(), 8, ecap);
        Self(Rc::new(RefCell::new(inner)))
    }

    pub fn inner(&self) -> std::cell::RefMut<'_, Inner> {
        self.0.borrow_mut()
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.borrow().events.clone()
    }

    pub fn clear_events(&self) {
        self.0.borrow_mut().events.clear();
    }

    /// Invalidations only (no memory writes or GCMD).
    pub fn invalidations(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| matches!(e, Event::ContextInval { .. } | Event::IotlbInval { .. } | Event::Refused(_)))
            .collect()
    }

    pub fn live_frames(&self) -> usize {
        self.0.borrow().frames.iter().filter(|f| f.is_some()).count()
    }

    pub fn fsts(&self) -> u32 {
        self.0.borrow().get(regs::FSTS.offset(), 4) as u32
    }

    pub fn set_next_frcd(&self, index: u16) {
        self.0.borrow_mut().next_frcd = index;
    }

    /// Record a DMA fault as QEMU's `vtd_report_frcd_fault` does.
    pub fn inject_fault(&self, sid: u16, reason: u8, addr: u64, is_read: bool) {
        self.0.borrow_mut().report_fault(sid, reason, addr, is_read);
    }
}

impl Inner {
    fn get(&self, off: usize, size: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&self.regs[off..off + size]);
        u64::from_le_bytes(b)
    }

    fn set(&mut self, off: usize, size: usize, value: u64) {
        self.regs[off..off + size].copy_from_slice(&value.to_le_bytes()[..size]);
    }

    fn set_bits32(&mut self, off: usize, set: u32, clear: u32) {
        let v = (self.get(off, 4) as u32 & !clear) | set;
        self.set(off, 4, u64::from(v));
    }

    fn frcd_base(&self) -> usize {
        self.cap.fro()
    }

    fn iotlb_base(&self) -> usize {
        self.ecap.iro()
    }

    fn write(&mut self, off: usize, size: usize, value: u64) {
        self.check_walkable_tables_flushed();
        let ro = [
            regs::VER.offset(),
            regs::CAP.offset(),
            regs::ECAP.offset(),
            regs::GSTS.offset(),
            regs::IQH.offset(),
            regs::IQERCD.offset(),
        ];
        let frcd = self.frcd_base();
        let frcd_end = frcd + usize::from(self.cap.nfr()) * 16;
        if ro.contains(&off) {
        } else if off == regs::GCMD.offset() {
            self.set(off, 4, value);
            self.gcmd(value as u32);
        } else if off == regs::CCMD.offset() {
            self.set(off, 8, value & !(3 << 59));
            self.ccmd();
        } else if off == regs::FSTS.offset() {
            // RW1C: PFO, AFO, APF, IQE, ICE, ITE.
            self.set_bits32(off, 0, value as u32 & 0x7d);
        } else if off == regs::IQT.offset() {
            self.set(off, 8, value & 0x7fff0);
            if self.qi_enabled && self.get(regs::FSTS.offset(), 4) & (1 << 4) == 0 && !self.stuck {
                self.run_queue();
            }
        } else if off == self.iotlb_base() + 8 {
            self.set(off, 8, value & !(3 << 57));
            self.iotlb();
        } else if (frcd..frcd_end).contains(&off) {
            // Only F is writable (RW1CS), at +12 (32-bit) or +8 (64-bit).
            let rel = (off - frcd) % 16;
            let record = frcd + (off - frcd) / 16 * 16;
            let clear = (rel == 12 && value & (1 << 31) != 0) || (rel == 8 && size == 8 && value & (1 << 63) != 0);
            if clear {
                self.set_bits32(record + 12, 0, 1 << 31);
                self.update_ppf();
            }
        } else {
            self.set(off, size, value);
        }
    }

    /// QEMU `vtd_handle_gcmd_write`.
    fn gcmd(&mut self, val: u32) {
        self.events.push(Event::Gcmd(val));
        if self.stuck {
            return;
        }
        let gsts_off = regs::GSTS.offset();
        let status = self.get(gsts_off, 4) as u32;
        let changed = status ^ val;
        let mirror = |s: &mut Self, bit: u32| {
            if changed & bit != 0 {
                s.set_bits32(gsts_off, val & bit, !val & bit);
            }
        };
        mirror(self, 1 << 31); // TE → TES
        if val & (1 << 30) != 0 {
            self.srtp_count += 1;
            self.root = Some(self.get(regs::RTADDR.offset(), 8) & !0xfff);
            self.set_bits32(gsts_off, 1 << 30, 0);
        }
        if val & (1 << 29) != 0 {
            self.set_bits32(gsts_off, 1 << 29, 0);
        }
        if val & (1 << 27) != 0 {
            // The flush completes at once: WBFS stays clear.
            self.wbf_count += 1;
        }
        if changed & (1 << 26) != 0 {
            self.qie(val & (1 << 26) != 0);
        }
        if val & (1 << 24) != 0 {
            // vtd_handle_gcmd_sirtp: latch IRTA.
            let irta = self.get(regs::IRTA.offset(), 8);
            self.ir_root = Some((irta & !0xfff, 1 << ((irta & 0xf) + 1)));
            self.set_bits32(gsts_off, 1 << 24, 0);
        }
        mirror(self, 1 << 25); // IRE → IRES
        mirror(self, 1 << 23); // CFI → CFIS
    }

    /// QEMU `vtd_handle_gcmd_qie`.
    fn qie(&mut self, enable: bool) {
        let gsts_off = regs::GSTS.offset();
        if enable {
            if self.get(regs::IQT.offset(), 8) == 0 {
                self.qi_enabled = true;
                self.set(regs::IQH.offset(), 8, 0);
                self.set_bits32(gsts_off, 1 << 26, 0);
            }
        } else if self.get(regs::IQH.offset(), 8) == self.get(regs::IQT.offset(), 8) {
            self.qi_enabled = false;
            self.set(regs::IQH.offset(), 8, 0);
            self.set_bits32(gsts_off, 0, 1 << 26);
        }
    }

    /// QEMU `vtd_handle_ccmd_write`.
    fn ccmd(&mut self) {
        let off = regs::CCMD.offset();
        let val = self.get(off, 8);
        if val & (1 << 63) == 0 || self.stuck {
            return;
        }
        if self.qi_enabled {
            self.events.push(Event::Refused("CCMD"));
            return;
        }
        let g = ((val >> 61) & 3) as u8;
        self.events.push(Event::ContextInval { g, did: val as u16, sid: (val >> 16) as u16, queued: false });
        let done = (val & !(1 << 63) & !(3 << 59)) | (u64::from(g) << 59);
        self.set(off, 8, done);
    }

    /// QEMU `vtd_handle_iotlb_write`.
    fn iotlb(&mut self) {
        let off = self.iotlb_base() + 8;
        let val = self.get(off, 8);
        if val & (1 << 63) == 0 || self.stuck {
            return;
        }
        if self.qi_enabled {
            self.events.push(Event::Refused("IOTLB"));
            return;
        }
        let g = ((val >> 60) & 3) as u8;
        let iva = self.get(self.iotlb_base(), 8);
        let (addr, am) = if g == 3 { (iva & !0xfff, (iva & 0x3f) as u8) } else { (0, 0) };
        self.events.push(Event::IotlbInval { g, did: (val >> 32) as u16, addr, am, queued: false });
        let done = (val & !(1 << 63) & !(3 << 57)) | (u64::from(g) << 57);
        self.set(off, 8, done);
    }

    /// QEMU `vtd_fetch_inv_desc` / `vtd_process_inv_desc`, with the
    /// reserved-bit masks of `intel_iommu_internal.h`.
    fn run_queue(&mut self) {
        let iqa = self.get(regs::IQA.offset(), 8);
        let base = iqa & !0xfff;
        let entries = 1u64 << ((iqa & 7) + 8);
        let tail = self.get(regs::IQT.offset(), 8) >> 4;
        let mut head = self.get(regs::IQH.offset(), 8) >> 4;
        while head != tail {
            let lo = self.mem_read(base + head * 16);
            let hi = self.mem_read(base + head * 16 + 8);
            if !self.process_desc(lo, hi) {
                self.set_bits32(regs::FSTS.offset(), 1 << 4, 0);
                self.set(regs::IQERCD.offset(), 8, 1);
                break;
            }
            head = (head + 1) % entries;
            self.set(regs::IQH.offset(), 8, head << 4);
        }
    }

    fn process_desc(&mut self, lo: u64, hi: u64) -> bool {
        if core::mem::take(&mut self.fail_next_desc) {
            return false;
        }
        let kind = (lo & 0xf) | ((lo >> 5) & 0x70);
        match kind {
            1 => {
                if lo & 0xfffc_0000_0000_f1c0 != 0 || hi != 0 {
                    return false;
                }
                self.events.push(Event::ContextInval {
                    g: ((lo >> 4) & 3) as u8,
                    did: (lo >> 16) as u16,
                    sid: (lo >> 32) as u16,
                    queued: true,
                });
                true
            }
            2 => {
                if lo & 0xffff_ffff_0000_f100 != 0 || hi & 0xf80 != 0 {
                    return false;
                }
                self.events.push(Event::IotlbInval {
                    g: ((lo >> 4) & 3) as u8,
                    did: (lo >> 16) as u16,
                    addr: hi & !0xfff,
                    am: (hi & 0x3f) as u8,
                    queued: true,
                });
                true
            }
            4 => {
                // VTD_INV_DESC_IEC_RSVD.
                if lo & 0xffff_0000_07ff_f1e0 != 0 || hi != 0 {
                    return false;
                }
                self.events.push(Event::IecInval {
                    global: lo & (1 << 4) == 0,
                    index: (lo >> 32) as u16,
                    im: ((lo >> 27) & 0x1f) as u8,
                });
                true
            }
            5 => {
                if lo & 0xffff_f180 != 0 || hi & 3 != 0 {
                    return false;
                }
                if lo & (1 << 5) == 0 {
                    return lo & (1 << 4) != 0;
                }
                let data = (lo >> 32) as u32;
                let slot = hi & !7;
                let old = self.mem_read(slot);
                let new = if hi & 4 != 0 {
                    (old & 0xffff_ffff) | (u64::from(data) << 32)
                } else {
                    (old & !0xffff_ffff) | u64::from(data)
                };
                self.mem_write(slot, new);
                self.events.push(Event::WaitStatus { data });
                true
            }
            _ => false,
        }
    }

    /// QEMU 7.2 `vtd_interrupt_remap_msi` + `vtd_irte_get` for an MSI
    /// write of `data` to `address` from requester id `sid`: Ok(vector,
    /// destination) when delivered, Err(reason) when blocked (QEMU records
    /// no fault; the reason is what real VT-d would record). Compatibility
    /// format passes whatever GCMD.CFI says (QEMU ignores CFI).
    pub fn remap_msi(&self, address: u64, data: u32, sid: u16) -> Result<(u8, u8), u8> {
        let gsts = self.get(regs::GSTS.offset(), 4) as u32;
        if gsts & (1 << 25) == 0 || address & (1 << 4) == 0 {
            return Ok((data as u8, (address >> 12) as u8));
        }
        let (root, size) = self.ir_root.ok_or(0x23)?;
        let mut index = ((address >> 5) & 0x7fff) as u32 | (((address >> 2) & 1) as u32) << 15;
        if address & (1 << 3) != 0 {
            index += data & 0xffff;
        }
        if index >= size {
            return Err(0x21);
        }
        let lo = self.mem_read(root + u64::from(index) * 16);
        let hi = self.mem_read(root + u64::from(index) * 16 + 8);
        if lo & 1 == 0 {
            return Err(0x22);
        }
        if lo & 0xff00_7000 != 0 || hi & !0xf_ffff != 0 {
            return Err(0x24);
        }
        let source_id = hi as u16;
        let ok = match (hi >> 18) & 3 {
            0 => true,
            1 => {
                // vtd_svt_mask[SQ]: SQ=0 compares all 16 bits.
                let mask: u16 = [0xffff, 0xfffb, 0xfff9, 0xfff8][((hi >> 16) & 3) as usize];
                source_id & mask == sid & mask
            }
            2 => {
                // QEMU 7.2: bus_max = source_id >> 8, bus_min = source_id & 0xff.
                let (max, min, bus) = (source_id >> 8, source_id & 0xff, sid >> 8);
                !(bus > max || bus < min)
            }
            _ => false,
        };
        if !ok {
            return Err(0x26);
        }
        Ok(((lo >> 16) as u8, (lo >> 40) as u8))
    }

    fn update_ppf(&mut self) {
        let any = (0..self.cap.nfr()).any(|i| self.frcd_f(i));
        let fsts = regs::FSTS.offset();
        if any {
            self.set_bits32(fsts, 1 << 1, 0);
        } else {
            self.set_bits32(fsts, 0, 1 << 1);
        }
    }

    fn frcd_f(&self, index: u16) -> bool {
        self.get(self.frcd_base() + usize::from(index) * 16 + 12, 4) & (1 << 31) != 0
    }

    /// QEMU `vtd_report_frcd_fault`, without fault collapsing.
    fn report_fault(&mut self, sid: u16, reason: u8, addr: u64, is_read: bool) {
        let fsts_off = regs::FSTS.offset();
        let fsts = self.get(fsts_off, 4) as u32;
        if fsts & 1 != 0 {
            return;
        }
        let index = self.next_frcd;
        if self.frcd_f(index) {
            self.set_bits32(fsts_off, 1, 0);
            return;
        }
        let rec = self.frcd_base() + usize::from(index) * 16;
        let hi = (1 << 63) | (u64::from(is_read) << 62) | (u64::from(reason) << 32) | u64::from(sid);
        self.set(rec, 8, addr & !0xfff);
        self.set(rec + 8, 8, hi);
        if fsts & 2 == 0 {
            self.set_bits32(fsts_off, u32::from(index) << 8, 0xff << 8);
        }
        self.update_ppf();
        self.next_frcd = (index + 1) % self.cap.nfr();
    }

    fn frame(&self, pa: u64) -> (usize, usize) {
        assert!(pa >= FRAME_BASE && pa.is_multiple_of(8), "bad physical address {pa:#x}");
        let rel = pa - FRAME_BASE;
        ((rel / FRAME_SIZE) as usize, ((rel % FRAME_SIZE) / 8) as usize)
    }

    /// Set a register directly, as firmware left it (no side effects).
    pub fn poke(&mut self, off: usize, size: usize, value: u64) {
        self.set(off, size, value);
    }

    /// A CPU write with no flush, as a buggy driver would leave it.
    pub fn mem_write_for_test(&mut self, pa: u64, value: u64) {
        self.mem_write(pa, value);
    }

    /// Read memory if `pa` lies in an allocated frame.
    fn try_mem_read(&self, pa: u64) -> Option<u64> {
        if pa < FRAME_BASE || !pa.is_multiple_of(8) {
            return None;
        }
        let (f, i) = self.frame(pa);
        self.frames.get(f).and_then(|f| f.as_ref()).map(|f| f[i])
    }

    /// Frames the unit can walk now: the latched root table, the context
    /// tables its present entries point to, and every page-table level
    /// below each present context entry.
    fn walkable_frames(&self) -> Vec<u64> {
        let mut frames = Vec::new();
        let Some(root) = self.root else { return frames };
        frames.push(root);
        for bus in 0..256u64 {
            let Some(re) = self.try_mem_read(root + bus * 16).filter(|re| re & 1 != 0) else { continue };
            let ctx = re & !0xfff;
            frames.push(ctx);
            for devfn in 0..256u64 {
                let Some(lo) = self.try_mem_read(ctx + devfn * 16).filter(|lo| lo & 1 != 0) else { continue };
                let Some(hi) = self.try_mem_read(ctx + devfn * 16 + 8) else { continue };
                let levels = (hi & 7) as u32 + 2;
                let mut tables = vec![(lo & 0x000f_ffff_ffff_f000, levels)];
                while let Some((table, level)) = tables.pop() {
                    frames.push(table);
                    for i in 0..512 {
                        let Some(pte) = self.try_mem_read(table + i * 8) else { break };
                        let (present, page_size) = (pte & 3 != 0, pte & (1 << 7) != 0);
                        if level > 1 && present && !page_size {
                            tables.push((pte & 0x000f_ffff_ffff_f000, level - 1));
                        }
                    }
                }
            }
        }
        frames.sort_unstable();
        frames.dedup();
        frames
    }

    fn check_walkable_tables_flushed(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        for frame in self.walkable_frames() {
            let stale: Vec<u64> = self.dirty.range(frame..frame + FRAME_SIZE).copied().collect();
            for line in stale {
                if !self.stale_walks.contains(&line) {
                    self.stale_walks.push(line);
                }
            }
        }
    }

    fn mem_read(&self, pa: u64) -> u64 {
        let (f, i) = self.frame(pa);
        self.frames.get(f).and_then(|f| f.as_ref()).expect("read of an unallocated frame")[i]
    }

    fn mem_write(&mut self, pa: u64, value: u64) {
        let (f, i) = self.frame(pa);
        self.frames.get_mut(f).and_then(|f| f.as_mut()).expect("write to an unallocated frame")[i] = value;
        self.dirty.insert(pa & !(CACHE_LINE - 1));
        self.events.push(Event::MemWrite { pa, value });
    }
}

impl RegisterFile for Sim {
    fn read32(&self, offset: usize) -> u32 {
        let s = self.0.borrow();
        if s.all_ones { u32::MAX } else { s.get(offset, 4) as u32 }
    }
    fn read64(&self, offset: usize) -> u64 {
        let s = self.0.borrow();
        if s.all_ones { u64::MAX } else { s.get(offset, 8) }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.0.borrow_mut().write(offset, 4, u64::from(value));
    }
    fn write64(&mut self, offset: usize, value: u64) {
        self.0.borrow_mut().write(offset, 8, value);
    }
    fn size(&self) -> usize {
        REG_SIZE
    }
}

impl PhysMem for Sim {
    fn read_u64(&self, pa: u64) -> u64 {
        self.0.borrow().mem_read(pa)
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        self.0.borrow_mut().mem_write(pa, value);
    }
    fn flush_for_device(&mut self, pa: u64) {
        self.0.borrow_mut().dirty.remove(&(pa & !(CACHE_LINE - 1)));
    }
}

impl FrameAlloc for Sim {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        let mut s = self.0.borrow_mut();
        if s.frames.iter().filter(|f| f.is_some()).count() >= s.frame_limit {
            return None;
        }
        let index = match s.free.pop() {
            Some(i) => i,
            None => {
                s.frames.push(None);
                s.frames.len() - 1
            }
        };
        s.frames[index] = Some(Box::new([0; 512]));
        let pa = FRAME_BASE + index as u64 * FRAME_SIZE;
        // Zeroed through the CPU cache.
        s.dirty.extend((pa..pa + FRAME_SIZE).step_by(CACHE_LINE as usize));
        Some(pa)
    }
    fn free(&mut self, pa: u64) {
        let mut s = self.0.borrow_mut();
        let (f, _) = s.frame(pa);
        assert!(s.frames[f].take().is_some(), "double free of {pa:#x}");
        let frame = pa & !(FRAME_SIZE - 1);
        let lines: Vec<u64> = s.dirty.range(frame..frame + FRAME_SIZE).copied().collect();
        for line in lines {
            s.dirty.remove(&line);
        }
        s.free.push(f);
        s.events.push(Event::FrameFreed(pa));
    }
}
