//! Host micro-benchmarks: VT-d second-level page tables, map and unmap of
//! 10^5 4 KiB pages (`cargo bench -p iommu --bench pagetable`).
//!
//! The geometry is QEMU 7.2's intel-iommu with the defaults the project uses
//! (CAP 0xd2008c22260286: 39-bit, 3 levels); `BENCH_PT_AW48=1` adds the
//! 4-level (aw-bits=48) case. Memory is a Vec of 4 KiB frames (the crate's
//! own simulator is test-only), so the figures are the table code's cost
//! plus a bounds-checked array access per PTE, with no cache flushes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iommu::vtd::geometry::{Geometry, PageSize};
use iommu::vtd::mem::{FRAME_SIZE, FrameAlloc, PhysMem};
use iommu::vtd::pagetable::{Perms, SecondLevelTable};
use iommu::vtd::{Cap, Ecap};

const PAGES: u64 = 100_000;
const BASE: u64 = 0x1_0000_0000;
/// First IOVA: 1 GiB, so the range spans several level-2 tables.
const IOVA: u64 = 0x4000_0000;

#[derive(Default)]
struct VecMem {
    frames: Vec<Box<[u64; 512]>>,
    free: Vec<usize>,
}

impl VecMem {
    fn slot(pa: u64) -> (usize, usize) {
        let off = pa - BASE;
        ((off / FRAME_SIZE) as usize, ((off % FRAME_SIZE) / 8) as usize)
    }
}

impl PhysMem for VecMem {
    fn read_u64(&self, pa: u64) -> u64 {
        let (f, i) = Self::slot(pa);
        self.frames[f][i]
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        let (f, i) = Self::slot(pa);
        self.frames[f][i] = value;
    }
}

impl FrameAlloc for VecMem {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        let f = match self.free.pop() {
            Some(f) => {
                self.frames[f].fill(0);
                f
            }
            None => {
                self.frames.push(Box::new([0; 512]));
                self.frames.len() - 1
            }
        };
        Some(BASE + f as u64 * FRAME_SIZE)
    }
    fn free(&mut self, pa: u64) {
        self.free.push(Self::slot(pa).0);
    }
}

fn geometry(aw48: bool) -> Geometry {
    // QEMU 7.2 intel-iommu CAP/ECAP (intremap=on,caching-mode=on); aw-bits=48
    // adds SAGAW bit 2 (SAGAW 0b110) and MGAW 48.
    let cap = if aw48 { 0xd2008c222f0686 } else { 0xd2008c22260286 };
    Geometry::for_unit(Cap(cap), Ecap(0xf00f4a), Geometry::DEFAULT_NEED_BITS).unwrap()
}

fn map_all(mem: &mut VecMem, t: &mut SecondLevelTable) {
    for i in 0..PAGES {
        let iova = IOVA + i * 4096;
        t.map(mem, iova, iova, PageSize::Size4K, Perms::READ | Perms::WRITE).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let mut widths = vec![false];
    if std::env::var_os("BENCH_PT_AW48").is_some() {
        widths.push(true);
    }
    for aw48 in widths {
        let geo = geometry(aw48);
        let name = format!("pagetable/{}-level", geo.width.levels());
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(PAGES));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(5));
        g.warm_up_time(Duration::from_secs(1));
        g.bench_function("map 1e5 x 4K", |b| {
            b.iter_batched(
                || {
                    let mut mem = VecMem::default();
                    let t = SecondLevelTable::new(&mut mem, geo).unwrap();
                    (mem, t)
                },
                |(mut mem, mut t)| {
                    map_all(&mut mem, &mut t);
                    black_box((mem, t))
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("unmap 1e5 x 4K", |b| {
            b.iter_batched(
                || {
                    let mut mem = VecMem::default();
                    let mut t = SecondLevelTable::new(&mut mem, geo).unwrap();
                    map_all(&mut mem, &mut t);
                    (mem, t)
                },
                |(mut mem, mut t)| {
                    for i in 0..PAGES {
                        t.unmap(&mut mem, IOVA + i * 4096, PageSize::Size4K).unwrap();
                    }
                    black_box((mem, t))
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("translate 1e5 x 4K", |b| {
            let mut mem = VecMem::default();
            let mut t = SecondLevelTable::new(&mut mem, geo).unwrap();
            map_all(&mut mem, &mut t);
            b.iter(|| {
                for i in 0..PAGES {
                    black_box(t.translate(&mem, IOVA + i * 4096));
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
