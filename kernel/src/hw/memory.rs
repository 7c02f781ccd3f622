//! Physical memory: the frame allocator over the firmware's memory map and
//! the kernel heap carved out of it.
//!
//! Physical memory below 4 GiB is identity-mapped (`boot.s`), so a frame's
//! physical address is also its virtual address.

use crate::arch;
use linked_list_allocator::LockedHeap;
use platform::frames::{FRAME_SIZE, FrameAllocator, FrameError, Reserved};
use platform::memmap::MemoryRegion;
use spin::Mutex;

/// The identity map covers physical memory below this address.
pub const IDENTITY_LIMIT: u64 = 4 << 30;

/// One bit per frame below 4 GiB: 128 KiB.
const BITMAP_WORDS: usize = (IDENTITY_LIMIT / FRAME_SIZE / 64) as usize;
static mut BITMAP: [u64; BITMAP_WORDS] = [0; BITMAP_WORDS];

static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Heap sizes tried in order; the first that fits is used.
const HEAP_SIZES: [usize; 3] = [8 << 20, 2 << 20, 512 << 10];

/// Facts about memory for the report.
#[derive(Clone, Copy, Debug)]
pub struct MemoryFacts {
    pub free_frames: usize,
    pub heap_base: u64,
    pub heap_size: usize,
    pub uncovered_ram: u64,
}

/// Build the frame allocator and the heap. `extra_reserved` holds firmware
/// data that must survive (start info, memory map, command line).
pub fn init(map: &[MemoryRegion], extra_reserved: &[Reserved]) -> Result<MemoryFacts, FrameError> {
    let (kernel_start, kernel_end) = arch::kernel_image();
    let mut reserved = [Reserved { start: 0, end: 0 }; 8];
    // The first MiB: real-mode structures, the EBDA and BIOS area (ACPI may
    // be searched there), and SeaBIOS's PVH start info.
    reserved[0] = Reserved { start: 0, end: 1 << 20 };
    // The kernel image, which holds its page tables, stacks and bitmap.
    reserved[1] = Reserved { start: kernel_start, end: kernel_end };
    let n = extra_reserved.len().min(reserved.len() - 2);
    reserved[2..2 + n].copy_from_slice(&extra_reserved[..n]);

    // SAFETY: called once during single-threaded boot; the bitmap is then
    // owned by the allocator behind `FRAMES`.
    let bitmap = unsafe { &mut *core::ptr::slice_from_raw_parts_mut((&raw mut BITMAP).cast::<u64>(), BITMAP_WORDS) };
    let mut frames = FrameAllocator::new(bitmap, map, &reserved[..2 + n]);

    let mut heap = Err(FrameError::OutOfMemory { frames: 0 });
    for size in HEAP_SIZES {
        heap = frames.alloc_contiguous(size / FRAME_SIZE as usize, 1).map(|base| (base, size));
        if heap.is_ok() {
            break;
        }
    }
    let (heap_base, heap_size) = heap?;
    // SAFETY: the range was just taken from the frame allocator, is
    // identity-mapped RAM, and is handed to the heap alone.
    unsafe { HEAP.lock().init(heap_base as *mut u8, heap_size) };
    let facts =
        MemoryFacts { free_frames: frames.free_frames(), heap_base, heap_size, uncovered_ram: frames.uncovered_ram };
    *FRAMES.lock() = Some(frames);
    Ok(facts)
}

/// A zeroed 4 KiB frame; returns its physical address.
pub fn alloc_zeroed_frame() -> Result<u64, FrameError> {
    let frame = FRAMES.lock().as_mut().ok_or(FrameError::OutOfMemory { frames: 1 })?.alloc()?;
    // SAFETY: the frame is identity-mapped RAM just handed out to us alone.
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize) };
    Ok(frame)
}

pub fn free_frame(frame: u64) -> Result<(), FrameError> {
    FRAMES.lock().as_mut().ok_or(FrameError::NotAllocated(frame))?.free(frame)
}

/// Copy `len` bytes of identity-mapped physical memory.
///
/// # Safety
/// `[paddr, paddr + len)` must be readable memory below [`IDENTITY_LIMIT`]
/// that nothing writes concurrently.
pub unsafe fn read_phys(paddr: u64, len: usize) -> &'static [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(paddr as *const u8, len) }
}

/// A frame filled with `fill`, for DMA buffers and canaries.
pub fn filled_frame(fill: u8) -> Result<u64, FrameError> {
    let f = alloc_zeroed_frame()?;
    // SAFETY: a fresh frame, identity-mapped RAM, ours alone.
    unsafe { core::ptr::write_bytes(f as *mut u8, fill, FRAME_SIZE as usize) };
    Ok(f)
}

/// The bytes of a frame taken from the allocator and never freed (the DMA
/// buffers of the proofs): devices write them, the CPU checks them.
pub fn frame_bytes(frame: u64) -> &'static mut [u8] {
    // SAFETY: the frame is identity-mapped RAM handed out by the frame
    // allocator and kept for the rest of the run; the only other writer is
    // a device's DMA, which the caller starts and waits for.
    unsafe { core::slice::from_raw_parts_mut(frame as *mut u8, FRAME_SIZE as usize) }
}
