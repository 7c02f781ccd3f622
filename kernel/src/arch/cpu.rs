//! GDT with a TSS (IST stacks for faults that must not use the current
//! stack) and the 256-gate IDT, on stable Rust: the entry stubs of the 32
//! CPU exceptions are in `traps.s`, those of vectors 32-255 (device
//! interrupts, `interrupts.rs`) in `irq.s`; the gates are written here.

use core::mem::size_of;
use spin::Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in the gate) for the double fault: a stack overflow
/// hits the guard page, and the CPU cannot push a frame onto that stack.
const IST_DOUBLE_FAULT: u16 = 1;
/// IST slot for the page fault, so a guard-page hit is reported as a page
/// fault with its address rather than escalating.
const IST_PAGE_FAULT: u16 = 2;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut IST_STACKS: [IstStack; 2] = [const { IstStack([0; IST_STACK_SIZE]) }; 2];

static TSS: Lazy<TaskStateSegment> = Lazy::new(|| {
    let mut tss = TaskStateSegment::new();
    for (i, slot) in [IST_DOUBLE_FAULT, IST_PAGE_FAULT].into_iter().enumerate() {
        // SAFETY: only the address is taken; the stacks are used by the CPU
        // alone, through the TSS.
        let base = unsafe { &raw mut IST_STACKS[i] } as u64;
        tss.interrupt_stack_table[usize::from(slot - 1)] = VirtAddr::new(base + IST_STACK_SIZE as u64);
    }
    tss
});

struct Gdt {
    table: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<Gdt> = Lazy::new(|| {
    let mut table = GlobalDescriptorTable::new();
    let code = table.append(Descriptor::kernel_code_segment());
    let data = table.append(Descriptor::kernel_data_segment());
    let tss = table.append(Descriptor::tss_segment(&TSS));
    Gdt { table, code, data, tss }
});

/// An interrupt gate (Intel SDM Vol. 3A §6.14.1), 16 bytes.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    /// Bits 0-2: IST index (0 = none).
    ist: u8,
    /// Type 0xE (64-bit interrupt gate), DPL 0, present: 0x8E.
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<Gate>() == 16);

impl Gate {
    const MISSING: Gate =
        Gate { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, reserved: 0 };

    fn interrupt(handler: u64, selector: SegmentSelector, ist: u16) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: selector.0,
            ist: ist as u8,
            type_attr: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

/// Every vector has a gate: a device or a forged message can name any
/// vector, and a missing gate would turn it into a #GP.
#[repr(C, align(16))]
struct Idt([Gate; 256]);

/// Size of one stub in `irq.s`.
const IRQ_STUB_SIZE: u64 = 16;

static IDT: Lazy<Idt> = Lazy::new(|| {
    unsafe extern "C" {
        /// Entry stub addresses, `traps.s`.
        static isr_table: [u64; 32];
        /// The first of 224 16-byte stubs for vectors 32-255, `irq.s`.
        static irq_stubs: u8;
    }
    let mut idt = Idt([Gate::MISSING; 256]);
    let stubs = &raw const irq_stubs as u64;
    for (vector, gate) in idt.0.iter_mut().enumerate().skip(32) {
        *gate = Gate::interrupt(stubs + (vector as u64 - 32) * IRQ_STUB_SIZE, GDT.code, 0);
    }
    for (vector, gate) in idt.0.iter_mut().enumerate().take(32) {
        let ist = match vector {
            8 => IST_DOUBLE_FAULT,
            14 => IST_PAGE_FAULT,
            _ => 0,
        };
        // SAFETY: `isr_table` is an immutable table of 32 addresses.
        let handler = unsafe { isr_table[vector] };
        *gate = Gate::interrupt(handler, GDT.code, ist);
    }
    idt
});

/// Load the GDT, segment registers, TSS and IDT.
pub fn init() {
    GDT.table.load();
    // SAFETY: the selectors index the GDT just loaded; the TSS descriptor
    // points at a static TSS.
    unsafe {
        CS::set_reg(GDT.code);
        DS::set_reg(GDT.data);
        ES::set_reg(GDT.data);
        SS::set_reg(GDT.data);
        load_tss(GDT.tss);
    }
    let idt: &'static Idt = &IDT;
    let pointer =
        DescriptorTablePointer { limit: (size_of::<Idt>() - 1) as u16, base: VirtAddr::new(idt as *const Idt as u64) };
    // SAFETY: the IDT is static, its gates point at the stubs in `traps.s`
    // with the kernel code selector.
    unsafe { lidt(&pointer) };
}

/// What the entry stubs leave on the stack (`traps.s`), lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Intel SDM Vol. 3A Table 6-1.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error (#DE)",
        1 => "debug (#DB)",
        2 => "non-maskable interrupt",
        3 => "breakpoint (#BP)",
        4 => "overflow (#OF)",
        5 => "bound range exceeded (#BR)",
        6 => "invalid opcode (#UD)",
        7 => "device not available (#NM)",
        8 => "double fault (#DF)",
        10 => "invalid TSS (#TS)",
        11 => "segment not present (#NP)",
        12 => "stack-segment fault (#SS)",
        13 => "general protection (#GP)",
        14 => "page fault (#PF)",
        16 => "x87 floating-point error (#MF)",
        17 => "alignment check (#AC)",
        18 => "machine check (#MC)",
        19 => "SIMD floating-point (#XM)",
        20 => "virtualization (#VE)",
        21 => "control protection (#CP)",
        _ => "reserved exception",
    }
}
