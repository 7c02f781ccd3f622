//! The proof of isolation with real DMA: QEMU's `edu` devices write and
//! read memory through the VT-d units, and every case checks memory byte by
//! byte and the fault records the unit logged.
//!
//! Cases (issue "VT-d: one domain per group, translation on"):
//! 1. DMA to a mapped IOVA lands, byte for byte, and nothing else changes;
//! 2. DMA to an unmapped IOVA writes nothing and logs exactly one fault
//!    with the edu's requester id and reason 5 (write without permission;
//!    QEMU reports a not-present second-level entry this way);
//! 3. after unmap and invalidation, DMA to the old IOVA faults: no stale
//!    IOTLB entry;
//! 4. an edu cannot reach a buffer mapped only in another group's domain;
//! 5. DMA aimed at a kernel physical address faults and changes nothing;
//! 6. an edu whose DMA carries a bridge's alias requester id (behind a
//!    PCIe-to-PCI bridge) reaches its mapping: the alias has the context
//!    entry too.

use crate::drivers::edu::{Direction, Edu, EduError};
use crate::hw::clock::Deadline;
use crate::hw::memory;
use crate::pipeline::vtd::Vtd;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iommu::group::Groups;
use iommu::vtd::fault::AccessKind;
use iommu::vtd::pagetable::Perms;
use iommu::vtd::tables::SourceId;
use pci::alias::dma_requester_ids;
use pci::{ConfigSpace, Topology};

/// Fault reason 5: a write to a page without write permission (VT-d spec
/// §7.1.3, Table 26); QEMU 7.2 reports it for a not-present entry too.
const REASON_WRITE: u8 = 5;

/// Bytes per DMA: the edu buffer is 4 KiB and QEMU 7.2 needs the end
/// strictly below 0x41000.
const LEN: usize = 4000;

const IOVA_SRC: u64 = 0x10_0000;
const IOVA_DST: u64 = 0x10_1000;
const IOVA_UNMAPPED: u64 = 0x20_0000;
const IOVA_OTHER: u64 = 0x30_0000;
const IOVA_ALIAS_SRC: u64 = 0x40_0000;
const IOVA_ALIAS_DST: u64 = 0x40_1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub device: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Case {
    pub fn skipped(name: &'static str, why: &str) -> Self {
        Self { name, device: String::new(), outcome: Outcome::Skipped(String::from(why)), detail: String::new() }
    }

    fn of(name: &'static str, device: &str, r: Result<String, String>) -> Self {
        let (outcome, detail) = match r {
            Ok(d) => (Outcome::Pass, d),
            Err(e) => (Outcome::Fail(e), String::new()),
        };
        Self { name, device: String::from(device), outcome, detail }
    }
}

/// One edu under test.
struct Dev {
    index: usize,
    group: u32,
    edu: Edu,
    /// The requester id the IOMMU sees (the top-most alias).
    sid: SourceId,
}

fn frame(fill: u8) -> Result<u64, String> {
    memory::filled_frame(fill).map_err(|e| format!("{e}"))
}

fn bytes(frame: u64) -> &'static [u8] {
    memory::frame_bytes(frame)
}

fn all(frame: u64, value: u8) -> bool {
    bytes(frame).iter().all(|&b| b == value)
}

pub struct Runner<'a> {
    pub vtd: &'a mut Vtd,
    pub ecam: &'a mut dyn ConfigSpace,
    pub topo: &'a Topology,
    pub groups: &'a Groups,
    pub tsc_hz: u64,
}

impl Runner<'_> {
    fn dma(&mut self, dev: &Dev, dir: Direction, iova: u64) -> Result<usize, String> {
        let deadline = Deadline::after_ms(self.tsc_hz, 2000);
        dev.edu.dma(dir, iova, 0, LEN as u64, deadline).map_err(|e: EduError| format!("{e}"))?;
        Ok(self.vtd.collect_faults())
    }

    /// The last `n` faults, checked against the expected source, reason and page.
    fn check_fault(&self, new: usize, dev: &Dev, iova: u64) -> Result<String, String> {
        if new != 1 {
            return Err(format!("expected exactly one fault, got {new}"));
        }
        let f = self.vtd.faults.last().expect("one new fault").record;
        let detail = format!("fault: {f}");
        if f.source != dev.sid || f.reason.0 != REASON_WRITE || f.access != AccessKind::Write || f.address != iova {
            return Err(format!("{detail}; expected source {} reason {REASON_WRITE:#x} write at {iova:#x}", dev.sid));
        }
        Ok(detail)
    }

    fn setup(&mut self, index: usize) -> Result<Dev, String> {
        let f = &self.topo.functions[index];
        let group = self.groups.group_of(index).ok_or("no group")?.id;
        let edu = Edu::probe(self.ecam, f.bdf).map_err(|e| format!("{e}"))?;
        let top = dma_requester_ids(self.topo, index).last().map(|a| a.requester_id).unwrap_or(f.bdf);
        self.vtd.attach(self.topo, self.groups, index)?;
        self.vtd.enable_bus_master(self.ecam, self.topo, index)?;
        Ok(Dev { index, group, edu, sid: SourceId::new(top.bus, top.device, top.function) })
    }

    /// Run every case on the first two edus of different groups.
    pub fn run(&mut self, edus: &[usize]) -> Vec<Case> {
        let mut cases = Vec::new();
        // An edu no unit translates (no DRHD covers it: no group, no
        // domain; or its unit is down) has nothing to prove and is never
        // let master the bus: leave it out rather than fail on it.
        let translated = |i: usize| self.groups.group_of(i).is_some() && self.vtd.unit_of[i].is_some();
        let edus: &[usize] = &edus.iter().copied().filter(|&i| translated(i)).collect::<Vec<_>>();
        let Some(&a_index) = edus.first() else {
            cases.push(Case::skipped("dma", "no edu device"));
            return cases;
        };
        let a = match self.setup(a_index) {
            Ok(d) => d,
            Err(e) => {
                cases.push(Case::of("setup", &format!("{}", self.topo.functions[a_index].bdf), Err(e)));
                return cases;
            }
        };
        let name_a = format!("{}", self.topo.functions[a.index].bdf);
        let r = self.mapped(&a, IOVA_SRC, IOVA_DST);
        cases.push(Case::of("mapped DMA lands byte for byte", &name_a, r));
        let r = self.unmapped(&a);
        cases.push(Case::of("unmapped DMA is blocked and faults once", &name_a, r));
        let r = self.stale(&a);
        cases.push(Case::of("no stale IOTLB after unmap", &name_a, r));

        let b_index = edus.iter().copied().find(|&i| self.groups.group_of(i).map(|g| g.id) != Some(a.group));
        match b_index.map(|i| self.setup(i)) {
            Some(Ok(b)) => {
                let name_b = format!("{}", self.topo.functions[b.index].bdf);
                let r = self.other_group(&a, &b);
                cases.push(Case::of("no DMA into another group's domain", &name_b, r));
                let r = self.kernel_memory(&b);
                cases.push(Case::of("DMA at kernel memory faults", &name_b, r));
            }
            Some(Err(e)) => cases.push(Case::of("no DMA into another group's domain", "", Err(e))),
            None => cases.push(Case::skipped("no DMA into another group's domain", "needs edu devices in two groups")),
        }

        // An edu whose DMA QEMU tags with a bridge alias (its top-most
        // requester id is not its own).
        let aliased = edus.iter().copied().find(|&i| {
            let own = self.topo.functions[i].bdf;
            dma_requester_ids(self.topo, i).last().is_some_and(|a| a.requester_id != own)
        });
        match aliased.map(|i| self.setup(i)) {
            Some(Ok(c)) => {
                let name_c = format!("{}", self.topo.functions[c.index].bdf);
                let r = self
                    .mapped(&c, IOVA_ALIAS_SRC, IOVA_ALIAS_DST)
                    .map(|d| format!("requester id {} (alias of {name_c}); {d}", c.sid));
                cases.push(Case::of("DMA under a bridge alias reaches its mapping", &name_c, r));
            }
            Some(Err(e)) => cases.push(Case::of("DMA under a bridge alias reaches its mapping", "", Err(e))),
            None => cases.push(Case::skipped(
                "DMA under a bridge alias reaches its mapping",
                "no edu behind a PCIe-to-PCI bridge",
            )),
        }
        cases
    }

    fn mapped(&mut self, a: &Dev, iova_src: u64, iova_dst: u64) -> Result<String, String> {
        let src = frame(0)?;
        let dst = frame(0x5a)?;
        for (i, b) in memory::frame_bytes(src).iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(7).wrapping_add(3);
        }
        self.vtd.map(a.group, a.index, iova_src, src, Perms::READ).map_err(|e| format!("{e}"))?;
        self.vtd.map(a.group, a.index, iova_dst, dst, Perms::WRITE).map_err(|e| format!("{e}"))?;
        let faults = self.dma(a, Direction::ToDevice, iova_src)? + self.dma(a, Direction::FromDevice, iova_dst)?;
        if faults != 0 {
            return Err(format!("{faults} unexpected fault(s)"));
        }
        let (d, s) = (bytes(dst), bytes(src));
        if d[..LEN] != s[..LEN] {
            let at = (0..LEN).find(|&i| d[i] != s[i]).unwrap_or(0);
            return Err(format!("byte {at} is {:#04x}, expected {:#04x}", d[at], s[at]));
        }
        if d[LEN..].iter().any(|&b| b != 0x5a) {
            return Err(String::from("bytes past the DMA length changed"));
        }
        Ok(format!("{LEN} bytes IOVA {iova_src:#x} -> edu -> IOVA {iova_dst:#x} (phys {src:#x} -> {dst:#x}), no fault"))
    }

    fn unmapped(&mut self, a: &Dev) -> Result<String, String> {
        let canary = frame(0xc3)?;
        let new = self.dma(a, Direction::FromDevice, IOVA_UNMAPPED)?;
        let detail = self.check_fault(new, a, IOVA_UNMAPPED)?;
        if !all(canary, 0xc3) {
            return Err(String::from("a canary page changed"));
        }
        Ok(detail)
    }

    fn stale(&mut self, a: &Dev) -> Result<String, String> {
        // IOVA_DST was used by case 1, so a translation for it is cached.
        let dst = self.vtd.domains[self.vtd.domain_index(a.group, a.index).ok_or("no domain")?]
            .mappings
            .iter()
            .find(|m| m.iova == IOVA_DST)
            .map(|m| m.phys)
            .ok_or("case 1 mapping missing")?;
        self.vtd.unmap(a.group, a.index, IOVA_DST).map_err(|e| format!("{e}"))?;
        memory::frame_bytes(dst).fill(0x77);
        let new = self.dma(a, Direction::FromDevice, IOVA_DST)?;
        let detail = self.check_fault(new, a, IOVA_DST)?;
        if !all(dst, 0x77) {
            return Err(String::from("the unmapped page changed: stale IOTLB entry"));
        }
        Ok(detail)
    }

    fn other_group(&mut self, a: &Dev, b: &Dev) -> Result<String, String> {
        let x = frame(0x3c)?;
        self.vtd.map(a.group, a.index, IOVA_OTHER, x, Perms::READ | Perms::WRITE).map_err(|e| format!("{e}"))?;
        let new = self.dma(b, Direction::FromDevice, IOVA_OTHER)?;
        let detail = self.check_fault(new, b, IOVA_OTHER)?;
        if !all(x, 0x3c) {
            return Err(format!("group {}'s buffer changed", a.group));
        }
        Ok(format!("group {} maps IOVA {IOVA_OTHER:#x}, group {} does not; {detail}", a.group, b.group))
    }

    fn kernel_memory(&mut self, b: &Dev) -> Result<String, String> {
        let target = frame(0x99)?;
        let new = self.dma(b, Direction::FromDevice, target)?;
        let detail = self.check_fault(new, b, target)?;
        if !all(target, 0x99) {
            return Err(String::from("kernel memory changed"));
        }
        Ok(format!("IOVA = kernel physical {target:#x}; {detail}"))
    }
}
