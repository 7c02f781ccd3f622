/*
 * PVH entry: QEMU's `-kernel` loader finds XEN_ELFNOTE_PHYS32_ENTRY and
 * jumps here in 32-bit protected mode, paging off, with %ebx holding the
 * physical address of `struct hvm_start_info`. This stub builds identity
 * page tables for the low 4 GiB, enters long mode and calls kernel_main.
 *
 * Memory types (2 MiB pages): below 2 GiB write-back (RAM); from 2 GiB to
 * 4 GiB uncached (PWT|PCD): q35's PCI hole with ECAM at 0xb0000000, BARs,
 * the IOAPIC, the VT-d registers at 0xfed90000 and the local APIC. On q35,
 * RAM below 4 GiB ends at 2 GiB or at 0xb0000000; RAM in 2 GiB..0xb0000000
 * is then uncached too: correct, only slower.
 */

    .section .note.pvh, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz: an 8-byte entry address, as Linux */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .bss.boot_page_tables, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
    .global boot_pdpt
boot_pdpt:
    .skip 4096
    .global boot_pd
boot_pd:
    .skip 4096 * 4          /* four page directories: 0-4 GiB */

    .section .rodata.boot_gdt, "a"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld

    /* Zero .bss (page tables, statics); %ebx (start info) is preserved. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    mov $__stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..3] -> the four page directories. */
    mov $boot_pdpt, %eax
    or $0x3, %eax               /* P | RW */
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt
    add $0x1000, %eax
    mov %eax, boot_pdpt + 8
    add $0x1000, %eax
    mov %eax, boot_pdpt + 16
    add $0x1000, %eax
    mov %eax, boot_pdpt + 24

    /* 2048 entries of 2 MiB: entry i maps physical i << 21. */
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax              /* P | RW | PS */
    cmp $1024, %ecx
    jb 2f
    or $0x18, %eax              /* PWT | PCD: uncached from 2 GiB */
2:
    mov %eax, boot_pd(, %ecx, 8)
    movl $0, boot_pd + 4(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jb 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3

    mov %cr4, %eax
    or $0x620, %eax             /* PAE | OSFXSR | OSXMMEXCPT */
    mov %eax, %cr4

    mov $0xc0000080, %ecx       /* IA32_EFER */
    rdmsr
    or $0x900, %eax             /* LME | NXE */
    wrmsr

    mov %cr0, %eax
    and $0xfffffffb, %eax       /* clear EM: SSE usable */
    or $0x80010003, %eax        /* PG | WP | MP | PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_start

    .code64
long_mode_start:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs

    mov $__stack_top, %rsp
    xor %ebp, %ebp
    mov %ebx, %edi              /* zero-extends: upper halves are undefined */
    call kernel_main
3:
    cli
    hlt
    jmp 3b
