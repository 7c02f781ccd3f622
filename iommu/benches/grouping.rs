//! Host micro-benchmarks: enumeration, ACS enabling and Linux 6.1 grouping
//! over synthetic topologies of about 10^3, 10^4 and 10^5 functions.
//!
//! `cargo bench -p iommu --bench grouping` (criterion). The topology is
//! built from one fixed *block* repeated, so every size has the same mix of
//! shapes and the per-function cost is comparable across sizes:
//!
//! ```text
//! root port (ACS)                              bus 0, 8 per multifunction slot
//! └─ switch upstream port
//!    ├─ downstream port → e1000e-like endpoint, 8 functions, no ACS  (one group)
//!    ├─ downstream port → endpoint, 8 functions with ACS            (8 groups)
//!    ├─ downstream port → pcie-pci-bridge → 16 slots × 8 edu       (aliases)
//!    └─ downstream port → pcie-pci-bridge → pci-bridge → 16 × 8 edu (chain)
//! ```
//!
//! 281 functions and 9 buses per block; 28 blocks per PCI segment (bus
//! numbers are 8 bits, so 10^5 functions need 13 segments; each segment is
//! enumerated separately and the topologies are concatenated, as one DRHD
//! with INCLUDE_PCI_ALL would see them in `device_add` order).
//!
//! `BENCH_GROUPING_SIZES=4,36,356` (blocks) overrides the sizes;
//! `BENCH_GROUPING_QUICK=1` keeps only the two smaller sizes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use iommu::group::group_all;
use pci::acs::enable_acs;
use pci::regs::PCI_EXP_TYPE_ENDPOINT;
use pci::sim::SimConfig;
use pci::sim::SimFn;
use pci::sim::qemu::*;
use pci::{Bdf, Topology, enumerate};

struct Gen {
    sim: SimConfig,
    seg: u16,
    next_bus: u8,
    functions: usize,
}

impl Gen {
    fn put(&mut self, bus: u8, dev: u8, func: u8, f: SimFn) {
        self.sim.add(Bdf::new(self.seg, bus, dev, func), f);
        self.functions += 1;
    }
    fn take_bus(&mut self) -> u8 {
        let b = self.next_bus;
        self.next_bus = self.next_bus.checked_add(1).expect("out of bus numbers");
        b
    }
    /// `count` edu functions on `bus`, slots `first..`, 8 functions a slot.
    fn edus(&mut self, bus: u8, first_slot: u8, count: usize) {
        for i in 0..count {
            let (dev, func) = (first_slot + (i / 8) as u8, (i % 8) as u8);
            let f = if func == 0 { edu().multifunction() } else { edu() };
            self.put(bus, dev, func, f);
        }
    }
    /// A PCIe endpoint of 8 functions below a port (device 0 only).
    fn endpoint8(&mut self, bus: u8, acs: bool) {
        for func in 0..8 {
            let mut f = SimFn::new(0x8086, 0x10d3).class(0x020000).pm().pcie(PCI_EXP_TYPE_ENDPOINT).msi().aer();
            if acs {
                f = f.acs(QEMU_ACS_CAP, 0);
            }
            if func == 0 {
                f = f.multifunction();
            }
            self.put(bus, 0, func, f);
        }
    }
    /// One block below a root port at 00:dev.func.
    fn block(&mut self, dev: u8, func: u8) {
        let rp_sec = self.take_bus();
        let sw_bus = self.take_bus();
        // Downstream port 0: endpoint without ACS.
        let d0 = self.take_bus();
        self.endpoint8(d0, false);
        self.put(sw_bus, 0, 0, dsp(sw_bus, d0, d0));
        // Downstream port 1: endpoint with ACS.
        let d1 = self.take_bus();
        self.endpoint8(d1, true);
        self.put(sw_bus, 1, 0, dsp(sw_bus, d1, d1));
        // Downstream port 2: PCIe-to-PCI bridge with conventional devices.
        let d2 = self.take_bus();
        let c2 = self.take_bus();
        self.edus(c2, 0, 128);
        self.put(d2, 0, 0, pcie_pci_bridge(d2, c2, c2));
        self.put(sw_bus, 2, 0, dsp(sw_bus, d2, c2));
        // Downstream port 3: PCIe-to-PCI bridge → PCI bridge → devices.
        let d3 = self.take_bus();
        let c3 = self.take_bus();
        let c4 = self.take_bus();
        self.edus(c4, 0, 128);
        self.put(c3, 0, 0, pci_bridge(c3, c4, c4));
        self.put(d3, 0, 0, pcie_pci_bridge(d3, c3, c4));
        self.put(sw_bus, 3, 0, dsp(sw_bus, d3, c4));
        let last = self.next_bus - 1;
        self.put(rp_sec, 0, 0, usp(rp_sec, sw_bus, last));
        let rp = root_port(true, rp_sec, last);
        let rp = if func == 0 { rp.multifunction() } else { rp };
        self.put(0, dev, func, rp);
    }
    /// Worst case: an ACS root port with an 8-function ACS endpoint, every
    /// function its own group.
    fn isolated_block(&mut self, dev: u8, func: u8) {
        let sec = self.take_bus();
        self.endpoint8(sec, true);
        let rp = root_port(true, sec, sec);
        let rp = if func == 0 { rp.multifunction() } else { rp };
        self.put(0, dev, func, rp);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// The mixed block of the module comment (281 functions, 6 groups).
    Mixed,
    /// Root port + 8-function ACS endpoint (9 functions, 9 groups).
    Isolated,
}

impl Kind {
    const fn functions(self) -> usize {
        match self {
            Kind::Mixed => 281,
            Kind::Isolated => 9,
        }
    }
    const fn per_segment(self) -> usize {
        match self {
            Kind::Mixed => 28,
            Kind::Isolated => 248,
        }
    }
    const fn name(self) -> &'static str {
        match self {
            Kind::Mixed => "mixed",
            Kind::Isolated => "isolated",
        }
    }
    /// Blocks for about `n` functions.
    fn blocks_for(self, n: usize) -> usize {
        n.div_ceil(self.functions())
    }
}

/// A topology of `blocks` blocks (plus one host bridge per segment),
/// enumerated, with ACS enabled. Returns the config space and the topology.
fn build(kind: Kind, blocks: usize) -> (SimConfig, Topology) {
    let mut g = Gen { sim: SimConfig::new(), seg: 0, next_bus: 1, functions: 0 };
    let segments = blocks.div_ceil(kind.per_segment());
    let mut left = blocks;
    for seg in 0..segments {
        g.seg = seg as u16;
        g.next_bus = 1;
        g.put(0, 0, 0, q35_host());
        let here = left.min(kind.per_segment());
        for b in 0..here {
            let (dev, func) = (1 + (b / 8) as u8, (b % 8) as u8);
            match kind {
                Kind::Mixed => g.block(dev, func),
                Kind::Isolated => g.isolated_block(dev, func),
            }
        }
        left -= here;
    }
    assert_eq!(g.functions, blocks * kind.functions() + segments);
    let mut sim = g.sim;
    let mut topo = Topology::default();
    for seg in 0..segments {
        let part = enumerate(&mut sim, seg as u16, &[0], 0..=255);
        assert!(part.errors.is_empty(), "{:?}", part.errors);
        concat(&mut topo, part);
    }
    assert_eq!(topo.functions.len(), g.functions, "enumeration missed functions");
    enable_acs(&mut sim, &mut topo);
    (sim, topo)
}

fn concat(all: &mut Topology, part: Topology) {
    let base = all.functions.len();
    all.functions.extend(part.functions.into_iter().map(|mut f| {
        f.parent = f.parent.map(|p| p + base);
        f
    }));
    all.buses.extend(part.buses.into_iter().map(|mut b| {
        b.bridge = b.bridge.map(|p| p + base);
        b
    }));
    all.errors.extend(part.errors);
}

/// Target function counts: `BENCH_GROUPING_SIZES=1000,10000,100000`
/// overrides; `BENCH_GROUPING_QUICK=1` drops the largest.
fn sizes() -> Vec<usize> {
    if let Ok(s) = std::env::var("BENCH_GROUPING_SIZES") {
        return s.split(',').map(|x| x.trim().parse().expect("a function count")).collect();
    }
    let mut v = vec![1_000, 10_000, 100_000];
    if std::env::var_os("BENCH_GROUPING_QUICK").is_some() {
        v.pop();
    }
    v
}

fn bench_grouping(c: &mut Criterion) {
    for kind in [Kind::Mixed, Kind::Isolated] {
        let mut g = c.benchmark_group(format!("group_all/{}", kind.name()));
        g.sampling_mode(SamplingMode::Flat);
        for target in sizes() {
            let (mut sim, topo) = build(kind, kind.blocks_for(target));
            let n = topo.functions.len();
            let groups = group_all(&mut sim, &topo);
            let grouped: usize = groups.groups.iter().map(|g| g.members.len()).sum();
            assert_eq!(grouped, n);
            eprintln!(
                "group_all/{}: {n} functions, {} buses, {} groups",
                kind.name(),
                topo.buses.len(),
                groups.groups.len()
            );
            g.throughput(Throughput::Elements(n as u64));
            // Large sizes take up to seconds per iteration: 10 samples.
            g.sample_size(if n > 20_000 { 10 } else { 20 });
            g.measurement_time(Duration::from_secs(if n > 20_000 { 10 } else { 3 }));
            g.warm_up_time(Duration::from_secs(1));
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| black_box(group_all(&mut sim, &topo)))
            });
        }
        g.finish();
    }
}

fn bench_enumerate(c: &mut Criterion) {
    let kind = Kind::Mixed;
    let mut g = c.benchmark_group("enumerate+acs/mixed");
    g.sampling_mode(SamplingMode::Flat);
    for target in sizes() {
        let blocks = kind.blocks_for(target);
        let (mut sim, topo) = build(kind, blocks);
        let n = topo.functions.len();
        let segments = blocks.div_ceil(kind.per_segment());
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(3));
        g.warm_up_time(Duration::from_secs(1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let mut all = Topology::default();
                for seg in 0..segments {
                    concat(&mut all, enumerate(&mut sim, seg as u16, &[0], 0..=255));
                }
                black_box(enable_acs(&mut sim, &mut all));
                // The sim logs every write; keep the log from growing.
                sim.writes.clear();
                all
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_grouping, bench_enumerate);
criterion_main!(benches);
